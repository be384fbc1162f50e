//! The load generator: closed loop (a fixed number of workers, each sending its next request when
//! the last one ended) or open loop (requests meant to leave on a schedule, whatever the server
//! does). One current-thread runtime: every timestamp is taken by the task that sees the bytes,
//! with no cross-thread hand-off between the socket and the clock.
//!
//! Every latency is measured from the request's **intended** send time. In an open loop a request
//! that waits for a free slot (`max_concurrency`) or for a late timer is late; that wait is the
//! queue delay, inside TTFT and E2E and reported on its own as well. In a closed loop intended and
//! actual send times are the same instant.

use crate::http::{parse_response_head, BodyDecoder, Framing};
use crate::metrics::{ErrorKind, Record};
use crate::schedule::{Arrival, Schedule};
use crate::sse::{parse_data, Event, Framer};
use crate::workload::Workload;
use crate::Error;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Where requests go: a plain-HTTP OpenAI-compatible server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    #[serde(skip)]
    /// The API key sent as `Authorization: Bearer …` (never written to run files).
    pub api_key: Option<String>,
}

impl Target {
    /// Reads `http://host[:port][/…]`.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::BadUrl { url: url.to_owned(), why: why.to_owned() };
        let rest = url.strip_prefix("http://").ok_or_else(|| bad("only `http://` URLs are supported (vLLM serves plain HTTP)"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, p.parse().map_err(|_| bad("port is not a number"))?),
            _ => (authority, 80),
        };
        Ok(Self { host: host.trim_start_matches('[').trim_end_matches(']').to_owned(), port, api_key: None })
    }

    /// The server's URL, `http://host:port`.
    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }
}

/// How requests are released.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Load {
    /// `concurrency` workers, each with one request in flight.
    Closed {
        /// Number of workers.
        concurrency: usize,
    },
    /// `rate` requests/s on the `arrival` schedule; at most `max_concurrency` in flight (the rest
    /// wait, and their wait counts as queue delay).
    Open {
        /// Requests per second.
        rate: f64,
        /// How the gaps between requests are drawn.
        arrival: Arrival,
        /// Most requests in flight (`None`: no limit).
        max_concurrency: Option<usize>,
    },
}

/// How long a run lasts and what it keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// How requests are released.
    pub load: Load,
    /// Stop sending after this long (measured part, after the warm-up).
    pub duration: Option<Duration>,
    /// Stop sending after this many measured requests.
    pub requests: Option<u64>,
    /// Requests meant to start in the first `warmup` are sent but not measured.
    pub warmup: Duration,
    /// Closed loop: workers start evenly spread over this time.
    pub ramp_up: Duration,
    /// A request with no byte for this long fails as `stall`.
    pub stall_timeout: Duration,
    /// Schedule seed (open loop).
    pub seed: u64,
}

/// Live counters the caller may read from another thread while a run goes (the CLI draws its
/// progress line from them; the library draws nothing).
#[derive(Debug, Default)]
pub struct Live {
    /// Requests sent.
    pub sent: AtomicU64,
    /// Requests finished, successfully or not.
    pub done: AtomicU64,
    /// Requests that failed.
    pub errors: AtomicU64,
    /// Output tokens received.
    pub output_tokens: AtomicU64,
    /// Nanoseconds since the run started, updated as requests end.
    pub elapsed_ns: AtomicU64,
}

/// What a run produced: one record per measured request and every inter-token gap.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// One record per measured request.
    pub records: Vec<Record>,
    /// Gaps between consecutive output-carrying chunks of measured requests, in seconds.
    pub itls: Vec<f32>,
    /// Seconds from the first measured intended send to the last measured end.
    pub window_s: f64,
}

struct Shared {
    t0: Instant,
    target: Target,
    workload: Workload,
    spec: RunSpec,
    live: Arc<Live>,
    pool: RefCell<Vec<TcpStream>>,
    outcome: RefCell<Outcome>,
    next_id: std::cell::Cell<u64>,
    measured: std::cell::Cell<u64>,
}

impl Shared {
    fn secs(&self, t: Instant) -> f64 {
        (t - self.t0).as_secs_f64()
    }

    /// Whether a request meant to leave at `t` may still be sent, and whether it is measured.
    fn admit(&self, t: Instant) -> Option<bool> {
        let since = t.saturating_duration_since(self.t0);
        if let Some(d) = self.spec.duration {
            if since >= self.spec.warmup + d {
                return None;
            }
        }
        let measured = since >= self.spec.warmup;
        if measured {
            if self.spec.requests.is_some_and(|n| self.measured.get() >= n) {
                return None;
            }
            self.measured.set(self.measured.get() + 1);
        }
        Some(measured)
    }

    fn id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }
}

/// Runs one load point to the end on a fresh current-thread runtime (blocking the caller).
pub fn run(target: &Target, workload: &Workload, spec: &RunSpec, live: Arc<Live>) -> Result<Outcome, Error> {
    if spec.duration.is_none() && spec.requests.is_none() {
        return Err(Error::Unbounded);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Runtime)?;
    let local = tokio::task::LocalSet::new();
    let outcome = local.block_on(&runtime, async {
        let shared = Rc::new(Shared {
            t0: Instant::now(),
            target: target.clone(),
            workload: workload.clone(),
            spec: spec.clone(),
            live,
            pool: RefCell::new(Vec::new()),
            outcome: RefCell::new(Outcome::default()),
            next_id: 0.into(),
            measured: 0.into(),
        });
        match spec.load {
            Load::Closed { concurrency } => closed(&shared, concurrency).await,
            Load::Open { rate, arrival, max_concurrency } => open(&shared, rate, arrival, max_concurrency).await,
        }
        let mut outcome = shared.outcome.take();
        let first = outcome.records.iter().map(|r| r.intended_s).fold(f64::INFINITY, f64::min);
        let last = outcome.records.iter().map(|r| r.end_s).fold(f64::NEG_INFINITY, f64::max);
        outcome.window_s = if outcome.records.is_empty() { 0.0 } else { last - first };
        outcome.records.sort_by_key(|r| r.id);
        outcome
    });
    Ok(outcome)
}

async fn closed(shared: &Rc<Shared>, concurrency: usize) {
    let mut workers = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let shared = shared.clone();
        let delay = shared.spec.ramp_up.mul_f64(i as f64 / concurrency.max(1) as f64);
        workers.push(tokio::task::spawn_local(async move {
            tokio::time::sleep_until(shared.t0 + delay).await;
            loop {
                let now = Instant::now();
                let Some(measured) = shared.admit(now) else { break };
                let id = shared.id();
                one(&shared, id, now, measured).await;
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
}

async fn open(shared: &Rc<Shared>, rate: f64, arrival: Arrival, max_concurrency: Option<usize>) {
    let mut schedule = Schedule::new(rate, arrival, shared.spec.seed);
    let slots = max_concurrency.map(|n| Rc::new(tokio::sync::Semaphore::new(n)));
    let mut tasks = Vec::new();
    let mut at = 0.0_f64;
    loop {
        let intended = shared.t0 + Duration::from_secs_f64(at);
        let Some(measured) = shared.admit(intended) else { break };
        tokio::time::sleep_until(intended).await;
        let id = shared.id();
        let shared2 = shared.clone();
        let slots = slots.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let _permit = match &slots {
                Some(s) => s.acquire().await.ok(),
                None => None,
            };
            one(&shared2, id, intended, measured).await;
        }));
        at += schedule.next_gap();
        if tasks.len() >= 4096 {
            tasks.retain(|t| !t.is_finished());
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Timestamps of one request as it goes.
struct Clock {
    first_byte: Option<Instant>,
    first_token: Option<Instant>,
    first_content: Option<Instant>,
    last_token: Option<Instant>,
    tokens: u64,
    usage_tokens: Option<u64>,
    prompt_tokens: Option<u64>,
    chunks: u64,
    finished: bool,
    done: bool,
    itls: Vec<f32>,
}

async fn one(shared: &Rc<Shared>, id: u64, intended: Instant, measured: bool) {
    shared.live.sent.fetch_add(1, Ordering::Relaxed);
    let body = shared.workload.body(id);
    let sent = Instant::now();
    let mut clock = Clock {
        first_byte: None,
        first_token: None,
        first_content: None,
        last_token: None,
        tokens: 0,
        usage_tokens: None,
        prompt_tokens: None,
        chunks: 0,
        finished: false,
        done: false,
        itls: Vec::new(),
    };
    let result = exchange(shared, &body, &mut clock).await;
    let end = Instant::now();
    let live = &shared.live;
    live.done.fetch_add(1, Ordering::Relaxed);
    live.elapsed_ns.store((end - shared.t0).as_nanos() as u64, Ordering::Relaxed);
    let error = match result {
        Ok(()) if !clock.done && !clock.finished => Some(ErrorKind::Truncated),
        Ok(()) if clock.first_token.is_none() => Some(ErrorKind::NoOutput),
        Ok(()) => None,
        Err(kind) => Some(kind),
    };
    if error.is_some() {
        live.errors.fetch_add(1, Ordering::Relaxed);
    }
    let output_tokens = clock.usage_tokens.unwrap_or(clock.tokens);
    live.output_tokens.fetch_add(output_tokens, Ordering::Relaxed);
    if !measured {
        return;
    }
    let s = |t: Option<Instant>| t.map(|t| shared.secs(t));
    let record = Record {
        id,
        intended_s: shared.secs(intended),
        sent_s: shared.secs(sent),
        first_byte_s: s(clock.first_byte),
        first_token_s: s(clock.first_token),
        first_content_s: s(clock.first_content),
        last_token_s: s(clock.last_token),
        end_s: shared.secs(end),
        output_tokens,
        output_tokens_from_usage: clock.usage_tokens.is_some(),
        prompt_tokens: clock.prompt_tokens,
        requested_prompt_tokens: shared.workload.requested_prompt_tokens(id),
        chunks: clock.chunks,
        error,
    };
    let mut outcome = shared.outcome.borrow_mut();
    outcome.records.push(record);
    outcome.itls.extend_from_slice(&clock.itls);
}

async fn connect(shared: &Shared) -> Result<TcpStream, ErrorKind> {
    if let Some(s) = shared.pool.borrow_mut().pop() {
        return Ok(s);
    }
    let stream = TcpStream::connect((shared.target.host.as_str(), shared.target.port)).await.map_err(|_| ErrorKind::Connect)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn exchange(shared: &Shared, body: &str, clock: &mut Clock) -> Result<(), ErrorKind> {
    let mut stream = connect(shared).await?;
    let t = &shared.target;
    let auth = t.api_key.as_ref().map(|k| format!("authorization: Bearer {k}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {}:{}\r\ncontent-type: application/json\r\naccept: text/event-stream\r\n{auth}content-length: {}\r\n\r\n",
        shared.workload.api.path(),
        t.host,
        t.port,
        body.len()
    );
    let mut req = head.into_bytes();
    req.extend_from_slice(body.as_bytes());
    if stream.write_all(&req).await.is_err() {
        // A pooled connection the server closed meanwhile: one fresh try.
        stream = TcpStream::connect((t.host.as_str(), t.port)).await.map_err(|_| ErrorKind::Connect)?;
        let _ = stream.set_nodelay(true);
        stream.write_all(&req).await.map_err(|_| ErrorKind::Connect)?;
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut head_buf: Vec<u8> = Vec::new();
    let stall = shared.spec.stall_timeout;
    // Head.
    let (resp, used) = loop {
        let n = read(&mut stream, &mut buf, stall).await?;
        if n == 0 {
            return Err(ErrorKind::Reset);
        }
        clock.first_byte.get_or_insert_with(Instant::now);
        head_buf.extend_from_slice(&buf[..n]);
        match parse_response_head(&head_buf) {
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(_) => return Err(ErrorKind::Protocol),
        }
    };
    if resp.status != 200 {
        return Err(ErrorKind::Http(resp.status));
    }
    let mut decoder = BodyDecoder::new(resp.framing);
    let mut framer = Framer::new();
    let mut bad = false;
    let mut feed = |bytes: &[u8], framer: &mut Framer| {
        decoder.decode(bytes, &mut |payload| framer.feed(payload)).map_err(|_| ErrorKind::Protocol)?;
        Ok::<bool, ErrorKind>(decoder.is_done())
    };
    let mut body_done = feed(&head_buf[used..], &mut framer)?;
    drop(head_buf);
    loop {
        let now = Instant::now();
        while let Some(event) = framer.next_event() {
            on_event(&event.0, now, clock, &mut bad);
        }
        if bad {
            return Err(ErrorKind::Protocol);
        }
        if body_done || clock.done {
            break;
        }
        let n = read(&mut stream, &mut buf, stall).await?;
        if n == 0 {
            if resp.framing == Framing::Close {
                if let Some(event) = framer.finish() {
                    on_event(&event.0, Instant::now(), clock, &mut bad);
                }
                return if bad { Err(ErrorKind::Protocol) } else { Ok(()) };
            }
            return Err(ErrorKind::Truncated);
        }
        body_done = feed(&buf[..n], &mut framer)?;
    }
    if let Some(event) = framer.finish() {
        on_event(&event.0, Instant::now(), clock, &mut bad);
    }
    if body_done && resp.keep_alive {
        shared.pool.borrow_mut().push(stream);
    }
    Ok(())
}

async fn read(stream: &mut TcpStream, buf: &mut [u8], stall: Duration) -> Result<usize, ErrorKind> {
    match tokio::time::timeout(stall, stream.read(buf)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(_)) => Err(ErrorKind::Reset),
        Err(_) => Err(ErrorKind::Stall),
    }
}

fn on_event(data: &str, now: Instant, clock: &mut Clock, bad: &mut bool) {
    let chunk = match parse_data(data) {
        Ok(Event::Done) => {
            clock.done = true;
            return;
        }
        Ok(Event::Chunk(c)) => c,
        Err(_) => {
            *bad = true;
            return;
        }
    };
    if chunk.error.is_some() {
        *bad = true;
        return;
    }
    clock.chunks += 1;
    let before = clock.usage_tokens;
    if let Some(u) = chunk.usage {
        clock.usage_tokens = Some(u.completion_tokens);
        if u.prompt_tokens > 0 {
            clock.prompt_tokens = Some(u.prompt_tokens);
        }
    }
    if chunk.finish_reason.is_some() {
        clock.finished = true;
    }
    // A choice whose running usage grew carries a token even with empty text: vLLM sends `""`
    // for a token that ends inside a multi-byte character (byte fallback) and puts its bytes
    // in a later chunk. Only running usage says so: a server that puts its one final usage on
    // the last choice after counted content chunks has not generated anything new there.
    let running = before.is_some() || clock.first_token.is_none();
    let grew = running && chunk.has_choice && chunk.usage.is_some_and(|u| u.completion_tokens > before.unwrap_or(0));
    if !chunk.has_output() && !grew {
        return;
    }
    let n = match (chunk.token_ids, before, chunk.usage) {
        (Some(n), _, _) => n,
        (None, Some(b), Some(u)) => u.completion_tokens.saturating_sub(b).max(1),
        (None, None, Some(u)) if u.completion_tokens > 0 => u.completion_tokens,
        _ => 1,
    };
    clock.tokens += n;
    if clock.first_token.is_none() {
        clock.first_token = Some(now);
    } else if let Some(last) = clock.last_token {
        clock.itls.push((now - last).as_secs_f32());
    }
    if chunk.content && clock.first_content.is_none() {
        clock.first_content = Some(now);
    }
    clock.last_token = Some(now);
}

/// `GET /v1/models`: the model ids the server serves (the first is what a run asks for when the
/// caller names none). Blocking, one short request over plain `std` TCP.
pub fn models(target: &Target, timeout: Duration) -> Result<Vec<String>, Error> {
    let fail = |why: String| Error::Models { url: target.url(), why };
    let (status, body) = request(target, "GET", "/v1/models", None, timeout).map_err(fail)?;
    if status != 200 {
        return Err(fail(format!("HTTP {status}: {}", String::from_utf8_lossy(&body).chars().take(200).collect::<String>())));
    }
    #[derive(Deserialize)]
    struct List {
        data: Vec<Model>,
    }
    #[derive(Deserialize)]
    struct Model {
        id: String,
    }
    let list: List = serde_json::from_slice(&body).map_err(|e| fail(format!("not a model list: {e}")))?;
    Ok(list.data.into_iter().map(|m| m.id).collect())
}

/// One short request over plain `std` TCP (a fresh connection, closed after it): the status and
/// the decoded body.
pub(crate) fn request(target: &Target, method: &str, path: &str, body: Option<&str>, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    use std::io::{Read, Write};
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(target.host.as_str(), target.port))
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "no address".to_owned())?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let auth = target.api_key.as_ref().map(|k| format!("authorization: Bearer {k}\r\n")).unwrap_or_default();
    let content = body.map(|b| format!("content-type: application/json\r\ncontent-length: {}\r\n", b.len())).unwrap_or_default();
    let req = format!("{method} {path} HTTP/1.1\r\nhost: {}:{}\r\n{auth}{content}connection: close\r\n\r\n{}", target.host, target.port, body.unwrap_or(""));
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let (head, used) = parse_response_head(&raw).map_err(|e| e.to_string())?.ok_or_else(|| "response ended inside its headers".to_owned())?;
    let mut out = Vec::new();
    BodyDecoder::new(head.framing).decode(&raw[used..], &mut |b| out.extend_from_slice(b)).map_err(|e| e.to_string())?;
    Ok((head.status, out))
}
