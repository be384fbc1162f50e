//! The restart budget: how often a node may come back after a failure. Restart loops leak
//! unified memory on GB10 until the node stops answering, so the units' `Restart=on-failure`
//! must not be the only limit. Every failed stop (not a requested one: a signal) is recorded
//! in a state file on the host (it outlives the `--rm` container); at start the node reads it:
//! within the budget it waits a delay that doubles with each recent failure, past the budget it
//! stays down and says why instead of looping.
//!
//! The decision is pure ([`decide`]); the clock and the file are the caller's.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The longest wait between two group restarts.
const MAX_DELAY: Duration = Duration::from_secs(600);
/// Failures kept in the file: enough for any budget, bounded for a node that fails for weeks.
const KEEP: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Restarts allowed within `window`.
    pub restarts: u32,
    pub window: Duration,
    /// Wait before the first restart; doubles for each further failure in the window.
    pub delay: Duration,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct History {
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Failure {
    /// Unix seconds.
    pub at: u64,
    /// The exit code the node stopped with.
    pub code: i32,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// No recent failure: start now.
    Start,
    /// Restart number `used` of `budget.restarts` in the window, after `delay`.
    Restart { used: u32, delay: Duration },
    /// More failures than the budget allows: stay down until the oldest counted failure leaves
    /// the window (`retry_at`, unix seconds) or someone clears the state.
    Spent { used: u32, last: Failure, retry_at: u64 },
}

impl History {
    /// Failures within the window ending at `now`, oldest first.
    pub(crate) fn recent(&self, now: u64, window: Duration) -> Vec<&Failure> {
        let since = now.saturating_sub(window.as_secs());
        self.failures.iter().filter(|f| f.at > since && f.at <= now).collect()
    }

    /// Adds a failure, dropping the oldest beyond [`KEEP`].
    pub(crate) fn record(&mut self, f: Failure) {
        self.failures.push(f);
        let extra = self.failures.len().saturating_sub(KEEP);
        self.failures.drain(..extra);
    }
}

/// What a node starting at `now` does, given the failures recorded before.
pub(crate) fn decide(h: &History, now: u64, b: &Budget) -> Decision {
    let recent = h.recent(now, b.window);
    let used = recent.len() as u32;
    match recent.last() {
        None => Decision::Start,
        Some(last) if used > b.restarts => {
            // The start becomes possible again when enough failures age out of the window.
            let oldest_counted = recent[recent.len() - b.restarts as usize - 1];
            Decision::Spent { used, last: (*last).clone(), retry_at: oldest_counted.at + b.window.as_secs() }
        }
        Some(_) => {
            let doubling = 1u32.checked_shl(used - 1).unwrap_or(u32::MAX);
            Decision::Restart { used, delay: b.delay.saturating_mul(doubling).min(MAX_DELAY) }
        }
    }
}

/// Reads the state file; a missing file is an empty history. A corrupt one is reported and
/// treated as empty (it must never keep a node down).
pub(crate) fn load(path: &Path) -> Result<History, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => serde_json::from_str(&s).map_err(|e| format!("`{}` is not a restart history ({e}); starting with an empty one", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History::default()),
        Err(e) => Err(format!("cannot read `{}`: {e}; starting with an empty restart history", path.display())),
    }
}

/// Writes the state file atomically.
pub(crate) fn save(path: &Path, h: &History) -> std::io::Result<()> {
    crate::fsutil::write_atomic(path, &(serde_json::to_string_pretty(h).map_err(std::io::Error::other)? + "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Budget = Budget { restarts: 3, window: Duration::from_secs(3600), delay: Duration::from_secs(10) };

    fn at(times: &[u64]) -> History {
        History { failures: times.iter().map(|&t| Failure { at: t, code: 5, why: format!("wedged at {t}") }).collect() }
    }

    #[test]
    fn no_failure_starts_at_once() {
        assert_eq!(decide(&History::default(), 10_000, &B), Decision::Start);
    }

    #[test]
    fn each_failure_in_the_window_doubles_the_delay() {
        assert_eq!(decide(&at(&[9_000]), 10_000, &B), Decision::Restart { used: 1, delay: Duration::from_secs(10) });
        assert_eq!(decide(&at(&[8_000, 9_000]), 10_000, &B), Decision::Restart { used: 2, delay: Duration::from_secs(20) });
        assert_eq!(decide(&at(&[7_000, 8_000, 9_000]), 10_000, &B), Decision::Restart { used: 3, delay: Duration::from_secs(40) });
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        // 6_399 is 3601 s before 10_000: outside; 6_401 inside.
        assert_eq!(decide(&at(&[1_000, 6_399]), 10_000, &B), Decision::Start);
        assert_eq!(decide(&at(&[6_399, 6_401]), 10_000, &B), Decision::Restart { used: 1, delay: Duration::from_secs(10) });
    }

    #[test]
    fn past_the_budget_the_node_stays_down_until_a_failure_ages_out() {
        let h = at(&[7_000, 8_000, 9_000, 9_500]);
        match decide(&h, 10_000, &B) {
            // Four failures, three allowed: the start is allowed again once 7_000 leaves the window.
            Decision::Spent { used, last, retry_at } => {
                assert_eq!(used, 4);
                assert_eq!(last.at, 9_500);
                assert_eq!(retry_at, 7_000 + 3600);
            }
            other => panic!("expected Spent, got {other:?}"),
        }
        // At 10_601 the 7_000 failure is gone: three remain, the third restart is allowed.
        assert_eq!(decide(&h, 10_601, &B), Decision::Restart { used: 3, delay: Duration::from_secs(40) });
    }

    #[test]
    fn a_zero_budget_never_restarts_and_the_delay_is_capped() {
        let zero = Budget { restarts: 0, ..B };
        assert!(matches!(decide(&at(&[9_999]), 10_000, &zero), Decision::Spent { used: 1, .. }));
        let many = Budget { restarts: 100, ..B };
        let h = at(&(0..40).map(|i| 9_000 + i).collect::<Vec<_>>());
        assert_eq!(decide(&h, 10_000, &many), Decision::Restart { used: 40, delay: MAX_DELAY });
    }

    #[test]
    fn the_history_is_bounded() {
        let mut h = History::default();
        for t in 0..200 {
            h.record(Failure { at: t, code: 3, why: String::new() });
        }
        assert_eq!(h.failures.len(), KEEP);
        assert_eq!(h.failures[0].at, 200 - KEEP as u64);
    }

    #[test]
    fn the_state_file_round_trips_and_a_corrupt_one_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state/restarts.json");
        assert_eq!(load(&p).unwrap(), History::default(), "missing file = empty history");
        let h = at(&[1, 2]);
        save(&p, &h).unwrap();
        assert_eq!(load(&p).unwrap(), h);
        std::fs::write(&p, "{not json").unwrap();
        let e = load(&p).unwrap_err();
        assert!(e.contains("restarts.json") && e.contains("empty"), "{e}");
    }
}
