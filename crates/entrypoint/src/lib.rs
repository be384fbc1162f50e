//! `spark-entrypoint`: PID 1 of the multi-node vLLM image. Preflight of the rails (shared with
//! `sparkctl doctor` through `cluster::preflight`), head/worker rendezvous with HMAC-authenticated
//! messages and fingerprints, Ray or vLLM-native launch, readiness probing, and supervision that
//! stops the whole group when one node dies.
//!
//! `main` is a shim over [`main_with`].

#![warn(missing_docs, unreachable_pub)]

mod budget;
mod error;
mod fsutil;
pub mod http;
pub mod launch;
mod liveness;
mod log;
mod node;
pub mod pid1;
mod plan;
pub mod proto;
mod ray_check;
mod readiness;
mod rendezvous;
pub mod settings;
mod supervisor;

pub use error::Error;

/// Runs with the given arguments (without the program name); returns the exit code.
pub fn main_with(args: Vec<String>) -> i32 {
    match args.first().map(String::as_str) {
        Some("--help" | "-h" | "help") => {
            print!("{}", settings::help());
            return 0;
        }
        Some("--version" | "-V") => {
            println!("spark-entrypoint {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Some("healthcheck") => {
            let file = match args.get(1).map(String::as_str) {
                Some("--status-file") => args.get(2).cloned(),
                _ => None,
            };
            let file = file
                .or_else(|| std::env::var("SPARK_STATUS_FILE").ok())
                .unwrap_or_else(|| settings::SETTINGS.iter().find(|s| s.env == "SPARK_STATUS_FILE").and_then(|s| s.default).unwrap_or_default().to_owned());
            return readiness::healthcheck(std::path::Path::new(&file));
        }
        _ => {}
    }
    let cfg = match settings::parse(&args, &|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    log::set_node(&cfg.node);
    node::run(&cfg)
}
