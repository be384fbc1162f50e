//! Per-request records and their aggregates. All times are seconds since the run started; every
//! latency is taken from the request's intended send time (see `client`), and the queue delay
//! (`sent − intended`) is reported on its own too.
//!
//! - TTFT (byte): to the first byte of the response.
//! - TTFT: to the first chunk carrying output (content or reasoning); the `role`-only chunk with
//!   empty content is not output.
//! - TTFT (content): to the first chunk with non-empty answer content: reasoning models think
//!   first, and this is when a user sees the answer begin.
//! - ITL: gap between consecutive output-carrying chunks.
//! - TPOT: `(last token − first token) / (output tokens − 1)`.
//! - E2E: to the end of the stream.
//!
//! Output tokens come from the server's `usage` when it sends one (continuous or final), else one
//! per output chunk (or `token_ids` when listed).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// Could not connect.
    Connect,
    /// The server closed or reset the connection mid-response.
    Reset,
    /// No byte for the stall timeout.
    Stall,
    /// A non-200 status.
    Http(u16),
    /// Bytes that are not HTTP/SSE/OpenAI chunks, or an in-stream `error` event.
    Protocol,
    /// The stream ended with neither a finish reason nor `[DONE]`.
    Truncated,
    /// The stream ended cleanly without any output token.
    NoOutput,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorKind::Connect => f.write_str("connect"),
            ErrorKind::Reset => f.write_str("reset"),
            ErrorKind::Stall => f.write_str("stall"),
            ErrorKind::Http(s) => write!(f, "http_{s}"),
            ErrorKind::Protocol => f.write_str("protocol"),
            ErrorKind::Truncated => f.write_str("truncated"),
            ErrorKind::NoOutput => f.write_str("no_output"),
        }
    }
}

impl std::str::FromStr for ErrorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "connect" => Self::Connect,
            "reset" => Self::Reset,
            "stall" => Self::Stall,
            "protocol" => Self::Protocol,
            "truncated" => Self::Truncated,
            "no_output" => Self::NoOutput,
            other => Self::Http(other.strip_prefix("http_").and_then(|c| c.parse().ok()).ok_or_else(|| format!("unknown error kind `{other}`"))?),
        })
    }
}

impl Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ErrorKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One measured request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub(crate) id: u64,
    /// When the request was meant to be sent (seconds from the run's start).
    pub intended_s: f64,
    pub(crate) sent_s: f64,
    pub(crate) first_byte_s: Option<f64>,
    /// When the first output token arrived, if any.
    pub first_token_s: Option<f64>,
    /// When the first answer text arrived, if any.
    pub first_content_s: Option<f64>,
    /// When the last output token arrived, if any.
    pub last_token_s: Option<f64>,
    pub(crate) end_s: f64,
    /// Output tokens of the answer.
    pub output_tokens: u64,
    /// Whether `output_tokens` is the server's `usage` (else counted from chunks).
    pub output_tokens_from_usage: bool,
    /// The server's `usage.prompt_tokens`, when sent.
    pub prompt_tokens: Option<u64>,
    pub(crate) requested_prompt_tokens: u64,
    /// Streamed chunks received.
    pub chunks: u64,
    /// Why the request failed, if it did.
    pub error: Option<ErrorKind>,
}

impl Record {
    pub(crate) fn ok(&self) -> bool {
        self.error.is_none()
    }
    /// Seconds the request waited between its intended and its actual send.
    pub fn queue(&self) -> f64 {
        self.sent_s - self.intended_s
    }
    pub(crate) fn ttft_byte(&self) -> Option<f64> {
        self.first_byte_s.map(|t| t - self.intended_s)
    }
    pub(crate) fn ttft(&self) -> Option<f64> {
        self.first_token_s.map(|t| t - self.intended_s)
    }
    pub(crate) fn ttft_content(&self) -> Option<f64> {
        self.first_content_s.map(|t| t - self.intended_s)
    }
    pub(crate) fn e2e(&self) -> f64 {
        self.end_s - self.intended_s
    }
    pub(crate) fn tpot(&self) -> Option<f64> {
        match (self.first_token_s, self.last_token_s) {
            (Some(a), Some(b)) if self.output_tokens > 1 => Some((b - a) / (self.output_tokens - 1) as f64),
            _ => None,
        }
    }
}

/// Mean and percentiles of one metric, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Stats {
    pub(crate) n: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    pub(crate) p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

/// Linear interpolation between closest ranks (numpy's default), on sorted values.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl Stats {
    /// From values in seconds.
    pub(crate) fn of_secs(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).map(|x| x * 1000.0).collect();
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        Self {
            n: v.len() as u64,
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: percentile(&v, 50.0),
            p90: percentile(&v, 90.0),
            p99: percentile(&v, 99.0),
            max: v[v.len() - 1],
        }
    }
}

/// Service-level objectives a request must all meet to count toward goodput.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Slo {
    pub(crate) ttft_s: Option<f64>,
    pub(crate) tpot_s: Option<f64>,
    pub(crate) e2e_s: Option<f64>,
}

impl Slo {
    pub(crate) fn is_empty(&self) -> bool {
        self.ttft_s.is_none() && self.tpot_s.is_none() && self.e2e_s.is_none()
    }

    pub(crate) fn met(&self, r: &Record) -> bool {
        let under = |v: Option<f64>, limit: Option<f64>| limit.is_none_or(|l| v.is_some_and(|v| v <= l));
        r.ok() && under(r.ttft(), self.ttft_s) && under(r.tpot(), self.tpot_s) && under(Some(r.e2e()), self.e2e_s)
    }
}

/// Reads `ttft=2s,tpot=100ms,e2e=30s`.
pub fn parse_slo(text: &str) -> Result<Slo, String> {
    let mut slo = Slo::default();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("`{part}` is not NAME=DURATION"))?;
        let secs = parse_duration(v)?;
        match k.trim() {
            "ttft" => slo.ttft_s = Some(secs),
            "tpot" => slo.tpot_s = Some(secs),
            "e2e" => slo.e2e_s = Some(secs),
            other => return Err(format!("unknown objective `{other}` (expected ttft, tpot or e2e)")),
        }
    }
    Ok(slo)
}

/// Reads `250ms`, `2s`, `1.5s`, `3m` as seconds.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(format!("`{t}` has no unit (use ms, s or m)"));
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v * scale),
        _ => Err(format!("`{t}` is not a duration")),
    }
}

/// Goodput: requests that met every objective.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    pub(crate) slo: Slo,
    /// Requests that met every objective.
    pub requests: u64,
    pub(crate) req_per_s: f64,
    pub(crate) fraction: f64,
}

/// The aggregates of one load point.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Measured requests.
    pub requests: u64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Failed requests per error kind.
    pub errors: BTreeMap<String, u64>,
    /// Seconds from the first measured intended send to the last measured end.
    pub(crate) window_s: f64,
    /// Successful requests per second over the window.
    pub req_per_s: f64,
    /// Output tokens per second over the window.
    pub output_tok_per_s: f64,
    pub(crate) input_tok_per_s: f64,
    /// Output tokens of successful requests from the server's `usage` / counted from chunks.
    pub output_tokens_usage: u64,
    /// Output tokens of successful requests counted from the chunks.
    pub output_tokens_counted: u64,
    /// Time to the first byte of the response.
    pub ttft_byte_ms: Stats,
    /// Time to the first output token.
    pub ttft_ms: Stats,
    /// Time to the first answer text.
    pub ttft_content_ms: Stats,
    /// Gaps between output-carrying chunks.
    pub itl_ms: Stats,
    /// Time per output token after the first.
    pub tpot_ms: Stats,
    /// Time from intended send to the end of the response.
    pub e2e_ms: Stats,
    /// Time between intended and actual send.
    pub queue_ms: Stats,
    /// Requests that met the objectives, when objectives were given.
    pub goodput: Option<Goodput>,
}

/// Aggregates the records of one load point.
pub fn summarize(records: &[Record], itls: &[f32], window_s: f64, slo: &Slo) -> Summary {
    let ok: Vec<&Record> = records.iter().filter(|r| r.ok()).collect();
    let mut errors = BTreeMap::new();
    for r in records {
        if let Some(e) = r.error {
            *errors.entry(e.to_string()).or_insert(0) += 1;
        }
    }
    let per_s = |x: f64| if window_s > 0.0 { x / window_s } else { 0.0 };
    let out: u64 = ok.iter().map(|r| r.output_tokens).sum();
    let input: u64 = ok.iter().map(|r| r.prompt_tokens.unwrap_or(r.requested_prompt_tokens)).sum();
    let goodput = (!slo.is_empty()).then(|| {
        let n = records.iter().filter(|r| slo.met(r)).count() as u64;
        Goodput { slo: *slo, requests: n, req_per_s: per_s(n as f64), fraction: if records.is_empty() { 0.0 } else { n as f64 / records.len() as f64 } }
    });
    Summary {
        requests: records.len() as u64,
        ok: ok.len() as u64,
        errors,
        window_s,
        req_per_s: per_s(ok.len() as f64),
        output_tok_per_s: per_s(out as f64),
        input_tok_per_s: per_s(input as f64),
        output_tokens_usage: ok.iter().filter(|r| r.output_tokens_from_usage).map(|r| r.output_tokens).sum(),
        output_tokens_counted: ok.iter().filter(|r| !r.output_tokens_from_usage).map(|r| r.output_tokens).sum(),
        ttft_byte_ms: Stats::of_secs(ok.iter().filter_map(|r| r.ttft_byte())),
        ttft_ms: Stats::of_secs(ok.iter().filter_map(|r| r.ttft())),
        ttft_content_ms: Stats::of_secs(ok.iter().filter_map(|r| r.ttft_content())),
        itl_ms: Stats::of_secs(itls.iter().map(|&x| f64::from(x))),
        tpot_ms: Stats::of_secs(ok.iter().filter_map(|r| r.tpot())),
        e2e_ms: Stats::of_secs(ok.iter().map(|r| r.e2e())),
        queue_ms: Stats::of_secs(records.iter().map(|r| r.queue())),
        goodput,
    }
}
