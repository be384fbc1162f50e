//! Children and events: spawns named children as process-group leaders with their output
//! prefixed and scanned for NCCL transport lines, turns signals, exits, peer losses and probe
//! results into one event stream, decides which events stop the node, and stops everything
//! within the grace period (SIGTERM, wait, SIGKILL, reap until nothing is left).

use crate::log;
use crate::pid1::{self, ProcessTable, SysEvent};
use crate::rendezvous::PeerEvent;
use cluster::derive::NODE_SPECIFIC_VARS;
use cluster::nccl::{Net, Watcher};
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) enum Event {
    Sys(SysEvent),
    Peer(PeerEvent),
    /// The readiness probe finished: the model name, or what never answered.
    Ready(Result<String, String>),
    /// A liveness look after ready.
    Live(crate::liveness::Look),
}

/// Why the node stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    Signal(Signal),
    /// A child that must keep running exited.
    Child {
        name: String,
        code: i32,
    },
    PeerLost {
        node: String,
        why: String,
        /// The peer stopped on request (its `shutdown` said so): no failure of this group.
        requested: bool,
    },
    /// A wait ran out of time; the message names what is missing.
    Timeout(String),
    /// Bad configuration, failed preflight, refusal: no restart fixes it.
    Fatal(String),
    /// After ready, the engine stopped producing tokens and answering (liveness looks).
    Wedged(String),
}

impl Stop {
    /// The exit code: a signal's 128+n, a child's own code, 3 for a lost peer, 4 for a timeout,
    /// 5 for a wedged engine, 2 for fatal errors.
    pub(crate) fn code(&self) -> i32 {
        match self {
            Stop::Signal(s) => 128 + *s as i32,
            Stop::Child { code, .. } => *code,
            Stop::PeerLost { .. } => 3,
            Stop::Timeout(_) => 4,
            Stop::Fatal(_) => 2,
            Stop::Wedged(_) => 5,
        }
    }
}

struct Tracked {
    pid: i32,
    name: String,
    /// Its exit stops the node (ray, serve); helper commands are not critical.
    critical: bool,
}

pub(crate) struct Supervisor {
    procs: Box<dyn ProcessTable>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    children: Vec<Tracked>,
    /// Exit codes of tracked children that ended, by pid (helpers read theirs from here).
    exited: BTreeMap<i32, i32>,
    /// Serve command's exit code, if it ended (the code PID 1 exits with on a signal).
    pub serve_code: Option<i32>,
    /// The rendezvous released the group (late joiners are refused from then on).
    pub released: bool,
    /// Events that arrived while a helper ran (`capture`), handed out by `next` first.
    pending: VecDeque<Event>,
    nccl: Arc<Mutex<Watcher>>,
    expect_ib: Arc<Mutex<bool>>,
}

/// NCCL processes the watcher remembers: a group has a few per node, but PID 1 lives for days
/// and every restart of the group brings new pids; the oldest are forgotten past this.
pub(crate) const NCCL_PROCESSES: usize = 256;

impl Supervisor {
    pub(crate) fn start() -> std::io::Result<Supervisor> {
        let (tx, rx) = channel();
        let sys_tx = tx.clone();
        pid1::start(move |e| {
            let _ = sys_tx.send(Event::Sys(e));
        })
        .map_err(std::io::Error::from)?;
        Ok(Supervisor::with(Box::new(pid1::System), tx, rx))
    }

    /// A supervisor over `procs`, fed by `rx` (the signal thread, or a test).
    fn with(procs: Box<dyn ProcessTable>, tx: Sender<Event>, rx: Receiver<Event>) -> Supervisor {
        Supervisor {
            procs,
            tx,
            rx,
            children: Vec::new(),
            exited: BTreeMap::new(),
            serve_code: None,
            released: false,
            pending: VecDeque::new(),
            nccl: Arc::new(Mutex::new(Watcher::bounded(NCCL_PROCESSES))),
            expect_ib: Arc::new(Mutex::new(false)),
        }
    }

    /// A supervisor fed only through its own sender: no signal thread, no children (for tests of
    /// the rendezvous over loopback).
    #[cfg(test)]
    pub(crate) fn detached() -> Supervisor {
        let (tx, rx) = channel();
        Supervisor::with(Box::new(pid1::System), tx, rx)
    }

    pub(crate) fn sender(&self) -> Sender<Event> {
        self.tx.clone()
    }

    pub(crate) fn expect_ib(&self, yes: bool) {
        *self.expect_ib.lock().unwrap_or_else(|e| e.into_inner()) = yes;
    }

    pub(crate) fn expects_ib(&self) -> bool {
        *self.expect_ib.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `timeout` for the critical child `name` to end by itself; its exit code.
    /// Other events are dropped: the node is stopping anyway.
    pub(crate) fn wait_child(&mut self, name: &str, timeout: Duration) -> Option<i32> {
        if !self.children.iter().any(|c| c.name == name) {
            return None;
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Err(Stop::Child { name: n, code }) = self.next(deadline.saturating_duration_since(Instant::now())) {
                if n == name {
                    return Some(code);
                }
            }
        }
        None
    }

    /// Spawns `argv` as `name` with `env` added; its output goes to the log with its name.
    pub(crate) fn spawn(&mut self, name: &str, argv: &[String], env: &BTreeMap<String, String>, critical: bool) -> Result<i32, Stop> {
        let child = self.command(name, argv, env)?.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
        let mut child = child.map_err(|e| Stop::Fatal(format!("cannot start {name} `{}`: {e}", argv[0])))?;
        let pid = child.id() as i32;
        if let Some(out) = child.stdout.take() {
            self.pump(name, out);
        }
        if let Some(err) = child.stderr.take() {
            self.pump(name, err);
        }
        self.children.push(Tracked { pid, name: name.to_owned(), critical });
        log::info(&format!("started {name} (pid {pid}): {}", argv.join(" ")));
        Ok(pid)
    }

    /// Runs a helper to completion (events keep flowing meanwhile), returning its exit code and
    /// stdout. Its stderr goes to the log.
    pub(crate) fn capture(&mut self, name: &str, argv: &[String], env: &BTreeMap<String, String>, timeout: Duration) -> Result<(i32, String), Stop> {
        let child = self.command(name, argv, env)?.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
        let mut child = child.map_err(|e| Stop::Fatal(format!("cannot start {name} `{}`: {e}", argv[0])))?;
        let pid = child.id() as i32;
        self.children.push(Tracked { pid, name: name.to_owned(), critical: false });
        let mut out = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        if let Some(err) = child.stderr.take() {
            self.pump(name, err);
        }
        let deadline = Instant::now() + timeout;
        while !self.exited.contains_key(&pid) {
            if Instant::now() >= deadline {
                self.procs.signal_group(pid, Signal::SIGKILL);
                let _ = self.next(Duration::from_millis(200));
                return Ok((124, String::new()));
            }
            if let Some(ev) = self.receive(Duration::from_millis(100))? {
                self.pending.push_back(ev);
            }
        }
        let code = self.exited.remove(&pid).unwrap_or(1);
        Ok((code, reader.join().unwrap_or_default()))
    }

    fn command(&self, name: &str, argv: &[String], env: &BTreeMap<String, String>) -> Result<Command, Stop> {
        // Resolve the program first: a failed exec is then reported here as one clear line.
        let path_var = env.get("PATH").cloned().or_else(|| std::env::var("PATH").ok()).unwrap_or_default();
        let program = resolve(&argv[0], &path_var)
            .ok_or_else(|| Stop::Fatal(format!("cannot start {name}: `{}` is not an executable file on PATH ({path_var})", argv[0])))?;
        let mut cmd = Command::new(program);
        // The cluster secret stays with the entrypoint: children (Ray, vLLM, their workers) do
        // not need it, and their environments are readable in /proc and in Ray's dashboards.
        cmd.args(&argv[1..]).envs(env).env_remove("SPARK_TOKEN").stdin(Stdio::null());
        // Node-specific variables come from the rails found at run time only: a value inherited
        // from a rendered env file (say `NCCL_IB_HCA` on a node that fell back to sockets) must
        // not survive next to the derived ones.
        for k in NODE_SPECIFIC_VARS {
            if !env.contains_key(*k) {
                cmd.env_remove(k);
            }
        }
        // Own process group: signals are forwarded to the whole group, and a terminal's ^C
        // reaches the entrypoint first.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        std::os::unix::process::CommandExt::arg0(&mut cmd, &argv[0]);
        pid1::unblock_signals_in_child(&mut cmd);
        Ok(cmd)
    }

    fn pump(&self, name: &str, stream: impl Read + Send + 'static) {
        let name = name.to_owned();
        let nccl = Arc::clone(&self.nccl);
        let expect_ib = Arc::clone(&self.expect_ib);
        std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf).map(|n| n > 0).unwrap_or(false) {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                log::line(&name, line);
                let seen = nccl.lock().unwrap_or_else(|e| e.into_inner()).feed(line);
                if let Some(t) = seen {
                    let msg = format!("nccl: process {}:{} of {name} uses {}", t.host, t.pid, t.net);
                    if t.net != Net::Ib && *expect_ib.lock().unwrap_or_else(|e| e.into_inner()) {
                        log::loud(&format!(
                            "{msg} although the rails passed the RDMA checks: NCCL fell back from RoCE to TCP (check NCCL_IB_HCA, NCCL_NET, /etc/nccl.conf)"
                        ));
                    } else {
                        log::info(&msg);
                    }
                }
                buf.clear();
            }
        });
    }

    /// Waits up to `timeout` for one event. Events that stop the node come back as `Err`; the
    /// others (peer messages, probe results, exits of helpers) as `Ok(Some(_))`.
    pub(crate) fn next(&mut self, timeout: Duration) -> Result<Option<Event>, Stop> {
        match self.pending.pop_front() {
            Some(ev) => Ok(Some(ev)),
            None => self.receive(timeout),
        }
    }

    fn receive(&mut self, timeout: Duration) -> Result<Option<Event>, Stop> {
        let ev = match self.rx.recv_timeout(timeout) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => return Ok(None),
            Err(RecvTimeoutError::Disconnected) => return Err(Stop::Fatal("event channel closed".into())),
        };
        match ev {
            Event::Sys(SysEvent::Signal(sig)) if pid1::is_stop_signal(sig) => {
                log::info(&format!("received {sig}; stopping"));
                Err(Stop::Signal(sig))
            }
            Event::Sys(SysEvent::Signal(sig)) => {
                for c in &self.children {
                    self.procs.signal_group(c.pid, sig);
                }
                Ok(None)
            }
            Event::Sys(SysEvent::Reaped { pid, code }) => {
                let Some(i) = self.children.iter().position(|c| c.pid == pid) else {
                    return Ok(None); // an orphan re-parented to us: reaped, nothing else to do
                };
                let c = self.children.remove(i);
                self.exited.insert(pid, code);
                if c.name == "serve" {
                    self.serve_code = Some(code);
                }
                if c.critical {
                    log::info(&format!("{} (pid {pid}) exited with code {code}", c.name));
                    // A critical child ending cleanly still ends the group's purpose: report it
                    // as a failure so restart policies restart the group. The serve command
                    // too: real vLLM (0.32) exits 0 by itself seconds after losing a worker.
                    // (A requested stop is a signal: the serve command's own status is kept.)
                    // The benchmark ends by design: its own status counts.
                    let code = if code == 0 && c.name != "bench" { 1 } else { code };
                    return Err(Stop::Child { name: c.name, code });
                }
                Ok(None)
            }
            other => Ok(Some(other)),
        }
    }

    /// Stops every child and descendant: `first` (the received signal, or SIGTERM) to each child
    /// group and each descendant, then SIGKILL after `grace`, then reaps until none is left.
    pub(crate) fn stop_all(&mut self, first: Signal, grace: Duration) {
        let live = self.procs.descendants();
        if live.is_empty() {
            return;
        }
        log::info(&format!("stopping {} process(es) with {first}, SIGKILL after {:.0?}", live.len(), grace));
        for c in &self.children {
            self.procs.signal_group(c.pid, first);
        }
        for pid in &live {
            self.procs.signal_pid(*pid, first);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !self.procs.descendants().is_empty() {
            let _ = self.next(Duration::from_millis(50));
        }
        let left = self.procs.descendants();
        if !left.is_empty() {
            log::info(&format!("{} process(es) still running after {:.0?}: SIGKILL", left.len(), grace));
            for c in &self.children {
                self.procs.signal_group(c.pid, Signal::SIGKILL);
            }
            for pid in left {
                self.procs.signal_pid(pid, Signal::SIGKILL);
            }
            let hard = Instant::now() + Duration::from_secs(5);
            while Instant::now() < hard && !self.procs.descendants().is_empty() {
                let _ = self.next(Duration::from_millis(20));
            }
        }
        // Take the exits reaped last (the serve command's status decides the exit code), and
        // let the output pumps print the last lines.
        while !matches!(self.receive(Duration::from_millis(100)), Ok(None)) {}
    }
}

/// `program` as an executable path: as given when it has a `/`, else the first match on `path`.
fn resolve(program: &str, path: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let ok = |p: &std::path::Path| p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return ok(&p).then_some(p);
    }
    path.split(':').filter(|d| !d.is_empty()).map(|d| std::path::Path::new(d).join(program)).find(|p| ok(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    /// (`group` or `pid`, target, signal)
    type Sent = Vec<(&'static str, i32, Signal)>;

    /// A process table where every process dies on the signals in `deadly`, recording all sends.
    #[derive(Clone, Default)]
    struct Table {
        live: Arc<Mutex<Vec<i32>>>,
        sent: Arc<Mutex<Sent>>,
        deadly: Vec<Signal>,
    }

    impl ProcessTable for Table {
        fn signal_group(&self, pgid: i32, sig: Signal) {
            self.sent.lock().unwrap().push(("group", pgid, sig));
            if self.deadly.contains(&sig) {
                self.live.lock().unwrap().clear();
            }
        }
        fn signal_pid(&self, pid: i32, sig: Signal) {
            self.sent.lock().unwrap().push(("pid", pid, sig));
        }
        fn descendants(&self) -> Vec<i32> {
            self.live.lock().unwrap().clone()
        }
    }

    fn supervisor(t: &Table) -> (Supervisor, Sender<Event>) {
        let (tx, rx) = channel();
        (Supervisor::with(Box::new(t.clone()), tx.clone(), rx), tx)
    }

    fn track(s: &mut Supervisor, pid: i32, name: &str, critical: bool) {
        s.children.push(Tracked { pid, name: name.into(), critical });
    }

    #[test]
    fn stop_escalates_to_sigkill_only_after_the_grace_period() {
        let t = Table { deadly: vec![Signal::SIGKILL], ..Table::default() };
        t.live.lock().unwrap().extend([10, 11]);
        let (mut s, _tx) = supervisor(&t);
        track(&mut s, 10, "serve", true);
        let start = Instant::now();
        s.stop_all(Signal::SIGTERM, Duration::from_millis(300));
        assert!(start.elapsed() >= Duration::from_millis(300), "SIGKILL came before the grace period ended");
        let sent = t.sent.lock().unwrap().clone();
        let term = sent.iter().position(|s| *s == ("group", 10, Signal::SIGTERM)).expect("SIGTERM to the serve group");
        let kill = sent.iter().position(|s| *s == ("group", 10, Signal::SIGKILL)).expect("SIGKILL to the serve group");
        assert!(term < kill);
        assert!(sent.contains(&("pid", 11, Signal::SIGTERM)), "descendants outside the groups get the signal too: {sent:?}");
    }

    #[test]
    fn stop_ends_early_when_children_obey_sigterm() {
        let t = Table { deadly: vec![Signal::SIGTERM, Signal::SIGKILL], ..Table::default() };
        t.live.lock().unwrap().push(10);
        let (mut s, _tx) = supervisor(&t);
        track(&mut s, 10, "ray", true);
        let start = Instant::now();
        s.stop_all(Signal::SIGTERM, Duration::from_secs(30));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!t.sent.lock().unwrap().iter().any(|(_, _, sig)| *sig == Signal::SIGKILL));
    }

    #[test]
    fn events_decide_how_the_node_stops() {
        let t = Table::default();
        let (mut s, tx) = supervisor(&t);
        track(&mut s, 10, "ray", true);
        track(&mut s, 20, "serve", true);
        track(&mut s, 30, "ray-status", false);
        let d = Duration::from_millis(100);
        // Forwarded, not a stop.
        tx.send(Event::Sys(SysEvent::Signal(Signal::SIGUSR1))).unwrap();
        assert!(matches!(s.next(d), Ok(None)));
        assert!(t.sent.lock().unwrap().contains(&("group", 20, Signal::SIGUSR1)));
        // An orphan re-parented to us, and a helper: reaped, not a stop.
        tx.send(Event::Sys(SysEvent::Reaped { pid: 99, code: 0 })).unwrap();
        assert!(matches!(s.next(d), Ok(None)));
        tx.send(Event::Sys(SysEvent::Reaped { pid: 30, code: 1 })).unwrap();
        assert!(matches!(s.next(d), Ok(None)));
        assert_eq!(s.exited.get(&30), Some(&1));
        // Ray ending, even cleanly, stops the node with a failure code.
        tx.send(Event::Sys(SysEvent::Reaped { pid: 10, code: 0 })).unwrap();
        assert_eq!(s.next(d).err(), Some(Stop::Child { name: "ray".into(), code: 1 }));
        // The serve command's own status is kept for the exit code.
        track(&mut s, 21, "serve", true);
        tx.send(Event::Sys(SysEvent::Reaped { pid: 21, code: 0 })).unwrap();
        assert_eq!(s.next(d).err(), Some(Stop::Child { name: "serve".into(), code: 1 }), "an unrequested clean exit is a failure");
        assert_eq!(s.serve_code, Some(0));
        tx.send(Event::Sys(SysEvent::Reaped { pid: 20, code: 143 })).unwrap();
        assert_eq!(s.next(d).err(), Some(Stop::Child { name: "serve".into(), code: 143 }));
        assert_eq!(s.serve_code, Some(143));
        tx.send(Event::Sys(SysEvent::Signal(Signal::SIGTERM))).unwrap();
        assert_eq!(s.next(d).err(), Some(Stop::Signal(Signal::SIGTERM)));
        assert_eq!(Stop::Signal(Signal::SIGTERM).code(), 143);
        assert_eq!(Stop::PeerLost { node: "b".into(), why: String::new(), requested: false }.code(), 3);
        assert_eq!(Stop::Timeout(String::new()).code(), 4);
    }

    /// Children's output goes through the NCCL watcher; however many processes come and go over
    /// the days, it keeps at most `NCCL_PROCESSES`, the newest.
    #[test]
    fn the_nccl_watcher_keeps_a_bounded_process_list() {
        let (s, _tx) = supervisor(&Table::default());
        let n = 4 * NCCL_PROCESSES as u32;
        let out: String = (0..n).map(|pid| format!("spark-a:{pid}:{pid} [0] NCCL INFO Using network IB\n")).collect();
        s.pump("vllm", std::io::Cursor::new(out.into_bytes()));
        let start = Instant::now();
        while s.nccl.lock().unwrap().analysis().lines < u64::from(n) {
            assert!(start.elapsed() < Duration::from_secs(30), "the output was not read");
            std::thread::sleep(Duration::from_millis(10));
        }
        let w = s.nccl.lock().unwrap();
        let a = w.analysis();
        assert!(a.processes.len() <= NCCL_PROCESSES, "{} processes kept", a.processes.len());
        assert_eq!(a.processes.len() as u64 + a.processes_dropped, u64::from(n));
        assert_eq!(a.processes.last().map(|p| p.pid), Some(n - 1), "the newest is kept");
    }
}
