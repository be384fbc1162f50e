//! Facts about a node read from files under a root prefix (ARCHITECTURE.md invariant 6): netdevs and RDMA
//! devices from `/sys`, addresses and limits from `/proc`. Every parser takes `&str`, so real
//! outputs are the test input (the parsers of command outputs live in [`crate::tools`]).
//!
//! IPv4 addresses come from `/proc/net/fib_trie` (local `/32 host LOCAL` entries) joined with
//! `/proc/net/route` (which interface holds the subnet): both are per network namespace and need
//! no netlink socket, so the same code runs in a container, a test namespace and `sparkctl doctor`.
//! When two netdevs route one subnet, the route cannot say which holds an address; the RoCE GID
//! table (`gid_attrs/ndevs`) can, and without it the address is given to neither (never guessed).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// A root prefix: `/` on a live node, a temporary tree in tests, a mounted image for `doctor`.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    /// A root prefix at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Root(path.into())
    }

    /// `abs` (an absolute path like `/sys/class/net`) under this root.
    pub fn join(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }

    /// The trimmed content of `abs`, or `None` when it cannot be read.
    pub(crate) fn read(&self, abs: &str) -> Option<String> {
        std::fs::read_to_string(self.join(abs)).ok().map(|s| s.trim().to_owned())
    }

    /// Names of the entries of directory `abs`, sorted; empty when it does not exist.
    pub(crate) fn list(&self, abs: &str) -> Vec<String> {
        list_dir(&self.join(abs))
    }
}

fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    names.sort();
    names
}

/// What `/sys/class/net/<if>` and `/proc/sys/net/ipv6/conf/<if>` say about one netdev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Netdev {
    pub(crate) name: String,
    /// `operstate`: `up`, `down`, `lowerlayerdown`, `unknown`…
    pub(crate) operstate: String,
    pub(crate) mtu: Option<u32>,
    /// `Some(true)` when `disable_ipv6` is 1; `None` when the kernel has no IPv6 at all.
    pub(crate) ipv6_disabled: Option<bool>,
    /// RDMA devices behind the netdev (`device/infiniband/`), e.g. `rocep1s0f1`.
    pub(crate) rdma_devices: Vec<String>,
}

/// Reads netdev `name`; `None` when the interface does not exist.
pub(crate) fn read_netdev(root: &Root, name: &str) -> Option<Netdev> {
    let base = format!("/sys/class/net/{name}");
    if !root.join(&base).exists() {
        return None;
    }
    let operstate = root.read(&format!("{base}/operstate")).unwrap_or_else(|| "unknown".to_owned());
    let mtu = root.read(&format!("{base}/mtu")).and_then(|s| s.parse().ok());
    let ipv6_disabled = root.read(&format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6")).map(|s| s == "1");
    let rdma_devices = root.list(&format!("{base}/device/infiniband"));
    Some(Netdev { name: name.to_owned(), operstate, mtu, ipv6_disabled, rdma_devices })
}

/// One port of an RDMA device, from `/sys/class/infiniband/<dev>/ports/<port>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RdmaPort {
    pub(crate) device: String,
    pub(crate) port: u8,
    /// `state` without its number: `ACTIVE`, `DOWN`, `INIT`…
    pub(crate) state: String,
    /// `link_layer`: `Ethernet` for RoCE, `InfiniBand` otherwise.
    pub(crate) link_layer: String,
    /// `rate`, e.g. `200 Gb/sec (4X HDR)`.
    pub(crate) rate: String,
    /// RoCE v2 GIDs that carry an IPv4 address: (index, address, owning netdev).
    pub(crate) roce_v2_ipv4: Vec<(u32, Ipv4Addr, Option<String>)>,
}

/// Reads every port of RDMA device `dev`, in port order.
pub(crate) fn read_rdma_ports(root: &Root, dev: &str) -> Vec<RdmaPort> {
    let base = format!("/sys/class/infiniband/{dev}/ports");
    let mut ports: Vec<u8> = root.list(&base).iter().filter_map(|p| p.parse().ok()).collect();
    ports.sort_unstable();
    ports
        .into_iter()
        .map(|port| {
            let p = format!("{base}/{port}");
            let state = root.read(&format!("{p}/state")).map(|s| parse_port_state(&s).to_owned()).unwrap_or_default();
            let link_layer = root.read(&format!("{p}/link_layer")).unwrap_or_default();
            let rate = root.read(&format!("{p}/rate")).unwrap_or_default();
            let mut roce_v2_ipv4 = Vec::new();
            for idx in root.list(&format!("{p}/gids")) {
                let Ok(i) = idx.parse::<u32>() else { continue };
                let Some(ip) = root.read(&format!("{p}/gids/{idx}")).and_then(|g| parse_gid_ipv4(&g)) else { continue };
                // Both "RoCE v2" and "IB/RoCE v1" contain "RoCE": compare exactly.
                let v2 = root.read(&format!("{p}/gid_attrs/types/{idx}")).is_some_and(|t| t == "RoCE v2");
                if v2 {
                    let ndev = root.read(&format!("{p}/gid_attrs/ndevs/{idx}")).filter(|s| !s.is_empty());
                    roce_v2_ipv4.push((i, ip, ndev));
                }
            }
            roce_v2_ipv4.sort();
            RdmaPort { device: dev.to_owned(), port, state, link_layer, rate, roce_v2_ipv4 }
        })
        .collect()
}

/// `4: ACTIVE` → `ACTIVE`.
pub fn parse_port_state(s: &str) -> &str {
    s.split_once(':').map_or(s, |(_, name)| name).trim()
}

/// The IPv4 address of an IPv4-mapped GID (`0000:…:ffff:c0a8:0684` or `::ffff:192.168.6.132`);
/// `None` for MAC-derived or all-zero GIDs.
pub fn parse_gid_ipv4(gid: &str) -> Option<Ipv4Addr> {
    let v6: std::net::Ipv6Addr = gid.trim().parse().ok()?;
    let o = v6.octets();
    (o[..10].iter().all(|b| *b == 0) && o[10] == 0xff && o[11] == 0xff).then(|| Ipv4Addr::new(o[12], o[13], o[14], o[15]))
}

/// Local IPv4 addresses from `/proc/net/fib_trie` (entries followed by `/32 host LOCAL`).
pub fn parse_fib_trie_local(text: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(addr) = t.strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
        } else if t.starts_with("/32 host LOCAL") {
            if let Some(a) = last.take() {
                if !a.is_loopback() && !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// A directly connected route of `/proc/net/route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub(crate) iface: String,
    pub(crate) destination: Ipv4Addr,
    pub(crate) mask: Ipv4Addr,
}

/// Parses `/proc/net/route` (addresses are little-endian hex), keeping routes without gateway.
pub fn parse_route(text: &str) -> Vec<Route> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(|v| Ipv4Addr::from(v.swap_bytes()));
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 || hex(f[2])? != Ipv4Addr::UNSPECIFIED {
                return None;
            }
            Some(Route { iface: f[0].to_owned(), destination: hex(f[1])?, mask: hex(f[7])? })
        })
        .collect()
}

/// The IPv4 addresses (with prefix length) that `iface` holds: a local address belongs to the
/// interface whose connected route contains it (longest prefix). When several interfaces route
/// that subnet, `owners` (address → netdev, from the RoCE GID table) decides; without an owner
/// the address is given to none of them.
pub(crate) fn ipv4_addresses(iface: &str, local: &[Ipv4Addr], routes: &[Route], owners: &[(Ipv4Addr, String)]) -> Vec<(Ipv4Addr, u8)> {
    let mut out = Vec::new();
    for addr in local {
        let a = u32::from(*addr);
        let matching: Vec<&Route> = routes.iter().filter(|r| r.mask != Ipv4Addr::UNSPECIFIED && a & u32::from(r.mask) == u32::from(r.destination)).collect();
        let Some(longest) = matching.iter().map(|r| u32::from(r.mask).count_ones()).max() else { continue };
        let mut holders: Vec<&str> = matching.iter().filter(|r| u32::from(r.mask).count_ones() == longest).map(|r| r.iface.as_str()).collect();
        holders.dedup();
        let holder = match holders.as_slice() {
            [one] => Some(*one),
            _ => owners.iter().find(|(ip, nd)| ip == addr && holders.contains(&nd.as_str())).map(|(_, nd)| nd.as_str()),
        };
        if holder == Some(iface) {
            out.push((*addr, longest as u8));
        }
    }
    out
}

/// The other interfaces with a connected route to the same subnet as one of `iface`'s: twins on
/// one subnet (ARP flux, wrong source addresses, RoCE GIDs on the wrong port).
pub(crate) fn shared_subnet(iface: &str, routes: &[Route]) -> Vec<(String, Ipv4Addr, u8)> {
    let mut out = Vec::new();
    for mine in routes.iter().filter(|r| r.iface == iface) {
        for other in routes.iter().filter(|r| r.iface != iface && r.destination == mine.destination && r.mask == mine.mask) {
            let item = (other.iface.clone(), mine.destination, u32::from(mine.mask).count_ones() as u8);
            if !out.contains(&item) {
                out.push(item);
            }
        }
    }
    out
}

/// Every IPv4 address the RoCE GID tables attribute to a netdev (`gids/N` + `gid_attrs/ndevs/N`).
pub(crate) fn read_gid_owners(root: &Root) -> Vec<(Ipv4Addr, String)> {
    let mut out = Vec::new();
    for dev in root.list("/sys/class/infiniband") {
        for port in read_rdma_ports(root, &dev) {
            for (_, ip, ndev) in port.roce_v2_ipv4 {
                if let Some(nd) = ndev {
                    if !out.iter().any(|(a, n)| *a == ip && *n == nd) {
                        out.push((ip, nd));
                    }
                }
            }
        }
    }
    out
}

/// Reads the IPv4 addresses of `iface` through the root prefix.
pub(crate) fn read_ipv4(root: &Root, iface: &str) -> Vec<(Ipv4Addr, u8)> {
    let local = root.read("/proc/net/fib_trie").map(|t| parse_fib_trie_local(&t)).unwrap_or_default();
    let routes = read_routes(root);
    ipv4_addresses(iface, &local, &routes, &read_gid_owners(root))
}

/// `/proc/net/route` through the root prefix.
pub(crate) fn read_routes(root: &Root) -> Vec<Route> {
    root.read("/proc/net/route").map(|t| parse_route(&t)).unwrap_or_default()
}

/// Why `name` cannot be a Linux netdev name, by the kernel's own rule (`dev_valid_name`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadNetdevName {
    #[error("a netdev name cannot be empty")]
    /// The name is empty.
    Empty,
    #[error("`{name}` is {len} bytes; a netdev name has 1 to 15")]
    /// The name is longer than 15 bytes.
    TooLong {
        /// The name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    #[error("`{name}` is not a netdev name (`.` and `..` are directories)")]
    /// The name is `.` or `..`.
    Dots {
        /// The name.
        name: String,
    },
    #[error("`{name}` is not a netdev name: it contains {what}")]
    /// The name has a character netdev names cannot have.
    BadChar {
        /// The name.
        name: String,
        /// Which character.
        what: &'static str,
    },
}

/// Checks `name` by the kernel's rule: 1 to 15 bytes, not `.` or `..`, no `/`, `:` or blank.
/// Every netdev name that reaches a path under `/sys` or `/proc` passes here first.
pub fn validate_netdev_name(name: &str) -> Result<(), BadNetdevName> {
    if name.is_empty() {
        return Err(BadNetdevName::Empty);
    }
    if name.len() > 15 {
        return Err(BadNetdevName::TooLong { name: name.to_owned(), len: name.len() });
    }
    if name == "." || name == ".." {
        return Err(BadNetdevName::Dots { name: name.to_owned() });
    }
    let what = if name.contains('/') {
        "a `/`"
    } else if name.contains(':') {
        "a `:`"
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "a blank or control character"
    } else {
        return Ok(());
    };
    Err(BadNetdevName::BadChar { name: name.to_owned(), what })
}

/// A resource limit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit.
    Unlimited,
    /// A limit in bytes.
    Bytes(u64),
}

/// The soft `Max locked memory` limit from a `/proc/<pid>/limits` text.
pub fn parse_memlock(limits: &str) -> Option<Limit> {
    let line = limits.lines().find(|l| l.starts_with("Max locked memory"))?;
    let soft = line["Max locked memory".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        Some(Limit::Unlimited)
    } else {
        soft.parse().ok().map(Limit::Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB_TRIE: &str = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 127.0.0.0/8 2 0 2\n           |-- 127.0.0.1\n              /32 host LOCAL\n     +-- 192.168.100.0/24 2 0 2\n           |-- 192.168.100.0\n              /24 link UNICAST\n           |-- 192.168.100.10\n              /32 host LOCAL\n        |-- 192.168.100.255\n           /32 link BROADCAST\n     +-- 192.168.101.0/24 2 0 2\n           |-- 192.168.101.10\n              /32 host LOCAL\nLocal:\n           |-- 192.168.100.10\n              /32 host LOCAL\n";
    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\nrail0\t0064A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\nrail1\t0065A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

    #[test]
    fn addresses_are_attributed_to_the_interface_holding_their_subnet() {
        let local = parse_fib_trie_local(FIB_TRIE);
        assert_eq!(local, vec![Ipv4Addr::new(192, 168, 100, 10), Ipv4Addr::new(192, 168, 101, 10)]);
        let routes = parse_route(ROUTE);
        assert_eq!(routes.len(), 2, "the default route has a gateway and is not a connected route");
        assert_eq!(ipv4_addresses("rail1", &local, &routes, &[]), vec![(Ipv4Addr::new(192, 168, 101, 10), 24)]);
        assert!(ipv4_addresses("eth0", &local, &routes, &[]).is_empty());
    }

    #[test]
    fn two_netdevs_on_one_subnet_never_get_each_others_address() {
        // rail0 holds .10 and rail1 holds .11, both on 192.168.100.0/24: two connected routes.
        let local = vec![Ipv4Addr::new(192, 168, 100, 10), Ipv4Addr::new(192, 168, 100, 11)];
        let route = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
            rail0\t0064A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            rail1\t0064A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let routes = parse_route(route);
        // Without an owner the route cannot tell: neither interface is given an address.
        assert!(ipv4_addresses("rail0", &local, &routes, &[]).is_empty());
        assert!(ipv4_addresses("rail1", &local, &routes, &[]).is_empty());
        // The RoCE GID table says who holds what.
        let owners = vec![(local[0], "rail0".to_owned()), (local[1], "rail1".to_owned())];
        assert_eq!(ipv4_addresses("rail0", &local, &routes, &owners), vec![(local[0], 24)]);
        assert_eq!(ipv4_addresses("rail1", &local, &routes, &owners), vec![(local[1], 24)]);
        assert_eq!(shared_subnet("rail0", &routes), vec![("rail1".to_owned(), Ipv4Addr::new(192, 168, 100, 0), 24)]);
    }

    #[test]
    fn netdev_names_follow_the_kernel_rule() {
        for good in ["enp1s0f1np1", "enP2p1s0f1np1", "rail0", "a", "eth0.100", "veth-x_1@"] {
            assert_eq!(validate_netdev_name(good), Ok(()), "{good}");
        }
        assert_eq!(validate_netdev_name(""), Err(BadNetdevName::Empty));
        for bad in [".", "..", "../../../etc", "a/b", "/", "eth0:1", "en p1", "tab\t", "sixteen-chars-xx"] {
            assert!(validate_netdev_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(validate_netdev_name("fifteen-chars-x"), Ok(()));
        assert_eq!(validate_netdev_name("../../../etc").unwrap_err().to_string(), "`../../../etc` is not a netdev name: it contains a `/`");
    }

    #[test]
    fn memlock_soft_limit() {
        let unl = "Limit                     Soft Limit           Hard Limit           Units     \nMax locked memory         unlimited            unlimited            bytes     \n";
        assert_eq!(parse_memlock(unl), Some(Limit::Unlimited));
        let small = "Max locked memory         8388608              8388608              bytes     \n";
        assert_eq!(parse_memlock(small), Some(Limit::Bytes(8_388_608)));
    }

    #[test]
    fn ipv4_mapped_gids_in_both_spellings() {
        assert_eq!(parse_gid_ipv4("0000:0000:0000:0000:0000:ffff:c0a8:0684"), Some(Ipv4Addr::new(192, 168, 6, 132)));
        assert_eq!(parse_gid_ipv4("::ffff:10.100.216.2"), Some(Ipv4Addr::new(10, 100, 216, 2)));
        assert_eq!(parse_gid_ipv4("fe80:0000:0000:0000:9640:c9ff:fe8c:a09c"), None);
        assert_eq!(parse_gid_ipv4("0000:0000:0000:0000:0000:0000:0000:0000"), None);
    }

    #[test]
    fn port_state_drops_its_number() {
        assert_eq!(parse_port_state("4: ACTIVE"), "ACTIVE");
        assert_eq!(parse_port_state("1: DOWN"), "DOWN");
    }
}
