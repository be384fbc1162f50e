//! `SPARK_MODE=nccl-bench` end to end in the Docker engine: the real recipe (with the
//! `nccl-bench` overlay) built by `sparkctl image build` on the Debian test base, two containers
//! on two Docker networks (the rails), the real rendezvous, then `nccl_bench.py` on both nodes
//! with vLLM's native multi-node arguments, on gloo (no GPU here). torch comes from PyPI: the
//! vLLM venv of `cargo xtask vllm` (`target/vllm`, torch 2.13.0 on CPython 3.11 like the base),
//! mounted read-only where the base's python3 finds it (a 6 GB tree: mounted, not baked into a
//! test layer, and not installed a second time).
//! - the run completes on both nodes (exit 0), the head reads its results back with the
//!   analyser and prints the per-size table and the verdict; `sparkctl bench nccl report` reads
//!   the same folder;
//! - a worker killed mid-run stops the head, non-zero, within 10 s.
//!
//! That is a system test; the script's own refusals, run by the host's python3, are hermetic.

use crate::harness::repo;
use std::process::Command;
#[cfg(feature = "system-tests")]
use {
    crate::docker::{base_archive, build_image, logs, new_docker, ok, rail_networks, wait_exit, wait_log, ClusterSpec, Load},
    crate::harness::BIN,
    std::path::{Path, PathBuf},
    std::time::Duration,
};

/// torch from PyPI, in the vLLM venv `cargo xtask vllm` makes (resolved: Docker mounts the
/// venv, not the `target/vllm` link).
#[cfg(feature = "system-tests")]
fn torch_site() -> PathBuf {
    let site = repo().join("target/vllm/lib/python3.11/site-packages");
    assert!(
        site.join("torch/__init__.py").exists(),
        "no torch in `{}`: `cargo xtask vllm` installs it (the vLLM venv, CPython 3.11, torch from PyPI)",
        site.display()
    );
    site.canonicalize().unwrap()
}

#[cfg(feature = "system-tests")]
fn spec(tag: &str, digest: &str, subnets: [String; 2], results: &Path, bench: &[(&'static str, &str)]) -> ClusterSpec {
    let mut env: Vec<(&'static str, String)> = vec![("SPARK_MODE", "nccl-bench".into()), ("SPARK_BENCH_OUT", "/results".into())];
    env.extend(bench.iter().map(|(k, v)| (*k, v.to_string())));
    let extra = vec![
        "--volume".into(),
        format!("{}:/usr/local/lib/python3.11/dist-packages:ro", torch_site().display()),
        "--volume".into(),
        format!("{}:/results", results.display()),
    ];
    ClusterSpec { tag: tag.into(), digest: digest.into(), subnets, env, serve: vec![], extra }
}

#[cfg(feature = "system-tests")]
#[test]
fn docker_nccl_bench_runs_on_both_nodes_gives_the_verdict_and_fails_as_a_group() {
    torch_site();
    let mut d = new_docker("b");
    let base = base_archive(&d.id);
    d.files.push(base.clone());
    let (tag, digest) = build_image(&mut d, &repo().join("images/vllm-spark.toml"), None, &format!("docker-archive:{}", base.display()), Load::Archive);
    let subnets = rail_networks(&mut d, 2);
    let results = tempfile::tempdir().unwrap();

    // Round 1: a short sweep; both nodes finish, the head gives the verdict.
    let small = [
        ("SPARK_BENCH_MIN_BYTES", "64K"),
        ("SPARK_BENCH_MAX_BYTES", "512K"),
        ("SPARK_BENCH_ITERS", "3"),
        ("SPARK_BENCH_WARMUP", "1"),
        ("SPARK_BENCH_MIN_BUSBW", "0.0001"),
    ];
    let s = spec(&tag, &digest, subnets.clone(), results.path(), &small);
    let head_ip = s.head_ip();
    let worker = s.start(&mut d, "b", "worker", 3);
    let head = s.start(&mut d, "a", "head", 2);
    let (hcode, _) = wait_exit(&head, Duration::from_secs(300));
    let hlog = logs(&head);
    assert_eq!(hcode, 0, "{hlog}");
    let (wcode, _) = wait_exit(&worker, Duration::from_secs(30));
    let wlog = logs(&worker);
    assert_eq!(wcode, 0, "{wlog}");
    // The script got the rendezvous' ranks and the head's rail address as its master.
    assert!(
        hlog.contains(&format!("python3 /usr/local/lib/sparkctl/nccl_bench.py --nnodes 2 --node-rank 0 --master-addr {head_ip} --master-port 29501")),
        "{hlog}"
    );
    assert!(wlog.contains(&format!("--nnodes 2 --node-rank 1 --master-addr {head_ip} --master-port 29501 --headless")), "{wlog}");
    assert!(wlog.contains("rank 1/2") && wlog.contains("gloo"), "{wlog}");
    // The head's verdict, from its results read back by the analyser.
    for want in [
        "nccl-bench: all_gather      512 KiB",
        "nccl-bench: all_reduce      512 KiB",
        "no NCCL debug lines: the gloo backend",
        "nccl-bench: VERDICT: PASS",
        "nccl benchmark finished",
        "exit 0",
    ] {
        assert!(hlog.contains(want), "{want:?} missing:\n{hlog}");
    }
    for f in ["table.txt", "nccl-debug.log", "result.json"] {
        assert!(results.path().join(f).exists(), "{f}");
    }
    let result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(results.path().join("result.json")).unwrap()).unwrap();
    assert_eq!((result["backend"].as_str(), result["world_size"].as_u64()), (Some("gloo"), Some(2)));
    assert_eq!(result["results"].as_array().unwrap().len(), 2 * 4, "4 sizes (64K..512K) × 2 collectives");
    assert!(result["results"].as_array().unwrap().iter().all(|r| r["wrong"] == 0 && r["out_of_place"]["busbw"].as_f64() > Some(0.0)), "{result}");

    // The same folder through `sparkctl bench nccl report`; NVIDIA's Spark bar fails a
    // Docker bridge on gloo.
    let sparkctl = Path::new(BIN).with_file_name("sparkctl");
    let report = |min: &str| Command::new(&sparkctl).args(["bench", "nccl", "report"]).arg(results.path()).args(["--min-busbw", min]).output().unwrap();
    let pass = report("0.0001");
    assert_eq!(pass.status.code(), Some(0), "{}", String::from_utf8_lossy(&pass.stderr));
    let text = String::from_utf8_lossy(&pass.stdout);
    assert!(text.contains("all_gather") && text.contains("VERDICT: PASS"), "{text}");
    assert_eq!(report("21.875").status.code(), Some(1));

    // Round 2: a long sweep; the worker's container is killed mid-run.
    ok("docker", &["rm", "-f", &head, &worker]);
    let long = [("SPARK_BENCH_MIN_BYTES", "1M"), ("SPARK_BENCH_MAX_BYTES", "1M"), ("SPARK_BENCH_ITERS", "1000000"), ("SPARK_BENCH_WARMUP", "1")];
    let s = spec(&tag, &digest, subnets, results.path(), &long);
    let worker = s.start(&mut d, "b", "worker", 3);
    let head = s.start(&mut d, "a", "head", 2);
    wait_log(&head, "# Collective test starting: all_gather_perf", Duration::from_secs(300));
    std::thread::sleep(Duration::from_secs(2));
    ok("docker", &["kill", &worker]);
    let (code, took) = wait_exit(&head, Duration::from_secs(20));
    let hlog = logs(&head);
    assert_eq!(code, 3, "exit 3: a lost node, as in serving:\n{hlog}");
    assert!(took < Duration::from_secs(10), "head took {took:?}:\n{hlog}");
    assert!(hlog.contains("lost node `b`"), "{hlog}");
    assert!(!hlog.contains("nccl benchmark finished"), "{hlog}");
    eprintln!("head after the worker was killed: exit {code} in {took:?}");
}

/// GB10's shared memory: sweeps past 4 GiB are refused unless asked for, before torch loads.
#[test]
fn the_benchmark_refuses_unbounded_sizes_and_unknown_collectives() {
    let script = repo().join("overlays/nccl-bench/rootfs/usr/local/lib/sparkctl/nccl_bench.py");
    let cases: [(&[&str], &str); 3] = [
        (&["--max-bytes", "16G"], "add --allow-large to insist"),
        (&["--ops", "all_gather,broadcast"], "--ops: unknown `broadcast`"),
        (&["--min-bytes", "2M", "--max-bytes", "1M"], "need 4 <= --min-bytes <= --max-bytes"),
    ];
    for (args, want) in cases {
        let out = Command::new("python3").arg(&script).args(args).output().expect("python3 runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
