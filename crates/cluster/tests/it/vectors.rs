//! The shared vectors hold Rust and Nix to one answer (ARCHITECTURE.md invariant 7).

use crate::support::{bless, parse, rust_plans, vectors};
#[cfg(feature = "system-tests")]
use crate::support::{nix_eval, nix_plans};

fn expected(v: &crate::support::Vector) -> serde_json::Value {
    let text = std::fs::read_to_string(&v.expected).unwrap_or_else(|e| panic!("{}: {e}", v.expected.display()));
    serde_json::from_str(&text).expect("expected vector is JSON")
}

#[test]
fn rust_plans_match_the_vectors() {
    for v in vectors() {
        let got = rust_plans(&parse(&v));
        if bless() {
            std::fs::write(&v.expected, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        }
        assert_eq!(got, expected(&v), "Rust plan of vector `{}` differs from {}", v.name, v.expected.display());
    }
}

#[cfg(feature = "system-tests")]
#[test]
fn nix_helpers_evaluate_to_the_vectors() {
    for v in vectors() {
        assert_eq!(nix_plans(&v.toml), expected(&v), "lib.nix plan of vector `{}` differs from {}", v.name, v.expected.display());
    }
}

/// The vectors exercise what differs between the two implementations' edge cases, so a drift
/// in one of them cannot hide behind an easy example.
#[test]
fn vectors_cover_the_edge_cases() {
    let all: Vec<_> = vectors().iter().map(parse).collect();
    let nodes = || all.iter().flat_map(|c| c.nodes.iter().map(move |n| (c, n)));
    assert!(nodes().any(|(_, n)| n.rails.iter().any(|r| r.rdma_device.is_none())), "a rail without rdma_device");
    assert!(nodes().any(|(_, n)| n.rails.len() == 2 && n.rails.iter().all(|r| r.rdma_device.is_some())), "two declared twins");
    assert!(all.iter().any(|c| !c.disable_ipv6) && all.iter().any(|c| c.disable_ipv6), "IPv6 on and off");
    assert!(all.iter().any(|c| c.backend == cluster::Backend::Native) && all.iter().any(|c| c.backend == cluster::Backend::Ray));
    assert!(all.iter().any(|c| c.nodes[0].role != cluster::Role::Head), "head not first in the file");
    assert!(all.iter().flat_map(|c| &c.serve.args).any(|a| a.contains('\'') || a.contains('"')), "args needing quotes");
}

/// The two-Spark plan carries the facts the hardware needs: both twins in NCCL_IB_HCA, MTU 9000, IPv6
/// off with no link-local, ARP flux settings, the head's rail address for rendezvous.
#[test]
fn two_spark_plan_pins_the_hardware_facts() {
    let v = &vectors()[0];
    let c = parse(v);
    let plan = cluster::plan::node_plan(&c, c.node("spark-3").unwrap());
    assert_eq!(plan.env["NCCL_IB_HCA"], "rocep1s0f1:1,roceP2p1s0f1:1");
    assert_eq!(plan.env["NCCL_SOCKET_IFNAME"], "enp1s0f1np1,enP2p1s0f1np1");
    assert_eq!(plan.env["VLLM_HOST_IP"], "192.168.100.11");
    assert_eq!(plan.env["SPARK_HEAD_ADDR"], "192.168.100.10");
    assert_eq!(plan.env["SPARK_ROLE"], "worker");
    assert_eq!(plan.env["SPARK_NODES"], "spark-2,spark-3");
    let net = &plan.networks["30-rail-enP2p1s0f1np1"];
    assert_eq!(net.link_config["MTUBytes"], "9000");
    assert_eq!(net.network_config.link_local_addressing, "no");
    assert_eq!(plan.sysctl["net.ipv6.conf.enp1s0f1np1.disable_ipv6"], 1);
    assert_eq!(plan.sysctl["net.ipv4.conf.enp1s0f1np1.arp_ignore"], 1);
    assert_eq!(plan.sysctl["net.ipv4.conf.enp1s0f1np1.arp_announce"], 2);
    assert!(plan.firewall.allowed_tcp_ports.is_empty(), "workers serve no API");
    assert_eq!(plan.env["SPARK_TOKEN_FILE"], "/run/secrets/spark-cluster-token");
    assert!(!plan.env.contains_key("SPARK_TOKEN"), "the token never lands in a rendered file");
    assert_eq!(plan.env["SPARK_TRANSPORT"], "ib");
    assert_eq!(plan.env["SPARK_MTU"], "9000");
}

/// `SPARK_SERVE` is the JSON array the entrypoint reads: `vllm serve <model> <args…> --port`,
/// arguments that need quoting included; a digest-pinned image gives `SPARK_IMAGE_DIGEST`.
#[test]
fn serve_command_and_fingerprint_inputs() {
    let c = parse(&vectors()[1]);
    let plan = cluster::plan::node_plan(&c, c.head());
    let serve: Vec<String> = serde_json::from_str(&plan.env["SPARK_SERVE"]).unwrap();
    assert_eq!(serve[..3], ["vllm", "serve", "Qwen/Qwen3-0.6B"]);
    assert_eq!(serve[3..serve.len() - 2], c.serve.args[..]);
    assert_eq!(serve[serve.len() - 2..], ["--port", "9000"]);
    assert_eq!(plan.env["SPARK_NODES"], "h0,w1,w2", "head first, then file order");
    assert!(plan.env["SPARK_IMAGE_DIGEST"].starts_with("sha256:0f1e"));
    let duo = parse(&vectors()[0]);
    assert!(!cluster::plan::node_plan(&duo, duo.head()).env.contains_key("SPARK_IMAGE_DIGEST"), "a tag is no digest");
}

/// The module's assertions (lib.nix `problems`) catch a node name that is not in the file, with
/// the list of nodes, and are empty for a good one.
#[cfg(feature = "system-tests")]
#[test]
fn nix_module_assertions_name_unknown_nodes() {
    let v = &vectors()[0];
    assert_eq!(nix_eval(r#"l.problems cfg "spark-2""#, &v.toml), serde_json::json!([]));
    let problems = nix_eval(r#"l.problems cfg "spark-9""#, &v.toml);
    let text = problems[0].as_str().unwrap();
    assert!(text.contains("spark-9") && text.contains("spark-2, spark-3"), "{text}");
    let tmp = tempfile::tempdir().unwrap();
    let headless = tmp.path().join("cluster.toml");
    std::fs::write(&headless, std::fs::read_to_string(&v.toml).unwrap().replace("role = \"head\"", "role = \"worker\"")).unwrap();
    let problems = nix_eval(r#"l.problems cfg "spark-2""#, &headless);
    assert!(problems[0].as_str().unwrap().contains("exactly one node"), "{problems}");
}

/// lib.nix's `escapeShellArg` (nixpkgs' rule) and Rust's `shell::quote` agree on every vector
/// argument, so the module's command lines and `sparkctl render docker-run` quote alike.
#[cfg(feature = "system-tests")]
#[test]
fn nix_and_rust_quote_shell_arguments_alike() {
    for v in vectors() {
        let c = parse(&v);
        let nix = nix_eval("map l.escapeShellArg cfg.serve.args", &v.toml);
        let rust: Vec<String> = c.serve.args.iter().map(|a| cluster::shell::quote(a)).collect();
        assert_eq!(nix, serde_json::json!(rust), "vector `{}`", v.name);
    }
}
