//! `sparkctl doctor`: is this node what cluster.toml says, and can its rails carry RoCE at full
//! speed? Runs `cluster::doctor` (the entrypoint's preflight plus the fabric checks) over a root
//! prefix and prints one line per check: PASS/WARN/FAIL, what was measured, what was expected and
//! the exact fix. `--peers` adds don't-fragment jumbo pings to every peer on every rail, both
//! ways (the way back over ssh); `--fix` applies the safe, reversible fixes (MTU, IPv6 and ARP
//! sysctls) after printing them, then checks again.
//!
//! Exit code = the worst result: 0 every check passed, 1 a warning, 3 a failure; 2 bad input.
use anyhow::{bail, Context};
use cluster::doctor::{self, Spec};
use cluster::preflight::{self, DeclaredRail, Fix, Report, Status};
use cluster::sysfs::Root;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

fn mtu_in_range(s: &str) -> Result<u32, String> {
    let (min, max) = cluster::model::MTU_RANGE;
    match s.parse::<u32>() {
        Ok(m) if (u32::from(min)..=u32::from(max)).contains(&m) => Ok(m),
        _ => Err(format!("`{s}` is not an MTU from {min} to {max} (the range cluster.toml accepts; 9000 on RoCE rails)")),
    }
}

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
    /// Expected rail MTU (with --rails), 1500 to 9978
    #[arg(long, default_value = "9000", value_parser = mtu_in_range, requires = "rails")]
    mtu: u32,
    /// Transport policy (with --rails): auto, ib or socket
    #[arg(long, default_value = "auto", value_parser = ["auto", "ib", "socket"], requires = "rails")]
    transport: String,
    /// Root prefix under which /sys, /proc, /dev and /etc are read (and --fix writes)
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Home directory whose `.nccl.conf` NCCL would read (under --root)
    #[arg(long, env = "HOME")]
    home: Option<String>,
    /// Also ping every peer of --node on every rail with don't-fragment jumbo frames, both ways
    #[arg(long, requires = "node")]
    peers: bool,
    /// Apply the safe, reversible fixes (MTU, IPv6 and ARP sysctls), then check again
    #[arg(long)]
    fix: bool,
    /// Print JSON instead of the table
    #[arg(long)]
    json: bool,
    /// How --peers reaches the peers for the way back
    #[command(flatten)]
    ssh: crate::fleet_args::SshArgs,
}

/// A fix as printed and applied.
struct Applied {
    command: String,
    undo: Option<String>,
    error: Option<String>,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let root = Root::new(&args.root);
    if !args.root.join("sys").is_dir() {
        bail!("`{}` has no `sys` directory; give the root of a node with `--root` (default `/`)", args.root.display());
    }
    let (spec, cluster_node) = spec(&args)?;
    let mut report = doctor::run(&root, &spec);
    let mut applied = Vec::new();
    let mut out = std::io::stdout().lock();
    if args.fix {
        applied = apply_fixes(&root, &report, &mut out, args.json)?;
        if !applied.is_empty() {
            report = doctor::run(&root, &spec);
        }
    }
    if let (true, Some((cluster, name))) = (args.peers, &cluster_node) {
        report.checks.extend(fleet::doctor::peer_checks(cluster, name, &args.ssh.ssh()));
    }
    let worst = doctor::worst(&report.checks);
    if args.json {
        print_json(&mut out, &report, &applied, worst).context("writing to stdout")?;
    } else {
        print_table(&mut out, &report).context("writing to stdout")?;
    }
    Ok(exit_code(worst))
}

/// 0 PASS, 1 WARN, 3 FAIL (2 is every sparkctl error).
pub fn exit_code(worst: Status) -> ExitCode {
    ExitCode::from(match worst {
        Status::Pass => 0,
        Status::Warn => 1,
        Status::Fail => 3,
    })
}

pub fn label(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
    }
}

fn spec(args: &DoctorArgs) -> anyhow::Result<(Spec, Option<(cluster::Cluster, String)>)> {
    let homes: Vec<String> = args.home.iter().filter(|h| h.starts_with('/')).cloned().collect();
    if !args.rails.is_empty() {
        for r in &args.rails {
            cluster::sysfs::validate_netdev_name(r).with_context(|| format!("`--rails {}`", args.rails.join(",")))?;
        }
        let transport = cluster::model::Transport::parse(&args.transport).expect("clap checked the value");
        let pf = preflight::Spec { rails: args.rails.clone(), mtu: args.mtu, transport };
        return Ok((Spec { preflight: pf, declared: Vec::new(), homes }, None));
    }
    let Some(name) = &args.node else {
        bail!("nothing to check: give `--node NAME` (rails from `--cluster`, default `cluster.toml`) or `--rails IF,IF`");
    };
    let cluster = crate::render::load_cluster(&args.cluster)?;
    let node = cluster.node(name)?;
    let pf = preflight::Spec { rails: node.rails.iter().map(|r| r.interface.clone()).collect(), mtu: u32::from(cluster.mtu), transport: cluster.transport };
    let declared = node
        .rails
        .iter()
        .map(|r| DeclaredRail { netdev: r.interface.clone(), rdma_device: r.rdma_device.clone(), ipv4: r.address.addr, prefix: r.address.prefix })
        .collect();
    let spec = Spec { preflight: pf, declared, homes };
    Ok((spec, Some((cluster.clone(), name.clone()))))
}

/// Prints every fix of a non-passing check (once per file), then applies them in that order.
fn apply_fixes(root: &Root, report: &Report, out: &mut impl Write, json: bool) -> anyhow::Result<Vec<Applied>> {
    let mut fixes: Vec<&Fix> = Vec::new();
    for f in report.checks.iter().filter(|c| c.status != Status::Pass).filter_map(|c| c.fix.as_ref()) {
        if !fixes.iter().any(|g| g.path() == f.path()) {
            fixes.push(f);
        }
    }
    // Printed before anything is written; with --json on stderr, so stdout stays one document.
    for f in &fixes {
        if json {
            eprintln!("fix: {}", f.command());
        } else {
            writeln!(out, "fix: {}", f.command())?;
        }
    }
    let mut applied = Vec::new();
    for f in fixes {
        let a = match f.apply(root) {
            Ok(prev) => Applied { command: f.command(), undo: Some(f.command_with(&prev)), error: None },
            Err(e) => Applied { command: f.command(), undo: None, error: Some(format!("writing `{}`: {e}", root.join(&f.path()).display())) },
        };
        if !json {
            match (&a.undo, &a.error) {
                (Some(u), _) => writeln!(out, "applied: {} (undo: {u})", a.command)?,
                (_, Some(e)) => writeln!(out, "not applied: {}: {e}", a.command)?,
                _ => {}
            }
        }
        applied.push(a);
    }
    if !json && !applied.is_empty() {
        writeln!(out, "checking again:")?;
    }
    Ok(applied)
}

/// One line per check: STATUS CHECK SUBJECT MEASURED (expected …) fix: …
fn print_table(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    for c in &report.checks {
        let mut line = format!("{:<4}  {:<14} {:<17} {}", label(c.status), c.name, c.subject, c.detail);
        if let Some(e) = c.expected.as_ref().filter(|e| c.status != Status::Pass && !c.detail.contains("expected") && **e != c.detail) {
            line.push_str(&format!(" (expected {e})"));
        }
        match (c.status, &c.fix, &c.hint) {
            (Status::Pass, _, _) => {}
            (_, Some(f), _) => line.push_str(&format!("; fix: {}", f.command())),
            (_, None, Some(h)) => line.push_str(&format!("; fix: {h}")),
            _ => {}
        }
        writeln!(out, "{line}")?;
    }
    let count = |s: Status| report.checks.iter().filter(|c| c.status == s).count();
    writeln!(out)?;
    writeln!(
        out,
        "{}: {} passed, {} warning(s), {} failed; transport: {}",
        label(doctor::worst(&report.checks)),
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail),
        transport_word(report)
    )?;
    if report.ok() {
        let env: Vec<String> = report.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(out, "node env (as spark-entrypoint derives it): {}", env.join(" "))?;
    }
    Ok(())
}

/// What NCCL would get: none when the entrypoint would refuse to start.
fn transport_word(report: &Report) -> String {
    if report.checks.iter().any(|c| c.name == "transport" && c.status == Status::Fail) {
        "none (spark-entrypoint would refuse to start)".to_owned()
    } else {
        report.transport.to_string()
    }
}

fn print_json(out: &mut impl Write, report: &Report, applied: &[Applied], worst: Status) -> std::io::Result<()> {
    let checks: Vec<serde_json::Value> = report
        .checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "status": label(c.status),
                "check": c.name,
                "subject": c.subject,
                "measured": c.detail,
                "expected": c.expected,
                "fix": c.fix.as_ref().filter(|_| c.status != Status::Pass).map(Fix::command),
                "hint": c.hint,
            })
        })
        .collect();
    let fixes: Vec<serde_json::Value> = applied.iter().map(|a| serde_json::json!({"command": a.command, "undo": a.undo, "error": a.error})).collect();
    let doc = serde_json::json!({
        "worst": label(worst),
        "transport": transport_word(report),
        "checks": checks,
        "fixes_applied": fixes,
        "env": if report.ok() { serde_json::to_value(report.env()).unwrap_or_default() } else { serde_json::Value::Null },
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::path::Path;
    use test_support::sysfs::{write, RoceRoot};

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: DoctorArgs,
    }

    fn args(cmd: &[&str]) -> Result<DoctorArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("doctor").chain(cmd.iter().copied())).map(|c| c.args)
    }

    /// spark-2 of examples/cluster.toml as the preflight sees it (no fabric extras).
    fn spark2(mtu: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut root = RoceRoot::new(dir.path());
        for (netdev, dev, third) in [("enp1s0f1np1", "rocep1s0f1", 100u8), ("enP2p1s0f1np1", "roceP2p1s0f1", 101)] {
            root.rail(netdev, dev, mtu, std::net::Ipv4Addr::new(192, 168, third, 10));
        }
        root.finish();
        dir
    }

    fn example() -> String {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster.toml").display().to_string()
    }

    fn table(root: &Path, node: &str) -> String {
        let a = args(&["--node", node, "--cluster", &example(), "--root", root.to_str().unwrap()]).unwrap();
        let (spec, _) = spec(&a).unwrap();
        let rep = doctor::run(&Root::new(root), &spec);
        let mut buf = Vec::new();
        print_table(&mut buf, &rep).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn the_worker_is_not_this_node_and_mtu_1500_fails_with_the_ip_link_fix() {
        let dir = spark2(9000);
        let text = table(dir.path(), "spark-3");
        assert!(text.contains("FAIL  declared-ip    enp1s0f1np1       expected 192.168.100.11/24, found 192.168.100.10/24"), "{text}");
        let dir = spark2(1500);
        let text = table(dir.path(), "spark-2");
        assert!(text.contains("FAIL  mtu            enp1s0f1np1       1500 (expected 9000); fix: ip link set dev enp1s0f1np1 mtu 9000"), "{text}");
    }

    #[test]
    fn transport_ib_with_failing_rdma_says_none_not_socket() {
        let dir = spark2(9000);
        write(dir.path(), "proc/self/limits", "Max locked memory         65536            65536            bytes\n");
        let text = table(dir.path(), "spark-2");
        assert!(text.contains("transport: none (spark-entrypoint would refuse to start)"), "{text}");
        assert!(!text.contains("transport: NET/Socket"), "{text}");
    }

    #[test]
    fn bad_input_is_an_error_naming_the_fix() {
        let dir = spark2(9000);
        let root = dir.path().to_str().unwrap();
        let e = run(args(&["--root", root]).unwrap()).unwrap_err().to_string();
        assert!(e.contains("give `--node NAME`"), "{e}");
        let e = run(args(&["--root", "/nonexistent-root", "--node", "spark-2", "--cluster", &example()]).unwrap()).unwrap_err().to_string();
        assert!(e.contains("`/nonexistent-root` has no `sys` directory"), "{e}");
        let e = run(args(&["--root", root, "--node", "spark-9", "--cluster", &example()]).unwrap()).unwrap_err().to_string();
        assert!(e.contains("spark-9"), "{e}");
    }

    #[test]
    fn empty_or_path_like_rail_names_are_bad_input() {
        let dir = spark2(9000);
        let root = dir.path().to_str().unwrap();
        for bad in ["", ",,", "../../../etc", "enp1s0f1np1,,enP2p1s0f1np1", "..", "a/b"] {
            let e = run(args(&["--root", root, "--rails", bad]).unwrap()).map(|_| ()).unwrap_err();
            let e = format!("{e:#}");
            assert!(e.contains("netdev name") && e.contains("--rails"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn mtu_outside_1500_to_9978_is_refused_by_the_parser() {
        for bad in ["0", "70000", "1499", "9979", "x"] {
            let e = args(&["--rails", "eth0", "--mtu", bad]).err().unwrap_or_else(|| panic!("{bad} accepted")).to_string();
            assert!(e.contains("1500 to 9978"), "{bad}: {e}");
        }
        assert_eq!(args(&["--rails", "eth0", "--mtu", "9978"]).unwrap().mtu, 9978);
    }
}
