//! `sparkctl bench serve` and `sparkctl bench compare`: thin shims over `servebench`. The
//! progress line is drawn here, from the library's live counters.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use servebench::client::{self, Live, Load, RunSpec, Target};
use servebench::metrics::{parse_duration, parse_slo, summarize, Slo};
use servebench::report::{self, Calibration, Point, RunFile};
use servebench::schedule::Arrival;
use servebench::workload::{Api, Workload};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, ValueEnum)]
enum ApiArg {
    Chat,
    Completions,
}

#[derive(Clone, Copy, ValueEnum)]
enum ArrivalArg {
    Constant,
    Poisson,
    Gamma,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Server base URL (`http://host:port`)
    #[arg(long, conflicts_with = "cluster")]
    url: Option<String>,
    /// Take the head's API address and port from this cluster description instead
    #[arg(long)]
    cluster: Option<PathBuf>,
    /// Endpoint: chat (`/v1/chat/completions`) or completions (`/v1/completions`)
    #[arg(long, value_enum, default_value = "chat")]
    api: ApiArg,
    /// Model name (default: the first of `/v1/models`)
    #[arg(long)]
    model: Option<String>,
    /// API key, sent as `Authorization: Bearer …`
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Closed loop: requests in flight; a list sweeps (`1,8,64`). With `--rate`: the cap on
    /// requests in flight for each rate
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Open loop: requests/s; a list sweeps
    #[arg(long, value_delimiter = ',')]
    rate: Vec<f64>,
    /// Open-loop arrivals
    #[arg(long, value_enum, default_value = "poisson")]
    arrival: ArrivalArg,
    /// Gamma shape for `--arrival gamma` (below 1: burstier than Poisson)
    #[arg(long, default_value_t = 1.0)]
    burstiness: f64,
    /// Prompt length in tokens; a list sweeps prefill
    #[arg(long, value_delimiter = ',', default_value = "128")]
    prompt_tokens: Vec<u64>,
    /// Prompts from a JSONL file (`{"prompt": "…", "max_tokens": N}` per line) instead of
    /// synthetic ones
    #[arg(long, conflicts_with_all = ["prompt_tokens", "shared_prefix"])]
    dataset: Option<PathBuf>,
    /// Send an image with every prompt (vision-language models such as Qwen3-VL): an image
    /// file (PNG, JPEG, GIF, WebP) or a synthetic `WxH` PNG (`448x448`), as a chat `image_url`
    /// part holding a base64 `data:` URL
    #[arg(long, value_name = "PATH|WxH")]
    image: Option<String>,
    /// Output tokens per request (a dataset line's `max_tokens` wins)
    #[arg(long, default_value_t = 128)]
    max_tokens: u64,
    /// Words shared by every prompt (prefix-cache hits); the rest is unique per request
    #[arg(long, default_value_t = 0)]
    shared_prefix: u64,
    /// Let the model stop early (by default `ignore_eos` and `min_tokens` ask for exactly
    /// `--max-tokens`)
    #[arg(long)]
    allow_eos: bool,
    /// Measured time per load point (`30s`, `2m`)
    #[arg(long)]
    duration: Option<String>,
    /// Measured requests per load point (with `--duration`: whichever ends first)
    #[arg(long)]
    requests: Option<u64>,
    /// Unmeasured time at the start of each point
    #[arg(long, default_value = "0s")]
    warmup: String,
    /// Closed loop: start the workers evenly over this time
    #[arg(long, default_value = "0s")]
    ramp_up: String,
    /// A request with no byte for this long fails as `stall`
    #[arg(long, default_value = "120s")]
    stall_timeout: String,
    /// Goodput objectives, e.g. `ttft=2s,tpot=100ms,e2e=30s`
    #[arg(long)]
    slo: Option<String>,
    /// Seed of the open-loop schedule and the prompts
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Measure this client's own ceiling first (against a local zero-latency stand-in) and warn
    /// at points that reach 70% of it; without a server, only calibrate
    #[arg(long)]
    calibrate: bool,
    /// Write every request and the aggregates here (JSON)
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Write every request as CSV here
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write an SVG plot of the sweep here
    #[arg(long)]
    plot: Option<PathBuf>,
    /// No progress line
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
pub struct CompareArgs {
    /// The baseline run (`bench serve --output`)
    a: PathBuf,
    /// The run compared with it
    b: PathBuf,
    /// Print the comparison as JSON
    #[arg(long)]
    json: bool,
}

fn duration_arg(flag: &str, text: &str) -> anyhow::Result<Duration> {
    parse_duration(text).map(Duration::from_secs_f64).map_err(|e| anyhow::anyhow!("`--{flag}`: {e}"))
}

/// The head's API address from `cluster.toml`: its management address when it has one (where
/// clients reach it), else its first rail's; the port is `[serve] port`.
fn cluster_url(path: &Path) -> anyhow::Result<(String, String)> {
    let cluster = crate::render::load_cluster(path)?;
    let text = std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))?;
    let head = cluster.head();
    let addr = head.management.as_ref().map_or_else(|| head.rail_addr(), |m| m.address.addr);
    Ok((format!("http://{addr}:{}", cluster.serve.port), sha256_hex(&text)))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The load points of the sweep: every prompt length × (each rate × each cap, or each
/// concurrency).
fn points(args: &ServeArgs) -> anyhow::Result<Vec<(Load, u64)>> {
    if args.concurrency.contains(&0) {
        bail!("`--concurrency` values must be at least 1");
    }
    if let Some(r) = args.rate.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
        bail!("`--rate` value `{r}` must be a positive number of requests/s");
    }
    let prompts = if args.dataset.is_some() { vec![0] } else { args.prompt_tokens.clone() };
    if prompts.contains(&0) && args.dataset.is_none() {
        bail!("`--prompt-tokens` values must be at least 1");
    }
    if !(args.burstiness.is_finite() && args.burstiness > 0.0) {
        bail!("`--burstiness` `{}` must be positive", args.burstiness);
    }
    let arrival = match args.arrival {
        ArrivalArg::Constant => Arrival::Constant,
        ArrivalArg::Poisson => Arrival::Poisson,
        ArrivalArg::Gamma => Arrival::Gamma { burstiness: args.burstiness },
    };
    let mut loads = Vec::new();
    if args.rate.is_empty() {
        let conc = if args.concurrency.is_empty() { vec![1] } else { args.concurrency.clone() };
        loads.extend(conc.into_iter().map(|concurrency| Load::Closed { concurrency }));
    } else {
        let caps: Vec<Option<usize>> = if args.concurrency.is_empty() { vec![None] } else { args.concurrency.iter().copied().map(Some).collect() };
        for &rate in &args.rate {
            loads.extend(caps.iter().map(|&max_concurrency| Load::Open { rate, arrival, max_concurrency }));
        }
    }
    Ok(prompts.iter().flat_map(|&p| loads.iter().map(move |&l| (l, p))).collect())
}

/// `--image`: a synthetic `WxH` PNG, else an image file.
fn load_image(spec: &str) -> anyhow::Result<servebench::image::Image> {
    if let Some((w, h)) = servebench::image::parse_size(spec) {
        return Ok(servebench::image::synthetic(w, h));
    }
    let path = Path::new(spec);
    if !path.exists() && spec.split_once(['x', 'X']).is_some_and(|(w, h)| w.parse::<u64>().is_ok() && h.parse::<u64>().is_ok()) {
        bail!("`--image` size `{spec}`: width and height must be 1 to 8192");
    }
    let bytes = std::fs::read(path).with_context(|| format!("`--image`: reading `{spec}` (give an image file or a size such as `448x448`)"))?;
    servebench::image::from_file(spec, &bytes).map_err(|e| anyhow::anyhow!("`--image` `{spec}`: {e}"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Everything the user typed is checked before the first request goes out.
    let plan = points(&args)?;
    let slo = match &args.slo {
        Some(s) => parse_slo(s).map_err(|e| anyhow::anyhow!("`--slo`: {e}"))?,
        None => Slo::default(),
    };
    let duration = args.duration.as_deref().map(|d| duration_arg("duration", d)).transpose()?;
    let duration = if duration.is_none() && args.requests.is_none() { Some(Duration::from_secs(30)) } else { duration };
    let warmup = duration_arg("warmup", &args.warmup)?;
    let ramp_up = duration_arg("ramp-up", &args.ramp_up)?;
    let stall_timeout = duration_arg("stall-timeout", &args.stall_timeout)?;
    let dataset = match &args.dataset {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))?;
            let entries = servebench::workload::parse_dataset(&text).map_err(|e| anyhow::anyhow!("dataset `{}`: {e}", path.display()))?;
            Some(Arc::new(entries))
        }
        None => None,
    };
    let image = match &args.image {
        None => None,
        Some(_) if matches!(args.api, ApiArg::Completions) => bail!("`--image` needs `--api chat`: images go in chat messages"),
        Some(spec) => Some(Arc::new(load_image(spec)?)),
    };

    let calibration = if args.calibrate {
        if !args.quiet {
            eprintln!("calibrating the client against a local zero-latency stand-in…");
        }
        let c = servebench::calibrate(Duration::from_secs(3))?;
        Some(c)
    } else {
        None
    };
    let (url, cluster_hash) = match (&args.url, &args.cluster) {
        (Some(u), _) => (u.clone(), None),
        (None, Some(c)) => {
            let (u, h) = cluster_url(c)?;
            (u, Some(h))
        }
        (None, None) => {
            let Some(c) = calibration else { bail!("no server: give `--url http://HOST:PORT` or `--cluster cluster.toml`") };
            print_calibration(&c);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut target = Target::from_url(&url)?;
    target.api_key = args.api_key.clone();
    let model = match &args.model {
        Some(m) => m.clone(),
        None => client::models(&target, Duration::from_secs(10))?
            .into_iter()
            .next()
            .with_context(|| format!("`{url}/v1/models` lists no model: name one with `--model`"))?,
    };
    let mut run = RunFile {
        format: report::FORMAT,
        client: RunFile::client_name(),
        server_url: target.url(),
        model: model.clone(),
        cluster_config_sha256: cluster_hash,
        started_unix: unix_now(),
        calibration,
        prompt_tokens_exact: None,
        prompt_tokens_note: None,
        points: Vec::new(),
    };
    // Synthetic prompts are made exactly as long as asked by the server's own tokenizer when it
    // has `/tokenize`; else one word per token, said once here and in the run file.
    let mut sizer = dataset.is_none().then(|| servebench::tokens::Sizer::new(&target, &model, Duration::from_secs(30)));
    let total = plan.len();
    for (i, (load, prompt_tokens)) in plan.into_iter().enumerate() {
        let mut workload = Workload {
            api: match args.api {
                ApiArg::Chat => Api::Chat,
                ApiArg::Completions => Api::Completions,
            },
            model: model.clone(),
            prompt_tokens,
            prompt_words: None,
            prompt_tokens_exact: false,
            vocabulary: None,
            shared_prefix: args.shared_prefix.min(prompt_tokens),
            max_tokens: args.max_tokens,
            ignore_eos: !args.allow_eos,
            seed: args.seed,
            dataset: dataset.clone(),
            image: image.clone(),
        };
        if let Some(sizer) = &mut sizer {
            match sizer.size(&mut workload) {
                Ok(()) => {
                    run.prompt_tokens_exact.get_or_insert(true);
                }
                Err(why) => {
                    if run.prompt_tokens_note.is_none() {
                        eprintln!("prompt lengths are approximate (about one token per word): {why}");
                        run.prompt_tokens_note = Some(why.to_string());
                    }
                    run.prompt_tokens_exact = Some(false);
                }
            }
        }
        let spec = RunSpec { load, duration, requests: args.requests, warmup, ramp_up, stall_timeout, seed: args.seed.wrapping_add(i as u64) };
        let live = Arc::new(Live::default());
        let progress = (!args.quiet && std::io::stderr().is_terminal()).then(|| progress_line(live.clone(), format!("[{}/{total}]", i + 1)));
        let outcome = client::run(&target, &workload, &spec, live.clone());
        if let Some((stop, handle)) = progress {
            let _ = stop.send(());
            let _ = handle.join();
        }
        let outcome = outcome?;
        let summary = summarize(&outcome.records, &outcome.itls, outcome.window_s, &slo);
        let mut point = Point::new(spec, workload, summary, outcome.records);
        if let Some(c) = &run.calibration {
            point.check_ceiling(c);
        }
        if !args.quiet {
            eprintln!(
                "{} {} prompt {}: {} ok, {} failed",
                format_args!("[{}/{total}]", i + 1),
                point.load_label(),
                prompt_tokens,
                point.summary.ok,
                point.summary.requests - point.summary.ok
            );
        }
        run.points.push(point);
    }
    if let (Some(sizer), Some(true), false) = (&sizer, run.prompt_tokens_exact, args.quiet) {
        let image = if image.is_some() { " (the text and chat template; the image's tokens come on top)" } else { "" };
        eprintln!("prompt lengths are exact{image}: counted by the server's /tokenize ({} requests)", sizer.requests);
    }
    print!("{}", report::table(&run));
    if let Some(path) = &args.output {
        let json = serde_json::to_vec_pretty(&run)?;
        crate::render::write_atomic(path, &json, 0o644).with_context(|| format!("writing `{}`", path.display()))?;
    }
    if let Some(path) = &args.csv {
        crate::render::write_atomic(path, report::requests_csv(&run).as_bytes(), 0o644).with_context(|| format!("writing `{}`", path.display()))?;
    }
    if let Some(path) = &args.plot {
        crate::render::write_atomic(path, servebench::plot::sweep_svg(&run).as_bytes(), 0o644).with_context(|| format!("writing `{}`", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_calibration(c: &Calibration) {
    println!("client ceiling (calibrated here): {:.0} req/s, {:.0} chunks/s at concurrency {}", c.req_per_s, c.chunks_per_s, c.concurrency);
}

/// Redraws one status line on stderr four times a second until told to stop.
fn progress_line(live: Arc<Live>, tag: String) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        let draw = |end: &str| {
            let secs = live.elapsed_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let tokens = live.output_tokens.load(Ordering::Relaxed) as f64;
            let rate = if secs > 0.0 { tokens / secs } else { 0.0 };
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K{tag} {:.1}s  sent {}  done {}  errors {}  {:.0} tok/s{end}",
                secs,
                live.sent.load(Ordering::Relaxed),
                live.done.load(Ordering::Relaxed),
                live.errors.load(Ordering::Relaxed),
                rate
            );
            let _ = err.flush();
        };
        while rx.recv_timeout(Duration::from_millis(250)).is_err() {
            draw("");
        }
        draw("\n");
    });
    (tx, handle)
}

pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let read = |p: &Path| -> anyhow::Result<RunFile> {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading `{}`", p.display()))?;
        Ok(RunFile::from_json(&text, p)?)
    };
    let (a, b) = (read(&args.a)?, read(&args.b)?);
    let deltas = servebench::compare::compare(&a, &b);
    if deltas.is_empty() {
        bail!("`{}` and `{}` share no load point (same load, prompt and output length): nothing to compare", args.a.display(), args.b.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&deltas)?);
    } else {
        println!("A: {} ({}, {})\nB: {} ({}, {})", args.a.display(), a.server_url, a.model, args.b.display(), b.server_url, b.model);
        print!("{}", servebench::compare::table(&deltas));
    }
    Ok(ExitCode::SUCCESS)
}
