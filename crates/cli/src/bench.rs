//! `sparkctl bench …`: benchmarks, one module each.

use clap::Subcommand;
use std::process::ExitCode;

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum BenchCommand {
    /// ib_write_bw on every rail alone, then on all rails at once, against the sysfs link rate
    #[command(after_help = "Exit code: the worst verdict (0 PASS, 1 WARN, 3 FAIL); 2 on bad input. Details: docs/fabric.md")]
    Rdma(crate::bench_rdma::RdmaArgs),
    /// NCCL bus bandwidth inside the serving image: run it over ssh, or print per-node commands;
    /// the report
    #[command(subcommand)]
    Nccl(crate::bench_nccl::NcclBenchCommand),
    /// Load an OpenAI-compatible server (closed or open loop, sweeps) and report TTFT, ITL, TPOT,
    /// E2E, throughput and goodput
    Serve(crate::bench_serve::ServeArgs),
    /// Compare two `bench serve --output` files: change of each metric with a 95% interval
    Compare(crate::bench_serve::CompareArgs),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Rdma(args) => crate::bench_rdma::run(args),
        BenchCommand::Nccl(c) => crate::bench_nccl::run(c),
        BenchCommand::Serve(args) => crate::bench_serve::serve(args),
        BenchCommand::Compare(args) => crate::bench_serve::compare(args),
    }
}
