//! Reads `NCCL_DEBUG=INFO` output and says, per process, whether NCCL moves data over `NET/IB`
//! (RDMA, good) or `NET/Socket` (TCP fallback), which NCCL version runs, and which variables it
//! reports as "set by environment". Works on raw NCCL lines and on lines behind Ray's
//! `(EngineCore_DP0 pid=..) (RayWorkerWrapper pid=.., ip=..)` forwarding prefixes.
//!
//! [`Watcher`] takes one line at a time (the entrypoint feeds it its children's output as it
//! arrives); [`analyze`] runs it over a whole log.

use std::collections::BTreeMap;
use std::fmt;

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

/// What one NCCL process (`host:pid`) said about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Process {
    pub host: String,
    pub pid: u32,
    pub net: Option<Net>,
    /// Devices from `NET/… : Using [0]dev …`: `rocep1s0f1:1` for IB, `ens3` for Socket.
    pub devices: Vec<String>,
    /// `NAME set by environment to VALUE`.
    pub env: BTreeMap<String, String>,
    /// `NCCL WARN` messages.
    pub warnings: Vec<String>,
}

/// Everything learnt from a log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Analysis {
    /// From `NCCL version 2.19.3+cuda12.3`: `2.19.3+cuda12.3`.
    pub version: Option<String>,
    /// In order of first appearance.
    pub processes: Vec<Process>,
}

impl Analysis {
    pub fn process(&self, host: &str, pid: u32) -> Option<&Process> {
        self.processes.iter().find(|p| p.host == host && p.pid == pid)
    }
}

/// A transport became known (or changed) for a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportSeen {
    pub host: String,
    pub pid: u32,
    pub net: Net,
}

/// Incremental analyser.
#[derive(Debug, Default)]
pub struct Watcher {
    analysis: Analysis,
}

impl Watcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one line; returns the transport when this line settled or changed it.
    pub fn feed(&mut self, line: &str) -> Option<TransportSeen> {
        let line = strip_forwarding_prefixes(line.trim_end());
        if let Some(at) = line.find("NCCL version ") {
            if let Some(v) = line[at + "NCCL version ".len()..].split_whitespace().next() {
                self.analysis.version.get_or_insert_with(|| v.to_owned());
            }
        }
        let (header, level, msg) = split_nccl_line(line)?;
        let (host, pid) = parse_header(header)?;
        let idx = match self.analysis.processes.iter().position(|p| p.host == host && p.pid == pid) {
            Some(i) => i,
            None => {
                self.analysis.processes.push(Process { host: host.to_owned(), pid, ..Process::default() });
                self.analysis.processes.len() - 1
            }
        };
        let proc_ = &mut self.analysis.processes[idx];
        if level == "WARN" {
            proc_.warnings.push(msg.to_owned());
            return None;
        }
        if let Some((name, value)) = msg.split_once(" set by environment to ") {
            proc_.env.insert(name.trim().to_owned(), value.trim().trim_end_matches('.').to_owned());
            return None;
        }
        let (net, authoritative) = transport_of(msg)?;
        if let Some(devs) = msg.split_once(" : Using ").map(|(_, rest)| parse_devices(rest)) {
            if !devs.is_empty() {
                proc_.devices = devs;
            }
        }
        let changed = match &proc_.net {
            None => true,
            Some(old) => authoritative && *old != net,
        };
        if !changed {
            return None;
        }
        proc_.net = Some(net.clone());
        Some(TransportSeen { host: proc_.host.clone(), pid, net })
    }

    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }

    pub fn into_analysis(self) -> Analysis {
        self.analysis
    }
}

/// Runs a [`Watcher`] over every line of `log`.
pub fn analyze(log: &str) -> Analysis {
    let mut w = Watcher::new();
    for line in log.lines() {
        w.feed(line);
    }
    w.into_analysis()
}

/// Drops Ray's `(Actor pid=.., ip=..) ` prefixes (several may be stacked).
fn strip_forwarding_prefixes(mut line: &str) -> &str {
    while let Some(rest) = line.strip_prefix('(') {
        match rest.find(") ") {
            Some(end) => line = rest[end + 2..].trim_start(),
            None => break,
        }
    }
    line
}

/// `host:pid:tid [dev] NCCL INFO msg` → (`host:pid:tid [dev]`, `INFO`, `msg`).
fn split_nccl_line(line: &str) -> Option<(&str, &str, &str)> {
    for level in ["INFO", "WARN"] {
        let tag = format!(" NCCL {level} ");
        if let Some(at) = line.find(&tag) {
            return Some((&line[..at], level, line[at + tag.len()..].trim()));
        }
    }
    None
}

/// The `host:pid` of a header `host:pid:tid [dev] [file.cc:NN]`.
fn parse_header(header: &str) -> Option<(&str, u32)> {
    let first = header.split_whitespace().next()?;
    let mut parts = first.rsplitn(3, ':');
    let _tid = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    let host = parts.next()?;
    Some((host, pid))
}

/// The network a message shows, and whether the message is authoritative (`Using network X`, a
/// channel `via NET/X`) rather than a plugin announcing itself.
fn transport_of(msg: &str) -> Option<(Net, bool)> {
    if let Some(name) = msg.strip_prefix("Using network ") {
        return Some((Net::from_name(name.split_whitespace().next()?), true));
    }
    if let Some(at) = msg.find(" via NET/") {
        let name = msg[at + " via NET/".len()..].split('/').next()?;
        return Some((Net::from_name(name), true));
    }
    let rest = msg.strip_prefix("NET/")?;
    let (name, what) = rest.split_once(" : ")?;
    let name = name.trim();
    if name == "Plugin" || what.starts_with("No device found") {
        return None;
    }
    // `NET/IB : Using [RO]; OOB eth0:…` (NCCL 2.28 with no RDMA device) lists no device: IB is
    // not usable, so it is no transport; a device list starts with `[0]`.
    let using = what.strip_prefix("Using ").is_some_and(|rest| !parse_devices(rest).is_empty());
    let announces = using || what.starts_with("GPU Direct RDMA") || what.starts_with("Made virtual device");
    announces.then(|| (Net::from_name(name), false))
}

/// `[0]rocep1s0f1:1/RoCE [1]roceP2p1s0f1:1/RoCE [RO]; OOB …` → `rocep1s0f1:1`, `roceP2p1s0f1:1`;
/// `[0]ens3:172.31.12.210<0>` → `ens3`.
fn parse_devices(rest: &str) -> Vec<String> {
    let list = rest.split(';').next().unwrap_or("");
    list.split_whitespace()
        .filter_map(|tok| {
            let (idx, dev) = tok.strip_prefix('[')?.split_once(']')?;
            idx.parse::<u32>().ok()?;
            let dev = dev.split('/').next()?;
            // A socket device is `ifname:ip<port>`: keep the interface name.
            Some(if dev.contains('<') { dev.split(':').next()?.to_owned() } else { dev.to_owned() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/nccl_debug").join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
    }

    /// (host, pid, net, devices) of every process that showed a transport.
    fn transports(a: &Analysis) -> Vec<(String, u32, Net, Vec<String>)> {
        a.processes.iter().filter_map(|p| Some((p.host.clone(), p.pid, p.net.clone()?, p.devices.clone()))).collect()
    }

    fn check(file: &str, version: Option<&str>, expect: &[(&str, u32, Net, &[&str])], env: &[(&str, u32, &str, &str)], warns: usize) {
        let a = analyze(&fixture(file));
        assert_eq!(a.version.as_deref(), version, "{file}: version");
        let want: Vec<(String, u32, Net, Vec<String>)> =
            expect.iter().map(|(h, p, n, d)| (h.to_string(), *p, n.clone(), d.iter().map(|s| s.to_string()).collect())).collect();
        assert_eq!(transports(&a), want, "{file}: transports");
        for (host, pid, k, v) in env {
            let p = a.process(host, *pid).unwrap_or_else(|| panic!("{file}: no process {host}:{pid}"));
            assert_eq!(p.env.get(*k).map(String::as_str), Some(*v), "{file}: {host}:{pid} {k}");
        }
        assert_eq!(a.processes.iter().map(|p| p.warnings.len()).sum::<usize>(), warns, "{file}: warnings");
    }

    #[test]
    fn every_fixture_file_is_covered() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/nccl_debug");
        let mut files: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        let src = include_str!("nccl.rs");
        for f in files {
            assert!(src.contains(&format!("\"{f}\"")), "fixture {f} has no test in nccl.rs");
        }
    }

    #[test]
    fn spark_pair_uses_ib_on_both_twins() {
        let ib: &[&str] = &["rocep1s0f1:1", "roceP2p1s0f1:1"];
        check(
            "dgx-spark-nccl-2.30.7-ib-hca-set-to-roce-two-rails.txt",
            None,
            &[("spark-9f8f", 315, Net::Ib, ib), ("spark-506c", 250, Net::Ib, ib)],
            &[("spark-9f8f", 315, "NCCL_IB_GID_INDEX", "3"), ("spark-506c", 250, "NCCL_IB_GID_INDEX", "3")],
            0,
        );
    }

    #[test]
    fn ray_prefixed_worker_lines_show_ib_plugin() {
        check("dgx-spark-vllm-ray-worker-nccl-plugin-virtual-devices.txt", None, &[("spark-3995", 2981, Net::Ib, &[])], &[], 0);
        check("dgx-spark-vllm-ray-worker-gdr-dmabuf-enabled-channels.txt", None, &[("spark-3995", 2981, Net::Ib, &[])], &[], 0);
    }

    #[test]
    fn h100_roce_using_network_ib_and_version() {
        let devs: &[&str] = &["mlx5_10:1", "mlx5_11:1"];
        check(
            "dgx-h100-roce-using-network-ib-nccl-2.19.txt",
            Some("2.19.3+cuda12.3"),
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
        assert_eq!(socket[0].devices, ["ibs85f0", "ib0"]);
        assert_eq!(socket[0].env["NCCL_IB_DISABLE"], "1");
        check(
            "socket-lo-ibext-disabled-set-by-environment.txt",
            None,
            &[("axa", 3048391, Net::Socket, &["lo"])],
            &[("axa", 3048391, "NCCL_SOCKET_IFNAME", "lo"), ("axa", 3048391, "NCCL_IB_DISABLE", "1"), ("axa", 3048391, "NCCL_IBEXT_DISABLE", "1")],
            0,
        );
        check("ray-train-net-socket-gdr-disabled-virbr0.txt", None, &[("localhost", 83500, Net::Socket, &[])], &[], 0);
    }

    #[test]
    fn forced_socket_on_dgx_a100_and_old_no_device_found() {
        let a = analyze(&fixture("dgx-a100-net-socket-forced-nccl-2.11.txt"));
        assert_eq!(a.version.as_deref(), Some("2.11.4+cuda11.4"));
        let gpu01 = a.process("gpu01", 124172).unwrap();
        assert_eq!(gpu01.net, Some(Net::Socket));
        assert_eq!(gpu01.devices, ["enp225s0f1"]);
        assert_eq!(gpu01.env["NCCL_SOCKET_IFNAME"], "en");
        assert!(a.processes.iter().all(|p| p.net != Some(Net::Ib)));

        let old = analyze(&fixture("aws-ec2-net-ib-no-device-found-socket-fallback-old.txt"));
        assert_eq!(old.process("ip-172-31-12-210", 45305).unwrap().net, Some(Net::Socket));
        assert_eq!(old.process("ip-172-31-12-21", 45361).unwrap().net, None, "`No device found` is not a transport");
        assert!(old.processes.iter().all(|p| p.net != Some(Net::Ib)));
    }

    #[test]
    fn ib_completion_errors_are_warnings_of_the_process() {
        check("warn-net-ib-completion-status-12-vendor-err-129-plugin.txt", None, &[], &[], 2);
        let a = analyze(&fixture("warn-net-ib-completion-error-12-old-format.txt"));
        let p = a.process("-worker-1", 946).unwrap();
        assert!(p.warnings[0].contains("Got completion with error 12"));
    }

    /// Our own logs (`cluster/tests/fixtures/own`, one rank on an H100 without RDMA): the table
    /// of its README.
    #[test]
    fn own_h100_one_rank_logs_end_on_socket_and_never_show_ib() {
        let own = |f: &str| {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/own").join(f);
            analyze(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())))
        };
        let cases: [(&str, &[(&str, &str)]); 3] = [
            ("h100-1rank-nccl-2.28.9-default-ib-no-device-socket.txt", &[("NCCL_NVLS_ENABLE", "0")]),
            ("h100-1rank-nccl-2.28.9-forced-socket-ib-p2p-shm-disabled.txt", &[("NCCL_IB_DISABLE", "1"), ("NCCL_NVLS_ENABLE", "0"), ("NCCL_P2P_DISABLE", "1")]),
            (
                "h100-1rank-nccl-2.28.9-spark-env-net-plugin-none.txt",
                &[("NCCL_DMABUF_ENABLE", "0"), ("NCCL_NET_PLUGIN", "none"), ("NCCL_NVLS_ENABLE", "0"), ("NCCL_SOCKET_IFNAME", "eth0")],
            ),
        ];
        for (file, env) in cases {
            let mut w = Watcher::new();
            let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/own").join(file)).unwrap();
            let seen: Vec<Net> = text.lines().filter_map(|l| w.feed(l)).map(|t| t.net).collect();
            assert_eq!(seen, [Net::Socket], "{file}: transports reported while reading");
            let a = own(file);
            assert_eq!(a.version.as_deref(), Some("2.28.9+cuda13.0"), "{file}");
            assert_eq!(a.processes.len(), 1, "{file}");
            let p = &a.processes[0];
            assert_eq!((p.net.clone(), p.devices.clone()), (Some(Net::Socket), vec!["eth0".to_owned()]), "{file}");
            let want: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            assert_eq!(p.env, want, "{file}");
        }
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
