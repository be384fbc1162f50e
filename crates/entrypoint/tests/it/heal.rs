//! A group that heals: after ready the head keeps looking at the engine, a wedged one stops the
//! group like a lost node, and the restart budget keeps a failing group from looping.
//!
//! Here the serve command is the stand-in: its `STANDIN_WEDGE_FILE` hangs completions while
//! `/health` stays 200 at an exact moment (what real vLLM does when a worker is stopped).

use crate::harness::*;
use nix::sys::signal::Signal;
use std::time::Duration;

fn failures(path: &std::path::Path) -> Vec<(i64, String)> {
    let v = read_json(path);
    v["failures"].as_array().unwrap().iter().map(|f| (f["code"].as_i64().unwrap(), f["why"].as_str().unwrap().to_owned())).collect()
}

/// Failures recorded in a state file (none when the node never wrote one).
fn recorded(path: &std::path::Path) -> usize {
    if path.exists() {
        failures(path).len()
    } else {
        0
    }
}

fn history(path: &std::path::Path, ages_s: &[u64], why: &str) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let f: Vec<_> = ages_s.iter().map(|a| serde_json::json!({ "at": now - a, "code": 5, "why": why })).collect();
    std::fs::write(path, serde_json::json!({ "failures": f }).to_string()).unwrap();
}

#[test]
fn a_wedged_engine_with_a_healthy_health_endpoint_stops_the_group_and_is_recorded() {
    let pair = Pair::new();
    let wedge = pair.path("wedge");
    let e = [
        ("SPARK_BACKEND", "native"),
        ("SPARK_LIVENESS_INTERVAL", "1"),
        ("SPARK_LIVENESS_TIMEOUT", "2"),
        ("SPARK_LIVENESS_FAILURES", "2"),
        ("STANDIN_WEDGE_FILE", wedge.to_str().unwrap()),
    ];
    let (mut head, mut worker) = formed_group(&pair, &e, "");
    // Healthy looks first: no failure, the group keeps running.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!head.text().contains("look 1 of 2 failed"), "{}", head.text());
    std::fs::write(&wedge, "").unwrap();
    head.wait_for("liveness: look 1 of 2 failed", T);
    // The healthcheck sees it from the first failed look, though /health still says 200.
    let hc = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.head, BIN, "healthcheck", "--status-file", pair.path("status-a.json").to_str().unwrap()])
        .output()
        .unwrap();
    let hc_out = String::from_utf8_lossy(&hc.stdout).to_string();
    assert_eq!(hc.status.code(), Some(1), "{hc_out}");
    assert!(hc_out.starts_with("unhealthy"), "{hc_out}");
    let (hcode, _) = head.wait_exit(T);
    let (wcode, _) = worker.wait_exit(Duration::from_secs(15));
    let (hlog, wlog) = (head.text(), worker.text());
    assert_eq!(hcode, 5, "{hlog}");
    assert!(hlog.contains("the engine is wedged: 2 liveness looks in a row"), "{hlog}");
    assert_eq!(wcode, 3, "the worker stops with the group: {wlog}");
    // Each node counted one failure against its restart budget, with its own cause.
    let (hf, wf) = (failures(&pair.path("restarts-a.json")), failures(&pair.path("restarts-b.json")));
    assert_eq!(hf.len(), 1, "{hf:?}");
    assert_eq!(hf[0].0, 5);
    assert!(hf[0].1.contains("wedged"), "{hf:?}");
    assert_eq!(wf.len(), 1, "{wf:?}");
    assert_eq!(wf[0].0, 3);
    assert!(Pair::pids(&pair.head).is_empty() && Pair::pids(&pair.worker).is_empty(), "processes left behind");
}

#[test]
fn a_restart_waits_a_delay_that_doubles_with_recent_failures() {
    let pair = Pair::new();
    // Two failures in the window (one older than it is ignored): restart 2 of 3, 2 × 1 s.
    history(&pair.path("restarts-a.json"), &[7200, 600, 60], "lost node `b`");
    let e = [("SPARK_BACKEND", "native"), ("SPARK_RESTART_DELAY", "1")];
    let (mut head, mut worker) = start_group(&pair, &e, "");
    let log = head.wait_for("restart 2 of 3 within 3600s", T);
    assert!(log.contains("waiting 2s first"), "{log}");
    assert_eq!(read_json(&pair.path("status-a.json"))["state"], "backoff");
    head.wait_for("READY", T);
    worker.wait_for("headless rank 1", T);
    let st = read_json(&pair.path("status-a.json"));
    assert_eq!((st["restarts_used"].as_u64(), st["restart_budget"].as_u64()), (Some(2), Some(3)), "{st}");
    // A requested stop is not a failure, on the node asked nor on the one it tells: both
    // histories are unchanged.
    head.signal(Signal::SIGTERM);
    head.wait_exit(T);
    let (wcode, _) = worker.wait_exit(T);
    assert_eq!(failures(&pair.path("restarts-a.json")).len(), 3);
    let wlog = worker.text();
    assert_eq!(recorded(&pair.path("restarts-b.json")), 0, "the worker counted the head's requested stop: {wlog}");
    // Still exit 3: the worker's unit restarts it, so the group forms again when the head does.
    assert_eq!(wcode, 3, "{wlog}");
    assert!(wlog.contains("stopped: it is stopping on request: head `a` stopping: received SIGTERM"), "{wlog}");
}

/// The other way round: a signal to the worker (`systemctl stop` there) stops the head without a
/// failure on either node; a lost worker (killed) still counts.
#[test]
fn a_requested_stop_of_the_worker_spends_no_budget_and_a_lost_worker_does() {
    let pair = Pair::new();
    let e = [("SPARK_BACKEND", "native")];
    let (mut head, mut worker) = formed_group(&pair, &e, "");
    worker.signal(Signal::SIGTERM);
    let (wcode, _) = worker.wait_exit(T);
    let (hcode, _) = head.wait_exit(T);
    let hlog = head.text();
    assert_eq!((wcode, hcode), (143, 3), "{hlog}");
    assert!(hlog.contains("node `b` stopped: it is stopping on request: worker `b` stopping: received SIGTERM"), "{hlog}");
    assert!(!hlog.contains("error:"), "a requested stop is logged as no error: {hlog}");
    assert_eq!((recorded(&pair.path("restarts-a.json")), recorded(&pair.path("restarts-b.json"))), (0, 0), "{hlog}");

    let (mut head, mut worker) = formed_group(&pair, &e, "2");
    Pair::kill_all(&pair.worker);
    let _ = worker.wait_exit(T);
    let (hcode, _) = head.wait_exit(T);
    assert_eq!(hcode, 3, "{}", head.text());
    let hf = failures(&pair.path("restarts-a.json"));
    assert_eq!(hf.len(), 1, "{hf:?}");
    assert!(hf[0].1.contains("lost node `b`"), "{hf:?}");
}

#[test]
fn a_spent_budget_keeps_the_node_down_saying_why_until_stopped() {
    let pair = Pair::new();
    history(&pair.path("restarts-a.json"), &[3000, 2000, 1000, 10], "the engine is wedged");
    let e = [("SPARK_BACKEND", "native")];
    let mut head = Node::start(&pair.head, "a", pair.path("a.log"), &env(&pair, "head", "t", &e), &serve("m", &[]));
    let log = head.wait_for("restart budget spent: 4 failures within 3600s (budget: 3 restarts)", T);
    assert!(log.contains("last: exit 5: the engine is wedged"), "{log}");
    // The oldest counted failure (3000 s ago) leaves the one-hour window in 10 minutes.
    assert!(log.contains("or wait 10 min, until the oldest failure leaves the window"), "{log}");
    let st = read_json(&pair.path("status-a.json"));
    assert_eq!(st["state"], "down", "{st}");
    assert!(st["detail"].as_str().unwrap().contains("restarts-a.json"), "the fix names the state file: {st}");
    // It stays down: no rendezvous listener, no serve command, no exit.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!head.text().contains("rendezvous"), "{}", head.text());
    assert!(head.child.try_wait().unwrap().is_none(), "a down node must not exit (the unit would loop)");
    let hc = std::process::Command::new(BIN).args(["healthcheck", "--status-file", pair.path("status-a.json").to_str().unwrap()]).output().unwrap();
    assert_eq!(hc.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&hc.stdout).contains("restart budget spent"), "{hc:?}");
    head.signal(Signal::SIGTERM);
    let (code, took) = head.wait_exit(T);
    assert_eq!(code, 143);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(failures(&pair.path("restarts-a.json")).len(), 4, "stopping a down node is not a new failure");
}
