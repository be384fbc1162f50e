//! The release workflow cannot run here; actionlint checks it (syntax, expressions, job
//! dependencies, action inputs) in every test run. `cargo xtask test` installs actionlint.

use std::path::Path;
use std::process::Command;

fn actionlint(file: &Path) -> std::process::Output {
    Command::new("actionlint")
        .arg("-no-color")
        .arg(file)
        .output()
        .expect("actionlint is on PATH (cargo xtask test installs it into target/py and puts it on PATH)")
}

#[test]
fn release_workflow_passes_actionlint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let workflow = root.join(".github/workflows/release.yml");
    let out = actionlint(&workflow);
    assert!(out.status.success(), "actionlint found problems:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&workflow).unwrap();
    for needed in [
        "tags: [\"v*\"]",
        "aarch64-unknown-linux-musl",
        "x86_64-unknown-linux-musl",
        "image build images/vllm-spark.toml",
        "--output \"docker://",
        "SPARKCTL_REGISTRY_PASSWORD",
    ] {
        assert!(text.contains(needed), "the release workflow lost `{needed}`");
    }
}

#[test]
fn actionlint_rejects_a_broken_workflow() {
    // Proves the check above can fail: a job needing one that does not exist, a bad expression.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "on: push\njobs:\n  a:\n    needs: missing\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope( }}\n").unwrap();
    let out = actionlint(&bad);
    assert!(!out.status.success(), "actionlint accepted a broken workflow");
    assert!(String::from_utf8_lossy(&out.stdout).contains("missing"), "{}", String::from_utf8_lossy(&out.stdout));
}
