//! `A.json` against `B.json`: for each load point both ran, the change of each metric's mean with
//! a 95% confidence interval. Per-request metrics (TTFT, TPOT, E2E) use Welch's interval on the
//! two samples; throughput, one number per run, uses batch means: each run's measured window cut
//! into ten slices by request end time, output tok/s per slice.

use crate::metrics::Record;
use crate::report::{Point, RunFile};
use serde::Serialize;
use std::fmt::Write as _;

/// Normal quantile for a two-sided 95% interval. Welch's t quantile would be wider for small
/// samples; the table says `n` so a reader can judge, and below 10 requests no interval is given.
const Z95: f64 = 1.96;
const BATCHES: usize = 10;

/// One metric compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Delta {
    pub(crate) metric: &'static str,
    pub(crate) a: f64,
    pub(crate) b: f64,
    /// `b − a` as a fraction of `a`.
    pub(crate) change: f64,
    /// 95% interval of the change (fractions of `a`), when the samples allow one.
    pub(crate) ci: Option<(f64, f64)>,
}

impl Delta {
    /// The interval excludes zero.
    pub(crate) fn significant(&self) -> bool {
        self.ci.is_some_and(|(lo, hi)| lo > 0.0 || hi < 0.0)
    }
}

/// One load point present in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointDelta {
    pub(crate) label: String,
    pub(crate) prompt_tokens: u64,
    pub(crate) deltas: Vec<Delta>,
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var)
}

fn delta(metric: &'static str, a: &[f64], b: &[f64]) -> Option<Delta> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    if ma == 0.0 {
        return None;
    }
    let ci = (a.len() >= BATCHES && b.len() >= BATCHES).then(|| {
        let half = Z95 * (va / a.len() as f64 + vb / b.len() as f64).sqrt();
        ((mb - ma - half) / ma, (mb - ma + half) / ma)
    });
    Some(Delta { metric, a: ma, b: mb, change: (mb - ma) / ma, ci })
}

fn ok_values(p: &Point, f: impl Fn(&Record) -> Option<f64>) -> Vec<f64> {
    p.requests.iter().filter(|r| r.ok()).filter_map(f).map(|s| s * 1000.0).collect()
}

/// Output tok/s in ten equal slices of the point's window, by request end time.
fn throughput_batches(p: &Point) -> Vec<f64> {
    let ok: Vec<&Record> = p.requests.iter().filter(|r| r.ok()).collect();
    let (Some(start), Some(end)) = (ok.iter().map(|r| r.intended_s).min_by(f64::total_cmp), ok.iter().map(|r| r.end_s).max_by(f64::total_cmp)) else {
        return Vec::new();
    };
    let width = (end - start) / BATCHES as f64;
    if width <= 0.0 {
        return Vec::new();
    }
    let mut tokens = [0u64; BATCHES];
    for r in ok {
        let i = (((r.end_s - start) / width) as usize).min(BATCHES - 1);
        tokens[i] += r.output_tokens;
    }
    tokens.iter().map(|&t| t as f64 / width).collect()
}

/// Pairs the points of two runs and compares each pair.
pub fn compare(a: &RunFile, b: &RunFile) -> Vec<PointDelta> {
    let mut out = Vec::new();
    for pa in &a.points {
        let Some(pb) = b.points.iter().find(|pb| pa.same_setting(pb)) else { continue };
        let mut deltas = Vec::new();
        let ta = throughput_batches(pa);
        let tb = throughput_batches(pb);
        deltas.extend(delta("output tok/s", &ta, &tb).map(|mut d| {
            // The run's own figure (tokens over the whole window) is the headline; the batches
            // only give the interval.
            d.a = pa.summary.output_tok_per_s;
            d.b = pb.summary.output_tok_per_s;
            if d.a > 0.0 {
                d.change = (d.b - d.a) / d.a;
            }
            d
        }));
        deltas.extend(delta("TTFT ms", &ok_values(pa, Record::ttft), &ok_values(pb, Record::ttft)));
        deltas.extend(delta("TTFT-content ms", &ok_values(pa, Record::ttft_content), &ok_values(pb, Record::ttft_content)));
        deltas.extend(delta("TPOT ms", &ok_values(pa, Record::tpot), &ok_values(pb, Record::tpot)));
        deltas.extend(delta("E2E ms", &ok_values(pa, |r| Some(r.e2e())), &ok_values(pb, |r| Some(r.e2e()))));
        out.push(PointDelta { label: pa.load_label(), prompt_tokens: pa.workload.prompt_tokens, deltas });
    }
    out
}

/// The comparison as a table.
pub fn table(points: &[PointDelta]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<22} {:>7}  {:<16} {:>12} {:>12} {:>9}  {:<22}", "load", "prompt", "metric", "A (mean)", "B (mean)", "change", "95% CI of change");
    for p in points {
        for d in &p.deltas {
            let ci = d.ci.map(|(lo, hi)| format!("[{:+.1}%, {:+.1}%]{}", lo * 100.0, hi * 100.0, if d.significant() { " *" } else { "" }));
            let _ = writeln!(
                out,
                "{:<22} {:>7}  {:<16} {:>12.2} {:>12.2} {:>+8.1}%  {}",
                p.label,
                p.prompt_tokens,
                d.metric,
                d.a,
                d.b,
                d.change * 100.0,
                ci.unwrap_or_else(|| "(too few requests)".into())
            );
        }
    }
    let _ = writeln!(out, "* the interval excludes zero");
    out
}
