//! A stand-in base image that carries real vLLM (x86-64, CPU): Debian minbase with python3 (the
//! same CPython 3.11 as the venv) and libnuma, the site-packages of the `cargo xtask vllm` venv as
//! `/usr/local/lib/python3.11/dist-packages` (which Debian's python3 reads) and a `vllm`
//! launcher. NVIDIA's real base has vLLM for CUDA instead; everything above the base (the
//! recipe's layers, spark-entrypoint, the serve command) is what users run. Used by the Docker
//! end-to-end test and by `cargo xtask demo`.
//!
//! The base is an OCI layout written here directly, its one layer a gzip-compressed tar: no
//! `docker import` and `docker save` (each a full 6 GB copy), and half the bytes on disk for the
//! layout, the built image's archive and `docker load`'s own temporary copy of it. Peak disk is
//! what CI machines run out of first.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `vllm` for Debian's python3: vLLM's own CLI entry point (the venv's launcher names the venv's
/// python, which is not in the image). The `__main__` guard is what pip's launchers have: vLLM
/// starts its engine with multiprocessing's `spawn`, whose children import this file again.
pub const VLLM_LAUNCHER: &str =
    "#!/usr/bin/python3\nimport sys\nfrom vllm.entrypoints.cli.main import main\n\nif __name__ == \"__main__\":\n    sys.exit(main())\n";

/// The layer's compression: `pigz -1` (gzip on every core) takes the tree from 5.9 to 3.3 GB in
/// about a minute on 2 cores. Not zstd: Debian's Docker (20.10) cannot load zstd layers.
const PIGZ_ARGS: [&str; 2] = ["-1", "-c"];

/// The Debian packages of the base: python3 for vLLM, libnuma because vLLM's CPU kernels
/// (`vllm/_C*.so`) link it.
pub const DEBIAN_PACKAGES: &str = "python3,libnuma1";

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

/// The base as an OCI layout under `cache` (use it as `oci:PATH`), made once per venv (its
/// resolved path names the lock's key), Debian tree and layout format: about 3 GB, most of it
/// torch and its CUDA libraries, which `import torch` loads even on the CPU platform.
pub fn layout(cache: &Path, venv: &Path) -> PathBuf {
    let site = site_packages(venv);
    let real = std::fs::canonicalize(venv).expect("the venv resolves");
    let root = crate::debian::rootfs(cache, DEBIAN_PACKAGES);
    let key = crate::debian::key(&[
        real.to_string_lossy().as_bytes(),
        root.to_string_lossy().as_bytes(),
        VLLM_LAUNCHER.as_bytes(),
        PIGZ_ARGS.join(" ").as_bytes(),
        b"oci-layout",
    ]);
    let dir = cache.join(format!("vllm-base-{key}"));
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if dir.join("index.json").exists() {
        return dir;
    }
    // One tree staged with hard links (the venv and the cache are on one file system: no 6 GB
    // copy): Debian's rootfs with vLLM merged in (one tar, no folder twice).
    let pid = std::process::id();
    let stage = cache.join(format!("vllm-base-stage-{pid}"));
    let _ = std::fs::remove_dir_all(&stage);
    sh(&format!("cp -al {} {}", root.display(), stage.display()));
    let dist = stage.join("usr/local/lib/python3.11/dist-packages");
    std::fs::create_dir_all(&dist).unwrap();
    sh(&format!("cp -al {}/. {}", site.display(), dist.display()));
    let launcher = stage.join("usr/local/bin/vllm");
    std::fs::create_dir_all(launcher.parent().unwrap()).unwrap();
    std::fs::write(&launcher, VLLM_LAUNCHER).unwrap();
    sh(&format!("chmod 0755 {}", launcher.display()));

    let tmp = cache.join(format!("vllm-base-{key}.tmp{pid}"));
    let _ = std::fs::remove_dir_all(&tmp);
    let blobs = tmp.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let made = write_layer(&stage, &blobs.join("layer.tmp"));
    let _ = std::fs::remove_dir_all(&stage);
    let (diff_id, layer, layer_size) = made.unwrap_or_else(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        panic!("making the vLLM base layer failed (disk space: ~4 GB free needed): {e}")
    });
    std::fs::rename(blobs.join("layer.tmp"), blobs.join(&layer)).unwrap();

    let put = |json: serde_json::Value| -> (String, usize) {
        let bytes = serde_json::to_vec(&json).unwrap();
        let hex = hex::encode(Sha256::digest(&bytes));
        std::fs::write(blobs.join(&hex), &bytes).unwrap();
        (hex, bytes.len())
    };
    let (config, config_size) = put(serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{diff_id}")] },
    }));
    let (manifest, manifest_size) = put(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config}"), "size": config_size },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{layer}"), "size": layer_size }],
    }));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest}"),
            "size": manifest_size,
            "platform": { "architecture": "amd64", "os": "linux" },
        }],
    });
    std::fs::write(tmp.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}").unwrap();
    std::fs::write(tmp.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::rename(&tmp, &dir).unwrap();
    dir
}

/// `tar` of `stage` through `pigz` into `out`, hashing both sides on the way (one read of the
/// tree, no uncompressed copy on disk). Returns the tar's sha256 (the diff id), the blob's sha256
/// and the blob's size.
fn write_layer(stage: &Path, out: &Path) -> Result<(String, String, u64), String> {
    let mut tar =
        Command::new("tar").args(["--numeric-owner", "-C"]).arg(stage).args(["-c", "."]).stdout(Stdio::piped()).spawn().map_err(|e| format!("tar: {e}"))?;
    let mut gz = Command::new("pigz")
        .args(PIGZ_ARGS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("pigz (`cargo xtask deps` installs it): {e}"))?;
    let (mut tar_out, mut gz_in, mut gz_out) = (tar.stdout.take().unwrap(), gz.stdin.take().unwrap(), gz.stdout.take().unwrap());
    let pump = std::thread::spawn(move || copy_hashing(&mut tar_out, &mut gz_in));
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?);
    let (layer, size) = copy_hashing(&mut gz_out, &mut file).map_err(|e| format!("pigz → {}: {e}", out.display()))?;
    file.flush().map_err(|e| format!("write {}: {e}", out.display()))?;
    let (diff_id, _) = pump.join().map_err(|_| "the tar pump panicked".to_owned())?.map_err(|e| format!("tar → pigz: {e}"))?;
    if !tar.wait().map_err(|e| format!("tar: {e}"))?.success() {
        return Err("tar failed (its message is above)".into());
    }
    if !gz.wait().map_err(|e| format!("pigz: {e}"))?.success() {
        return Err("pigz failed".into());
    }
    Ok((diff_id, layer, size))
}

/// Copies `r` to `w` until `r` ends; returns the bytes' sha256 and their count. (The pump
/// thread owns pigz's stdin, so it closes when the copy is done and pigz sees the end.)
fn copy_hashing(r: &mut impl Read, w: &mut impl Write) -> std::io::Result<(String, u64)> {
    let (mut h, mut buf, mut size) = (Sha256::new(), vec![0u8; 1 << 20], 0u64);
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok((hex::encode(h.finalize()), size));
        }
        h.update(&buf[..n]);
        w.write_all(&buf[..n])?;
        size += n as u64;
    }
}
