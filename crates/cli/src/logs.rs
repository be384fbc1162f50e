//! `sparkctl logs [-f] [--node N]`: the unit's journal of every node, each line prefixed with
//! its node; with `-f` lines appear as they come, from all nodes at once.

use crate::fleet::{self, FleetArgs, Target};
use cluster::ops::UNIT;
use std::io::{BufRead, BufReader, Write};
use std::process::{ExitCode, Stdio};
use std::sync::Mutex;

/// `-f` on a node: the journal follows in the background while the session's stdin stays open.
/// A command without a terminal is not told when ssh goes away (no SIGHUP), and `journalctl -f`
/// would only notice at its next line; this machine holds stdin open instead, so when `logs -f`
/// ends (or is killed) the node reads end-of-file and stops the journal at once.
const FOLLOW: &str = r#""$@" & j=$!; cat >/dev/null; kill "$j" 2>/dev/null; wait "$j" 2>/dev/null; exit 0"#;

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
    let ssh = args.fleet.ssh.ssh();
    let width = nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    let out = Mutex::new(std::io::stdout());
    let mut journal =
        vec!["journalctl".to_owned(), "-u".into(), UNIT.into(), "-o".into(), "cat".into(), "--no-pager".into(), "-n".into(), args.lines.to_string()];
    if args.follow {
        journal.push("-f".into());
    }
    let results = fleet::each(&nodes, |n| {
        let t = Target::connect(&ssh, &n.name)?;
        let mut argv = if args.follow { cluster::ops::node::sh(FOLLOW, &journal) } else { journal.clone() };
        if t.sudo {
            argv.splice(0..0, ["sudo".to_owned(), "-n".into(), "--".into()]);
        }
        let mut cmd = ssh.command(&n.name, &argv);
        if args.follow {
            // Held open, never written: its end is the node's signal to stop (`FOLLOW`).
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(crate::remote::RemoteError::Spawn)?;
        let _stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let mut buffered = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = format!("{:width$} | {}\n", n.name, line?);
            if args.follow {
                out.lock().unwrap_or_else(|e| e.into_inner()).write_all(line.as_bytes())?;
            } else {
                buffered.push(line);
            }
        }
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().expect("piped"), &mut stderr)?;
        let status = child.wait()?;
        crate::remote::classify(&n.name, &crate::remote::Output { status, stdout: String::new(), stderr: stderr.clone() })?;
        fleet::check(&n.name, "`journalctl`", crate::remote::Output { status, stdout: String::new(), stderr })?;
        Ok(buffered)
    });
    // Without -f, one node's block after the other, in node order, whole.
    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(lines) => lines.iter().try_for_each(|l| o.write_all(l.as_bytes()))?,
            Err(e) => errors.push(Err::<(), _>(e)),
        }
    }
    fleet::all(errors)?;
    Ok(ExitCode::SUCCESS)
}
