//! `cargo xtask bench serve`: sparkctl's serving benchmark side by side with AIPerf, GuideLLM and
//! llama-benchy (PyPI, throwaway venvs under target/bench/serve/venv), against the same release
//! `openai-standin`, in one run:
//!
//! 1. agreement: the same closed-loop workload against a stand-in with known delays (clients
//!    unpinned); each client's mean TTFT and output tok/s beside what the stand-in was told;
//! 2. ceiling: each client pinned to core 0 (`taskset`), the zero-latency stand-in on core 1,
//!    64 streams: 256-token answers for chunks/s (one token per chunk: = output tok/s), then
//!    1-token answers for requests/s; the stand-in's own CPU use beside each (near 100%, the
//!    figure is the stand-in's, not the client's);
//! 3. sparkctl's peak RSS (`/usr/bin/time`) holding 2000 concurrent streams.
//!
//! It ends with PASS or FAIL against the two targets: sparkctl's ceiling ≥ 5× the best Python
//! client's (chunks/s and requests/s), and ≤ 100 MB RSS at 2000 streams; the exit code is 1 on
//! a FAIL. Results print as Markdown (copied into BENCHMARKS.md) and land in target/bench/serve/.
//! `cargo xtask bench serve sparkctl` runs sparkctl's rows only (no Python); naming peers
//! (`… sparkctl aiperf`) runs those only; `--prebuilt` skips the release build.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xshell::{cmd, Shell};

/// Pinned peers, each in its own venv.
pub const PEERS: &[(&str, &str)] = &[("aiperf", "aiperf==0.13.0"), ("guidellm", "guidellm==0.8.1"), ("llama-benchy", "llama-benchy==0.4.0")];

/// The agreement workload: what the stand-in is told, and the load.
const TTFT_MS: u64 = 100;
const ITL_MS: u64 = 10;
const OUT_TOKENS: u64 = 64;
const PROMPT: u64 = 128;
const CONC: u64 = 8;
const REQUESTS: u64 = 64;
/// The ceiling workloads: long answers (chunks/s), then 1-token answers (requests/s).
const CEIL_CONC: u64 = 64;
const CEIL_TOKENS: u64 = 256;
const CEIL_SECS: u64 = 15;
/// The targets.
const TARGET_RATIO: f64 = 5.0;
const TARGET_RSS_MB: f64 = 100.0;
const RSS_STREAMS: u64 = 2000;

struct Standin {
    child: Child,
    url: String,
}

impl Standin {
    /// CPU seconds the stand-in used so far (user + system, from `/proc/PID/stat`).
    fn cpu_s(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the `(comm)`: state is field 3, utime 14 and stime 15 (1-based).
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the release stand-in on `core` with a free port.
fn standin(root: &Path, core: &str, args: &[&str]) -> Result<Standin> {
    let bin = root.join("target/release/openai-standin");
    let mut child = Command::new("taskset")
        .args(["-c", core])
        .arg(bin)
        .args(["--port", "0", "--model", "standin"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting openai-standin")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stand-in stdout")?).read_line(&mut line)?;
    let url = line.trim().strip_prefix("listening on ").context("stand-in did not say where it listens")?.to_owned();
    Ok(Standin { child, url })
}

/// `GET /standin/lateness`: how late the stand-in itself wrote first tokens (ms, mean).
fn server_lateness(url: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("http://")?;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(format!("GET /standin/lateness HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1)?).ok()?;
    body["first_token_ms"].as_f64()
}

struct Row {
    client: String,
    /// The stand-in's own mean first-token lateness during this client's run (agreement only).
    server_late_ms: Option<f64>,
    ttft_ms: Option<f64>,
    tok_s: Option<f64>,
    /// Requests/s (the ceiling's 1-token run).
    req_s: Option<f64>,
    /// The stand-in's CPU use during the run, in % of one core (ceiling only).
    server_cpu: Option<f64>,
    note: String,
}

pub fn run(sh: &Shell, args: &[String]) -> Result<()> {
    // `--prebuilt`: take target/release/{sparkctl,openai-standin} as they are (no cargo build).
    let prebuilt = args.iter().any(|a| a == "--prebuilt");
    let args: Vec<String> = args.iter().filter(|a| *a != "--prebuilt").cloned().collect();
    let only_sparkctl = args.iter().all(|a| a == "sparkctl") && !args.is_empty();
    let root = sh.current_dir();
    if !prebuilt {
        cmd!(sh, "cargo build --release --locked -p cli -p openai-standin").run()?;
    }
    let out = root.join("target/bench/serve");
    std::fs::create_dir_all(&out)?;
    let sparkctl = root.join("target/release/sparkctl");
    let peers: Vec<&str> = PEERS.iter().map(|p| p.0).filter(|p| args.is_empty() || args.iter().any(|a| a == p)).collect();
    if let Some(a) = args.iter().find(|a| *a != "sparkctl" && !PEERS.iter().any(|p| p.0 == a.as_str())) {
        bail!("unknown client `{a}`: expected sparkctl, aiperf, guidellm or llama-benchy");
    }
    for peer in &peers {
        venv(sh, &out, peer)?;
    }
    let tokenizer = if only_sparkctl { None } else { Some(tokenizer(&out)?) };

    // 1. Agreement.
    let mut agree = Vec::new();
    {
        let ttft = format!("{TTFT_MS}ms");
        let itl = format!("{ITL_MS}ms");
        let n = OUT_TOKENS.to_string();
        // A fresh stand-in per client, so its own lateness is that client's run's.
        let args = ["--ttft", &ttft, "--itl", &itl, "--output-tokens", &n];
        let s = standin(&root, "1", &args)?;
        let mut row = sparkctl_row(&sparkctl, &s.url, &out.join("agree-sparkctl.json"), CONC, PROMPT, OUT_TOKENS, Some(REQUESTS), None)?;
        row.server_late_ms = server_lateness(&s.url);
        agree.push(row);
        for peer in &peers {
            let s = standin(&root, "1", &args)?;
            let mut row = peer_row(&out, peer, &s.url, tokenizer.as_deref().unwrap_or(Path::new("")), CONC, PROMPT, OUT_TOKENS, REQUESTS, None)?;
            row.server_late_ms = server_lateness(&s.url);
            agree.push(row);
        }
    }
    // 2. Ceiling on one core: long answers (chunks/s), then 1-token answers (requests/s).
    let mut ceiling = Vec::new();
    {
        let s = standin(&root, "1", &[])?;
        let n_req = 100_000;
        let tok = tokenizer.as_deref().unwrap_or(Path::new(""));
        let mut clients: Vec<Option<&str>> = vec![None];
        clients.extend(peers.iter().map(|p| Some(*p)));
        for client in clients {
            let mut rows = Vec::new();
            for (tokens, tag) in [(CEIL_TOKENS, "ceiling"), (1, "ceiling-req")] {
                let cpu0 = s.cpu_s();
                let t = Instant::now();
                let mut row = match client {
                    None => sparkctl_row(&sparkctl, &s.url, &out.join(format!("{tag}-sparkctl.json")), CEIL_CONC, 16, tokens, None, Some(CEIL_SECS))?,
                    Some(peer) => peer_row(&out, peer, &s.url, tok, CEIL_CONC, 16, tokens, n_req, Some(CEIL_SECS))?,
                };
                // The stand-in's share of one core over the client's whole run (start-up included:
                // a lower bound of its load while requests flowed).
                row.server_cpu = cpu0.zip(s.cpu_s()).map(|(a, b)| (b - a) / secs(t.elapsed()) * 100.0);
                rows.push(row);
            }
            let req = rows.pop().context("the requests/s run")?;
            let mut row = rows.pop().context("the chunks/s run")?;
            row.req_s = req.req_s;
            row.note = format!(
                "chunks/s run: {}, stand-in {} % CPU; req/s run: {}, stand-in {} % CPU",
                row.note,
                cell(row.server_cpu, 0),
                req.note,
                cell(req.server_cpu, 0)
            );
            ceiling.push(row);
        }
    }
    // 3. RSS at 2000 streams: each stream lasts ~10 s (100 tokens, 100 ms apart).
    let rss_mb = {
        let s = standin(&root, "1", &["--itl", "100ms", "--output-tokens", "100"])?;
        let streams = RSS_STREAMS.to_string();
        let json = out.join("rss-sparkctl.json");
        let o = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(&sparkctl)
            .args(["bench", "serve", "--url", &s.url, "--model", "standin", "--concurrency", &streams, "--prompt-tokens", "16", "--max-tokens", "100"])
            .args(["--duration", "8s", "-q", "--output"])
            .arg(&json)
            .output()?;
        let stderr = String::from_utf8_lossy(&o.stderr);
        let kb: f64 = stderr.lines().last().and_then(|l| l.trim().parse().ok()).context("no peak RSS from /usr/bin/time")?;
        let run: Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
        let ok = run["points"][0]["summary"]["ok"].as_u64().unwrap_or(0);
        if ok < RSS_STREAMS {
            bail!("only {ok} streams completed at concurrency {RSS_STREAMS}");
        }
        kb / 1024.0
    };
    let (md, pass) = render(&agree, &ceiling, rss_mb);
    println!("{md}");
    std::fs::write(out.join("results.md"), &md)?;
    if !pass {
        bail!("a target was missed (FAIL above)");
    }
    Ok(())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[allow(clippy::too_many_arguments)]
fn sparkctl_row(bin: &Path, url: &str, json: &Path, conc: u64, prompt: u64, tokens: u64, requests: Option<u64>, duration: Option<u64>) -> Result<Row> {
    let mut c = Command::new("taskset");
    c.args(["-c", if duration.is_some() { "0" } else { "0,1" }]).arg(bin).args(["bench", "serve", "--url", url, "--model", "standin", "-q"]);
    c.args(["--concurrency", &conc.to_string(), "--prompt-tokens", &prompt.to_string(), "--max-tokens", &tokens.to_string()]);
    if let Some(n) = requests {
        c.args(["--requests", &n.to_string()]);
    }
    if let Some(d) = duration {
        c.args(["--duration", &format!("{d}s"), "--warmup", "1s"]);
    }
    c.arg("--output").arg(json);
    let t = Instant::now();
    let o = c.output()?;
    if !o.status.success() {
        bail!("sparkctl bench serve failed: {}", String::from_utf8_lossy(&o.stderr));
    }
    let run: Value = serde_json::from_str(&std::fs::read_to_string(json)?)?;
    let s = &run["points"][0]["summary"];
    Ok(Row {
        client: format!("sparkctl {}", env!("CARGO_PKG_VERSION")),
        server_late_ms: None,
        ttft_ms: s["ttft_ms"]["mean"].as_f64(),
        tok_s: s["output_tok_per_s"].as_f64(),
        req_s: s["req_per_s"].as_f64(),
        server_cpu: None,
        note: if duration.is_some() {
            format!("{:.0} req/s, {} ok; {:.0} s", s["req_per_s"].as_f64().unwrap_or(0.0), s["ok"], secs(t.elapsed()))
        } else {
            format!(
                "{:.2} req/s, {} ok; decode phase (concurrency ÷ TPOT) {:.0} tok/s; {:.0} s",
                s["req_per_s"].as_f64().unwrap_or(0.0),
                s["ok"],
                conc as f64 * 1000.0 / s["tpot_ms"]["mean"].as_f64().unwrap_or(f64::INFINITY),
                secs(t.elapsed())
            )
        },
    })
}

fn venv(sh: &Shell, out: &Path, peer: &str) -> Result<()> {
    let dir = out.join("venv").join(peer);
    let spec = PEERS.iter().find(|p| p.0 == peer).map(|p| p.1).unwrap_or(peer);
    let marker = dir.join(format!(".installed-{spec}"));
    if marker.exists() {
        return Ok(());
    }
    cmd!(sh, "python3 -m venv {dir}").run()?;
    // GuideLLM needs torch, and pip would fetch the multi-GB CUDA build: with `cargo xtask vllm`
    // done, its venv's CPU torch is seen through a `.pth` (appended to the path: the venv's own
    // packages still come first).
    let vllm_site = sh.current_dir().join("target/vllm/lib/python3.11/site-packages");
    if peer == "guidellm" && vllm_site.is_dir() {
        let site = dir.join("lib/python3.11/site-packages");
        if site.is_dir() {
            std::fs::write(site.join("zz-cpu-torch-from-vllm-venv.pth"), format!("{}\n", vllm_site.canonicalize()?.display()))?;
        }
    }
    let pip = dir.join("bin/pip");
    cmd!(sh, "{pip} install -q {spec}").run().with_context(|| format!("pip install {spec}"))?;
    std::fs::write(marker, "")?;
    Ok(())
}

/// A local Hugging Face tokenizer directory (the peers need one to make prompts and count
/// tokens; the hub is unreachable here): a word-level vocabulary over the same words sparkctl's
/// prompts use, so "N tokens" means about the same to every client. Also fills llama-benchy's
/// book cache (`HOME/.cache/llama-benchy/md5(url).txt`) with text of those words, for its
/// default book is downloaded from the web.
fn tokenizer(out: &Path) -> Result<PathBuf> {
    let dir = out.join("tokenizer");
    std::fs::create_dir_all(&dir)?;
    let script = r###"
import sys, json, hashlib, os, random
from tokenizers import Tokenizer, models, pre_tokenizers, decoders
words = "the of and to in is that for it as was with be by on not he this are or his from at which but have an had they you were their one all we can her has there been if more when will would who so no time people year way day man thing world life hand part place case week work water".split()
vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
for w in words + ["tok", "en", "hmm"]:
    vocab.setdefault(w, len(vocab))
for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\":;-_()[]{}<>/\\|@#$%^&*+=~`":
    vocab.setdefault(c, len(vocab))
t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
t.pre_tokenizer = pre_tokenizers.Whitespace()
t.decoder = decoders.WordPiece(prefix="##")
d, home = sys.argv[1], sys.argv[2]
t.save(d + "/tokenizer.json")
json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "model_max_length": 131072,
           "chat_template": "{% for m in messages %}{{ m['content'] }} {% endfor %}"}, open(d + "/tokenizer_config.json", "w"))
json.dump({"model_type": "llama"}, open(d + "/config.json", "w"))
cache = os.path.join(home, ".cache", "llama-benchy")
os.makedirs(cache, exist_ok=True)
r = random.Random(1)
open(os.path.join(cache, hashlib.md5(b"local:corpus").hexdigest() + ".txt"), "w").write(" ".join(r.choice(words) for _ in range(200000)))
"###;
    let py = out.join("venv/aiperf/bin/python");
    let st = Command::new(py).arg("-c").arg(script).arg(&dir).arg(out.join("llama-benchy-home")).status()?;
    if !st.success() {
        bail!("writing the local tokenizer failed");
    }
    Ok(dir)
}

/// How a peer is run: unpinned for agreement, on core 0 for the ceiling.
#[allow(clippy::too_many_arguments)]
fn peer_row(out: &Path, peer: &str, url: &str, tok: &Path, conc: u64, prompt: u64, tokens: u64, requests: u64, duration: Option<u64>) -> Result<Row> {
    let bin = out.join("venv").join(peer).join("bin");
    let work = out.join(if duration.is_some() { format!("{peer}-ceiling-{tokens}") } else { format!("{peer}-agree") });
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let tok_s = tok.display().to_string();
    let (c, p, t, n) = (conc.to_string(), prompt.to_string(), tokens.to_string(), requests.to_string());
    let mut cmd = Command::new("taskset");
    // No HF_HUB_OFFLINE: AIPerf then refuses a local tokenizer path as a "repo id".
    cmd.args(["-c", if duration.is_some() { "0" } else { "0,1" }]).current_dir(&work);
    match peer {
        "aiperf" => {
            cmd.arg(bin.join("aiperf")).args(["profile", "--model", "standin", "--url", url, "--endpoint-type", "chat", "--streaming"]);
            cmd.args(["--tokenizer", &tok_s, "--concurrency", &c, "--isl", &p, "--isl-stddev", "0", "--osl", &t]);
            cmd.args(["--extra-inputs", "ignore_eos:true", "--extra-inputs", &format!("min_tokens:{t}"), "--artifact-dir", "out", "--ui-type", "none"]);
            match duration {
                Some(d) => cmd.args(["--benchmark-duration", &d.to_string()]),
                None => cmd.args(["--request-count", &n]),
            };
        }
        "guidellm" => {
            let backend = format!("kind=openai_http,target={url},model=standin");
            cmd.arg(bin.join("guidellm")).args(["run", "--backend", &backend, "--profile", &format!("kind=concurrent,streams={c}")]);
            cmd.args(["--data", &format!("kind=synthetic_text,prompt_tokens={p},output_tokens={t}")]);
            cmd.args(["--tokenizer", &format!("kind=huggingface_auto,model={tok_s}"), "--output", "kind=json,path=out.json", "--disable-console-interactive"]);
            match duration {
                Some(d) => cmd.args(["--constraint", &format!("kind=max_duration,seconds={d}")]),
                None => cmd.args(["--constraint", &format!("kind=max_requests,count={n}")]),
            };
        }
        _ => {
            // One "run" is one batch of `conc` requests; the book comes from the cache filled above.
            let runs = if duration.is_some() { 5 } else { requests / conc };
            cmd.env("HOME", out.join("llama-benchy-home"));
            cmd.arg(bin.join("llama-benchy")).args(["--base-url", &format!("{url}/v1"), "--model", "standin", "--tokenizer", &tok_s]);
            cmd.args(["--book-url", "local:corpus", "--pp", &p, "--tg", &t, "--exact-tg", "--concurrency", &c, "--runs", &runs.to_string()]);
            cmd.args(["--latency-mode", "none", "--skip-coherence", "--no-warmup", "--save-result", "result.json", "--format", "json"]);
        }
    }
    let t0 = Instant::now();
    let o = cmd.output().with_context(|| format!("running {peer}"))?;
    let elapsed = secs(t0.elapsed());
    std::fs::write(work.join("stdout.txt"), &o.stdout)?;
    std::fs::write(work.join("stderr.txt"), &o.stderr)?;
    let name = format!("{} {}", peer, PEERS.iter().find(|x| x.0 == peer).map_or("", |x| x.1.split("==").nth(1).unwrap_or("")));
    if !o.status.success() {
        return Ok(Row {
            client: name,
            server_late_ms: None,
            ttft_ms: None,
            tok_s: None,
            req_s: None,
            server_cpu: None,
            note: format!("failed (exit {:?}), see {}", o.status.code(), work.display()),
        });
    }
    let (ttft_ms, tok, req) = parse_peer(peer, &work).unwrap_or((None, None, None));
    let note = if peer == "llama-benchy" { format!("decode-phase tok/s (its definition); {elapsed:.0} s") } else { format!("{elapsed:.0} s") };
    Ok(Row { client: name, server_late_ms: None, ttft_ms, tok_s: tok, req_s: req, server_cpu: None, note })
}

/// Finds a peer's mean TTFT (ms), output tok/s and requests/s in its result files.
fn parse_peer(peer: &str, work: &Path) -> Option<(Option<f64>, Option<f64>, Option<f64>)> {
    let read = |name: &str| -> Option<Value> {
        let path = walk(work).into_iter().find(|p| p.file_name().is_some_and(|n| n == name))?;
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    };
    match peer {
        "aiperf" => {
            let v = read("profile_export_aiperf.json")?;
            Some((v["time_to_first_token"]["avg"].as_f64(), v["output_token_throughput"]["avg"].as_f64(), v["request_throughput"]["avg"].as_f64()))
        }
        "guidellm" => {
            let v = read("out.json")?;
            let m = &v["benchmarks"][0]["metrics"];
            let mean = |k: &str| m[k]["successful"]["mean"].as_f64();
            Some((mean("time_to_first_token_ms"), mean("output_tokens_per_second"), mean("requests_per_second")))
        }
        _ => {
            let v = read("result.json")?;
            let b = &v["benchmarks"][0];
            Some((b["e2e_ttft"]["mean"].as_f64(), b["tg_throughput"]["mean"].as_f64(), llama_benchy_req_s(b)))
        }
    }
}

/// llama-benchy reports no requests/s: its requests (concurrency × runs) over the summed mean
/// end-to-end time of its runs, when its result has them.
fn llama_benchy_req_s(b: &Value) -> Option<f64> {
    let conc = b["concurrency"].as_f64()?;
    let e2e_ms = b["e2e_latency"]["mean"].as_f64().or_else(|| b["e2e"]["mean"].as_f64())?;
    (e2e_ms > 0.0).then(|| conc / (e2e_ms / 1000.0))
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

/// The tables, and the verdicts against the targets; true when every target is met.
fn render(agree: &[Row], ceiling: &[Row], rss_mb: f64) -> (String, bool) {
    let mut md = String::new();
    let e2e = TTFT_MS + (OUT_TOKENS - 1) * ITL_MS;
    let told_tok_s = (CONC * OUT_TOKENS) as f64 / (e2e as f64 / 1000.0);
    md += &format!(
        "Agreement: stand-in told TTFT {TTFT_MS} ms, ITL {ITL_MS} ms, {OUT_TOKENS} output tokens; closed loop, concurrency {CONC}, {REQUESTS} requests, prompt {PROMPT} tokens (expected output ≈ {told_tok_s:.0} tok/s).\n\n"
    );
    md += "| client | mean TTFT (ms) | TTFT ÷ told | stand-in's own lateness (ms) | TTFT ÷ (told + lateness) | output tok/s | tok/s ÷ expected | notes |\n|---|---|---|---|---|---|---|---|\n";
    for r in agree {
        let late = r.server_late_ms.unwrap_or(0.0);
        md += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.client,
            cell(r.ttft_ms, 1),
            cell(r.ttft_ms.map(|t| t / TTFT_MS as f64), 3),
            cell(r.server_late_ms, 1),
            cell(r.ttft_ms.map(|t| t / (TTFT_MS as f64 + late)), 3),
            cell(r.tok_s, 0),
            cell(r.tok_s.map(|t| t / told_tok_s), 3),
            r.note
        );
    }
    let best = |f: fn(&Row) -> Option<f64>| ceiling.iter().skip(1).filter_map(f).fold(0.0, f64::max);
    let (best_tok, best_req) = (best(|r| r.tok_s), best(|r| r.req_s));
    let ratio = |v: Option<f64>, best: f64| v.filter(|_| best > 0.0).map(|v| v / best);
    md += &format!(
        "\nCeiling on one core (client `taskset -c 0`, zero-latency stand-in on core 1), concurrency {CEIL_CONC}, {CEIL_SECS} s each: {CEIL_TOKENS}-token answers (chunks/s; one token per chunk), then 1-token answers (requests/s).\n\n"
    );
    md += "| client | chunks/s (= output tok/s) | ÷ best Python client | requests/s | ÷ best Python client | notes |\n|---|---|---|---|---|---|\n";
    for r in ceiling {
        md += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.client,
            cell(r.tok_s, 0),
            cell(ratio(r.tok_s, best_tok), 2),
            cell(r.req_s, 0),
            cell(ratio(r.req_s, best_req), 2),
            r.note
        );
    }
    md += &format!("\nsparkctl peak RSS holding {RSS_STREAMS} concurrent streams: {rss_mb:.1} MB\n\n");
    let ours = ceiling.first();
    let mut pass = true;
    let mut verdict = |ok: Option<bool>, what: String| {
        let word = match ok {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "FAIL (no figure)",
        };
        pass &= ok == Some(true);
        md.push_str(&format!("- {word}: {what}\n"));
    };
    let tok_ratio = ours.and_then(|r| ratio(r.tok_s, best_tok));
    verdict(
        tok_ratio.map(|x| x >= TARGET_RATIO),
        format!("ceiling chunks/s: sparkctl {}× the best Python client (target ≥ {TARGET_RATIO}×)", cell(tok_ratio, 1)),
    );
    let req_ratio = ours.and_then(|r| ratio(r.req_s, best_req));
    verdict(
        req_ratio.map(|x| x >= TARGET_RATIO),
        format!("ceiling requests/s: sparkctl {}× the best Python client (target ≥ {TARGET_RATIO}×)", cell(req_ratio, 1)),
    );
    verdict(Some(rss_mb <= TARGET_RSS_MB), format!("peak RSS at {RSS_STREAMS} concurrent streams: {rss_mb:.1} MB (target ≤ {TARGET_RSS_MB} MB)"));
    (md, pass)
}
