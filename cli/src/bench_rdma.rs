//! `sparkctl bench rdma`: from this machine, over the user's ssh, perftest's `ib_write_bw`
//! between two nodes on every rail alone, then on every rail at once (optionally `ib_write_lat`),
//! judged against the link rate each node's sysfs reports (`cluster::rdma_bench`). Before
//! anything runs: both nodes answer ssh, perftest is installed and has the flags used. Every
//! remote server is started under `timeout` and stopped on every exit path (success, failure,
//! error, Ctrl-C); the exact commands are printed.
//!
//! Exit code = the worst verdict: 0 PASS, 1 WARN, 3 FAIL; 2 bad input (unknown node, node
//! unreachable, ssh refused, perftest missing).
use anyhow::{bail, Context};
use cluster::rdma_bench::{self, Measured, Options, RailFacts, Verdict};
use cluster::tools::perftest;
use fleet::remote::{RemoteError, Ssh};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct RdmaArgs {
    /// The cluster description
    #[arg(long, default_value = "cluster.toml")]
    cluster: PathBuf,
    /// The node that runs the perftest clients (default: the head)
    #[arg(long)]
    client: Option<String>,
    /// The node that runs the perftest servers (default: the first other node)
    #[arg(long)]
    server: Option<String>,
    /// Queue pairs per ib_write_bw run
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    qps: u32,
    /// Seconds per ib_write_bw run
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=600))]
    duration: u32,
    /// First TCP port of the perftest servers (one per rail)
    #[arg(long, default_value_t = 18515, value_parser = clap::value_parser!(u16).range(1024..))]
    port: u16,
    /// Pass when a rail reaches this fraction of its share of the sysfs link rate
    #[arg(long, default_value_t = 0.75, value_parser = ratio)]
    min_ratio: f64,
    /// Also measure latency per rail (ib_write_lat)
    #[arg(long)]
    lat: bool,
    /// Root prefix of the nodes' /sys (a node whose host /sys is mounted elsewhere)
    #[arg(long, default_value = "/")]
    remote_root: String,
    /// Print JSON instead of the table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ssh: crate::fleet_args::SshArgs,
}

fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!("`{s}` is not a fraction above 0 and at most 1 (e.g. 0.75)")),
    }
}

const PID_MARK: &str = "sparkctl-pid=";

/// Set by the signal thread: stop the remote servers and leave.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

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
    fn wait(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout && !INTERRUPTED.load(Ordering::Relaxed) {
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
#[derive(serde::Serialize)]
struct Row {
    test: String,
    rail: String,
    client: String,
    server: String,
    #[serde(flatten)]
    measured: Measured,
    latency_us: Option<f64>,
}

pub fn run(args: RdmaArgs) -> anyhow::Result<ExitCode> {
    watch_signals();
    let cluster = crate::render::load_cluster(&args.cluster)?;
    let client = match &args.client {
        Some(n) => cluster.node(n)?,
        None => cluster.head(),
    };
    let server = match &args.server {
        Some(n) => cluster.node(n)?,
        None => cluster.nodes.iter().find(|n| n.name != client.name).context("the cluster has one node: `bench rdma` needs two")?,
    };
    if client.name == server.name {
        bail!("`--client` and `--server` are both `{}`; name two nodes", client.name);
    }
    let ssh = args.ssh.ssh();
    let mut commands: Vec<String> = Vec::new();
    // Bad input first: both nodes answer, perftest is there with its flags.
    let tools: &[&str] = if args.lat { &["ib_write_bw", "ib_write_lat"] } else { &["ib_write_bw"] };
    for node in [client, server] {
        check_interrupted()?;
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
    let facts = |node: &cluster::Node| -> anyhow::Result<Vec<RailFacts>> {
        let netdevs: Vec<String> = node.rails.iter().map(|r| r.interface.clone()).collect();
        let argv = vec!["sh".to_owned(), "-c".to_owned(), rdma_bench::facts_script(&args.remote_root, &netdevs)];
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
    let opts = Options { qps: args.qps, duration_s: args.duration, base_port: args.port, min_ratio: args.min_ratio };
    let nrails = client.rails.len().min(server.rails.len());
    if usize::from(args.port) + nrails > usize::from(u16::MAX) + 1 {
        bail!("`--port {}` leaves no room for {nrails} rail(s) (one port each); use a lower port, e.g. 18515", args.port);
    }
    let mut rows = Vec::new();
    let pair = Pair { ssh: &ssh, client, server, cfacts: &cfacts, sfacts: &sfacts, opts: &opts };
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
    if args.lat {
        for i in 0..nrails {
            rows.push(pair.run_lat(i, &mut commands)?);
        }
    }
    let worst = rows.iter().map(|r| r.measured.verdict).max().unwrap_or(Verdict::Pass);
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc =
            serde_json::json!({ "client": client.name, "server": server.name, "options": opts, "worst": label(worst), "results": rows, "commands": commands });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default()).context("writing to stdout")?;
    } else {
        print_table(&mut out, &rows, &commands, worst).context("writing to stdout")?;
    }
    Ok(ExitCode::from(match worst {
        Verdict::Pass => 0,
        Verdict::Warn => 1,
        Verdict::Fail => 3,
    }))
}

struct Pair<'a> {
    ssh: &'a Ssh,
    client: &'a cluster::Node,
    server: &'a cluster::Node,
    cfacts: &'a [RailFacts],
    sfacts: &'a [RailFacts],
    opts: &'a Options,
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
        check_interrupted()?;
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
            c.wait(limit);
            check_interrupted()?;
            let (stdout, stderr) = c.stop();
            let code = c.child.try_wait().ok().flatten().and_then(|s| s.code());
            if code == Some(255) {
                let out = fleet::remote::Output { status: c.child.wait()?, stdout: stdout.clone(), stderr: stderr.clone() };
                fleet::remote::classify(&c.host, &out)?;
            }
            outs.push(perftest::parse(&format!("{stdout}{stderr}")));
        }
        // The servers end with their client; whatever did not is stopped now. A server's own
        // error (a wrong device, say) is why its client failed: it goes first in the client's.
        for (s, out) in servers.iter_mut().zip(outs.iter_mut()) {
            s.wait(Duration::from_secs(5));
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

/// After Ctrl-C: an error, whose unwinding drops (and so stops) every remote process.
fn check_interrupted() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted; the perftest servers and clients were stopped");
    }
    Ok(())
}

fn label(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Warn => "WARN",
        Verdict::Fail => "FAIL",
    }
}

fn print_table(out: &mut impl Write, rows: &[Row], commands: &[String], worst: Verdict) -> std::io::Result<()> {
    writeln!(out, "commands run:")?;
    for c in commands {
        writeln!(out, "  {c}")?;
    }
    writeln!(out)?;
    writeln!(out, "{:<4}  {:<9} {:<9} {:<24} {:<24} {:>8} {:>9}  WHY", "", "TEST", "RAIL", "CLIENT", "SERVER", "Gb/s", "MIN Gb/s")?;
    for r in rows {
        let num = |v: Option<f64>| v.map_or("-".to_owned(), |g| format!("{g:.2}"));
        writeln!(
            out,
            "{:<4}  {:<9} {:<9} {:<24} {:<24} {:>8} {:>9}  {}",
            label(r.measured.verdict),
            r.test,
            r.rail,
            r.client,
            r.server,
            num(r.measured.gbps),
            num(r.measured.expected_min_gbps),
            r.measured.reason
        )?;
    }
    writeln!(out)?;
    writeln!(out, "{}", label(worst))
}

/// Ctrl-C, TERM and HUP set [`INTERRUPTED`] instead of killing sparkctl, so the remote servers
/// are stopped before it exits. The ssh children inherit the blocked signals: a Ctrl-C to the
/// process group does not cut them before sparkctl has stopped the remote processes.
fn watch_signals() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    if set.thread_block().is_ok() {
        std::thread::spawn(move || {
            if set.wait().is_ok() {
                INTERRUPTED.store(true, Ordering::Relaxed);
            }
        });
    }
}
