//! `cargo xtask bench …`: benchmarks side by side with peer tools; results go to BENCHMARKS.md.

use anyhow::{bail, Result};
use xshell::Shell;

pub fn run(_sh: &Shell, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        other => bail!("unknown benchmark {other:?}: expected `image` or `registry`"),
    }
}
