//! The IB branch on real processes: rails that pass the RDMA checks (a root prefix with the
//! RDMA that veth pairs lack) give the serve command both twins in `NCCL_IB_HCA`, and NCCL
//! output (real `NCCL_DEBUG=INFO` logs replayed by the stand-in) is reported per process, with a
//! loud warning when NCCL falls back to sockets.
//!
//! The serve command is the **stand-in**: it replays real NCCL logs on demand; vLLM on a CPU uses
//! gloo, never NCCL.

use crate::harness::*;
use nix::sys::signal::Signal;
use std::time::Duration;

fn run_head(pair: &Pair, tag: &str, nccl_log: &str) -> (String, serde_json::Value) {
    let root = rdma_root(pair.dir.path(), 1);
    let record = pair.path(&format!("record-{tag}.json"));
    let e = env(
        pair,
        "head",
        "t",
        &[
            ("SPARK_BACKEND", "native"),
            ("SPARK_NODES", "a"),
            ("SPARK_TRANSPORT", "ib"),
            ("SPARK_ROOT", &root.display().to_string()),
            ("STANDIN_NCCL_LOG", &fixture(nccl_log)),
            ("STANDIN_RECORD", &record.display().to_string()),
        ],
    );
    let mut head = Node::start(&pair.head, "a", pair.path(&format!("{tag}.log")), &e, &serve("m", &[]));
    let log = head.wait_for("READY", Duration::from_secs(30));
    head.signal(Signal::SIGTERM);
    head.wait_exit(Duration::from_secs(25));
    (log, read_json(&record))
}

#[test]
fn ib_rails_give_both_twins_and_a_socket_fallback_is_flagged_loudly() {
    let pair = Pair::new();
    let (log, rec) = run_head(&pair, "socket", "nccl_debug/ib-disabled-by-env-using-network-socket-mpi-noise.txt");
    assert!(log.contains("preflight: NCCL transport NET/IB over every rail"), "{log}");
    assert_eq!(rec["env"]["NCCL_IB_HCA"], "rocep1s0f1:1,roceP2p1s0f1:1");
    assert_eq!(rec["env"]["UCX_NET_DEVICES"], "rocep1s0f1:1,roceP2p1s0f1:1");
    assert!(rec["env"]["NCCL_IB_DISABLE"].is_null(), "{rec}");
    assert!(log.contains("WARNING: nccl: process user:852750 of serve uses NET/Socket although the rails passed the RDMA checks"), "{log}");

    let (log, _) = run_head(&pair, "ib", "nccl_debug/dgx-spark-nccl-2.30.7-ib-hca-set-to-roce-two-rails.txt");
    assert!(log.contains("nccl: process spark-9f8f:315 of serve uses NET/IB"), "{log}");
    assert!(log.contains("nccl: process spark-506c:250 of serve uses NET/IB"), "{log}");
    assert!(!log.contains("fell back"), "{log}");
}
