//! `sparkctl bench rdma`: from this machine, over the user's ssh, perftest's `ib_write_bw`
//! between two nodes on every rail alone, then on every rail at once (optionally `ib_write_lat`)
//! (`fleet::bench_rdma`); the exact commands are printed. Ctrl-C, TERM and HUP stop the remote
//! processes before sparkctl exits.
//!
//! Exit code = the worst verdict: 0 PASS, 1 WARN, 3 FAIL; 2 bad input (unknown node, node
//! unreachable, ssh refused, perftest missing).
use anyhow::{bail, Context};
use cluster::rdma_bench::{Options, Verdict};
use fleet::bench_rdma::Row;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(clap::Args)]
pub struct RdmaArgs {
    /// The cluster description
    #[arg(long, default_value = "cluster.toml")]
    cluster: PathBuf,
    /// The node that runs the perftest clients (default: the head)
    #[arg(long)]
    client: Option<String>,
    /// The node that runs the perftest servers (default: the first other node)
    #[arg(long)]
    server: Option<String>,
    /// Queue pairs per ib_write_bw run
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    qps: u32,
    /// Seconds per ib_write_bw run
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=600))]
    duration: u32,
    /// First TCP port of the perftest servers (one per rail)
    #[arg(long, default_value_t = 18515, value_parser = clap::value_parser!(u16).range(1024..))]
    port: u16,
    /// Pass when a rail reaches this fraction of its share of the sysfs link rate
    #[arg(long, default_value_t = 0.75, value_parser = ratio)]
    min_ratio: f64,
    /// Also measure latency per rail (ib_write_lat)
    #[arg(long)]
    lat: bool,
    /// Root prefix of the nodes' /sys (a node whose host /sys is mounted elsewhere)
    #[arg(long, default_value = "/")]
    remote_root: String,
    /// Print JSON instead of the table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ssh: crate::fleet_args::SshArgs,
}

fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!("`{s}` is not a fraction above 0 and at most 1 (e.g. 0.75)")),
    }
}

/// Set by the signal thread: stop the remote servers and leave.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn run(args: RdmaArgs) -> anyhow::Result<ExitCode> {
    watch_signals();
    let cluster = crate::render::load_cluster(&args.cluster)?;
    let client = match &args.client {
        Some(n) => cluster.node(n)?,
        None => cluster.head(),
    };
    let server = match &args.server {
        Some(n) => cluster.node(n)?,
        None => cluster.nodes.iter().find(|n| n.name != client.name).context("the cluster has one node: `bench rdma` needs two")?,
    };
    if client.name == server.name {
        bail!("`--client` and `--server` are both `{}`; name two nodes", client.name);
    }
    let opts = Options { qps: args.qps, duration_s: args.duration, base_port: args.port, min_ratio: args.min_ratio };
    let fleet::bench_rdma::Outcome { rows, commands, worst } =
        fleet::bench_rdma::run(&args.ssh.ssh(), client, server, &opts, args.lat, &args.remote_root, &INTERRUPTED)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc =
            serde_json::json!({ "client": client.name, "server": server.name, "options": opts, "worst": label(worst), "results": rows, "commands": commands });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default()).context("writing to stdout")?;
    } else {
        print_table(&mut out, &rows, &commands, worst).context("writing to stdout")?;
    }
    Ok(ExitCode::from(match worst {
        Verdict::Pass => 0,
        Verdict::Warn => 1,
        Verdict::Fail => 3,
    }))
}

fn label(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Warn => "WARN",
        Verdict::Fail => "FAIL",
    }
}

fn print_table(out: &mut impl Write, rows: &[Row], commands: &[String], worst: Verdict) -> std::io::Result<()> {
    writeln!(out, "commands run:")?;
    for c in commands {
        writeln!(out, "  {c}")?;
    }
    writeln!(out)?;
    writeln!(out, "{:<4}  {:<9} {:<9} {:<24} {:<24} {:>8} {:>9}  WHY", "", "TEST", "RAIL", "CLIENT", "SERVER", "Gb/s", "MIN Gb/s")?;
    for r in rows {
        let num = |v: Option<f64>| v.map_or("-".to_owned(), |g| format!("{g:.2}"));
        writeln!(
            out,
            "{:<4}  {:<9} {:<9} {:<24} {:<24} {:>8} {:>9}  {}",
            label(r.measured.verdict),
            r.test,
            r.rail,
            r.client,
            r.server,
            num(r.measured.gbps),
            num(r.measured.expected_min_gbps),
            r.measured.reason
        )?;
    }
    writeln!(out)?;
    writeln!(out, "{}", label(worst))
}

/// Ctrl-C, TERM and HUP set [`INTERRUPTED`] instead of killing sparkctl, so the remote servers
/// are stopped before it exits. The ssh children inherit the blocked signals: a Ctrl-C to the
/// process group does not cut them before sparkctl has stopped the remote processes.
fn watch_signals() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    if set.thread_block().is_ok() {
        std::thread::spawn(move || {
            if set.wait().is_ok() {
                INTERRUPTED.store(true, Ordering::Relaxed);
            }
        });
    }
}
