//! `sparkctl render …` (owned by the cluster work; placeholder until it lands).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RenderArgs {}

pub fn run(_args: RenderArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`sparkctl render` is not available in this build")
}
