//! `backend = ray` needs a `ray` command in the image. NGC vLLM images ship without Ray since
//! 26.05, so on those bases the refusal comes at start, with both fixes, instead of a
//! "command not found" from `ray start` after the rendezvous.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The first executable `name` in the `PATH`-style list `path`.
pub(crate) fn find_on_path(path: Option<&OsStr>, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path?).map(|d| d.join(name)).find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// `Err(line)` when Ray is wanted and `ray` is not on `path`.
pub(crate) fn require_ray(ray_backend: bool, path: Option<&OsStr>) -> Result<(), String> {
    if !ray_backend || find_on_path(path, "ray").is_some() {
        return Ok(());
    }
    Err("backend = ray but this image has no `ray` command (NGC vLLM bases ship without Ray since 26.05): \
         set `backend = \"native\"` in cluster.toml (vLLM's own multi-node mode), or run the image built with Ray as a Python layer (images/vllm-spark-ray.toml, tag suffix `-ray`)"
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_ray_without_the_command_and_names_both_fixes() {
        let d = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([d.path().join("none"), d.path().to_owned()]).unwrap();
        let e = require_ray(true, Some(&path)).unwrap_err();
        assert!(e.contains("backend = \"native\"") && e.contains("vllm-spark-ray.toml") && !e.contains('\n'), "{e}");
        assert!(require_ray(false, Some(&path)).is_ok(), "native needs no ray");
        assert!(require_ray(true, None).is_err());
        // A non-executable file named ray does not count; an executable one does.
        std::fs::write(d.path().join("ray"), "#!/bin/sh\n").unwrap();
        assert!(require_ray(true, Some(&path)).is_err());
        std::fs::set_permissions(d.path().join("ray"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(require_ray(true, Some(&path)).is_ok());
    }
}
