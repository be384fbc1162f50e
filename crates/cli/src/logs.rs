//! `sparkctl logs [-f] [--node N]`: the unit's journal of every node, each line prefixed with
//! its node (`fleet::logs`); with `-f` lines appear as they come, from all nodes at once.

use crate::fleet_args::FleetArgs;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    /// Keep printing new lines
    #[arg(long, short)]
    follow: bool,
    /// Lines per node from the end of the journal
    #[arg(long, short = 'n', default_value_t = 200)]
    lines: u32,
}

pub fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let (_, nodes) = args.fleet.load()?;
    fleet::logs::logs(&nodes, &args.fleet.ssh.ssh(), args.lines, args.follow, &|line| std::io::stdout().lock().write_all(line.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}
