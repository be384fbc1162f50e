//! `openai-standin`: a small OpenAI-compatible server streaming vLLM's chunk shapes with the
//! delays it is told (servebench's `standin` module). It also answers to vLLM's command line
//! (`openai-standin serve MODEL --host H --port P …`), ignoring flags it does not know, so tests
//! can put it where `vllm serve` would run.
//!
//! Prints `listening on http://ADDR` on stdout once it accepts connections (`--port 0` picks a
//! free port).

use servebench::metrics::parse_duration;
use servebench::standin::{serve, Config, RoleChunk, UsageMode};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

const HELP: &str = "usage: openai-standin [serve MODEL] [--host 127.0.0.1] [--port 8000] [--model NAME]
  [--ttft 0ms] [--itl 0ms] [--output-tokens N (default: the request's max_tokens)]
  [--reasoning-tokens N] [--reasoning-field reasoning|reasoning_content]
  [--usage request|never|final|continuous] [--role-chunk with-first-token|early]
  [--error-every N] [--stall-every N] [--stall 0ms] [--api-key KEY]
Unknown flags (vLLM's) are ignored with a note on stderr.";

fn main() -> ExitCode {
    match parse(std::env::args().skip(1).collect()) {
        Ok(Some((host, port, config))) => run(&host, port, config),
        Ok(None) => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}\nhint: openai-standin --help");
            ExitCode::from(2)
        }
    }
}

fn run(host: &str, port: u16, config: Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind((host, port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: listening on `{host}:{port}`: {e}");
                return ExitCode::from(2);
            }
        };
        if let Ok(addr) = listener.local_addr() {
            println!("listening on http://{addr}");
            let _ = std::io::stdout().flush();
        }
        serve(listener, config).await;
        ExitCode::SUCCESS
    })
}

fn parse(args: Vec<String>) -> Result<Option<(String, u16, Config)>, String> {
    let mut config = Config::default();
    let (mut host, mut port) = ("127.0.0.1".to_owned(), 8000u16);
    let mut it = args.into_iter().peekable();
    if it.peek().map(String::as_str) == Some("serve") {
        it.next();
        if let Some(model) = it.next_if(|a| !a.starts_with('-')) {
            config.model = model;
        }
    }
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let known = [
            "--host",
            "--port",
            "--model",
            "--ttft",
            "--itl",
            "--output-tokens",
            "--reasoning-tokens",
            "--reasoning-field",
            "--usage",
            "--role-chunk",
            "--error-every",
            "--stall-every",
            "--stall",
            "--api-key",
        ];
        if !known.contains(&flag.as_str()) {
            eprintln!("note: ignoring `{arg}` (not a stand-in flag)");
            if inline.is_none() {
                it.next_if(|a| !a.starts_with('-'));
            }
            continue;
        }
        let value = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => return Err(format!("`{flag}` needs a value")),
        };
        let num = |v: &str| v.parse::<u64>().map_err(|_| format!("`{flag}` value `{v}` is not a whole number"));
        let dur = |v: &str| parse_duration(v).map(Duration::from_secs_f64).map_err(|e| format!("`{flag}`: {e}"));
        match flag.as_str() {
            "--host" => host = value,
            "--port" => port = value.parse().map_err(|_| format!("`--port` value `{value}` is not a port number"))?,
            "--model" => config.model = value,
            "--ttft" => config.ttft = dur(&value)?,
            "--itl" => config.itl = dur(&value)?,
            "--output-tokens" => config.output_tokens = Some(num(&value)?),
            "--reasoning-tokens" => config.reasoning_tokens = num(&value)?,
            "--reasoning-field" => config.reasoning_field = value,
            "--usage" => {
                config.usage = match value.as_str() {
                    "request" => UsageMode::Request,
                    "never" => UsageMode::Never,
                    "final" => UsageMode::Final,
                    "continuous" => UsageMode::Continuous,
                    _ => return Err(format!("`--usage` value `{value}`: expected request, never, final or continuous")),
                }
            }
            "--role-chunk" => {
                config.role_chunk = match value.as_str() {
                    "with-first-token" => RoleChunk::WithFirstToken,
                    "early" => RoleChunk::Early,
                    _ => return Err(format!("`--role-chunk` value `{value}`: expected with-first-token or early")),
                }
            }
            "--error-every" => config.error_every = num(&value)?,
            "--stall-every" => config.stall_every = num(&value)?,
            "--stall" => config.stall = dur(&value)?,
            _ => config.api_key = Some(value),
        }
    }
    Ok(Some((host, port, config)))
}
