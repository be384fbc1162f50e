//! `sparkctl`: a thin shim. Each subcommand lives in its own module and calls a library.
//!
//! Exit codes: 0 success; 2 for every error sparkctl reports (bad input, corrupt data, a registry
//! refusing): one `error:` line naming the operand, the cause and the fix.

mod bench_serve;
mod doctor;
mod image;
mod image_registry;
mod render;

use clap::{Parser, Subcommand};
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
    Doctor(doctor::DoctorArgs),
    /// Benchmarks: `serve` (OpenAI-compatible load, open or closed loop, sweeps), `compare`
    #[command(subcommand)]
    Bench(BenchCommand),
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum BenchCommand {
    /// Load an OpenAI-compatible server (closed or open loop, sweeps) and report TTFT, ITL, TPOT,
    /// E2E, throughput and goodput
    Serve(bench_serve::ServeArgs),
    /// Compare two `bench serve --output` files: change of each metric with a 95% interval
    Compare(bench_serve::CompareArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Image(cmd) => image::run(cmd),
        Command::Render(args) => render::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Bench(BenchCommand::Serve(args)) => bench_serve::serve(args),
        Command::Bench(BenchCommand::Compare(args)) => bench_serve::compare(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// Prints an error chain once, in the house format, and maps it to exit code 2.
/// A closed stdout (`sparkctl … | head`) is not an error.
fn report(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)) {
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {}", one_line(err));
    ExitCode::from(2)
}

/// The outermost context first, each cause after it. Library errors that already print their
/// source (so they read whole on their own) would repeat it: a cause the line already ends with
/// is not added again.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain().map(ToString::to_string) {
        if line.is_empty() {
            line = cause;
        } else if !line.ends_with(&cause) {
            line = format!("{line}: {cause}");
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

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
