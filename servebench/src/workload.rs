//! What each request asks for: a synthetic prompt of a given length, an output length, and the
//! request body (chat or completions) built from them.
//!
//! Prompt length without a tokenizer: the prompt is made of common English words that byte-level
//! BPE vocabularies (Llama 3, Qwen 2/3, GPT-style) hold as one token each with their leading
//! space, so `N` words are about `N` tokens (the chat template adds a few more). The server's
//! `usage.prompt_tokens` is what results report when the server sends it; the requested length
//! is kept beside it, so a drift shows.

use crate::schedule::Rng;
use serde::{Deserialize, Serialize};

const WORDS: [&str; 64] = [
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he", "this", "are", "or", "his", "from", "at",
    "which", "but", "have", "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when",
    "will", "would", "who", "so", "no", "time", "people", "year", "way", "day", "man", "thing", "world", "life", "hand", "part", "place", "case", "week",
    "work", "water",
];

/// Chat (`/v1/chat/completions`) or text completions (`/v1/completions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    Chat,
    Completions,
}

impl Api {
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
        }
    }
}

/// The shape of every request in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub api: Api,
    pub model: String,
    /// Prompt length in (approximate) tokens.
    pub prompt_tokens: u64,
    /// The first `shared_prefix` words are the same in every request (prefix-cache hits); the
    /// rest starts with words unique to the request, so nothing after the prefix is cached.
    pub shared_prefix: u64,
    pub max_tokens: u64,
    /// Ask the server to generate exactly `max_tokens` (vLLM's `ignore_eos` and `min_tokens`).
    pub ignore_eos: bool,
    pub seed: u64,
}

impl Workload {
    /// The prompt of request `id`.
    pub fn prompt(&self, id: u64) -> String {
        let mut out = String::with_capacity(self.prompt_tokens as usize * 6);
        let mut shared = Rng::new(self.seed ^ 0x5eed);
        let mut own = Rng::new(self.seed.wrapping_mul(0x9E37_79B9).wrapping_add(id.wrapping_mul(0x2545_F491_4F6C_DD1D)));
        for i in 0..self.prompt_tokens {
            let r = if i < self.shared_prefix { shared.next_u64() } else { own.next_u64() };
            if i > 0 {
                out.push(' ');
            }
            out.push_str(WORDS[(r % WORDS.len() as u64) as usize]);
        }
        out
    }

    /// The JSON body of request `id`.
    pub fn body(&self, id: u64) -> String {
        let prompt = serde_json::Value::String(self.prompt(id));
        let input = match self.api {
            Api::Chat => serde_json::json!([{"role": "user", "content": prompt}]),
            Api::Completions => prompt,
        };
        let mut body = serde_json::json!({
            "model": self.model,
            "max_tokens": self.max_tokens,
            "stream": true,
            "stream_options": {"include_usage": true, "continuous_usage_stats": true},
        });
        let key = if self.api == Api::Chat { "messages" } else { "prompt" };
        body[key] = input;
        if self.ignore_eos {
            body["ignore_eos"] = true.into();
            body["min_tokens"] = self.max_tokens.into();
        }
        body.to_string()
    }
}
