//! Paths of the shared test vectors and a runner for the real tools (the Nix ones for the
//! system tests only).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(std::path::Path::parent).expect("crates/cluster/ sits in the workspace").to_owned()
}

/// A shared test vector: a `cluster.toml` and the JSON every node's plan must equal, in Rust
/// (`cluster::plan::cluster_plans`) and in Nix (`nix/lib.nix` `clusterPlans`).
pub struct Vector {
    pub name: &'static str,
    pub toml: PathBuf,
    pub expected: PathBuf,
}

pub fn vectors() -> Vec<Vector> {
    let root = repo_root();
    let dir = root.join("crates/cluster/tests/vectors");
    vec![
        Vector { name: "two-sparks", toml: root.join("examples/cluster.toml"), expected: dir.join("two-sparks.json") },
        Vector { name: "three-nodes-native", toml: dir.join("three-nodes-native.toml"), expected: dir.join("three-nodes-native.json") },
        Vector { name: "two-sparks-ray", toml: dir.join("two-sparks-ray.toml"), expected: dir.join("two-sparks-ray.json") },
    ]
}

pub fn parse(v: &Vector) -> cluster::Cluster {
    cluster::parse_file(&v.toml).unwrap_or_else(|e| panic!("vector `{}` must be valid: {e}", v.name))
}

/// Set `SPARKCTL_BLESS=1` to rewrite expected files from the Rust side (then review the diff).
pub fn bless() -> bool {
    std::env::var_os("SPARKCTL_BLESS").is_some()
}

/// Runs a command, failing the test with its output when it cannot start or exits non-zero.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?} (install it: `cargo xtask deps`): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every node's plan as `nix/lib.nix` computes it, through the real `nix-instantiate`.
#[cfg(feature = "system-tests")]
pub fn nix_plans(toml: &Path) -> serde_json::Value {
    nix_eval("l.clusterPlans cfg", toml)
}

/// Evaluates `expr` with `l` = `nix/lib.nix` and `cfg` = the parsed `toml`, strictly,
/// as JSON, with the real `nix-instantiate`.
#[cfg(feature = "system-tests")]
pub fn nix_eval(expr: &str, toml: &Path) -> serde_json::Value {
    let lib = repo_root().join("nix/lib.nix");
    let args = [("lib", lib.as_os_str()), ("file", toml.as_os_str())];
    let out = run(&mut nix_instantiate(&args, &format!("{{ lib, file }}: let l = import lib; cfg = l.readCluster file; in {expr}")));
    serde_json::from_slice(&out.stdout).expect("nix-instantiate --json prints JSON")
}

/// `nix-instantiate --eval --strict --json` of the function `expr`, called with `args` as strings
/// (`--argstr NAME VALUE`).
pub fn nix_instantiate(args: &[(&str, &OsStr)], expr: &str) -> Command {
    let mut cmd = Command::new("nix-instantiate");
    cmd.args(["--eval", "--strict", "--json"]);
    for (name, value) in args {
        cmd.arg("--argstr").arg(name).arg(value);
    }
    cmd.arg("-E").arg(expr);
    cmd
}

pub fn rust_plans(c: &cluster::Cluster) -> serde_json::Value {
    serde_json::to_value(cluster::plan::cluster_plans(c)).expect("plans serialise")
}
