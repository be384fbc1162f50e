//! Reads `NCCL_DEBUG=INFO` output and says, per process (host, pid, rank), which NCCL version
//! runs, which network moves data between nodes (`NET/IB`, RDMA, good; `NET/Socket`, TCP
//! fallback; `NET/IB : No device found.` counts as a Socket fallback), over which HCAs and ports,
//! with which GID index and GPU Direct RDMA state, which variables NCCL reports as set by the
//! environment (or `nccl.conf`), and its warnings and error traces (counted; only the first few
//! kept, so a flood stays bounded).
//!
//! - [`line`]: finds the NCCL line behind any launcher prefix (Ray, srun, compose, mpirun,
//!   torchrun, timestamps, ANSI colours).
//! - `msg`: what one message says.
//! - [`Watcher`]: per-process state, one line at a time (the entrypoint feeds it its children's
//!   output as it arrives); processes are found by pid in a hash map, so a log is read in time
//!   linear in its size.
//! - [`check`]: cross-process checks and the verdict against `cluster.toml`.
//! - [`table`]: nccl-tests output (and the project's benchmark, which prints the same table).
//! - [`report`]: the tables people read; [`bench`](mod@bench): the benchmark run inside the serving image.
//!
//! [`analyze`] runs a watcher over a `&str`, [`analyze_reader`] over a stream (stdin, a file of
//! hundreds of MB) line by line.

pub mod bench;
pub mod check;
pub(crate) mod line;
pub(crate) mod msg;
pub mod report;
pub mod table;

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::BufRead;

/// How many warnings (and error traces) are kept per process; the rest are only counted.
pub(crate) const KEPT_PER_PROCESS: usize = 8;

/// The network NCCL uses between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Net {
    /// `NET/IB`, including plugin variants such as `IBext_v10` (RDMA).
    Ib,
    /// `NET/Socket` (TCP).
    Socket,
    /// Any other plugin name, kept verbatim.
    Other(String),
}

impl Net {
    fn from_name(name: &str) -> Net {
        if name.starts_with("IB") {
            Net::Ib
        } else if name == "Socket" {
            Net::Socket
        } else {
            Net::Other(name.to_owned())
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Net::Ib => f.write_str("NET/IB"),
            Net::Socket => f.write_str("NET/Socket"),
            Net::Other(n) => write!(f, "NET/{n}"),
        }
    }
}

impl Serialize for Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Messages of one kind: how many there were and the first [`KEPT_PER_PROCESS`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub(crate) struct Bounded {
    pub(crate) count: u64,
    pub(crate) kept: Vec<String>,
}

impl Bounded {
    fn push(&mut self, msg: &str) {
        self.count += 1;
        if self.kept.len() < KEPT_PER_PROCESS {
            self.kept.push(msg.to_owned());
        }
    }
}

/// What one NCCL process (`host:pid`) said about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Process {
    pub(crate) host: String,
    /// The process id.
    pub pid: u32,
    /// From NCCL's own communicator lines (`rank 1 nranks 2`), else from the launcher's prefix.
    pub(crate) rank: Option<u32>,
    pub(crate) nranks: Option<u32>,
    /// `2.28.9+cuda13.0`, from this process's own `NCCL version` line.
    pub(crate) version: Option<String>,
    pub(crate) net: Option<Net>,
    /// NCCL's name for the network: `IB`, `IBext_v10`, `Socket`.
    pub(crate) net_name: Option<String>,
    /// Why IB is not used when NCCL said so: `NET/IB : No device found.`
    pub(crate) ib_unusable: Option<String>,
    /// HCAs and ports from `NET/IB : Using [0]rocep1s0f1:1/RoCE …` (or virtual devices).
    pub(crate) hcas: Vec<String>,
    /// Interfaces from `NET/Socket : Using [0]eth0:…`.
    pub(crate) socket_ifs: Vec<String>,
    /// The RoCE GID index NCCL reported (QP lines), else `NCCL_IB_GID_INDEX` from the env echo.
    pub(crate) gid_index: Option<String>,
    /// GPU Direct RDMA state per HCA or interface: `enabled`, `enabled (DMABUF)`, `disabled`.
    pub(crate) gdr: BTreeMap<String, String>,
    /// `NAME set by environment to VALUE` (and `NCCL_X set to VALUE`).
    pub(crate) env: BTreeMap<String, String>,
    /// `NCCL WARN` messages.
    pub(crate) warnings: Bounded,
    /// Error returns NCCL traced (`file.cc:NN -> code`).
    pub(crate) errors: Bounded,
}

impl Process {
    /// The devices of the network in use: HCAs for IB, interfaces for Socket.
    pub(crate) fn devices(&self) -> &[String] {
        match self.net {
            Some(Net::Ib) => &self.hcas,
            Some(Net::Socket) => &self.socket_ifs,
            _ => &[],
        }
    }
}

/// Everything learnt from a log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Analysis {
    /// Every NCCL version seen (process lines and header-less `NCCL version` lines), in order
    /// of first appearance: more than one is a mismatch.
    pub(crate) versions: Vec<String>,
    /// In order of first appearance.
    pub processes: Vec<Process>,
    /// Lines read, and those that were NCCL's.
    pub lines: u64,
    pub(crate) nccl_lines: u64,
    /// Processes forgotten, oldest first, by a [`Watcher::bounded`] (0 for a whole log).
    #[serde(skip_serializing_if = "is_zero")]
    pub processes_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Analysis {
    #[cfg(test)]
    pub(crate) fn process(&self, host: &str, pid: u32) -> Option<&Process> {
        self.processes.iter().find(|p| p.host == host && p.pid == pid)
    }
}

/// A transport became known (or changed) for a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportSeen {
    /// The host.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The transport.
    pub net: Net,
}

/// Incremental analyser.
#[derive(Debug, Default)]
pub struct Watcher {
    analysis: Analysis,
    /// pid → indexes of the processes with that pid (hosts differ): no allocation per lookup.
    by_pid: HashMap<u32, Vec<usize>>,
    /// At most this many processes are kept ([`Watcher::bounded`]).
    max_processes: Option<usize>,
}

impl Watcher {
    /// Keeps every process: a log read once, whatever its size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the `max` processes seen last (at least 1): for a reader that lives as long as
    /// the processes it watches come and go (spark-entrypoint, PID 1 for days, restarting
    /// vLLM: each restart brings new pids). The oldest are forgotten and counted in
    /// [`Analysis::processes_dropped`].
    pub fn bounded(max: usize) -> Self {
        Watcher { max_processes: Some(max.max(1)), ..Self::default() }
    }

    /// Takes one line (`\r`-redrawn progress bars and ANSI colours included); returns the
    /// transport when this line settled or changed one.
    pub fn feed(&mut self, line: &str) -> Option<TransportSeen> {
        self.analysis.lines += 1;
        let clean = line::strip_ansi(line);
        let mut seen = None;
        for seg in clean.split('\r') {
            if let Some(t) = self.segment(seg.trim_end_matches('\n')) {
                seen = Some(t);
            }
        }
        seen
    }

    fn version(&mut self, v: &str) {
        if !self.analysis.versions.iter().any(|x| x == v) {
            self.analysis.versions.push(v.to_owned());
        }
    }

    fn index(&mut self, host: &str, pid: u32) -> usize {
        let procs = &mut self.analysis.processes;
        let slot = self.by_pid.entry(pid).or_default();
        if let Some(&i) = slot.iter().find(|&&i| procs[i].host == host) {
            return i;
        }
        procs.push(Process { host: host.to_owned(), pid, ..Process::default() });
        slot.push(procs.len() - 1);
        if let Some(max) = self.max_processes.filter(|m| procs.len() > *m) {
            // The oldest quarter at once: the index is rebuilt once per max/4 new processes,
            // so a new process costs O(1) amortised.
            let drop = (procs.len() - max).max(max / 4).min(procs.len() - 1);
            procs.drain(..drop);
            self.analysis.processes_dropped += drop as u64;
            self.by_pid.clear();
            for (i, p) in self.analysis.processes.iter().enumerate() {
                self.by_pid.entry(p.pid).or_default().push(i);
            }
        }
        self.analysis.processes.len() - 1
    }

    fn segment(&mut self, seg: &str) -> Option<TransportSeen> {
        let l = match line::parse(seg) {
            line::Parsed::Nccl(l) => l,
            line::Parsed::Version(v) => {
                self.version(v);
                return None;
            }
            line::Parsed::Other => return None,
        };
        self.analysis.nccl_lines += 1;
        let idx = self.index(l.host, l.pid);
        let msg = l.msg;
        if let Some(v) = msg.strip_prefix("NCCL version ").and_then(|r| r.split_whitespace().next()) {
            self.version(v);
            self.analysis.processes[idx].version = Some(v.to_owned());
            return None;
        }
        let p = &mut self.analysis.processes[idx];
        if p.rank.is_none() {
            p.rank = l.launcher_rank;
        }
        if l.level == line::Level::Warn {
            p.warnings.push(msg);
            return None;
        }
        update(p, msg)
    }

    /// What the watcher found so far.
    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }

    /// What the watcher found.
    pub fn into_analysis(self) -> Analysis {
        self.analysis
    }
}

/// Applies one `NCCL INFO` message to its process.
fn update(p: &mut Process, msg: &str) -> Option<TransportSeen> {
    if let Some((name, value, by_env)) = msg::setting(msg) {
        if by_env {
            p.env.insert(name.to_owned(), value.to_owned());
        } else {
            p.env.entry(name.to_owned()).or_insert_with(|| value.to_owned());
        }
        if name == "NCCL_IB_GID_INDEX" && p.gid_index.is_none() {
            p.gid_index = Some(value.to_owned());
        }
        return None;
    }
    if let Some((rank, nranks)) = msg::rank(msg) {
        p.rank = Some(rank);
        p.nranks = Some(nranks);
        return None;
    }
    if msg::is_error_trace(msg) {
        p.errors.push(msg);
        return None;
    }
    if let Some(g) = msg::gid_index(msg) {
        p.gid_index = Some(g.to_owned());
    }
    let mut fallback = false;
    if let Some((name, what)) = msg::net_message(msg) {
        if let Some((dev, state)) = msg::gdr(what) {
            p.gdr.insert(dev, state);
        }
        if let Some(dev) = msg::virtual_device(what) {
            if !p.hcas.iter().any(|h| h == dev) {
                p.hcas.push(dev.to_owned());
            }
        }
        if let Some(rest) = what.strip_prefix("Using ") {
            let devs = msg::devices(rest);
            if !devs.is_empty() {
                if name == "Socket" {
                    p.socket_ifs = devs;
                } else if name.starts_with("IB") {
                    p.hcas = devs;
                }
            }
        }
        // IB found nothing: NCCL goes on to Socket (or the next plugin, which will say so).
        if name == "IB" && what.starts_with("No device found") {
            p.ib_unusable = Some(format!("NET/IB : {}", what.trim_end()));
            fallback = p.net.is_none();
        }
    }
    let (net, name, authoritative) = match msg::transport_of(msg) {
        Some(t) => t,
        None if fallback => (Net::Socket, "Socket", false),
        None => return None,
    };
    let changed = match &p.net {
        None => true,
        Some(old) => authoritative && *old != net,
    };
    if authoritative || p.net_name.is_none() || changed {
        p.net_name = Some(name.to_owned());
    }
    if !changed {
        return None;
    }
    p.net = Some(net.clone());
    Some(TransportSeen { host: p.host.clone(), pid: p.pid, net })
}

/// Runs a [`Watcher`] over every line of `log`.
pub fn analyze(log: &str) -> Analysis {
    let mut w = Watcher::new();
    for line in log.lines() {
        w.feed(line);
    }
    w.into_analysis()
}

/// Runs `w` over a stream, one line at a time (memory: one line plus the per-process state).
/// Bytes that are not UTF-8 are replaced, not refused: logs mix encodings.
pub fn analyze_reader(w: &mut Watcher, mut r: impl BufRead) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&buf);
        w.feed(line.trim_end_matches(['\n', '\r']));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read(rel: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
    }

    fn fixture(name: &str) -> String {
        read(&format!("fixtures/nccl_debug/{name}"))
    }

    /// (host, pid, net, devices) of every process that showed a transport.
    fn transports(a: &Analysis) -> Vec<(String, u32, Net, Vec<String>)> {
        a.processes.iter().filter_map(|p| Some((p.host.clone(), p.pid, p.net.clone()?, p.devices().to_vec()))).collect()
    }

    fn check(file: &str, versions: &[&str], expect: &[(&str, u32, Net, &[&str])], env: &[(&str, u32, &str, &str)], warns: u64) {
        let a = analyze(&fixture(file));
        assert_eq!(a.versions, versions, "{file}: versions");
        let want: Vec<(String, u32, Net, Vec<String>)> =
            expect.iter().map(|(h, p, n, d)| (h.to_string(), *p, n.clone(), d.iter().map(|s| s.to_string()).collect())).collect();
        assert_eq!(transports(&a), want, "{file}: transports");
        for (host, pid, k, v) in env {
            let p = a.process(host, *pid).unwrap_or_else(|| panic!("{file}: no process {host}:{pid}"));
            assert_eq!(p.env.get(*k).map(String::as_str), Some(*v), "{file}: {host}:{pid} {k}");
        }
        assert_eq!(a.processes.iter().map(|p| p.warnings.count).sum::<u64>(), warns, "{file}: warnings");
    }

    #[test]
    fn every_fixture_file_is_covered() {
        let src = include_str!("mod.rs");
        for dir in ["fixtures/nccl_debug", "fixtures/nccl_debug/prefixed"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(dir);
            for e in std::fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                let f = e.file_name().to_string_lossy().into_owned();
                if e.file_type().unwrap().is_file() && f.ends_with(".txt") {
                    assert!(src.contains(&format!("\"{f}\"")), "fixture {f} has no test in nccl/mod.rs");
                }
            }
        }
    }

    #[test]
    fn spark_pair_uses_ib_on_both_twins() {
        let ib: &[&str] = &["rocep1s0f1:1", "roceP2p1s0f1:1"];
        check(
            "dgx-spark-nccl-2.30.7-ib-hca-set-to-roce-two-rails.txt",
            &[],
            &[("spark-9f8f", 315, Net::Ib, ib), ("spark-506c", 250, Net::Ib, ib)],
            &[("spark-9f8f", 315, "NCCL_IB_GID_INDEX", "3"), ("spark-506c", 250, "NCCL_IB_GID_INDEX", "3"), ("spark-506c", 250, "NCCL_IB_HCA", "roce")],
            0,
        );
        let a = analyze(&fixture("dgx-spark-nccl-2.30.7-ib-hca-set-to-roce-two-rails.txt"));
        assert_eq!(a.processes[0].gid_index.as_deref(), Some("3"));
    }

    #[test]
    fn ray_prefixed_worker_lines_show_ib_plugin_devices_and_gdr() {
        let twins: &[&str] = &["rocep1s0f1", "roceP2p1s0f1"];
        check(
            "dgx-spark-vllm-ray-worker-nccl-plugin-virtual-devices.txt",
            &[],
            &[("spark-3995", 2981, Net::Ib, twins)],
            &[("spark-3995", 2981, "NCCL_SOCKET_IFNAME", "enp1s0f1np1")],
            0,
        );
        check("dgx-spark-vllm-ray-worker-gdr-dmabuf-enabled-channels.txt", &[], &[("spark-3995", 2981, Net::Ib, &[])], &[], 0);
        let a = analyze(&fixture("dgx-spark-vllm-ray-worker-gdr-dmabuf-enabled-channels.txt"));
        let p = &a.processes[0];
        assert_eq!(p.net_name.as_deref(), Some("IBext_v10"));
        assert_eq!(p.gdr.get("rocep1s0f1").map(String::as_str), Some("enabled (DMABUF)"));
        assert_eq!(p.gdr.get("roceP2p1s0f1").map(String::as_str), Some("enabled (DMABUF)"));
    }

    #[test]
    fn h100_roce_using_network_ib_and_version() {
        let devs: &[&str] = &["mlx5_10:1", "mlx5_11:1"];
        check(
            "dgx-h100-roce-using-network-ib-nccl-2.19.txt",
            &["2.19.3+cuda12.3"],
            &[("dgxh100-4", 460770, Net::Ib, devs), ("dgxh100-3", 2152176, Net::Ib, devs)],
            &[],
            0,
        );
    }

    #[test]
    fn socket_fallbacks_are_seen_as_socket() {
        let a = analyze(&fixture("ib-disabled-by-env-using-network-socket-mpi-noise.txt"));
        let socket: Vec<_> = a.processes.iter().filter(|p| p.net == Some(Net::Socket)).collect();
        assert_eq!(socket.len(), 2, "{a:#?}");
        assert!(a.processes.iter().all(|p| p.net != Some(Net::Ib)));
        assert_eq!(socket[0].devices(), ["ibs85f0", "ib0"]);
        assert_eq!(socket[0].env["NCCL_IB_DISABLE"], "1");
        check(
            "socket-lo-ibext-disabled-set-by-environment.txt",
            &[],
            &[("axa", 3048391, Net::Socket, &["lo"])],
            &[("axa", 3048391, "NCCL_SOCKET_IFNAME", "lo"), ("axa", 3048391, "NCCL_IB_DISABLE", "1"), ("axa", 3048391, "NCCL_IBEXT_DISABLE", "1")],
            0,
        );
        let lo = analyze(&fixture("socket-lo-ibext-disabled-set-by-environment.txt"));
        assert_eq!(lo.processes[0].errors.count, 1, "`net.cc:79 -> 3` is a traced error return");
        assert_eq!(lo.processes[0].gdr["lo"], "disabled");
        check("ray-train-net-socket-gdr-disabled-virbr0.txt", &[], &[("localhost", 83500, Net::Socket, &[])], &[], 0);
    }

    #[test]
    fn forced_socket_on_dgx_a100_and_no_device_found_is_a_socket_fallback() {
        let a = analyze(&fixture("dgx-a100-net-socket-forced-nccl-2.11.txt"));
        assert_eq!(a.versions, ["2.11.4+cuda11.4"]);
        let gpu01 = a.process("gpu01", 124172).unwrap();
        assert_eq!(gpu01.net, Some(Net::Socket));
        assert_eq!(gpu01.devices(), ["enp225s0f1"]);
        assert_eq!(gpu01.env["NCCL_SOCKET_IFNAME"], "en");
        assert!(a.processes.iter().all(|p| p.net != Some(Net::Ib)));

        let old = analyze(&fixture("aws-ec2-net-ib-no-device-found-socket-fallback-old.txt"));
        assert_eq!(old.process("ip-172-31-12-210", 45305).unwrap().net, Some(Net::Socket));
        let nodev = old.process("ip-172-31-12-21", 45361).unwrap();
        assert_eq!(nodev.net, Some(Net::Socket), "`No device found`: IB unusable, Socket next");
        assert_eq!(nodev.ib_unusable.as_deref(), Some("NET/IB : No device found."));
        assert_eq!(old.processes.iter().filter(|p| p.ib_unusable.is_some()).count(), 8);
        assert!(old.processes.iter().all(|p| p.net != Some(Net::Ib)));
        // One process only loaded no plugin: no transport.
        assert_eq!(old.process("ip-172-31-8-153", 45343).unwrap().net, None);
    }

    #[test]
    fn ib_completion_errors_are_warnings_of_the_process() {
        check("warn-net-ib-completion-status-12-vendor-err-129-plugin.txt", &[], &[], &[], 2);
        let a = analyze(&fixture("warn-net-ib-completion-status-12-vendor-err-129-plugin.txt"));
        assert_eq!(a.processes[0].errors.count, 6);
        let a = analyze(&fixture("warn-net-ib-completion-error-12-old-format.txt"));
        let p = a.process("-worker-1", 946).unwrap();
        assert!(p.warnings.kept[0].contains("Got completion with error 12"));
    }

    /// Our own logs (`crates/cluster/tests/fixtures/own`, one rank on an H100 without RDMA): the table
    /// of its README.
    #[test]
    fn own_h100_one_rank_logs_end_on_socket_and_never_show_ib() {
        let cases: [(&str, &[(&str, &str)]); 3] = [
            ("h100-1rank-nccl-2.28.9-default-ib-no-device-socket.txt", &[("NCCL_NVLS_ENABLE", "0")]),
            ("h100-1rank-nccl-2.28.9-forced-socket-ib-p2p-shm-disabled.txt", &[("NCCL_IB_DISABLE", "1"), ("NCCL_NVLS_ENABLE", "0"), ("NCCL_P2P_DISABLE", "1")]),
            (
                "h100-1rank-nccl-2.28.9-spark-env-net-plugin-none.txt",
                &[("NCCL_DMABUF_ENABLE", "0"), ("NCCL_NET_PLUGIN", "none"), ("NCCL_NVLS_ENABLE", "0"), ("NCCL_SOCKET_IFNAME", "eth0")],
            ),
        ];
        for (file, env) in cases {
            let text = read(&format!("crates/cluster/tests/fixtures/own/{file}"));
            let mut w = Watcher::new();
            let seen: Vec<Net> = text.lines().filter_map(|l| w.feed(l)).map(|t| t.net).collect();
            assert_eq!(seen, [Net::Socket], "{file}: transports reported while reading");
            let a = w.into_analysis();
            assert_eq!(a.versions, ["2.28.9+cuda13.0"], "{file}");
            assert_eq!(a.processes.len(), 1, "{file}");
            let p = &a.processes[0];
            assert_eq!((p.net.clone(), p.devices().to_vec()), (Some(Net::Socket), vec!["eth0".to_owned()]), "{file}");
            assert_eq!((p.rank, p.nranks, p.version.as_deref()), (Some(0), Some(1), Some("2.28.9+cuda13.0")), "{file}");
            let want: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            assert_eq!(p.env, want, "{file}");
        }
    }

    /// The same log behind each launcher's prefix reads like the bare log, plus the rank the
    /// prefix carries.
    #[test]
    fn every_prefix_style_reads_like_its_source() {
        let cases: &[(&str, &str, &[Option<u32>])] = &[
            ("rank-bracket-dgx-h100-roce-nccl-2.19.txt", "fixtures/nccl_debug/dgx-h100-roce-using-network-ib-nccl-2.19.txt", &[Some(0), Some(1)]),
            ("torchrun-default-rank-dgx-h100-roce-nccl-2.19.txt", "fixtures/nccl_debug/dgx-h100-roce-using-network-ib-nccl-2.19.txt", &[Some(0), Some(1)]),
            ("srun-l-dgx-spark-nccl-2.30.7-two-rails.txt", "fixtures/nccl_debug/dgx-spark-nccl-2.30.7-ib-hca-set-to-roce-two-rails.txt", &[Some(0), Some(1)]),
            ("docker-compose-dgx-spark-nccl-2.30.7-two-rails.txt", "fixtures/nccl_debug/dgx-spark-nccl-2.30.7-ib-hca-set-to-roce-two-rails.txt", &[None, None]),
            (
                "mpirun-tag-output-ib-disabled-socket.txt",
                "fixtures/nccl_debug/ib-disabled-by-env-using-network-socket-mpi-noise.txt",
                &[Some(4), Some(6), Some(0), Some(1), Some(3)],
            ),
            ("ray-ansi-colour-dgx-spark-gdr-dmabuf-channels.txt", "fixtures/nccl_debug/dgx-spark-vllm-ray-worker-gdr-dmabuf-enabled-channels.txt", &[None]),
            ("docker-logs-timestamps-dgx-a100-socket-nccl-2.11.txt", "fixtures/nccl_debug/dgx-a100-net-socket-forced-nccl-2.11.txt", &[None, None]),
            (
                "carriage-return-progress-bar-own-h100-default.txt",
                "crates/cluster/tests/fixtures/own/h100-1rank-nccl-2.28.9-default-ib-no-device-socket.txt",
                &[Some(0)],
            ),
        ];
        for (file, source, ranks) in cases {
            let got = analyze(&read(&format!("fixtures/nccl_debug/prefixed/{file}")));
            let mut want = analyze(&read(source));
            assert_eq!(got.processes.len(), ranks.len(), "{file}: {got:#?}");
            for (p, r) in want.processes.iter_mut().zip(*ranks) {
                p.rank = p.rank.or(*r);
            }
            assert_eq!(got.processes, want.processes, "{file}");
            assert_eq!(got.versions, want.versions, "{file}");
            assert_eq!(got.nccl_lines, want.nccl_lines, "{file}");
        }
    }

    /// Our benchmark on the GPU machine (`fixtures/nccl_bench/h200-2026-12-01`): one rank, no
    /// RDMA device.
    #[test]
    fn own_h200_benchmark_logs() {
        let a = analyze(&fixture("own-h200-nccl-bench-ws1-nccl-2.28.9-default.txt"));
        assert_eq!(a.versions, ["2.28.9+cuda13.0"]);
        let p = &a.processes[0];
        assert_eq!((a.processes.len(), p.host.as_str(), p.rank, p.nranks), (1, "vm", Some(0), Some(1)));
        assert_eq!((p.net.clone(), p.net_name.as_deref(), p.devices()), (Some(Net::Socket), Some("Socket"), &["eth0".to_owned()][..]));
        assert_eq!(p.ib_unusable.as_deref(), Some("NET/IB : No device found."));
        assert_eq!(p.gdr["eth0"], "disabled");
        assert_eq!(p.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), ["NCCL_NVLS_ENABLE=0"]);

        let a = analyze(&fixture("own-h200-nccl-bench-ws1-nccl-2.28.9-spark-env-ib-disabled.txt"));
        let p = &a.processes[0];
        assert_eq!((p.net.clone(), p.ib_unusable.as_deref()), (Some(Net::Socket), None));
        let env: Vec<String> = p.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(env, ["NCCL_DMABUF_ENABLE=0", "NCCL_IB_DISABLE=1", "NCCL_NET_PLUGIN=none", "NCCL_NVLS_ENABLE=0"]);
        assert_eq!(p.errors.count, 1, "IB disabled: `transport/net_ib.cc:NN -> 3` is traced");
    }

    /// spark-entrypoint's own log of `SPARK_MODE=nccl-bench` on the H200 (NCCL lines echoed by
    /// the benchmark behind the entrypoint's `[node child] ` prefix).
    #[test]
    fn own_entrypoint_bench_log_on_the_h200() {
        let a = analyze(&read("fixtures/nccl_bench/h200-2026-12-01/entrypoint-nccl-bench-ws1.log"));
        assert_eq!(a.processes.len(), 1);
        let p = &a.processes[0];
        assert_eq!((p.host.as_str(), p.pid, p.rank, p.nranks), ("vm", 451, Some(0), Some(1)));
        assert_eq!((p.net.clone(), p.devices()), (Some(Net::Socket), &["eth0".to_owned()][..]));
        let env: Vec<String> = p.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(env, ["NCCL_IB_DISABLE=1", "NCCL_NVLS_ENABLE=0", "NCCL_SOCKET_IFNAME=eth0"]);
    }

    #[test]
    fn a_flood_of_warnings_is_counted_not_kept() {
        let mut w = Watcher::new();
        for i in 0..200_000 {
            w.feed(&format!("h:7:7 [0] misc/socket.cc:50 NCCL WARN socket error {i}"));
            w.feed(&format!("h:7:7 [0] NCCL INFO proxy.cc:{i} -> 6"));
        }
        let p = &w.analysis().processes[0];
        assert_eq!((p.warnings.count, p.warnings.kept.len()), (200_000, KEPT_PER_PROCESS));
        assert_eq!((p.errors.count, p.errors.kept.len()), (200_000, KEPT_PER_PROCESS));
        assert_eq!(p.warnings.kept[0], "socket error 0");
    }

    /// A watcher living for days keeps the newest processes only, and still finds them.
    #[test]
    fn a_bounded_watcher_forgets_the_oldest_processes() {
        let mut w = Watcher::bounded(100);
        for pid in 0..10_000u32 {
            w.feed(&format!("h:{pid}:{pid} [0] NCCL INFO NET/Socket : Using [0]rail0:10.0.0.1<0>"));
        }
        let a = w.analysis();
        assert!(a.processes.len() <= 100, "{} kept", a.processes.len());
        assert_eq!(a.processes.len() as u64 + a.processes_dropped, 10_000);
        assert_eq!(a.processes.last().map(|p| p.pid), Some(9_999));
        assert!(a.processes.windows(2).all(|p| p[0].pid < p[1].pid), "oldest first, none twice");
        // A kept process is found again (not added twice), a forgotten one comes back as new.
        let kept = a.processes[0].pid;
        let n = a.processes.len();
        w.feed(&format!("h:{kept}:{kept} [0] NCCL INFO Using network IB"));
        assert_eq!(w.analysis().processes.len(), n);
        assert_eq!(w.analysis().process("h", kept).unwrap().net, Some(Net::Ib));
        w.feed("h:5:5 [0] NCCL INFO Using network Socket");
        assert_eq!(w.analysis().processes.last().map(|p| (p.pid, p.net.clone())), Some((5, Some(Net::Socket))));
        // An unbounded one keeps all.
        let mut all = Watcher::new();
        for pid in 0..1_000u32 {
            all.feed(&format!("h:{pid}:{pid} [0] NCCL INFO Using network IB"));
        }
        assert_eq!((all.analysis().processes.len(), all.analysis().processes_dropped), (1_000, 0));
    }

    #[test]
    fn versions_of_every_process_are_kept() {
        let log = "a:1:1 [0] NCCL INFO NCCL version 2.28.9+cuda13.0\nb:2:2 [0] NCCL INFO NCCL version 2.27.3+cuda12.9\nNCCL version 2.28.9+cuda13.0\n";
        let a = analyze(log);
        assert_eq!(a.versions, ["2.28.9+cuda13.0", "2.27.3+cuda12.9"]);
        assert_eq!(a.process("b", 2).unwrap().version.as_deref(), Some("2.27.3+cuda12.9"));
    }

    #[test]
    fn the_reader_streams_lines_and_replaces_bad_bytes() {
        let mut bytes = fixture("dgx-spark-nccl-2.30.7-ib-hca-set-to-roce-two-rails.txt").into_bytes();
        bytes.extend_from_slice(b"\xff\xfe junk\r\nspark-9f8f:315:315 [0] NCCL INFO NET/IB : Using [0]rocep1s0f1:1/RoCE [RO]; OOB x<0>");
        let mut w = Watcher::new();
        analyze_reader(&mut w, &bytes[..]).unwrap();
        let a = w.into_analysis();
        assert_eq!(a.lines, 9);
        assert_eq!(a.processes.len(), 2);
        assert_eq!(a.processes[0].hcas, ["rocep1s0f1:1"], "the last `Using` line wins");
    }

    #[test]
    fn watcher_reports_each_transport_once_and_a_change_to_socket() {
        let mut w = Watcher::new();
        assert_eq!(w.feed("h:1:1 [0] NCCL INFO NET/IB : Using [0]rocep1s0f1:1/RoCE [RO]; OOB x:1.2.3.4<0>").map(|t| t.net), Some(Net::Ib));
        assert_eq!(w.feed("h:1:2 [0] NCCL INFO NET/IB : Using [0]rocep1s0f1:1/RoCE [RO]; OOB x:1.2.3.4<0>"), None);
        assert_eq!(w.feed("h:1:2 [0] NCCL INFO Using network Socket").map(|t| t.net), Some(Net::Socket));
        assert_eq!(w.feed("not an nccl line"), None);
    }
}
