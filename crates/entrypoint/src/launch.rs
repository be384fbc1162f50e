//! What gets started, as pure functions of the configuration: the `ray start` command lines, the
//! serve command with the backend's arguments, vLLM's non-carry-over list, and the reading of
//! `ray status` (are all nodes and GPUs there?).

use cluster::derive::NODE_SPECIFIC_VARS;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

pub(crate) fn ray_head(ip: Ipv4Addr, port: u16, extra: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ["ray", "start", "--head", "--block", "--disable-usage-stats", "--include-dashboard=false"].map(String::from).to_vec();
    v.extend(["--node-ip-address".into(), ip.to_string(), "--port".into(), port.to_string()]);
    v.extend(extra.iter().cloned());
    v
}

pub(crate) fn ray_worker(ip: Ipv4Addr, head: Ipv4Addr, port: u16, extra: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ["ray", "start", "--block", "--disable-usage-stats"].map(String::from).to_vec();
    v.extend(["--address".into(), format!("{head}:{port}"), "--node-ip-address".into(), ip.to_string()]);
    v.extend(extra.iter().cloned());
    v
}

/// Ray's token authentication (Ray ≥ 2.52): on every node, with a token derived from the
/// cluster token, so no node needs a `~/.ray/auth_token` and a stray one cannot lock a node out
/// (`RAY_AUTH_TOKEN` wins over the file). Set on the `ray` processes, `ray status` and the serve
/// command (a Ray driver); never logged, never sent, and kept out of vLLM's head-to-worker copy.
pub(crate) const RAY_AUTH_VARS: [&str; 2] = ["RAY_AUTH_MODE", "RAY_AUTH_TOKEN"];

/// The Ray authentication variables derived from the cluster token.
pub fn ray_auth_env(cluster_token: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (RAY_AUTH_VARS[0].to_owned(), "token".to_owned()),
        (RAY_AUTH_VARS[1].to_owned(), crate::proto::derived_secret(cluster_token, "ray-auth-token")),
    ])
}

pub(crate) fn ray_status(head: Ipv4Addr, port: u16) -> Vec<String> {
    vec!["ray".into(), "status".into(), "--address".into(), format!("{head}:{port}")]
}

/// The head's serve command under Ray: the Ray executor is made explicit when it is not given.
pub(crate) fn serve_ray(serve: &[String]) -> Vec<String> {
    let mut v = serve.to_vec();
    if !v.iter().any(|a| a.starts_with("--distributed-executor-backend")) {
        v.extend(["--distributed-executor-backend".into(), "ray".into()]);
    }
    v
}

/// vLLM's native multi-node arguments (no Ray): every node runs the serve command with its rank;
/// workers run headless (no API server).
pub(crate) fn serve_native(serve: &[String], nnodes: usize, rank: u32, master: Ipv4Addr, master_port: u16) -> Vec<String> {
    let mut v = serve.to_vec();
    v.extend([
        "--nnodes".into(),
        nnodes.to_string(),
        "--node-rank".into(),
        rank.to_string(),
        "--master-addr".into(),
        master.to_string(),
        "--master-port".into(),
        master_port.to_string(),
    ]);
    if rank > 0 {
        v.push("--headless".into());
    }
    v
}

/// Content of `$VLLM_CONFIG_ROOT/ray_non_carry_over_env_vars.json`: the variables vLLM's Ray
/// executor must not copy from the head to the workers (each node keeps its own).
pub(crate) fn non_carry_over_json() -> String {
    let mut vars: Vec<&str> = NODE_SPECIFIC_VARS.to_vec();
    // Each node sets its own; a secret is not copied around.
    vars.push(RAY_AUTH_VARS[1]);
    vars.sort_unstable();
    serde_json::to_string(&vars).expect("strings serialise")
}

/// Where vLLM reads its config: `VLLM_CONFIG_ROOT`, else `$XDG_CONFIG_HOME/vllm`, else
/// `$HOME/.config/vllm` (vLLM's own resolution).
pub(crate) fn vllm_config_root(env: &dyn Fn(&str) -> Option<String>) -> std::path::PathBuf {
    if let Some(r) = env("VLLM_CONFIG_ROOT").filter(|s| !s.is_empty()) {
        return r.into();
    }
    let base = env("XDG_CONFIG_HOME").filter(|s| !s.is_empty()).unwrap_or_else(|| format!("{}/.config", env("HOME").unwrap_or_else(|| "/root".into())));
    std::path::Path::new(&base).join("vllm")
}

/// `ray status` is read by the one parser in `cluster` (saturating node counts, memory kept
/// apart from the object store).
pub(crate) use cluster::tools::ray_status::parse as parse_ray_status;

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> String {
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel)).unwrap()
    }

    #[test]
    fn ray_status_formats() {
        let one = parse_ray_status(&fixture("ray/ray-status-new-format-active-total-usage-no-gpu.txt"));
        assert_eq!(one.nodes, 1);
        assert_eq!(one.total("CPU"), 8.0);
        assert_eq!(one.total("GPU"), 0.0);
        assert!(one.complete(1, 1), "no GPU anywhere: CPUs count");
        assert!(!one.complete(2, 1));

        let flat = parse_ray_status(&fixture("ray/ray-status-2node-2gpu-flattened-from-vllm-issue-1401.txt"));
        assert_eq!((flat.nodes, flat.total("GPU")), (2, 2.0));
        assert!(flat.complete(2, 1));
        assert!(!flat.complete(2, 2));

        // Two nodes, but one node's GPU is missing (the gpustack case): not complete.
        let pending = parse_ray_status(&fixture("vllm_multinode/vllm-v1-enginecore-waiting-placement-group-plus-ray-status-pending-demands.txt"));
        assert_eq!((pending.nodes, pending.total("GPU")), (2, 1.0));
        assert!(!pending.complete(2, 1));
    }

    #[test]
    fn ray_auth_token_is_derived_from_the_cluster_token_and_reveals_nothing() {
        let a = ray_auth_env("s3cret");
        assert_eq!(a["RAY_AUTH_MODE"], "token");
        let t = &a["RAY_AUTH_TOKEN"];
        assert_eq!(t.len(), 64);
        assert!(!t.contains("s3cret"));
        assert_eq!(t, &ray_auth_env("s3cret")["RAY_AUTH_TOKEN"], "every node derives the same token");
        assert_ne!(t, &ray_auth_env("s3cret2")["RAY_AUTH_TOKEN"]);
        // Not the rendezvous MAC key material either: another purpose gives another secret.
        assert_ne!(t, &crate::proto::derived_secret("s3cret", "other"));
    }

    #[test]
    fn command_lines() {
        let ip = Ipv4Addr::new(10, 0, 0, 2);
        let head = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(ray_worker(ip, head, 6379, &[]).join(" "), "ray start --block --disable-usage-stats --address 10.0.0.1:6379 --node-ip-address 10.0.0.2");
        let serve: Vec<String> = ["vllm", "serve", "m"].map(String::from).to_vec();
        assert_eq!(
            serve_native(&serve, 2, 1, head, 29501).join(" "),
            "vllm serve m --nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --master-port 29501 --headless"
        );
        assert!(!serve_native(&serve, 2, 0, head, 29501).contains(&"--headless".to_owned()));
        assert_eq!(serve_ray(&serve).join(" "), "vllm serve m --distributed-executor-backend ray");
        let given: Vec<String> = ["vllm", "serve", "m", "--distributed-executor-backend=ray"].map(String::from).to_vec();
        assert_eq!(serve_ray(&given), given);
    }

    #[test]
    fn non_carry_over_lists_the_node_specific_variables() {
        let v: Vec<String> = serde_json::from_str(&non_carry_over_json()).unwrap();
        for k in ["NCCL_SOCKET_IFNAME", "NCCL_IB_HCA", "VLLM_HOST_IP", "GLOO_SOCKET_IFNAME", "UCX_NET_DEVICES", "RAY_AUTH_TOKEN"] {
            assert!(v.iter().any(|x| x == k), "{k}");
        }
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(vllm_config_root(&env), std::path::PathBuf::from("/home/u/.config/vllm"));
    }
}
