//! What each request asks for: a synthetic prompt of a given length, an output length, and the
//! request body (chat or completions) built from them.
//!
//! Prompt length: a synthetic prompt is made of common English words. When the server can count
//! tokens ([`crate::tokens`]), the words are only those its tokenizer holds as one token each
//! after a space, every word (the first too) goes out with its leading space, and the number of
//! words is set so that the server counts exactly the requested length (chat template included).
//! Otherwise (the approximation) all the words below are used, which byte-level BPE
//! vocabularies (Llama 3, Qwen 2/3, GPT-style) hold as one token each with their leading space,
//! so `N` words are about `N` tokens. Either way the server's `usage.prompt_tokens` is what
//! results report when the server sends it, beside the requested length, so a drift shows.

use crate::schedule::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub(crate) const WORDS: [&str; 64] = [
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he", "this", "are", "or", "his", "from", "at",
    "which", "but", "have", "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when",
    "will", "would", "who", "so", "no", "time", "people", "year", "way", "day", "man", "thing", "world", "life", "hand", "part", "place", "case", "week",
    "work", "water",
];

/// Chat (`/v1/chat/completions`) or text completions (`/v1/completions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completions,
}

impl Api {
    pub(crate) fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
        }
    }
}

/// The shape of every request in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Which endpoint requests go to.
    pub api: Api,
    /// The model named in each request.
    pub model: String,
    /// Prompt length in tokens (exact when `prompt_tokens_exact`, else about one per word).
    pub prompt_tokens: u64,
    /// Words sent to make `prompt_tokens` exactly (`None`: one word per token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_words: Option<u64>,
    /// The server's own tokenizer counted `prompt_tokens` for this prompt shape.
    #[serde(default)]
    pub prompt_tokens_exact: bool,
    /// The words prompts are made of when their length is exact (each one token after a space);
    /// `None`: all of `WORDS`, no leading space.
    #[serde(skip)]
    pub vocabulary: Option<Arc<Vec<&'static str>>>,
    /// The first `shared_prefix` words are the same in every request (prefix-cache hits); the
    /// rest starts with words that spell the request's number, so nothing after the prefix is
    /// cached.
    pub shared_prefix: u64,
    /// The most tokens each answer may have.
    pub max_tokens: u64,
    /// Ask the server to generate exactly `max_tokens` (vLLM's `ignore_eos` and `min_tokens`).
    pub ignore_eos: bool,
    /// Seed of the prompts' words.
    pub seed: u64,
    /// Prompts from a JSONL file instead of synthetic ones (request `id` takes entry
    /// `id mod len`); `prompt_tokens` is then unused.
    #[serde(skip)]
    pub dataset: Option<Arc<Vec<Entry>>>,
    /// An image sent with every chat prompt (vision-language models); the run file keeps its
    /// label.
    #[serde(default, with = "image_label", skip_serializing_if = "Option::is_none")]
    pub image: Option<Arc<crate::image::Image>>,
}

/// A run file records the image's label, not its bytes; one read back has no bytes to send.
mod image_label {
    use crate::image::Image;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::sync::Arc;

    pub(super) fn serialize<S: Serializer>(image: &Option<Arc<Image>>, s: S) -> Result<S::Ok, S::Error> {
        match image {
            Some(i) => s.serialize_str(&i.label),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<Image>>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(|label| Arc::new(Image { label, data_url: String::new() })))
    }
}

/// One line of a JSONL dataset: `{"prompt": "…"}`, optionally with `"max_tokens": N`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    pub(crate) prompt: String,
    #[serde(default)]
    pub(crate) max_tokens: Option<u64>,
}

/// Reads a JSONL dataset (blank lines skipped); the error names the line.
pub fn parse_dataset(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let e: Entry = serde_json::from_str(line).map_err(|e| format!("line {}: {e} (each line must be {{\"prompt\": \"…\"}})", i + 1))?;
        out.push(e);
    }
    if out.is_empty() {
        return Err("no prompts in it".into());
    }
    Ok(out)
}

impl Workload {
    /// The prompt of request `id`.
    pub(crate) fn prompt(&self, id: u64) -> String {
        if let Some(d) = &self.dataset {
            return d[(id % d.len() as u64) as usize].prompt.clone();
        }
        let words: &[&str] = self.vocabulary.as_deref().map_or(&WORDS, |v| v.as_slice());
        let base = words.len().max(1) as u64;
        // Digits of the request's number: as many as 64³ distinct requests need.
        let digits = (1..).find(|&d| base.saturating_pow(d) >= 1 << 18).unwrap_or(1) as u64;
        let n = self.prompt_words.unwrap_or(self.prompt_tokens);
        let mut out = String::with_capacity(n as usize * 6);
        let mut shared = Rng::new(self.seed ^ 0x5eed);
        let mut own = Rng::new(self.seed.wrapping_mul(0x9E37_79B9).wrapping_add(id.wrapping_mul(0x2545_F491_4F6C_DD1D)));
        let mut digit = id;
        for i in 0..n {
            let r = match i.checked_sub(self.shared_prefix) {
                None => shared.next_u64(),
                // Right after the prefix, the request's number in base `words.len()`: two
                // requests fewer than that apart differ in the first word after it, any two
                // below 64³ within the first few; random words follow.
                Some(k) if k < digits => {
                    let d = digit % base;
                    digit /= base;
                    d
                }
                Some(_) => own.next_u64(),
            };
            // Exact lengths: every word after a space, the first too, so that each costs the
            // one token it was measured at wherever it stands.
            if i > 0 || self.vocabulary.is_some() {
                out.push(' ');
            }
            out.push_str(words[(r % base) as usize]);
        }
        out
    }

    /// The output length request `id` asks for.
    pub(crate) fn max_tokens(&self, id: u64) -> u64 {
        self.dataset.as_ref().and_then(|d| d[(id % d.len() as u64) as usize].max_tokens).unwrap_or(self.max_tokens)
    }

    /// The prompt length request `id` asks for (words of a dataset prompt).
    pub(crate) fn requested_prompt_tokens(&self, id: u64) -> u64 {
        match &self.dataset {
            Some(d) => d[(id % d.len() as u64) as usize].prompt.split_whitespace().count() as u64,
            None => self.prompt_tokens,
        }
    }

    /// The JSON body of request `id`.
    pub(crate) fn body(&self, id: u64) -> String {
        let max_tokens = self.max_tokens(id);
        let prompt = serde_json::Value::String(self.prompt(id));
        let input = match (self.api, &self.image) {
            (Api::Chat, Some(image)) => serde_json::json!([{"role": "user", "content": [
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": image.data_url}},
            ]}]),
            (Api::Chat, None) => serde_json::json!([{"role": "user", "content": prompt}]),
            (Api::Completions, _) => prompt,
        };
        let mut body = serde_json::json!({
            "model": self.model,
            "max_tokens": max_tokens,
            "stream": true,
            "stream_options": {"include_usage": true, "continuous_usage_stats": true},
        });
        let key = if self.api == Api::Chat { "messages" } else { "prompt" };
        body[key] = input;
        if self.ignore_eos {
            body["ignore_eos"] = true.into();
            body["min_tokens"] = max_tokens.into();
        }
        body.to_string()
    }
}
