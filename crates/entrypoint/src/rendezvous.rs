//! Head/worker rendezvous before anything starts, and the heartbeat that follows.
//!
//! The head listens on its rail address. Workers connect with retry and jittered backoff, so
//! start order does not matter and a head restart is survived while waiting. Each connection:
//! head challenge (nonce) → worker hello (name, nonce, fingerprint; HMAC with the cluster token)
//! → head welcome or refusal (naming both values on a fingerprint mismatch). When every expected
//! node joined, the head releases them together. The connection stays open: both sides send a
//! heartbeat every second and treat silence beyond the heartbeat timeout, EOF or a `shutdown`
//! message as the peer's death.

use crate::log;
use crate::proto::{self, Dir, Fingerprint, Keys, Msg};
use crate::supervisor::{Event, Stop, Supervisor};
use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

static CONN_IDS: AtomicU64 = AtomicU64::new(1);

/// Where a handshake draws its nonce: `proto::nonce` (the OS RNG), or in tests an RNG that fails,
/// to prove both sides then refuse rather than fall back to something guessable.
type NonceSource = fn() -> std::io::Result<String>;

#[derive(Debug)]
pub(crate) enum PeerEvent {
    /// Head: an authenticated hello, waiting for the head's decision.
    Joining { session: Session, ip: String, fingerprint: Fingerprint },
    /// A message after the handshake.
    Msg { node: String, conn: u64, msg: Msg },
    /// The connection died (EOF, error, silence).
    Lost { node: String, conn: u64, why: String },
}

struct Writer {
    stream: TcpStream,
    keys: Keys,
    dir: Dir,
    seq: u64,
}

/// One authenticated connection to a peer.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub conn: u64,
    /// The peer's node name.
    pub node: String,
    writer: Arc<Mutex<Writer>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Writer({:?})", self.stream.peer_addr().ok())
    }
}

impl Session {
    fn new(node: &str, stream: TcpStream, keys: Keys, dir: Dir, first_seq: u64) -> Session {
        let conn = CONN_IDS.fetch_add(1, Ordering::Relaxed);
        Session { conn, node: node.to_owned(), writer: Arc::new(Mutex::new(Writer { stream, keys, dir, seq: first_seq })) }
    }

    pub(crate) fn send(&self, msg: &Msg) -> std::io::Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let seq = w.seq;
        w.seq += 1;
        let (keys, dir) = (w.keys.clone(), w.dir);
        proto::write(&mut w.stream, msg, Some((&keys, dir, seq)))
    }

    pub(crate) fn close(&self) {
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _ = w.stream.shutdown(Shutdown::Both);
    }

    /// Starts the heartbeat writer (after the handshake's reply, which must be frame 0).
    fn start_heartbeat(&self) {
        let hb = self.clone();
        std::thread::spawn(move || {
            while hb.send(&Msg::Heartbeat).is_ok() {
                std::thread::sleep(HEARTBEAT_EVERY);
            }
        });
    }

    /// Starts the reader, which reports messages and the loss of the connection.
    fn start_reader(&self, reader: BufReader<TcpStream>, recv_dir: Dir, first_recv_seq: u64, silence: Duration, tx: Sender<Event>) {
        let keys = self.writer.lock().unwrap_or_else(|e| e.into_inner()).keys.clone();
        let (node, conn) = (self.node.clone(), self.conn);
        std::thread::spawn(move || {
            let mut r = reader;
            let _ = r.get_ref().set_read_timeout(Some(silence));
            let mut seq = first_recv_seq;
            let why = loop {
                match proto::read(&mut r) {
                    Ok(rec) if !rec.verified(&keys, recv_dir, seq) => break "a message failed authentication".to_owned(),
                    Ok(rec) => {
                        seq += 1;
                        if rec.msg != Msg::Heartbeat {
                            let _ = tx.send(Event::Peer(PeerEvent::Msg { node: node.clone(), conn, msg: rec.msg }));
                        }
                    }
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        break format!("no heartbeat for {:.0?}", silence)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break "connection closed".to_owned(),
                    Err(e) => break e.to_string(),
                }
            };
            let _ = r.get_ref().shutdown(Shutdown::Both);
            let _ = tx.send(Event::Peer(PeerEvent::Lost { node, conn, why }));
        });
    }
}

/// The head's side.
pub(crate) struct Head {
    pub expected: Vec<String>,
    pub sessions: BTreeMap<String, Session>,
    /// Rail address each worker announced, for messages naming nodes.
    pub addresses: BTreeMap<String, String>,
    fingerprint: Fingerprint,
}

impl Head {
    /// Binds the rendezvous port on `ip` and accepts in the background.
    pub(crate) fn listen(
        ip: Ipv4Addr,
        port: u16,
        token: &str,
        fingerprint: Fingerprint,
        expected: Vec<String>,
        heartbeat_timeout: Duration,
        tx: Sender<Event>,
    ) -> Result<Head, Stop> {
        let addr = SocketAddrV4::new(ip, port);
        let listener = TcpListener::bind(addr)
            .map_err(|e| Stop::Fatal(format!("cannot listen on {addr} for the rendezvous: {e}; is another head running, or `SPARK_RENDEZVOUS_PORT` taken?")))?;
        let others = if expected.len() > 1 { expected[1..].join(", ") } else { "no other node".into() };
        log::info(&format!("rendezvous: listening on {addr}, waiting for {others}"));
        let token = token.to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (token, tx) = (token.clone(), tx.clone());
                std::thread::spawn(move || handshake_head(stream, &token, heartbeat_timeout, tx, proto::nonce));
            }
        });
        Ok(Head { expected, sessions: BTreeMap::new(), addresses: BTreeMap::new(), fingerprint })
    }

    fn missing(&self) -> Vec<&str> {
        self.expected[1..].iter().filter(|n| !self.sessions.contains_key(*n)).map(String::as_str).collect()
    }

    /// Handles a rendezvous event; `released` refuses late joiners.
    pub(crate) fn on_event(&mut self, ev: PeerEvent, released: bool) {
        match ev {
            PeerEvent::Joining { session, ip, fingerprint } => self.on_join(session, ip, fingerprint, released),
            PeerEvent::Lost { node, conn, why } => {
                if self.sessions.get(&node).is_some_and(|s| s.conn == conn) {
                    self.sessions.remove(&node);
                    log::info(&format!("rendezvous: `{node}` left before the release ({why}); waiting for it again"));
                }
            }
            PeerEvent::Msg { node, msg: Msg::Shutdown { reason, .. }, conn } => {
                if let Some(s) = self.sessions.get(&node).filter(|s| s.conn == conn) {
                    s.close();
                    self.sessions.remove(&node);
                    log::info(&format!("rendezvous: `{node}` is stopping ({reason}); waiting for it again"));
                }
            }
            PeerEvent::Msg { .. } => {}
        }
    }

    fn on_join(&mut self, session: Session, ip: String, fp: Fingerprint, released: bool) {
        let node = session.node.clone();
        let refuse = |reason: String| {
            log::info(&format!("rendezvous: refused `{node}` from {ip}: {reason}"));
            let _ = session.send(&Msg::Refused { reason });
            session.close();
        };
        if let Some((field, ours, theirs)) = self.fingerprint.mismatch(&fp) {
            return refuse(format!(
                "fingerprint mismatch: {field} is `{ours}` on the head `{}` but `{theirs}` on `{node}`; run the same image and serve arguments on every node",
                self.expected[0]
            ));
        }
        if node == self.expected[0] || !self.expected.contains(&node) {
            return refuse(format!(
                "node `{node}` is not a worker of this cluster (SPARK_NODES on the head is `{}`); fix SPARK_NODE_NAME or SPARK_NODES",
                self.expected.join(",")
            ));
        }
        if released {
            return refuse("the cluster already formed and is running; a node that restarts makes the whole group restart".into());
        }
        if let Some(old) = self.sessions.remove(&node) {
            log::info(&format!("rendezvous: `{node}` reconnected; dropping its previous connection"));
            old.close();
        }
        let joined = self.sessions.len() + 2;
        if session.send(&Msg::Welcome { joined, expected: self.expected.len() }).is_err() {
            return;
        }
        session.start_heartbeat();
        log::info(&format!("rendezvous: `{node}` joined from {ip} ({joined}/{} nodes)", self.expected.len()));
        self.addresses.insert(node.clone(), ip);
        self.sessions.insert(node, session);
    }

    /// Waits until every expected worker joined, or the timeout names the missing ones.
    pub(crate) fn wait_all(&mut self, sup: &mut Supervisor, timeout: Duration) -> Result<(), Stop> {
        let deadline = Instant::now() + timeout;
        while !self.missing().is_empty() {
            if Instant::now() >= deadline {
                let joined: Vec<&str> = self.sessions.keys().map(String::as_str).collect();
                return Err(Stop::Timeout(format!(
                    "rendezvous: after {:.0?}, missing node(s): {} (joined: {}); start them with SPARK_HEAD_ADDR pointing at this head and the same SPARK_TOKEN",
                    timeout,
                    self.missing().join(", "),
                    if joined.is_empty() { "none".to_owned() } else { joined.join(", ") }
                )));
            }
            if let Some(Event::Peer(ev)) = sup.next(Duration::from_millis(200))? {
                self.on_event(ev, false);
            }
        }
        Ok(())
    }

    /// Releases everyone together; ranks follow `SPARK_NODES` (head 0).
    pub(crate) fn release(&mut self, head_ip: Ipv4Addr) -> Result<BTreeMap<String, u32>, Stop> {
        let ranks: BTreeMap<String, u32> = self.expected.iter().enumerate().map(|(i, n)| (n.clone(), i as u32)).collect();
        for (node, s) in &self.sessions {
            s.send(&Msg::Release { ranks: ranks.clone(), head_ip: head_ip.to_string() }).map_err(|e| Stop::PeerLost {
                node: node.clone(),
                why: format!("sending the release: {e}"),
                requested: false,
            })?;
        }
        log::info(&format!("rendezvous: all {} nodes joined; released", self.expected.len()));
        Ok(ranks)
    }

    /// Tells every worker the head is stopping (`requested`: on request, not a failure).
    pub(crate) fn shutdown(&self, reason: &str, requested: bool) {
        for s in self.sessions.values() {
            let _ = s.send(&Msg::Shutdown { reason: reason.to_owned(), requested });
        }
    }
}

/// Head side of one connection's handshake; authenticated hellos go to the main thread.
fn handshake_head(stream: TcpStream, token: &str, silence: Duration, tx: Sender<Event>, nonce: NonceSource) {
    let peer = stream.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|_| "?".into());
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let Ok(mut w) = stream.try_clone() else { return };
    let mut r = BufReader::new(stream);
    let head_nonce = match nonce() {
        Ok(n) => n,
        Err(e) => {
            log::info(&format!("rendezvous: refused the connection from {peer}: {e}"));
            let _ = w.shutdown(Shutdown::Both);
            return;
        }
    };
    if proto::write(&mut w, &Msg::Challenge { nonce: head_nonce.clone() }, None).is_err() {
        return;
    }
    let rec = match proto::read(&mut r) {
        Ok(rec) => rec,
        Err(e) => return log::info(&format!("rendezvous: connection from {peer} sent no hello ({e})")),
    };
    let Msg::Hello { node, nonce, ip, fingerprint } = rec.msg.clone() else {
        return log::info(&format!("rendezvous: connection from {peer} did not start with a hello"));
    };
    let keys = Keys::new(token, &head_nonce, &nonce);
    if !rec.verified(&keys, Dir::ToHead, 0) {
        log::info(&format!("rendezvous: refused `{node}` from {peer}: authentication failed (its SPARK_TOKEN differs from the head's)"));
        let reason = "authentication failed: the head's SPARK_TOKEN differs from this node's; set the same token on every node".to_owned();
        let _ = proto::write(&mut w, &Msg::Refused { reason }, Some((&keys, Dir::ToWorker, 0)));
        let _ = w.shutdown(Shutdown::Both);
        return;
    }
    let session = Session::new(&node, w, keys, Dir::ToWorker, 0);
    // The reader starts now so a worker that dies while waiting is noticed; replies (welcome
    // or refusal) come from the main thread through `session`.
    let _ = tx.send(Event::Peer(PeerEvent::Joining { session: session.clone(), ip: if ip.is_empty() { peer } else { ip }, fingerprint }));
    session.start_reader(r, Dir::ToHead, 1, silence, tx);
}

/// The worker's side: joins the head (retrying), waits for the release; returns the session
/// (kept open as heartbeat) and the release's ranks.
pub(crate) struct Join {
    pub session: Session,
    pub ranks: BTreeMap<String, u32>,
    pub head_ip: Ipv4Addr,
}

/// What a worker brings to the rendezvous: where the head listens, who this node is, and how
/// long to wait.
pub(crate) struct JoinRequest<'a> {
    /// The head's rendezvous address: its first rail address and `SPARK_RENDEZVOUS_PORT`.
    pub head: SocketAddrV4,
    /// The cluster token the handshake is authenticated with.
    pub token: &'a str,
    /// This node's name, as the head's `SPARK_NODES` lists it.
    pub node: &'a str,
    /// This node's rail address, announced in the hello.
    pub ip: Ipv4Addr,
    pub fingerprint: &'a Fingerprint,
    /// How long to wait for the release (`SPARK_JOIN_TIMEOUT`).
    pub timeout: Duration,
    /// Silence after which the head counts as gone (`SPARK_HEARTBEAT_TIMEOUT`).
    pub silence: Duration,
}

pub(crate) fn join(sup: &mut Supervisor, req: &JoinRequest<'_>) -> Result<Join, Stop> {
    let (addr, node) = (SocketAddr::V4(req.head), req.node);
    let deadline = Instant::now() + req.timeout;
    let mut retry = Retry { attempt: 0, last_log: Instant::now() - Duration::from_secs(60) };
    loop {
        if Instant::now() >= deadline {
            return Err(Stop::Timeout(format!(
                "rendezvous: the head at {addr} did not release `{node}` within {:.0?}; is the head running, with `{node}` in its SPARK_NODES?",
                req.timeout
            )));
        }
        let Some(session) = connect(req, sup.sender(), proto::nonce)? else {
            retry.wait(sup, addr)?;
            continue;
        };
        retry.attempt = 0;
        if let Some(joined) = await_release(sup, req, session, deadline)? {
            return Ok(joined);
        }
    }
}

/// Connection attempts to a head that is not reachable yet.
struct Retry {
    attempt: u32,
    last_log: Instant,
}

impl Retry {
    /// Backs off with jitter so nodes started together spread out; says so every 10 s.
    fn wait(&mut self, sup: &mut Supervisor, addr: SocketAddr) -> Result<(), Stop> {
        self.attempt += 1;
        if self.last_log.elapsed() >= Duration::from_secs(10) {
            log::info(&format!("rendezvous: head {addr} not reachable yet (attempt {}); retrying", self.attempt));
            self.last_log = Instant::now();
        }
        let wait = backoff(self.attempt);
        let until = Instant::now() + wait;
        while Instant::now() < until {
            sup.next(until.saturating_duration_since(Instant::now()))?;
        }
        Ok(())
    }
}

/// Joined: waits for the release. `None`: the head went away or is stopping (join again).
fn await_release(sup: &mut Supervisor, req: &JoinRequest<'_>, session: Session, deadline: Instant) -> Result<Option<Join>, Stop> {
    let addr = SocketAddr::V4(req.head);
    loop {
        if Instant::now() >= deadline {
            session.close();
            return Err(Stop::Timeout(format!(
                "rendezvous: joined the head at {addr} but it did not release the group within {:.0?}; another node is missing (see the head's log)",
                req.timeout
            )));
        }
        match sup.next(Duration::from_millis(200))? {
            Some(Event::Peer(PeerEvent::Msg { conn, msg: Msg::Release { ranks, head_ip }, .. })) if conn == session.conn => {
                let head_ip = head_ip.parse().unwrap_or(*req.head.ip());
                log::info(&format!("rendezvous: released by the head (rank {})", ranks.get(req.node).copied().unwrap_or(0)));
                return Ok(Some(Join { session, ranks, head_ip }));
            }
            Some(Event::Peer(PeerEvent::Msg { conn, msg: Msg::Shutdown { reason, .. }, .. })) if conn == session.conn => {
                log::info(&format!("rendezvous: the head is stopping ({reason}); joining again"));
                session.close();
                return Ok(None);
            }
            Some(Event::Peer(PeerEvent::Lost { conn, why, .. })) if conn == session.conn => {
                log::info(&format!("rendezvous: lost the head while waiting ({why}); joining again"));
                return Ok(None);
            }
            _ => {}
        }
    }
}

/// One connection attempt. `Ok(None)`: nobody answered (retry); `Err`: refused, or no nonce
/// could be drawn (do not retry).
fn connect(req: &JoinRequest<'_>, tx: Sender<Event>, nonce: NonceSource) -> Result<Option<Session>, Stop> {
    let (addr, node) = (SocketAddr::V4(req.head), req.node);
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { return Ok(None) };
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let Ok(mut w) = stream.try_clone() else { return Ok(None) };
    let mut r = BufReader::new(stream);
    let Ok(rec) = proto::read(&mut r) else { return Ok(None) };
    let Msg::Challenge { nonce: head_nonce } = rec.msg else { return Ok(None) };
    let my_nonce = nonce().map_err(|e| Stop::Fatal(format!("rendezvous: cannot draw a nonce: {e}")))?;
    let keys = Keys::new(req.token, &head_nonce, &my_nonce);
    let hello = Msg::Hello { node: node.to_owned(), nonce: my_nonce, ip: req.ip.to_string(), fingerprint: req.fingerprint.clone() };
    if proto::write(&mut w, &hello, Some((&keys, Dir::ToHead, 0))).is_err() {
        return Ok(None);
    }
    let Ok(reply) = proto::read(&mut r) else { return Ok(None) };
    let authentic = reply.verified(&keys, Dir::ToWorker, 0);
    match (reply.msg, authentic) {
        (Msg::Welcome { joined, expected }, true) => {
            log::info(&format!("rendezvous: joined the head at {addr} ({joined}/{expected} nodes); waiting for the release"));
            let session = Session::new("head", w, keys, Dir::ToHead, 1);
            session.start_reader(r, Dir::ToWorker, 1, req.silence, tx);
            session.start_heartbeat();
            Ok(Some(session))
        }
        (Msg::Refused { reason }, true) => Err(Stop::Fatal(format!("rendezvous: the head at {addr} refused `{node}`: {reason}"))),
        (Msg::Refused { reason }, false) => Err(Stop::Fatal(format!(
            "rendezvous: the head at {addr} refused `{node}`: {reason} (its reply is not signed with our token either: SPARK_TOKEN differs between the nodes)"
        ))),
        (_, false) => Err(Stop::Fatal(format!(
            "rendezvous: the head at {addr} answered with a message not signed with our token; set the same SPARK_TOKEN on every node"
        ))),
        (other, true) => Err(Stop::Fatal(format!("rendezvous: unexpected answer from the head at {addr}: {other:?}"))),
    }
}

/// 0.5 s doubling to 5 s, times a jitter in [0.5, 1.5).
fn backoff(attempt: u32) -> Duration {
    const BACKOFF: backoff::Backoff = backoff::Backoff { first: Duration::from_millis(500), max: Duration::from_secs(5), jitter: 0.5..1.5 };
    BACKOFF.delay(attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded_with_jitter() {
        for a in 1..20 {
            let b = backoff(a).as_secs_f64();
            assert!((0.25..7.5).contains(&b), "attempt {a}: {b}");
        }
        assert!(backoff(1) < Duration::from_millis(750));
    }

    fn no_entropy() -> std::io::Result<String> {
        Err(std::io::Error::other("the OS random number generator failed: no entropy"))
    }

    fn fp() -> Fingerprint {
        Fingerprint { image: "sha256:aa".into(), serve: vec!["vllm".into()], model: "m".into(), entrypoint: "0".into(), backend: "ray".into() }
    }

    /// The head's side of one connection, run on a real socket; returns what the peer read
    /// before the head closed (or `None` if it kept the connection open) and what reached the main loop.
    fn head_answers(nonce: NonceSource) -> (Option<Vec<u8>>, Vec<Event>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let head = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            handshake_head(stream, "secret", Duration::from_secs(5), tx, nonce);
        });
        let mut peer = TcpStream::connect(addr).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut got = Vec::new();
        let closed = loop {
            let mut buf = [0u8; 512];
            match std::io::Read::read(&mut peer, &mut buf) {
                Ok(0) => break true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => break false,
            }
        };
        drop(peer);
        head.join().unwrap();
        (closed.then_some(got), rx.try_iter().collect())
    }

    #[test]
    fn a_head_without_randomness_refuses_the_connection() {
        let (read, events) = head_answers(no_entropy);
        assert_eq!(read, Some(Vec::new()), "the head must close without sending a challenge");
        assert!(events.is_empty(), "{events:?}");
        // The same head with the OS RNG challenges the peer (and waits for its hello).
        let (read, _) = head_answers(proto::nonce);
        assert_eq!(read, None, "a working head keeps the connection open for the hello");
    }

    /// A worker that cannot draw its nonce stops as Fatal at once (no retry, no hello sent).
    #[test]
    fn a_worker_without_randomness_stops_as_fatal() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let head = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut w = stream.try_clone().unwrap();
            proto::write(&mut w, &Msg::Challenge { nonce: "0123456789abcdef0123456789abcdef".into() }, None).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut rest = Vec::new();
            std::io::Read::read_to_end(&mut BufReader::new(stream), &mut rest).unwrap();
            rest
        });
        let (tx, _rx) = std::sync::mpsc::channel();
        let fingerprint = fp();
        let req = JoinRequest {
            head: SocketAddrV4::new(Ipv4Addr::LOCALHOST, addr.port()),
            token: "secret",
            node: "spark-2",
            ip: Ipv4Addr::LOCALHOST,
            fingerprint: &fingerprint,
            timeout: Duration::from_secs(5),
            silence: Duration::from_secs(5),
        };
        let r = connect(&req, tx, no_entropy);
        match r {
            Err(Stop::Fatal(m)) => assert!(m.contains("cannot draw a nonce") && m.contains("random number generator failed"), "{m}"),
            other => panic!("expected Fatal, got {other:?}"),
        }
        assert!(head.join().unwrap().is_empty(), "the worker sent a hello without a nonce of its own");
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    fn request(port: u16, fingerprint: &Fingerprint, timeout: Duration) -> JoinRequest<'_> {
        JoinRequest {
            head: SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
            token: "secret",
            node: "b",
            ip: Ipv4Addr::LOCALHOST,
            fingerprint,
            timeout,
            silence: Duration::from_secs(5),
        }
    }

    /// A worker started before its head retries until the head listens, joins, and is released
    /// with the ranks of the head's node list.
    #[test]
    fn a_worker_started_before_its_head_is_released_with_its_rank() {
        let port = free_port();
        let head = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            let mut sup = Supervisor::detached();
            let nodes = vec!["a".to_owned(), "b".to_owned()];
            let mut head =
                Head::listen(Ipv4Addr::LOCALHOST, port, "secret", fp(), nodes, Duration::from_secs(5), sup.sender()).unwrap_or_else(|_| panic!("listen"));
            head.wait_all(&mut sup, Duration::from_secs(20)).unwrap_or_else(|_| panic!("the worker did not join"));
            head.release(Ipv4Addr::LOCALHOST).unwrap_or_else(|_| panic!("release"));
            head
        });
        let fingerprint = fp();
        let Ok(joined) = join(&mut Supervisor::detached(), &request(port, &fingerprint, Duration::from_secs(20))) else { panic!("join failed") };
        assert_eq!(joined.ranks, BTreeMap::from([("a".to_owned(), 0), ("b".to_owned(), 1)]));
        assert_eq!(joined.head_ip, Ipv4Addr::LOCALHOST);
        head.join().unwrap();
    }

    #[test]
    fn a_worker_whose_head_never_listens_times_out_naming_itself() {
        let port = free_port();
        let fingerprint = fp();
        let Err(Stop::Timeout(m)) = join(&mut Supervisor::detached(), &request(port, &fingerprint, Duration::from_secs(1))) else {
            panic!("expected a timeout")
        };
        assert!(m.starts_with(&format!("rendezvous: the head at 127.0.0.1:{port} did not release `b` within 1s;")), "{m}");
    }
}
