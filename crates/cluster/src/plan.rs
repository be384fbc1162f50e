//! What one node needs, computed once from a [`Cluster`]: its rails, the systemd-networkd
//! settings for them, the per-interface sysctls, the container's environment and the firewall.
//! The renderers format a [`NodePlan`]; serialised to JSON it is the shared test vector that
//! `nix/lib.nix` must reproduce (ARCHITECTURE.md invariant 7), so its field names follow the
//! NixOS options they feed (`matchConfig`, `linkConfig`, `networkConfig`, `trustedInterfaces`).

use crate::derive::declared_env;
use crate::model::{defaults, Cluster, Node, Role};
use serde::Serialize;
use std::collections::BTreeMap;

/// The variables of `spark-entrypoint` (its settings table, `crates/entrypoint/src/settings.rs`) that a
/// node's env file sets from `cluster.toml`. The token itself is never rendered: the token file is
/// mounted read-only at [`TOKEN_PATH`] and `SPARK_TOKEN_FILE` points there.
pub(crate) mod vars {
    /// `head` or `worker`.
    pub(crate) const ROLE: &str = "SPARK_ROLE";
    pub(crate) const NODE_NAME: &str = "SPARK_NODE_NAME";
    /// Every node's name, comma-separated, head first; its length is the expected node count.
    pub(crate) const NODES: &str = "SPARK_NODES";
    /// The head's first rail address: rendezvous, Ray and `--master-addr` go over the rails.
    pub(crate) const HEAD_ADDR: &str = "SPARK_HEAD_ADDR";
    pub(crate) const RENDEZVOUS_PORT: &str = "SPARK_RENDEZVOUS_PORT";
    /// Comma-separated rail netdevs of this node, in rail order.
    pub(crate) const RAILS: &str = "SPARK_RAILS";
    /// The MTU every rail must have (preflight).
    pub(crate) const MTU: &str = "SPARK_MTU";
    /// `auto`, `ib` or `socket`.
    pub(crate) const TRANSPORT: &str = "SPARK_TRANSPORT";
    /// `ray` or `native`.
    pub(crate) const BACKEND: &str = "SPARK_BACKEND";
    /// The cluster token file inside the container.
    pub(crate) const TOKEN_FILE: &str = "SPARK_TOKEN_FILE";
    /// Set when `container.image` is pinned by digest: part of the rendezvous fingerprint.
    pub(crate) const IMAGE_DIGEST: &str = "SPARK_IMAGE_DIGEST";
    /// The model `vllm serve` loads (fingerprint).
    pub(crate) const MODEL: &str = "SPARK_MODEL";
    /// The serve command as a JSON array: `vllm serve <model> <args…> --port <port>`.
    pub(crate) const SERVE: &str = "SPARK_SERVE";
    /// The OpenAI-compatible API port the readiness probe asks.
    pub(crate) const API_PORT: &str = "SPARK_API_PORT";
}

/// Where the token file is mounted in the container (read-only).
pub(crate) const TOKEN_PATH: &str = "/run/secrets/spark-cluster-token";

/// The full serve command the entrypoint runs on the head (and compares across nodes).
pub(crate) fn serve_command(c: &Cluster) -> Vec<String> {
    let mut cmd = vec!["vllm".to_owned(), "serve".to_owned(), c.serve.model.clone()];
    cmd.extend(c.serve.args.iter().cloned());
    cmd.extend(["--port".to_owned(), c.serve.port.to_string()]);
    cmd
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlanRail {
    pub(crate) interface: String,
    pub(crate) address: String,
    pub(crate) prefix_length: u8,
    pub(crate) rdma_device: Option<String>,
}

/// One `systemd.network.networks.<name>` entry (and what `netplan generate` must also produce).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    pub(crate) match_config: BTreeMap<String, String>,
    pub(crate) address: Vec<String>,
    /// `[Link]` settings (the MTU).
    pub link_config: BTreeMap<String, String>,
    /// `[Network]` settings.
    pub network_config: NetworkConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
/// The `[Network]` settings of a rail.
pub struct NetworkConfig {
    /// `no` with IPv6 off (no link-local at all: stable RoCE GIDs), else `ipv6`.
    #[serde(rename = "LinkLocalAddressing")]
    pub link_local_addressing: String,
    #[serde(rename = "IPv6AcceptRA")]
    pub(crate) ipv6_accept_ra: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
/// The firewall settings of a node.
pub struct Firewall {
    /// The rails are point-to-point cluster links: Ray, NCCL and the rendezvous use many ports.
    pub(crate) trusted_interfaces: Vec<String>,
    /// The API port on the head.
    #[serde(rename = "allowedTCPPorts")]
    pub allowed_tcp_ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
/// Everything one node gets: networks, sysctls, the entrypoint's env and the firewall.
pub struct NodePlan {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) rails: Vec<PlanRail>,
    /// The rails' networkd entries, by unit name.
    pub networks: BTreeMap<String, Network>,
    /// The sysctls, by key.
    pub sysctl: BTreeMap<String, u8>,
    /// The entrypoint's environment.
    pub env: BTreeMap<String, String>,
    /// The firewall settings.
    pub firewall: Firewall,
}

/// The networkd unit name of a rail: sorts before NixOS' `99-ethernet-default-dhcp`.
pub fn network_name(interface: &str) -> String {
    format!("30-rail-{interface}")
}

/// The plan of `node` in cluster `c`.
pub fn node_plan(c: &Cluster, node: &Node) -> NodePlan {
    let mut networks = BTreeMap::new();
    let mut sysctl = BTreeMap::new();
    for r in &node.rails {
        let i = &r.interface;
        networks.insert(
            network_name(i),
            Network {
                match_config: BTreeMap::from([("Name".to_owned(), i.clone())]),
                address: vec![r.address.to_string()],
                link_config: BTreeMap::from([("MTUBytes".to_owned(), c.mtu.to_string())]),
                network_config: NetworkConfig { link_local_addressing: if c.disable_ipv6 { "no" } else { "ipv6" }.to_owned(), ipv6_accept_ra: false },
            },
        );
        // ARP flux: twins may share an L2 segment.
        sysctl.insert(format!("net.ipv4.conf.{i}.arp_ignore"), 1);
        sysctl.insert(format!("net.ipv4.conf.{i}.arp_announce"), 2);
        if c.disable_ipv6 {
            sysctl.insert(format!("net.ipv6.conf.{i}.disable_ipv6"), 1);
        }
    }
    NodePlan {
        name: node.name.clone(),
        role: node.role,
        rails: node
            .rails
            .iter()
            .map(|r| PlanRail {
                interface: r.interface.clone(),
                address: r.address.addr.to_string(),
                prefix_length: r.address.prefix,
                rdma_device: r.rdma_device.clone(),
            })
            .collect(),
        networks,
        sysctl,
        env: container_env(c, node),
        firewall: Firewall {
            trusted_interfaces: node.rails.iter().map(|r| r.interface.clone()).collect(),
            allowed_tcp_ports: if node.role == Role::Head { vec![c.serve.port] } else { Vec::new() },
        },
    }
}

/// The container's environment: the user's extra variables, then what the rails derive
/// (`declared_env`), then the entrypoint's configuration (`vars`); later ones win, and
/// validation already refused user variables that would collide.
pub fn container_env(c: &Cluster, node: &Node) -> BTreeMap<String, String> {
    let mut env = c.container.env.clone();
    env.insert("HF_HOME".into(), defaults::HF_HOME.into());
    env.extend(declared_env(&node.derive_rails()));
    let head = c.head();
    let mut names = vec![head.name.as_str()];
    names.extend(c.nodes.iter().filter(|n| n.role != Role::Head).map(|n| n.name.as_str()));
    let mut set = vec![
        (vars::ROLE, node.role.as_str().to_owned()),
        (vars::NODE_NAME, node.name.clone()),
        (vars::NODES, names.join(",")),
        (vars::HEAD_ADDR, head.rail_addr().to_string()),
        (vars::RENDEZVOUS_PORT, c.rendezvous_port.to_string()),
        (vars::RAILS, node.rails.iter().map(|r| r.interface.as_str()).collect::<Vec<_>>().join(",")),
        (vars::MTU, c.mtu.to_string()),
        (vars::TRANSPORT, c.transport.as_str().to_owned()),
        (vars::BACKEND, c.backend.as_str().to_owned()),
        (vars::TOKEN_FILE, TOKEN_PATH.to_owned()),
        (vars::MODEL, c.serve.model.clone()),
        (vars::SERVE, serde_json::to_string(&serve_command(c)).expect("strings serialise")),
        (vars::API_PORT, c.serve.port.to_string()),
    ];
    if let Some((_, digest)) = c.container.image.split_once('@') {
        set.push((vars::IMAGE_DIGEST, digest.to_owned()));
    }
    env.extend(set.into_iter().map(|(k, v)| (k.to_owned(), v)));
    env
}

/// Every node's plan, keyed by node name: the shape of a test vector's `expected.json`.
pub fn cluster_plans(c: &Cluster) -> BTreeMap<String, NodePlan> {
    c.nodes.iter().map(|n| (n.name.clone(), node_plan(c, n))).collect()
}
