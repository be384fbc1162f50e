//! `sparkctl doctor`'s checks: the entrypoint's preflight ([`crate::preflight`]) plus what a
//! person validating a Spark pair checks by hand — carrier, negotiated speed, subnets, ARP
//! sysctls, the RDMA port one fact per line (device, state, link layer, active MTU, RoCE v2 GID
//! index), the cabled port's twins, PCIe width and speed, firmware, `~/.nccl.conf`, the GPU
//! driver branch, logind's `RemoveIPC`, MemAvailable. Everything is read through a root prefix;
//! running `ping` or `ssh` is the CLI's part ([`ping_command`] and [`crate::tools`] say what to
//! run and how to read it).

use crate::model::Transport as Policy;
use crate::preflight::{self, Check, DeclaredRail, Fix, Report, Status, Table};
use crate::sysfs::{self, Root};
use std::net::Ipv4Addr;

/// What the node should be.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The entrypoint's preflight checks for this node.
    pub preflight: preflight::Spec,
    /// From `cluster.toml`, when a node was named.
    pub declared: Vec<DeclaredRail>,
    /// Home directories (absolute on the node) whose `.nccl.conf` NCCL would read.
    pub homes: Vec<String>,
}

/// Link speed of a healthy CX-7 port on a Spark (`ethtool`'s `Speed: 200000Mb/s`).
pub(crate) const EXPECTED_SPEED_MBPS: u64 = 200_000;

/// Runs every check on the node under `root`.
pub fn run(root: &Root, spec: &Spec) -> Report {
    let mut report = preflight::run(root, &spec.preflight);
    preflight::check_declared(root, &mut report, &spec.declared);
    // The preflight's one-line RDMA summary is replaced by one line per fact below.
    let mut t = Table(report.checks.drain(..).filter(|c| c.name != "rdma").collect());
    let policy = spec.preflight.transport;
    // RDMA facts decide NET/IB: failures when IB is demanded, warnings when optional.
    let miss = if policy == Policy::Ib { Status::Fail } else { Status::Warn };
    let routes = sysfs::read_routes(root);
    let mut firmware: Vec<(String, String)> = Vec::new();
    for name in &spec.preflight.rails {
        if sysfs::validate_netdev_name(name).is_err() || sysfs::read_netdev(root, name).is_none() {
            continue;
        }
        link_checks(root, &mut t, name, &routes);
        if policy != Policy::Socket {
            rdma_checks(root, &mut t, name, miss, spec, &mut firmware);
        }
    }
    // The CX-7 functions that carry no rail: their PCIe link too (a warning: no rail uses them).
    for other in root.list("/sys/class/net").into_iter().filter(|n| !spec.preflight.rails.contains(n)) {
        if sysfs::read_netdev(root, &other).is_some_and(|n| !n.rdma_devices.is_empty()) {
            pcie_check(root, &mut t, &other);
            if let Some(c) = t.0.last_mut().filter(|c| c.status == Status::Fail) {
                c.status = Status::Warn;
            }
        }
    }
    node_checks(root, &mut t, spec);
    // Read per rail, then the node, the transport verdict last (a stable sort keeps each
    // group's order: the preflight's lines first, then the fabric's).
    let rails = &spec.preflight.rails;
    t.0.sort_by_key(|c| match rails.iter().position(|r| *r == c.subject) {
        Some(i) => i,
        None if c.name == "transport" => rails.len() + 1,
        None => rails.len(),
    });
    report.checks = t.0;
    report
}

fn link_checks(root: &Root, t: &mut Table, name: &str, routes: &[sysfs::Route]) {
    let base = format!("/sys/class/net/{name}");
    match root.read(&format!("{base}/carrier")).as_deref() {
        Some("1") => t.add("carrier", name, Status::Pass, "1", None),
        Some(v) => t.add("carrier", name, Status::Fail, format!("{v} (no link)"), Some("check the cable and the peer's port; `ip link set dev IF up`")),
        None => t.add("carrier", name, Status::Fail, "unreadable (interface administratively down?)", Some("`ip link set dev IF up`, then check the cable")),
    }
    t.with("1", None);
    let speed = root.read(&format!("{base}/speed")).and_then(|s| s.parse::<i64>().ok());
    match speed {
        Some(s) if s == EXPECTED_SPEED_MBPS as i64 => t.add("speed", name, Status::Pass, format!("{s}Mb/s"), None),
        Some(100_000) => t.add(
            "speed",
            name,
            Status::Fail,
            "100000Mb/s: the degraded negotiation, half the port",
            Some("force 200G on the switch port (or reseat the direct cable); `ethtool IF` must say 200000Mb/s"),
        ),
        Some(s) if s > 0 => {
            t.add("speed", name, Status::Fail, format!("{s}Mb/s"), Some("a CX-7 rail links at 200000Mb/s: check the cable, the port and the switch"))
        }
        _ => t.add("speed", name, Status::Fail, "unknown (no link)", Some("bring the link up; `ethtool IF` must say 200000Mb/s")),
    }
    t.with(format!("{EXPECTED_SPEED_MBPS}Mb/s"), None);
    let shared = sysfs::shared_subnet(name, routes);
    if shared.is_empty() {
        t.add("own-subnet", name, Status::Pass, "no other interface on its subnet", None);
    } else {
        let others: Vec<String> = shared.iter().map(|(i, net, p)| format!("`{i}` ({net}/{p})")).collect();
        t.add(
            "own-subnet",
            name,
            Status::Fail,
            format!("shares its subnet with {}", others.join(", ")),
            Some("give each rail (each twin) its own subnet: `sparkctl render netplan` writes them"),
        );
    }
    for (sysctl, want, why) in [("arp_ignore", "1", "answer ARP only for the rail's own address"), ("arp_announce", "2", "announce the rail's own address")] {
        let v = root.read(&format!("/proc/sys/net/ipv4/conf/{name}/{sysctl}"));
        let status = if v.as_deref() == Some(want) { Status::Pass } else { Status::Warn };
        t.add(if sysctl == "arp_ignore" { "arp-ignore" } else { "arp-announce" }, name, status, v.unwrap_or_else(|| "unreadable".into()), Some(why));
        t.with(want, Some(Fix::netdev_sysctl("ipv4", name, sysctl, want)));
    }
}

fn rdma_checks(root: &Root, t: &mut Table, name: &str, miss: Status, spec: &Spec, firmware: &mut Vec<(String, String)>) {
    // Checked by the caller, but a netdev can vanish between two reads (hotplug).
    let Some(nd) = sysfs::read_netdev(root, name) else { return };
    let Some(dev) = nd.rdma_devices.first().cloned() else {
        t.add(
            "rdma-device",
            name,
            miss,
            "none behind the netdev",
            Some("load `mlx5_ib` (`modprobe mlx5_ib`) and check `ibdev2netdev`; a plain Ethernet NIC cannot do RoCE"),
        );
        return;
    };
    let ports = sysfs::read_rdma_ports(root, &dev);
    let Some(port) = ports.first() else {
        t.add("rdma-device", name, miss, format!("`{dev}` has no ports in sysfs"), Some("check the RDMA driver (`mlx5_ib`)"));
        return;
    };
    t.add("rdma-device", name, Status::Pass, format!("{name} ==> {dev} port {}", port.port), None);
    let active = port.state == "ACTIVE";
    t.add(
        "port-state",
        name,
        if active { Status::Pass } else { miss },
        format!("{} {}", port.state, port.rate),
        Some("check the cable and that the peer's twin is up"),
    );
    t.with("ACTIVE", None);
    let eth = port.link_layer == "Ethernet";
    t.add(
        "link-layer",
        name,
        if eth { Status::Pass } else { miss },
        port.link_layer.clone(),
        Some("set the CX-7 port to Ethernet (RoCE): `mlxconfig -d DEV set LINK_TYPE_P1=2`, then reboot"),
    );
    t.with("Ethernet", None);
    let active_mtu = preflight::roce_active_mtu(nd.mtu.unwrap_or(0));
    // The fix is the cluster's MTU, never another: below 4200 the cluster itself must change.
    let wanted = spec.preflight.mtu;
    let mtu_fix = (active_mtu != 4096 && preflight::roce_active_mtu(wanted) == 4096).then(|| Fix::Mtu { netdev: name.to_owned(), mtu: wanted });
    let hint = if preflight::roce_active_mtu(wanted) == 4096 {
        "RoCE's active MTU follows the netdev MTU: 9000 gives 4096".to_owned()
    } else {
        format!("the cluster's MTU {wanted} gives RoCE {}: set `mtu = 9000` in cluster.toml", preflight::roce_active_mtu(wanted))
    };
    t.add(
        "active-mtu",
        name,
        if active_mtu == 4096 { Status::Pass } else { miss },
        format!("{active_mtu} (netdev MTU {})", nd.mtu.map_or("unknown".into(), |m| m.to_string())),
        Some(&hint),
    );
    t.with("4096", mtu_fix);
    let ip = sysfs::read_ipv4(root, name).first().map(|(ip, _)| *ip);
    match (ip, port.roce_v2_ipv4.iter().find(|(_, a, _)| Some(*a) == ip)) {
        (None, _) => t.add(
            "roce-v2-gid",
            name,
            miss,
            "none: no IPv4 address, so no RoCE v2 IPv4 GID",
            Some("give the rail its IPv4 address (`sparkctl render netplan`)"),
        ),
        (Some(ip), Some((idx, _, _))) => t.add("roce-v2-gid", name, Status::Pass, format!("index {idx} for {ip}"), None),
        (Some(ip), None) => {
            t.add("roce-v2-gid", name, miss, format!("no RoCE v2 GID for {ip}"), Some("re-add the address or reload `mlx5_ib`; `show_gids` lists the table"))
        }
    }
    t.with("a RoCE v2 GID for the rail's IPv4", None);
    twin_checks(root, t, name, &dev, spec, miss);
    pcie_check(root, t, name);
    match root.read(&format!("/sys/class/infiniband/{dev}/fw_ver")) {
        Some(fw) => {
            let other = firmware.iter().find(|(_, f)| *f != fw).cloned();
            match other {
                Some((o, ofw)) => t.add(
                    "firmware",
                    name,
                    Status::Warn,
                    format!("{fw} on `{dev}`, {ofw} on `{o}`"),
                    Some("update both functions of the CX-7 to one firmware (`mlxfwmanager`)"),
                ),
                None => t.add("firmware", name, Status::Pass, format!("{fw} on `{dev}`"), None),
            }
            firmware.push((dev, fw));
        }
        None => t.add("firmware", name, Status::Warn, format!("`{dev}` reports no fw_ver"), Some("check the RDMA driver (`mlx5_ib`)")),
    }
}

/// A Spark's QSFP port is two PCIe functions in two PCI domains (`0000:01:00.1` and
/// `0002:01:00.1`): both must carry a rail, each on its own subnet, or NCCL gets half the port.
fn twin_checks(root: &Root, t: &mut Table, name: &str, dev: &str, spec: &Spec, miss: Status) {
    let Some(pci) = pci_slot(root, name) else {
        t.add("twin", name, Status::Warn, "no PCI address (`device/uevent`)", Some("not a CX-7 function: twins cannot be checked"));
        return;
    };
    let guid = root.read(&format!("/sys/class/infiniband/{dev}/sys_image_guid"));
    let suffix = pci.split_once(':').map(|(_, s)| s.to_owned()).unwrap_or_default();
    let twins: Vec<String> = root
        .list("/sys/class/net")
        .into_iter()
        .filter(|other| other != name)
        .filter(|other| pci_slot(root, other).is_some_and(|p| p != pci && p.split_once(':').is_some_and(|(_, s)| s == suffix)))
        .filter(|other| {
            // The same adapter: the RDMA devices share the system image GUID (when sysfs has it).
            let odev = sysfs::read_netdev(root, other).and_then(|n| n.rdma_devices.first().cloned());
            let oguid = odev.and_then(|d| root.read(&format!("/sys/class/infiniband/{d}/sys_image_guid")));
            guid.is_none() || oguid.is_none() || guid == oguid
        })
        .collect();
    let Some(twin) = twins.first() else {
        t.add("twin", name, Status::Warn, format!("no twin of `{pci}` found"), Some("on a DGX Spark both PCIe functions of the cabled port should show"));
        return;
    };
    if spec.preflight.rails.contains(twin) {
        t.add("twin", name, Status::Pass, format!("`{twin}` (the other function of the port) is a rail too"), None);
    } else {
        t.add(
            "twin",
            name,
            miss,
            format!("`{twin}` (the other function of the cabled port) carries no rail: NCCL gets half the port"),
            Some("add it as a rail of every node in cluster.toml, on its own subnet"),
        );
    }
}

/// `PCI_SLOT_NAME` of the netdev's device (`0000:01:00.1`).
fn pci_slot(root: &Root, netdev: &str) -> Option<String> {
    let uevent = root.read(&format!("/sys/class/net/{netdev}/device/uevent"))?;
    uevent.lines().find_map(|l| l.strip_prefix("PCI_SLOT_NAME=")).map(str::to_owned)
}

/// A BIOS older than 2026-04 wires the second CX-7 function at Gen5 x2 instead of x4.
fn pcie_check(root: &Root, t: &mut Table, name: &str) {
    let d = format!("/sys/class/net/{name}/device");
    let read = |f: &str| root.read(&format!("{d}/{f}"));
    let (Some(width), Some(max_width)) = (read("current_link_width"), read("max_link_width")) else {
        t.add("pcie", name, Status::Warn, "no PCIe link attributes", Some("not a PCIe function: check `lspci -vv` on a real node"));
        return;
    };
    let speed = read("current_link_speed").unwrap_or_else(|| "unknown".into());
    let max_speed = read("max_link_speed").unwrap_or_else(|| "unknown".into());
    let measured = format!("x{width} {speed}");
    let expected = format!("x{max_width} {max_speed}");
    let narrow = width.parse::<u32>().ok() < max_width.parse::<u32>().ok();
    if narrow {
        t.add(
            "pcie",
            name,
            Status::Fail,
            measured,
            Some("the function trained narrower than it can: update the BIOS (2026-04 or newer wires the second CX-7 function at x4)"),
        );
    } else if speed != max_speed {
        t.add("pcie", name, Status::Warn, measured, Some("the link trained below its maximum speed: reseat the card or check the BIOS PCIe settings"));
    } else {
        t.add("pcie", name, Status::Pass, measured, None);
    }
    t.with(expected, None);
}

fn node_checks(root: &Root, t: &mut Table, spec: &Spec) {
    for home in &spec.homes {
        let p = format!("{}/.nccl.conf", home.trim_end_matches('/'));
        if root.read(&p).is_some() {
            t.add("nccl-conf", "home", Status::Warn, format!("`{p}` exists and sets NCCL variables silently"), Some(&format!("`mv {p} {p}.disabled`")));
        } else {
            t.add("nccl-conf", "home", Status::Pass, format!("no `{p}`"), None);
        }
    }
    driver_check(root, t);
    remove_ipc_check(root, t);
    match root.read("/proc/meminfo").map(|m| parse_meminfo(&m)) {
        Some((Some(total), Some(avail))) => {
            let gib = |kib: u64| kib as f64 / 1024.0 / 1024.0;
            let measured = format!("{:.1} GiB of {:.1} GiB", gib(avail), gib(total));
            if avail.saturating_mul(2) < total {
                t.add(
                    "memavailable",
                    "node",
                    Status::Warn,
                    measured,
                    Some("something holds half the memory: stop leftover containers (`docker ps`); restart loops leak unified memory until a reboot"),
                );
            } else {
                t.add("memavailable", "node", Status::Pass, measured, None);
            }
            t.with("at least half of MemTotal", None);
        }
        _ => t.add("memavailable", "node", Status::Warn, "`/proc/meminfo` has no MemAvailable", None),
    }
}

/// (MemTotal, MemAvailable) in KiB.
pub(crate) fn parse_meminfo(text: &str) -> (Option<u64>, Option<u64>) {
    let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
    (get("MemTotal:"), get("MemAvailable:"))
}

/// The NVIDIA driver version from `/sys/module/nvidia/version` or `/proc/driver/nvidia/version`.
pub(crate) fn parse_driver_version(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() >= 2 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

fn driver_check(root: &Root, t: &mut Table) {
    let version = root.read("/sys/module/nvidia/version").or_else(|| root.read("/proc/driver/nvidia/version")).and_then(|v| parse_driver_version(&v));
    let Some(v) = version else {
        t.add("gpu-driver", "node", Status::Warn, "no NVIDIA driver loaded", Some("install the 580 branch (`apt install nvidia-driver-580-open`) on a Spark"));
        t.with("580.x", None);
        return;
    };
    match v.split('.').next() {
        Some("580") => t.add("gpu-driver", "node", Status::Pass, v, None),
        Some("590") => t.add(
            "gpu-driver",
            "node",
            Status::Fail,
            format!("{v}: 590.x deadlocks CUDA-graph capture on GB10"),
            Some("go back to the 580 branch (`apt install nvidia-driver-580-open`), then reboot"),
        ),
        _ => t.add("gpu-driver", "node", Status::Warn, format!("{v}: not a branch validated on GB10"), Some("the 580 branch is the validated one")),
    }
    t.with("580.x", None);
}

/// systemd-logind's `RemoveIPC` (default `yes`): the last setting of `logind.conf` and its
/// drop-ins wins.
pub(crate) fn remove_ipc(files: &[String]) -> bool {
    let mut value = true;
    for text in files {
        let mut in_login = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_login = line == "[Login]";
            } else if let Some(v) = line.strip_prefix("RemoveIPC=").filter(|_| in_login) {
                value = !matches!(v.trim(), "no" | "false" | "0" | "off");
            }
        }
    }
    value
}

fn remove_ipc_check(root: &Root, t: &mut Table) {
    let mut files: Vec<String> = root.read("/etc/systemd/logind.conf").into_iter().collect();
    // Drop-ins in name order across the directories (later directories override earlier ones).
    let mut dropins: Vec<(String, String)> = Vec::new();
    for dir in ["/usr/lib/systemd/logind.conf.d", "/run/systemd/logind.conf.d", "/etc/systemd/logind.conf.d"] {
        for f in root.list(dir).into_iter().filter(|f| f.ends_with(".conf")) {
            if let Some(text) = root.read(&format!("{dir}/{f}")) {
                dropins.retain(|(n, _)| *n != f);
                dropins.push((f, text));
            }
        }
    }
    dropins.sort_by(|a, b| a.0.cmp(&b.0));
    files.extend(dropins.into_iter().map(|(_, t)| t));
    if remove_ipc(&files) {
        t.add(
            "remove-ipc",
            "node",
            Status::Warn,
            "RemoveIPC=yes: logind deletes a logged-out user's POSIX semaphores (the worker's, and the head hangs)",
            Some("`mkdir -p /etc/systemd/logind.conf.d && printf '[Login]\\nRemoveIPC=no\\n' > /etc/systemd/logind.conf.d/60-sparkctl.conf && systemctl restart systemd-logind`"),
        );
    } else {
        t.add("remove-ipc", "node", Status::Pass, "RemoveIPC=no", None);
    }
    t.with("RemoveIPC=no", None);
}

/// The don't-fragment jumbo ping of `--peers`: payload = MTU − 28 (IPv4 + ICMP headers), so
/// only a path that carries the full MTU answers.
pub fn ping_command(netdev: &str, peer: Ipv4Addr, mtu: u32) -> Vec<String> {
    let payload = mtu.saturating_sub(28).to_string();
    ["ping", "-M", "do", "-s", &payload, "-c", "3", "-i", "0.2", "-W", "1", "-I", netdev, &peer.to_string()].map(String::from).to_vec()
}

/// The worst status of a report (PASS when empty).
pub fn worst(checks: &[Check]) -> Status {
    checks.iter().map(|c| c.status).max().unwrap_or(Status::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{fixture, write};
    use std::fs;

    /// What differs from a healthy Spark in a test tree.
    struct Knobs {
        mtu: u32,
        speed: u32,
        ipv6_on: bool,
        /// The second rail has no IPv4 address.
        no_ipv4_on_second: bool,
        /// PCIe width of the second domain's functions (a BIOS older than 2026-04: 2).
        second_width: u32,
        remove_ipc: Option<&'static str>,
        /// Both rails on one subnet.
        one_subnet: bool,
        arp: bool,
    }

    impl Default for Knobs {
        fn default() -> Self {
            Knobs { mtu: 9000, speed: 200_000, ipv6_on: false, no_ipv4_on_second: false, second_width: 4, remove_ipc: Some("no"), one_subnet: false, arp: true }
        }
    }

    /// A DGX Spark with one cable in port 1: the four CX-7 functions, their RDMA devices with
    /// the rate/state values of the real `sysfs_infiniband/dgx-spark-ports-1-rate-state-paste.txt`
    /// (f1 twins `200 Gb/sec (4X HDR)` ACTIVE, f0 twins `40 Gb/sec (4X QDR)` DOWN), firmware and
    /// system GUID of the real `ibv_devinfo` output, addresses on 192.168.100/101.0/24.
    fn spark(k: &Knobs) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let paste = fixture("sysfs_infiniband/dgx-spark-ports-1-rate-state-paste.txt");
        let mut fib = String::from("Main:\n");
        let mut route = String::from("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n");
        let functions = [
            ("enp1s0f0np0", "rocep1s0f0", "0000:01:00.0"),
            ("enp1s0f1np1", "rocep1s0f1", "0000:01:00.1"),
            ("enP2p1s0f0np0", "roceP2p1s0f0", "0002:01:00.0"),
            ("enP2p1s0f1np1", "roceP2p1s0f1", "0002:01:00.1"),
        ];
        for (i, (netdev, dev, pci)) in functions.iter().enumerate() {
            let line = paste.lines().find(|l| l.split_whitespace().next() == Some(*dev)).expect("device in the paste");
            let (rate, state) = line[dev.len()..]
                .trim()
                .rsplit_once(")  ")
                .map(|(a, b)| (format!("{a})"), b.to_owned()))
                .or_else(|| line[dev.len()..].trim().rsplit_once(") ").map(|(a, b)| (format!("{a})"), b.to_owned())))
                .unwrap();
            let up = state.contains("ACTIVE");
            let net = format!("sys/class/net/{netdev}");
            write(r, &format!("{net}/operstate"), if up { "up\n" } else { "down\n" });
            write(r, &format!("{net}/carrier"), if up { "1\n" } else { "0\n" });
            write(r, &format!("{net}/speed"), &format!("{}\n", if up { k.speed as i64 } else { -1 }));
            write(r, &format!("{net}/mtu"), &format!("{}\n", k.mtu));
            write(r, &format!("{net}/device/uevent"), &format!("DRIVER=mlx5_core\nPCI_SLOT_NAME={pci}\n"));
            let width = if pci.starts_with("0002") { k.second_width } else { 4 };
            write(r, &format!("{net}/device/current_link_width"), &format!("{width}\n"));
            write(r, &format!("{net}/device/max_link_width"), "4\n");
            write(r, &format!("{net}/device/current_link_speed"), "32.0 GT/s PCIe\n");
            write(r, &format!("{net}/device/max_link_speed"), "32.0 GT/s PCIe\n");
            fs::create_dir_all(r.join(format!("{net}/device/infiniband/{dev}"))).unwrap();
            write(r, &format!("proc/sys/net/ipv6/conf/{netdev}/disable_ipv6"), if k.ipv6_on { "0\n" } else { "1\n" });
            write(r, &format!("proc/sys/net/ipv4/conf/{netdev}/arp_ignore"), if k.arp { "1\n" } else { "0\n" });
            write(r, &format!("proc/sys/net/ipv4/conf/{netdev}/arp_announce"), if k.arp { "2\n" } else { "0\n" });
            let ib = format!("sys/class/infiniband/{dev}");
            write(r, &format!("{ib}/fw_ver"), "28.45.4028\n");
            write(r, &format!("{ib}/sys_image_guid"), "4821:0b03:0096:04cb\n");
            let port = format!("{ib}/ports/1");
            write(r, &format!("{port}/state"), &format!("{state}\n"));
            write(r, &format!("{port}/rate"), &format!("{rate}\n"));
            write(r, &format!("{port}/link_layer"), "Ethernet\n");
            write(r, &format!("{port}/gids/0"), "fe80:0000:0000:0000:4a21:0bff:fe96:04cb\n");
            write(r, &format!("{port}/gid_attrs/types/0"), "IB/RoCE v1\n");
            let second = i == 3;
            if up && !(second && k.no_ipv4_on_second) {
                let third: u8 = if second && !k.one_subnet { 101 } else { 100 };
                let host: u8 = 10 + i as u8;
                let ip = Ipv4Addr::new(192, 168, third, host);
                write(r, &format!("{port}/gids/3"), &format!("0000:0000:0000:0000:0000:ffff:c0a8:{third:02x}{host:02x}\n"));
                write(r, &format!("{port}/gid_attrs/types/3"), "RoCE v2\n");
                write(r, &format!("{port}/gid_attrs/ndevs/3"), &format!("{netdev}\n"));
                fib.push_str(&format!("     |-- {ip}\n        /32 host LOCAL\n"));
                let dest = u32::from(Ipv4Addr::new(192, 168, third, 0)).swap_bytes();
                route.push_str(&format!("{netdev}\t{dest:08X}\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"));
            }
        }
        write(r, "proc/net/fib_trie", &fib);
        write(r, "proc/net/route", &route);
        write(r, "proc/self/limits", "Max locked memory         unlimited            unlimited            bytes\n");
        write(r, "proc/meminfo", "MemTotal:       127543296 kB\nMemFree:        100000000 kB\nMemAvailable:   119000000 kB\n");
        write(r, "sys/module/nvidia/version", "580.95.05\n");
        if let Some(v) = k.remove_ipc {
            write(r, "etc/systemd/logind.conf.d/60-sparkctl.conf", &format!("[Login]\nRemoveIPC={v}\n"));
        }
        write(r, "dev/infiniband/uverbs0", "");
        dir
    }

    fn spec(rails: &[&str], transport: Policy) -> Spec {
        Spec {
            preflight: preflight::Spec { rails: rails.iter().map(|s| s.to_string()).collect(), mtu: 9000, transport },
            declared: Vec::new(),
            homes: vec!["/root".into()],
        }
    }

    const RAILS: [&str; 2] = ["enp1s0f1np1", "enP2p1s0f1np1"];

    fn check<'a>(rep: &'a Report, name: &str, subject: &str) -> &'a Check {
        rep.checks.iter().find(|c| c.name == name && c.subject == subject).unwrap_or_else(|| panic!("no check {name} on {subject}: {:#?}", rep.checks))
    }

    #[test]
    fn a_healthy_spark_passes_every_check_with_the_gid_index_and_pcie_reported() {
        let dir = spark(&Knobs::default());
        let rep = run(&Root::new(dir.path()), &spec(&RAILS, Policy::Ib));
        let bad: Vec<&Check> = rep.checks.iter().filter(|c| c.status != Status::Pass).collect();
        assert!(bad.is_empty(), "{bad:#?}");
        assert_eq!(check(&rep, "roce-v2-gid", "enp1s0f1np1").detail, "index 3 for 192.168.100.11");
        assert_eq!(check(&rep, "pcie", "enP2p1s0f1np1").detail, "x4 32.0 GT/s PCIe");
        assert_eq!(check(&rep, "port-state", "enp1s0f1np1").detail, "ACTIVE 200 Gb/sec (4X HDR)");
        assert_eq!(check(&rep, "active-mtu", "enp1s0f1np1").detail, "4096 (netdev MTU 9000)");
        assert_eq!(check(&rep, "firmware", "enP2p1s0f1np1").detail, "28.45.4028 on `roceP2p1s0f1`");
        assert_eq!(check(&rep, "gpu-driver", "node").detail, "580.95.05");
        assert!(check(&rep, "twin", "enp1s0f1np1").detail.contains("`enP2p1s0f1np1`"));
        assert_eq!(worst(&rep.checks), Status::Pass);
        assert!(!rep.checks.iter().any(|c| c.name == "rdma"), "the summary line is replaced by one line per fact");
    }

    #[test]
    fn one_twin_as_the_only_rail_fails_the_twin_check() {
        let dir = spark(&Knobs::default());
        let rep = run(&Root::new(dir.path()), &spec(&RAILS[..1], Policy::Ib));
        let c = check(&rep, "twin", "enp1s0f1np1");
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("`enP2p1s0f1np1`") && c.detail.contains("half the port"), "{}", c.detail);
    }

    #[test]
    fn the_down_twins_fail_carrier_speed_and_port_state() {
        let dir = spark(&Knobs::default());
        let rep = run(&Root::new(dir.path()), &spec(&["enp1s0f0np0"], Policy::Auto));
        assert_eq!(check(&rep, "carrier", "enp1s0f0np0").status, Status::Fail);
        assert_eq!(check(&rep, "speed", "enp1s0f0np0").detail, "unknown (no link)");
        let p = check(&rep, "port-state", "enp1s0f0np0");
        assert_eq!((p.status, p.detail.as_str()), (Status::Warn, "DOWN 40 Gb/sec (4X QDR)"));
        assert_eq!(worst(&rep.checks), Status::Fail);
    }

    #[test]
    fn a_100g_negotiation_is_named_degraded() {
        let dir = spark(&Knobs { speed: 100_000, ..Knobs::default() });
        let rep = run(&Root::new(dir.path()), &spec(&RAILS, Policy::Ib));
        let c = check(&rep, "speed", "enP2p1s0f1np1");
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("degraded"), "{}", c.detail);
        assert_eq!(c.expected.as_deref(), Some("200000Mb/s"));
    }

    #[test]
    fn ipv6_on_and_no_arp_sysctls_come_with_sysctl_fixes() {
        let dir = spark(&Knobs { ipv6_on: true, arp: false, ..Knobs::default() });
        let rep = run(&Root::new(dir.path()), &spec(&RAILS, Policy::Ib));
        let v6 = check(&rep, "ipv6-off", "enp1s0f1np1");
        assert_eq!(v6.status, Status::Fail);
        assert_eq!(v6.fix.as_ref().unwrap().command(), "sysctl -w net.ipv6.conf.enp1s0f1np1.disable_ipv6=1");
        let arp = check(&rep, "arp-ignore", "enP2p1s0f1np1");
        assert_eq!((arp.status, arp.fix.as_ref().unwrap().command()), (Status::Warn, "sysctl -w net.ipv4.conf.enP2p1s0f1np1.arp_ignore=1".to_owned()));
        assert_eq!(check(&rep, "arp-announce", "enP2p1s0f1np1").fix.as_ref().unwrap().path(), "/proc/sys/net/ipv4/conf/enP2p1s0f1np1/arp_announce");
    }

    #[test]
    fn no_ipv4_means_no_roce_v2_gid() {
        let dir = spark(&Knobs { no_ipv4_on_second: true, ..Knobs::default() });
        let rep = run(&Root::new(dir.path()), &spec(&RAILS, Policy::Ib));
        let c = check(&rep, "roce-v2-gid", "enP2p1s0f1np1");
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.detail, "none: no IPv4 address, so no RoCE v2 IPv4 GID");
        assert_eq!(check(&rep, "ipv4", "enP2p1s0f1np1").status, Status::Fail);
    }

    #[test]
    fn mtu_1500_fails_mtu_and_active_mtu_with_the_ip_link_fix() {
        let dir = spark(&Knobs { mtu: 1500, ..Knobs::default() });
        let rep = run(&Root::new(dir.path()), &spec(&RAILS, Policy::Ib));
        let mtu = check(&rep, "mtu", "enp1s0f1np1");
        assert_eq!(mtu.fix.as_ref().unwrap().command(), "ip link set dev enp1s0f1np1 mtu 9000");
        let a = check(&rep, "active-mtu", "enp1s0f1np1");
        assert_eq!((a.status, a.detail.as_str()), (Status::Fail, "1024 (netdev MTU 1500)"));
    }

    #[test]
    fn a_cluster_mtu_of_1500_is_not_fixed_against_itself() {
        let dir = spark(&Knobs { mtu: 1500, ..Knobs::default() });
        let mut s = spec(&RAILS, Policy::Ib);
        s.preflight.mtu = 1500;
        let rep = run(&Root::new(dir.path()), &s);
        assert_eq!(check(&rep, "mtu", "enp1s0f1np1").status, Status::Pass);
        let a = check(&rep, "active-mtu", "enp1s0f1np1");
        assert_eq!((a.status, a.fix.as_ref()), (Status::Fail, None), "no fix that the mtu check would then fail");
        assert!(a.hint.as_deref().unwrap().contains("set `mtu = 9000` in cluster.toml"), "{:?}", a.hint);
    }

    #[test]
    fn a_second_function_at_x2_fails_pcie_naming_the_bios() {
        let dir = spark(&Knobs { second_width: 2, ..Knobs::default() });
        let rep = run(&Root::new(dir.path()), &spec(&RAILS, Policy::Ib));
        let c = check(&rep, "pcie", "enP2p1s0f1np1");
        assert_eq!((c.status, c.detail.as_str(), c.expected.as_deref()), (Status::Fail, "x2 32.0 GT/s PCIe", Some("x4 32.0 GT/s PCIe")));
        assert!(c.hint.as_deref().unwrap().contains("BIOS"));
        assert_eq!(check(&rep, "pcie", "enp1s0f1np1").status, Status::Pass);
        // Every CX-7 function is looked at; one that carries no rail only warns.
        let unused = check(&rep, "pcie", "enP2p1s0f0np0");
        assert_eq!((unused.status, unused.detail.as_str()), (Status::Warn, "x2 32.0 GT/s PCIe"));
        assert_eq!(check(&rep, "pcie", "enp1s0f0np0").status, Status::Pass);
    }

    #[test]
    fn remove_ipc_default_yes_warns_and_no_passes() {
        for (knob, status) in [(None, Status::Warn), (Some("yes"), Status::Warn), (Some("no"), Status::Pass)] {
            let dir = spark(&Knobs { remove_ipc: knob, ..Knobs::default() });
            let rep = run(&Root::new(dir.path()), &spec(&RAILS, Policy::Ib));
            assert_eq!(check(&rep, "remove-ipc", "node").status, status, "{knob:?}");
        }
        assert!(!remove_ipc(&["[Login]\nRemoveIPC=yes\n".into(), "[Login]\nRemoveIPC=no\n".into()]), "the last drop-in wins");
        assert!(remove_ipc(&["[Other]\nRemoveIPC=no\n".into()]), "only the [Login] section counts");
    }

    #[test]
    fn twins_on_one_subnet_fail_own_subnet_and_keep_their_own_addresses() {
        let dir = spark(&Knobs { one_subnet: true, ..Knobs::default() });
        let rep = run(&Root::new(dir.path()), &spec(&RAILS, Policy::Ib));
        let c = check(&rep, "own-subnet", "enp1s0f1np1");
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("`enP2p1s0f1np1` (192.168.100.0/24)"), "{}", c.detail);
        // The GID table tells the two addresses apart: each rail keeps its own.
        assert_eq!(check(&rep, "ipv4", "enp1s0f1np1").detail, "192.168.100.11/24");
        assert_eq!(check(&rep, "ipv4", "enP2p1s0f1np1").detail, "192.168.100.13/24");
    }

    #[test]
    fn driver_590_fails_and_home_nccl_conf_warns() {
        let dir = spark(&Knobs::default());
        write(dir.path(), "sys/module/nvidia/version", "590.44.01\n");
        write(dir.path(), "root/.nccl.conf", "NCCL_IB_HCA=mlx5\n");
        let rep = run(&Root::new(dir.path()), &spec(&RAILS, Policy::Ib));
        assert_eq!(check(&rep, "gpu-driver", "node").status, Status::Fail);
        assert_eq!(check(&rep, "nccl-conf", "home").status, Status::Warn);
        assert_eq!(
            parse_driver_version("NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  580.95.05  Release Build  (dvs-builder@U16)"),
            Some("580.95.05".into())
        );
    }

    #[test]
    fn fixes_write_through_the_root_and_the_recheck_passes() {
        let dir = spark(&Knobs { mtu: 1500, ipv6_on: true, arp: false, ..Knobs::default() });
        let root = Root::new(dir.path());
        let rep = run(&root, &spec(&RAILS, Policy::Ib));
        let fixes: Vec<&Fix> = rep.checks.iter().filter_map(|c| c.fix.as_ref()).collect();
        // mtu + active-mtu + ipv6 + 2 arp, per rail.
        assert_eq!(fixes.len(), 10, "{fixes:#?}");
        for f in fixes {
            let prev = f.apply(&root).unwrap();
            assert!(!prev.is_empty());
        }
        let again = run(&root, &spec(&RAILS, Policy::Ib));
        assert_eq!(worst(&again.checks), Status::Pass, "{:#?}", again.checks.iter().filter(|c| c.status != Status::Pass).collect::<Vec<_>>());
    }
}
