//! `sparkctl bench nccl run`: the bus-bandwidth run from this machine over ssh
//! (`fleet::bench_nccl`), its report as tables or JSON.

use crate::bench_nccl::TransportArg;
use crate::fleet_args::{FleetArgs, Printer};
use cluster::nccl::{report, table};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    /// The transport to measure (default: cluster.toml's); `socket` against `ib` is the field
    /// notes' comparison
    #[arg(long, value_enum)]
    transport: Option<TransportArg>,
    /// Largest size of the sweep (`256M`, `1G`; at most `4G`)
    #[arg(long)]
    max_bytes: Option<String>,
    /// busbw (GB/s, out-of-place, largest size) every collective must reach
    #[arg(long, default_value_t = table::SPARK_PAIR_MIN_BUSBW)]
    min_busbw: f64,
    /// Folder on this machine the head's results and every node's log are copied into
    #[arg(long, default_value = "nccl-bench")]
    out: PathBuf,
    /// Folder on the nodes the benchmark container writes into
    #[arg(long, default_value = "/var/tmp/sparkctl-nccl-bench")]
    results: String,
    /// Seconds the whole run may take before it is stopped on every node
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// JSON on stdout instead of tables (progress goes to stderr)
    #[arg(long)]
    json: bool,
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let (c, nodes) = a.fleet.load()?;
    let options = fleet::bench_nccl::Options {
        transport: a.transport.map(TransportArg::transport),
        max_bytes: a.max_bytes,
        min_busbw: a.min_busbw,
        out: a.out,
        results: a.results,
        timeout: Duration::from_secs(a.timeout),
    };
    let say = Printer { lines_to_stderr: a.json };
    let b = fleet::bench_nccl::run(&c, &nodes, &a.fleet.ssh.ssh(), &options, &say)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = serde_json::json!({ "ok": b.verdict.ok(), "min_busbw": options.min_busbw, "out": options.out, "report": b });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        write!(out, "{}", report::bench_text(&b))?;
    }
    drop(out);
    fleet::Report::line(&say, "serving stays stopped: `sparkctl up` starts it again");
    Ok(if b.verdict.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
