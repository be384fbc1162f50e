//! `sparkctl down`: stop and disable the unit on every node (`fleet::down`).

use crate::fleet_args::{FleetArgs, STDOUT};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    fleet: FleetArgs,
}

pub fn run(args: DownArgs) -> anyhow::Result<ExitCode> {
    let (_, nodes) = args.fleet.load()?;
    fleet::down::down(&nodes, &args.fleet.ssh.ssh(), &STDOUT)?;
    Ok(ExitCode::SUCCESS)
}
