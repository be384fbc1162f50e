//! `sparkctl bench …`: benchmarks, one module each.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// NCCL bus bandwidth inside the serving image: per-node commands, and the report
    #[command(subcommand)]
    Nccl(crate::bench_nccl::NcclBenchCommand),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Nccl(c) => crate::bench_nccl::run(c),
    }
}
