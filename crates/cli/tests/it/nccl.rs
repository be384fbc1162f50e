//! `sparkctl nccl check|tests` and `sparkctl bench nccl` on real logs: exit codes, stdin, JSON,
//! bad input. `bench nccl run` on nodes: `ops.rs`.

use crate::support::{sparkctl, Run};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(std::path::Path::parent).unwrap().to_path_buf()
}

fn fixture(rel: &str) -> String {
    repo().join("fixtures").join(rel).display().to_string()
}

fn run(args: &[&str]) -> Run {
    let store = tempfile::tempdir().unwrap();
    sparkctl(store.path(), args)
}

/// `sparkctl ARGS` with `input` on stdin.
fn piped(args: &[&str], input: &[u8]) -> (i32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sparkctl")).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(input).unwrap();
    let out = c.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn nccl_check_passes_the_spark_pair_against_the_example_cluster_and_fails_sockets() {
    let cluster = repo().join("examples/cluster.toml").display().to_string();
    let ok = run(&["nccl", "check", &fixture("nccl_debug/dgx-spark-nccl-2.30.7-ib-hca-set-to-roce-two-rails.txt"), "--cluster", &cluster]).ok();
    insta::assert_snapshot!("nccl_check_spark_pair", ok.stdout);

    let bad = run(&["nccl", "check", &fixture("nccl_debug/ib-disabled-by-env-using-network-socket-mpi-noise.txt"), "--cluster", &cluster]);
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    assert!(bad.stdout.contains("cluster.toml says transport `ib`"), "{}", bad.stdout);
}

#[test]
fn nccl_check_reads_stdin_and_several_files_and_writes_json() {
    let log = std::fs::read(fixture("nccl_debug/prefixed/mpirun-tag-output-ib-disabled-socket.txt")).unwrap();
    let (code, out) = piped(&["nccl", "check", "--json"], &log);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    let ranks: Vec<u64> = v["analysis"]["processes"].as_array().unwrap().iter().map(|p| p["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, [4, 6, 0, 1, 3], "ranks from mpirun's prefix");
    assert_eq!(v["analysis"]["processes"][2]["net"], "NET/Socket");

    // Two files, one of them a different NCCL build: a version mismatch across the processes.
    let two = run(&[
        "nccl",
        "check",
        &fixture("nccl_debug/dgx-h100-roce-using-network-ib-nccl-2.19.txt"),
        &fixture("nccl_debug/own-h200-nccl-bench-ws1-nccl-2.28.9-default.txt"),
    ]);
    assert_eq!(two.code, 1);
    assert!(two.stdout.contains("NCCL versions differ: 2.19.3+cuda12.3; 2.28.9+cuda13.0 on vm"), "{}", two.stdout);
    assert!(two.stdout.contains("mixed transports: NET/IB, NET/Socket"), "{}", two.stdout);
}

#[test]
fn nccl_tests_verdict_at_nvidias_bar_and_a_given_one() {
    let dell = fixture("nccl_tests/all_gather_perf-dell-gb10-2node-16G-nccl-tests-2.18.5.txt");
    let mtu = fixture("nccl_tests/all_gather_perf-gb10-2node-before-mtu9000-FRAGMENT.txt");
    let pass = run(&["nccl", "tests", &dell]).ok();
    insta::assert_snapshot!("nccl_tests_dell", pass.stdout);
    assert_eq!(run(&["nccl", "tests", &mtu]).code, 1);
    run(&["nccl", "tests", &mtu, "--min-busbw", "18"]).ok();
    let (code, out) = piped(&["nccl", "tests", "--json", "-"], &std::fs::read(&dell).unwrap());
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"][0]["rows"][0]["out_of_place"]["busbw"], 22.94);
    assert_eq!(v["runs"][0]["avg_busbw"], 22.9611);
}

#[test]
fn bad_input_is_one_error_line_and_exit_2() {
    let missing = run(&["nccl", "check", "/nonexistent/nccl.log"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.starts_with("error: opening log `/nonexistent/nccl.log`: "), "{}", missing.stderr);
    assert_eq!(missing.stderr.lines().count(), 1);
    let neg = run(&["nccl", "tests", "--min-busbw", "-1", &fixture("nccl_tests/all_gather_perf-dell-gb10-2node-16G-nccl-tests-2.18.5.txt")]);
    assert_eq!(neg.code, 2, "{}", neg.stderr);
    let no_results = run(&["bench", "nccl", "report", "/nonexistent"]);
    assert_eq!(no_results.code, 2);
    assert!(no_results.stderr.contains("reading `/nonexistent/table.txt`"), "{}", no_results.stderr);
    // `bench nccl run` refuses before logging in anywhere (the example's nodes do not exist).
    let cluster = repo().join("examples/cluster.toml").display().to_string();
    let cases: [(&[&str], &str); 3] = [
        (&["--max-bytes", "16G"], "`--max-bytes`: `16G` is over 4 GiB"),
        (&["--max-bytes", "lots"], "`--max-bytes`: `lots` is not a size"),
        (&["--node", "spark-3"], "`--node` leaves out the head `spark-2`"),
    ];
    for (args, want) in cases {
        let r = run(&[&["bench", "nccl", "run", "--cluster", &cluster][..], args].concat());
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("error: ") && r.stderr.contains(want), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
}

#[test]
fn bench_nccl_commands_and_report_of_our_h200_run() {
    let cluster = repo().join("examples/cluster.toml").display().to_string();
    let c = run(&["bench", "nccl", "commands", "--cluster", &cluster, "--transport", "socket", "--max-bytes", "256M"]).ok();
    insta::assert_snapshot!("bench_nccl_commands", c.stdout.replace(&cluster, "[CLUSTER]"));

    // The H200 run's files, as rank 0 wrote them (less the `# source:` line of the fixtures).
    let dir = tempfile::tempdir().unwrap();
    let body = |f: &str| std::fs::read_to_string(fixture(f)).unwrap().split_once('\n').unwrap().1.to_owned();
    std::fs::write(dir.path().join("table.txt"), body("nccl_tests/own-h200-nccl-bench-ws1-nccl-2.28.9.txt")).unwrap();
    std::fs::write(dir.path().join("nccl-debug.log"), body("nccl_debug/own-h200-nccl-bench-ws1-nccl-2.28.9-default.txt")).unwrap();
    let r = run(&["bench", "nccl", "report", &dir.path().display().to_string(), "--min-busbw", "0"]).ok();
    insta::assert_snapshot!("bench_nccl_report_h200", r.stdout);
    // One rank moves nothing between ranks: NVIDIA's bar fails it.
    assert_eq!(run(&["bench", "nccl", "report", &dir.path().display().to_string()]).code, 1);
}
