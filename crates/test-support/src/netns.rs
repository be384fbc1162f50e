//! Two "nodes" on one machine (root): network namespaces `<id>a` and `<id>b` joined by two veth
//! pairs, the rails `rail0` and `rail1` (each on its own /24, MTU 9000, IPv6 off), loopback up.
//! Names are unique per caller-chosen `id`, so tests run in parallel; [`remove`] kills what is
//! left in the namespaces and deletes them.

use std::process::{Command, Output};
use std::time::Duration;

/// Runs `args` (a command and its arguments), failing the test when it cannot start or fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("running `{}`: {e} (`cargo xtask deps` installs it)", args.join(" ")));
    assert!(out.status.success(), "`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

/// Makes the namespaces `<id>a` and `<id>b` with rail `i` on `subnets[i]` (three octets):
/// `.1` in the first, `.2` in the second. Returns their names.
pub fn make_pair(id: &str, subnets: [&str; 2]) -> (String, String) {
    let (a, b) = (format!("{id}a"), format!("{id}b"));
    sh(&["ip", "netns", "add", &a]);
    sh(&["ip", "netns", "add", &b]);
    for (i, subnet) in subnets.iter().enumerate() {
        let (va, vb) = (format!("{id}r{i}a"), format!("{id}r{i}b"));
        sh(&["ip", "link", "add", &va, "type", "veth", "peer", "name", &vb]);
        sh(&["ip", "link", "set", &va, "netns", &a]);
        sh(&["ip", "link", "set", &vb, "netns", &b]);
        for (ns, v, host) in [(&a, &va, 1), (&b, &vb, 2)] {
            let rail = format!("rail{i}");
            sh(&["ip", "-n", ns, "link", "set", v, "name", &rail]);
            sh(&["ip", "netns", "exec", ns, "sh", "-c", &format!("echo 1 > /proc/sys/net/ipv6/conf/{rail}/disable_ipv6")]);
            sh(&["ip", "-n", ns, "link", "set", &rail, "mtu", "9000", "up"]);
            sh(&["ip", "-n", ns, "addr", "add", &format!("{subnet}.{host}/24"), "dev", &rail]);
        }
    }
    for ns in [&a, &b] {
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    (a, b)
}

/// Every pid in namespace `ns`.
pub fn pids(ns: &str) -> Vec<u32> {
    let out = Command::new("ip").args(["netns", "pids", ns]).output().expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|s| s.parse().ok()).collect()
}

/// Kills (SIGKILL) whatever runs in `namespaces`, then deletes them (the veth pairs go with them).
pub fn remove(namespaces: &[&str]) {
    for ns in namespaces {
        let pids: Vec<String> = pids(ns).iter().map(u32::to_string).collect();
        if !pids.is_empty() {
            let _ = Command::new("kill").arg("-9").args(&pids).status();
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    for ns in namespaces {
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    }
}
