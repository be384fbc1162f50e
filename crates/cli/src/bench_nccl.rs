//! `sparkctl bench nccl`: the bus-bandwidth run inside the serving image. `run` does it from
//! this machine over ssh (the fleet layer of `up`/`down`): stops serving, starts the benchmark
//! container on every node, waits for the head, copies its results back, gives the verdict and
//! leaves no container behind. `commands` prints each node's `docker run` (the serving
//! container's, in `SPARK_MODE=nccl-bench`) for running it by hand; `report DIR` reads a results
//! folder rank 0 wrote (the table and every rank's NCCL debug log) and prints busbw per size,
//! each rank's transport and HCAs, and one verdict (exit 1 when it fails).

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use cluster::model::Transport;
use cluster::nccl::{bench, report, table};
use cluster::shell;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum NcclBenchCommand {
    /// Over ssh: stop serving, run the benchmark on every node, copy the head's results here,
    /// print the verdict
    #[command(
        after_help = "Exit code: 0 PASS, 1 FAIL (as `bench nccl report`); 2 when the run could not be made. Serving stays stopped: `sparkctl up` starts it again. Details: docs/nccl.md"
    )]
    Run(crate::bench_nccl_run::RunArgs),
    /// Print every node's `docker run` of the benchmark (run each on its node)
    Commands(CommandsArgs),
    /// Read a results folder (`table.txt`, `nccl-debug.log`) and give the verdict
    Report(ReportArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TransportArg {
    Ib,
    Socket,
}

#[derive(Args)]
pub struct CommandsArgs {
    /// The cluster description
    #[arg(long, default_value = "cluster.toml")]
    cluster: PathBuf,
    /// The transport to measure (default: cluster.toml's); `socket` against `ib` is the field
    /// notes' comparison
    #[arg(long, value_enum)]
    transport: Option<TransportArg>,
    /// Host folder the head's results land in
    #[arg(long, default_value = "/var/tmp/sparkctl-nccl-bench")]
    results: String,
    /// Largest size of the sweep (`256M`, `1G`; the script refuses more than 4G)
    #[arg(long)]
    max_bytes: Option<String>,
}

#[derive(Args)]
pub struct ReportArgs {
    /// The results folder the head wrote
    dir: PathBuf,
    /// Hold the ranks to this cluster description (transport, declared HCAs)
    #[arg(long)]
    cluster: Option<PathBuf>,
    /// busbw (GB/s, out-of-place, largest size) every collective must reach
    #[arg(long, default_value_t = table::SPARK_PAIR_MIN_BUSBW)]
    min_busbw: f64,
    /// JSON on stdout instead of tables
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: NcclBenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        NcclBenchCommand::Run(a) => crate::bench_nccl_run::run(a),
        NcclBenchCommand::Commands(a) => commands(a),
        NcclBenchCommand::Report(a) => report_cmd(a),
    }
}

fn commands(a: CommandsArgs) -> anyhow::Result<ExitCode> {
    let c = crate::render::load_cluster(&a.cluster)?;
    let transport = a.transport.map(TransportArg::transport);
    let argv = bench::docker_args_for(&c, transport, &a.results, a.max_bytes.as_deref());
    let line: Vec<String> = argv.iter().map(|w| shell::quote(w)).collect();
    let mut out = std::io::stdout().lock();
    for n in &c.nodes {
        writeln!(out, "# on {} ({}), after `sparkctl render env --node {}` is installed and serving is stopped:", n.name, n.role.as_str(), n.name)?;
        writeln!(out, "docker {}", line.join(" "))?;
    }
    writeln!(out, "# then, on {}: sparkctl bench nccl report {} --cluster {}", c.head().name, a.results, a.cluster.display())?;
    Ok(ExitCode::SUCCESS)
}

impl TransportArg {
    pub fn transport(self) -> Transport {
        match self {
            TransportArg::Ib => Transport::Ib,
            TransportArg::Socket => Transport::Socket,
        }
    }
}

fn report_cmd(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let expect = crate::nccl::expect(a.cluster.as_deref())?;
    let read = |f: &str| {
        let p = a.dir.join(f);
        std::fs::read(&p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .with_context(|| format!("reading `{}` (a results folder of `SPARK_MODE=nccl-bench`)", p.display()))
    };
    let b = report::bench(&read(bench::TABLE_FILE)?, &read(bench::DEBUG_FILE)?, expect.as_ref(), a.min_busbw);
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&serde_json::json!({ "ok": b.verdict.ok(), "min_busbw": a.min_busbw, "report": b }))?)?;
    } else {
        write!(out, "{}", report::bench_text(&b))?;
    }
    Ok(if b.verdict.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
