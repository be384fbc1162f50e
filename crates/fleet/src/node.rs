//! Reaching every node of a cluster from the control machine, for `up`, `down`, `status`,
//! `logs` and `bench nccl run`: as which user (root, or root through `sudo -n`), in parallel.
//! Each failure names the node and what to check.

use crate::remote::{Output, RemoteError, Ssh};
use anyhow::bail;
use cluster::ops::node::{parse_who, sh, Docker, Privilege, WHO};
use cluster::Node;
use std::io::Read;
use std::time::Duration;

/// One node reached over ssh under its `cluster.toml` name (the user's ssh config maps it).
#[derive(Clone)]
pub struct Target {
    /// The node's name in `cluster.toml`, also the ssh host name.
    pub name: String,
    /// How to reach it.
    pub ssh: Ssh,
    /// Whether commands go through `sudo -n` (the login is not root).
    pub sudo: bool,
}

/// Probes and small steps: a minute.
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

    /// `argv` as root: behind `sudo -n --` where the login is not root.
    pub fn argv(&self, argv: Vec<String>) -> Vec<String> {
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

    /// Like [`Target::script`], with `input` as the script's standard input.
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

/// Docker on a node as its probe found it: ready, or an error naming the fix.
pub fn docker_ready(node: &str, docker: Docker) -> anyhow::Result<()> {
    match docker {
        Docker::Ready => Ok(()),
        Docker::Missing => bail!("node `{node}`: Docker is missing (`docker` is not on root's PATH); install Docker on the node (DGX OS ships it)"),
        Docker::Down => bail!("node `{node}`: the Docker daemon does not answer (`docker version`); start it: `systemctl start docker`"),
    }
}

/// Runs `f` on every node at once; results in node order (each error names its node).
pub fn each<T: Send>(nodes: &[Node], f: impl Fn(&Node) -> anyhow::Result<T> + Sync) -> Vec<anyhow::Result<T>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes.iter().map(|n| s.spawn(|| f(n))).collect();
        handles.into_iter().map(|h| h.join().expect("a node thread panicked")).collect()
    })
}

/// Every node's result, or the errors (each names its node): one as it is, several as
/// [`Failures`].
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
        Some(last) if errs.is_empty() => Err(last),
        Some(last) => Err(Failures { others: errs, last }.into()),
    }
}

/// More than one node failed. It reads as the last error; the caller reports `others` (in node
/// order) before it, each on its own line.
#[derive(Debug)]
pub struct Failures {
    /// The other nodes' errors, in node order.
    pub others: Vec<anyhow::Error>,
    /// The error the command exits with.
    pub last: anyhow::Error,
}

impl std::fmt::Display for Failures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::one_line(&self.last))
    }
}

impl std::error::Error for Failures {}

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
    fn several_failures_keep_every_node_in_order() {
        let r: Vec<anyhow::Result<()>> = vec![Ok(()), Err(anyhow::anyhow!("node `a`: x")), Err(anyhow::anyhow!("node `b`: y"))];
        let e = all(r).unwrap_err();
        let f = e.downcast_ref::<Failures>().expect("several");
        assert_eq!(f.others.iter().map(ToString::to_string).collect::<Vec<_>>(), ["node `a`: x"]);
        assert_eq!(e.to_string(), "node `b`: y");
        let one = all::<()>(vec![Err(anyhow::anyhow!("node `a`: x"))]).unwrap_err();
        assert!(one.downcast_ref::<Failures>().is_none());
        assert_eq!(all(vec![Ok(1), Ok(2)]).unwrap(), [1, 2]);
    }

    #[test]
    fn a_full_disk_and_a_stopped_daemon_get_their_hints() {
        assert!(err("copying `a`", "write error: No space left on device").ends_with("free space on the node (`df -h`)"));
        assert!(err("`docker load`", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock").ends_with("(`systemctl start docker`)"));
    }
}
