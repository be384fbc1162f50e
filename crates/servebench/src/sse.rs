//! Server-sent events as OpenAI-compatible servers stream them: a byte-level event framer
//! ([`Framer`], fed whatever the socket gave) and a chunk parser ([`parse_data`], one event's
//! `data` as `&str`). Neither does IO, neither panics on any input.
//!
//! What the parser keeps is what the metrics need: whether a chunk carries output (content,
//! reasoning, completion text), how many tokens (`token_ids` when present), the finish reason,
//! `usage`, and an in-stream `error`. Unknown fields are ignored; the `role`-only first chunk
//! vLLM sends (`content: ""`) carries no output, so it never stops the TTFT clock.

use serde::Deserialize;
use std::borrow::Cow;

/// Splits a byte stream into SSE events (WHATWG rules: lines end in `\n`, `\r\n` or `\r`; a
/// blank line ends an event; `data:` lines join with `\n`; comments and other fields ignored).
/// The buffer grows to the largest event, never to the whole stream: an event of 1 MB of JSON is
/// as fine as a 100-byte one (no fixed line limit, unlike aiohttp's 64 KB reader).
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Where the next unread line starts in `buf`.
    start: usize,
    data: Vec<u8>,
    has_data: bool,
    /// The previous byte was a `\r` that ended a line: a `\n` right after it is the same break.
    after_cr: bool,
}

/// One complete event's `data` (lossy UTF-8: a stray byte must not end the stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent(pub String);

impl Framer {
    /// A framer with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, if the bytes so far hold one.
    pub fn next_event(&mut self) -> Option<RawEvent> {
        loop {
            if self.after_cr && self.buf.get(self.start) == Some(&b'\n') {
                self.start += 1;
            }
            if self.start < self.buf.len() {
                self.after_cr = false;
            }
            let Some(end) = self.buf[self.start..].iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.compact();
                return None;
            };
            let line_end = self.start + end;
            let is_cr = self.buf[line_end] == b'\r';
            let blank = field_line(&self.buf[self.start..line_end], &mut self.data, &mut self.has_data);
            self.start = line_end + 1;
            self.after_cr = is_cr;
            if blank {
                if let Some(event) = self.take() {
                    return Some(event);
                }
            }
        }
    }

    /// Whatever is left when the stream ends: an event not closed by a blank line still counts
    /// (servers that close right after the last `data:` line).
    pub fn finish(&mut self) -> Option<RawEvent> {
        if let Some(event) = self.next_event() {
            return Some(event);
        }
        if self.start < self.buf.len() {
            field_line(&self.buf[self.start..], &mut self.data, &mut self.has_data);
            self.start = self.buf.len();
        }
        self.take()
    }

    fn take(&mut self) -> Option<RawEvent> {
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        let s = String::from_utf8_lossy(&self.data).into_owned();
        self.data.clear();
        Some(RawEvent(s))
    }

    fn compact(&mut self) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Applies one line to the event being built; true for the blank line that ends an event.
fn field_line(line: &[u8], data: &mut Vec<u8>, has_data: &mut bool) -> bool {
    if line.is_empty() {
        return true;
    }
    let (field, value) = match line.iter().position(|&b| b == b':') {
        Some(0) => return false, // a comment (keep-alive)
        Some(c) => {
            let v = &line[c + 1..];
            (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
        }
        None => (line, &b""[..]),
    };
    if field == b"data" {
        if *has_data {
            data.push(b'\n');
        }
        data.extend_from_slice(value);
        *has_data = true;
    }
    false
}

/// Token counts as the server reports them (`usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
pub struct Usage {
    #[serde(default)]
    /// Tokens of the prompt.
    pub prompt_tokens: u64,
    #[serde(default)]
    /// Tokens generated.
    pub completion_tokens: u64,
}

/// One parsed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `data: [DONE]`
    Done,
    /// A chunk of the answer.
    Chunk(Chunk),
}

/// What one streamed chunk says, reduced to what the metrics use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chunk {
    /// Non-empty answer text (`delta.content` or a completion's `text`).
    pub content: bool,
    /// Non-empty reasoning text (`delta.reasoning` or `delta.reasoning_content`).
    pub reasoning: bool,
    /// Whether the chunk has any choice (the final usage-only chunk has `choices: []`).
    pub has_choice: bool,
    /// Tokens in this chunk when the server lists them (`token_ids`), else `None`.
    pub token_ids: Option<u64>,
    /// `finish_reason` of any choice (`stop`, `length`, …).
    pub finish_reason: Option<String>,
    /// Token counts, when the chunk carries them.
    pub usage: Option<Usage>,
    /// An error the server sent inside the stream (`{"error": {"message": …}}`).
    pub error: Option<String>,
}

impl Chunk {
    /// Whether this chunk carries generated output of any kind.
    pub fn has_output(&self) -> bool {
        self.content || self.reasoning
    }
}

/// Why an event's data is not a chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream event is not an OpenAI chunk: {reason} (data starts `{head}`)")]
pub struct ParseError {
    pub(crate) reason: String,
    pub(crate) head: String,
}

#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<RawChoice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default, borrow)]
    error: Option<RawError<'a>>,
}

#[derive(Deserialize)]
struct RawChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<RawDelta<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    token_ids: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct RawDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawError<'a> {
    Object {
        #[serde(default, borrow)]
        message: Option<Cow<'a, str>>,
    },
    Text(#[serde(borrow)] Cow<'a, str>),
}

fn non_empty(s: &Option<Cow<'_, str>>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

/// Parses one event's data: `[DONE]` or a chat/completion chunk.
pub fn parse_data(data: &str) -> Result<Event, ParseError> {
    let trimmed = data.trim();
    if trimmed == "[DONE]" {
        return Ok(Event::Done);
    }
    let raw: RawChunk<'_> = serde_json::from_str(trimmed).map_err(|e| ParseError { reason: e.to_string(), head: trimmed.chars().take(40).collect() })?;
    let mut chunk = Chunk { usage: raw.usage, has_choice: !raw.choices.is_empty(), ..Chunk::default() };
    for choice in &raw.choices {
        if let Some(d) = &choice.delta {
            chunk.content |= non_empty(&d.content);
            chunk.reasoning |= non_empty(&d.reasoning) || non_empty(&d.reasoning_content);
        }
        chunk.content |= non_empty(&choice.text);
        if let Some(ids) = &choice.token_ids {
            *chunk.token_ids.get_or_insert(0) += ids.len() as u64;
        }
        if let Some(f) = &choice.finish_reason {
            chunk.finish_reason = Some(f.to_string());
        }
    }
    chunk.error = raw.error.map(|e| match e {
        RawError::Object { message } => message.map_or_else(|| "error".to_owned(), |m| m.into_owned()),
        RawError::Text(t) => t.into_owned(),
    });
    Ok(Event::Chunk(chunk))
}
