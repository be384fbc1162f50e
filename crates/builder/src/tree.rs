//! Reads an overlay's `rootfs/` into the sorted list of entries its layer will hold. Nothing of
//! the host leaks in: no owners, no mtimes, modes normalised, symlinks never followed.

use crate::error::{Error, IoContext, Result};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File {
        source: PathBuf,
        size: u64,
    },
    Symlink {
        target: String,
    },
    /// An OCI whiteout: deletes the path in lower layers.
    Whiteout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Relative image path, `/`-separated, no trailing slash.
    pub(crate) path: String,
    pub(crate) kind: Kind,
    pub(crate) mode: u32,
}

/// Entries keyed by image path: a `BTreeMap` gives the byte-order sort the tar must have.
pub(crate) type Entries = BTreeMap<String, Entry>;

/// Walks `root` (which may be absent: an overlay can be only whiteouts, env or artifacts).
/// `parents = false` leaves out directories that only lead to something (they exist in the base or
/// are created by the runtime with 0755); empty directories and directories named in `modes`
/// always get an entry.
pub(crate) fn walk(root: &Path, parents: bool, modes: &BTreeMap<String, u32>) -> Result<Entries> {
    let mut out = Entries::new();
    if !root.exists() {
        if let Some(p) = modes.keys().next() {
            return Err(Error::input(
                root.display().to_string(),
                format!("[modes] names `/{p}`, but the overlay has no rootfs/"),
                Some("remove the [modes] table or add the file under rootfs/".into()),
            ));
        }
        return Ok(out);
    }
    walk_dir(root, root, "", parents, modes, &mut out)?;
    // A mode for a path the tree lacks would otherwise be dropped without a word.
    if let Some(missing) = modes.keys().find(|p| !out.contains_key(*p)) {
        return Err(Error::input(
            root.display().to_string(),
            format!("[modes] names `/{missing}`, which is not in this rootfs/"),
            Some(format!("add `{}` or remove its [modes] line (artifacts take `mode` in their [[artifact]] table)", root.join(missing).display())),
        ));
    }
    Ok(out)
}

/// OCI whiteout names (`.wh.NAME` deletes NAME, `.wh..wh..opq` empties a folder) would turn a
/// file of the tree into a deletion in the image.
pub(crate) fn is_whiteout_name(name: &str) -> bool {
    name.starts_with(".wh.")
}

fn walk_dir(root: &Path, dir: &Path, prefix: &str, parents: bool, modes: &BTreeMap<String, u32>, out: &mut Entries) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .io_ctx("reading overlay folder", dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .io_ctx("reading overlay folder", dir)?;
    names.sort();
    for name in names {
        let name_str =
            name.to_str().ok_or_else(|| Error::input(dir.display().to_string(), format!("file name {name:?} is not UTF-8"), Some("rename it".into())))?;
        let path = dir.join(&name);
        if is_whiteout_name(name_str) {
            return Err(Error::input(
                path.display().to_string(),
                "names starting with `.wh.` are OCI whiteouts: in a layer this file would delete a path of the base",
                Some("to delete a path, list it in overlay.toml's `delete = [\"/path\"]`; otherwise rename the file".into()),
            ));
        }
        let rel = if prefix.is_empty() { name_str.to_owned() } else { format!("{prefix}/{name_str}") };
        let meta = fs::symlink_metadata(&path).io_ctx("reading", &path)?;
        let ft = meta.file_type();
        let explicit = modes.get(&rel).copied();
        if ft.is_dir() {
            let before = out.len();
            walk_dir(root, &path, &rel, parents, modes, out)?;
            let empty = out.len() == before;
            if parents || empty || explicit.is_some() {
                out.insert(rel.clone(), Entry { path: rel, kind: Kind::Dir, mode: explicit.unwrap_or(0o755) });
            }
        } else if ft.is_file() {
            // Git records only "executable or not"; the umask of a checkout must not matter.
            let mode = explicit.unwrap_or(if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 });
            fs::File::open(&path).io_ctx("opening overlay file", &path)?;
            out.insert(rel.clone(), Entry { path: rel, kind: Kind::File { source: path, size: meta.len() }, mode });
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).io_ctx("reading symlink", &path)?;
            let target_str = target.to_str().ok_or_else(|| Error::input(path.display().to_string(), "symlink target is not UTF-8", None))?.to_owned();
            check_symlink(&path, &rel, &target)?;
            out.insert(rel.clone(), Entry { path: rel, kind: Kind::Symlink { target: target_str }, mode: 0o777 });
        } else {
            let what = if ft.is_fifo() {
                "a FIFO"
            } else if ft.is_socket() {
                "a socket"
            } else {
                "a device node"
            };
            return Err(Error::input(
                path.display().to_string(),
                format!("is {what}; overlays hold files, directories and symlinks only"),
                Some("remove it from the overlay tree".into()),
            ));
        }
    }
    let _ = root;
    Ok(())
}

/// Absolute targets are meant for the image (resolved inside the container) and kept verbatim.
/// A relative target must stay inside the overlay tree once resolved from the link's folder.
fn check_symlink(path: &Path, rel: &str, target: &Path) -> Result<()> {
    if target.is_absolute() {
        return Ok(());
    }
    let mut depth: i64 = rel.matches('/').count() as i64; // folders above the link inside the tree
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(Error::input(
                path.display().to_string(),
                format!("symlink target `{}` climbs out of the overlay tree", target.display()),
                Some("use an absolute target (it is resolved inside the image) or keep it inside rootfs/".into()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("usr/local/bin")).unwrap();
        fs::create_dir_all(r.join("var/empty")).unwrap();
        fs::write(r.join("usr/local/bin/tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(r.join("usr/local/bin/tool"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(r.join("usr/local/readme"), "x").unwrap();
        fs::set_permissions(r.join("usr/local/readme"), fs::Permissions::from_mode(0o600)).unwrap();
        symlink("/usr/local/bin/tool", r.join("usr/local/abs")).unwrap();
        symlink("bin/tool", r.join("usr/local/rel")).unwrap();
        d
    }

    #[test]
    fn no_parent_dirs_unless_asked_and_modes_normalised() {
        let d = tree();
        let e = walk(d.path(), false, &BTreeMap::new()).unwrap();
        let paths: Vec<&str> = e.keys().map(String::as_str).collect();
        assert_eq!(paths, ["usr/local/abs", "usr/local/bin/tool", "usr/local/readme", "usr/local/rel", "var/empty"]);
        assert_eq!(e["usr/local/bin/tool"].mode, 0o755);
        assert_eq!(e["usr/local/readme"].mode, 0o644);
        let with_parents = walk(d.path(), true, &BTreeMap::new()).unwrap();
        assert!(with_parents.contains_key("usr") && with_parents.contains_key("usr/local/bin"));
        let modes = BTreeMap::from([("usr/local/bin".to_owned(), 0o750)]);
        assert_eq!(walk(d.path(), false, &modes).unwrap()["usr/local/bin"].mode, 0o750);
    }

    #[test]
    fn escaping_symlink_and_fifo_are_refused() {
        let d = tree();
        symlink("../../../etc/passwd", d.path().join("usr/local/bad")).unwrap();
        let e = walk(d.path(), false, &BTreeMap::new()).unwrap_err().to_string();
        assert!(e.contains("climbs out of the overlay tree"), "{e}");
        let d = tree();
        let fifo = d.path().join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(walk(d.path(), false, &BTreeMap::new()).unwrap_err().to_string().contains("is a FIFO"));
    }
}
