//! An OpenAI-compatible serving benchmark that knows its own limits.
//!
//! - [`sse`], [`http`]: sans-IO parsing of what the server sends.
//! - [`workload`], [`schedule`]: what each request asks for and when it is meant to leave;
//!   [`image`]: the image a vision-language model is sent with each prompt.
//! - [`client`]: the load generator (closed and open loop) on one current-thread runtime.
//! - [`metrics`]: per-request records and their aggregates (TTFT three ways, ITL, TPOT, E2E,
//!   queue delay, goodput).
//! - [`report`], [`plot`], [`compare`]: `run.json`, CSV, the summary table, SVG sweeps, A/B.
//! - [`tokens`]: exact prompt lengths counted by the server's own tokenizer (`/tokenize`).
//! - [`standin`]: a small server streaming vLLM's chunk shapes with delays it is told.
//! - [`calibrate`]: the client's own ceiling against a zero-latency stand-in.

#![warn(missing_docs, unreachable_pub)]

pub mod client;
pub mod compare;
pub mod http;
pub mod image;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod schedule;
pub mod sse;
pub mod standin;
pub mod tokens;
pub mod workload;

use std::sync::Arc;
use std::time::Duration;

/// What can go wrong in the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("server URL `{url}`: {why}")]
    /// The server URL is not one the client can use.
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        why: String,
    },
    #[error("a run needs a duration or a request count")]
    /// Neither a duration nor a request count bounds the run.
    Unbounded,
    #[error("starting the async runtime")]
    /// The runtime could not start.
    Runtime(#[source] std::io::Error),
    #[error("asking `{url}/v1/models`: {why}")]
    /// The server's model list could not be read.
    Models {
        /// The server URL.
        url: String,
        /// Why.
        why: String,
    },
    #[error("run file `{}`: {why}", file.display())]
    /// A run file could not be read.
    BadRunFile {
        /// The file.
        file: std::path::PathBuf,
        /// Why.
        why: String,
    },
    #[error("starting the calibration stand-in")]
    /// The calibration stand-in could not start.
    Standin(#[source] std::io::Error),
}

/// The calibration load: enough streams to keep one core busy, short prompts.
pub(crate) const CALIBRATION_CONCURRENCY: usize = 64;

/// Measures this client's ceiling on this machine: requests/s with 1-token answers, then chunks/s
/// with 256-token answers, each for `duration`, against a zero-latency stand-in on its own
/// thread. A run's figures near these measure the client, not the server.
pub fn calibrate(duration: Duration) -> Result<report::Calibration, Error> {
    let server = standin::spawn(standin::Config::default()).map_err(Error::Standin)?;
    let target = client::Target::from_url(&server.url())?;
    let spec = client::RunSpec {
        load: client::Load::Closed { concurrency: CALIBRATION_CONCURRENCY },
        duration: Some(duration),
        requests: None,
        warmup: Duration::from_millis(200),
        ramp_up: Duration::ZERO,
        stall_timeout: Duration::from_secs(10),
        seed: 1,
    };
    let mut workload = workload::Workload {
        api: workload::Api::Chat,
        model: "standin".into(),
        prompt_tokens: 16,
        prompt_words: None,
        prompt_tokens_exact: false,
        vocabulary: None,
        shared_prefix: 0,
        max_tokens: 1,
        ignore_eos: true,
        seed: 1,
        dataset: None,
        image: None,
    };
    let short = client::run(&target, &workload, &spec, Arc::default())?;
    workload.max_tokens = 256;
    let long = client::run(&target, &workload, &spec, Arc::default())?;
    let rate = |o: &client::Outcome, f: fn(&metrics::Record) -> u64| {
        if o.window_s > 0.0 {
            o.records.iter().filter(|r| r.ok()).map(f).sum::<u64>() as f64 / o.window_s
        } else {
            0.0
        }
    };
    Ok(report::Calibration { req_per_s: rate(&short, |_| 1), chunks_per_s: rate(&long, |r| r.chunks), concurrency: CALIBRATION_CONCURRENCY })
}
