//! A small OpenAI-compatible server that streams the chunk shapes vLLM sends, with delays it is
//! told: the known answer the benchmark's metric tests check against, the zero-latency peer of
//! `--calibrate`, and the `vllm serve` stand-in of tests that need one.
//!
//! Timing: output token `k` (reasoning tokens first, then content) leaves at
//! `start + ttft + k × itl`, measured from when the request was read, on absolute deadlines so
//! that timer lateness never accumulates. Events due at the same instant go out in one write.
//!
//! Chunks carry the keys real vLLM 0.32 sends (`fixtures/openai_sse/sparkctl-vllm-0.32-cpu-*`),
//! nulls included, so a client parsing them meets what it will meet in production.
//!
//! Prompt tokens are counted as whitespace-separated words of the prompt (the stand-in has no
//! tokenizer), plus `chat_template_tokens` for a chat; `POST /tokenize` answers the same count
//! in vLLM's shape (or 404, as a server without it does). Real servers report their
//! tokenizer's count.

use crate::http::{parse_request_head, RequestHead};
use serde_json::Value;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// When `usage` is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageMode {
    /// As the request's `stream_options` ask (`include_usage`, `continuous_usage_stats`), like vLLM.
    Request,
    /// Not at all.
    Never,
    /// A final usage-only chunk (`choices: []`) whatever the request asked.
    Final,
    /// Running totals on every chunk plus the final usage-only chunk.
    Continuous,
}

/// When the `role: assistant` chunk with empty content goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChunk {
    /// Together with the first output token, as vLLM does.
    WithFirstToken,
    /// As soon as the request is read: a client that takes TTFT at the first event is fooled.
    Early,
}

#[derive(Debug, Clone)]
/// How the stand-in server answers.
pub struct Config {
    /// The model name it serves (and lists at `/v1/models`).
    pub model: String,
    /// Delay before the first token.
    pub ttft: Duration,
    /// Delay between tokens.
    pub itl: Duration,
    /// Output tokens per request; `None` takes the request's `max_tokens` (default 16).
    pub output_tokens: Option<u64>,
    /// Reasoning tokens before the content tokens (counted in `completion_tokens`, like vLLM).
    pub reasoning_tokens: u64,
    /// `reasoning` (current vLLM) or `reasoning_content` (older vLLM, DeepSeek).
    pub reasoning_field: String,
    /// When `usage` is sent.
    pub usage: UsageMode,
    /// When the role chunk goes out.
    pub role_chunk: RoleChunk,
    /// Every Nth request gets HTTP 500 with vLLM's error body (0: never).
    pub error_every: u64,
    /// Every Nth request pauses for `stall` halfway through its output (0: never).
    pub stall_every: u64,
    /// How long a stalling request pauses.
    pub stall: Duration,
    /// Required `Authorization: Bearer …` value, if any.
    pub api_key: Option<String>,
    /// Answer `POST /tokenize` (else 404).
    pub tokenize: bool,
    /// Tokens a chat prompt has on top of its words (what a chat template adds).
    pub chat_template_tokens: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            model: "standin".into(),
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            output_tokens: None,
            reasoning_tokens: 0,
            reasoning_field: "reasoning".into(),
            usage: UsageMode::Request,
            role_chunk: RoleChunk::WithFirstToken,
            error_every: 0,
            stall_every: 0,
            stall: Duration::ZERO,
            api_key: None,
            tokenize: true,
            chat_template_tokens: 0,
        }
    }
}

const CREATED: u64 = 1_764_547_200;
const FINGERPRINT: &str = concat!("openai-standin-", env!("CARGO_PKG_VERSION"));

struct Server {
    config: Config,
    model_json: String,
    requests: AtomicU64,
    lateness: Arc<Lateness>,
}

/// How late the stand-in itself wrote first tokens (its timers and the OS scheduler), so a test
/// can tell the client's measuring error from the server's own.
#[derive(Debug, Default)]
pub struct Lateness {
    first_token_us: AtomicU64,
    first_tokens: AtomicU64,
}

impl Lateness {
    /// Streamed requests that got their first token.
    pub fn first_tokens(&self) -> u64 {
        self.first_tokens.load(Ordering::Relaxed)
    }

    /// Mean lateness of first-token writes, in milliseconds.
    pub fn first_token_ms(&self) -> f64 {
        let n = self.first_tokens.load(Ordering::Relaxed).max(1);
        self.first_token_us.load(Ordering::Relaxed) as f64 / n as f64 / 1000.0
    }
}

/// Serves on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, config: Config) {
    serve_measured(listener, config, Arc::default()).await;
}

async fn serve_measured(listener: TcpListener, config: Config, lateness: Arc<Lateness>) {
    let model_json = serde_json::to_string(&config.model).unwrap_or_else(|_| "\"standin\"".into());
    let server = Arc::new(Server { config, model_json, requests: AtomicU64::new(0), lateness });
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        tokio::spawn(async move {
            let _ = connection(stream, &server).await;
        });
    }
}

/// A stand-in running on its own thread and runtime (so it never competes with the caller's
/// runtime for a poll); stops when dropped.
pub struct Handle {
    /// The address the server listens on.
    pub addr: SocketAddr,
    /// How late the server wrote first tokens (its own measuring error).
    pub lateness: Arc<Lateness>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Handle {
    /// The server's URL, `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a stand-in on 127.0.0.1 with a free port, on a thread of its own.
pub fn spawn(config: Config) -> std::io::Result<Handle> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let lateness = Arc::<Lateness>::default();
    let late = lateness.clone();
    let thread = std::thread::Builder::new().name("openai-standin".into()).spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = TcpListener::from_std(std_listener) else { return };
            tokio::select! {
                _ = serve_measured(listener, config, late) => {}
                _ = rx => {}
            }
        });
    })?;
    Ok(Handle { addr, lateness, stop: Some(tx), thread: Some(thread) })
}

async fn connection(mut stream: TcpStream, server: &Server) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let (head, used) = loop {
            match parse_request_head(&buf) {
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err(e) => return respond(&mut stream, 400, &error_body(&e.to_string(), "BadRequestError", 400), false).await,
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let body_end = used + head.content_length as usize;
        while buf.len() < body_end {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body = buf[used..body_end].to_vec();
        buf.drain(..body_end);
        let keep = head.keep_alive;
        handle(&mut stream, server, &head, &body).await?;
        if !keep {
            return Ok(());
        }
    }
}

fn error_body(message: &str, kind: &str, code: u16) -> String {
    serde_json::json!({"object": "error", "message": message, "type": kind, "param": null, "code": code}).to_string()
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str, keep_alive: bool) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let conn = if keep_alive { "keep-alive" } else { "close" };
    let msg = format!("HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: {conn}\r\n\r\n{body}", body.len());
    stream.write_all(msg.as_bytes()).await
}

async fn handle(stream: &mut TcpStream, server: &Server, head: &RequestHead, body: &[u8]) -> std::io::Result<()> {
    let cfg = &server.config;
    if let Some(key) = &cfg.api_key {
        if head.authorization.as_deref() != Some(&format!("Bearer {key}")) {
            return respond(stream, 401, &error_body("invalid api key", "AuthenticationError", 401), head.keep_alive).await;
        }
    }
    let path = head.path.split('?').next().unwrap_or_default();
    match (head.method.as_str(), path) {
        ("GET", "/health") => respond(stream, 200, "", head.keep_alive).await,
        // Not OpenAI's: how late the stand-in itself was, for benchmarks that compare clients.
        ("GET", "/standin/lateness") => {
            let l = &server.lateness;
            let body = format!(r#"{{"first_token_ms":{:.3},"first_tokens":{}}}"#, l.first_token_ms(), l.first_tokens.load(Ordering::Relaxed));
            respond(stream, 200, &body, head.keep_alive).await
        }
        ("GET", "/v1/models") => {
            let m = &server.model_json;
            let body = format!(
                r#"{{"object":"list","data":[{{"id":{m},"object":"model","created":{CREATED},"owned_by":"vllm","root":{m},"parent":null,"max_model_len":131072}}]}}"#
            );
            respond(stream, 200, &body, head.keep_alive).await
        }
        ("POST", "/tokenize") if cfg.tokenize => {
            let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let count = match (req.get("messages"), req.get("prompt")) {
                (Some(m), _) => words(m) + cfg.chat_template_tokens,
                (None, Some(p)) => words(p),
                (None, None) => return respond(stream, 400, &error_body("need `prompt` or `messages`", "BadRequestError", 400), head.keep_alive).await,
            };
            let body = format!(r#"{{"count":{count},"max_model_len":131072,"tokens":[{}],"token_strs":null}}"#, vec!["1"; count as usize].join(","));
            respond(stream, 200, &body, head.keep_alive).await
        }
        ("POST", "/v1/chat/completions") => generate(stream, server, head, body, true).await,
        ("POST", "/v1/completions") => generate(stream, server, head, body, false).await,
        _ => respond(stream, 404, &error_body(&format!("no route {} {path}", head.method), "NotFoundError", 404), head.keep_alive).await,
    }
}

fn words(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Array(a) => a.iter().map(words).sum(),
        Value::Object(o) => o.get("content").or_else(|| o.get("text")).map_or(0, words),
        _ => 0,
    }
}

/// Every `image_url` part of the chat messages must be an image: a `data:` URL whose bytes are
/// the image type it names (a remote URL is taken as is; the stand-in fetches nothing), or a 400
/// as vLLM answers an image it cannot load.
fn check_images(messages: &Value) -> Result<(), String> {
    let parts = messages.as_array().into_iter().flatten().filter_map(|m| m.get("content")?.as_array()).flatten();
    for part in parts.filter(|p| p.get("type").and_then(Value::as_str) == Some("image_url")) {
        let url = part.get("image_url").and_then(|u| u.get("url").or(Some(u))).and_then(Value::as_str).ok_or("an `image_url` part without a URL")?;
        if url.starts_with("data:") {
            crate::image::decode_data_url(url).map_err(|e| format!("image_url: {e}"))?;
        } else if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(format!("image_url `{}`: neither a data: URL nor http(s)", url.chars().take(40).collect::<String>()));
        }
    }
    Ok(())
}

struct Plan {
    chat: bool,
    id: String,
    prompt: u64,
    reasoning: u64,
    total: u64,
    usage_final: bool,
    usage_continuous: bool,
    stall_at: Option<u64>,
}

async fn generate(stream: &mut TcpStream, server: &Server, head: &RequestHead, body: &[u8], chat: bool) -> std::io::Result<()> {
    let start = Instant::now();
    let cfg = &server.config;
    let n = server.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return respond(stream, 400, &error_body(&format!("request body is not JSON: {e}"), "BadRequestError", 400), head.keep_alive).await,
    };
    if chat {
        if let Err(e) = check_images(req.get("messages").unwrap_or(&Value::Null)) {
            return respond(stream, 400, &error_body(&e, "BadRequestError", 400), head.keep_alive).await;
        }
    }
    if cfg.error_every > 0 && n.is_multiple_of(cfg.error_every) {
        let msg = "EngineCore encountered an issue. See stack trace (above) for the root cause.";
        return respond(stream, 500, &error_body(msg, "InternalServerError", 500), head.keep_alive).await;
    }
    let max_tokens = req.get("max_completion_tokens").or_else(|| req.get("max_tokens")).and_then(Value::as_u64).unwrap_or(16);
    let total = cfg.output_tokens.unwrap_or(max_tokens).max(1);
    let opts = req.get("stream_options");
    let flag = |k: &str| opts.and_then(|o| o.get(k)).and_then(Value::as_bool).unwrap_or(false);
    let (usage_final, usage_continuous) = match cfg.usage {
        UsageMode::Request => (flag("include_usage"), flag("include_usage") && flag("continuous_usage_stats")),
        UsageMode::Never => (false, false),
        UsageMode::Final => (true, false),
        UsageMode::Continuous => (true, true),
    };
    let plan = Plan {
        chat,
        id: format!("{}-standin{n:08}", if chat { "chatcmpl" } else { "cmpl" }),
        prompt: words(req.get(if chat { "messages" } else { "prompt" }).unwrap_or(&Value::Null)) + if chat { cfg.chat_template_tokens } else { 0 },
        reasoning: if chat { cfg.reasoning_tokens } else { 0 },
        total: total + if chat { cfg.reasoning_tokens } else { 0 },
        usage_final,
        usage_continuous,
        stall_at: (cfg.stall_every > 0 && n.is_multiple_of(cfg.stall_every)).then_some(total / 2),
    };
    if !req.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        tokio::time::sleep_until(start + cfg.ttft + cfg.itl * (plan.total.saturating_sub(1)) as u32).await;
        return respond(stream, 200, &whole(server, &plan), head.keep_alive).await;
    }
    let conn = if head.keep_alive { "keep-alive" } else { "close" };
    let mut out =
        format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\nconnection: {conn}\r\n\r\n").into_bytes();
    if cfg.role_chunk == RoleChunk::Early && chat {
        push_event(&mut out, &role_chunk(server, &plan));
        stream.write_all(&out).await?;
        out.clear();
    }
    let mut stalled = Duration::ZERO;
    for k in 0..plan.total {
        if plan.stall_at == Some(k) {
            stalled = cfg.stall;
        }
        let due = start + cfg.ttft + cfg.itl * k as u32 + stalled;
        if Instant::now() < due {
            if !out.is_empty() {
                stream.write_all(&out).await?;
                out.clear();
            }
            tokio::time::sleep_until(due).await;
        }
        if k == 0 && cfg.role_chunk == RoleChunk::WithFirstToken && chat {
            push_event(&mut out, &role_chunk(server, &plan));
        }
        push_event(&mut out, &token_chunk(server, &plan, k));
        if k == 0 {
            stream.write_all(&out).await?;
            out.clear();
            let late = Instant::now().saturating_duration_since(due);
            server.lateness.first_token_us.fetch_add(late.as_micros() as u64, Ordering::Relaxed);
            server.lateness.first_tokens.fetch_add(1, Ordering::Relaxed);
        }
    }
    if plan.usage_final {
        let data = format!(
            r#"{{"id":"{}","object":"{}","created":{CREATED},"model":{},"choices":[],"usage":{},"system_fingerprint":"{FINGERPRINT}"}}"#,
            plan.id,
            object(&plan),
            server.model_json,
            usage(plan.prompt, plan.total)
        );
        push_event(&mut out, &data);
    }
    push_event(&mut out, "[DONE]");
    out.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&out).await
}

fn object(plan: &Plan) -> &'static str {
    if plan.chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    }
}

fn usage(prompt: u64, completion: u64) -> String {
    format!(r#"{{"prompt_tokens":{prompt},"total_tokens":{},"completion_tokens":{completion}}}"#, prompt + completion)
}

/// `data: …\n\n` as one HTTP chunk.
fn push_event(out: &mut Vec<u8>, data: &str) {
    let len = data.len() + 8;
    let _ = write!(StrOut(out), "{len:x}\r\ndata: {data}\n\n\r\n");
}

struct StrOut<'a>(&'a mut Vec<u8>);
impl std::fmt::Write for StrOut<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The running usage of a continuous-usage chat chunk (vLLM 0.32 adds a null
/// `completion_tokens_details` there, not on completions' chunks nor on the final usage chunk).
fn running_usage(plan: &Plan, completion: u64) -> String {
    if !plan.usage_continuous {
        return String::new();
    }
    let u = usage(plan.prompt, completion);
    if plan.chat {
        format!(r#","usage":{},"completion_tokens_details":null}}"#, &u[..u.len() - 1])
    } else {
        format!(r#","usage":{u}"#)
    }
}

fn role_chunk(server: &Server, plan: &Plan) -> String {
    let usage_part = running_usage(plan, 0);
    format!(
        r#"{{"id":"{}","object":"chat.completion.chunk","created":{CREATED},"model":{},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}]{usage_part},"prompt_token_ids":null,"prompt_text":null}}"#,
        plan.id, server.model_json
    )
}

/// The text of output token `k`: a word per token, reasoning words distinct from answer words.
fn token_text(plan: &Plan, k: u64) -> &'static str {
    if k < plan.reasoning {
        " hmm"
    } else if k.is_multiple_of(2) {
        " tok"
    } else {
        " en"
    }
}

fn token_chunk(server: &Server, plan: &Plan, k: u64) -> String {
    let last = k + 1 == plan.total;
    let finish = if last { r#""length","stop_reason":null"# } else { "null" };
    let usage_part = running_usage(plan, k + 1);
    let text = token_text(plan, k);
    if plan.chat {
        let field = if k < plan.reasoning { server.config.reasoning_field.as_str() } else { "content" };
        format!(
            r#"{{"id":"{}","object":"chat.completion.chunk","created":{CREATED},"model":{},"choices":[{{"index":0,"delta":{{"{field}":"{text}"}},"logprobs":null,"finish_reason":{finish},"token_ids":null}}]{usage_part}}}"#,
            plan.id, server.model_json
        )
    } else {
        let finish = if last { finish } else { r#"null,"stop_reason":null"# };
        format!(
            r#"{{"id":"{}","object":"text_completion","created":{CREATED},"model":{},"choices":[{{"index":0,"text":"{text}","logprobs":null,"finish_reason":{finish},"prompt_token_ids":null,"token_ids":null}}]{usage_part}}}"#,
            plan.id, server.model_json
        )
    }
}

fn whole(server: &Server, plan: &Plan) -> String {
    let text: String = (plan.reasoning..plan.total).map(|k| token_text(plan, k)).collect();
    let choice = if plan.chat {
        serde_json::json!({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": "length"})
    } else {
        serde_json::json!({"index": 0, "text": text, "logprobs": null, "finish_reason": "length"})
    };
    format!(
        r#"{{"id":"{}","object":"{}","created":{CREATED},"model":{},"choices":[{choice}],"usage":{}}}"#,
        plan.id,
        if plan.chat { "chat.completion" } else { "text_completion" },
        server.model_json,
        usage(plan.prompt, plan.total)
    )
}
