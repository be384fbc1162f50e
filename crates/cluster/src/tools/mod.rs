//! Parsers of the fabric tools' outputs (`ethtool`, `ibv_devinfo`, `ibdev2netdev`, perftest's
//! `ib_write_bw`/`ib_write_lat`, `ray status`): text in, a typed result out. They never panic,
//! whatever the input; prompts, comments and annotations people paste around an output are
//! skipped, and what could not be used or looks cut short is reported in the result (`notes`,
//! `truncated`) instead of being dropped silently. Real outputs under `fixtures/` are the tests.

pub mod ethtool;
pub mod ibdev2netdev;
pub mod ibv_devinfo;
pub mod perftest;
pub mod ping;
pub mod ray_status;

/// `key: value` split at the first colon, both trimmed; `None` when there is no colon.
fn key_value(line: &str) -> Option<(&str, &str)> {
    line.split_once(':').map(|(k, v)| (k.trim(), v.trim()))
}

/// A number followed by a parenthesised code, as verbs tools print: `4096 (5)` → 4096.
fn leading_number<T: std::str::FromStr>(s: &str) -> Option<T> {
    s.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests;
