//! PID 1 duties on a single node: orphans re-parented to the entrypoint and reaped, and a
//! stop that leaves nothing behind.
//!
//! The serve command is the **stand-in**: it leaves orphans on demand (`STANDIN_ORPHANS`), and
//! a shell that ignores SIGTERM wraps it; real vLLM does neither on demand.

use crate::harness::*;
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn orphaned_grandchildren_are_adopted_and_reaped_no_zombies() {
    let pair = Pair::new();
    let pids_file = pair.path("orphans.json");
    let e = env(
        &pair,
        "head",
        "t",
        &[("SPARK_BACKEND", "native"), ("SPARK_NODES", "a"), ("STANDIN_ORPHANS", "3"), ("STANDIN_ORPHAN_PIDS", &pids_file.display().to_string())],
    );
    let mut head = Node::start(&pair.head, "a", pair.path("a.log"), &e, &serve("m", &[]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pids_file.exists() {
        assert!(Instant::now() < deadline, "no orphans were made:\n{}", head.text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let orphans: Vec<u32> = serde_json::from_value(read_json(&pids_file)).unwrap();
    assert_eq!(orphans.len(), 3);
    // While they live (1 s), their parent is the entrypoint: it is their subreaper.
    for p in &orphans {
        assert_eq!(ppid(*p), Some(head.pid()), "orphan {p} was not re-parented to the entrypoint");
    }
    std::thread::sleep(Duration::from_millis(2500));
    // They exited; the entrypoint reaped them: not even a zombie is left.
    for p in &orphans {
        assert!(!std::path::Path::new(&format!("/proc/{p}")).exists(), "orphan {p} is still in the process table (zombie not reaped)");
    }
    head.wait_for("READY", Duration::from_secs(30));
    head.signal(Signal::SIGTERM);
    let (code, _) = head.wait_exit(Duration::from_secs(25));
    assert_eq!(code, 143, "{}", head.text());
    assert!(Pair::pids(&pair.head).is_empty());
}

#[test]
fn sigterm_ignored_by_the_child_is_followed_by_sigkill_after_the_grace_period() {
    let pair = Pair::new();
    let e = env(&pair, "head", "t", &[("SPARK_BACKEND", "native"), ("SPARK_NODES", "a"), ("SPARK_GRACE", "2")]);
    // A serve command that ignores SIGTERM (trap) and leaves a background child.
    let args = ["--", "sh", "-c", "trap '' TERM; sleep 300 & python3 \"$0\" serve stubborn; wait", &standin()].map(String::from).to_vec();
    let mut head = Node::start(&pair.head, "a", pair.path("a.log"), &e, &args);
    head.wait_for("READY: `stubborn` answers", Duration::from_secs(30));
    head.signal(Signal::SIGTERM);
    let (code, took) = head.wait_exit(Duration::from_secs(20));
    let log = head.text();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(6), "{took:?}\n{log}");
    assert!(log.contains("still running after 2s: SIGKILL"), "{log}");
    assert_eq!(code, 137, "the serve command was killed by SIGKILL:\n{log}");
    assert!(Pair::pids(&pair.head).is_empty(), "left: {:?}", Pair::pids(&pair.head).iter().map(|p| cmdline(*p)).collect::<Vec<_>>());
}
