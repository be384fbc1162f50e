//! `sparkctl doctor`: is this node what cluster.toml says? Runs the entrypoint's preflight
//! (`cluster::preflight`: rails up, IPv4, MTU, IPv6 off, RDMA behind each rail, `/dev/infiniband`,
//! memlock, no `/etc/nccl.conf`) over a root prefix, plus the declared addresses and RDMA devices
//! of the node, and prints a table. Exit 0 when no check fails, 1 when one does, 2 on bad input.
use anyhow::{bail, Context};
use cluster::preflight::{self, DeclaredRail, Report, Spec, Status, TransportPolicy};
use cluster::sysfs::Root;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// The node to check: a `[[node]]` name in cluster.toml (rails, addresses, MTU, transport)
    #[arg(long)]
    node: Option<String>,
    /// The cluster description
    #[arg(long, default_value = "cluster.toml")]
    cluster: PathBuf,
    /// Rail netdevs to check without a cluster description, comma-separated
    #[arg(long, value_delimiter = ',', conflicts_with = "node")]
    rails: Vec<String>,
    /// Expected rail MTU (with --rails)
    #[arg(long, default_value_t = 9000, requires = "rails")]
    mtu: u32,
    /// Transport policy (with --rails): auto, ib or socket
    #[arg(long, default_value = "auto", value_parser = ["auto", "ib", "socket"], requires = "rails")]
    transport: String,
    /// Root prefix under which /sys, /proc, /dev and /etc are read
    #[arg(long, default_value = "/")]
    root: PathBuf,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let root = Root::new(&args.root);
    if !args.root.join("sys").is_dir() {
        bail!("`{}` has no `sys` directory; give the root of a node with `--root` (default `/`)", args.root.display());
    }
    let report = if !args.rails.is_empty() {
        let transport = TransportPolicy::parse(&args.transport).expect("clap checked the value");
        preflight::run(&root, &Spec { rails: args.rails, mtu: args.mtu, transport })
    } else if let Some(name) = &args.node {
        let cluster = crate::render::load_cluster(&args.cluster)?;
        let node = cluster.node(name)?;
        let transport = TransportPolicy::parse(cluster.transport.as_str()).context("transport of cluster.toml")?;
        let spec = Spec { rails: node.rails.iter().map(|r| r.interface.clone()).collect(), mtu: u32::from(cluster.mtu), transport };
        let mut report = preflight::run(&root, &spec);
        let declared: Vec<DeclaredRail> = node
            .rails
            .iter()
            .map(|r| DeclaredRail { netdev: r.interface.clone(), rdma_device: r.rdma_device.clone(), ipv4: r.address.addr, prefix: r.address.prefix })
            .collect();
        preflight::check_declared(&root, &mut report, &declared);
        report
    } else {
        bail!("nothing to check: give `--node NAME` (rails from `--cluster`, default `cluster.toml`) or `--rails IF,IF`");
    };
    let mut out = std::io::stdout().lock();
    print_table(&mut out, &report).context("writing to stdout")?;
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The table: one line per check, hints under failing and warning lines, then the transport and
/// the environment the entrypoint would derive.
fn print_table(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    writeln!(out, "{:<6} {:<15} {:<16} DETAIL", "STATUS", "CHECK", "SUBJECT")?;
    for c in &report.checks {
        writeln!(out, "{:<6} {:<15} {:<16} {}", c.status.to_string(), c.name, c.subject, c.detail)?;
        if let Some(h) = &c.hint {
            writeln!(out, "{:<6} {:<15} {:<16} hint: {h}", "", "", "")?;
        }
    }
    let fails = report.checks.iter().filter(|c| c.status == Status::Fail).count();
    let warns = report.checks.iter().filter(|c| c.status == Status::Warn).count();
    writeln!(out)?;
    writeln!(out, "transport: {}; {fails} failed, {warns} warning(s)", report.transport)?;
    if report.ok() {
        let env: Vec<String> = report.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(out, "node env (as spark-entrypoint derives it): {}", env.join(" "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    /// spark-2 of examples/cluster.toml: both twins up at MTU `mtu`, addresses, RDMA, GIDs.
    fn spark2(mtu: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let mut fib = String::from("Main:\n");
        let mut route = String::from("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n");
        for (netdev, dev, third) in [("enp1s0f1np1", "rocep1s0f1", 100u8), ("enP2p1s0f1np1", "roceP2p1s0f1", 101)] {
            write(r, &format!("sys/class/net/{netdev}/operstate"), "up\n");
            write(r, &format!("sys/class/net/{netdev}/mtu"), &format!("{mtu}\n"));
            fs::create_dir_all(r.join(format!("sys/class/net/{netdev}/device/infiniband/{dev}"))).unwrap();
            write(r, &format!("proc/sys/net/ipv6/conf/{netdev}/disable_ipv6"), "1\n");
            let port = format!("sys/class/infiniband/{dev}/ports/1");
            write(r, &format!("{port}/state"), "4: ACTIVE\n");
            write(r, &format!("{port}/rate"), "200 Gb/sec (4X HDR)\n");
            write(r, &format!("{port}/link_layer"), "Ethernet\n");
            write(r, &format!("{port}/gids/3"), &format!("0000:0000:0000:0000:0000:ffff:c0a8:{third:02x}0a\n"));
            write(r, &format!("{port}/gid_attrs/types/3"), "RoCE v2\n");
            fib.push_str(&format!("     |-- 192.168.{third}.10\n        /32 host LOCAL\n"));
            let dest = u32::from(std::net::Ipv4Addr::new(192, 168, third, 0)).swap_bytes();
            route.push_str(&format!("{netdev}\t{dest:08X}\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"));
        }
        write(r, "proc/net/fib_trie", &fib);
        write(r, "proc/net/route", &route);
        write(r, "proc/self/limits", "Max locked memory         unlimited            unlimited            bytes\n");
        write(r, "dev/infiniband/uverbs0", "");
        dir
    }

    fn args(root: &Path, node: Option<&str>, rails: &[&str]) -> DoctorArgs {
        DoctorArgs {
            node: node.map(Into::into),
            cluster: Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cluster.toml"),
            rails: rails.iter().map(|s| s.to_string()).collect(),
            mtu: 9000,
            transport: "auto".into(),
            root: root.to_owned(),
        }
    }

    #[test]
    fn healthy_head_of_the_example_cluster_passes_with_ib() {
        let dir = spark2(9000);
        assert_eq!(run(args(dir.path(), Some("spark-2"), &[])).unwrap(), ExitCode::SUCCESS);
        let root = Root::new(dir.path());
        let rep = preflight::run(&root, &Spec { rails: vec!["enp1s0f1np1".into(), "enP2p1s0f1np1".into()], mtu: 9000, transport: TransportPolicy::Ib });
        let mut buf = Vec::new();
        print_table(&mut buf, &rep).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("transport: NET/IB; 0 failed"), "{text}");
        assert!(text.contains("NCCL_IB_HCA=rocep1s0f1:1,roceP2p1s0f1:1"), "{text}");
    }

    #[test]
    fn the_worker_is_not_this_node_and_mtu_1500_fails() {
        let dir = spark2(9000);
        // spark-3's addresses (.11) are not on this node's rails.
        assert_eq!(run(args(dir.path(), Some("spark-3"), &[])).unwrap(), ExitCode::from(1));
        let dir = spark2(1500);
        assert_eq!(run(args(dir.path(), Some("spark-2"), &[])).unwrap(), ExitCode::from(1));
        let rep = preflight::run(&Root::new(dir.path()), &Spec { rails: vec!["enp1s0f1np1".into()], mtu: 9000, transport: TransportPolicy::Auto });
        let mut buf = Vec::new();
        print_table(&mut buf, &rep).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("FAIL   mtu             enp1s0f1np1      1500 (expected 9000)"), "{text}");
        assert!(text.contains("hint: set the rail MTU to 9000"), "{text}");
    }

    #[test]
    fn bad_input_is_an_error_naming_the_fix() {
        let dir = spark2(9000);
        let e = run(args(dir.path(), None, &[])).unwrap_err().to_string();
        assert!(e.contains("give `--node NAME`"), "{e}");
        let e = run(args(Path::new("/nonexistent-root"), Some("spark-2"), &[])).unwrap_err().to_string();
        assert!(e.contains("`/nonexistent-root` has no `sys` directory"), "{e}");
        let e = run(args(dir.path(), Some("spark-9"), &[])).unwrap_err().to_string();
        assert!(e.contains("spark-9"), "{e}");
        assert_eq!(run(args(dir.path(), None, &["enp1s0f1np1"])).unwrap(), ExitCode::SUCCESS);
    }
}
