//! The one place where a node's rails turn into the environment NCCL, Gloo, UCX and vLLM read
//! (ARCHITECTURE.md invariant 7). The renderers (env file, docker run, NixOS vectors) and the entrypoint's
//! preflight (rails found at run time) both call `node_env`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// One RoCE rail of a node: a CX-7 twin netdev, its RDMA device and its IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rail {
    /// Linux netdev, e.g. `enp1s0f1np1`.
    pub(crate) netdev: String,
    /// RDMA device behind the netdev, e.g. `rocep1s0f1`; `None` when unknown (no RDMA).
    pub(crate) rdma_device: Option<String>,
    /// The rail's IPv4 address on its own subnet.
    pub ipv4: Ipv4Addr,
    /// Port of the RDMA device the rail uses (1 on CX-7).
    pub(crate) port: u8,
}

/// Names of the variables that are node-specific: vLLM's Ray executor must not copy them from the
/// head to the workers (the executor copies env vars from the head to the workers by prefix).
pub const NODE_SPECIFIC_VARS: &[&str] = &["NCCL_IB_HCA", "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "UCX_NET_DEVICES", "VLLM_HOST_IP", "NCCL_IB_DISABLE"];

/// The environment a node derives from its rails, in rail order.
///
/// `NCCL_IB_HCA` lists every rail's RDMA device with its port (both twins, or bandwidth halves);
/// rails without an RDMA device are left out of it, and when none has one `NCCL_IB_DISABLE=1`
/// makes the socket fallback explicit. The first rail's address is the node's `VLLM_HOST_IP`.
pub(crate) fn node_env(rails: &[Rail]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if rails.is_empty() {
        return env;
    }
    let netdevs: Vec<&str> = rails.iter().map(|r| r.netdev.as_str()).collect();
    let ifnames = netdevs.join(",");
    env.insert("NCCL_SOCKET_IFNAME".to_owned(), ifnames.clone());
    env.insert("GLOO_SOCKET_IFNAME".to_owned(), netdevs[0].to_owned());
    env.insert("VLLM_HOST_IP".to_owned(), rails[0].ipv4.to_string());
    let hcas: Vec<String> = rails.iter().filter_map(|r| r.rdma_device.as_ref().map(|d| format!("{d}:{}", r.port))).collect();
    if hcas.is_empty() {
        env.insert("NCCL_IB_DISABLE".to_owned(), "1".to_owned());
        env.insert("UCX_NET_DEVICES".to_owned(), ifnames);
    } else {
        env.insert("NCCL_IB_HCA".to_owned(), hcas.join(","));
        env.insert("UCX_NET_DEVICES".to_owned(), hcas.join(","));
    }
    env
}

/// The variables that only the RDMA devices decide (which HCAs, or none at all).
pub(crate) const RDMA_DERIVED_VARS: &[&str] = &["NCCL_IB_HCA", "UCX_NET_DEVICES", "NCCL_IB_DISABLE"];

/// The environment a node's *declared* rails give, for files rendered ahead of time.
///
/// Where every rail names its RDMA device this is [`node_env`]. Where one does not, the device is
/// resolved from the netdev on the node at start (names differ between OS images), so the variables
/// of [`RDMA_DERIVED_VARS`] are left to the entrypoint instead of guessing "no RDMA" here.
pub(crate) fn declared_env(rails: &[Rail]) -> BTreeMap<String, String> {
    let mut env = node_env(rails);
    if rails.iter().any(|r| r.rdma_device.is_none()) {
        env.retain(|k, _| !RDMA_DERIVED_VARS.contains(&k.as_str()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rail(netdev: &str, dev: Option<&str>, ip: [u8; 4]) -> Rail {
        Rail { netdev: netdev.into(), rdma_device: dev.map(Into::into), ipv4: ip.into(), port: 1 }
    }

    #[test]
    fn both_twins_are_listed_in_nccl_ib_hca() {
        let env = node_env(&[rail("enp1s0f1np1", Some("rocep1s0f1"), [192, 168, 100, 10]), rail("enP2p1s0f1np1", Some("roceP2p1s0f1"), [192, 168, 101, 10])]);
        assert_eq!(env["NCCL_IB_HCA"], "rocep1s0f1:1,roceP2p1s0f1:1");
        assert_eq!(env["NCCL_SOCKET_IFNAME"], "enp1s0f1np1,enP2p1s0f1np1");
        assert_eq!(env["GLOO_SOCKET_IFNAME"], "enp1s0f1np1");
        assert_eq!(env["VLLM_HOST_IP"], "192.168.100.10");
        assert!(!env.contains_key("NCCL_IB_DISABLE"));
    }

    #[test]
    fn no_rdma_device_means_explicit_socket_fallback() {
        let env = node_env(&[rail("eth1", None, [10, 0, 0, 1])]);
        assert_eq!(env["NCCL_IB_DISABLE"], "1");
        assert!(!env.contains_key("NCCL_IB_HCA"));
    }

    #[test]
    fn declared_env_leaves_hca_choice_to_run_time_when_a_device_is_not_named() {
        let rails = [rail("enp1s0f1np1", Some("rocep1s0f1"), [10, 0, 0, 1]), rail("enP2p1s0f1np1", None, [10, 0, 1, 1])];
        let env = declared_env(&rails);
        for k in RDMA_DERIVED_VARS {
            assert!(!env.contains_key(*k), "{k} must be resolved at run time");
        }
        assert_eq!(env["NCCL_SOCKET_IFNAME"], "enp1s0f1np1,enP2p1s0f1np1");
        let all = [rails[0].clone(), rail("enP2p1s0f1np1", Some("roceP2p1s0f1"), [10, 0, 1, 1])];
        assert_eq!(declared_env(&all), node_env(&all));
    }

    #[test]
    fn every_derived_variable_is_marked_node_specific() {
        let env = node_env(&[rail("eth1", None, [10, 0, 0, 1]), rail("eth2", Some("mlx5_0"), [10, 0, 1, 1])]);
        for k in env.keys() {
            assert!(NODE_SPECIFIC_VARS.contains(&k.as_str()), "{k} is derived per node but not marked node-specific");
        }
    }
}
