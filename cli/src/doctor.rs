//! `sparkctl doctor` (owned by the entrypoint/preflight work; placeholder until it lands).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DoctorArgs {}

pub fn run(_args: DoctorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`sparkctl doctor` is not available in this build")
}
