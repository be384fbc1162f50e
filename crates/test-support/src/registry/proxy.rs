//! A TCP proxy in front of the registry that counts the bytes in each direction (what the
//! registry received, what the client downloaded) and can run a hook when a threshold passes.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Hook = Box<dyn FnMut() + Send>;
/// The one-shot hook and the byte count that fires it.
type HookSlot = Arc<Mutex<Option<(u64, Hook)>>>;

pub struct Proxy {
    pub port: u16,
    /// Client → registry bytes (requests, uploads).
    pub sent: Arc<AtomicU64>,
    /// Registry → client bytes (responses, downloads).
    pub received: Arc<AtomicU64>,
    hook: Arc<Mutex<Option<(u64, Hook)>>>,
    faults: Arc<Mutex<Vec<Fault>>>,
    /// Connections answered with a fault instead of being forwarded.
    pub faults_served: Arc<AtomicU64>,
    live: Arc<Mutex<Vec<TcpStream>>>,
    /// The most client → registry upload streams open at once.
    pub peak: Arc<AtomicU64>,
    /// Microseconds slept per forwarded client chunk, to make transfers overlap measurably.
    pub delay_us: Arc<AtomicU64>,
}

/// A scripted failure for the next new connection.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Read the request, answer this status (with `Retry-After: 0` for 429/503) and close.
    Status(u16),
    /// Accept and close at once: the client sees a reset / empty reply.
    Reset,
}

impl Proxy {
    pub fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let hook: Arc<Mutex<Option<(u64, Hook)>>> = Arc::default();
        let faults: Arc<Mutex<Vec<Fault>>> = Arc::default();
        let faults_served = Arc::new(AtomicU64::new(0));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (active, peak, delay_us) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (a, pk, dl) = (active, Arc::clone(&peak), Arc::clone(&delay_us));
        let (s, r, h, f, fs, l) =
            (Arc::clone(&sent), Arc::clone(&received), Arc::clone(&hook), Arc::clone(&faults), Arc::clone(&faults_served), Arc::clone(&live));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let fault = {
                    let mut q = f.lock().unwrap();
                    if q.is_empty() {
                        None
                    } else {
                        Some(q.remove(0))
                    }
                };
                if let Some(fault) = fault {
                    fs.fetch_add(1, Ordering::SeqCst);
                    if let Fault::Status(code) = fault {
                        read_head(&mut client);
                        let extra = if matches!(code, 429 | 503) { "Retry-After: 0\r\n" } else { "" };
                        let _ = write!(client, "HTTP/1.1 {code} Injected\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n");
                    }
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                l.lock().unwrap().push(client.try_clone().unwrap());
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let gauge = Gauge { active: Arc::clone(&a), peak: Arc::clone(&pk), delay_us: Arc::clone(&dl) };
                pump(client.try_clone().unwrap(), upstream.try_clone().unwrap(), Arc::clone(&s), Some(Arc::clone(&h)), Some(gauge));
                pump(upstream, client, Arc::clone(&r), None, None);
            }
        });
        Proxy { port, sent, received, hook, faults, faults_served, live, peak, delay_us }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs `f` once, when the client has sent more than `bytes` (counted from now).
    pub fn when_sent_exceeds(&self, bytes: u64, f: impl FnMut() + Send + 'static) {
        *self.hook.lock().unwrap() = Some((self.sent.load(Ordering::SeqCst) + bytes, Box::new(f)));
    }

    /// The next new connections fail, one fault each, in order.
    /// Open connections are closed first, so the client's next request opens a new one.
    pub fn inject(&self, faults: &[Fault]) {
        self.faults.lock().unwrap().extend_from_slice(faults);
        for c in self.live.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    pub fn reset(&self) {
        self.sent.store(0, Ordering::SeqCst);
        self.received.store(0, Ordering::SeqCst);
    }
}

/// Counts the client streams that are sending a request body at the moment.
struct Gauge {
    active: Arc<AtomicU64>,
    peak: Arc<AtomicU64>,
    delay_us: Arc<AtomicU64>,
}

fn pump(mut from: TcpStream, mut to: TcpStream, counter: Arc<AtomicU64>, hook: Option<HookSlot>, gauge: Option<Gauge>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        let mut busy = false;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(g) = &gauge {
                // A stream counts as active from its first large chunk (a body) on.
                if !busy && n >= 16 << 10 {
                    busy = true;
                    let now = g.active.fetch_add(1, Ordering::SeqCst) + 1;
                    g.peak.fetch_max(now, Ordering::SeqCst);
                }
                let d = g.delay_us.load(Ordering::Relaxed);
                if d > 0 {
                    std::thread::sleep(std::time::Duration::from_micros(d));
                }
            }
            let total = counter.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if let Some(h) = &hook {
                let mut slot = h.lock().unwrap();
                if slot.as_ref().is_some_and(|(limit, _)| total > *limit) {
                    let (_, mut f) = slot.take().unwrap();
                    drop(slot);
                    f();
                    break;
                }
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        if let (Some(g), true) = (&gauge, busy) {
            g.active.fetch_sub(1, Ordering::SeqCst);
        }
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    });
}

/// Reads a request head (up to the blank line) so the fault answer follows a whole request.
fn read_head(c: &mut TcpStream) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match c.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
}
