//! `sparkctl bench serve` and `bench compare` end to end against the stand-in server.

use crate::support::{json, sparkctl, tool, Project};
use servebench::standin::{self, Config};
use std::time::Duration;

fn server(itl_ms: u64) -> standin::Handle {
    standin::spawn(Config { ttft: Duration::from_millis(20), itl: Duration::from_millis(itl_ms), reasoning_tokens: 1, ..Config::default() }).unwrap()
}

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

#[test]
fn bench_compare_shows_the_slower_server() {
    let p = Project::new();
    for (name, itl) in [("a.json", 5), ("b.json", 15)] {
        let s = server(itl);
        sparkctl(
            &p.store(),
            &[
                "bench",
                "serve",
                "--url",
                &s.url(),
                "--concurrency",
                "2",
                "--prompt-tokens",
                "8",
                "--max-tokens",
                "12",
                "--requests",
                "20",
                "-q",
                "--output",
                &p.s(name),
            ],
        )
        .ok();
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
    let out = sparkctl(
        &p.store(),
        &["bench", "serve", "--url", &s.url(), "--calibrate", "-q", "--concurrency", "64", "--max-tokens", "256", "--prompt-tokens", "16", "--duration", "3s"],
    )
    .ok();
    assert!(out.stdout.contains("warning: c=64: the client ran at") && out.stdout.contains("of its own ceiling"), "{}", out.stdout);
    // A slow server is far from it.
    let slow = server(5);
    let out =
        sparkctl(&p.store(), &["bench", "serve", "--url", &slow.url(), "--calibrate", "-q", "--concurrency", "2", "--max-tokens", "8", "--requests", "4"]).ok();
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
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/cluster.toml")).unwrap();
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
    sparkctl(
        &p.store(),
        &["bench", "serve", "--url", &s.url(), "--dataset", &p.s("prompts.jsonl"), "--max-tokens", "5", "--requests", "4", "-q", "--output", &p.s("run.json")],
    )
    .ok();
    let j = json(&std::fs::read_to_string(p.path("run.json")).unwrap());
    let reqs = j["points"][0]["requests"].as_array().unwrap();
    let seen: Vec<(u64, u64)> = reqs.iter().map(|r| (r["prompt_tokens"].as_u64().unwrap(), r["output_tokens"].as_u64().unwrap())).collect();
    // Line 1: 3 words, 2 tokens asked (+1 reasoning); line 2: 7 words, `--max-tokens` 5 (+1).
    assert_eq!(seen, [(3, 3), (7, 6), (3, 3), (7, 6)]);
    p.write("bad.jsonl", "{\"prompt\": \"x\"}\n{\"text\": 1}\n");
    let out = sparkctl(&p.store(), &["bench", "serve", "--url", &s.url(), "--dataset", &p.s("bad.jsonl"), "--requests", "1"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("bad.jsonl") && out.stderr.contains("line 2"), "{}", out.stderr);
}
