//! `sparkctl bench serve` and `bench compare` end to end against the stand-in server (hermetic),
//! and against real vLLM and with its plot rendered by `rsvg-convert` (system tests).

use crate::support::{json, sparkctl, tool, Project, Run};
use servebench::standin::{self, Config};
use std::time::Duration;

fn server(itl_ms: u64) -> standin::Handle {
    standin::spawn(Config { ttft: Duration::from_millis(20), itl: Duration::from_millis(itl_ms), reasoning_tokens: 1, ..Config::default() }).unwrap()
}

/// `sparkctl bench serve --url URL ARGS…` in `p`.
fn bench_serve(p: &Project, url: &str, args: &[&str]) -> Run {
    sparkctl(&p.store(), &[&["bench", "serve", "--url", url], args].concat())
}

#[cfg(feature = "system-tests")]
#[test]
fn bench_serve_sweep_writes_json_csv_and_a_plot_that_renders() {
    let p = Project::new();
    let s = server(2);
    let url = s.url();
    let args = [
        "bench",
        "serve",
        "--url",
        &url,
        "--concurrency",
        "1,4",
        "--prompt-tokens",
        "16,64",
        "--max-tokens",
        "8",
        "--requests",
        "8",
        "--slo",
        "ttft=2s",
        "--output",
        &p.s("run.json"),
        "--csv",
        &p.s("run.csv"),
        "--plot",
        &p.s("sweep.svg"),
    ];
    let run = sparkctl(&p.store(), &args).ok();
    // The summary table: a header and one row per point.
    assert_eq!(run.stdout.lines().filter(|l| l.contains("c=1") || l.contains("c=4")).count(), 4, "{}", run.stdout);
    let j = json(&std::fs::read_to_string(p.path("run.json")).unwrap());
    assert_eq!(j["model"], "standin", "model from /v1/models");
    assert_eq!(j["server_url"], url);
    let points = j["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    for pt in points {
        assert_eq!(pt["summary"]["ok"], 8);
        assert_eq!(pt["summary"]["goodput"]["requests"], 8);
        // 8 answer tokens + 1 reasoning token, from the server's usage.
        assert_eq!(pt["summary"]["output_tokens_usage"], 8 * 9);
        assert_eq!(pt["requests"].as_array().unwrap().len(), 8);
        let wanted = pt["workload"]["prompt_tokens"].as_u64().unwrap();
        // The stand-in counts prompt words: the synthetic prompt has exactly the words asked for.
        assert!(pt["requests"].as_array().unwrap().iter().all(|r| r["prompt_tokens"].as_u64() == Some(wanted)));
    }
    let csv = std::fs::read_to_string(p.path("run.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4 * 8);
    let png = p.path("sweep.png");
    tool("rsvg-convert", &["-o", &png.display().to_string(), &p.s("sweep.svg")]).ok();
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{} bytes", bytes.len());
}

/// Exact prompt lengths through the server's `/tokenize` (the stand-in's chat "template" adds 5
/// tokens, so one word per token would be 5 off), and the one-word-per-token fallback, said so,
/// when the server answers `/tokenize` with 404.
#[test]
fn bench_serve_prompt_lengths_are_exact_by_tokenize_else_approximate_and_said() {
    let p = Project::new();
    for tokenize in [true, false] {
        let s = standin::spawn(Config { chat_template_tokens: 5, tokenize, output_tokens: Some(2), ..Config::default() }).unwrap();
        let out = p.s(&format!("run-{tokenize}.json"));
        let run = bench_serve(&p, &s.url(), &["--concurrency", "1,2", "--prompt-tokens", "8,40", "--shared-prefix", "2", "--requests", "3", "--output", &out]);
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        let j = json(&std::fs::read_to_string(&out).unwrap());
        assert_eq!(j["prompt_tokens_exact"], tokenize, "{j}");
        let said = run.stderr.matches("prompt lengths are").count();
        assert_eq!(said, 1, "said once: {}", run.stderr);
        if tokenize {
            assert!(run.stderr.contains("prompt lengths are exact: counted by the server's /tokenize"), "{}", run.stderr);
            assert_eq!(j.get("prompt_tokens_note"), None);
        } else {
            assert!(run.stderr.contains("prompt lengths are approximate (about one token per word): the server has no /tokenize (HTTP 404)"), "{}", run.stderr);
            assert_eq!(j["prompt_tokens_note"], "the server has no /tokenize (HTTP 404)");
        }
        let points = j["points"].as_array().unwrap();
        assert_eq!(points.len(), 4);
        for pt in points {
            let w = &pt["workload"];
            let wanted = w["prompt_tokens"].as_u64().unwrap();
            assert_eq!(w["prompt_tokens_exact"], tokenize, "{w}");
            let expect = if tokenize {
                assert_eq!(w["prompt_words"].as_u64(), Some(wanted - 5), "{w}");
                wanted
            } else {
                assert_eq!(w.get("prompt_words"), None, "{w}");
                wanted + 5
            };
            let got: Vec<u64> = pt["requests"].as_array().unwrap().iter().map(|r| r["prompt_tokens"].as_u64().unwrap()).collect();
            assert_eq!(got, [expect; 3], "tokenize {tokenize}, prompt {wanted}");
        }
    }
    // A length shorter than the template cannot be exact: that point is approximate, and said.
    let s = standin::spawn(Config { chat_template_tokens: 5, ..Config::default() }).unwrap();
    let out = p.s("short.json");
    let run = bench_serve(&p, &s.url(), &["--prompt-tokens", "3,16", "--requests", "1", "--max-tokens", "1", "--output", &out]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("prompt lengths are approximate (about one token per word): prompt length 3: 3 tokens is shorter than the shortest prompt"),
        "{}",
        run.stderr
    );
    let j = json(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(j["prompt_tokens_exact"], false);
    let exact: Vec<bool> = j["points"].as_array().unwrap().iter().map(|pt| pt["workload"]["prompt_tokens_exact"].as_bool().unwrap()).collect();
    assert_eq!(exact, [false, true]);
}

#[test]
fn bench_compare_shows_the_slower_server() {
    let p = Project::new();
    for (name, itl) in [("a.json", 5), ("b.json", 15)] {
        let s = server(itl);
        bench_serve(&p, &s.url(), &["--concurrency", "2", "--prompt-tokens", "8", "--max-tokens", "12", "--requests", "20", "-q", "--output", &p.s(name)]).ok();
    }
    let out = sparkctl(&p.store(), &["bench", "compare", &p.s("a.json"), &p.s("b.json"), "--json"]).ok();
    let deltas = json(&out.stdout);
    let metrics = deltas[0]["deltas"].as_array().unwrap();
    let tpot = metrics.iter().find(|d| d["metric"] == "TPOT ms").unwrap();
    // 5 ms → 15 ms per token: +200%, and the interval excludes zero.
    let change = tpot["change"].as_f64().unwrap();
    assert!((1.5..2.5).contains(&change), "{tpot}");
    assert!(tpot["ci"][0].as_f64().unwrap() > 0.0, "{tpot}");
    let thr = metrics.iter().find(|d| d["metric"] == "output tok/s").unwrap();
    assert!(thr["change"].as_f64().unwrap() < -0.3, "{thr}");
    let table = sparkctl(&p.store(), &["bench", "compare", &p.s("a.json"), &p.s("b.json")]).ok();
    assert!(table.stdout.contains("TPOT ms") && table.stdout.contains('*'), "{}", table.stdout);
}

#[test]
fn bench_calibrate_alone_prints_the_client_ceiling() {
    let p = Project::new();
    let out = sparkctl(&p.store(), &["bench", "serve", "--calibrate", "-q"]).ok();
    assert!(out.stdout.starts_with("client ceiling (calibrated here): "), "{}", out.stdout);
}

#[test]
fn bench_warns_when_a_run_measures_the_client() {
    // The same zero-latency load as the calibration: the run is at its own ceiling.
    let p = Project::new();
    let s = standin::spawn(Config::default()).unwrap();
    let out = bench_serve(&p, &s.url(), &["--calibrate", "-q", "--concurrency", "64", "--max-tokens", "256", "--prompt-tokens", "16", "--duration", "3s"]).ok();
    assert!(out.stdout.contains("warning: c=64: the client ran at") && out.stdout.contains("of its own ceiling"), "{}", out.stdout);
    // A slow server is far from it.
    let slow = server(5);
    let out = bench_serve(&p, &slow.url(), &["--calibrate", "-q", "--concurrency", "2", "--max-tokens", "8", "--requests", "4"]).ok();
    assert!(!out.stdout.contains("warning:") && out.stdout.contains("client ceiling (calibrated here)"), "{}", out.stdout);
}

#[test]
fn bench_bad_input_is_one_line_and_exit_2() {
    let p = Project::new();
    let s = server(0);
    let url = s.url();
    for (args, needle) in [
        (vec!["--url", url.as_str(), "--rate", "0"], "`--rate` value `0`"),
        (vec!["--url", url.as_str(), "--slo", "ttft=2"], "`--slo`: `2` has no unit"),
        (vec!["--url", "https://x", "--requests", "1"], "only `http://`"),
        (vec!["--url", url.as_str(), "--duration", "ten"], "`--duration`"),
    ] {
        let mut full = vec!["bench", "serve"];
        full.extend(args);
        let out = sparkctl(&p.store(), &full);
        assert_eq!(out.code, 2, "{full:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.starts_with("error: ") && out.stderr.contains(needle), "{}", out.stderr);
    }
    p.write("x.json", "{\"format\": 1}");
    let out = sparkctl(&p.store(), &["bench", "compare", &p.s("x.json"), &p.s("x.json")]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("x.json") && out.stderr.contains("missing field"), "{}", out.stderr);
}

#[test]
fn bench_serve_finds_the_head_api_in_cluster_toml() {
    use sha2::Digest;
    let p = Project::new();
    let s = server(0);
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/cluster.toml")).unwrap();
    assert!(example.contains("address = \"192.168.102.10/24\"") && example.contains("port = 8000\n"));
    let text = example.replace("address = \"192.168.102.10/24\"", "address = \"127.0.0.1/8\"").replace("port = 8000\n", &format!("port = {}\n", s.addr.port()));
    p.write("cluster.toml", &text);
    sparkctl(&p.store(), &["bench", "serve", "--cluster", &p.s("cluster.toml"), "--requests", "2", "--max-tokens", "2", "-q", "--output", &p.s("run.json")])
        .ok();
    let j = json(&std::fs::read_to_string(p.path("run.json")).unwrap());
    assert_eq!(j["server_url"], s.url());
    assert_eq!(j["cluster_config_sha256"], hex::encode(sha2::Sha256::digest(text.as_bytes())));
    assert_eq!(j["points"][0]["summary"]["ok"], 2);
}

#[test]
fn bench_serve_takes_prompts_from_a_jsonl_dataset() {
    let p = Project::new();
    let s = server(0);
    p.write("prompts.jsonl", "{\"prompt\": \"one two three\", \"max_tokens\": 2}\n\n{\"prompt\": \"a b c d e f g\"}\n");
    bench_serve(&p, &s.url(), &["--dataset", &p.s("prompts.jsonl"), "--max-tokens", "5", "--requests", "4", "-q", "--output", &p.s("run.json")]).ok();
    let j = json(&std::fs::read_to_string(p.path("run.json")).unwrap());
    let reqs = j["points"][0]["requests"].as_array().unwrap();
    let seen: Vec<(u64, u64)> = reqs.iter().map(|r| (r["prompt_tokens"].as_u64().unwrap(), r["output_tokens"].as_u64().unwrap())).collect();
    // Line 1: 3 words, 2 tokens asked (+1 reasoning); line 2: 7 words, `--max-tokens` 5 (+1).
    assert_eq!(seen, [(3, 3), (7, 6), (3, 3), (7, 6)]);
    p.write("bad.jsonl", "{\"prompt\": \"x\"}\n{\"text\": 1}\n");
    let out = bench_serve(&p, &s.url(), &["--dataset", &p.s("bad.jsonl"), "--requests", "1"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("bad.jsonl") && out.stderr.contains("line 2"), "{}", out.stderr);
}

/// Real vLLM 0.32 (CPU build, `cargo xtask vllm`) serving the tiny Llama on one node, in its own
/// process group so that dropping it ends the API server and its engine core together.
#[cfg(feature = "system-tests")]
struct RealVllm {
    child: std::process::Child,
    log: std::path::PathBuf,
    cache: std::path::PathBuf,
    port: u16,
}

#[cfg(feature = "system-tests")]
impl RealVllm {
    fn start(dir: &std::path::Path) -> RealVllm {
        use std::os::unix::process::CommandExt;
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(std::path::Path::parent).unwrap().to_owned();
        let (vllm, tiny) = (repo.join("target/vllm/bin/vllm"), repo.join("target/tiny-llama"));
        assert!(vllm.exists() && tiny.join("config.json").exists(), "`cargo xtask vllm` installs real vLLM (CPU) and the tiny model");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join("vllm.log");
        let cache = dir.join("vllm-cache");
        let out = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(vllm)
            .arg("serve")
            .arg(&tiny)
            .args(["--served-model-name", "tiny", "--max-model-len", "256", "--enforce-eager", "--host", "127.0.0.1", "--port", &port.to_string()])
            // 1 GiB of KV cache (the default takes a share of the RAM), no thread pinning (the
            // cores are shared), nothing sent out, nothing looked up on a model hub.
            .envs([
                ("VLLM_CPU_KVCACHE_SPACE", "1"),
                ("VLLM_CPU_OMP_THREADS_BIND", "nobind"),
                ("VLLM_NO_USAGE_STATS", "1"),
                ("DO_NOT_TRACK", "1"),
                ("HF_HUB_OFFLINE", "1"),
            ])
            .env("VLLM_CACHE_ROOT", &cache)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap();
        RealVllm { child, log, cache, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Waits for `GET /health` to answer 200: ~40-60 s on an idle 2-core machine, minutes while
    /// other builds share the cores.
    fn wait_ready(&mut self, limit: std::time::Duration) -> std::time::Duration {
        use std::io::{Read, Write};
        let t = std::time::Instant::now();
        while t.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("vLLM exited ({status}) before it was ready:\n{}", self.log_tail());
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let _ = s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
                let mut r = String::new();
                let _ = s.read_to_string(&mut r);
                if r.starts_with("HTTP/1.1 200") {
                    return t.elapsed();
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!("vLLM not ready after {limit:?}:\n{}", self.log_tail());
    }

    /// Processes still alive that it started: its group, and anything that inherited its
    /// environment (its own `VLLM_CACHE_ROOT`), in case one left the group.
    fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        if nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.child.id() as i32), None).is_ok() {
            out.push(format!("process group {}", self.child.id()));
        }
        let marker = format!("VLLM_CACHE_ROOT={}\0", self.cache.display());
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            if env.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                out.push(format!("{}: {}", e.file_name().to_string_lossy(), String::from_utf8_lossy(&cmd).replace('\0', " ")));
            }
        }
        out
    }

    /// SIGTERM to the whole group, SIGKILL after 30 s; returns once nothing of it runs.
    fn stop(&mut self) {
        use nix::sys::signal::{killpg, Signal};
        let pg = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = killpg(pg, Signal::SIGTERM);
        let _ = self.child.try_wait();
        let t = std::time::Instant::now();
        loop {
            let _ = self.child.try_wait();
            if self.leftovers().is_empty() {
                break;
            }
            if t.elapsed() > std::time::Duration::from_secs(30) {
                let _ = killpg(pg, Signal::SIGKILL);
                for pid in self.leftovers().iter().filter_map(|l| l.split(':').next()?.parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            if t.elapsed() > std::time::Duration::from_secs(60) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let _ = self.child.wait();
    }
}

#[cfg(feature = "system-tests")]
impl Drop for RealVllm {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(feature = "system-tests")]
#[test]
fn bench_serve_sweeps_real_vllm_with_token_counts_from_its_usage() {
    let p = Project::new();
    let mut vllm = RealVllm::start(p.dir.path());
    let took = vllm.wait_ready(Duration::from_secs(900));
    eprintln!("real vLLM (one node, CPU) ready in {:.1} s", took.as_secs_f64());
    let url = vllm.url();
    let mut points_seen = Vec::new();
    for api in ["chat", "completions"] {
        let json_path = p.s(&format!("{api}.json"));
        let args = [
            "bench",
            "serve",
            "--url",
            &url,
            "--api",
            api,
            "--concurrency",
            "1,2",
            "--prompt-tokens",
            "8,32",
            "--max-tokens",
            "4",
            "--requests",
            "4",
            "--stall-timeout",
            "300s",
            "-q",
            "--output",
            &json_path,
        ];
        let run = sparkctl(&p.store(), &args);
        assert_eq!(run.code, 0, "{api}: {}\n{}\nvLLM:\n{}", run.stdout, run.stderr, vllm.log_tail());
        let j = json(&std::fs::read_to_string(&json_path).unwrap());
        assert_eq!(j["model"], "tiny", "model from /v1/models");
        assert_eq!(j["prompt_tokens_exact"], true, "{api}: {}", j["prompt_tokens_note"]);
        let points = j["points"].as_array().unwrap();
        assert_eq!(points.len(), 4, "2 concurrencies × 2 prompt lengths");
        for pt in points {
            let s = &pt["summary"];
            assert_eq!((s["requests"].as_u64(), s["ok"].as_u64()), (Some(4), Some(4)), "{api}: {s}");
            // Every output token count is vLLM's own `usage` (exactly `max_tokens`: `ignore_eos`
            // and `min_tokens` were honoured); the counted fallback was never needed.
            assert_eq!((s["output_tokens_usage"].as_u64(), s["output_tokens_counted"].as_u64()), (Some(16), Some(0)), "{api}: {s}");
            // The tokens were seen as they came, empty-text byte-fallback tokens included (vLLM's
            // running usage grew): up to 3 gaps per request. vLLM's API server puts two tokens in
            // one chunk when it falls behind (seen under load: 11 of 12), so most, not all.
            let gaps = s["itl_ms"]["n"].as_u64().unwrap_or(0);
            assert!((4 * 3 - 4..=4 * 3).contains(&gaps), "{api}: {gaps} gaps: {s}");
            let wanted = pt["workload"]["prompt_tokens"].as_u64().unwrap();
            let prompts: Vec<u64> = pt["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    assert_eq!(r["error"], serde_json::Value::Null, "{r}");
                    assert_eq!((r["output_tokens"].as_u64(), r["output_tokens_from_usage"].as_bool()), (Some(4), Some(true)), "{r}");
                    assert!(r["first_token_s"].as_f64().is_some() && r["first_content_s"].as_f64().is_some(), "{r}");
                    r["prompt_tokens"].as_u64().unwrap_or_else(|| panic!("no prompt tokens from usage: {r}"))
                })
                .collect();
            // Exactly the length asked for, by vLLM's own count of what it was sent (its
            // `usage`), chat template included: the tiny model's tokenizer splits most words, so
            // one word per token would be far off.
            assert!(prompts.iter().all(|&n| n == wanted), "{api} prompt {wanted}: {prompts:?}");
            assert!(pt["workload"]["prompt_tokens_exact"].as_bool().unwrap(), "{api}: {}", pt["workload"]);
            points_seen.push((api, wanted, prompts.iter().sum::<u64>() as f64 / prompts.len() as f64));
        }
    }
    // The longer prompt is longer to the server too.
    for api in ["chat", "completions"] {
        let mean = |w: u64| points_seen.iter().filter(|(a, p, _)| *a == api && *p == w).map(|x| x.2).fold(0.0, f64::max);
        assert!(mean(32) > mean(8) + 20.0, "{api}: {points_seen:?}");
    }
    vllm.stop();
    let left = vllm.leftovers();
    assert!(left.is_empty(), "vLLM left processes behind: {left:?}\n{}", vllm.log_tail());
}

/// A raw HTTP server that keeps the JSON body of each request it gets (sent on the channel) and
/// answers each with real vLLM's recorded chat stream, closing the connection after it.
fn capture() -> (String, std::sync::mpsc::Receiver<serde_json::Value>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/openai_sse/sparkctl-vllm-0.32-cpu-chat-stream-continuous-usage.txt");
    let stream: String = std::fs::read_to_string(fixture).unwrap().lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let mut buf = Vec::new();
            let mut b = [0u8; 65536];
            let body = loop {
                let n = s.read(&mut b).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&b[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() >= end + 4 + len {
                    break Some(buf[end + 4..end + 4 + len].to_vec());
                }
            };
            let Some(body) = body else { continue };
            // Like a server without vLLM's `/tokenize`: prompt lengths stay one word per token.
            if buf.starts_with(b"POST /tokenize ") {
                let _ = write!(s, "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                continue;
            }
            if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                return;
            }
            let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{stream}");
        }
    });
    (url, rx)
}

fn received(rx: &std::sync::mpsc::Receiver<serde_json::Value>, n: usize) -> Vec<serde_json::Value> {
    (0..n).map(|_| rx.recv_timeout(Duration::from_secs(30)).expect("a request")).collect()
}

#[test]
fn bench_serve_sends_an_image_part_that_decodes_and_the_standin_takes_it() {
    use base64::Engine as _;
    let p = Project::new();
    let (url, rx) = capture();
    bench_serve(&p, &url, &["--model", "m", "--image", "16x8", "--prompt-tokens", "5", "--max-tokens", "4", "--requests", "2", "-q"]).ok();
    let bodies = received(&rx, 2);
    let content = &bodies[0]["messages"][0]["content"];
    assert_eq!(bodies[0]["messages"].as_array().unwrap().len(), 1, "{}", bodies[0]);
    assert_eq!(content[0]["type"], "text");
    assert_eq!(content[0]["text"].as_str().unwrap().split(' ').count(), 5);
    assert_eq!(content[1]["type"], "image_url");
    assert_eq!(content.as_array().unwrap().len(), 2);
    let data_url = content[1]["image_url"]["url"].as_str().unwrap();
    let b64 = data_url.strip_prefix("data:image/png;base64,").unwrap_or_else(|| panic!("{}", &data_url[..40]));
    let png = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    // Checked by Python's zlib: every chunk's CRC, and 8 scanlines of 16 RGB pixels inflated.
    p.write("sent.png", "");
    std::fs::write(p.path("sent.png"), &png).unwrap();
    let check = "import sys, struct, zlib\nb = open(sys.argv[1], 'rb').read()\nassert b[:8] == b'\\x89PNG\\r\\n\\x1a\\n'\ni, idat = 8, b''\nwhile i < len(b):\n    n, = struct.unpack('>I', b[i:i+4]); kind = b[i+4:i+8]; data = b[i+8:i+8+n]\n    assert struct.unpack('>I', b[i+8+n:i+12+n])[0] == zlib.crc32(kind + data), kind\n    if kind == b'IHDR': w, h = struct.unpack('>II', data[:8])\n    if kind == b'IDAT': idat += data\n    i += 12 + n\nprint(w, h, len(zlib.decompress(idat)))\n";
    let out = tool("python3", &["-c", check, &p.s("sent.png")]).ok();
    assert_eq!(out.stdout.trim(), format!("16 8 {}", 8 * (1 + 16 * 3)));
    assert_eq!(bodies[1]["messages"][0]["content"][1], content[1], "the same image in every request");

    // The stand-in takes it (and a file), and the run file names the image.
    let s = server(0);
    for image in ["32x32", &p.s("sent.png")] {
        bench_serve(&p, &s.url(), &["--image", image, "--max-tokens", "2", "--requests", "3", "-q", "--output", &p.s("run.json")]).ok();
        let j = json(&std::fs::read_to_string(p.path("run.json")).unwrap());
        assert_eq!(j["points"][0]["summary"]["ok"], 3, "{image}");
        let label = j["points"][0]["workload"]["image"].as_str().unwrap();
        assert!(label.contains(if image == "32x32" { "synthetic 32x32 PNG" } else { "sent.png (image/png" }), "{label}");
    }
    // Bad input: one line, exit 2, naming the flag and the cause.
    p.write("notes.txt", "not an image\n");
    for (args, needle) in [
        (vec!["--image", "0x5"], "`--image` size `0x5`: width and height must be 1 to 8192"),
        (vec!["--image", &p.s("notes.txt")], "not a PNG, JPEG, GIF or WebP image"),
        (vec!["--image", &p.s("missing.png")], "`--image`: reading"),
        (vec!["--image", "4x4", "--api", "completions"], "`--image` needs `--api chat`"),
    ] {
        let mut full = vec!["bench", "serve", "--url", &url, "--model", "m", "--requests", "1"];
        full.extend(args);
        let out = sparkctl(&p.store(), &full);
        assert_eq!(out.code, 2, "{full:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains(needle), "{}", out.stderr);
    }
}

#[test]
fn bench_serve_shared_prefix_is_exactly_shared_then_every_prompt_differs() {
    let p = Project::new();
    let (url, rx) = capture();
    let args = ["--prompt-tokens", "12", "--shared-prefix", "5", "--requests", "6", "--api", "completions", "--max-tokens", "4", "-q"];
    let mut full = vec!["bench", "serve", "--url", &url, "--model", "m"];
    full.extend(args);
    sparkctl(&p.store(), &full).ok();
    let prompts: Vec<Vec<String>> = received(&rx, 6).iter().map(|b| b["prompt"].as_str().unwrap().split(' ').map(String::from).collect()).collect();
    assert!(prompts.iter().all(|w| w.len() == 12), "{prompts:?}");
    assert!(prompts.iter().all(|w| w[..5] == prompts[0][..5]), "the first 5 words are shared: {prompts:?}");
    for (i, a) in prompts.iter().enumerate() {
        for b in &prompts[i + 1..] {
            assert_ne!(a[5], b[5], "the word right after the prefix differs: {prompts:?}");
        }
    }
    // Without a shared prefix, every prompt differs from its first word.
    let mut full = vec!["bench", "serve", "--url", &url, "--model", "m"];
    full.extend(["--prompt-tokens", "12", "--requests", "6", "--api", "completions", "--max-tokens", "4", "-q"]);
    sparkctl(&p.store(), &full).ok();
    let firsts: std::collections::BTreeSet<String> =
        received(&rx, 6).iter().map(|b| b["prompt"].as_str().unwrap().split(' ').next().unwrap().to_owned()).collect();
    assert_eq!(firsts.len(), 6, "{firsts:?}");
}

#[test]
fn bench_serve_sends_openai_api_key_from_the_environment() {
    let p = Project::new();
    let s = standin::spawn(Config { api_key: Some("sk-test-7".into()), ..Config::default() }).unwrap();
    let url = s.url();
    let run = |key: Option<&str>, extra: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sparkctl"));
        c.args(["bench", "serve", "--url", &url, "--max-tokens", "2", "--requests", "3", "-q", "--output", &p.s("run.json")]).args(extra);
        c.env("SPARKCTL_STORE", p.store()).env_remove("OPENAI_API_KEY");
        if let Some(k) = key {
            c.env("OPENAI_API_KEY", k);
        }
        let o = c.output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    // With the key in the environment: the model list and every request pass.
    assert_eq!(run(Some("sk-test-7"), &[]).0, Some(0));
    let j = json(&std::fs::read_to_string(p.path("run.json")).unwrap());
    assert_eq!(j["points"][0]["summary"]["ok"], 3);
    assert!(!std::fs::read_to_string(p.path("run.json")).unwrap().contains("sk-test-7"), "the key is not written to the run file");
    // Without it (model named, so no model list): every request is an HTTP 401, counted by kind.
    assert_eq!(run(None, &["--model", "standin"]).0, Some(0));
    let j = json(&std::fs::read_to_string(p.path("run.json")).unwrap());
    assert_eq!(j["points"][0]["summary"]["ok"], 0);
    assert_eq!(j["points"][0]["summary"]["errors"], serde_json::json!({"http_401": 3}));
    // A wrong key and no model: the model list is refused, in one line.
    let (code, err) = run(Some("wrong"), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.lines().count() == 1 && err.contains("/v1/models") && err.contains("HTTP 401"), "{err}");
}

#[test]
fn bench_serve_warmup_requests_are_sent_but_not_measured() {
    let p = Project::new();
    let s = standin::spawn(Config { itl: Duration::from_millis(10), output_tokens: Some(5), ..Config::default() }).unwrap();
    let args = ["bench", "serve", "--url", &s.url(), "--concurrency", "2", "--warmup", "600ms", "--duration", "600ms", "-q", "--output", &p.s("run.json")];
    sparkctl(&p.store(), &args).ok();
    let j = json(&std::fs::read_to_string(p.path("run.json")).unwrap());
    let reqs = j["points"][0]["requests"].as_array().unwrap();
    assert!(!reqs.is_empty());
    assert!(reqs.iter().all(|r| (0.6..1.2).contains(&r["intended_s"].as_f64().unwrap())), "measured requests start after the warm-up");
    // About 2 workers × 600 ms ÷ 40 ms of warm-up requests reached the server too.
    let served = s.lateness.first_tokens();
    assert!(served >= reqs.len() as u64 + 10, "served {served}, measured {}", reqs.len());
}

#[test]
fn bench_serve_ramp_up_starts_the_workers_spread_over_it() {
    let p = Project::new();
    // Each request takes 800 ms, longer than the ramp-up: the four requests are the four
    // workers' first.
    let s = standin::spawn(Config { ttft: Duration::from_millis(800), output_tokens: Some(1), ..Config::default() }).unwrap();
    let args = ["bench", "serve", "--url", &s.url(), "--concurrency", "4", "--ramp-up", "600ms", "--requests", "4", "-q", "--output", &p.s("run.json")];
    sparkctl(&p.store(), &args).ok();
    let j = json(&std::fs::read_to_string(p.path("run.json")).unwrap());
    let mut starts: Vec<f64> = j["points"][0]["requests"].as_array().unwrap().iter().map(|r| r["intended_s"].as_f64().unwrap()).collect();
    starts.sort_by(f64::total_cmp);
    assert_eq!(starts.len(), 4);
    for (i, t) in starts.iter().enumerate() {
        let due = i as f64 * 0.15;
        // Never early; late only by the timer and a loaded machine.
        assert!(*t >= due - 0.001 && *t < due + 0.1, "worker {i} started at {t:.3} s, due at {due} s: {starts:?}");
    }
}

#[test]
fn bench_serve_rate_sweep_runs_each_rate_open_loop() {
    let p = Project::new();
    let s = server(1);
    let args = [
        "bench",
        "serve",
        "--url",
        &s.url(),
        "--rate",
        "10,25",
        "--arrival",
        "constant",
        "--max-tokens",
        "3",
        "--requests",
        "6",
        "-q",
        "--output",
        &p.s("run.json"),
    ];
    let out = sparkctl(&p.store(), &args).ok();
    assert!(out.stdout.contains("r=10/s constant") && out.stdout.contains("r=25/s constant"), "{}", out.stdout);
    let j = json(&std::fs::read_to_string(p.path("run.json")).unwrap());
    let points = j["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for (pt, rate) in points.iter().zip([10.0, 25.0]) {
        assert_eq!(pt["spec"]["load"]["mode"], "open");
        assert_eq!(pt["spec"]["load"]["rate"], rate);
        assert_eq!(pt["summary"]["ok"], 6);
        // Intended send times are the schedule itself: one every 1/rate seconds.
        for (i, r) in pt["requests"].as_array().unwrap().iter().enumerate() {
            let t = r["intended_s"].as_f64().unwrap();
            assert!((t - i as f64 / rate).abs() < 1e-6, "rate {rate}: request {i} intended at {t}");
        }
    }
}
