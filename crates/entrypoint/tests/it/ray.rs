//! Two nodes with real Ray (from PyPI): cluster formation, serve only after Ray reports both
//! nodes, per-node environment on the Ray worker, group failure and a clean stop.
//!
//! The serve command is the **stand-in** (`tests/standin_vllm.py`): vLLM's CPU platform refuses
//! the Ray executor ("current platform cpu does not support ray", vLLM 0.32), so real vLLM
//! cannot run here with this backend. The stand-in asks Ray for its nodes as vLLM does and
//! records its argv and environment. Real vLLM runs the native backend in `vllm.rs`.

// All but `backend_ray_without_a_ray_command_is_refused_before_the_rendezvous` (the binary alone,
// no namespace, no Ray) are system tests; their helpers are unused when they are compiled out.
#![cfg_attr(not(feature = "system-tests"), allow(dead_code, unused_imports))]

use crate::harness::*;
use nix::sys::signal::Signal;
use std::time::Duration;

const FORM: Duration = Duration::from_secs(120);

/// The harness env with `SPARK_BACKEND=ray` (the default is native).
fn ray_env(pair: &Pair, role: &str, token: &str, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    env(pair, role, token, &[&[("SPARK_BACKEND", "ray")], extra].concat())
}

#[cfg(feature = "system-tests")]
#[test]
fn ray_worker_first_survives_a_head_restart_forms_the_cluster_serves_and_head_fails_when_worker_dies() {
    let _heavy = heavy_lock();
    let pair = Pair::new();
    let nccl = format!("{}/../../fixtures/nccl_debug/ib-disabled-by-env-using-network-socket-mpi-noise.txt", env!("CARGO_MANIFEST_DIR"));
    // Worker first: it must wait for the head, whatever the start order.
    let mut worker =
        Node::start(&pair.worker, "b", pair.path("b.log"), &ray_env(&pair, "worker", "s3cret", &[]), &serve("m1", &["--tensor-parallel-size", "2"]));
    worker.wait_for("not reachable yet", Duration::from_secs(20));
    // A first head dies while it waits (for a third node): the worker joins the next one.
    let mut head1 = Node::start(
        &pair.head,
        "a",
        pair.path("a1.log"),
        &ray_env(&pair, "head", "s3cret", &[("SPARK_NODES", "a,b,c")]),
        &serve("m1", &["--tensor-parallel-size", "2"]),
    );
    head1.wait_for("`b` joined from 10.77.0.2 (2/3 nodes)", Duration::from_secs(30));
    head1.signal(Signal::SIGKILL);
    head1.wait_exit(Duration::from_secs(10));
    worker.wait_for("lost the head while waiting", Duration::from_secs(20));
    let mut head = Node::start(
        &pair.head,
        "a",
        pair.path("a.log"),
        &ray_env(&pair, "head", "s3cret", &[("STANDIN_NCCL_LOG", &nccl)]),
        &serve("m1", &["--tensor-parallel-size", "2"]),
    );
    let log = head.wait_for("READY: `m1` answers", FORM);

    // Ray reported both nodes before the serve command started (and the stand-in, like vLLM,
    // checked Ray itself: it would have failed with "exceeds available GPUs").
    let complete = log.find("ray cluster complete: 2 nodes").expect("ray completeness logged");
    let started = log.find("started serve").expect("serve started");
    assert!(complete < started, "serve started before Ray had both nodes:\n{log}");
    assert!(log.contains("ray cluster has 2 nodes"), "{log}");
    assert!(log.contains("WARNING: NCCL transport will be NET/Socket"), "veth rails have no RDMA: loud socket warning expected:\n{log}");
    assert!(log.contains("nccl: process user:852750 of serve uses NET/Socket"), "{log}");

    // The head ran the serve command with the Ray executor and the cluster address.
    let rec = read_json(&pair.path("record-a.json"));
    assert_eq!(rec["env"]["RAY_ADDRESS"], "10.77.0.1:6379");
    assert_eq!(rec["env"]["VLLM_HOST_IP"], HEAD_IP);
    assert!(rec["argv"].as_array().unwrap().iter().any(|a| a == "ray"), "{rec}");
    let nco = read_json(&pair.path("vllm-a/ray_non_carry_over_env_vars.json"));
    for k in ["NCCL_SOCKET_IFNAME", "VLLM_HOST_IP", "NCCL_IB_HCA", "GLOO_SOCKET_IFNAME"] {
        assert!(nco.as_array().unwrap().iter().any(|v| v == k), "{k} missing from {nco}");
    }

    // The Ray worker's processes carry the worker's own rail address, set before `ray start`.
    let raylet = Pair::pids(&pair.worker).into_iter().find(|p| cmdline(*p).contains("raylet")).expect("a raylet runs on the worker");
    let env_w = environ(raylet);
    assert!(env_w.contains(&("VLLM_HOST_IP".into(), WORKER_IP.into())), "{env_w:?}");
    assert!(env_w.contains(&("RAY_memory_monitor_refresh_ms".into(), "0".into())));
    assert!(env_w.contains(&("NCCL_SOCKET_IFNAME".into(), "rail0,rail1".into())));
    // No token file anywhere (fresh homes): Ray's token authentication is on all the same.
    assert!(env_w.contains(&("RAY_AUTH_MODE".into(), "token".into())), "{env_w:?}");
    assert!(!pair.path("home-a/.ray/auth_token").exists() && !pair.path("home-b/.ray/auth_token").exists(), "Ray wrote a token file");

    // Status file and HEALTHCHECK command agree.
    assert_eq!(read_json(&pair.path("status-a.json"))["state"], "ready");
    let hc = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.head, BIN, "healthcheck", "--status-file", &pair.path("status-a.json").display().to_string()])
        .output()
        .unwrap();
    assert!(hc.status.success(), "{}", String::from_utf8_lossy(&hc.stdout));

    // The worker node dies (every process of it): the head stops everything, non-zero, < 10 s.
    Pair::kill_all(&pair.worker);
    let (code, took) = head.wait_exit(Duration::from_secs(15));
    let log = head.text();
    assert_eq!(code, 3, "{log}");
    assert!(took < Duration::from_secs(10), "head took {took:?} to stop:\n{log}");
    assert!(log.contains("lost node `b`"), "{log}");
    assert!(Pair::pids(&pair.head).is_empty(), "processes left on the head: {:?}", Pair::pids(&pair.head).iter().map(|p| cmdline(*p)).collect::<Vec<_>>());
    drop(worker);
}

#[cfg(feature = "system-tests")]
#[test]
fn ray_sigterm_to_head_stops_both_nodes_within_the_grace_period() {
    let _heavy = heavy_lock();
    let pair = Pair::new();
    let mut head =
        Node::start(&pair.head, "a", pair.path("a.log"), &ray_env(&pair, "head", "t", &[("SPARK_GRACE", "8")]), &serve("m2", &["--tensor-parallel-size", "2"]));
    let mut worker = Node::start(&pair.worker, "b", pair.path("b.log"), &ray_env(&pair, "worker", "t", &[]), &serve("m2", &["--tensor-parallel-size", "2"]));
    head.wait_for("READY: `m2` answers", FORM);
    assert!(Pair::pids(&pair.head).len() > 3, "Ray and serve run on the head");

    head.signal(Signal::SIGTERM);
    let (code, took) = head.wait_exit(Duration::from_secs(20));
    let log = head.text();
    assert!(took <= Duration::from_secs(8 + 2), "head took {took:?} (grace 8 s):\n{log}");
    assert_eq!(code, 143, "like tini, the head exits with the serve command's status (SIGTERM):\n{log}");
    assert!(Pair::pids(&pair.head).is_empty(), "left on the head: {:?}", Pair::pids(&pair.head).iter().map(|p| cmdline(*p)).collect::<Vec<_>>());

    // The worker hears the head stop and stops too, non-zero, leaving nothing behind.
    let (wcode, wtook) = worker.wait_exit(Duration::from_secs(15));
    let wlog = worker.text();
    assert_eq!(wcode, 3, "{wlog}");
    assert!(wtook < Duration::from_secs(10), "{wlog}");
    assert!(wlog.contains("head `a` stopping"), "{wlog}");
    // Exit 3 lets the worker's unit restart it (the group forms again with the head), but the
    // head was asked to stop: no failure is recorded on either node.
    assert!(wlog.contains("it is stopping on request"), "{wlog}");
    assert!(!pair.path("restarts-a.json").exists() && !pair.path("restarts-b.json").exists(), "a requested stop was recorded as a failure:\n{wlog}");
    assert!(Pair::pids(&pair.worker).is_empty(), "left on the worker: {:?}", Pair::pids(&pair.worker).iter().map(|p| cmdline(*p)).collect::<Vec<_>>());
}

/// `ray status` against the head from inside `ns`, with the given Ray auth variables (none:
/// an empty home, no token anywhere).
fn ray_status_as(pair: &Pair, ns: &str, home: &str, auth: &[(&str, &str)]) -> (bool, String) {
    let home = pair.path(home);
    std::fs::create_dir_all(&home).unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "ray", "status", "--address", &format!("{HEAD_IP}:6379")])
        .env("HOME", &home)
        .env_remove("RAY_AUTH_MODE")
        .env_remove("RAY_AUTH_TOKEN")
        .env_remove("RAY_AUTH_TOKEN_PATH")
        .envs(auth.iter().copied())
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Ray's own token authentication is on, keyed by a token derived from the cluster token on each
/// node: stray `~/.ray/auth_token` files (different on each node: what a shared or reused home
/// leaves) do not lock the worker out; a client without the token, or with one derived from
/// another cluster token, is refused by the head's Ray; the token is in no log, the cluster
/// token in no child's environment, and the real home gets no `~/.ray`.
#[cfg(feature = "system-tests")]
#[test]
fn ray_token_auth_comes_from_the_cluster_token_whatever_the_token_files_say() {
    let _heavy = heavy_lock();
    let real_token_file = std::path::Path::new(&std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".ray/auth_token");
    let before = std::fs::metadata(&real_token_file).and_then(|m| m.modified()).ok();
    let pair = Pair::new();
    for (home, junk) in [("home-a", "token-left-by-another-cluster-a"), ("home-b", "token-left-by-another-cluster-b")] {
        std::fs::create_dir_all(pair.path(&format!("{home}/.ray"))).unwrap();
        std::fs::write(pair.path(&format!("{home}/.ray/auth_token")), junk).unwrap();
    }
    let cluster_token = "cluster-s3cret";
    let serve_args = serve("m4", &["--tensor-parallel-size", "2"]);
    let mut head = Node::start(&pair.head, "a", pair.path("a.log"), &ray_env(&pair, "head", cluster_token, &[]), &serve_args);
    let mut worker = Node::start(&pair.worker, "b", pair.path("b.log"), &ray_env(&pair, "worker", cluster_token, &[]), &serve_args);
    head.wait_for("READY: `m4` answers", FORM);

    let derived = entrypoint::launch::ray_auth_env(cluster_token);
    let token = derived["RAY_AUTH_TOKEN"].clone();
    let raylet = Pair::pids(&pair.worker).into_iter().find(|p| cmdline(*p).contains("raylet")).expect("a raylet runs on the worker");
    let env_w = environ(raylet);
    assert!(env_w.contains(&("RAY_AUTH_MODE".into(), "token".into())), "{env_w:?}");
    assert!(env_w.contains(&("RAY_AUTH_TOKEN".into(), token.clone())));
    assert!(!env_w.iter().any(|(k, v)| k == "SPARK_TOKEN" || v.contains(cluster_token)), "the cluster token reached a child: {env_w:?}");
    let rec = read_json(&pair.path("record-a.json"));
    assert_eq!(rec["env"]["RAY_AUTH_MODE"], "token", "the serve command (a Ray driver) needs the token: {rec}");
    let nco = read_json(&pair.path("vllm-a/ray_non_carry_over_env_vars.json"));
    assert!(nco.as_array().unwrap().iter().any(|v| v == "RAY_AUTH_TOKEN"), "{nco}");

    // The head's Ray refuses clients without the token or with another cluster's.
    let (ok, out) = ray_status_as(&pair, &pair.worker, "outsider-none", &[]);
    assert!(!ok && out.contains("Authentication token is missing or incorrect"), "{out}");
    let other = entrypoint::launch::ray_auth_env("another-cluster");
    let (ok, out) = ray_status_as(&pair, &pair.worker, "outsider-other", &[("RAY_AUTH_MODE", "token"), ("RAY_AUTH_TOKEN", other["RAY_AUTH_TOKEN"].as_str())]);
    assert!(!ok && out.contains("Authentication token is missing or incorrect"), "{out}");
    let (ok, out) = ray_status_as(&pair, &pair.worker, "insider", &[("RAY_AUTH_MODE", "token"), ("RAY_AUTH_TOKEN", token.as_str())]);
    assert!(ok, "{out}");

    for log in [head.text(), worker.text()] {
        assert!(!log.contains(&token) && !log.contains(cluster_token), "a secret was logged:\n{log}");
    }
    head.signal(Signal::SIGTERM);
    head.wait_exit(Duration::from_secs(20));
    worker.wait_exit(Duration::from_secs(20));
    assert_eq!(std::fs::metadata(&real_token_file).and_then(|m| m.modified()).ok(), before, "the test suite wrote {}", real_token_file.display());
}

/// A worker holding another cluster token never reaches Ray: the rendezvous refuses it.
#[cfg(feature = "system-tests")]
#[test]
fn ray_worker_with_another_cluster_token_is_refused_before_ray_starts() {
    let _heavy = heavy_lock();
    let pair = Pair::new();
    let serve_args = serve("m5", &["--tensor-parallel-size", "2"]);
    let mut head = Node::start(&pair.head, "a", pair.path("a.log"), &ray_env(&pair, "head", "right", &[("SPARK_JOIN_TIMEOUT", "20")]), &serve_args);
    let mut worker = Node::start(&pair.worker, "b", pair.path("b.log"), &ray_env(&pair, "worker", "wrong", &[]), &serve_args);
    let (code, _) = worker.wait_exit(Duration::from_secs(30));
    let wlog = worker.text();
    assert_ne!(code, 0, "{wlog}");
    assert!(wlog.contains("SPARK_TOKEN differs"), "{wlog}");
    assert!(!wlog.contains("started ray"), "the worker started Ray:\n{wlog}");
    head.wait_for("authentication failed", Duration::from_secs(10));
    assert!(Pair::pids(&pair.worker).iter().all(|p| !cmdline(*p).contains("raylet")));
    head.signal(Signal::SIGTERM);
    head.wait_exit(Duration::from_secs(20));
}

/// `backend = ray` on an image without Ray (the NGC bases since 26.05): the real binary stops at
/// start with exit 2 and one `error:` line naming both fixes, before it listens for or dials
/// any peer, and leaves `stopping` with that reason in the status file.
#[test]
fn backend_ray_without_a_ray_command_is_refused_before_the_rendezvous() {
    let dir = tempfile::tempdir().unwrap();
    // A PATH with executables, none of them `ray` (what the plain vllm-spark image has).
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink("/bin/sh", bin.join("python3")).unwrap();
    let status = dir.path().join("status.json");
    for role in ["head", "worker"] {
        let out = std::process::Command::new(BIN)
            .env_clear()
            .env("PATH", &bin)
            .envs([
                ("SPARK_ROLE", role),
                ("SPARK_NODE_NAME", "a"),
                ("SPARK_RAILS", "rail0"),
                ("SPARK_TOKEN", "t"),
                ("SPARK_NODES", "a,b"),
                ("SPARK_HEAD_ADDR", HEAD_IP),
            ])
            .env("SPARK_BACKEND", "ray")
            .env("SPARK_STATUS_FILE", &status)
            .env("SPARK_STATE_FILE", dir.path().join("restarts.json"))
            .args(["--", "vllm", "serve", "m"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{role}: {err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.contains("error:")).collect();
        assert_eq!(errors.len(), 1, "{role}: one error line expected:\n{err}");
        let line = errors[0];
        assert!(line.contains("has no `ray` command"), "{line}");
        assert!(line.contains("backend = \"native\"") && line.contains("images/vllm-spark-ray.toml"), "both fixes named: {line}");
        assert!(!err.contains("rendezvous") && !err.contains("preflight pass") && !err.contains("listening"), "{role}: it went on after the refusal:\n{err}");
        let st = read_json(&status);
        assert_eq!(st["state"], "stopping", "{st}");
        assert!(st["detail"].as_str().unwrap().contains("no `ray` command"), "{st}");
    }
}
