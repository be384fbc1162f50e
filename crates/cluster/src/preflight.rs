//! Node preflight: are the rails what a RoCE cluster needs, and can NCCL use RDMA over them?
//! Shared by `spark-entrypoint` (before it joins the cluster) and `sparkctl doctor`.
//!
//! Network checks (rail exists, up, IPv4, MTU, IPv6 off) always fail hard: without them nothing
//! works. RDMA checks (device behind each rail, port active, RoCE v2 GID for the rail's address,
//! `/dev/infiniband`, memlock) decide the transport: IB when they all pass, otherwise Socket with
//! a loud warning, or a refusal when the configuration demands IB.

use crate::derive::{node_env, Rail};
// How the operator wants NCCL to move data (`auto`, `ib`, `socket`): the one type of cluster.toml's
// `transport`, `SPARK_TRANSPORT` and `doctor --transport`. [`Transport`] below is the outcome.
use crate::model::Transport as Policy;
use crate::sysfs::{self, Limit, Root};
use std::collections::BTreeMap;
use std::fmt;

/// The transport NCCL is expected to use after preflight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// RDMA (`NET/IB`).
    Ib,
    /// TCP sockets (`NET/Socket`).
    Socket,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Ib => "NET/IB",
            Transport::Socket => "NET/Socket",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
/// The outcome of one check.
pub enum Status {
    /// Passed.
    Pass,
    /// A problem the node can run with.
    Warn,
    /// A problem the node cannot run with.
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        })
    }
}

/// One line of the preflight table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What is checked, e.g. `mtu`.
    pub name: &'static str,
    /// What it is checked on, e.g. `enp1s0f1np1`, or `node`.
    pub subject: String,
    /// Whether it passed.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it, when not passing.
    pub hint: Option<String>,
    /// What passing looks like, when it is a value (`9000`, `200000`).
    pub expected: Option<String>,
    /// A safe, reversible fix `sparkctl doctor --fix` may apply, when not passing.
    pub fix: Option<Fix>,
}

/// A fix that is a write of one value through the root prefix, so it can be printed as the
/// command a person would type, applied, and undone with the previous value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// `/sys/class/net/<netdev>/mtu` (`ip link set dev <netdev> mtu <mtu>`).
    Mtu {
        /// The netdev.
        netdev: String,
        /// The MTU to set.
        mtu: u32,
    },
    /// `/proc/sys/<key with / for .>` (`sysctl -w <key>=<value>`).
    Sysctl {
        /// The sysctl key.
        key: String,
        /// The value to set.
        value: String,
    },
}

impl Fix {
    /// The file the fix writes, as an absolute path on the node.
    pub fn path(&self) -> String {
        match self {
            Fix::Mtu { netdev, .. } => format!("/sys/class/net/{netdev}/mtu"),
            // sysctl writes a dot inside a name as `/`: swap them back for the path.
            Fix::Sysctl { key, .. } => format!(
                "/proc/sys/{}",
                key.chars()
                    .map(|c| if c == '.' {
                        '/'
                    } else if c == '/' {
                        '.'
                    } else {
                        c
                    })
                    .collect::<String>()
            ),
        }
    }

    fn value(&self) -> String {
        match self {
            Fix::Mtu { mtu, .. } => mtu.to_string(),
            Fix::Sysctl { value, .. } => value.clone(),
        }
    }

    /// A sysctl fix of `net.<family>.conf.<netdev>.<name>`, with the netdev's dots written as `/`.
    pub(crate) fn netdev_sysctl(family: &str, netdev: &str, name: &str, value: &str) -> Fix {
        Fix::Sysctl { key: format!("net.{family}.conf.{}.{name}", netdev.replace('.', "/")), value: value.to_owned() }
    }

    /// The command a person would run for the same change.
    pub fn command(&self) -> String {
        self.command_with(&self.value())
    }

    /// The same command setting `value` instead (the undo, with the previous value).
    pub fn command_with(&self, value: &str) -> String {
        match self {
            Fix::Mtu { netdev, .. } => format!("ip link set dev {netdev} mtu {value}"),
            Fix::Sysctl { key, .. } => format!("sysctl -w {key}={value}"),
        }
    }

    /// Writes the value through `root`; returns the previous value (for the undo command).
    pub fn apply(&self, root: &Root) -> std::io::Result<String> {
        let path = root.join(&self.path());
        let previous = std::fs::read_to_string(&path)?.trim().to_owned();
        std::fs::write(&path, format!("{}\n", self.value()))?;
        Ok(previous)
    }
}

/// What the node should be.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Rail netdevs, in order (the first one's address is the node's address).
    pub rails: Vec<String>,
    /// Expected MTU of every rail.
    pub mtu: u32,
    /// Which transport is accepted.
    pub transport: Policy,
}

/// The outcome: the table, the rails found, the transport decided.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// Rails as found; `rdma_device` is set only when the transport is IB.
    pub rails: Vec<Rail>,
    /// The transport decided.
    pub transport: Transport,
}

impl Report {
    /// True when no check failed: the node may join the cluster.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    /// The node-specific environment derived from the rails actually found.
    pub fn env(&self) -> BTreeMap<String, String> {
        node_env(&self.rails)
    }
}

pub(crate) struct Table(pub(crate) Vec<Check>);

impl Table {
    pub(crate) fn add(&mut self, name: &'static str, subject: &str, status: Status, detail: impl Into<String>, hint: Option<&str>) {
        let hint = if status == Status::Pass { None } else { hint.map(str::to_owned) };
        self.0.push(Check { name, subject: subject.to_owned(), status, detail: detail.into(), hint, expected: None, fix: None });
    }

    /// Sets what the last check expected and, unless it passed, its fix.
    pub(crate) fn with(&mut self, expected: impl Into<String>, fix: Option<Fix>) {
        if let Some(c) = self.0.last_mut() {
            c.expected = Some(expected.into());
            c.fix = fix.filter(|_| c.status != Status::Pass);
        }
    }
}

/// Runs every check on the node under `root`.
pub fn run(root: &Root, spec: &Spec) -> Report {
    let mut t = Table(Vec::new());
    if spec.rails.is_empty() {
        t.add("rails", "node", Status::Fail, "no rail interfaces configured", Some("name the rail netdevs, e.g. `enp1s0f1np1,enP2p1s0f1np1`"));
    }
    let mut found: Vec<RailFinding> = spec.rails.iter().map(|name| check_rail(&mut t, root, name, spec.mtu)).collect();
    let node = [dev_infiniband(root), memlock(root)];
    let rdma_ok = !found.is_empty() && found.iter().all(|f| f.device.is_some()) && node.iter().all(|c| c.outcome.is_ok());
    let transport = match spec.transport {
        Policy::Socket => Transport::Socket,
        _ if rdma_ok => Transport::Ib,
        _ => Transport::Socket,
    };
    if spec.transport != Policy::Socket {
        // Missing RDMA is a failure when IB is demanded, a warning when it is optional.
        let miss = if spec.transport == Policy::Ib { Status::Fail } else { Status::Warn };
        for check in found.iter_mut().filter_map(|f| f.rdma.take()).chain(node) {
            check.report(&mut t, miss);
        }
    }
    check_nccl_conf(&mut t, root);
    report_transport(&mut t, spec.transport, transport);
    let rails = found.into_iter().filter_map(|f| f.into_rail(transport == Transport::Ib)).collect();
    Report { checks: t.0, rails, transport }
}

/// An RDMA prerequisite as found; how much a miss matters waits for the transport decision.
struct RdmaCheck<'a> {
    name: &'static str,
    subject: &'a str,
    /// What was found: the detail, or the detail and the fix.
    outcome: Result<String, (String, &'static str)>,
}

impl RdmaCheck<'_> {
    fn report(self, t: &mut Table, miss: Status) {
        match self.outcome {
            Ok(detail) => t.add(self.name, self.subject, Status::Pass, detail, None),
            Err((detail, hint)) => t.add(self.name, self.subject, miss, detail, Some(hint)),
        }
    }
}

/// What the checks of one configured rail found.
#[derive(Default)]
struct RailFinding<'a> {
    /// The rail with its address; `None` when it does not exist or has no IPv4 address.
    rail: Option<Rail>,
    /// The RDMA device and port behind the rail, when RDMA can use them.
    device: Option<(String, u8)>,
    /// The RDMA check, reported once the transport is known; `None` when the rail does not exist.
    rdma: Option<RdmaCheck<'a>>,
}

impl RailFinding<'_> {
    /// The rail for the report; with IB, the RDMA device and port behind it.
    fn into_rail(self, ib: bool) -> Option<Rail> {
        let mut rail = self.rail?;
        if let (true, Some((dev, port))) = (ib, self.device) {
            rail.rdma_device = Some(dev);
            rail.port = port;
        }
        Some(rail)
    }
}

/// The network checks of one rail (exists, up, ipv4, mtu, ipv6-off) and what is behind it for RDMA.
fn check_rail<'a>(t: &mut Table, root: &Root, name: &'a str, mtu: u32) -> RailFinding<'a> {
    let Some(nd) = find_netdev(t, root, name) else { return RailFinding::default() };
    let up = nd.operstate == "up";
    t.add(
        "up",
        name,
        if up { Status::Pass } else { Status::Fail },
        format!("operstate {}", nd.operstate),
        Some("bring the link up (`ip link set dev IF up`) and check the cable"),
    );
    let ip = check_ipv4(t, root, name);
    check_mtu(t, name, nd.mtu, mtu);
    check_ipv6_off(t, name, nd.ipv6_disabled);
    let (device, outcome) = match rdma_behind(root, name, ip) {
        Ok((dev, port, detail)) => (Some((dev, port)), Ok(detail)),
        Err(e) => (None, Err(e)),
    };
    RailFinding {
        rail: ip.map(|ipv4| Rail { netdev: name.to_owned(), rdma_device: None, ipv4, port: 1 }),
        device,
        rdma: Some(RdmaCheck { name: "rdma", subject: name, outcome }),
    }
}

/// The `exists` check: the rail's netdev, when its name is one and it is present.
fn find_netdev(t: &mut Table, root: &Root, name: &str) -> Option<sysfs::Netdev> {
    // A name like `../../../etc` would read another directory as if it were a netdev.
    if let Err(e) = sysfs::validate_netdev_name(name) {
        t.add("exists", name, Status::Fail, e.to_string(), Some("name the rail as `ip -br link` shows it"));
        return None;
    }
    let Some(nd) = sysfs::read_netdev(root, name) else {
        let present = root.list("/sys/class/net").join(", ");
        t.add(
            "exists",
            name,
            Status::Fail,
            format!("no such interface (present: {present})"),
            Some("check the rail names (`ip -br link`) and that the container uses the host network"),
        );
        return None;
    };
    t.add("exists", name, Status::Pass, "present", None);
    Some(nd)
}

/// The `ipv4` check; returns the rail's first address.
fn check_ipv4(t: &mut Table, root: &Root, name: &str) -> Option<std::net::Ipv4Addr> {
    match sysfs::read_ipv4(root, name).first() {
        Some((ip, len)) => {
            t.add("ipv4", name, Status::Pass, format!("{ip}/{len}"), None);
            Some(*ip)
        }
        None => {
            t.add(
                "ipv4",
                name,
                Status::Fail,
                "no IPv4 address",
                Some("give each rail its own address on its own subnet (netplan or `sparkctl render netplan`)"),
            );
            None
        }
    }
}

fn check_mtu(t: &mut Table, name: &str, found: Option<u32>, mtu: u32) {
    match found {
        Some(m) if m == mtu => t.add("mtu", name, Status::Pass, m.to_string(), None),
        m => t.add("mtu", name, Status::Fail, format!("{} (expected {})", m.map_or("unknown".into(), |m| m.to_string()), mtu), Some(&mtu_hint(name, mtu))),
    }
    t.with(mtu.to_string(), Some(Fix::Mtu { netdev: name.to_owned(), mtu }));
}

fn check_ipv6_off(t: &mut Table, name: &str, disabled: Option<bool>) {
    match disabled {
        Some(false) => t.add("ipv6-off", name, Status::Fail, "IPv6 enabled", Some("set `net.ipv6.conf.IF.disable_ipv6=1` so RoCE GID indexes stay stable")),
        Some(true) => t.add("ipv6-off", name, Status::Pass, "disabled", None),
        None => t.add("ipv6-off", name, Status::Pass, "no IPv6 in kernel", None),
    }
    t.with("disabled", Some(Fix::netdev_sysctl("ipv6", name, "disable_ipv6", "1")));
}

/// Node-wide RDMA prerequisite: a uverbs device in `/dev/infiniband`.
fn dev_infiniband(root: &Root) -> RdmaCheck<'static> {
    let uverbs: Vec<String> = root.list("/dev/infiniband").into_iter().filter(|n| n.starts_with("uverbs")).collect();
    let outcome = if uverbs.is_empty() {
        Err(("`/dev/infiniband` has no uverbs device".to_owned(), "run the container with `--device=/dev/infiniband`"))
    } else {
        Ok(uverbs.join(","))
    };
    RdmaCheck { name: "dev-infiniband", subject: "node", outcome }
}

/// Node-wide RDMA prerequisite: no limit on locked memory.
fn memlock(root: &Root) -> RdmaCheck<'static> {
    let outcome = match root.read("/proc/self/limits").and_then(|l| sysfs::parse_memlock(&l)) {
        Some(Limit::Unlimited) => Ok("unlimited".to_owned()),
        Some(Limit::Bytes(b)) => Err((format!("{b} bytes"), "run with `--ulimit memlock=-1` (`LimitMEMLOCK=infinity` for units)")),
        None => Err(("unknown".to_owned(), "run with `--ulimit memlock=-1`")),
    };
    RdmaCheck { name: "memlock", subject: "node", outcome }
}

fn check_nccl_conf(t: &mut Table, root: &Root) {
    match root.read("/etc/nccl.conf") {
        Some(_) => t.add(
            "nccl-conf",
            "node",
            Status::Warn,
            "`/etc/nccl.conf` exists and sets NCCL variables silently",
            Some("remove it; the entrypoint sets NCCL variables in the environment"),
        ),
        None => t.add("nccl-conf", "node", Status::Pass, "absent", None),
    }
}

/// The `transport` line: what NCCL will use, given what the operator asked for.
fn report_transport(t: &mut Table, policy: Policy, transport: Transport) {
    match transport {
        Transport::Ib => t.add("transport", "node", Status::Pass, "NET/IB (RoCE) on every rail", None),
        // With `transport = "ib"` the entrypoint refuses to start: there is no Socket to speak of.
        Transport::Socket if policy == Policy::Ib => t.add(
            "transport",
            "node",
            Status::Fail,
            "none: the RDMA checks failed and `transport = \"ib\"` makes spark-entrypoint refuse to start",
            Some("fix the RDMA checks above, or set `transport = \"auto\"` to accept NET/Socket"),
        ),
        Transport::Socket if policy == Policy::Socket => t.add("transport", "node", Status::Pass, "NET/Socket, as configured (`transport = \"socket\"`)", None),
        Transport::Socket => t.add(
            "transport",
            "node",
            Status::Warn,
            "NET/Socket: NCCL will use TCP (~4-6 GB/s instead of ~24 GB/s)",
            Some("fix the RDMA checks above to get NET/IB"),
        ),
    }
}

/// The fix for a rail MTU that is not `mtu`. The RDMA note is only true of a jumbo target: RoCE's
/// active MTU is the largest of 1024/2048/4096 that fits the netdev MTU minus ~96 header bytes.
pub(crate) fn mtu_hint(netdev: &str, mtu: u32) -> String {
    let why = if mtu >= 4200 { " (below 4200 the RDMA active_mtu drops from 4096, at 1500 to 1024)" } else { "" };
    format!("`ip link set dev {netdev} mtu {mtu}`, and the same on the peer and the switch{why}")
}

/// RoCE's active MTU for a netdev MTU, as the kernel derives it (`iboe_get_mtu`: the netdev MTU
/// less the RoCE v2 headers, rounded down to an IB MTU).
pub(crate) fn roce_active_mtu(netdev_mtu: u32) -> u32 {
    let room = netdev_mtu.saturating_sub(96);
    [4096, 2048, 1024, 512, 256].into_iter().find(|m| *m <= room).unwrap_or(0)
}

/// What a cluster description declares for one rail, to hold the node to it.
#[derive(Debug, Clone)]
pub struct DeclaredRail {
    /// The rail's netdev.
    pub netdev: String,
    /// `None`: resolved on the node (names differ per OS).
    pub rdma_device: Option<String>,
    /// Its address.
    pub ipv4: std::net::Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
}

/// Adds `declared` checks to `report`: each rail holds the declared address and prefix, and the
/// declared RDMA device (when one is named) is the one found behind the netdev.
pub(crate) fn check_declared(root: &Root, report: &mut Report, declared: &[DeclaredRail]) {
    let mut t = Table(std::mem::take(&mut report.checks));
    for d in declared {
        let found = sysfs::read_ipv4(root, &d.netdev);
        let want = format!("{}/{}", d.ipv4, d.prefix);
        if found.iter().any(|(ip, p)| *ip == d.ipv4 && *p == d.prefix) {
            t.add("declared-ip", &d.netdev, Status::Pass, want, None);
        } else {
            let have: Vec<String> = found.iter().map(|(ip, p)| format!("{ip}/{p}")).collect();
            let have = if have.is_empty() { "none".to_owned() } else { have.join(", ") };
            t.add(
                "declared-ip",
                &d.netdev,
                Status::Fail,
                format!("expected {want}, found {have}"),
                Some("apply the rendered netplan (`sparkctl render netplan`) or fix cluster.toml"),
            );
        }
        if let Some(dev) = &d.rdma_device {
            let behind = sysfs::read_netdev(root, &d.netdev).map(|n| n.rdma_devices).unwrap_or_default();
            if behind.contains(dev) {
                t.add("declared-rdma", &d.netdev, Status::Pass, dev.clone(), None);
            } else {
                let have = if behind.is_empty() { "none".to_owned() } else { behind.join(", ") };
                t.add(
                    "declared-rdma",
                    &d.netdev,
                    Status::Fail,
                    format!("expected `{dev}`, found {have}"),
                    Some("RDMA names differ per OS: leave `rdma_device` out of cluster.toml to resolve it on the node"),
                );
            }
        }
    }
    report.checks = t.0;
}

/// The RDMA device and port behind `netdev` that RDMA can use: port ACTIVE on Ethernet (RoCE) with
/// a RoCE v2 GID for the rail's IPv4 address. `Err` carries what was found and the fix.
fn rdma_behind(root: &Root, netdev: &str, ip: Option<std::net::Ipv4Addr>) -> Result<(String, u8, String), (String, &'static str)> {
    let devs = sysfs::read_netdev(root, netdev).map(|n| n.rdma_devices).unwrap_or_default();
    let Some(dev) = devs.first() else {
        return Err(("no RDMA device behind the netdev".into(), "load `mlx5_ib` and check `ibdev2netdev`; a plain Ethernet NIC cannot do RoCE"));
    };
    let ports = sysfs::read_rdma_ports(root, dev);
    let Some(port) = ports.first() else {
        return Err((format!("`{dev}` has no ports in sysfs"), "check the RDMA driver (`mlx5_ib`)"));
    };
    if port.state != "ACTIVE" {
        return Err((format!("`{dev}` port {} is {}", port.port, port.state), "check the cable and that both twins are up"));
    }
    if port.link_layer != "Ethernet" {
        return Err((format!("`{dev}` link layer is {}", port.link_layer), "set the CX-7 port to Ethernet (RoCE) mode"));
    }
    let Some(ip) = ip else {
        return Err((format!("`{dev}`: no IPv4 address, so no RoCE v2 IPv4 GID"), "give the rail an IPv4 address"));
    };
    match port.roce_v2_ipv4.iter().find(|(_, a, _)| *a == ip) {
        Some((idx, _, _)) => Ok((dev.clone(), port.port, format!("{dev}:{} {} RoCE v2 GID {idx}", port.port, port.rate))),
        None => Err((format!("`{dev}` has no RoCE v2 GID for {ip}"), "re-add the address or reload `mlx5_ib`; check `show_gids`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{fixture, write};
    use crate::tools::ibdev2netdev;
    use std::fs;

    /// A node tree built from a real `ibdev2netdev` output: every (Up) link gets an address on its
    /// own /24 (index-based), an ACTIVE port with the fixture's rate and a RoCE v2 GID at index 3.
    fn node_from_ibdev2netdev(text: &str, mtu: u32, memlock: &str) -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let mut fib = String::from("Main:\n");
        let mut route = String::from("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n");
        let mut up = Vec::new();
        for (i, link) in ibdev2netdev::parse(text).links.iter().enumerate() {
            let net = format!("sys/class/net/{}", link.netdev);
            write(r, &format!("{net}/operstate"), if link.up { "up\n" } else { "down\n" });
            write(r, &format!("{net}/mtu"), &format!("{mtu}\n"));
            fs::create_dir_all(r.join(format!("{net}/device/infiniband/{}", link.rdma_device))).unwrap();
            write(r, &format!("proc/sys/net/ipv6/conf/{}/disable_ipv6", link.netdev), "1\n");
            let port = format!("sys/class/infiniband/{}/ports/{}", link.rdma_device, link.port);
            let (state, rate) = if link.up { ("4: ACTIVE", "200 Gb/sec (4X HDR)") } else { ("1: DOWN", "40 Gb/sec (4X QDR)") };
            write(r, &format!("{port}/state"), state);
            write(r, &format!("{port}/rate"), rate);
            write(r, &format!("{port}/link_layer"), "Ethernet\n");
            write(r, &format!("{port}/gids/0"), "fe80:0000:0000:0000:9640:c9ff:fe8c:a09c\n");
            write(r, &format!("{port}/gid_attrs/types/0"), "IB/RoCE v1\n");
            if link.up {
                let third = 100 + i as u8;
                let ip = std::net::Ipv4Addr::new(192, 168, third, 10);
                write(r, &format!("{port}/gids/2"), &format!("0000:0000:0000:0000:0000:ffff:c0a8:{third:02x}0a\n"));
                write(r, &format!("{port}/gid_attrs/types/2"), "IB/RoCE v1\n");
                write(r, &format!("{port}/gids/3"), &format!("0000:0000:0000:0000:0000:ffff:c0a8:{third:02x}0a\n"));
                write(r, &format!("{port}/gid_attrs/types/3"), "RoCE v2\n");
                write(r, &format!("{port}/gid_attrs/ndevs/3"), &format!("{}\n", link.netdev));
                fib.push_str(&format!("     |-- {ip}\n        /32 host LOCAL\n"));
                let dest = u32::from(std::net::Ipv4Addr::new(192, 168, third, 0)).swap_bytes();
                route.push_str(&format!("{}\t{dest:08X}\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", link.netdev));
                up.push(link.netdev.clone());
            }
        }
        write(r, "proc/net/fib_trie", &fib);
        write(r, "proc/net/route", &route);
        write(r, "proc/self/limits", &format!("Max locked memory         {memlock}            {memlock}            bytes\n"));
        write(r, "dev/infiniband/uverbs0", "");
        (dir, up)
    }

    fn spec(rails: &[String], transport: Policy) -> Spec {
        Spec { rails: rails.to_vec(), mtu: 9000, transport }
    }

    fn status_of<'a>(rep: &'a Report, name: &str, subject: &str) -> &'a Check {
        rep.checks.iter().find(|c| c.name == name && c.subject == subject).unwrap_or_else(|| panic!("no check {name} on {subject}: {:#?}", rep.checks))
    }

    #[test]
    fn healthy_spark_with_both_twins_gets_ib_and_both_hcas() {
        let (dir, up) = node_from_ibdev2netdev(&fixture("ibdev2netdev/dgx-spark-single-cable-2up-2down.txt"), 9000, "unlimited");
        assert_eq!(up, ["enp1s0f1np1", "enP2p1s0f1np1"]);
        let rep = run(&Root::new(dir.path()), &spec(&up, Policy::Auto));
        assert!(rep.ok(), "{:#?}", rep.checks);
        assert_eq!(rep.transport, Transport::Ib);
        let env = rep.env();
        assert_eq!(env["NCCL_IB_HCA"], "rocep1s0f1:1,roceP2p1s0f1:1");
        assert_eq!(env["NCCL_SOCKET_IFNAME"], "enp1s0f1np1,enP2p1s0f1np1");
        assert_eq!(env["VLLM_HOST_IP"], "192.168.101.10");
        assert!(status_of(&rep, "rdma", "enp1s0f1np1").detail.contains("RoCE v2 GID 3"));
    }

    #[test]
    fn a_down_twin_fails_the_network_checks() {
        let (dir, _) = node_from_ibdev2netdev(&fixture("ibdev2netdev/dgx-spark-switch-port1-up.txt"), 9000, "unlimited");
        let rails = vec!["enp1s0f0np0".to_owned(), "enp1s0f1np1".to_owned()];
        let rep = run(&Root::new(dir.path()), &spec(&rails, Policy::Auto));
        assert!(!rep.ok());
        assert_eq!(status_of(&rep, "up", "enp1s0f0np0").status, Status::Fail);
        assert_eq!(status_of(&rep, "ipv4", "enp1s0f0np0").status, Status::Fail);
        assert_eq!(status_of(&rep, "up", "enp1s0f1np1").status, Status::Pass);
    }

    #[test]
    fn mtu_1500_is_a_failure_naming_9000() {
        let (dir, up) = node_from_ibdev2netdev(&fixture("ibdev2netdev/dgx-spark-all-4-up.txt"), 1500, "unlimited");
        assert_eq!(up.len(), 4, "all four links of the fixture are Up despite the annotations");
        let rep = run(&Root::new(dir.path()), &spec(&up[..2], Policy::Auto));
        let c = status_of(&rep, "mtu", "enp1s0f0np0");
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("1500 (expected 9000)"));
        assert_eq!(c.hint.as_deref(), Some("`ip link set dev enp1s0f0np0 mtu 9000`, and the same on the peer and the switch (below 4200 the RDMA active_mtu drops from 4096, at 1500 to 1024)"));
    }

    #[test]
    fn sysctl_fixes_write_dots_in_netdev_names_as_slashes() {
        let f = Fix::netdev_sysctl("ipv4", "eth0.100", "arp_ignore", "1");
        assert_eq!(f.command(), "sysctl -w net.ipv4.conf.eth0/100.arp_ignore=1");
        assert_eq!(f.path(), "/proc/sys/net/ipv4/conf/eth0.100/arp_ignore");
        assert_eq!(f.command_with("0"), "sysctl -w net.ipv4.conf.eth0/100.arp_ignore=0");
        assert_eq!(Fix::Mtu { netdev: "rail0".into(), mtu: 9000 }.path(), "/sys/class/net/rail0/mtu");
    }

    #[test]
    fn an_mtu_hint_towards_1500_does_not_warn_about_1500() {
        let hint = mtu_hint("rail0", 1500);
        assert_eq!(hint, "`ip link set dev rail0 mtu 1500`, and the same on the peer and the switch");
        assert_eq!((roce_active_mtu(9000), roce_active_mtu(1500), roce_active_mtu(4200), roce_active_mtu(4191)), (4096, 1024, 4096, 2048));
    }

    #[test]
    fn path_like_or_empty_rail_names_fail_without_reading_anything() {
        let (dir, _) = node_from_ibdev2netdev(&fixture("ibdev2netdev/dgx-spark-single-cable-2up-2down.txt"), 9000, "unlimited");
        // `../../../etc` would resolve to `<root>/etc` if it were read as a netdev.
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        for bad in ["../../../etc", "", "..", "a/b"] {
            let rep = run(&Root::new(dir.path()), &spec(&[bad.to_owned()], Policy::Auto));
            let c = status_of(&rep, "exists", bad);
            assert_eq!(c.status, Status::Fail, "{bad:?}: {c:?}");
            assert!(c.detail.contains("netdev name"), "{}", c.detail);
            assert!(!rep.checks.iter().any(|c| c.name == "up"), "{bad:?} was read: {:#?}", rep.checks);
        }
    }

    #[test]
    fn transport_ib_with_failed_rdma_says_the_entrypoint_refuses_not_socket() {
        let (dir, up) = node_from_ibdev2netdev(&fixture("ibdev2netdev/dgx-spark-single-cable-2up-2down.txt"), 9000, "8388608");
        let rep = run(&Root::new(dir.path()), &spec(&up, Policy::Ib));
        let c = status_of(&rep, "transport", "node");
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.starts_with("none:") && c.detail.contains("refuse to start"), "{}", c.detail);
        assert!(!c.detail.contains("Socket"), "{}", c.detail);
    }

    #[test]
    fn memlock_limit_means_socket_with_warning_or_refusal_when_ib_is_demanded() {
        let (dir, up) = node_from_ibdev2netdev(&fixture("ibdev2netdev/dgx-spark-single-cable-2up-2down.txt"), 9000, "8388608");
        let root = Root::new(dir.path());
        let auto = run(&root, &spec(&up, Policy::Auto));
        assert!(auto.ok());
        assert_eq!(auto.transport, Transport::Socket);
        assert_eq!(status_of(&auto, "transport", "node").status, Status::Warn);
        assert_eq!(status_of(&auto, "memlock", "node").status, Status::Warn);
        assert_eq!(auto.env()["NCCL_IB_DISABLE"], "1");
        let ib = run(&root, &spec(&up, Policy::Ib));
        assert!(!ib.ok());
        assert_eq!(status_of(&ib, "memlock", "node").status, Status::Fail);
    }

    #[test]
    fn missing_gid_missing_devnode_and_stray_nccl_conf() {
        let (dir, up) = node_from_ibdev2netdev(&fixture("ibdev2netdev/dgx-spark-single-cable-2up-2down.txt"), 9000, "unlimited");
        fs::remove_file(dir.path().join("sys/class/infiniband/roceP2p1s0f1/ports/1/gid_attrs/types/3")).unwrap();
        fs::remove_file(dir.path().join("dev/infiniband/uverbs0")).unwrap();
        write(dir.path(), "etc/nccl.conf", "NCCL_IB_HCA=mlx5\n");
        let rep = run(&Root::new(dir.path()), &spec(&up, Policy::Ib));
        let gid = status_of(&rep, "rdma", "enP2p1s0f1np1");
        assert_eq!(gid.status, Status::Fail);
        assert!(gid.detail.contains("no RoCE v2 GID for 192.168.103.10"), "{}", gid.detail);
        assert_eq!(status_of(&rep, "dev-infiniband", "node").status, Status::Fail);
        assert_eq!(status_of(&rep, "nccl-conf", "node").status, Status::Warn);
    }

    #[test]
    fn declared_addresses_and_devices_are_compared_with_the_node() {
        let (dir, up) = node_from_ibdev2netdev(&fixture("ibdev2netdev/dgx-spark-single-cable-2up-2down.txt"), 9000, "unlimited");
        let root = Root::new(dir.path());
        let mut rep = run(&root, &spec(&up, Policy::Auto));
        let declared = [
            DeclaredRail { netdev: up[0].clone(), rdma_device: Some("rocep1s0f1".into()), ipv4: [192, 168, 101, 10].into(), prefix: 24 },
            DeclaredRail { netdev: up[1].clone(), rdma_device: Some("mlx5_1".into()), ipv4: [192, 168, 103, 11].into(), prefix: 24 },
        ];
        check_declared(&root, &mut rep, &declared);
        assert_eq!(status_of(&rep, "declared-ip", "enp1s0f1np1").status, Status::Pass);
        assert_eq!(status_of(&rep, "declared-rdma", "enp1s0f1np1").status, Status::Pass);
        let ip = status_of(&rep, "declared-ip", "enP2p1s0f1np1");
        assert_eq!((ip.status, ip.detail.as_str()), (Status::Fail, "expected 192.168.103.11/24, found 192.168.103.10/24"));
        let dev = status_of(&rep, "declared-rdma", "enP2p1s0f1np1");
        assert_eq!((dev.status, dev.detail.as_str()), (Status::Fail, "expected `mlx5_1`, found roceP2p1s0f1"));
        assert!(!rep.ok());
    }

    #[test]
    fn unknown_rail_lists_the_present_interfaces() {
        let (dir, _) = node_from_ibdev2netdev(&fixture("ibdev2netdev/dgx-spark-single-cable-2up-2down.txt"), 9000, "unlimited");
        let rep = run(&Root::new(dir.path()), &spec(&["eth9".to_owned()], Policy::Auto));
        let c = status_of(&rep, "exists", "eth9");
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("enp1s0f1np1"));
    }

    /// Each rail's RDMA line speaks for that rail, also when an earlier rail does not exist.
    #[test]
    fn a_missing_rail_does_not_shift_the_rdma_lines_of_the_others() {
        let (dir, up) = node_from_ibdev2netdev(&fixture("ibdev2netdev/dgx-spark-single-cable-2up-2down.txt"), 9000, "unlimited");
        let rep = run(&Root::new(dir.path()), &spec(&["eth9".to_owned(), up[0].clone()], Policy::Auto));
        assert_eq!(status_of(&rep, "exists", "eth9").status, Status::Fail);
        let rdma = status_of(&rep, "rdma", &up[0]);
        assert_eq!((rdma.status, rdma.hint.as_deref()), (Status::Pass, None), "{rdma:?}");
        assert_eq!(rep.transport, Transport::Socket);
    }

    #[test]
    fn sysfs_rate_and_state_values_of_the_spark_paste_parse() {
        // `paste -d' ' rate state` lines from a real GB10: the state is the last two fields.
        let text = fixture("sysfs_infiniband/dgx-spark-ports-1-rate-state-paste.txt");
        let states: Vec<(String, String)> = text
            .lines()
            .filter(|l| l.starts_with("roce"))
            .map(|l| {
                let dev = l.split_whitespace().next().unwrap();
                let state = l.rsplit_once(") ").unwrap().1;
                (dev.to_owned(), sysfs::parse_port_state(state).to_owned())
            })
            .collect();
        assert_eq!(states.len(), 4);
        assert_eq!(states[1], ("rocep1s0f1".to_owned(), "ACTIVE".to_owned()));
        assert_eq!(states[0].1, "DOWN");
    }
}
