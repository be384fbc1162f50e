//! `cargo xtask …`: project automation (tests with their system dependencies, benchmarks).
//!
//! `cargo xtask test` is the one test command: the README gives it and `.ci/run` calls it. It
//! installs what the tests use (Debian packages, a Python venv with Ray, real vLLM on CPU
//! with a tiny model: `cargo xtask vllm`) before running them, so
//! a fresh machine needs nothing else.

mod bench;
mod bench_registry;
mod demo;
mod deps;
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
        _ => bail!("usage: cargo xtask <demo | test [CARGO_TEST_ARGS…] | deps | vllm | bench image|registry>"),
    }
}

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
    cmd!(sh, "cargo test --workspace --locked --no-fail-fast {extra...}").run()?;
    // Lints and formatting are part of the tests: a warning or an unformatted file fails CI.
    cmd!(sh, "cargo fmt --check").run()?;
    cmd!(sh, "cargo clippy --workspace --all-targets --locked -- -D warnings").run()?;
    Ok(())
}
