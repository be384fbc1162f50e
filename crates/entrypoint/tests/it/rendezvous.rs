//! Rendezvous between two namespaces with the `native` backend (no Ray needed): head restart,
//! refusals, timeouts, and the arguments vLLM's native multi-node mode receives.
//!
//! The serve command is the **stand-in**: refused, timed-out and preflight-failed nodes never
//! start it; the others test the entrypoint's rendezvous and heartbeats, for which a serve
//! command ready in a second (instead of real vLLM's minute on 2 cores) and its recorded argv and
//! environment are what is needed. Real vLLM with the same native arguments: `vllm.rs`.

// All but `bad_configuration_is_one_error_line_and_exit_2` (the binary alone, no namespace) are
// system tests; their helpers are unused when they are compiled out.
#![cfg_attr(not(feature = "system-tests"), allow(dead_code, unused_imports))]

use crate::harness::*;
use nix::sys::signal::Signal;
use std::time::Duration;

#[cfg(feature = "system-tests")]
#[test]
fn head_restart_during_the_wait_is_survived_and_native_ranks_reach_the_serve_command() {
    let pair = Pair::new();
    let native = [("SPARK_BACKEND", "native")];
    // First head expects a third node that never comes: it is still waiting when it dies.
    let env1 = env(&pair, "head", "tok", &[("SPARK_BACKEND", "native"), ("SPARK_NODES", "a,b,c")]);
    let mut head1 = Node::start(&pair.head, "a", pair.path("a1.log"), &env1, &serve("m3", &[]));
    // A stale value from a rendered env file: the rails found at run time (no RDMA) must win.
    let wenv = env(&pair, "worker", "tok", &[("SPARK_BACKEND", "native"), ("NCCL_IB_HCA", "rocep1s0f1:1,roceP2p1s0f1:1")]);
    let mut worker = Node::start(&pair.worker, "b", pair.path("b.log"), &wenv, &serve("m3", &[]));
    head1.wait_for("`b` joined from 10.77.0.2 (2/3 nodes)", T);
    worker.wait_for("waiting for the release", T);
    head1.signal(Signal::SIGKILL);
    head1.wait_exit(T);
    worker.wait_for("lost the head while waiting", T);

    // The restarted head (now expecting a and b) gets the same worker back and releases it.
    let mut head2 = Node::start(&pair.head, "a", pair.path("a2.log"), &env(&pair, "head", "tok", &native), &serve("m3", &[]));
    head2.wait_for("READY: `m3` answers", T);
    let wlog = worker.wait_for("released by the head (rank 1)", T);
    assert_eq!(wlog.matches("joined the head at 10.77.0.1:29450").count(), 2, "{wlog}");

    // vLLM native multi-node arguments, checked by the stand-in and recorded.
    let a = read_json(&pair.path("record-a.json"));
    let b = read_json(&pair.path("record-b.json"));
    let argv = |v: &serde_json::Value| v["argv"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect::<Vec<_>>().join(" ");
    assert_eq!(argv(&a), "serve m3 --nnodes 2 --node-rank 0 --master-addr 10.77.0.1 --master-port 29501");
    assert_eq!(argv(&b), "serve m3 --nnodes 2 --node-rank 1 --master-addr 10.77.0.1 --master-port 29501 --headless");
    // Each node's own rail environment.
    assert_eq!(a["env"]["VLLM_HOST_IP"], HEAD_IP);
    assert_eq!(b["env"]["VLLM_HOST_IP"], WORKER_IP);
    assert_eq!(b["env"]["NCCL_SOCKET_IFNAME"], "rail0,rail1");
    assert_eq!(b["env"]["NCCL_IB_DISABLE"], "1");
    assert!(b["env"]["NCCL_IB_HCA"].is_null(), "inherited NCCL_IB_HCA survived: {b}");
    // The cluster secret is not handed down to the serve command.
    assert!(a["env"]["SPARK_TOKEN"].is_null() && b["env"]["SPARK_TOKEN"].is_null(), "{a} {b}");
    assert_eq!(read_json(&pair.path("status-b.json"))["state"], "ready");
}

#[cfg(feature = "system-tests")]
#[test]
fn wrong_token_is_refused_with_a_clear_error() {
    let pair = Pair::new();
    let native = [("SPARK_BACKEND", "native")];
    let mut head = Node::start(&pair.head, "a", pair.path("a.log"), &env(&pair, "head", "right", &native), &serve("m", &[]));
    head.wait_for("rendezvous: listening", T);
    let mut worker = Node::start(&pair.worker, "b", pair.path("b.log"), &env(&pair, "worker", "wrong", &native), &serve("m", &[]));
    let (code, _) = worker.wait_exit(T);
    let wlog = worker.text();
    assert_eq!(code, 2, "{wlog}");
    assert!(wlog.contains("refused `b`: authentication failed: the head's SPARK_TOKEN differs from this node's"), "{wlog}");
    head.wait_for("refused `b` from 10.77.0.2: authentication failed", T);
    assert!(head.child.try_wait().unwrap().is_none(), "the head keeps waiting for a correct worker");
}

#[cfg(feature = "system-tests")]
#[test]
fn fingerprint_mismatch_is_refused_naming_both_values() {
    let pair = Pair::new();
    let native = [("SPARK_BACKEND", "native")];
    let mut head = Node::start(&pair.head, "a", pair.path("a.log"), &env(&pair, "head", "t", &native), &serve("m", &["--max-model-len", "4096"]));
    head.wait_for("rendezvous: listening", T);
    let mut worker = Node::start(&pair.worker, "b", pair.path("b.log"), &env(&pair, "worker", "t", &native), &serve("m", &["--max-model-len", "8192"]));
    let (code, _) = worker.wait_exit(T);
    let wlog = worker.text();
    assert_eq!(code, 2, "{wlog}");
    let s = standin();
    let want = format!("fingerprint mismatch: serve command is `python3 {s} serve m --max-model-len 4096` on the head `a` but `python3 {s} serve m --max-model-len 8192` on `b`");
    assert!(wlog.contains(&want), "{wlog}");
    head.wait_for("fingerprint mismatch", T);

    // An image digest mismatch names the digests.
    let mut w2 = Node::start(
        &pair.worker,
        "b",
        pair.path("b2.log"),
        &env(&pair, "worker", "t", &[("SPARK_BACKEND", "native"), ("SPARK_IMAGE_DIGEST", "sha256:bbb")]),
        &serve("m", &["--max-model-len", "4096"]),
    );
    assert_eq!(w2.wait_exit(T).0, 2);
    assert!(w2.text().contains("image digest is `unknown` on the head `a` but `sha256:bbb` on `b`"), "{}", w2.text());
}

#[cfg(feature = "system-tests")]
#[test]
fn join_timeout_names_the_missing_nodes() {
    let pair = Pair::new();
    let e = env(&pair, "head", "t", &[("SPARK_BACKEND", "native"), ("SPARK_NODES", "a,b,c"), ("SPARK_JOIN_TIMEOUT", "2")]);
    let mut head = Node::start(&pair.head, "a", pair.path("a.log"), &e, &serve("m", &[]));
    let (code, _) = head.wait_exit(T);
    let log = head.text();
    assert_eq!(code, 4, "{log}");
    assert!(log.contains("missing node(s): b, c (joined: none)"), "{log}");
    assert_eq!(read_json(&pair.path("status-a.json"))["state"], "stopping");
}

#[cfg(feature = "system-tests")]
#[test]
fn ib_demanded_on_rails_without_rdma_is_refused_by_preflight() {
    let pair = Pair::new();
    let e = env(&pair, "head", "t", &[("SPARK_TRANSPORT", "ib"), ("SPARK_NODES", "a")]);
    let mut head = Node::start(&pair.head, "a", pair.path("a.log"), &e, &serve("m", &[]));
    let (code, _) = head.wait_exit(T);
    let log = head.text();
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("preflight failed") && log.contains("rdma on `rail0`: no RDMA device behind the netdev"), "{log}");
    assert!(!log.contains("rendezvous: listening"), "nothing starts after a failed preflight");
}

#[test]
fn bad_configuration_is_one_error_line_and_exit_2() {
    let out = std::process::Command::new(BIN).env_clear().args(["--role", "head", "--rails", "r0", "--token", "t", "--", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: missing `SPARK_NODES` (`--nodes`): on the head, list every node's name"), "{err}");
}

#[cfg(feature = "system-tests")]
#[test]
fn a_pulled_cable_is_detected_by_heartbeat_silence_on_both_nodes() {
    let pair = Pair::new();
    let e = [("SPARK_BACKEND", "native"), ("SPARK_HEARTBEAT_TIMEOUT", "2")];
    let (mut head, mut worker) = formed_group(&pair, &e, "");
    // No FIN, no RST: the rail just goes dark (the rendezvous runs over rail0).
    let st = std::process::Command::new("ip").args(["-n", &pair.worker, "link", "set", "rail0", "down"]).status().unwrap();
    assert!(st.success());
    let (hcode, htook) = head.wait_exit(Duration::from_secs(15));
    let (wcode, wtook) = worker.wait_exit(Duration::from_secs(15));
    let (hlog, wlog) = (head.text(), worker.text());
    assert_eq!((hcode, wcode), (3, 3), "{hlog}\n{wlog}");
    assert!(hlog.contains("lost node `b`: no heartbeat for 2s"), "{hlog}");
    assert!(wlog.contains("no heartbeat for 2s"), "{wlog}");
    assert!(htook < Duration::from_secs(10) && wtook < Duration::from_secs(10), "{htook:?} {wtook:?}");
    assert!(Pair::pids(&pair.head).is_empty() && Pair::pids(&pair.worker).is_empty());
}

#[cfg(feature = "system-tests")]
#[test]
fn head_power_cut_after_release_stops_the_worker() {
    let pair = Pair::new();
    let native = [("SPARK_BACKEND", "native")];
    let (_head, mut worker) = formed_group(&pair, &native, "");
    Pair::kill_all(&pair.head);
    let (code, took) = worker.wait_exit(Duration::from_secs(15));
    let wlog = worker.text();
    assert_eq!(code, 3, "{wlog}");
    assert!(took < Duration::from_secs(10), "{took:?}\n{wlog}");
    assert!(wlog.contains("lost node `head`"), "{wlog}");
    assert!(Pair::pids(&pair.worker).is_empty(), "the headless serve was left behind");
}
