//! An OpenAI-compatible serving benchmark that knows its own limits.
//!
//! - [`sse`], [`http`]: sans-IO parsing of what the server sends.
//! - [`workload`], [`schedule`]: what each request asks for and when it is meant to leave.
//! - [`client`]: the load generator (closed and open loop) on one current-thread runtime.
//! - [`metrics`]: per-request records and their aggregates (TTFT three ways, ITL, TPOT, E2E,
//!   queue delay, goodput).
//! - [`standin`]: a small server streaming vLLM's chunk shapes with delays it is told.

pub mod client;
pub mod http;
pub mod metrics;
pub mod schedule;
pub mod sse;
pub mod standin;
pub mod workload;

/// What can go wrong in the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("server URL `{url}`: {why}")]
    BadUrl { url: String, why: String },
    #[error("a run needs a duration or a request count")]
    Unbounded,
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
}
