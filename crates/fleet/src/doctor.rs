//! `doctor --peers`: the part of the node checks that reaches other nodes: jumbo pings with
//! don't-fragment to each peer on each rail, from here and (over ssh) back, as checks beside
//! `cluster::doctor`'s local ones.

use crate::Ssh;
use cluster::doctor;
use cluster::preflight::{Check, Status};
use cluster::Cluster;
use std::time::Duration;

/// Jumbo pings with don't-fragment to each peer on each rail, from here and (over ssh) back.
/// Nothing when `me` is not a node of `cluster`.
pub fn peer_checks(cluster: &Cluster, me: &str, ssh: &Ssh) -> Vec<Check> {
    let mut checks = Vec::new();
    let Ok(node) = cluster.node(me) else { return checks };
    let mtu = u32::from(cluster.mtu);
    for peer in cluster.nodes.iter().filter(|n| n.name != node.name) {
        for (mine, theirs) in node.rails.iter().zip(&peer.rails) {
            let argv = doctor::ping_command(&mine.interface, theirs.address.addr, mtu);
            let subject = format!("{} -> {}", mine.interface, peer.name);
            let local = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .ok()
                .and_then(|c| crate::remote::wait_output(c, Duration::from_secs(15)));
            let check = match local {
                Some(o) => ping_check(subject, &format!("{}{}", o.stdout, o.stderr), &argv, mtu),
                None => fail("ping", subject, "`ping` could not run", &argv.join(" "), "install iputils-ping"),
            };
            checks.push(check);
            let back = doctor::ping_command(&theirs.interface, mine.address.addr, mtu);
            let subject = format!("{} <- {}", mine.interface, peer.name);
            let shown = ssh.display(&peer.name, &back);
            let check = match ssh.run(&peer.name, &back, Duration::from_secs(30)) {
                Ok(o) => ping_check(subject, &format!("{}{}", o.stdout, o.stderr), &back, mtu),
                Err(e) => fail(
                    "ping",
                    subject,
                    &format!("not run: {e}"),
                    &shown,
                    "make `ssh PEER true` work (BatchMode), or run `sparkctl doctor --peers` on the peer",
                ),
            };
            checks.push(check);
        }
    }
    checks
}

fn ping_check(subject: String, text: &str, argv: &[String], mtu: u32) -> Check {
    let p = cluster::tools::ping::parse(text);
    let expected = format!("{mtu}-byte frames answered without fragmenting");
    if p.ok() {
        return Check {
            name: "ping",
            subject,
            status: Status::Pass,
            detail: format!("{}/{} answered", p.received.unwrap_or(0), p.transmitted.unwrap_or(0)),
            hint: None,
            expected: Some(expected),
            fix: None,
        };
    }
    let detail = match (p.local_mtu, p.transmitted, p.received) {
        (Some(m), _, _) => format!("this interface's MTU is {m}"),
        (_, Some(t), Some(r)) => format!("{r}/{t} answered: a hop drops {mtu}-byte frames or the peer is down"),
        _ => format!("no result (`{}`)", text.lines().last().unwrap_or("").trim()),
    };
    let hint = format!("set MTU {mtu} on both ends and on the switch; retry with `{}`", argv.join(" "));
    Check { name: "ping", subject, status: Status::Fail, detail, hint: Some(hint), expected: Some(expected), fix: None }
}

fn fail(name: &'static str, subject: String, detail: &str, command: &str, hint: &str) -> Check {
    Check { name, subject, status: Status::Fail, detail: detail.to_owned(), hint: Some(format!("{hint} (`{command}`)")), expected: None, fix: None }
}
