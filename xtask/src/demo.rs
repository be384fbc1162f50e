//! `cargo xtask demo`: the main job on a machine with no registry access. Builds sparkctl and a
//! static spark-entrypoint, makes a stand-in base (busybox, via `docker import` + `docker save`,
//! so the base is a real `docker save` archive; `deps::install` provides busybox), builds `images/vllm-spark.toml` onto it for
//! linux/amd64, loads it into Docker and shows what the image holds.

use anyhow::Result;
use xshell::{cmd, Shell};

pub const ENTRYPOINT_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds the static entrypoint for this machine and returns its path.
pub fn build_entrypoint(sh: &Shell) -> Result<std::path::PathBuf> {
    let _flags = sh.push_env("RUSTFLAGS", "-C target-feature=+crt-static");
    cmd!(sh, "cargo build --locked --profile release-small -p entrypoint --target {ENTRYPOINT_TARGET}").run()?;
    Ok(sh.current_dir().join(format!("target/{ENTRYPOINT_TARGET}/release-small/spark-entrypoint")))
}

pub fn run(sh: &Shell) -> Result<()> {
    // The stand-in base needs busybox-static; install what the project uses, as the tests do.
    crate::deps::install(sh)?;
    cmd!(sh, "cargo build --release --locked -p cli").run()?;
    let entrypoint = build_entrypoint(sh)?;
    let sparkctl = sh.current_dir().join("target/release/sparkctl");
    let dir = sh.current_dir().join("target/demo");
    sh.create_dir(&dir)?;

    // Stand-in base: a busybox rootfs imported into Docker and saved back out.
    let rootfs = dir.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    sh.create_dir(rootfs.join("bin"))?;
    sh.copy_file("/bin/busybox", rootfs.join("bin/busybox"))?;
    for tool in ["sh", "ls", "cat", "env", "stat", "test"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool))?;
    }
    let base_tar = dir.join("base.tar");
    cmd!(sh, "tar -C {rootfs} -cf {dir}/rootfs.tar .").run()?;
    cmd!(sh, "docker import {dir}/rootfs.tar sparkctl/standin-base:demo").run()?;
    cmd!(sh, "docker save -o {base_tar} sparkctl/standin-base:demo").run()?;

    let revision = cmd!(sh, "git rev-parse HEAD").read().unwrap_or_else(|_| "unknown".into());
    let art = format!("/usr/local/bin/spark-entrypoint@linux/amd64={}", entrypoint.display());
    let layout = format!("oci:{}/vllm-spark:demo", dir.display());
    let archive = format!("docker-archive:{}/vllm-spark-amd64.tar:sparkctl/vllm-spark:demo", dir.display());
    let _ = std::fs::remove_dir_all(dir.join("vllm-spark"));
    cmd!(sh, "{sparkctl} image build images/vllm-spark.toml --base docker-archive:{base_tar} --platform linux/amd64 --artifact {art} --label org.opencontainers.image.revision={revision} --output {layout} --output {archive}").run()?;
    cmd!(sh, "{sparkctl} image inspect {layout}").run()?;
    cmd!(sh, "docker load -i {dir}/vllm-spark-amd64.tar").run()?;
    cmd!(sh, "docker run --rm sparkctl/vllm-spark:demo --help").run()?;
    eprintln!("\ndemo image: {layout} and sparkctl/vllm-spark:demo in Docker (a stand-in base: see docs/image.md for the real one)");
    Ok(())
}
