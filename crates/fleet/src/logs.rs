//! `logs`: the unit's journal of every node, each line prefixed with its node; when following,
//! lines appear as they come, from all nodes at once.

use crate::node::{self, Target};
use crate::remote::{classify, Output, RemoteError};
use crate::Ssh;
use cluster::ops::UNIT;
use cluster::Node;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// Following on a node: the journal follows in the background while the session's stdin stays
/// open. A command without a terminal is not told when ssh goes away (no SIGHUP), and
/// `journalctl -f` would only notice at its next line; this machine holds stdin open instead, so
/// when `logs -f` ends (or is killed) the node reads end-of-file and stops the journal at once.
const FOLLOW: &str = r#""$@" & j=$!; cat >/dev/null; kill "$j" 2>/dev/null; wait "$j" 2>/dev/null; exit 0"#;

/// The last `lines` lines of every node's journal, and with `follow` every new one, each given
/// to `out` whole (`"{node} | {line}\n"`, names padded to one width). Without `follow`, one
/// node's block after the other, in node order; with it, as they come. An error of `out` (a
/// closed stdout) ends that node's stream and is returned with the nodes' errors.
pub fn logs(nodes: &[Node], ssh: &Ssh, lines: u32, follow: bool, out: &(dyn Fn(&str) -> std::io::Result<()> + Sync)) -> anyhow::Result<()> {
    let width = nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    let mut journal = vec!["journalctl".to_owned(), "-u".into(), UNIT.into(), "-o".into(), "cat".into(), "--no-pager".into(), "-n".into(), lines.to_string()];
    if follow {
        journal.push("-f".into());
    }
    let results = node::each(nodes, |n| {
        let t = Target::connect(ssh, &n.name)?;
        let argv = t.argv(if follow { cluster::ops::node::sh(FOLLOW, &journal) } else { journal.clone() });
        let mut cmd = ssh.command(&n.name, &argv);
        if follow {
            // Held open, never written: its end is the node's signal to stop (`FOLLOW`).
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(RemoteError::Spawn)?;
        let _stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let mut buffered = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = format!("{:width$} | {}\n", n.name, line?);
            if follow {
                out(&line)?;
            } else {
                buffered.push(line);
            }
        }
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().expect("piped"), &mut stderr)?;
        let status = child.wait()?;
        classify(&n.name, &Output { status, stdout: String::new(), stderr: stderr.clone() })?;
        node::check(&n.name, "`journalctl`", Output { status, stdout: String::new(), stderr })?;
        Ok(buffered)
    });
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(lines) => lines.iter().try_for_each(|l| out(l))?,
            Err(e) => errors.push(Err::<(), _>(e)),
        }
    }
    node::all(errors)?;
    Ok(())
}
