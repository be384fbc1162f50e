//! The release workflow cannot run here; actionlint checks it (syntax, expressions, job
//! dependencies, action inputs) in every system-test run. `cargo xtask test` installs
//! actionlint. The recipes' pins are checked by every test run.

// actionlint runs in the system tests only: unused when they are compiled out.
#![cfg_attr(not(feature = "system-tests"), allow(dead_code))]

use std::path::Path;
use std::process::Command;

fn actionlint(file: &Path) -> std::process::Output {
    Command::new("actionlint")
        .arg("-no-color")
        .arg(file)
        .output()
        .expect("actionlint is on PATH (cargo xtask test installs it into target/py and puts it on PATH)")
}

#[cfg(feature = "system-tests")]
#[test]
fn release_workflow_passes_actionlint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(std::path::Path::parent).unwrap();
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
        "image build images/vllm-spark-ray.toml",
        "$IMAGE:$TAG-ray",
    ] {
        assert!(text.contains(needed), "the release workflow lost `{needed}`");
    }
    // The workflow installs the uv that xtask pins (the Python layers' cache key includes it).
    let deps = std::fs::read_to_string(root.join("xtask/src/deps.rs")).unwrap();
    let pin = deps.split('"').find(|s| s.starts_with("uv==")).expect("xtask pins uv");
    assert!(text.contains(&format!("install -q {pin}")), "release.yml must install {pin}");
}

/// No hand step: both recipes pin a real base by digest (not the old all-zero placeholder), the
/// same one, and differ only by the Ray overlay and the title.
#[test]
fn the_recipes_pin_a_real_base_and_differ_only_by_the_ray_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(std::path::Path::parent).unwrap();
    let plain = std::fs::read_to_string(root.join("images/vllm-spark.toml")).unwrap();
    let ray = std::fs::read_to_string(root.join("images/vllm-spark-ray.toml")).unwrap();
    let a = builder::recipe::Recipe::parse(&plain, &root.join("images/vllm-spark.toml")).unwrap();
    let b = builder::recipe::Recipe::parse(&ray, &root.join("images/vllm-spark-ray.toml")).unwrap();
    assert!(a.base.contains("nvcr.io/nvidia/vllm:26.") && a.base.contains("@sha256:"), "{}", a.base);
    assert!(!a.base.contains(&"0".repeat(64)), "placeholder digest");
    assert_eq!(a.base, b.base);
    assert_eq!(b.overlays, [a.overlays.clone(), vec!["ray".to_owned()]].concat());
    let body = |t: &str| {
        t[t.find("\noverlays = ").unwrap()..].lines().filter(|l| !l.starts_with("overlays = ") && !l.contains("image.title")).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(body(&plain), body(&ray), "the recipes must stay the same apart from the Ray overlay");
}

#[cfg(feature = "system-tests")]
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
