//! A run's results: the `run.json` every other view is made from (every request and the
//! aggregates of each load point, plus what the run was pointed at), its CSV and summary table.

use crate::client::{Load, RunSpec};
use crate::metrics::{Record, Summary};
use crate::workload::Workload;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Version of the `run.json` layout.
pub const FORMAT: u32 = 1;

/// The client's own ceiling, measured against a zero-latency stand-in on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Requests/s with 1-token answers.
    pub req_per_s: f64,
    /// Streamed chunks/s with long answers.
    pub chunks_per_s: f64,
    /// The closed-loop concurrency of the calibration.
    pub concurrency: usize,
}

/// One load point of a run (a sweep has several).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub(crate) spec: RunSpec,
    pub(crate) workload: Workload,
    /// The aggregates of this point.
    pub summary: Summary,
    /// Chunks/s the client handled at this point (to hold against the calibration).
    pub(crate) chunks_per_s: f64,
    /// Set when the point came within 70% of the client's calibrated ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_limit_warning: Option<String>,
    pub(crate) requests: Vec<Record>,
}

impl Point {
    /// A point from its load, workload, aggregates and records.
    pub fn new(spec: RunSpec, workload: Workload, summary: Summary, requests: Vec<Record>) -> Self {
        let chunks: u64 = requests.iter().map(|r| r.chunks).sum();
        let chunks_per_s = if summary.window_s > 0.0 { chunks as f64 / summary.window_s } else { 0.0 };
        Self { spec, workload, summary, chunks_per_s, client_limit_warning: None, requests }
    }

    /// Sets the warning when this point ran at ≥ 70% of the client's own ceiling.
    pub fn check_ceiling(&mut self, cal: &Calibration) {
        let req = self.summary.req_per_s / cal.req_per_s;
        let chunks = self.chunks_per_s / cal.chunks_per_s;
        if req >= 0.7 || chunks >= 0.7 {
            self.client_limit_warning = Some(format!(
                "the client ran at {:.0}% of its own ceiling ({:.0} of {:.0} req/s, {:.0} of {:.0} chunks/s): these figures may measure the client, not the server",
                req.max(chunks) * 100.0,
                self.summary.req_per_s,
                cal.req_per_s,
                self.chunks_per_s,
                cal.chunks_per_s
            ));
        }
    }

    /// A short name for the load: `c=8`, `r=20/s poisson`, `r=20/s constant ≤8`.
    pub fn load_label(&self) -> String {
        match self.spec.load {
            Load::Closed { concurrency } => format!("c={concurrency}"),
            Load::Open { rate, arrival, max_concurrency } => {
                let a = match arrival {
                    crate::schedule::Arrival::Constant => "constant".to_owned(),
                    crate::schedule::Arrival::Poisson => "poisson".to_owned(),
                    crate::schedule::Arrival::Gamma { burstiness } => format!("gamma {burstiness}"),
                };
                let cap = max_concurrency.map(|c| format!(" ≤{c}")).unwrap_or_default();
                format!("r={rate}/s {a}{cap}")
            }
        }
    }

    /// Whether two points ran the same load and workload (to pair them in a comparison).
    pub(crate) fn same_setting(&self, other: &Point) -> bool {
        self.spec.load == other.spec.load
            && self.workload.prompt_tokens == other.workload.prompt_tokens
            && self.workload.max_tokens == other.workload.max_tokens
    }
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    /// The run file's format version.
    pub format: u32,
    /// `servebench VERSION` (the client that measured).
    pub client: String,
    /// The server's URL.
    pub server_url: String,
    /// The model served.
    pub model: String,
    /// SHA-256 of the `cluster.toml` the server address came from, if any.
    #[serde(default)]
    pub cluster_config_sha256: Option<String>,
    /// When the run started (seconds since the Unix epoch; given by the caller).
    pub started_unix: u64,
    #[serde(default)]
    /// The client's calibrated ceiling, when measured.
    pub calibration: Option<Calibration>,
    /// Every synthetic prompt was exactly its requested length to the server's own tokenizer
    /// (`/tokenize`); `false`: about one token per word. Absent for dataset prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_exact: Option<bool>,
    /// Why lengths are not exact, when they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_note: Option<String>,
    /// The load points, in the order they ran.
    pub points: Vec<Point>,
}

impl RunFile {
    /// `servebench VERSION`, the name of this client.
    pub fn client_name() -> String {
        format!("servebench {}", env!("CARGO_PKG_VERSION"))
    }

    /// Reads a `run.json`, naming the file in the error.
    pub fn from_json(text: &str, file: &std::path::Path) -> Result<Self, crate::Error> {
        let run: RunFile = serde_json::from_str(text).map_err(|e| crate::Error::BadRunFile { file: file.to_owned(), why: e.to_string() })?;
        if run.format != FORMAT {
            return Err(crate::Error::BadRunFile { file: file.to_owned(), why: format!("format {} (this build reads {FORMAT})", run.format) });
        }
        Ok(run)
    }
}

/// The summary table: one row per load point.
pub fn table(run: &RunFile) -> String {
    let mut out = String::new();
    let header = [
        "load",
        "prompt",
        "ok",
        "err",
        "req/s",
        "out tok/s",
        "TTFT p50",
        "TTFT p99",
        "TTFT-content p50",
        "TPOT p50",
        "TPOT p99",
        "ITL p99",
        "E2E p50",
        "E2E p99",
        "queue p99",
        "goodput",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
    for p in &run.points {
        let s = &p.summary;
        let ms = |v: f64| format!("{v:.1}ms");
        rows.push(vec![
            p.load_label(),
            // 0: prompts came from a dataset file.
            if p.workload.prompt_tokens == 0 { "dataset".to_owned() } else { p.workload.prompt_tokens.to_string() },
            s.ok.to_string(),
            (s.requests - s.ok).to_string(),
            format!("{:.2}", s.req_per_s),
            format!("{:.1}", s.output_tok_per_s),
            ms(s.ttft_ms.p50),
            ms(s.ttft_ms.p99),
            ms(s.ttft_content_ms.p50),
            ms(s.tpot_ms.p50),
            ms(s.tpot_ms.p99),
            ms(s.itl_ms.p99),
            ms(s.e2e_ms.p50),
            ms(s.e2e_ms.p99),
            ms(s.queue_ms.p99),
            s.goodput.map(|g| format!("{:.0}%", g.fraction * 100.0)).unwrap_or_else(|| "-".into()),
        ]);
    }
    let widths: Vec<usize> = (0..header.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    for p in &run.points {
        for (kind, n) in &p.summary.errors {
            let _ = writeln!(out, "{}: {n} × {kind}", p.load_label());
        }
        if let Some(w) = &p.client_limit_warning {
            let _ = writeln!(out, "warning: {}: {w}", p.load_label());
        }
    }
    if let Some(c) = &run.calibration {
        let _ = writeln!(out, "client ceiling (calibrated here): {:.0} req/s, {:.0} chunks/s at concurrency {}", c.req_per_s, c.chunks_per_s, c.concurrency);
    }
    out
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{:.3}", v * 1000.0)).unwrap_or_default()
}

/// Every request of every point, one CSV row each (times in ms from the intended send).
pub fn requests_csv(run: &RunFile) -> String {
    let mut out = String::from(
        "point,load,prompt_tokens_requested,id,intended_s,queue_ms,ttft_byte_ms,ttft_ms,ttft_content_ms,tpot_ms,e2e_ms,output_tokens,output_tokens_from_usage,prompt_tokens,chunks,error\n",
    );
    for (i, p) in run.points.iter().enumerate() {
        for r in &p.requests {
            let _ = writeln!(
                out,
                "{i},{},{},{},{:.6},{:.3},{},{},{},{},{:.3},{},{},{},{},{}",
                p.load_label(),
                p.workload.prompt_tokens,
                r.id,
                r.intended_s,
                r.queue() * 1000.0,
                opt(r.ttft_byte()),
                opt(r.ttft()),
                opt(r.ttft_content()),
                opt(r.tpot()),
                r.e2e() * 1000.0,
                r.output_tokens,
                r.output_tokens_from_usage,
                r.prompt_tokens.map(|p| p.to_string()).unwrap_or_default(),
                r.chunks,
                r.error.map(|e| e.to_string()).unwrap_or_default(),
            );
        }
    }
    out
}
