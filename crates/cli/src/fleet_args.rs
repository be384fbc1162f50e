//! The flags every subcommand that reaches nodes shares, and where their progress is printed.

use cluster::{Cluster, Node};
use std::path::PathBuf;

/// The ssh flags of every subcommand that reaches nodes.
#[derive(clap::Args, Debug, Clone)]
pub struct SshArgs {
    /// ssh config file (`ssh -F`; default `~/.ssh/config`)
    #[arg(long, value_name = "FILE")]
    ssh_config: Option<PathBuf>,
    /// Extra ssh option (`ssh -o`), repeatable
    #[arg(long = "ssh-option", value_name = "KEY=VALUE")]
    ssh_options: Vec<String>,
}

impl SshArgs {
    pub fn ssh(&self) -> fleet::Ssh {
        fleet::Ssh { config: self.ssh_config.clone(), options: self.ssh_options.clone() }
    }
}

/// The flags every fleet subcommand shares.
#[derive(clap::Args, Debug, Clone)]
pub struct FleetArgs {
    /// The cluster description
    #[arg(long, default_value = "cluster.toml")]
    pub cluster: PathBuf,
    /// Only these nodes (repeatable; default every node)
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    #[command(flatten)]
    pub ssh: SshArgs,
}

impl FleetArgs {
    /// The cluster and the chosen nodes (an unknown name is an error naming the file).
    pub fn load(&self) -> anyhow::Result<(Cluster, Vec<Node>)> {
        let c = crate::render::load_cluster(&self.cluster)?;
        let nodes = if self.nodes.is_empty() { c.nodes.clone() } else { self.nodes.iter().map(|n| c.node(n).cloned()).collect::<Result<Vec<_>, _>>()? };
        Ok((c, nodes))
    }
}

/// Prints a fleet operation's lines on stdout (on stderr when stdout carries JSON), its
/// warnings on stderr.
pub struct Printer {
    pub lines_to_stderr: bool,
}

impl fleet::Report for Printer {
    fn line(&self, line: &str) {
        if self.lines_to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    fn warning(&self, text: &str) {
        eprintln!("warning: {text}");
    }
}

/// Where lines go to stdout.
pub const STDOUT: Printer = Printer { lines_to_stderr: false };
