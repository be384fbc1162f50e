//! Real vLLM (0.32, CPU build, from `cargo xtask vllm`) serving the tiny model across the two
//! namespaces with the native backend: tensor parallelism 2 over two nodes, rank 1 headless.
//! These tests fail when vLLM's real behaviour breaks what the entrypoint assumes: the native
//! multi-node flag names (vLLM rejects unknown flags with exit 2), the readiness sequence
//! (`/health`, `/v1/models`, a 1-token completion), the SSE shapes of streamed chat and
//! completions (compared with the recorded `fixtures/openai_sse/sparkctl-vllm-0.32-cpu-*`), the
//! group failure when a node's vLLM dies, the head's own exit after it lost its worker, and the
//! liveness look reading real vLLM's `/metrics` (no probe while the engine is busy).

use crate::harness::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// From start to READY: ~40 s for the group on an idle 2-core machine, minutes while other
/// builds share the cores.
const START: Duration = Duration::from_secs(900);

/// The two nodes of a real vLLM group, started worker first; returns them and the startup time.
fn start_group(pair: &Pair, extra: &[(&str, &str)]) -> (Node, Node, Duration) {
    let mut e: Vec<(&str, &str)> = vec![("SPARK_BACKEND", "native")];
    e.extend_from_slice(REAL_VLLM_ENV);
    e.extend_from_slice(extra);
    let serve = real_serve(&["--tensor-parallel-size", "2"]);
    let t = Instant::now();
    let worker = Node::start(&pair.worker, "b", pair.path("b.log"), &env(pair, "worker", "t", &e), &serve);
    let mut head = Node::start(&pair.head, "a", pair.path("a.log"), &env(pair, "head", "t", &e), &serve);
    head.wait_for("READY: `tiny` answers", START);
    let took = t.elapsed();
    eprintln!("real vLLM two-node group (TP 2, native) ready in {:.1} s", took.as_secs_f64());
    (head, worker, took)
}

/// The processes of `ns` other than the entrypoint `except` (the node's vLLM: API server,
/// engine core, workers).
fn vllm_pids(ns: &str, except: u32) -> Vec<u32> {
    Pair::pids(ns).into_iter().filter(|p| *p != except).collect()
}

/// The main `vllm serve` process of a node: the venv's python running the `vllm` script (the
/// entrypoint's own command line names it too).
fn serve_pid(ns: &str) -> u32 {
    let is_serve = |c: &str| c.contains("bin/vllm serve ") && !c.contains("spark-entrypoint");
    Pair::pids(ns)
        .into_iter()
        .find(|p| is_serve(&cmdline(*p)))
        .unwrap_or_else(|| panic!("no `vllm serve` process in `{ns}`: {:?}", Pair::pids(ns).iter().map(|p| cmdline(*p)).collect::<Vec<_>>()))
}

/// `curl` inside the head's namespace: (HTTP status, body).
fn curl(ns: &str, path: &str, body: Option<&Value>, timeout: Duration) -> (u16, String) {
    let url = format!("http://127.0.0.1:8000{path}");
    let secs = timeout.as_secs().to_string();
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "curl", "-sS", "-N", "--max-time", &secs, "-w", "\n%{http_code}"]);
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
    }
    let out = c.arg(&url).output().expect("curl runs (`cargo xtask deps` installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// A counter of real vLLM's `/metrics` on the head, summed over its label sets.
fn counter(ns: &str, name: &str) -> f64 {
    let (code, body) = curl(ns, "/metrics", None, Duration::from_secs(30));
    assert_eq!(code, 200, "{body}");
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// The `data:` events of an SSE body: JSON values, and whether `[DONE]` closed it.
fn sse(body: &str) -> (Vec<Value>, bool) {
    let mut events = Vec::new();
    let mut done = false;
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            assert!(line.is_empty() || line.starts_with('#'), "not an SSE line: {line:?}");
            continue;
        };
        assert!(!done, "an event after [DONE]: {data}");
        if data == "[DONE]" {
            done = true;
        } else {
            events.push(serde_json::from_str(data).unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {data}")));
        }
    }
    (events, done)
}

/// The shape of one event: what a client parsing it relies on, without the varying values.
fn shape(ev: &Value) -> String {
    let choices = ev["choices"].as_array().expect("every chunk has `choices`");
    let choice = match choices.first() {
        None => "no choices".to_owned(),
        Some(c) => {
            let delta = c["delta"].as_object().map(|d| {
                let mut k: Vec<&str> = d.keys().map(String::as_str).collect();
                k.sort_unstable();
                format!("delta {}", k.join("+"))
            });
            let finish = if c["finish_reason"].is_null() { "open".to_owned() } else { format!("finish {}", c["finish_reason"].as_str().unwrap_or("?")) };
            format!("{} {finish}", delta.unwrap_or_else(|| "text".into()))
        }
    };
    let usage = if ev["usage"].is_object() { "usage" } else { "no usage" };
    let fp = if ev["system_fingerprint"].is_string() { " fingerprint" } else { "" };
    format!("{} {choice} {usage}{fp}", ev["object"].as_str().unwrap_or("?"))
}

/// The shapes of a recorded stream, consecutive repeats folded (the token count differs).
fn shapes(events: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = events.iter().map(shape).collect();
    v.dedup();
    v
}

fn recorded(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture(&format!("openai_sse/{name}"))).unwrap();
    let (events, done) = sse(&text);
    assert!(done, "the recorded {name} ends with [DONE]");
    events
}

/// Checks a live stream of `max_tokens` tokens: the same shapes as the recording, cumulative
/// usage on every chunk, a usage-only last chunk naming vLLM 0.32.0, then `[DONE]`.
fn check_stream(body: &str, fixture_name: &str, max_tokens: u64) -> Vec<Value> {
    let (events, done) = sse(body);
    assert!(done, "no [DONE]:\n{body}");
    assert_eq!(shapes(&events), shapes(&recorded(fixture_name)), "the stream's shape differs from the recording `{fixture_name}`:\n{body}");
    let completion: Vec<u64> = events.iter().map(|e| e["usage"]["completion_tokens"].as_u64().expect("usage on every chunk")).collect();
    assert!(completion.windows(2).all(|w| w[0] <= w[1]), "usage is cumulative: {completion:?}");
    assert_eq!(*completion.last().unwrap(), max_tokens, "{body}");
    let last = events.last().unwrap();
    assert_eq!(last["choices"], Value::Array(vec![]), "{last}");
    assert!(last["system_fingerprint"].as_str().is_some_and(|f| f.starts_with("vllm-0.32.0-")), "{last}");
    events
}

#[test]
fn real_vllm_native_tp2_across_two_nodes_answers_streams_and_fails_as_a_group() {
    let _heavy = heavy_lock();
    let pair = Pair::new();
    // Liveness looks every second, to see them skip the probe while the engine is busy.
    let (mut head, mut worker, took) = start_group(&pair, &[("SPARK_LIVENESS_INTERVAL", "1")]);
    std::fs::write(pair.path("startup-seconds"), format!("{:.1}\n", took.as_secs_f64())).unwrap();

    // Native multi-node flags as vLLM took them (it exits 2 on a flag it does not know).
    let (hs, ws) = (serve_pid(&pair.head), serve_pid(&pair.worker));
    assert!(cmdline(hs).ends_with("--tensor-parallel-size 2 --nnodes 2 --node-rank 0 --master-addr 10.77.0.1 --master-port 29501 "), "{}", cmdline(hs));
    assert!(cmdline(ws).ends_with("--nnodes 2 --node-rank 1 --master-addr 10.77.0.1 --master-port 29501 --headless "), "{}", cmdline(ws));
    // Each node's own rail environment, in the real vLLM processes; the secret is not there.
    let (he, we) = (environ(hs), environ(ws));
    assert!(he.contains(&("VLLM_HOST_IP".into(), HEAD_IP.into())), "{he:?}");
    assert!(we.contains(&("VLLM_HOST_IP".into(), WORKER_IP.into())), "{we:?}");
    assert!(we.contains(&("GLOO_SOCKET_IFNAME".into(), "rail0".into())) && we.contains(&("NCCL_SOCKET_IFNAME".into(), "rail0,rail1".into())), "{we:?}");
    assert!(!he.iter().chain(&we).any(|(k, _)| k == "SPARK_TOKEN"), "the cluster secret reached vLLM");
    worker.wait_for("released by the head (rank 1)", START);
    assert_eq!(read_json(&pair.path("status-a.json"))["state"], "ready");

    // The readiness sequence against the real server, as the probe runs it.
    let (code, models) = curl(&pair.head, "/v1/models", None, Duration::from_secs(30));
    assert_eq!(code, 200, "{models}");
    assert_eq!(serde_json::from_str::<Value>(&models).unwrap()["data"][0]["id"], "tiny", "{models}");
    let one = serde_json::json!({"model": "tiny", "prompt": "ping", "max_tokens": 1});
    let (code, body) = curl(&pair.head, "/v1/completions", Some(&one), Duration::from_secs(120));
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(v["usage"]["completion_tokens"], 1, "{body}");

    // Streams with usage on every chunk: the shapes the serving benchmark parses.
    let opts = serde_json::json!({"include_usage": true, "continuous_usage_stats": true});
    let chat = serde_json::json!({"model": "tiny", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 4, "temperature": 0, "stream": true, "stream_options": opts});
    let (code, body) = curl(&pair.head, "/v1/chat/completions", Some(&chat), Duration::from_secs(120));
    assert_eq!(code, 200, "{body}");
    let events = check_stream(&body, "sparkctl-vllm-0.32-cpu-chat-stream-continuous-usage.txt", 4);
    assert_eq!(events[0]["choices"][0]["delta"], serde_json::json!({"role": "assistant", "content": ""}), "{body}");
    assert_eq!(events[0]["usage"]["completion_tokens"], 0, "{body}");
    let cmpl = serde_json::json!({"model": "tiny", "prompt": "ping", "max_tokens": 3, "temperature": 0, "stream": true, "stream_options": opts});
    let (code, body) = curl(&pair.head, "/v1/completions", Some(&cmpl), Duration::from_secs(120));
    assert_eq!(code, 200, "{body}");
    check_stream(&body, "sparkctl-vllm-0.32-cpu-completion-stream-continuous-usage.txt", 3);

    // Liveness on a busy engine: completions back to back for 6 s (1 s looks). The looks find
    // vLLM's generated-token counter moving and send nothing: the requests vLLM finished in that
    // window are ours, and at most one probe that began before it. Idle, a probe goes out per look.
    let idle0 = counter(&pair.head, "vllm:request_success_total");
    std::thread::sleep(Duration::from_secs(6));
    let idle_probes = counter(&pair.head, "vllm:request_success_total") - idle0;
    assert!(idle_probes >= 3.0, "an idle engine gets a 1-token probe per look (1 s + the probe's time): {idle_probes} in 6 s");
    let done0 = counter(&pair.head, "vllm:request_success_total");
    let busy = Instant::now();
    let mut ours = 0.0;
    while busy.elapsed() < Duration::from_secs(6) {
        let req = serde_json::json!({"model": "tiny", "prompt": "ping", "max_tokens": 32, "ignore_eos": true});
        let (code, body) = curl(&pair.head, "/v1/completions", Some(&req), Duration::from_secs(120));
        assert_eq!(code, 200, "{body}");
        ours += 1.0;
    }
    let probes = counter(&pair.head, "vllm:request_success_total") - done0 - ours;
    eprintln!("liveness probes: {idle_probes} in 6 s idle, {probes} in {:.1} s busy ({ours} requests of ours)", busy.elapsed().as_secs_f64());
    assert!(probes <= 1.0, "{probes} liveness probes reached a busy engine in {:.1} s", busy.elapsed().as_secs_f64());

    // The worker's vLLM dies (every process but the entrypoint): its node stops with it, and
    // the head stops the group, non-zero, within 10 s; nothing is left on either node.
    for p in vllm_pids(&pair.worker, worker.pid()) {
        let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
    }
    let (wcode, _) = worker.wait_exit(Duration::from_secs(30));
    let wlog = worker.text();
    assert_ne!(wcode, 0, "{wlog}");
    assert!(wlog.contains("serve exited with code"), "{wlog}");
    let (hcode, htook) = head.wait_exit(Duration::from_secs(30));
    let hlog = head.text();
    assert_eq!(hcode, 3, "{hlog}");
    assert!(htook < Duration::from_secs(10), "head took {htook:?}:\n{hlog}");
    assert!(hlog.contains("lost node `b`"), "{hlog}");
    let looks = hlog.lines().find_map(|l| l.split_once("liveness looks: ")).map(|(_, r)| r.to_owned()).unwrap_or_default();
    let progress: u32 = looks.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(progress >= 3, "the busy window's looks found progress: `{looks}`\n{hlog}");
    for ns in [&pair.head, &pair.worker] {
        assert!(Pair::pids(ns).is_empty(), "left in `{ns}`: {:?}", Pair::pids(ns).iter().map(|p| cmdline(*p)).collect::<Vec<_>>());
    }
}

/// What vLLM itself does when its worker is gone and nobody tells the head (the entrypoints'
/// heartbeats are made too slow to matter here): completions fail with HTTP 500 and the head's
/// vLLM exits by itself; its entrypoint then stops with the serve command's code. The worker's
/// entrypoint, frozen meanwhile, finds the head gone when it runs again and leaves nothing.
#[test]
fn real_vllm_head_fails_requests_and_exits_by_itself_after_losing_its_worker() {
    let _heavy = heavy_lock();
    let pair = Pair::new();
    let (mut head, mut worker, _) = start_group(&pair, &[("SPARK_HEARTBEAT_TIMEOUT", "3600")]);
    worker.signal(Signal::SIGSTOP);
    for p in vllm_pids(&pair.worker, worker.pid()) {
        let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
    }
    let lost = Instant::now();
    let req = serde_json::json!({"model": "tiny", "prompt": "ping", "max_tokens": 1});
    let (code, body) = curl(&pair.head, "/v1/completions", Some(&req), Duration::from_secs(60));
    assert_eq!(code, 500, "a completion after the worker died: {body}");
    let (hcode, _) = head.wait_exit(Duration::from_secs(180));
    let hlog = head.text();
    eprintln!("the head's vLLM exited {:.1} s after its worker died", lost.elapsed().as_secs_f64());
    assert!(hlog.contains("serve exited with code"), "{hlog}");
    assert_ne!(hcode, 0, "{hlog}");
    assert!(!hlog.contains("lost node `b`"), "the head noticed through vLLM, not through heartbeats:\n{hlog}");
    assert!(Pair::pids(&pair.head).is_empty(), "left on the head: {:?}", Pair::pids(&pair.head).iter().map(|p| cmdline(*p)).collect::<Vec<_>>());

    worker.signal(Signal::SIGCONT);
    let (wcode, _) = worker.wait_exit(Duration::from_secs(30));
    // Resumed, it has two true reasons to stop at once: the head is gone (3) and its own vLLM
    // was killed (137, the serve command's status); whichever it reads first is its exit.
    assert!(wcode == 3 || wcode == 137, "exit {wcode}: {}", worker.text());
    assert!(Pair::pids(&pair.worker).is_empty(), "left on the worker: {:?}", Pair::pids(&pair.worker).iter().map(|p| cmdline(*p)).collect::<Vec<_>>());
}
