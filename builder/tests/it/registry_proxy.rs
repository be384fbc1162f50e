//! A TCP proxy in front of the registry that counts the bytes in each direction (what the
//! registry received, what the client downloaded) and can run a hook when a threshold passes.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Hook = Box<dyn FnMut() + Send>;

pub struct Proxy {
    pub port: u16,
    /// Client → registry bytes (requests, uploads).
    pub sent: Arc<AtomicU64>,
    /// Registry → client bytes (responses, downloads).
    pub received: Arc<AtomicU64>,
    hook: Arc<Mutex<Option<(u64, Hook)>>>,
}

impl Proxy {
    pub fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let hook: Arc<Mutex<Option<(u64, Hook)>>> = Arc::default();
        let (s, r, h) = (Arc::clone(&sent), Arc::clone(&received), Arc::clone(&hook));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                pump(client.try_clone().unwrap(), upstream.try_clone().unwrap(), Arc::clone(&s), Some(Arc::clone(&h)));
                pump(upstream, client, Arc::clone(&r), None);
            }
        });
        Proxy { port, sent, received, hook }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs `f` once, when the client has sent more than `bytes` (counted from now).
    pub fn when_sent_exceeds(&self, bytes: u64, f: impl FnMut() + Send + 'static) {
        *self.hook.lock().unwrap() = Some((self.sent.load(Ordering::SeqCst) + bytes, Box::new(f)));
    }

    pub fn reset(&self) {
        self.sent.store(0, Ordering::SeqCst);
        self.received.store(0, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, counter: Arc<AtomicU64>, hook: Option<Arc<Mutex<Option<(u64, Hook)>>>>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
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
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    });
}
