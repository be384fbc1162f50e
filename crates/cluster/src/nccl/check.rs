//! The verdict on an [`Analysis`]: checks across processes (one NCCL version, one transport,
//! every IB process on as many HCAs as its peers) and, given what `cluster.toml` declares,
//! against it (transport `ib` ⇒ every rank on `NET/IB` over every declared HCA).

use super::{Analysis, Net, Process};
use crate::model::{Cluster, Transport};
use crate::preflight::Status;
use serde::Serialize;

/// What the cluster description expects of every rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// The transport `cluster.toml` accepts.
    pub transport: Transport,
    /// Per node: its name and its declared RDMA devices (`None` where a rail leaves it to be
    /// resolved on the node).
    pub nodes: Vec<(String, Vec<Option<String>>)>,
}

impl Expect {
    /// What `c` expects.
    pub fn from_cluster(c: &Cluster) -> Expect {
        Expect { transport: c.transport, nodes: c.nodes.iter().map(|n| (n.name.clone(), n.rails.iter().map(|r| r.rdma_device.clone()).collect())).collect() }
    }

    /// The HCAs a process on `host` must use: its node's declared devices when the host is a
    /// node name, else those every node declares alike (twins are named the same on every
    /// Spark of one OS). `None` in the list: a rail whose device is not declared.
    fn hcas_for(&self, host: &str) -> Vec<Option<String>> {
        if let Some((_, d)) = self.nodes.iter().find(|(n, _)| n == host) {
            return d.clone();
        }
        match self.nodes.first() {
            Some((_, first)) if self.nodes.iter().all(|(_, d)| d == first) => first.clone(),
            _ => vec![None; self.nodes.iter().map(|(_, d)| d.len()).max().unwrap_or(0)],
        }
    }
}

/// One line of the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(serialize_with = "status_str")]
    pub(crate) status: Status,
    /// `host:pid` (rank), or `all` for cross-process checks.
    pub(crate) subject: String,
    pub(crate) detail: String,
}

fn status_str<S: serde::Serializer>(s: &Status, ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_str(s)
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
/// The cross-process checks' findings.
pub struct Verdict {
    /// The findings, in the order found.
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// No check failed.
    pub fn ok(&self) -> bool {
        !self.findings.iter().any(|f| f.status == Status::Fail)
    }

    fn push(&mut self, status: Status, subject: impl Into<String>, detail: impl Into<String>) {
        self.findings.push(Finding { status, subject: subject.into(), detail: detail.into() });
    }
}

/// `host:pid` with the rank when known.
pub(crate) fn subject(p: &Process) -> String {
    match p.rank {
        Some(r) => format!("{}:{} (rank {r})", p.host, p.pid),
        None => format!("{}:{}", p.host, p.pid),
    }
}

/// Checks `a`, against `expect` when given.
pub fn check(a: &Analysis, expect: Option<&Expect>) -> Verdict {
    let mut v = Verdict::default();
    if a.processes.is_empty() {
        v.push(Status::Fail, "all", format!("no NCCL line in {} line(s): run with NCCL_DEBUG=INFO (NCCL_DEBUG_SUBSYS including INIT,NET)", a.lines));
        return v;
    }
    cross(a, &mut v);
    for p in &a.processes {
        one(p, expect, &mut v);
    }
    v
}

fn cross(a: &Analysis, v: &mut Verdict) {
    match a.versions.len() {
        0 => v.push(Status::Warn, "all", "no `NCCL version` line (rank 0 prints it at init)"),
        1 => v.push(Status::Pass, "all", format!("one NCCL version: {}", a.versions[0])),
        _ => {
            let per: Vec<String> = a
                .versions
                .iter()
                .map(|ver| {
                    let hosts: std::collections::BTreeSet<&str> =
                        a.processes.iter().filter(|p| p.version.as_deref() == Some(ver)).map(|p| p.host.as_str()).collect();
                    let hosts: Vec<&str> = hosts.into_iter().collect();
                    if hosts.is_empty() {
                        ver.clone()
                    } else {
                        format!("{ver} on {}", hosts.join(", "))
                    }
                })
                .collect();
            v.push(Status::Fail, "all", format!("NCCL versions differ: {} (every node must run the same build)", per.join("; ")));
        }
    }
    let mut nets: Vec<String> = a.processes.iter().filter_map(|p| p.net.as_ref().map(ToString::to_string)).collect();
    nets.sort();
    nets.dedup();
    if nets.len() > 1 {
        v.push(Status::Fail, "all", format!("mixed transports: {} (one slow link slows every collective)", nets.join(", ")));
    }
    let most = a.processes.iter().filter(|p| p.net == Some(Net::Ib)).map(|p| p.hcas.len()).max().unwrap_or(0);
    for p in a.processes.iter().filter(|p| p.net == Some(Net::Ib) && p.hcas.len() < most) {
        v.push(
            Status::Fail,
            subject(p),
            format!(
                "uses {} HCA(s) ({}) where others use {most}: a twin is missing (NCCL_IB_HCA must list both twins of the cabled port)",
                p.hcas.len(),
                p.hcas.join(", ")
            ),
        );
    }
}

fn one(p: &Process, expect: Option<&Expect>, v: &mut Verdict) {
    let s = subject(p);
    let net = match &p.net {
        Some(n) => n,
        None => {
            v.push(Status::Warn, s, "no transport line (one rank alone never picks one; else enable NCCL_DEBUG_SUBSYS=INIT,NET)");
            return;
        }
    };
    let devs = if p.devices().is_empty() { String::new() } else { format!(" over {}", p.devices().join(", ")) };
    let why = p.ib_unusable.as_deref().map(|u| format!(" (`{u}`)")).unwrap_or_default();
    let shown = p.net_name.as_deref().map_or_else(|| net.to_string(), |n| format!("NET/{n}"));
    let gid = p.gid_index.as_deref().map(|g| format!(", GID index {g}")).unwrap_or_default();
    let line = format!("{shown}{devs}{why}{gid}");
    match (expect.map(|e| e.transport), net) {
        (Some(Transport::Ib), Net::Ib) | (Some(Transport::Auto), Net::Ib) => {
            let want = expect.map(|e| e.hcas_for(&p.host)).unwrap_or_default();
            let named: Vec<&str> = want.iter().flatten().map(String::as_str).collect();
            let used: Vec<&str> = p.hcas.iter().map(|h| h.split(':').next().unwrap_or(h)).collect();
            let missing: Vec<&str> = named.iter().copied().filter(|n| !used.contains(n)).collect();
            if !missing.is_empty() {
                v.push(Status::Fail, s, format!("{line}: declared HCA(s) {} not used (check NCCL_IB_HCA)", missing.join(", ")));
            } else if p.hcas.len() < want.len() {
                v.push(Status::Fail, s, format!("{line}: {} HCA(s) for {} declared rail(s) (check NCCL_IB_HCA lists both twins)", p.hcas.len(), want.len()));
            } else {
                v.push(Status::Pass, s, line);
            }
        }
        (Some(Transport::Ib), _) => {
            v.push(Status::Fail, s, format!("{line}: cluster.toml says transport `ib` (check NCCL_IB_HCA, NCCL_NET, /etc/nccl.conf, /dev/infiniband)"))
        }
        (Some(Transport::Auto), _) => v.push(Status::Warn, s, format!("{line}: TCP fallback, ~4-6 GB/s instead of ~22-24 GB/s over RoCE")),
        (Some(Transport::Socket), Net::Socket) => v.push(Status::Pass, s, line),
        (Some(Transport::Socket), _) => v.push(Status::Fail, s, format!("{line}: cluster.toml says transport `socket`")),
        (None, _) => v.push(Status::Pass, s, line),
    }
    if p.warnings.count > 0 {
        v.push(Status::Warn, subject(p), format!("{} NCCL WARN line(s); first: {}", p.warnings.count, p.warnings.kept[0]));
    }
    if p.errors.count > 0 {
        v.push(Status::Warn, subject(p), format!("{} error return(s) traced; first: {}", p.errors.count, p.errors.kept[0]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nccl::analyze;
    use std::path::Path;

    fn read(rel: &str) -> String {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)).unwrap()
    }

    fn example() -> Expect {
        Expect::from_cluster(&crate::parse_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster.toml")).unwrap())
    }

    fn statuses(v: &Verdict) -> Vec<(Status, &str)> {
        v.findings.iter().map(|f| (f.status, f.subject.as_str())).collect()
    }

    const SPARK: &str = "fixtures/nccl_debug/dgx-spark-nccl-2.30.7-ib-hca-set-to-roce-two-rails.txt";

    #[test]
    fn spark_pair_on_both_declared_twins_passes_the_example_cluster() {
        let a = analyze(&read(SPARK));
        let v = check(&a, Some(&example()));
        assert!(v.ok(), "{v:#?}");
        assert_eq!(v.findings[1].detail, "NET/IB over rocep1s0f1:1, roceP2p1s0f1:1, GID index 3");
    }

    #[test]
    fn a_rank_on_one_twin_fails_twice_missing_twin_and_declared_hca() {
        let log = read(SPARK).replace(
            "[0]rocep1s0f1:1/RoCE [1]roceP2p1s0f1:1/RoCE [RO]; OOB enp1s0f1np1:10.100.216.1",
            "[0]rocep1s0f1:1/RoCE [RO]; OOB enp1s0f1np1:10.100.216.1",
        );
        let v = check(&analyze(&log), Some(&example()));
        assert!(!v.ok());
        let fails: Vec<&Finding> = v.findings.iter().filter(|f| f.status == Status::Fail).collect();
        assert_eq!(fails.len(), 2, "{v:#?}");
        assert!(fails[0].detail.contains("a twin is missing"), "{}", fails[0].detail);
        assert!(fails[1].detail.contains("declared HCA(s) roceP2p1s0f1 not used"), "{}", fails[1].detail);
        assert_eq!(fails[0].subject, "spark-506c:250");
    }

    #[test]
    fn socket_ranks_fail_transport_ib_and_warn_under_auto() {
        let a = analyze(&read("fixtures/nccl_debug/ib-disabled-by-env-using-network-socket-mpi-noise.txt"));
        let mut e = example();
        let v = check(&a, Some(&e));
        assert_eq!(v.findings.iter().filter(|f| f.status == Status::Fail).count(), 2, "{v:#?}");
        e.transport = Transport::Auto;
        let v = check(&a, Some(&e));
        assert!(v.ok());
        assert!(v.findings.iter().any(|f| f.status == Status::Warn && f.detail.contains("TCP fallback")), "{v:#?}");
        e.transport = Transport::Socket;
        assert!(check(&a, Some(&e)).ok());
        // 3 processes never said which network they use.
        assert_eq!(statuses(&check(&a, None)).iter().filter(|(s, _)| *s == Status::Warn).count(), 1 + 3);
    }

    #[test]
    fn mismatched_versions_and_mixed_transports_fail_across_processes() {
        let log = format!(
            "{}\n{}",
            read("fixtures/nccl_debug/dgx-h100-roce-using-network-ib-nccl-2.19.txt"),
            "dgxh100-5:7:7 [0] NCCL INFO NCCL version 2.18.1+cuda12.2\ndgxh100-5:7:7 [0] NCCL INFO Using network Socket"
        );
        let v = check(&analyze(&log), None);
        let all: Vec<&str> = v.findings.iter().filter(|f| f.subject == "all").map(|f| f.detail.as_str()).collect();
        assert_eq!(
            all,
            [
                "NCCL versions differ: 2.19.3+cuda12.3; 2.18.1+cuda12.2 on dgxh100-5 (every node must run the same build)",
                "mixed transports: NET/IB, NET/Socket (one slow link slows every collective)"
            ]
        );
    }

    #[test]
    fn a_log_without_nccl_lines_fails() {
        let v = check(&analyze("hello\nworld\n"), None);
        assert!(!v.ok());
        assert!(v.findings[0].detail.starts_with("no NCCL line in 2 line(s)"));
    }
}
