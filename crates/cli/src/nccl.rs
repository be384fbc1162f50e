//! `sparkctl nccl check|tests`: NCCL debug logs and nccl-tests tables → a verdict. Thin over
//! `cluster::nccl`. Exit 0 when the verdict passes, 1 when it fails, 2 on bad input.

use anyhow::Context;
use clap::{Args, Subcommand};
use cluster::nccl::check::{self, Expect};
use cluster::nccl::{analyze_reader, report, table, Watcher};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum NcclCommand {
    /// Per process (host, pid, rank): NCCL version, transport, HCAs, GID index, GDR, settings,
    /// warnings; across processes: versions, transports, twin HCAs; against cluster.toml
    Check(CheckArgs),
    /// nccl-tests tables (`all_gather_perf`, `all_reduce_perf`, …): busbw per size and a verdict
    Tests(TestsArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// Logs with `NCCL_DEBUG=INFO` lines (any launcher's prefixes); none or `-`: stdin
    logs: Vec<PathBuf>,
    /// The cluster description to hold the ranks to (transport `ib` ⇒ every rank on IB over
    /// every declared HCA)
    #[arg(long)]
    cluster: Option<PathBuf>,
    /// JSON on stdout instead of tables
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TestsArgs {
    /// nccl-tests output; none or `-`: stdin
    logs: Vec<PathBuf>,
    /// busbw (GB/s, out-of-place, largest size) every run must reach; the default is NVIDIA's
    /// bar for two DGX Sparks
    #[arg(long, default_value_t = table::SPARK_PAIR_MIN_BUSBW)]
    min_busbw: f64,
    /// JSON on stdout instead of tables
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: NcclCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        NcclCommand::Check(a) => check_cmd(a),
        NcclCommand::Tests(a) => tests_cmd(a),
    }
}

/// `-` (or nothing at all) is stdin.
fn inputs(logs: &[PathBuf]) -> Vec<Option<&Path>> {
    if logs.is_empty() {
        return vec![None];
    }
    logs.iter().map(|p| (p.as_os_str() != "-").then_some(p.as_path())).collect()
}

fn open(p: Option<&Path>) -> anyhow::Result<Box<dyn Read>> {
    Ok(match p {
        None => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::fs::File::open(p).with_context(|| format!("opening log `{}`", p.display()))?),
    })
}

fn name(p: Option<&Path>) -> String {
    p.map_or_else(|| "stdin".to_owned(), |p| format!("`{}`", p.display()))
}

/// The expectations of `--cluster`, if given.
pub fn expect(cluster: Option<&Path>) -> anyhow::Result<Option<Expect>> {
    Ok(match cluster {
        Some(f) => Some(Expect::from_cluster(&crate::render::load_cluster(f)?)),
        None => None,
    })
}

fn check_cmd(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let expect = expect(a.cluster.as_deref())?;
    let mut w = Watcher::new();
    for p in inputs(&a.logs) {
        // Line by line: a log of hundreds of MB is never held whole.
        analyze_reader(&mut w, BufReader::with_capacity(1 << 16, open(p)?)).with_context(|| format!("reading {}", name(p)))?;
    }
    let analysis = w.into_analysis();
    let verdict = check::check(&analysis, expect.as_ref());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.json {
        // Streamed from the analysis itself: no second copy of 30,000 processes as a JSON tree.
        #[derive(serde::Serialize)]
        struct Out<'a> {
            ok: bool,
            analysis: &'a cluster::nccl::Analysis,
            findings: &'a [check::Finding],
        }
        serde_json::to_writer_pretty(&mut out, &Out { ok: verdict.ok(), analysis: &analysis, findings: &verdict.findings }).context("writing to stdout")?;
        writeln!(out).context("writing to stdout")?;
    } else {
        write!(out, "{}\n{}", report::processes(&analysis), report::verdict(&verdict)).context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(if verdict.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn tests_cmd(a: TestsArgs) -> anyhow::Result<ExitCode> {
    if !(a.min_busbw.is_finite() && a.min_busbw >= 0.0) {
        anyhow::bail!("`--min-busbw {}` is not a bandwidth: give GB/s as a number ≥ 0 (default {})", a.min_busbw, table::SPARK_PAIR_MIN_BUSBW);
    }
    let mut runs = Vec::new();
    for p in inputs(&a.logs) {
        let mut bytes = Vec::new();
        open(p)?.read_to_end(&mut bytes).with_context(|| format!("reading {}", name(p)))?;
        runs.extend(table::parse(&String::from_utf8_lossy(&bytes)));
    }
    let verdict = table::verdict(&runs, a.min_busbw);
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = serde_json::json!({ "ok": verdict.ok(), "min_busbw": a.min_busbw, "runs": runs, "findings": verdict.findings });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?).context("writing to stdout")?;
    } else {
        write!(out, "{}\n{}", report::sizes(&runs), report::verdict(&verdict)).context("writing to stdout")?;
    }
    Ok(if verdict.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
