//! A stand-in base image that carries real vLLM (x86-64, CPU): Debian minbase with python3 (the
//! same CPython 3.11 as the venv) and libnuma, the site-packages of the `cargo xtask vllm` venv as
//! `/usr/local/lib/python3.11/dist-packages` (which Debian's python3 reads) and a `vllm`
//! launcher. NVIDIA's real base has vLLM for CUDA instead; everything above the base (the
//! recipe's layers, spark-entrypoint, the serve command) is what users run. Used by the Docker
//! end-to-end test and by `cargo xtask demo`, which include this file with `#[path]` next to
//! `builder/tests/support/debian.rs` (as `debian`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `vllm` for Debian's python3: vLLM's own CLI entry point (the venv's launcher names the venv's
/// python, which is not in the image). The `__main__` guard is what pip's launchers have: vLLM
/// starts its engine with multiprocessing's `spawn`, whose children import this file again.
pub const VLLM_LAUNCHER: &str =
    "#!/usr/bin/python3\nimport sys\nfrom vllm.entrypoints.cli.main import main\n\nif __name__ == \"__main__\":\n    sys.exit(main())\n";

/// The venv's site-packages (`target/vllm`, a link to the venv keyed by its lock).
pub fn site_packages(venv: &Path) -> PathBuf {
    let site = venv.join("lib/python3.11/site-packages");
    assert!(site.join("vllm").is_dir(), "no vLLM in `{}`: `cargo xtask vllm` installs it (CPython 3.11, like the Debian base)", site.display());
    site
}

fn sh(script: &str) {
    let out = Command::new("bash").args(["-c", script]).output().expect("bash runs");
    assert!(out.status.success(), "`{script}` failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// The base as a `docker save` archive under `cache`, made once per venv (its resolved path
/// names the lock's key) and Debian tree: about 6 GB, most of it torch and its CUDA libraries,
/// which `import torch` loads even on the CPU platform.
pub fn archive(cache: &Path, venv: &Path) -> PathBuf {
    let site = site_packages(venv);
    let real = std::fs::canonicalize(venv).expect("the venv resolves");
    // vLLM's CPU kernels (`vllm/_C*.so`) link libnuma.
    let root = super::debian::rootfs(cache, "python3,libnuma1");
    let key = super::debian::key(&[real.to_string_lossy().as_bytes(), root.to_string_lossy().as_bytes(), VLLM_LAUNCHER.as_bytes()]);
    let path = cache.join(format!("vllm-base-{key}.tar"));
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if path.exists() {
        return path;
    }
    // One tree staged with hard links (the venv and the cache are on one file system: no 6 GB
    // copy): Debian's rootfs with vLLM merged in (one tar, no folder twice).
    let stage = cache.join(format!("vllm-base-stage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    sh(&format!("cp -al {} {}", root.display(), stage.display()));
    let dist = stage.join("usr/local/lib/python3.11/dist-packages");
    std::fs::create_dir_all(&dist).unwrap();
    sh(&format!("cp -al {}/. {}", site.display(), dist.display()));
    let launcher = stage.join("usr/local/bin/vllm");
    std::fs::create_dir_all(launcher.parent().unwrap()).unwrap();
    std::fs::write(&launcher, VLLM_LAUNCHER).unwrap();
    sh(&format!("chmod 0755 {}", launcher.display()));
    let tag = format!("sparkctl-vllm-base:{key}-{}", std::process::id());
    let tmp = cache.join(format!("vllm-base-{key}.tar.tmp{}", std::process::id()));
    // ~6 GB three times over at the peak (the staged tree's blocks, Docker's copy, the archive):
    // whatever happens, only the finished archive stays.
    let made = Command::new("bash")
        .args([
            "-c",
            &format!(
                "set -e; trap 'docker rmi -f {tag} >/dev/null 2>&1 || true' EXIT; tar --numeric-owner -C {stage} -c . | docker import - {tag} >/dev/null; docker save -o {tmp} {tag}",
                stage = stage.display(),
                tmp = tmp.display(),
            ),
        ])
        .output()
        .expect("bash runs");
    let _ = std::fs::remove_dir_all(&stage);
    if !made.status.success() {
        let _ = std::fs::remove_file(&tmp);
        panic!("making the vLLM base archive failed (disk space: ~18 GB free needed at the peak):\n{}", String::from_utf8_lossy(&made.stderr));
    }
    std::fs::rename(&tmp, &path).unwrap();
    path
}
