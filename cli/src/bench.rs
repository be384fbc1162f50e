//! `sparkctl bench …`: benchmarks, one module each.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// ib_write_bw on every rail alone, then on all rails at once, against the sysfs link rate
    #[command(after_help = "Exit code: the worst verdict (0 PASS, 1 WARN, 3 FAIL); 2 on bad input. Details: docs/fabric.md")]
    Rdma(crate::bench_rdma::RdmaArgs),
    /// NCCL bus bandwidth inside the serving image: per-node commands, and the report
    #[command(subcommand)]
    Nccl(crate::bench_nccl::NcclBenchCommand),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Rdma(args) => crate::bench_rdma::run(args),
        BenchCommand::Nccl(c) => crate::bench_nccl::run(c),
    }
}
