//! Reaching every node of a cluster from the control machine, for `up`, `down`, `status`,
//! `logs` and `bench nccl run`: which nodes, as which user (root, or root through `sudo -n`), in
//! parallel. Each failure names the node and what to check.

use crate::remote::{Output, RemoteError, Ssh, SshArgs};
use anyhow::bail;
use cluster::ops::node::{parse_who, sh, Privilege, WHO};
use cluster::{Cluster, Node};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

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

/// One node reached over ssh under its `cluster.toml` name (the user's ssh config maps it).
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub ssh: Ssh,
    pub sudo: bool,
}

pub const SHORT: Duration = Duration::from_secs(60);
/// Image pulls and model copies: as long as they take.
pub const LONG: Duration = Duration::from_secs(24 * 3600);

impl Target {
    /// Logs in and finds out whether it is root or may become root with `sudo -n`.
    pub fn connect(ssh: &Ssh, name: &str) -> anyhow::Result<Target> {
        let out = ssh.run(name, &sh(WHO, &[]), SHORT)?;
        let sudo = match parse_who(&out.stdout) {
            Privilege::Root => false,
            Privilege::Sudo => true,
            Privilege::None => bail!(
                "node `{name}`: the ssh user is not root and `sudo -n true` fails; log in as root (`User root` in `~/.ssh/config`) or allow passwordless sudo"
            ),
        };
        Ok(Target { name: name.to_owned(), ssh: ssh.clone(), sudo })
    }

    fn argv(&self, argv: Vec<String>) -> Vec<String> {
        if self.sudo {
            ["sudo", "-n", "--"].iter().map(|s| s.to_string()).chain(argv).collect()
        } else {
            argv
        }
    }

    /// Runs a script (`sh -c`) as root; ssh's own failures are errors, the script's exit status
    /// is the caller's to judge.
    pub fn script(&self, script: &str, args: &[String], timeout: Duration) -> Result<Output, RemoteError> {
        self.ssh.run(&self.name, &self.argv(sh(script, args)), timeout)
    }

    pub fn script_input(&self, script: &str, args: &[String], input: Box<dyn Read + Send>, timeout: Duration) -> Result<Output, RemoteError> {
        self.ssh.run_input(&self.name, &self.argv(sh(script, args)), input, timeout)
    }

    /// The same, to another address of the node (its rail, for bulk copies).
    pub fn script_input_via(&self, host: &str, script: &str, args: &[String], input: Box<dyn Read + Send>, timeout: Duration) -> Result<Output, RemoteError> {
        self.ssh.run_input(host, &self.argv(sh(script, args)), input, timeout)
    }

    /// A script that must succeed: a non-zero exit is an error with the script's last words.
    pub fn must(&self, what: &str, script: &str, args: &[String], timeout: Duration) -> anyhow::Result<Output> {
        let out = self.script(script, args, timeout)?;
        check(&self.name, what, out)
    }
}

/// A non-zero exit is an error naming the node, the step and the remote's last stderr line,
/// with a hint for the causes people meet (disk full, Docker).
pub fn check(node: &str, what: &str, out: Output) -> anyhow::Result<Output> {
    if out.status.success() {
        return Ok(out);
    }
    let last = out.stderr.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("no message").to_owned();
    let all = out.stderr.to_lowercase();
    let hint = if all.contains("no space left") || all.contains("disk full") {
        "; free space on the node (`df -h`)"
    } else if all.contains("cannot connect to the docker daemon") {
        "; start Docker on the node (`systemctl start docker`)"
    } else if what.contains("pull") && ["denied", "unauthorized", "manifest unknown", "not found"].iter().any(|w| all.contains(w)) {
        // Only a pull: "permission denied" from anything else (a file, sudo) is not a login matter.
        "; check the image name and that the node may pull it (`docker login` on the node)"
    } else {
        ""
    };
    bail!("node `{node}`: {what} failed (exit {}): {last}{hint}", out.status.code().map_or("signal".into(), |c| c.to_string()))
}

/// Runs `f` on every node at once; results in node order (each error names its node).
pub fn each<T: Send>(nodes: &[Node], f: impl Fn(&Node) -> anyhow::Result<T> + Sync) -> Vec<anyhow::Result<T>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes.iter().map(|n| s.spawn(|| f(n))).collect();
        handles.into_iter().map(|h| h.join().expect("a node thread panicked")).collect()
    })
}

/// Every node's result, or one error after printing the others (each names its node).
pub fn all<T>(results: Vec<anyhow::Result<T>>) -> anyhow::Result<Vec<T>> {
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => errs.push(e),
        }
    }
    match errs.pop() {
        None => Ok(ok),
        Some(last) => {
            for e in errs {
                eprintln!("error: {}", crate::one_line(&e));
            }
            Err(last)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn failed(stderr: &str) -> Output {
        Output { status: std::process::ExitStatus::from_raw(1 << 8), stdout: String::new(), stderr: stderr.into() }
    }

    fn err(what: &str, stderr: &str) -> String {
        check("spark-b", what, failed(stderr)).unwrap_err().to_string()
    }

    #[test]
    fn the_docker_login_hint_is_for_the_pull_only() {
        let pull =
            err("`docker pull r/i:1`", "Error response from daemon: pull access denied for r/i, repository does not exist or may require 'docker login'");
        assert!(pull.starts_with("node `spark-b`: `docker pull r/i:1` failed (exit 1): Error response"), "{pull}");
        assert!(pull.ends_with("(`docker login` on the node)"), "{pull}");
        for what in ["writing the token", "installing the files", "copying `config.json`"] {
            let e = err(what, "sh: 1: cannot create /etc/spark-cluster/token: Permission denied");
            assert!(!e.contains("docker login"), "{e}");
            assert!(e.ends_with("Permission denied"), "{e}");
        }
        assert!(!err("`docker load`", "open /var/lib/docker/tmp: no such file or directory (not found)").contains("docker login"));
    }

    #[test]
    fn a_full_disk_and_a_stopped_daemon_get_their_hints() {
        assert!(err("copying `a`", "write error: No space left on device").ends_with("free space on the node (`df -h`)"));
        assert!(err("`docker load`", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock").ends_with("(`systemctl start docker`)"));
    }
}
