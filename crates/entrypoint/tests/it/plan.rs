//! The head's launch check (`SPARK_PLAN`): a configuration that does not fit is refused after the
//! rendezvous, before anything is launched, with the plan's table in the log and the workers told
//! why; one that fits launches, its warnings logged once with the table; `warn` launches anyway.
//! Models come from `fixtures/plan/` laid out as a Hugging Face cache; the node's memory from a
//! root prefix whose `/proc/meminfo` is a Spark's (synthetic: MemTotal 121.63 GiB as vLLM reports
//! it on GB10, MemAvailable 115 GiB).

use crate::harness::*;
use nix::sys::signal::Signal;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `HF_HOME` holding `model` as the snapshot of `fixtures/plan/<folder>`.
fn hf_home(dir: &Path, model: &str, folder: &str) -> PathBuf {
    let home = dir.join(format!("hf-{folder}"));
    let repo = home.join("hub").join(format!("models--{}", model.replace('/', "--")));
    let snap = repo.join("snapshots/0123abc");
    fs::create_dir_all(&snap).unwrap();
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), "0123abc").unwrap();
    for f in ["config.json", "model.safetensors.index.json"] {
        fs::copy(fixture(&format!("plan/{folder}/{f}")), snap.join(f)).unwrap();
    }
    home
}

/// The head's root: healthy RDMA rails plus a Spark's `/proc/meminfo`.
fn spark_root(dir: &Path) -> String {
    let root = rdma_root(dir, 1);
    fs::write(root.join("proc/meminfo"), "MemTotal:       127535431 kB\nMemFree:        110000000 kB\nMemAvailable:   120586240 kB\n").unwrap();
    // The vLLM of the image, as NGC installs it.
    fs::create_dir_all(root.join("usr/local/lib/python3.12/dist-packages/vllm-0.11.1+nv26.01.dist-info")).unwrap();
    root.display().to_string()
}

/// A head planning with `SPARK_PLAN=enforce` on a Spark's root, `model` from
/// `fixtures/plan/<folder>`, TP 2 at `max_model_len`; then a worker. Both started, in that order.
fn start_pair(pair: &Pair, model: &str, folder: &str, max_model_len: &str) -> (Node, Node) {
    let home = hf_home(pair.dir.path(), model, folder);
    let (root, home) = (spark_root(pair.dir.path()), home.display().to_string());
    let args = ["--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.75", "--max-model-len", max_model_len];
    let head_env =
        env(pair, "head", "t", &[("SPARK_BACKEND", "native"), ("SPARK_PLAN", "enforce"), ("SPARK_ROOT", &root), ("SPARK_TRANSPORT", "ib"), ("HF_HOME", &home)]);
    let mut head = Node::start(&pair.head, "a", pair.path("a.log"), &head_env, &serve(model, &args));
    head.wait_for("rendezvous: listening", T);
    let worker = Node::start(&pair.worker, "b", pair.path("b.log"), &env(pair, "worker", "t", &[("SPARK_BACKEND", "native")]), &serve(model, &args));
    (head, worker)
}

#[test]
fn a_head_refuses_a_configuration_that_does_not_fit_with_the_table_in_its_log() {
    let pair = Pair::new();
    let (mut head, mut worker) = start_pair(&pair, "Qwen/Qwen3-VL-235B-A22B-Instruct", "qwen3-vl-235b-a22b-bf16", "4096");
    let (code, _) = head.wait_exit(T);
    let log = head.text();
    assert_eq!(code, 2, "{log}");
    // The table, every term: BF16 weights are 471 340 045 792 B / 2 = 219.48 GiB per node.
    assert!(log.lines().any(|l| l.contains("plan | weights per rank") && l.contains(" 219.48 ")), "{log}");
    for row in ["plan | PER NODE", "plan | KV cache", "plan | activations", "plan | CUDA graphs", "plan | runtime", "plan | required"] {
        assert!(log.contains(row), "no `{row}` in the log:\n{log}");
    }
    for row in ["plan | vLLM budget", "plan | usable", "MemAvailable 115.00 GiB", "plan | headroom", "plan | verdict: does not fit"] {
        assert!(log.contains(row), "no `{row}` in the log:\n{log}");
    }
    assert!(log.contains("error: plan: 1 error(s); first: memory: does not fit") && log.contains("set SPARK_PLAN=warn to launch anyway"), "{log}");
    // The worker was told why (it then waits for a head to come back, as after any head restart
    // before the release), and nothing was launched.
    worker.wait_for("the head is stopping (head `a` stopping: plan: 1 error(s)", T);
    assert!(!pair.path("record-a.json").exists() && !pair.path("record-b.json").exists(), "{log}");
}

#[test]
fn a_configuration_that_fits_launches_and_warn_launches_one_that_does_not() {
    let pair = Pair::new();
    let root = spark_root(pair.dir.path());
    // DeepSeek-V2-Lite (MLA, 31.41 GB) on one Spark: fits.
    let model = "deepseek-ai/DeepSeek-V2-Lite";
    let home = hf_home(pair.dir.path(), model, "deepseek-v2-lite").display().to_string();
    let args = ["--gpu-memory-utilization", "0.75", "--max-model-len", "4096"];
    let e = env(&pair, "head", "t", &[("SPARK_BACKEND", "native"), ("SPARK_NODES", "a"), ("SPARK_PLAN", "enforce"), ("SPARK_ROOT", &root), ("HF_HOME", &home)]);
    let mut head = Node::start(&pair.head, "a", pair.path("fits.log"), &e, &serve(model, &args));
    let log = head.wait_for("READY", T);
    assert!(log.contains("plan | verdict: fits") && log.contains("27 MLA layers") && log.contains("sm_121, vLLM 0.11.1"), "{log}");
    // Warnings are logged once, with the table, not again while serving.
    assert_eq!(log.matches("plan | PER NODE").count(), 1, "{log}");
    assert_eq!(log.matches("utilization-0.9").count() + log.matches("plan | warning").count(), 0, "0.75 gives no warning:\n{log}");
    head.signal(Signal::SIGTERM);
    head.wait_exit(T);

    // The 235B model in BF16 on one Spark does not fit; `warn` logs it loudly and launches.
    let model = "Qwen/Qwen3-VL-235B-A22B-Instruct";
    let home = hf_home(pair.dir.path(), model, "qwen3-vl-235b-a22b-bf16").display().to_string();
    let e = env(&pair, "head", "t", &[("SPARK_BACKEND", "native"), ("SPARK_NODES", "a"), ("SPARK_PLAN", "warn"), ("SPARK_ROOT", &root), ("HF_HOME", &home)]);
    let mut head = Node::start(&pair.head, "a", pair.path("warn.log"), &e, &serve(model, &args));
    let log = head.wait_for("READY", T);
    assert!(log.contains("plan | verdict: does not fit") && log.contains("launching anyway (SPARK_PLAN=warn)"), "{log}");
    assert_eq!(log.matches("plan | error   memory").count(), 1, "{log}");
    head.signal(Signal::SIGTERM);
    head.wait_exit(T);
}

#[test]
fn a_warning_of_a_fitting_launch_is_logged_once() {
    // The AWQ model on two Sparks at 8192 tokens fits (one sequence needs 0.75 GiB of KV cache)
    // but is longer than the 4096 validated for it: the `context-above-validated` warning.
    let pair = Pair::new();
    let (mut head, mut worker) = start_pair(&pair, "QuantTrio/Qwen3-VL-235B-A22B-Instruct-AWQ", "qwen3-vl-235b-a22b-awq", "8192");
    let log = head.wait_for("READY", T);
    assert!(log.contains("plan | verdict: fits"), "{log}");
    // Serving for a while (the worker released, the health checks running) adds no second copy.
    worker.wait_for("released by the head (rank 1)", T);
    std::thread::sleep(Duration::from_secs(3));
    let log = head.text();
    let warning = "plan | warning context-above-validated: the context (8192 tokens) is longer than the 4096 validated for this model on 2 nodes";
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert_eq!(log.matches("context-above-validated").count(), 1, "{log}");
    assert!(log.find(warning) < log.find("READY"), "the warning comes with the table, before the launch:\n{log}");
    assert_eq!(worker.text().matches("context-above-validated").count(), 0, "only the head plans:\n{}", worker.text());
    for n in [&mut head, &mut worker] {
        n.signal(Signal::SIGTERM);
        n.wait_exit(T);
    }
}
