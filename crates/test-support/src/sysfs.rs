//! A root prefix whose `/sys`, `/proc` and `/dev` show healthy RoCE rails, for the checks that
//! read through a root prefix (doctor, the entrypoint's preflight): per rail a netdev that is up
//! with IPv6 off, its RDMA device with port 1 ACTIVE at 200 Gb/s over Ethernet and a RoCE v2
//! GID at index 3 for the rail's address, the address in `fib_trie` and its /24 in `route`;
//! memlock unlimited and `/dev/infiniband/uverbs0`. A test breaks what it checks afterwards.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Writes `content` at `rel` under `root`, making the folders.
pub fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// A root prefix being filled: add rails, then [`RoceRoot::finish`].
pub struct RoceRoot {
    root: PathBuf,
    fib: String,
    route: String,
}

impl RoceRoot {
    pub fn new(root: &Path) -> RoceRoot {
        let route = String::from("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n");
        RoceRoot { root: root.to_owned(), fib: String::from("Main:\n"), route }
    }

    /// A healthy rail: `netdev` up at `mtu`, RDMA device `dev`, address `ip` on its /24.
    pub fn rail(&mut self, netdev: &str, dev: &str, mtu: u32, ip: Ipv4Addr) -> &mut RoceRoot {
        let r = &self.root;
        write(r, &format!("sys/class/net/{netdev}/operstate"), "up\n");
        write(r, &format!("sys/class/net/{netdev}/mtu"), &format!("{mtu}\n"));
        fs::create_dir_all(r.join(format!("sys/class/net/{netdev}/device/infiniband/{dev}"))).unwrap();
        write(r, &format!("proc/sys/net/ipv6/conf/{netdev}/disable_ipv6"), "1\n");
        let port = format!("sys/class/infiniband/{dev}/ports/1");
        write(r, &format!("{port}/state"), "4: ACTIVE\n");
        write(r, &format!("{port}/rate"), "200 Gb/sec (4X HDR)\n");
        write(r, &format!("{port}/link_layer"), "Ethernet\n");
        let [a, b, c, d] = ip.octets();
        write(r, &format!("{port}/gids/3"), &format!("0000:0000:0000:0000:0000:ffff:{a:02x}{b:02x}:{c:02x}{d:02x}\n"));
        write(r, &format!("{port}/gid_attrs/types/3"), "RoCE v2\n");
        self.fib.push_str(&format!("     |-- {ip}\n        /32 host LOCAL\n"));
        let dest = u32::from(Ipv4Addr::new(a, b, c, 0)).swap_bytes();
        self.route.push_str(&format!("{netdev}\t{dest:08X}\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"));
        self
    }

    /// Writes the routing tables, memlock unlimited and the uverbs device; returns the root.
    pub fn finish(&self) -> PathBuf {
        let r = &self.root;
        write(r, "proc/net/fib_trie", &self.fib);
        write(r, "proc/net/route", &self.route);
        write(r, "proc/self/limits", "Max locked memory         unlimited            unlimited            bytes\n");
        write(r, "dev/infiniband/uverbs0", "");
        r.clone()
    }
}
