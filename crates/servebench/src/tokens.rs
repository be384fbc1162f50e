//! Exact prompt lengths, counted by the server's own tokenizer: vLLM's `POST /tokenize` takes
//! `{"model", "prompt"}` (as `/v1/completions` would tokenize it, BOS included) or
//! `{"model", "messages"}` (the chat template applied as `/v1/chat/completions` applies it, the
//! generation prompt included) and answers `{"count", "max_model_len", "tokens"}`.
//!
//! Before a run, [`Sizer`] asks once per candidate word which words are one token after a space
//! (the prompt's vocabulary), then, for each prompt length and shared prefix, counts a real
//! prompt of that shape and corrects the number of words until the count is the length asked for
//! (two requests when the template adds a constant). Every request's prompt is then that many
//! one-token words, so each is exactly that long, not only the one counted. Answers are cached:
//! a sweep asks for each length once.
//!
//! A server without `/tokenize` (or that answers it with something else) leaves the documented
//! approximation of one word per token; the caller says so.

use crate::client::{request, Target};
use crate::workload::{Api, Workload, WORDS};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Fewest one-token words that make prompts varied enough to use.
pub(crate) const MIN_VOCABULARY: usize = 4;

/// Tries of the word-count correction before giving up on a length.
const TRIES: usize = 8;

/// The number of words that makes a prompt exactly `tokens` long, given `count(words)`: the
/// server's count of the prompt with that many words. Starts at one word per token and moves by
/// the difference; `min_words` is the shared prefix (never cut).
pub(crate) fn fit(tokens: u64, min_words: u64, mut count: impl FnMut(u64) -> Result<u64, String>) -> Result<u64, String> {
    let floor = min_words.max(1);
    let mut words = tokens.max(floor);
    let mut seen: Vec<(u64, u64)> = Vec::new();
    for _ in 0..TRIES {
        let got = count(words)?;
        if got == tokens {
            return Ok(words);
        }
        // The first step assumes a token per word; later ones the slope of the last two counts
        // (a tokenizer whose words cost more than one token each).
        let miss = tokens as f64 - got as f64;
        let step = match seen.last() {
            Some(&(w0, g0)) if got != g0 && w0 != words => miss * (words as f64 - w0 as f64) / (got as f64 - g0 as f64),
            _ => miss,
        };
        seen.push((words, got));
        let next = (words as f64 + step).round();
        let next = if next < floor as f64 {
            if words == floor {
                return Err(format!("{tokens} tokens is shorter than the shortest prompt of this shape ({got} tokens with {words} words)"));
            }
            floor
        } else {
            next as u64
        };
        if seen.iter().any(|&(w, _)| w == next) {
            return Err(format!("no word count gives exactly {tokens} tokens (counted {seen:?} as (words, tokens))"));
        }
        words = next;
    }
    Err(format!("no exact word count for {tokens} tokens after {TRIES} tries (counted {seen:?} as (words, tokens))"))
}

/// The words of `counts` (their `/tokenize` count after a space) that cost the fewest tokens,
/// when those are one token each: the smallest count is one word plus what the server adds to
/// every prompt (BOS), so the words at that count are the one-token ones.
pub(crate) fn one_token_words(counts: &[(&'static str, u64)]) -> Vec<&'static str> {
    let Some(min) = counts.iter().map(|c| c.1).min() else { return Vec::new() };
    counts.iter().filter(|c| c.1 == min).map(|c| c.0).collect()
}

/// Why counts are not exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotExact {
    /// The server has no `/tokenize` (HTTP 404).
    NoEndpoint,
    /// It has one that did not answer as vLLM's does, or no words are one token.
    Other(String),
}

impl std::fmt::Display for NotExact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotExact::NoEndpoint => write!(f, "the server has no /tokenize (HTTP 404)"),
            NotExact::Other(why) => write!(f, "{why}"),
        }
    }
}

/// `POST /tokenize` of one prompt as `api` would send it: the server's token count.
pub(crate) fn count(target: &Target, model: &str, api: Api, text: &str, timeout: Duration) -> Result<u64, NotExact> {
    let body = match api {
        Api::Chat => serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]}),
        Api::Completions => serde_json::json!({"model": model, "prompt": text}),
    };
    let (status, answer) = request(target, "POST", "/tokenize", Some(&body.to_string()), timeout).map_err(|e| NotExact::Other(format!("/tokenize: {e}")))?;
    if status == 404 {
        return Err(NotExact::NoEndpoint);
    }
    let short = || String::from_utf8_lossy(&answer).chars().take(200).collect::<String>();
    if status != 200 {
        return Err(NotExact::Other(format!("/tokenize answered HTTP {status}: {}", short())));
    }
    let v: serde_json::Value = serde_json::from_slice(&answer).map_err(|_| NotExact::Other(format!("/tokenize answered no JSON: {}", short())))?;
    v.get("count").and_then(serde_json::Value::as_u64).ok_or_else(|| NotExact::Other(format!("/tokenize answered no `count`: {}", short())))
}

/// Finds, and remembers, the word counts that make prompts exactly as long as asked.
pub struct Sizer {
    target: Target,
    model: String,
    timeout: Duration,
    vocabulary: Option<Result<Arc<Vec<&'static str>>, NotExact>>,
    fits: HashMap<(Api, u64, u64), Result<u64, NotExact>>,
    /// `/tokenize` requests made so far.
    pub requests: u64,
}

impl Sizer {
    /// A sizer asking `target`'s `/tokenize` for `model`, each request bounded by `timeout`.
    pub fn new(target: &Target, model: &str, timeout: Duration) -> Self {
        Self { target: target.clone(), model: model.to_owned(), timeout, vocabulary: None, fits: HashMap::new(), requests: 0 }
    }

    fn count(&mut self, api: Api, text: &str) -> Result<u64, NotExact> {
        self.requests += 1;
        count(&self.target, &self.model, api, text, self.timeout)
    }

    /// The words that are one token after a space (asked once; the first failure ends asking).
    pub(crate) fn vocabulary(&mut self) -> Result<Arc<Vec<&'static str>>, NotExact> {
        if let Some(v) = &self.vocabulary {
            return v.clone();
        }
        let mut counts = Vec::with_capacity(WORDS.len());
        let mut result = Ok(());
        for w in WORDS {
            match self.count(Api::Completions, &format!(" {w}")) {
                Ok(n) => counts.push((w, n)),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let v = result.and_then(|()| {
            let words = one_token_words(&counts);
            if words.len() < MIN_VOCABULARY {
                return Err(NotExact::Other(format!(
                    "only {} of {} prompt words are one token to this tokenizer (need {MIN_VOCABULARY})",
                    words.len(),
                    WORDS.len()
                )));
            }
            // The cheapest words are one token only if two of them cost one more than one.
            let one = counts.iter().map(|c| c.1).min().unwrap_or(0);
            let two = self.count(Api::Completions, &format!(" {} {}", words[0], words[1]))?;
            if two != one + 1 {
                return Err(NotExact::Other(format!(
                    "no prompt word is one token to this tokenizer (` {} {}` counts {two}, ` {}` {one})",
                    words[0], words[1], words[0]
                )));
            }
            Ok(Arc::new(words))
        });
        self.vocabulary = Some(v.clone());
        v
    }

    /// Makes `workload` (synthetic prompts) exactly `prompt_tokens` long to the server: sets its
    /// vocabulary, word count and `prompt_tokens_exact`. On failure it is left as it was (one
    /// word per token) and the reason is returned.
    pub fn size(&mut self, workload: &mut Workload) -> Result<(), NotExact> {
        let vocabulary = self.vocabulary()?;
        let key = (workload.api, workload.prompt_tokens, workload.shared_prefix);
        let words = match self.fits.get(&key) {
            Some(r) => r.clone()?,
            None => {
                let mut probe = Workload { vocabulary: Some(vocabulary.clone()), image: None, dataset: None, ..workload.clone() };
                let mut failure = None;
                let fitted = fit(workload.prompt_tokens, workload.shared_prefix, |words| {
                    probe.prompt_words = Some(words);
                    let text = probe.prompt(0);
                    self.count(workload.api, &text).map_err(|e| {
                        let why = e.to_string();
                        failure = Some(e);
                        why
                    })
                });
                let r = fitted.map_err(|why| failure.unwrap_or(NotExact::Other(format!("prompt length {}: {why}", workload.prompt_tokens))));
                self.fits.insert(key, r.clone());
                r?
            }
        };
        workload.vocabulary = Some(vocabulary);
        workload.prompt_words = Some(words);
        workload.prompt_tokens_exact = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_template_is_taken_off_in_two_counts() {
        let mut calls = Vec::new();
        let words = fit(32, 0, |w| {
            calls.push(w);
            Ok(w + 6)
        })
        .unwrap();
        assert_eq!(words, 26);
        assert_eq!(calls, [32, 26]);
    }

    #[test]
    fn one_word_per_token_needs_one_count() {
        let mut n = 0;
        assert_eq!(
            fit(128, 5, |w| {
                n += 1;
                Ok(w)
            }),
            Ok(128)
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn a_length_shorter_than_the_template_is_refused() {
        let e = fit(4, 0, |w| Ok(w + 6)).unwrap_err();
        assert!(e.contains("4 tokens is shorter than the shortest prompt"), "{e}");
        // The shared prefix is never cut to make room.
        let e = fit(10, 8, |w| Ok(w + 6)).unwrap_err();
        assert!(e.contains("shorter"), "{e}");
    }

    #[test]
    fn a_count_that_jumps_over_the_length_is_refused_not_looped() {
        // Two tokens per word past the BOS: odd lengths cannot be hit.
        let e = fit(20, 0, |w| Ok(2 * w + 1)).unwrap_err();
        assert!(e.contains("no word count gives exactly 20"), "{e}");
        assert_eq!(fit(21, 0, |w| Ok(2 * w + 1)), Ok(10));
        // Even ones settle by correction.
        let mut n = 0;
        let r = fit(33, 0, |w| {
            n += 1;
            Ok(w + 1 + w / 4)
        });
        assert_eq!(r.map(|w| w + 1 + w / 4), Ok(33), "after {n} counts");
    }

    #[test]
    fn a_failing_count_ends_the_fit() {
        assert_eq!(fit(8, 0, |_| Err("HTTP 500".into())), Err("HTTP 500".into()));
    }

    #[test]
    fn one_token_words_are_those_at_the_smallest_count() {
        let counts = [("the", 2), ("people", 4), ("and", 2), ("which", 3)];
        assert_eq!(one_token_words(&counts), ["the", "and"]);
        assert!(one_token_words(&[]).is_empty());
    }

    #[test]
    fn exact_prompts_use_only_the_vocabulary_each_word_after_a_space() {
        let w = Workload {
            api: Api::Completions,
            model: "m".into(),
            prompt_tokens: 10,
            prompt_words: Some(7),
            prompt_tokens_exact: true,
            vocabulary: Some(Arc::new(vec!["the", "and", "on"])),
            shared_prefix: 2,
            max_tokens: 1,
            ignore_eos: true,
            seed: 3,
            dataset: None,
            image: None,
        };
        let prompts: Vec<String> = (0..30).map(|id| w.prompt(id)).collect();
        for p in &prompts {
            assert!(p.starts_with(' '), "{p:?}");
            let words: Vec<&str> = p.split(' ').skip(1).collect();
            assert_eq!(words.len(), 7, "{p:?}");
            assert!(words.iter().all(|x| ["the", "and", "on"].contains(x)), "{p:?}");
        }
        // Base-3 request numbers after the 2 shared words: all 30 differ.
        let unique: std::collections::BTreeSet<_> = prompts.iter().collect();
        assert_eq!(unique.len(), 30);
        assert!(prompts.iter().all(|p| p.split(' ').take(3).eq(prompts[0].split(' ').take(3))));
    }
}
