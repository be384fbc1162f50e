//! The life of one node: preflight → rendezvous → launch (Ray or native) → readiness →
//! supervision → stop. Every wait goes through the supervisor, so a signal, a dying child or a
//! lost peer ends it at once.

use crate::budget::{self, Decision, Failure, History};
use crate::launch;
use crate::liveness::{self, Look};
use crate::log;
use crate::proto::{Fingerprint, Msg};
use crate::readiness::{self, Status};
use crate::rendezvous::{self, Head, PeerEvent, Session};
use crate::settings::{Config, Mode};
use crate::supervisor::{Event, Stop, Supervisor};
use cluster::model::{Backend, Role};
use cluster::preflight::{self, Spec, Transport};
use cluster::sysfs::Root;
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

/// The longest a failed node waits for its children before SIGKILL.
const FAILURE_GRACE: Duration = Duration::from_secs(5);

/// Peers to tell when this node stops.
enum Peers {
    None,
    Head(Head),
    Worker(Session),
}

pub(crate) struct Node<'a> {
    cfg: &'a Config,
    sup: Supervisor,
    peers: Peers,
    /// The RDMA devices the preflight gave NCCL (`NCCL_IB_HCA`), without ports.
    hcas: Vec<String>,
    /// Group restarts used in the budget's window (shown in the status file).
    restarts_used: u32,
    /// Consecutive failed liveness looks.
    live_failures: u32,
    /// Liveness looks that found progress and those that sent a completion (the probe's cost).
    looks: (u64, u64),
}

/// Runs the node to its end and returns the process exit code.
pub(crate) fn run(cfg: &Config) -> i32 {
    let sup = match Supervisor::start() {
        Ok(s) => s,
        Err(e) => {
            log::info(&format!("error: cannot set up signal handling: {e}"));
            return 2;
        }
    };
    let mut node = Node { cfg, sup, peers: Peers::None, hcas: Vec::new(), restarts_used: 0, live_failures: 0, looks: (0, 0) };
    // The restart budget is serving's: a one-shot benchmark neither waits for it nor spends it
    // (its container mounts the same state volume).
    let budget = if cfg.mode == Mode::Serve { node.within_budget() } else { Ok(()) };
    let stop = match budget.and_then(|()| node.lifecycle()) {
        Ok(never) => match never {},
        Err(stop) => stop,
    };
    node.finish(stop)
}

enum Never {}

impl Node<'_> {
    fn status(&self, state: &str, detail: &str) {
        let api = (self.cfg.role == Role::Head && state == "ready").then(|| format!("127.0.0.1:{}", self.cfg.api_port));
        let st = Status {
            node: self.cfg.node.clone(),
            role: self.cfg.role.as_str().into(),
            state: state.into(),
            detail: detail.into(),
            api,
            liveness_failures: self.live_failures,
            restarts_used: self.restarts_used,
            restart_budget: self.cfg.budget.restarts,
        };
        if let Err(e) = readiness::write_status(&self.cfg.status_file, &st) {
            log::info(&format!("cannot write the status file `{}`: {e}", self.cfg.status_file.display()));
        }
    }

    /// Reads the restart history: starts at once, after a growing delay, or stays down (until a
    /// signal) when the budget is spent, saying why in the log and the status file.
    fn within_budget(&mut self) -> Result<(), Stop> {
        let cfg = self.cfg;
        let history = budget::load(&cfg.state_file).unwrap_or_else(|e| {
            log::info(&format!("warning: {e}"));
            History::default()
        });
        let window = format!("{:.0?}", cfg.budget.window);
        let now = unix_now();
        match budget::decide(&history, now, &cfg.budget) {
            Decision::Start => Ok(()),
            Decision::Restart { used, delay } => {
                self.restarts_used = used;
                let last = history.failures.last().map(|f| format!("exit {}: {}", f.code, f.why)).unwrap_or_default();
                let msg = format!("restart {used} of {} within {window} after a failure ({last}); waiting {delay:.0?} first", cfg.budget.restarts);
                log::info(&msg);
                self.status("backoff", &msg);
                self.pump(delay)
            }
            Decision::Spent { used, last, retry_at } => {
                self.restarts_used = used;
                let msg = format!(
                    "restart budget spent: {used} failures within {window} (budget: {} restarts); last: exit {}: {}; staying down instead of looping: fix the cause, then `sparkctl up --reset-budget` from the control machine (or remove `{}` and restart the unit; or wait {} min, until the oldest failure leaves the window)",
                    cfg.budget.restarts,
                    last.code,
                    last.why,
                    cfg.state_file.display(),
                    retry_at.saturating_sub(now).div_ceil(60)
                );
                log::loud(&msg);
                self.status("down", &msg);
                loop {
                    self.pump(Duration::from_secs(3600))?;
                }
            }
        }
    }

    fn lifecycle(&mut self) -> Result<Never, Stop> {
        let cfg = self.cfg;
        let what = if cfg.mode == Mode::NcclBench { "nccl-bench mode".to_owned() } else { format!("{} backend", cfg.backend.as_str()) };
        log::info(&format!("spark-entrypoint {} starting as {} ({what})", env!("CARGO_PKG_VERSION"), cfg.role.as_str()));
        self.status("preflight", "checking rails");
        let (env, my_ip) = self.preflight()?;
        let fingerprint = Fingerprint {
            image: cfg.image_digest.clone(),
            serve: cfg.serve.clone(),
            model: cfg.model.clone(),
            entrypoint: env!("CARGO_PKG_VERSION").into(),
            // A benchmark node only forms a group with benchmark nodes.
            backend: if cfg.mode == Mode::NcclBench { cluster::nccl::bench::MODE.into() } else { cfg.backend.as_str().into() },
        };
        self.status("rendezvous", "waiting for the other nodes");
        match cfg.role {
            Role::Head => self.head(env, my_ip, fingerprint),
            Role::Worker => self.worker(env, my_ip, fingerprint),
        }
    }

    /// Runs the checks, prints the table, decides the transport, derives the node env.
    fn preflight(&mut self) -> Result<(BTreeMap<String, String>, Ipv4Addr), Stop> {
        let cfg = self.cfg;
        crate::ray_check::require_ray(cfg.backend == Backend::Ray && cfg.mode == Mode::Serve, std::env::var_os("PATH").as_deref()).map_err(Stop::Fatal)?;
        let rep = preflight::run(&Root::new(&cfg.root), &Spec { rails: cfg.rails.clone(), mtu: cfg.mtu, transport: cfg.transport });
        for c in &rep.checks {
            let hint = c.hint.as_deref().map(|h| format!(" (hint: {h})")).unwrap_or_default();
            log::info(&format!("preflight {:<4} {:<14} {:<16} {}{hint}", c.status.to_string(), c.name, c.subject, c.detail));
        }
        if let Some(f) = rep.failures().next() {
            let n = rep.failures().count();
            return Err(Stop::Fatal(format!(
                "preflight failed ({n} check(s)); first: {} on `{}`: {}{}",
                f.name,
                f.subject,
                f.detail,
                f.hint.as_deref().map(|h| format!("; hint: {h}")).unwrap_or_default()
            )));
        }
        if rep.transport == Transport::Socket {
            let why = if cfg.transport == cluster::model::Transport::Socket {
                "SPARK_TRANSPORT=socket"
            } else {
                "the RDMA checks did not pass (see `warn` lines above)"
            };
            log::loud(&format!("NCCL transport will be NET/Socket (TCP, ~4-6 GB/s instead of ~24 GB/s over RoCE): {why}"));
        } else {
            log::info("preflight: NCCL transport NET/IB over every rail");
        }
        self.sup.expect_ib(rep.transport == Transport::Ib);
        let mut env = rep.env();
        self.hcas = env
            .get("NCCL_IB_HCA")
            .map(|v| v.trim_start_matches(['=', '^']).split(',').filter_map(|h| h.split(':').next()).map(str::to_owned).collect())
            .unwrap_or_default();
        // Ray's memory monitor kills workers on unified memory; every node needs this.
        if std::env::var_os("RAY_memory_monitor_refresh_ms").is_none() {
            env.insert("RAY_memory_monitor_refresh_ms".into(), "0".into());
        }
        // On SIGTERM Ray drains for 30 s (for Ray Serve replicas); vLLM has none, and the group
        // must stop within the grace period.
        if std::env::var_os("RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S").is_none() {
            env.insert("RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S".into(), "0".into());
        }
        let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        log::info(&format!("node env: {}", shown.join(" ")));
        let ip = rep.rails.first().map(|r| r.ipv4).ok_or_else(|| Stop::Fatal("no rail has an IPv4 address".into()))?;
        Ok((env, ip))
    }

    fn head(&mut self, mut env: BTreeMap<String, String>, my_ip: Ipv4Addr, fp: Fingerprint) -> Result<Never, Stop> {
        let cfg = self.cfg;
        if let Some(a) = cfg.head_addr.filter(|a| *a != my_ip) {
            log::info(&format!("note: SPARK_HEAD_ADDR {a} differs from the first rail's address {my_ip}; listening on {my_ip}"));
        }
        let head = Head::listen(my_ip, cfg.rendezvous_port, &cfg.token, fp, cfg.nodes.clone(), cfg.heartbeat_timeout, self.sup.sender())?;
        self.peers = Peers::Head(head);
        if let Peers::Head(h) = &mut self.peers {
            h.wait_all(&mut self.sup, cfg.join_timeout)?;
        }
        if cfg.mode == Mode::NcclBench {
            self.release(my_ip)?;
            return self.bench(env, 0, cfg.nodes.len(), my_ip);
        }
        // Every node is here and nothing is launched yet: the moment to refuse a configuration
        // that cannot work (the workers are told why).
        self.status("rendezvous", "checking the plan (memory, known-bad flags)");
        crate::plan::check(cfg, &env)?;
        let serve = match cfg.backend {
            Backend::Ray => {
                env.extend(launch::ray_auth_env(&cfg.token));
                self.status("cluster", "starting the Ray head");
                self.sup.spawn("ray", &launch::ray_head(my_ip, cfg.ray_port, &cfg.ray_args), &env, true)?;
                self.wait_port(SocketAddrV4::new(my_ip, cfg.ray_port), cfg.cluster_timeout)?;
                self.release(my_ip)?;
                self.wait_ray(my_ip)?;
                let dir = launch::vllm_config_root(&|k| std::env::var(k).ok());
                crate::fsutil::write_atomic(&dir.join("ray_non_carry_over_env_vars.json"), &launch::non_carry_over_json())
                    .map_err(|e| Stop::Fatal(format!("cannot write `{}`: {e}", dir.join("ray_non_carry_over_env_vars.json").display())))?;
                log::info(&format!("wrote `{}/ray_non_carry_over_env_vars.json` so node-specific variables stay per node", dir.display()));
                env.insert("RAY_ADDRESS".into(), format!("{my_ip}:{}", cfg.ray_port));
                launch::serve_ray(&cfg.serve)
            }
            Backend::Native => {
                self.release(my_ip)?;
                launch::serve_native(&cfg.serve, cfg.nodes.len(), 0, my_ip, cfg.master_port)
            }
        };
        self.status("starting", "serve command started; waiting for the model to answer");
        self.sup.spawn("serve", &serve, &env, true)?;
        let api = SocketAddr::from(([127, 0, 0, 1], cfg.api_port));
        let (tx, timeout) = (self.sup.sender(), cfg.ready_timeout);
        std::thread::spawn(move || {
            let _ = tx.send(Event::Ready(readiness::wait(api, timeout)));
        });
        self.supervise()
    }

    fn release(&mut self, my_ip: Ipv4Addr) -> Result<(), Stop> {
        if let Peers::Head(h) = &mut self.peers {
            h.release(my_ip)?;
        }
        self.sup.released = true;
        Ok(())
    }

    fn worker(&mut self, mut env: BTreeMap<String, String>, my_ip: Ipv4Addr, fp: Fingerprint) -> Result<Never, Stop> {
        let cfg = self.cfg;
        let head = cfg.head_addr.expect("settings require SPARK_HEAD_ADDR on workers");
        let req = rendezvous::JoinRequest {
            head: SocketAddrV4::new(head, cfg.rendezvous_port),
            token: &cfg.token,
            node: &cfg.node,
            ip: my_ip,
            fingerprint: &fp,
            timeout: cfg.join_timeout,
            silence: cfg.heartbeat_timeout,
        };
        let j = rendezvous::join(&mut self.sup, &req)?;
        self.peers = Peers::Worker(j.session);
        self.sup.released = true;
        if cfg.mode == Mode::NcclBench {
            let rank = j.ranks.get(&cfg.node).copied().unwrap_or(1);
            return self.bench(env, rank, j.ranks.len(), j.head_ip);
        }
        match cfg.backend {
            Backend::Ray => {
                env.extend(launch::ray_auth_env(&cfg.token));
                env.insert("RAY_ADDRESS".into(), format!("{}:{}", j.head_ip, cfg.ray_port));
                self.sup.spawn("ray", &launch::ray_worker(my_ip, j.head_ip, cfg.ray_port, &cfg.ray_args), &env, true)?;
                self.status("ready", "Ray worker started; the head serves");
            }
            Backend::Native => {
                let rank = j.ranks.get(&cfg.node).copied().unwrap_or(1);
                let argv = launch::serve_native(&cfg.serve, j.ranks.len(), rank, j.head_ip, cfg.master_port);
                self.sup.spawn("serve", &argv, &env, true)?;
                self.status("ready", &format!("headless serve started (rank {rank}); the head serves"));
            }
        }
        self.supervise()
    }

    /// `SPARK_MODE=nccl-bench`: every node runs the benchmark with vLLM's native multi-node
    /// arguments (the script reads them), the master on the head's rail address.
    fn bench(&mut self, mut env: BTreeMap<String, String>, rank: u32, nodes: usize, master: Ipv4Addr) -> Result<Never, Stop> {
        let cfg = self.cfg;
        env.insert("SPARK_BENCH_OUT".into(), cfg.bench_out.display().to_string());
        let argv = launch::serve_native(&cfg.serve, nodes, rank, master, cfg.master_port);
        self.sup.spawn("bench", &argv, &env, true)?;
        self.status("starting", &format!("nccl benchmark running (rank {rank} of {nodes})"));
        self.supervise()
    }

    /// The head's verdict on a finished benchmark: its results folder read back with the
    /// analyser, printed line by line. `true` when it passes.
    fn bench_verdict(&self) -> bool {
        use cluster::nccl::{bench, check::Expect, report};
        let cfg = self.cfg;
        let read = |f: &str| std::fs::read(cfg.bench_out.join(f)).map(|b| String::from_utf8_lossy(&b).into_owned());
        let (table, debug) = match (read(bench::TABLE_FILE), read(bench::DEBUG_FILE)) {
            (Ok(t), Ok(d)) => (t, d),
            (Err(e), _) | (_, Err(e)) => {
                log::info(&format!("error: cannot read the benchmark's results in `{}`: {e}", cfg.bench_out.display()));
                return false;
            }
        };
        // What this node's preflight decided is what every rank must show; twins are named
        // alike on every node of one OS.
        let transport = match (cfg.transport, self.sup.expects_ib()) {
            (_, true) => cluster::model::Transport::Ib,
            (cluster::model::Transport::Socket, _) => cluster::model::Transport::Socket,
            _ => cluster::model::Transport::Auto,
        };
        let hcas: Vec<Option<String>> = self.hcas.iter().map(|h| Some(h.clone())).collect();
        let expect = Expect { transport, nodes: vec![(cfg.node.clone(), hcas)] };
        let b = report::bench(&table, &debug, Some(&expect), cfg.bench_min_busbw);
        for line in report::bench_text(&b).lines() {
            log::info(&format!("nccl-bench: {line}"));
        }
        b.verdict.ok()
    }

    /// Waits until something accepts TCP connections on `addr` (the Ray GCS).
    fn wait_port(&mut self, addr: SocketAddrV4, timeout: Duration) -> Result<(), Stop> {
        let deadline = Instant::now() + timeout;
        while TcpStream::connect_timeout(&addr.into(), Duration::from_millis(500)).is_err() {
            if Instant::now() >= deadline {
                return Err(Stop::Timeout(format!("Ray GCS on {addr} did not accept connections within {:.0?}", timeout)));
            }
            self.pump(Duration::from_millis(300))?;
        }
        Ok(())
    }

    /// Polls `ray status` until every node and GPU is there.
    fn wait_ray(&mut self, my_ip: Ipv4Addr) -> Result<(), Stop> {
        let cfg = self.cfg;
        let deadline = Instant::now() + cfg.cluster_timeout;
        let want = cfg.nodes.len();
        let mut last = None;
        loop {
            let auth = launch::ray_auth_env(&cfg.token);
            let (code, out) = self.sup.capture("ray-status", &launch::ray_status(my_ip, cfg.ray_port), &auth, Duration::from_secs(60))?;
            let st = launch::parse_ray_status(&out);
            let summary = format!("{}/{want} nodes, {} GPU, {} CPU", st.nodes, st.total("GPU"), st.total("CPU"));
            if last.as_ref() != Some(&summary) {
                log::info(&format!("ray status: {summary}{}", if code != 0 { format!(" (exit {code})") } else { String::new() }));
                last = Some(summary.clone());
            }
            if code == 0 && st.complete(want, cfg.gpus_per_node) {
                let what = if st.total("GPU") > 0.0 { "GPUs" } else { "CPUs (Ray sees no GPU)" };
                log::info(&format!("ray cluster complete: {want} nodes with their {what}"));
                self.status("cluster", &summary);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let mut nodes = vec![format!("`{}` {my_ip}", cfg.node)];
                if let Peers::Head(h) = &self.peers {
                    nodes.extend(h.addresses.iter().map(|(n, ip)| format!("`{n}` {ip}")));
                }
                return Err(Stop::Timeout(format!(
                    "Ray reports {summary} after {:.0?}; expected {want} nodes ({}) with {} GPU each; check each node's `ray` log lines",
                    cfg.cluster_timeout,
                    nodes.join(", "),
                    cfg.gpus_per_node
                )));
            }
            self.pump(Duration::from_secs(1))?;
        }
    }

    /// Handles events for `d` (late joiners are refused by the head).
    fn pump(&mut self, d: Duration) -> Result<(), Stop> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            let ev = self.sup.next(until.saturating_duration_since(Instant::now()))?;
            self.on_event(ev)?;
        }
        Ok(())
    }

    /// Is `conn` one of the live connections of the formed group (not a refused late joiner)?
    fn is_member(&self, conn: u64) -> bool {
        match &self.peers {
            Peers::Head(h) => h.sessions.values().any(|s| s.conn == conn),
            Peers::Worker(s) => s.conn == conn,
            Peers::None => false,
        }
    }

    fn on_event(&mut self, ev: Option<Event>) -> Result<(), Stop> {
        match ev {
            Some(Event::Peer(PeerEvent::Lost { node, conn, why })) if self.sup.released && self.is_member(conn) => {
                Err(Stop::PeerLost { node, why, requested: false })
            }
            Some(Event::Peer(PeerEvent::Msg { node, conn, msg: Msg::Shutdown { reason, requested } })) if self.sup.released && self.is_member(conn) => {
                let how = if requested { "it is stopping on request" } else { "it is stopping" };
                Err(Stop::PeerLost { node, why: format!("{how}: {reason}"), requested })
            }
            Some(Event::Peer(ev)) => {
                if let Peers::Head(h) = &mut self.peers {
                    h.on_event(ev, self.sup.released);
                }
                Ok(())
            }
            Some(Event::Ready(Ok(model))) => {
                // The status file first: whoever saw READY in the log finds it `ready` there.
                self.status("ready", &format!("model `{model}` answers"));
                log::info(&format!("READY: `{model}` answers /health, /v1/models and a 1-token completion on 127.0.0.1:{}", self.cfg.api_port));
                self.watch_liveness(model);
                Ok(())
            }
            Some(Event::Live(look)) => self.on_look(look),
            Some(Event::Ready(Err(e))) => Err(Stop::Timeout(e)),
            Some(Event::Sys(_)) | None => Ok(()),
        }
    }

    /// A lost peer reported within `d`, if any.
    fn peer_lost_within(&mut self, d: Duration) -> Option<Stop> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if let Ok(ev @ Some(Event::Peer(_))) = self.sup.next(until.saturating_duration_since(Instant::now())) {
                if let Err(s @ Stop::PeerLost { .. }) = self.on_event(ev) {
                    return Some(s);
                }
            }
        }
        None
    }

    /// After ready, looks at the engine every interval on a thread of its own (a hung completion
    /// blocks only that thread); the results come back as events.
    fn watch_liveness(&self, model: String) {
        let policy = self.cfg.liveness;
        if policy.interval.is_zero() {
            log::info("liveness looks are off (--liveness-interval 0): a hung engine is not detected");
            return;
        }
        log::info(&format!(
            "liveness: every {:.0?}, vLLM's token counter or else a 1-token completion (timeout {:.0?}); {} failures in a row stop the group",
            policy.interval, policy.timeout, policy.failures
        ));
        let (tx, api) = (self.sup.sender(), SocketAddr::from(([127, 0, 0, 1], self.cfg.api_port)));
        std::thread::spawn(move || {
            let mut tokens = None;
            loop {
                std::thread::sleep(policy.interval);
                if tx.send(Event::Live(liveness::look(api, &model, policy.timeout, &mut tokens))).is_err() {
                    return;
                }
            }
        });
    }

    fn on_look(&mut self, look: Look) -> Result<(), Stop> {
        match &look {
            Look::Progress { .. } => self.looks.0 += 1,
            _ => self.looks.1 += 1,
        }
        if look.ok() {
            if self.live_failures > 0 {
                log::info(&format!("liveness: the engine answers again ({look:?}) after {} failed look(s)", self.live_failures));
                self.live_failures = 0;
                self.status("ready", "the engine answers again");
            }
            return Ok(());
        }
        self.live_failures += 1;
        let why = match look {
            Look::Failed(e) => e,
            _ => unreachable!("only failed looks get here"),
        };
        let (n, max) = (self.live_failures, self.cfg.liveness.failures);
        log::info(&format!("liveness: look {n} of {max} failed: {why}"));
        if n >= max {
            return Err(Stop::Wedged(format!(
                "the engine is wedged: {n} liveness looks in a row found no generated token and no answer to a 1-token completion within {:.0?} (last: {why}); /health may still say 200",
                self.cfg.liveness.timeout
            )));
        }
        self.status("ready", &format!("liveness look {n} of {max} failed: {why}"));
        Ok(())
    }

    fn supervise(&mut self) -> Result<Never, Stop> {
        loop {
            self.pump(Duration::from_secs(1))?;
        }
    }

    /// Logs why, tells the peers, stops every process, and picks the exit code.
    fn finish(mut self, mut stop: Stop) -> i32 {
        // A peer that stops right after the benchmark's last barrier is no failure when this
        // node's own run ends cleanly too.
        if self.cfg.mode == Mode::NcclBench && matches!(stop, Stop::PeerLost { .. }) && self.sup.wait_child("bench", FAILURE_GRACE) == Some(0) {
            stop = Stop::Child { name: "bench".into(), code: 0 };
        }
        // A collective fails as soon as a peer's sockets close, often before the rendezvous
        // reports the lost node: name the node, as serving does.
        if self.cfg.mode == Mode::NcclBench && matches!(&stop, Stop::Child { name, code } if name == "bench" && *code != 0) {
            if let Some(lost) = self.peer_lost_within(Duration::from_secs(2)) {
                stop = lost;
            }
        }
        if let Stop::Child { name, code: 0 } = &stop {
            if name == "bench" {
                let ok = self.cfg.role == Role::Worker || self.bench_verdict();
                log::info(if ok { "nccl benchmark finished" } else { "nccl benchmark finished; its verdict failed" });
                self.status("stopping", "nccl benchmark finished");
                if let Peers::Head(h) = &self.peers {
                    h.shutdown(&format!("head `{}`: nccl benchmark finished", self.cfg.node), false);
                }
                self.sup.stop_all(Signal::SIGTERM, FAILURE_GRACE);
                let code = i32::from(!ok);
                log::info(&format!("exit {code}"));
                return code;
            }
        }
        let why = match &stop {
            Stop::Signal(s) => format!("received {s}"),
            Stop::Child { name, code } => format!("{name} exited with code {code}"),
            Stop::PeerLost { node, why, requested: false } => format!("lost node `{node}`: {why}; stopping so the group restarts together"),
            Stop::PeerLost { node, why, requested: true } => format!("node `{node}` stopped: {why}; stopping with it"),
            Stop::Timeout(m) | Stop::Fatal(m) | Stop::Wedged(m) => m.clone(),
        };
        if self.looks != (0, 0) {
            log::info(&format!("liveness looks: {} found progress, {} sent a 1-token completion", self.looks.0, self.looks.1));
        }
        // A stop asked for on this node (a signal) or on a peer is no failure: passed on as
        // requested, so no node of the group spends its restart budget on it.
        let requested = matches!(stop, Stop::Signal(_) | Stop::PeerLost { requested: true, .. });
        match requested {
            true => log::info(&format!("stopping: {why}")),
            false => log::info(&format!("error: {why}")),
        }
        self.status("stopping", &why);
        match &self.peers {
            Peers::Head(h) => h.shutdown(&format!("head `{}` stopping: {why}", self.cfg.node), requested),
            Peers::Worker(s) => {
                let _ = s.send(&Msg::Shutdown { reason: format!("worker `{}` stopping: {why}", self.cfg.node), requested });
            }
            Peers::None => {}
        }
        // A requested stop gets the whole grace period; after a failure (a node or a child is
        // gone, NCCL may hang) the rest is stopped quickly so the group can restart.
        let (first, grace) = match stop {
            Stop::Signal(s) => (s, self.cfg.grace),
            _ => (Signal::SIGTERM, self.cfg.grace.min(FAILURE_GRACE)),
        };
        self.sup.stop_all(first, grace);
        let code = match (&stop, self.sup.serve_code) {
            // Like tini: on a signal, exit with the serve command's own status.
            (Stop::Signal(_), Some(c)) => c,
            _ => stop.code(),
        };
        if !requested && self.cfg.mode == Mode::Serve {
            self.record_failure(code, &why);
        }
        log::info(&format!("exit {code}"));
        code
    }

    /// A failed stop counts against the restart budget; a requested one (a signal here or on a
    /// peer) does not.
    fn record_failure(&self, code: i32, why: &str) {
        let path = &self.cfg.state_file;
        let mut h = budget::load(path).unwrap_or_default();
        h.record(Failure { at: unix_now(), code, why: why.chars().take(500).collect() });
        if let Err(e) = budget::save(path, &h) {
            log::info(&format!("cannot write the restart history `{}`: {e}; the restart budget cannot count this failure", path.display()));
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
