//! `sparkctl status [--json]`: per node, the unit, the entrypoint's state and detail, the image,
//! the NCCL transport in use, liveness failures, restarts used of the budget, and the last error
//! (`fleet::status`).

use crate::fleet_args::FleetArgs;
use cluster::ops::node::NodeStatus;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    /// One JSON object per node, in an array
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Row {
    node: String,
    role: &'static str,
    #[serde(flatten)]
    status: Option<NodeStatus>,
    /// Why the node could not be asked (unreachable, auth refused, no root).
    error: Option<String>,
}

pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let (c, nodes) = args.fleet.load()?;
    let results = fleet::status::status(&c, &nodes, &args.fleet.ssh.ssh());
    let rows: Vec<Row> = nodes
        .iter()
        .zip(results)
        .map(|(n, r)| {
            let (status, error) = match r {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(fleet::one_line(&e))),
            };
            Row { node: n.name.clone(), role: n.role.as_str(), status, error }
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for r in &rows {
            match (&r.status, &r.error) {
                (Some(s), _) => {
                    println!(
                        "{} ({}): unit {}, {}{}",
                        r.node,
                        r.role,
                        s.unit,
                        s.state.as_deref().unwrap_or("no container"),
                        if s.detail.is_empty() { String::new() } else { format!(" ({})", s.detail) }
                    );
                    println!("  image: {}", s.image.as_deref().unwrap_or("not on the node"));
                    println!("  transport: {}", s.transport.as_deref().unwrap_or("not seen yet (NCCL logs it when the engine starts)"));
                    println!("  restarts used: {} (budget {}); liveness failures: {}", s.restarts_used, s.restart_budget, s.liveness_failures);
                    println!("  last error: {}", s.last_error.as_deref().unwrap_or("none"));
                }
                (None, e) => println!("{} ({}): unreachable: {}", r.node, r.role, e.as_deref().unwrap_or("")),
            }
        }
    }
    // A node that cannot be asked is an error (exit 2) once everything known is printed.
    match rows.iter().find_map(|r| r.error.clone()) {
        Some(e) => anyhow::bail!("{e}"),
        None => Ok(ExitCode::SUCCESS),
    }
}
