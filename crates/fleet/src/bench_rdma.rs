//! `bench rdma`: perftest's `ib_write_bw` between two nodes over the user's ssh, on every rail
//! alone, then on every rail at once (optionally `ib_write_lat`), judged against the link rate
//! each node's sysfs reports (`cluster::rdma_bench`). Before anything runs: both nodes answer
//! ssh, perftest is installed and has the flags used. Every remote process is started under
//! `timeout` and stopped on every exit path (success, failure, error, the caller's interrupt
//! flag); the exact commands are returned with the results.

use crate::remote::{RemoteError, Ssh};
use anyhow::bail;
use cluster::rdma_bench::{self, Measured, Options, RailFacts, Verdict};
use cluster::tools::perftest;
use cluster::Node;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the benchmark measured.
#[derive(Debug)]
pub struct Outcome {
    /// One row per test, rail and direction.
    pub rows: Vec<Row>,
    /// Every command run, as a person would type it.
    pub commands: Vec<String>,
    /// The worst verdict of the rows.
    pub worst: Verdict,
}

/// Runs the benchmark from `client` to `server` (two different nodes) with `opts`, latency too
/// with `lat`; `remote_root` prefixes the nodes' `/sys`. Once `interrupted` is set, every remote
/// process is stopped and an error returned.
pub fn run(ssh: &Ssh, client: &Node, server: &Node, opts: &Options, lat: bool, remote_root: &str, interrupted: &AtomicBool) -> anyhow::Result<Outcome> {
    let mut commands: Vec<String> = Vec::new();
    // Bad input first: both nodes answer, perftest is there with its flags.
    let tools: &[&str] = if lat { &["ib_write_bw", "ib_write_lat"] } else { &["ib_write_bw"] };
    for node in [client, server] {
        check_interrupted(interrupted)?;
        ssh.check(&node.name)?;
        for tool in tools {
            let argv = vec![tool.to_string(), "--help".to_owned()];
            commands.push(ssh.display(&node.name, &argv));
            let out = ssh.run(&node.name, &argv, Duration::from_secs(30))?;
            let help = format!("{}{}", out.stdout, out.stderr);
            if out.status.code() == Some(127) || help.contains("not found") && !help.contains("--ib-dev") {
                bail!("perftest's `{tool}` is not installed on `{}` (or not on ssh's PATH); install it (`apt install perftest`)", node.name);
            }
            let missing = rdma_bench::missing_flags(&help);
            if !missing.is_empty() {
                bail!("`{tool}` on `{}` lacks {}; install a newer perftest (these flags are in perftest 4.4 and later)", node.name, missing.join(", "));
            }
        }
    }
    let facts = |node: &Node| -> anyhow::Result<Vec<RailFacts>> {
        let netdevs: Vec<String> = node.rails.iter().map(|r| r.interface.clone()).collect();
        let argv = vec!["sh".to_owned(), "-c".to_owned(), rdma_bench::facts_script(remote_root, &netdevs)];
        let out = ssh.run(&node.name, &argv, Duration::from_secs(30))?;
        let mut facts = rdma_bench::parse_facts(&out.stdout);
        facts.resize(netdevs.len(), RailFacts::default());
        // A device named in cluster.toml is the one used (perftest says when it is wrong).
        for (f, r) in facts.iter_mut().zip(&node.rails) {
            f.netdev.clone_from(&r.interface);
            if r.rdma_device.is_some() {
                f.rdma_device.clone_from(&r.rdma_device);
            }
        }
        Ok(facts)
    };
    let (cfacts, sfacts) = (facts(client)?, facts(server)?);
    let nrails = client.rails.len().min(server.rails.len());
    if usize::from(opts.base_port) + nrails > usize::from(u16::MAX) + 1 {
        bail!("`--port {}` leaves no room for {nrails} rail(s) (one port each); use a lower port, e.g. 18515", opts.base_port);
    }
    let mut rows = Vec::new();
    let pair = Pair { ssh, client, server, cfacts: &cfacts, sfacts: &sfacts, opts, interrupted };
    for i in 0..nrails {
        let mut got = pair.run_bw(&[i], &mut commands)?;
        rows.push(got.remove(0));
    }
    if nrails > 1 {
        let all: Vec<usize> = (0..nrails).collect();
        let got = pair.run_bw(&all, &mut commands)?;
        let sum: f64 = got.iter().filter_map(|r| r.measured.gbps).sum();
        let failed = got.iter().any(|r| r.measured.gbps.is_none());
        // Each physical port counted once: twins share their port's rate.
        let mut ports: Vec<(String, f64)> = Vec::new();
        for f in &cfacts[..nrails] {
            let key = f.pci.as_deref().and_then(|p| p.split_once(':')).map_or(f.netdev.clone(), |(_, s)| s.to_owned());
            if let Some(rate) = f.rate_gbps.filter(|_| !ports.iter().any(|(k, _)| *k == key)) {
                ports.push((key, rate));
            }
        }
        // Without every rail's rate there is no threshold (a warning, not a guess).
        let known = cfacts[..nrails].iter().all(|f| f.rate_gbps.is_some());
        let rate: Option<f64> = known.then(|| ports.iter().map(|(_, r)| r).sum());
        let mut aggregate = rdma_bench::judge(sum, None, rate.map(|r| opts.min_ratio * r));
        if failed {
            aggregate.verdict = Verdict::Fail;
            aggregate.reason = format!("{sum:.2} Gb/s: a rail failed in the parallel run");
        }
        rows.extend(got);
        rows.push(Row {
            test: "all rails".into(),
            rail: "aggregate".into(),
            client: client.name.clone(),
            server: server.name.clone(),
            measured: aggregate,
            latency_us: None,
        });
    }
    if lat {
        for i in 0..nrails {
            rows.push(pair.run_lat(i, &mut commands)?);
        }
    }
    let worst = rows.iter().map(|r| r.measured.verdict).max().unwrap_or(Verdict::Pass);
    Ok(Outcome { rows, commands, worst })
}

const PID_MARK: &str = "sparkctl-pid=";

/// A perftest process on a node, started over ssh. Its first stdout line is the remote pid
/// (`echo sparkctl-pid=$$; exec …`), so it can be stopped on the node, not only by closing ssh.
struct Remote {
    host: String,
    child: Child,
    pid: Arc<Mutex<Option<u32>>>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    ssh: Ssh,
}

impl Remote {
    fn start(ssh: &Ssh, host: &str, argv: &[String]) -> anyhow::Result<Remote> {
        // A marker, not "the first line": a login shell may print before the command runs.
        let script = format!("echo {PID_MARK}$$; exec {}", cluster::shell::join(argv));
        let wrapped = vec!["sh".to_owned(), "-c".to_owned(), script];
        let mut child = ssh.command(host, &wrapped).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(RemoteError::Spawn)?;
        let (pid, stdout, stderr) = (Arc::new(Mutex::new(None)), Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(String::new())));
        let mut threads = Vec::new();
        if let Some(out) = child.stdout.take() {
            let (pid, stdout) = (pid.clone(), stdout.clone());
            threads.push(std::thread::spawn(move || {
                for line in lossy_lines(out) {
                    match line.trim().strip_prefix(PID_MARK).map(str::parse::<u32>) {
                        Some(Ok(p)) => *pid.lock().unwrap_or_else(|e| e.into_inner()) = Some(p),
                        _ => {
                            let mut s = stdout.lock().unwrap_or_else(|e| e.into_inner());
                            s.push_str(&line);
                            s.push('\n');
                        }
                    }
                }
            }));
        }
        if let Some(err) = child.stderr.take() {
            let stderr = stderr.clone();
            threads.push(std::thread::spawn(move || {
                for line in lossy_lines(err) {
                    let mut s = stderr.lock().unwrap_or_else(|e| e.into_inner());
                    s.push_str(&line);
                    s.push('\n');
                }
            }));
        }
        Ok(Remote { host: host.to_owned(), child, pid, stdout, stderr, threads, ssh: ssh.clone() })
    }

    /// Waits for the process to end by itself, at most `timeout` (or until interrupted).
    fn wait(&mut self, timeout: Duration, interrupted: &AtomicBool) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout && !interrupted.load(Ordering::Relaxed) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Stops the process on the node (TERM to the remote pid, which `timeout` forwards), then
    /// the local ssh; collects what it printed.
    fn stop(&mut self) -> (String, String) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            // Stopped right after its start, the remote pid may still be on its way: without it
            // only the local ssh would end, and the remote process would run on.
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.pid.lock().unwrap_or_else(|e| e.into_inner()).is_none() && Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(pid) = *self.pid.lock().unwrap_or_else(|e| e.into_inner()) {
                let _ = self.ssh.run(&self.host, &["kill".into(), "-TERM".into(), pid.to_string()], Duration::from_secs(15));
            }
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let get = |m: &Arc<Mutex<String>>| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (get(&self.stdout), get(&self.stderr))
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One line of the result.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    /// The perftest program (`ib_write_bw`, `ib_write_lat`…).
    pub test: String,
    /// The rail's interface the pair ran over.
    pub rail: String,
    /// The node that ran the client side.
    pub client: String,
    /// The node that ran the server side.
    pub server: String,
    /// Bandwidth and its verdict against the rail's line rate.
    #[serde(flatten)]
    pub measured: Measured,
    /// Typical latency in microseconds, for latency tests.
    pub latency_us: Option<f64>,
}

struct Pair<'a> {
    ssh: &'a Ssh,
    client: &'a Node,
    server: &'a Node,
    cfacts: &'a [RailFacts],
    sfacts: &'a [RailFacts],
    opts: &'a Options,
    interrupted: &'a AtomicBool,
}

impl Pair<'_> {
    /// Starts a server per rail on the server node, then the clients at once on the client
    /// node; servers are stopped whatever happens (they are dropped on every return).
    fn run_bw(&self, rails: &[usize], commands: &mut Vec<String>) -> anyhow::Result<Vec<Row>> {
        let outs = self.run_tool("ib_write_bw", rails, commands)?;
        let test = if rails.len() == 1 { "alone" } else { "all rails" };
        Ok(rails
            .iter()
            .zip(outs)
            .map(|(&i, out)| {
                let f = &self.cfacts[i];
                // A twin gets its share of the port, alone too: each function's PCIe link
                // carries about half of the 200 Gb/s.
                let sharers = rdma_bench::port_sharers(f, self.cfacts);
                // The link is as fast as its slower end says.
                let rate = match (f.rate_gbps, self.sfacts[i].rate_gbps) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let measured = rdma_bench::judge_rail(&out, rate, sharers, self.opts.min_ratio);
                self.row(test, i, measured, None)
            })
            .collect())
    }

    fn run_lat(&self, i: usize, commands: &mut Vec<String>) -> anyhow::Result<Row> {
        let out = self.run_tool("ib_write_lat", &[i], commands)?.remove(0);
        let lat = out.lat_typical_us().filter(|_| out.errors.is_empty());
        let measured = match lat {
            Some(us) if us <= rdma_bench::MAX_LATENCY_US => {
                Measured { gbps: None, expected_min_gbps: None, verdict: Verdict::Pass, reason: format!("{us:.2} µs typical") }
            }
            Some(us) => Measured {
                gbps: None,
                expected_min_gbps: None,
                verdict: Verdict::Warn,
                reason: format!("{us:.2} µs typical > {} µs", rdma_bench::MAX_LATENCY_US),
            },
            None => Measured {
                gbps: None,
                expected_min_gbps: None,
                verdict: Verdict::Fail,
                reason: out.errors.first().cloned().unwrap_or_else(|| "no result table".into()),
            },
        };
        Ok(self.row("latency", i, measured, lat))
    }

    fn row(&self, test: &str, i: usize, measured: Measured, latency_us: Option<f64>) -> Row {
        Row {
            test: test.into(),
            rail: format!("rail {i}"),
            client: format!("{} {}", self.client.name, self.client.rails[i].interface),
            server: format!("{} {}", self.server.name, self.server.rails[i].interface),
            measured,
            latency_us,
        }
    }

    fn run_tool(&self, tool: &str, rails: &[usize], commands: &mut Vec<String>) -> anyhow::Result<Vec<perftest::Perftest>> {
        check_interrupted(self.interrupted)?;
        let device = |f: &RailFacts| f.rdma_device.clone().unwrap_or_else(|| format!("(no RDMA device behind {})", f.netdev));
        let mut servers = Vec::new();
        for &i in rails {
            // `run` checked that base_port + rails fits a port number.
            let port = self.opts.base_port.saturating_add(i as u16);
            let argv = rdma_bench::perftest_argv(tool, &device(&self.sfacts[i]), port, self.opts, None);
            commands.push(self.ssh.display(&self.server.name, &argv));
            servers.push(Remote::start(self.ssh, &self.server.name, &argv)?);
        }
        // perftest servers print nothing when they listen: give them a moment.
        std::thread::sleep(Duration::from_millis(1500));
        let mut clients = Vec::new();
        for &i in rails {
            let port = self.opts.base_port.saturating_add(i as u16);
            let ip: Ipv4Addr = self.server.rails[i].address.addr;
            let argv = rdma_bench::perftest_argv(tool, &device(&self.cfacts[i]), port, self.opts, Some(ip));
            commands.push(self.ssh.display(&self.client.name, &argv));
            clients.push(Remote::start(self.ssh, &self.client.name, &argv)?);
        }
        let limit = Duration::from_secs(u64::from(self.opts.duration_s) + 60);
        let mut outs = Vec::new();
        for c in &mut clients {
            c.wait(limit, self.interrupted);
            check_interrupted(self.interrupted)?;
            let (stdout, stderr) = c.stop();
            let code = c.child.try_wait().ok().flatten().and_then(|s| s.code());
            if code == Some(255) {
                let out = crate::remote::Output { status: c.child.wait()?, stdout: stdout.clone(), stderr: stderr.clone() };
                crate::remote::classify(&c.host, &out)?;
            }
            outs.push(perftest::parse(&format!("{stdout}{stderr}")));
        }
        // The servers end with their client; whatever did not is stopped now. A server's own
        // error (a wrong device, say) is why its client failed: it goes first in the client's.
        for (s, out) in servers.iter_mut().zip(outs.iter_mut()) {
            s.wait(Duration::from_secs(5), self.interrupted);
            let (stdout, stderr) = s.stop();
            let server = perftest::parse(&format!("{stdout}{stderr}"));
            if !out.errors.is_empty() {
                let mut errors: Vec<String> = server.errors.iter().map(|e| format!("server on `{}`: {e}", s.host)).collect();
                errors.append(&mut out.errors);
                out.errors = errors;
            }
        }
        Ok(outs)
    }
}

/// The lines of a pipe, read to its end whatever bytes come (invalid UTF-8 replaced), so the
/// remote process never blocks on a full pipe.
fn lossy_lines(r: impl std::io::Read) -> impl Iterator<Item = String> {
    let mut r = BufReader::new(r);
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_owned()),
        }
    })
}

/// After an interrupt: an error, whose unwinding drops (and so stops) every remote process.
fn check_interrupted(interrupted: &AtomicBool) -> anyhow::Result<()> {
    if interrupted.load(Ordering::Relaxed) {
        bail!("interrupted; the perftest servers and clients were stopped");
    }
    Ok(())
}
