//! `sparkctl down`: stop and disable the unit on every node, so nothing restarts the group
//! (not `Restart=on-failure`, not a reboot) until the next `up`.

use crate::fleet::{self, FleetArgs, Target, SHORT};
use cluster::ops::node;
use cluster::ops::UNIT;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    fleet: FleetArgs,
}

pub fn run(args: DownArgs) -> anyhow::Result<ExitCode> {
    let (_, nodes) = args.fleet.load()?;
    let ssh = args.fleet.ssh.ssh();
    fleet::all(fleet::each(&nodes, |n| {
        let t = Target::connect(&ssh, &n.name)?;
        t.must(&format!("`systemctl stop {UNIT}`"), node::STOP, &[UNIT.to_owned()], SHORT)?;
        println!("{}: stopped", n.name);
        Ok(())
    }))?;
    Ok(ExitCode::SUCCESS)
}
