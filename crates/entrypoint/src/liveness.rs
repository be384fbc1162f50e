//! Liveness after ready: is the engine still producing tokens? vLLM's `/health` keeps answering
//! 200 while the engine is hung (a worker stopped with SIGSTOP: every completion hangs, `/health`
//! stays 200 for minutes), so the head asks for work instead.
//!
//! Every interval the head first reads `/metrics`: if vLLM's generated-token counter moved since
//! the last look, the engine is working and no probe is sent (a busy server gets no extra
//! request). Otherwise it sends a 1-token completion that must come back within the timeout.
//! The caller counts consecutive failures; `failures` in a row mean a wedged engine.

use crate::http;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Between two looks; zero turns liveness off.
    pub interval: Duration,
    /// For the 1-token completion.
    pub timeout: Duration,
    /// Consecutive failed looks that stop the group.
    pub failures: u32,
}

/// What one look found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Look {
    /// The token counter moved: working, nothing sent.
    Progress { tokens: f64 },
    /// The 1-token completion came back.
    Answered { millis: u128 },
    /// Neither: why.
    Failed(String),
}

impl Look {
    pub(crate) fn ok(&self) -> bool {
        !matches!(self, Look::Failed(_))
    }
}

/// The sum of vLLM's generated-token counter over all its label sets, from a Prometheus text
/// exposition; `None` when the server exposes no such counter (then every look probes).
pub(crate) fn generated_tokens(metrics: &str) -> Option<f64> {
    let mut total = None;
    for line in metrics.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        // `vllm:generation_tokens_total{engine="0",model_name="m"} 42.0` (labels optional).
        let Some(rest) = line.strip_prefix("vllm:generation_tokens_total") else { continue };
        let value = match rest.chars().next() {
            Some('{') => rest.rsplit_once('}').map(|(_, v)| v),
            Some(' ' | '\t') => Some(rest),
            _ => None, // another metric with this prefix
        };
        if let Some(v) = value.and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite()) {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

/// One look: progress since `last_tokens`, else a 1-token completion for `model`.
pub(crate) fn look(api: SocketAddr, model: &str, timeout: Duration, last_tokens: &mut Option<f64>) -> Look {
    let now = tokens(api);
    let moved = matches!((*last_tokens, now), (Some(before), Some(n)) if n > before);
    if now.is_some() {
        *last_tokens = now;
    }
    if moved {
        return Look::Progress { tokens: now.unwrap_or_default() };
    }
    let start = std::time::Instant::now();
    match crate::readiness::one_token(api, model, timeout) {
        Ok(()) => {
            let millis = start.elapsed().as_millis();
            // The probe's own token is no sign of other work: the next look compares with the
            // counter after it (else an idle engine would be probed every other look only).
            if let Some(after) = tokens(api) {
                *last_tokens = Some(after);
            }
            Look::Answered { millis }
        }
        Err(e) => Look::Failed(e),
    }
}

/// vLLM's generated-token counter now (`None`: no `/metrics`, or no such counter).
fn tokens(api: SocketAddr) -> Option<f64> {
    http::get(api, "/metrics", Duration::from_secs(5)).ok().filter(|r| r.status == 200).and_then(|r| generated_tokens(&r.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_counter_is_summed_over_label_sets_and_other_metrics_are_ignored() {
        let m = "# HELP vllm:generation_tokens_total Number of generation tokens processed.\n\
                 # TYPE vllm:generation_tokens_total counter\n\
                 vllm:generation_tokens_total{engine=\"0\",model_name=\"tiny\"} 40.0\n\
                 vllm:generation_tokens_total{engine=\"1\",model_name=\"tiny\"} 2.0\n\
                 vllm:generation_tokens_created{engine=\"0\",model_name=\"tiny\"} 1.7e9\n\
                 vllm:prompt_tokens_total{engine=\"0\",model_name=\"tiny\"} 999.0\n";
        assert_eq!(generated_tokens(m), Some(42.0));
        assert_eq!(generated_tokens("vllm:generation_tokens_total 7\n"), Some(7.0));
    }

    #[test]
    fn no_counter_or_garbage_gives_none() {
        assert_eq!(generated_tokens(""), None);
        assert_eq!(generated_tokens("# TYPE vllm:generation_tokens_total counter\n"), None);
        assert_eq!(generated_tokens("vllm:generation_tokens_total{engine=\"0\"} NaN\nvllm:generation_tokens_total{x} \n"), None);
        assert_eq!(generated_tokens("process_cpu_seconds_total 3.5\n"), None);
    }
}
