//! `sparkctl`: a thin shim. Each subcommand lives in its own module and calls a library.
//!
//! Exit codes: 0 success; 2 for every error sparkctl reports (bad input, corrupt data, a registry
//! refusing): one `error:` line naming the operand, the cause and the fix.

mod bench;
mod bench_nccl;
mod bench_nccl_run;
mod bench_rdma;
mod bench_serve;
mod doctor;
mod down;
mod environment;
mod fleet_args;
mod image;
mod logs;
mod nccl;
mod plan;
mod progress;
mod registry_flags;
mod render;
mod status;
mod up;

use clap::{Parser, Subcommand};
use fleet::one_line;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sparkctl", version, about = "Reproducible multi-node vLLM on DGX Spark over RoCE")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Build, inspect, push and pull OCI images
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Render a node's configuration from cluster.toml (netplan, sysctl, env, docker-run, systemd)
    Render(render::RenderArgs),
    /// Check that this node is what cluster.toml says (links, MTU, IPv6, RDMA, memlock)
    #[command(after_help = "Exit code: the worst result (0 PASS, 1 WARN, 3 FAIL); 2 on bad input. Every check: docs/fabric.md")]
    Doctor(doctor::DoctorArgs),
    /// Read NCCL logs (`check`) and nccl-tests tables (`tests`): transport, HCAs, busbw, verdict
    #[command(subcommand)]
    Nccl(nccl::NcclCommand),
    /// Benchmarks: `rdma` (ib_write_bw per rail and all rails, over ssh), `nccl` (bus bandwidth inside the serving image), `serve` (OpenAI-compatible load, sweeps), `compare`
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Will the model fit on these Sparks (memory per node), and are the serve flags known to fail on GB10?
    Plan(plan::PlanArgs),
    /// From this machine over ssh: install each node's files, token, image and model, start the group, wait until ready
    Up(up::UpArgs),
    /// Stop (and disable) the group's unit on every node
    Down(down::DownArgs),
    /// Per node: unit, entrypoint state, image, NCCL transport, restarts used, last error
    Status(status::StatusArgs),
    /// The nodes' logs, merged, each line prefixed with its node
    Logs(logs::LogsArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout as clap prints them.
        Err(e) if !e.use_stderr() || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => {
            eprintln!("error: {}", usage_error(&e));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Image(cmd) => image::run(cmd),
        Command::Render(args) => render::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Nccl(cmd) => nccl::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Up(args) => up::run(args),
        Command::Down(args) => down::run(args),
        Command::Status(args) => status::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Plan(args) => plan::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// A clap usage error as one line (the README's promise): clap's own message, its tips as a
/// hint and the usage line, instead of clap's paragraph layout.
fn usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let first = lines.first().map(|l| l.trim_start_matches("error: ")).unwrap_or("invalid arguments");
    let tips: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("tip: ")).collect();
    let usage = lines.iter().find_map(|l| l.strip_prefix("Usage: ")).unwrap_or("sparkctl --help");
    let hint = if tips.is_empty() { String::new() } else { format!(" (hint: {})", tips.join("; ")) };
    format!("{first}{hint}; usage: {usage}")
}

/// Prints an error chain once, in the house format, and maps it to exit code 2.
/// A closed stdout (`sparkctl … | head`) is not an error.
fn report(err: &anyhow::Error) -> ExitCode {
    // Several nodes failed: each one's line, the last as any error.
    if let Some(f) = err.downcast_ref::<fleet::Failures>() {
        for e in &f.others {
            eprintln!("error: {}", one_line(e));
        }
        return report(&f.last);
    }
    if err.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)) {
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {}", one_line(err));
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use fleet::one_line;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let lib = builder::Error::Io { context: "reading recipe", path: "nope.toml".into(), source: io };
        let err = anyhow::Error::new(lib).context("building `x`");
        assert_eq!(one_line(&err), "building `x`: reading recipe `nope.toml`: No such file or directory (os error 2)");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&plain), "outer: inner");
    }
}
