//! `cargo xtask …`: project automation (tests with their system dependencies, benchmarks).
//!
//! `cargo xtask test` is the one test command: the README gives it and `.ci/run` calls it. It
//! installs what the tests use (Debian packages, a Python venv with Ray, real vLLM on CPU
//! with a tiny model: `cargo xtask vllm`) before running them, so
//! a fresh machine needs nothing else.

mod bench;
mod bench_layers;
mod bench_nccl;
mod bench_plan;
mod bench_registry;
mod bench_serve;
mod demo;
mod deps;
mod nixos_real_lib;
mod vllm;

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match args.first().map(String::as_str) {
        Some("test") => test(&sh, &args[1..]),
        Some("deps") => deps::install(&sh).and_then(|()| vllm::run(&sh)),
        Some("vllm") => vllm::run(&sh),
        Some("bench") => bench::run(&sh, &args[1..]),
        Some("demo") => demo::run(&sh),
        Some("nixos-real-lib") => nixos_real_lib::run(&sh, &args[1..]),
        _ => bail!("usage: cargo xtask <demo | test [CARGO_TEST_ARGS…] | deps | vllm | nixos-real-lib PATH | bench image|registry|nccl-log|serve|plan>"),
    }
}

/// Each crate's feature that compiles its system tests.
const SYSTEM_TESTS: &str = "builder/system-tests,cluster/system-tests,entrypoint/system-tests,cli/system-tests,xtask/system-tests";

fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

/// Installs the dependencies, then runs every test of the workspace (none is skipped: a missing
/// tool fails the test that needs it).
fn test(sh: &Shell, extra: &[String]) -> Result<()> {
    deps::install(sh)?;
    // Real vLLM on CPU and its tiny model, for the entrypoint's end-to-end tests.
    vllm::run(sh)?;
    let _path = sh.push_env("PATH", deps::path_with_venv(sh)?);
    // The mutation fuzzers (`fuzz_*` tests, crates/test-support/src/fuzz.rs) run 2 s per target in
    // CI, ten targets on parallel test threads; set the variable higher for a longer hunt.
    // Snapshot tests (insta) fail on a missing or changed snapshot and write nothing: the
    // committed `snapshots/` are the expectation. `INSTA_UPDATE=always cargo test` rewrites them
    // (then review the diff).
    let _insta = sh.push_env("INSTA_UPDATE", "no");
    let _fuzz = sh.push_env("SPARKCTL_FUZZ_SECONDS", std::env::var("SPARKCTL_FUZZ_SECONDS").unwrap_or_else(|_| "2".into()));
    // Tests must not write into the real home: Ray keeps `~/.ray/auth_token` there (which turns
    // token authentication on for every later Ray cluster on the machine), vLLM and sparkctl keep
    // caches. The suite gets its own HOME under target/ (kept between runs, so caches made by
    // tests stay warm); cargo, rustup and pyenv keep their own folders.
    let real_home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let keep = |var: &str, dir: &str| std::env::var(var).unwrap_or_else(|_| format!("{real_home}/{dir}"));
    let (cargo_home, rustup_home) = (keep("CARGO_HOME", ".cargo"), keep("RUSTUP_HOME", ".rustup"));
    let _cargo_home = sh.push_env("CARGO_HOME", cargo_home);
    let _rustup_home = sh.push_env("RUSTUP_HOME", rustup_home);
    // A pyenv `python3` shim finds its versions through PYENV_ROOT, else through HOME.
    let pyenv = keep("PYENV_ROOT", ".pyenv");
    let _pyenv = std::path::Path::new(&pyenv).is_dir().then(|| sh.push_env("PYENV_ROOT", &pyenv));
    let test_home = project_root().join("target/test-home");
    std::fs::create_dir_all(&test_home)?;
    let _home = sh.push_env("HOME", &test_home);
    // Free disk decides whether the Docker tests can run (the real-vLLM image peaks at ~13 GB):
    // shown first, so a failed run says how much there was.
    let _ = cmd!(sh, "df -h {test_home} /var/lib/docker").run();
    // Every test: the hermetic set (what a plain `cargo test` runs, anywhere) and the system set
    // (root, Docker, network namespaces, a registry, Nix, Ray, vLLM), which each crate compiles
    // only with its `system-tests` feature: a compile-time gate, so nothing is skipped at run time.
    cmd!(sh, "cargo test --workspace --locked --no-fail-fast --features {SYSTEM_TESTS} {extra...}").run()?;
    // Lints and formatting are part of the tests: a warning or an unformatted file fails CI. Both
    // sets compile clean (a helper only the system tests use must not warn in the hermetic build).
    cmd!(sh, "cargo fmt --check").run()?;
    cmd!(sh, "cargo clippy --workspace --all-targets --locked --features {SYSTEM_TESTS} -- -D warnings").run()?;
    cmd!(sh, "cargo clippy --workspace --all-targets --locked -- -D warnings").run()?;
    Ok(())
}
