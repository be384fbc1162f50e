//! `sparkctl up`: from the control machine, make every node what `cluster.toml` says, start the
//! group and wait until it is ready (`fleet::up`).

use crate::fleet_args::{FleetArgs, STDOUT};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    /// Show every action and diff, change nothing
    #[arg(long)]
    dry_run: bool,
    /// Replace files edited on a node (a backup is kept as `FILE.sparkctl-bak`)
    #[arg(long)]
    force: bool,
    /// The model's files on this machine (a folder, e.g. a hub cache snapshot); default: the
    /// snapshot `refs/main` names in the local Hugging Face cache
    #[arg(long, env = "SPARKCTL_MODEL_DIR", value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// This machine's Hugging Face cache, searched for `serve.model`
    #[arg(long, env = "HF_HOME", value_name = "DIR", hide_env_values = true)]
    hf_home: Option<PathBuf>,
    /// Seconds to wait for every node to be ready (0: do not wait)
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// Clear each node's restart history (a spent restart budget) and restart the group; for
    /// after the cause of the failures is fixed
    #[arg(long)]
    reset_budget: bool,
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let (c, nodes) = args.fleet.load()?;
    let options = fleet::up::Options {
        cluster_file: args.fleet.cluster.clone(),
        dry_run: args.dry_run,
        force: args.force,
        hf_home: args.hf_home.clone().or_else(crate::environment::hf_home),
        model_dir: args.model_dir,
        timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
        reset_budget: args.reset_budget,
    };
    fleet::up::up(&c, &nodes, &args.fleet.ssh.ssh(), &options, &STDOUT)?;
    Ok(ExitCode::SUCCESS)
}
