//! One exponential backoff with jitter, for the registry client's retries and the entrypoint's
//! rendezvous reconnects: step `n` waits `first · 2^(n-1)`, capped at `max`, times a factor drawn
//! from `jitter` so that clients which failed together do not retry together. Std only (the
//! entrypoint is size-conscious).

#![warn(missing_docs, unreachable_pub)]

use std::hash::BuildHasher;
use std::ops::Range;
use std::time::Duration;

/// An exponential backoff: the waits of successive retry steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The ceiling of the first step.
    pub first: Duration,
    /// The largest ceiling.
    pub max: Duration,
    /// The factor the ceiling is multiplied by, drawn uniformly from this range.
    pub jitter: Range<f64>,
}

impl Backoff {
    /// The un-jittered wait before step `n` (1-based).
    pub fn ceiling(&self, n: u32) -> Duration {
        self.first.saturating_mul(1 << (n.clamp(1, 17) - 1)).min(self.max)
    }

    /// The wait before step `n` (1-based), with a fresh jitter.
    pub fn delay(&self, n: u32) -> Duration {
        self.delay_with(n, unit_random())
    }

    /// The wait before step `n` for a jitter draw `r` in [0, 1).
    pub fn delay_with(&self, n: u32, r: f64) -> Duration {
        let factor = self.jitter.start + (self.jitter.end - self.jitter.start) * r.clamp(0.0, 1.0);
        self.ceiling(n).mul_f64(factor)
    }
}

/// A number in [0, 1) that differs between calls and processes: jitter needs no secrecy, and
/// std's `RandomState` is seeded per process from the OS and advanced per instance.
fn unit_random() -> f64 {
    let r = std::collections::hash_map::RandomState::new().hash_one(0u8);
    (r >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_first_to_max_within_the_jitter() {
        let b = Backoff { first: Duration::from_millis(500), max: Duration::from_secs(5), jitter: 0.5..1.5 };
        let ceilings: Vec<u128> = (1..=6).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(b.delay_with(1, 0.0), Duration::from_millis(250));
        assert_eq!(b.delay_with(3, 0.5), Duration::from_secs(2));
        assert_eq!(b.ceiling(0), b.ceiling(1));
        assert_eq!(b.ceiling(u32::MAX), b.max);
        for n in 1..40 {
            let d = b.delay(n);
            assert!(d >= b.ceiling(n) / 2 && d < b.ceiling(n).mul_f64(1.5), "step {n}: {d:?}");
        }
    }

    #[test]
    fn draws_differ_and_stay_in_the_unit_range() {
        let draws: Vec<f64> = (0..100).map(|_| unit_random()).collect();
        assert!(draws.iter().all(|r| (0.0..1.0).contains(r)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
