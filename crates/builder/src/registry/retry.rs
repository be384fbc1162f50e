//! Backoff for transient failures: connection errors, 429 (honouring `Retry-After`) and 5xx.

use super::code::ErrorCode;
use crate::error::Error;
use std::time::Duration;

#[derive(Debug, Clone)]
/// How failed registry requests are retried: exponential backoff with jitter.
pub struct RetryPolicy {
    /// Tries in all, the first included (1 = no retry).
    pub attempts: u32,
    /// The backoff's unit: retry `n` waits up to `base · 2^n`.
    pub base: Duration,
    /// The longest wait, `Retry-After` included.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 5, base: Duration::from_millis(250), max: Duration::from_secs(20) }
    }
}

impl RetryPolicy {
    /// Wait before retry number `retry` (1-based): `base · 2^retry` capped at `max`, times a jitter in [0.5, 1), at least what
    /// the server asked for with `Retry-After` (capped at `max`).
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        // Jitter spreads parallel transfers that failed together.
        let jittered = backoff::Backoff { first: self.base.saturating_mul(2), max: self.max, jitter: 0.5..1.0 }.delay(retry);
        retry_after.map_or(jittered, |ra| ra.min(self.max).max(jittered))
    }

    /// Whether an HTTP status is worth retrying (decided before the body is read).
    pub(crate) fn retryable(status: u16) -> bool {
        matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
    }

    /// Whether a step that failed is worth starting again: the registry gave no status (the
    /// connection failed or broke), a status worth retrying, or `TOOMANYREQUESTS` whatever
    /// status it came with. Anything else (a refusal, a wrong digest, a local error) stays failed.
    pub(crate) fn retryable_error(e: &Error) -> bool {
        match e {
            Error::Registry { status: None, .. } => true,
            Error::Registry { status: Some(status), code, .. } => Self::retryable(*status) || *code == Some(ErrorCode::TooManyRequests),
            _ => false,
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from registries and treated as absent).
pub fn parse_retry_after(v: Option<&str>) -> Option<Duration> {
    v?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_jittered_and_capped() {
        let p = RetryPolicy { attempts: 5, base: Duration::from_millis(100), max: Duration::from_secs(1) };
        for retry in 1..10 {
            let d = p.delay(retry, None);
            let ceiling = Duration::from_millis(100 * (1 << retry)).min(Duration::from_secs(1));
            assert!(d <= ceiling && d >= ceiling / 2, "retry {retry}: {d:?}");
        }
        assert_eq!(p.delay(1, Some(Duration::from_secs(30))), Duration::from_secs(1), "Retry-After is capped");
        assert!(p.delay(1, Some(Duration::from_millis(900))) >= Duration::from_millis(900), "Retry-After is honoured");
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert!(RetryPolicy::retryable(429) && RetryPolicy::retryable(503) && !RetryPolicy::retryable(404));
    }

    #[test]
    fn failed_steps_are_retried_on_typed_status_and_code() {
        let err = |status, code| Error::Registry { reference: "r".into(), status, code, message: "m".into(), hint: None };
        assert!(RetryPolicy::retryable_error(&err(None, None)), "no answer");
        assert!(RetryPolicy::retryable_error(&err(Some(503), None)));
        assert!(RetryPolicy::retryable_error(&err(Some(429), Some(ErrorCode::TooManyRequests))));
        assert!(RetryPolicy::retryable_error(&err(Some(400), Some(ErrorCode::TooManyRequests))), "the code alone says slow down");
        assert!(!RetryPolicy::retryable_error(&err(Some(400), Some(ErrorCode::DigestInvalid))));
        assert!(!RetryPolicy::retryable_error(&err(Some(404), Some(ErrorCode::BlobUploadUnknown))));
        assert!(!RetryPolicy::retryable_error(&err(Some(401), None)));
        // The words of a message decide nothing.
        let worded = Error::Registry { reference: "r".into(), status: Some(400), code: None, message: "too many requests, try again".into(), hint: None };
        assert!(!RetryPolicy::retryable_error(&worded));
        assert!(!RetryPolicy::retryable_error(&Error::malformed("x", "connection reset")));
    }
}
