//! `sparkctl image …`: build, inspect (push/pull arrive with the registry work).
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum ImageCommand {}

pub fn run(cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
