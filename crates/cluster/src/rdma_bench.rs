//! `sparkctl bench rdma`, the pure part: the perftest command lines, the flags they need, the
//! link facts read from each node, and the verdicts. Running them over ssh is the CLI's part.
//!
//! Thresholds: a rail alone must reach `min_ratio` × its share of the port's rate (sysfs
//! `rate`; the twins of one Spark port share its 200 Gb/s, ~106 Gb/s each when both run), all
//! rails at once `min_ratio` × the sum of the ports' rates. Below 25 Gb/s on a link that says
//! 200 Gb/s is the CX-7 fault that links at 200G and carries ~13 Gb/s: named as such.

use crate::shell;
use crate::tools::perftest::Perftest;

/// The perftest flags sparkctl uses, checked in `--help` before anything runs.
pub(crate) const REQUIRED_FLAGS: &[&str] = &["--ib-dev", "--port", "--qp", "--duration", "--rdma_cm", "--report_gbits", "--CPU-freq"];

/// Below this on a link whose rate is at least [`DEGRADED_LINK_MIN_RATE`]: the degraded-link fault.
pub(crate) const DEGRADED_GBPS: f64 = 25.0;
pub(crate) const DEGRADED_LINK_MIN_RATE: f64 = 200.0;
/// Latency above this (µs) is suspicious (typical on a Spark pair: ~1.5 µs).
pub const MAX_LATENCY_US: f64 = 10.0;

/// The flags `help` (the output of `ib_write_bw --help`) lacks.
pub fn missing_flags(help: &str) -> Vec<&'static str> {
    REQUIRED_FLAGS.iter().copied().filter(|f| !help.split(|c: char| c.is_whitespace() || c == ',' || c == '=').any(|w| w == *f)).collect()
}

/// What one node says about one rail (read from its sysfs).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RailFacts {
    /// The netdev.
    pub netdev: String,
    /// Its RDMA device, when found.
    pub rdma_device: Option<String>,
    /// `rate` of port 1 in Gb/s (`200 Gb/sec (4X HDR)` → 200).
    pub rate_gbps: Option<f64>,
    /// `PCI_SLOT_NAME`, e.g. `0000:01:00.1`.
    pub pci: Option<String>,
}

/// The shell script that prints one tab-separated line per rail: netdev, RDMA device, rate, PCI
/// slot (empty fields when sysfs lacks them). `root` prefixes every path.
pub fn facts_script(root: &str, netdevs: &[String]) -> String {
    let r = match root.trim_end_matches('/') {
        "" => String::new(),
        r => shell::quote(r),
    };
    let names = shell::join(netdevs);
    format!(
        "for n in {names}; do d=$(ls {r}/sys/class/net/$n/device/infiniband 2>/dev/null | head -n 1); \
         rate=$(cat {r}/sys/class/infiniband/$d/ports/1/rate 2>/dev/null); \
         pci=$(sed -n 's/^PCI_SLOT_NAME=//p' {r}/sys/class/net/$n/device/uevent 2>/dev/null); \
         printf '%s\\t%s\\t%s\\t%s\\n' \"$n\" \"$d\" \"$rate\" \"$pci\"; done"
    )
}

/// Reads the output of [`facts_script`].
pub fn parse_facts(text: &str) -> Vec<RailFacts> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let netdev = f.first().filter(|s| !s.is_empty())?.to_string();
            let opt = |i: usize| f.get(i).map(|s| s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
            let rate_gbps = opt(2).and_then(|r| r.split_whitespace().next()?.parse().ok());
            Some(RailFacts { netdev, rdma_device: opt(1), rate_gbps, pci: opt(3) })
        })
        .collect()
}

/// How many of `rails` share a physical port with `rail` (itself included): a Spark port's
/// twins are the same bus/device/function in two PCI domains.
pub fn port_sharers(rail: &RailFacts, rails: &[RailFacts]) -> usize {
    let suffix = |p: &str| p.split_once(':').map(|(_, s)| s.to_owned());
    match rail.pci.as_deref().and_then(suffix) {
        Some(s) => rails.iter().filter(|r| r.pci.as_deref().and_then(suffix).as_deref() == Some(&s)).count().max(1),
        None => 1,
    }
}

/// Options of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Options {
    /// Queue pairs per bandwidth run.
    pub qps: u32,
    /// Seconds per bandwidth run.
    pub duration_s: u32,
    /// The first TCP port of the perftest servers.
    pub base_port: u16,
    /// The share of the link rate a rail must reach.
    pub min_ratio: f64,
}

/// The `ib_write_bw`/`ib_write_lat` argv, server side when `server_ip` is `None`. `timeout`
/// bounds it on the node, so nothing outlives sparkctl even if it is killed outright.
pub fn perftest_argv(tool: &str, device: &str, port: u16, opts: &Options, server_ip: Option<std::net::Ipv4Addr>) -> Vec<String> {
    let limit = (opts.duration_s + 60).to_string();
    let mut v: Vec<String> = ["timeout", &limit, tool, "--ib-dev", device, "--port", &port.to_string(), "--rdma_cm", "--CPU-freq"].map(String::from).to_vec();
    if tool == "ib_write_bw" {
        v.extend(["--report_gbits".into(), "--qp".into(), opts.qps.to_string(), "--duration".into(), opts.duration_s.to_string()]);
    } else {
        v.push("--report_gbits".into());
    }
    if let Some(ip) = server_ip {
        v.push(ip.to_string());
    }
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
/// The verdict of one measurement.
pub enum Verdict {
    /// At or above the threshold.
    Pass,
    /// Measured, but with no threshold to hold it to (no link rate).
    Warn,
    /// No measurement, or below the threshold.
    Fail,
}

/// One bandwidth measurement and its verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measured {
    /// The bandwidth measured, in Gb/s.
    pub gbps: Option<f64>,
    /// The least bandwidth expected, in Gb/s.
    pub expected_min_gbps: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in words (`degraded link: …`, the perftest error line…).
    pub reason: String,
}

/// The verdict of one rail's `ib_write_bw` client output against `rate` shared by `sharers`.
pub fn judge_rail(out: &Perftest, rate_gbps: Option<f64>, sharers: usize, min_ratio: f64) -> Measured {
    let expected = rate_gbps.map(|r| min_ratio * r / sharers.max(1) as f64);
    let Some(gbps) = out.bw_average_gbps().filter(|_| out.errors.is_empty()) else {
        let reason = out.errors.first().cloned().unwrap_or_else(|| if out.truncated { "output cut short".into() } else { "no result table".into() });
        return Measured { gbps: None, expected_min_gbps: expected, verdict: Verdict::Fail, reason };
    };
    judge(gbps, rate_gbps, expected)
}

/// The verdict of `gbps` against `expected`; the degraded-link fault named when `rate` says 200G.
pub fn judge(gbps: f64, rate_gbps: Option<f64>, expected: Option<f64>) -> Measured {
    let (verdict, reason) = match (rate_gbps, expected) {
        (Some(rate), _) if rate >= DEGRADED_LINK_MIN_RATE && gbps < DEGRADED_GBPS => {
            (Verdict::Fail, format!("degraded link: {gbps:.2} Gb/s on a link that says {rate} Gb/s; reseat or replace the cable, then power-cycle both nodes"))
        }
        (_, Some(min)) if gbps >= min => (Verdict::Pass, format!("{gbps:.2} Gb/s >= {min:.1}")),
        (_, Some(min)) => (Verdict::Fail, format!("{gbps:.2} Gb/s < {min:.1}: check `sparkctl doctor` (speed, MTU, PCIe width) on both nodes")),
        (None, None) | (Some(_), None) => (Verdict::Warn, format!("{gbps:.2} Gb/s; no link rate in sysfs, so no threshold")),
    };
    Measured { gbps: Some(gbps), expected_min_gbps: expected, verdict, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::fixture;
    use crate::tools::perftest;

    fn spark_rails() -> Vec<RailFacts> {
        vec![
            RailFacts { netdev: "enp1s0f1np1".into(), rdma_device: Some("rocep1s0f1".into()), rate_gbps: Some(200.0), pci: Some("0000:01:00.1".into()) },
            RailFacts { netdev: "enP2p1s0f1np1".into(), rdma_device: Some("roceP2p1s0f1".into()), rate_gbps: Some(200.0), pci: Some("0002:01:00.1".into()) },
        ]
    }

    #[test]
    fn a_spark_twin_at_111_gbps_passes_its_share_of_the_port() {
        let rails = spark_rails();
        assert_eq!(port_sharers(&rails[0], &rails), 2);
        let out = perftest::parse(&fixture("perftest/ib_write_bw-dgx-spark-client-4qp-rdmacm-gbits.txt"));
        let m = judge_rail(&out, Some(200.0), 2, 0.75);
        assert_eq!((m.verdict, m.gbps, m.expected_min_gbps), (Verdict::Pass, Some(111.71), Some(75.0)));
    }

    #[test]
    fn thirteen_gbps_on_a_200g_link_is_the_degraded_link_fault() {
        let m = judge(13.23, Some(200.0), Some(75.0));
        assert_eq!(m.verdict, Verdict::Fail);
        assert!(m.reason.starts_with("degraded link: 13.23 Gb/s on a link that says 200 Gb/s"), "{}", m.reason);
        // 30 Gb/s is not the fault, just slow.
        assert!(judge(30.0, Some(200.0), Some(75.0)).reason.contains("< 75.0"));
    }

    #[test]
    fn a_failed_run_carries_perftests_error_line() {
        let out = perftest::parse(&fixture("perftest/ib_write_bw-client-couldnt-connect-socket-init.txt"));
        let m = judge_rail(&out, Some(200.0), 2, 0.75);
        assert_eq!((m.verdict, m.reason.as_str()), (Verdict::Fail, "Couldn't connect to 192.168.125.211:18515"));
    }

    #[test]
    fn facts_round_trip_and_help_flags() {
        let facts = parse_facts("enp1s0f1np1\trocep1s0f1\t200 Gb/sec (4X HDR)\t0000:01:00.1\nenP2p1s0f1np1\t\t\t\n");
        assert_eq!(facts[0], spark_rails()[0]);
        assert_eq!((facts[1].rdma_device.as_deref(), facts[1].rate_gbps, facts[1].pci.as_deref()), (None, None, None));
        let help = "Usage:\n  ib_write_bw            start a server\n -d, --ib-dev=<dev> \n -p, --port=<port>\n -q, --qp=<num of qp's>\n -D, --duration\n -R, --rdma_cm\n --report_gbits\n -F, --CPU-freq\n";
        assert!(missing_flags(help).is_empty(), "{:?}", missing_flags(help));
        assert_eq!(missing_flags(&help.replace("--rdma_cm", "")), ["--rdma_cm"]);
        let script = facts_script("/", &["rail0".into()]);
        assert!(script.starts_with("for n in rail0; do d=$(ls /sys/class/net/$n/device/infiniband"), "{script}");
    }

    #[test]
    fn perftest_command_lines() {
        let opts = Options { qps: 4, duration_s: 5, base_port: 18515, min_ratio: 0.75 };
        let ip = std::net::Ipv4Addr::new(10, 0, 0, 2);
        assert_eq!(
            perftest_argv("ib_write_bw", "rocep1s0f1", 18515, &opts, Some(ip)).join(" "),
            "timeout 65 ib_write_bw --ib-dev rocep1s0f1 --port 18515 --rdma_cm --CPU-freq --report_gbits --qp 4 --duration 5 10.0.0.2"
        );
        assert_eq!(
            perftest_argv("ib_write_lat", "rocep1s0f1", 18516, &opts, None).join(" "),
            "timeout 65 ib_write_lat --ib-dev rocep1s0f1 --port 18516 --rdma_cm --CPU-freq --report_gbits"
        );
    }
}
