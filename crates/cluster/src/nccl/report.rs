//! Text for people: the per-process table of an [`Analysis`], the per-size table of nccl-tests
//! runs, the findings, and the report of a benchmark run (`nccl_bench.py`'s table and every
//! rank's NCCL debug log → per size busbw, per rank transport and HCAs, one verdict). Shared by
//! `sparkctl nccl …`, `sparkctl bench nccl report` and spark-entrypoint's benchmark mode.

use super::check::{self, Expect, Verdict};
use super::table::{self, Run};
use super::{Analysis, Watcher};
use crate::preflight::Status;
use serde::Serialize;
use std::fmt::Write;

/// One row per process: what NCCL said about it.
pub fn processes(a: &Analysis) -> String {
    let mut out = format!("{:<28} {:<6} {:<18} {:<14} {:<32} {:<4} DETAIL\n", "PROCESS", "RANK", "VERSION", "NET", "DEVICES", "GID");
    for p in &a.processes {
        let rank = match (p.rank, p.nranks) {
            (Some(r), Some(n)) => format!("{r}/{n}"),
            (Some(r), None) => r.to_string(),
            _ => "-".into(),
        };
        let net = p.net_name.as_deref().map_or_else(|| "-".to_owned(), |n| format!("NET/{n}"));
        let devs = if p.devices().is_empty() { "-".to_owned() } else { p.devices().join(",") };
        let mut detail = Vec::new();
        if let Some(u) = &p.ib_unusable {
            detail.push(format!("`{u}`"));
        }
        if !p.gdr.is_empty() {
            let g: Vec<String> = p.gdr.iter().map(|(d, s)| format!("{d} {s}")).collect();
            detail.push(format!("GDR: {}", g.join(", ")));
        }
        if !p.env.is_empty() {
            let e: Vec<String> = p.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            detail.push(format!("env: {}", e.join(" ")));
        }
        if p.warnings.count > 0 {
            detail.push(format!("{} warning(s)", p.warnings.count));
        }
        if p.errors.count > 0 {
            detail.push(format!("{} error trace(s)", p.errors.count));
        }
        let _ = writeln!(
            out,
            "{:<28} {:<6} {:<18} {:<14} {:<32} {:<4} {}",
            format!("{}:{}", p.host, p.pid),
            rank,
            p.version.as_deref().unwrap_or("-"),
            net,
            devs,
            p.gid_index.as_deref().unwrap_or("-"),
            detail.join("; ")
        );
    }
    out
}

/// One row per size and run.
pub fn sizes(runs: &[Run]) -> String {
    let mut out =
        format!("{:<12} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>7}\n", "COLLECTIVE", "SIZE", "TIME(us)", "ALGBW", "BUSBW", "BUSBW-IP", "AVG", "#WRONG");
    for r in runs {
        for row in &r.rows {
            let wrong = match (row.out_of_place.wrong, row.in_place.wrong) {
                (None, None) => "N/A".to_owned(),
                (a, b) => (a.unwrap_or(0) + b.unwrap_or(0)).to_string(),
            };
            let _ = writeln!(
                out,
                "{:<12} {:>10} {:>12.1} {:>9.2} {:>9.2} {:>9.2} {:>9} {:>7}",
                r.collective_name(),
                table::human_bytes(row.size),
                row.out_of_place.time_us,
                row.out_of_place.algbw,
                row.out_of_place.busbw,
                row.in_place.busbw,
                "",
                wrong
            );
        }
        if let Some(a) = r.avg_busbw {
            let _ = writeln!(out, "{:<12} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9.2} {:>7}", r.collective_name(), "avg", "", "", "", "", a, "");
        }
    }
    out
}

/// The findings, then one verdict line.
pub fn verdict(v: &Verdict) -> String {
    let mut out = String::new();
    for f in &v.findings {
        let _ = writeln!(out, "{:<5} {:<32} {}", f.status.to_string(), f.subject, f.detail);
    }
    let fails = v.findings.iter().filter(|f| f.status == Status::Fail).count();
    let warns = v.findings.iter().filter(|f| f.status == Status::Warn).count();
    let _ = writeln!(out, "VERDICT: {} ({fails} failed, {warns} warning(s))", if v.ok() { "PASS" } else { "FAIL" });
    out
}

/// A benchmark run, read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bench {
    pub(crate) runs: Vec<Run>,
    pub(crate) analysis: Analysis,
    /// The verdict against `cluster.toml`.
    pub verdict: Verdict,
}

/// `table`: what the benchmark printed (nccl-tests format); `debug_log`: every rank's
/// `NCCL_DEBUG=INFO` lines (empty with gloo, which has no NCCL).
pub fn bench(table_text: &str, debug_log: &str, expect: Option<&Expect>, min_busbw: f64) -> Bench {
    let runs = table::parse(table_text);
    let mut verdict = table::verdict(&runs, min_busbw);
    let mut w = Watcher::new();
    for line in debug_log.lines() {
        w.feed(line);
    }
    let analysis = w.into_analysis();
    if analysis.processes.is_empty() {
        // Without NCCL's lines nothing shows the ranks used IB: a cluster that expects it fails.
        let ib = expect.is_some_and(|e| e.transport == crate::model::Transport::Ib);
        verdict.findings.push(check::Finding {
            status: if ib { Status::Fail } else { Status::Warn },
            subject: "all".into(),
            detail: if ib {
                "no NCCL debug lines, so nothing shows NET/IB, which the cluster expects: the gloo backend (CPU, TCP) ran, or NCCL_DEBUG was off; run on the GPUs with NCCL_DEBUG=INFO".into()
            } else {
                "no NCCL debug lines: the gloo backend (CPU, TCP) ran, or NCCL_DEBUG was off".into()
            },
        });
    } else {
        verdict.findings.extend(check::check(&analysis, expect).findings);
    }
    Bench { runs, analysis, verdict }
}

/// The report as text: sizes, processes, verdict.
pub fn bench_text(b: &Bench) -> String {
    let mut out = sizes(&b.runs);
    if !b.analysis.processes.is_empty() {
        out.push('\n');
        out.push_str(&processes(&b.analysis));
    }
    out.push('\n');
    out.push_str(&verdict(&b.verdict));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Transport;
    use std::path::Path;

    /// Our own gloo run (world size 4, no NCCL lines) held to each transport of the example
    /// cluster: `ib` fails (nothing shows IB), `auto` and `socket` only warn.
    #[test]
    fn a_run_without_nccl_lines_fails_a_cluster_that_expects_ib() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let table = std::fs::read_to_string(root.join("fixtures/nccl_tests/own-h200-nccl-bench-ws4-gloo.txt")).unwrap();
        let mut expect = Expect::from_cluster(&crate::parse_file(&root.join("examples/cluster.toml")).unwrap());
        assert_eq!(expect.transport, Transport::Ib);
        let b = bench(&table, "", Some(&expect), 0.0);
        let f = b.verdict.findings.iter().find(|f| f.subject == "all").unwrap();
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.detail.contains("nothing shows NET/IB"), "{}", f.detail);
        assert!(!b.verdict.ok());
        assert!(bench_text(&b).contains("VERDICT: FAIL (1 failed, 0 warning(s))"), "{}", bench_text(&b));
        for t in [Transport::Auto, Transport::Socket] {
            expect.transport = t;
            let b = bench(&table, "", Some(&expect), 0.0);
            assert!(b.verdict.ok(), "{t:?}: {:?}", b.verdict);
            assert_eq!(b.verdict.findings.iter().find(|f| f.subject == "all").unwrap().status, Status::Warn);
        }
        assert!(bench(&table, "", None, 0.0).verdict.ok(), "no cluster to hold it to: a warning");
    }
}
