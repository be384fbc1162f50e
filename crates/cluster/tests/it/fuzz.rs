//! Bounded mutation fuzzing of what `cluster` parses: `cluster.toml` (then planned and rendered
//! for every node), NCCL logs, and the text of `/proc` and command outputs the node checks read.
//! See `crates/test-support/src/fuzz.rs`.

use crate::support::repo_root;
use cluster::render::{render, Format};
use cluster::{nccl, sysfs, tools};
use std::path::Path;
use test_support::fuzz::{run, seeds_from};

#[test]
fn fuzz_cluster_toml_then_plan_and_render() {
    let mut seeds = vec![std::fs::read(repo_root().join("examples/cluster.toml")).unwrap()];
    seeds.extend(seeds_from(&repo_root().join("crates/cluster/tests/vectors")).into_iter().filter(|s| !s.starts_with(b"{")));
    let dict = ["[[node]]\n", "[[node.rail]]\n", "rdma_device = ", "address = \"10.0.0.1/24\"", "mtu = ", "\"-tp\", ", "role = \"head\"", "=", "\"", "'''"];
    let n = run("cluster::parse_str + render", &seeds, &dict, |b| {
        let Ok(c) = cluster::parse_str(&String::from_utf8_lossy(b), Path::new("fuzz.toml")) else { return };
        for node in &c.nodes {
            for (_, format) in Format::ALL {
                let _ = render(&c, node, *format);
            }
            let _ = cluster::plan::container_env(&c, node);
        }
    });
    assert!(n > 20);
}

#[test]
fn fuzz_nccl_logs() {
    let mut seeds = seeds_from(&repo_root().join("fixtures/nccl_debug"));
    seeds.extend(seeds_from(&repo_root().join("fixtures/nccl_tests")));
    let n = run("nccl::analyze", &seeds, &["NCCL INFO ", "NET/IB", "NET/Socket", "Using network ", "[0]", " : ", "\n"], |b| {
        let _ = nccl::analyze(&String::from_utf8_lossy(b));
    });
    assert!(n > 20);
}

#[test]
fn fuzz_node_check_text() {
    let fib = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 192.168.100.0/24 2 0 2\n           |-- 192.168.100.10\n              /32 host LOCAL\nLocal:\n           |-- 192.168.100.10\n              /32 host LOCAL\n";
    let route =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\nrail0\t0064A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
    let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax locked memory         unlimited            unlimited            bytes\n";
    let mut seeds: Vec<Vec<u8>> = [fib, route, limits, "0000:0000:0000:0000:0000:ffff:c0a8:640a", "4: ACTIVE"].iter().map(|s| s.as_bytes().to_vec()).collect();
    seeds.extend(seeds_from(&repo_root().join("fixtures/ibdev2netdev")));
    seeds.extend(seeds_from(&repo_root().join("fixtures/sysfs_infiniband")));
    let n = run("sysfs text parsers", &seeds, &["|-- ", "/32 host LOCAL", "\t", "ffff:", " ==> ", "(Up)", "port "], |b| {
        let t = String::from_utf8_lossy(b);
        let local = sysfs::parse_fib_trie_local(&t);
        let _ = sysfs::parse_route(&t);
        let _ = (local, sysfs::parse_memlock(&t), sysfs::parse_gid_ipv4(&t), sysfs::parse_port_state(&t));
    });
    assert!(n > 20);
}

#[test]
fn fuzz_fabric_tool_outputs() {
    let mut seeds = Vec::new();
    for dir in ["ethtool", "ibdev2netdev", "ibv_devinfo", "perftest", "ray"] {
        seeds.extend(seeds_from(&repo_root().join("fixtures").join(dir)));
    }
    let dict = ["Speed: ", "Link detected: ", " ==> ", "(Up)", "GID[", "port:\t", "#bytes", "BW average", "t_typical", "GPU", "Active:"];
    let n = run("cluster::tools parsers", &seeds, &dict, |b| {
        let t = String::from_utf8_lossy(b);
        let _ = (tools::ethtool::parse(&t), tools::ibdev2netdev::parse(&t), tools::ibv_devinfo::parse(&t));
        let perf = tools::perftest::parse(&t);
        let _ = (perf.bw_average_gbps(), perf.bw_peak_gbps(), perf.lat_typical_us(), perf.ok());
        let ray = tools::ray_status::parse(&t);
        let _ = (ray.total("GPU"), ray.complete(2, 1), tools::ping::parse(&t).ok());
    });
    assert!(n > 20);
}
