//! Running commands on nodes over the user's own `ssh`: the user's `~/.ssh/config` (or `-F`)
//! decides how a node name is reached, `BatchMode=yes` makes a missing key an error instead of a
//! password prompt, and `-o` options pass through. Every failure of ssh itself (exit 255) is
//! told apart: authentication refused, host key unknown, or node unreachable, each with its fix.
//! Used by `doctor --peers`, `bench rdma`, `bench nccl run`, `up`, `down`, `status` and `logs`
//! (the cli's `--ssh-config` and `--ssh-option` flags fill [`Ssh`]).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How sparkctl calls ssh.
#[derive(Debug, Clone, Default)]
pub struct Ssh {
    /// `-F FILE`: an ssh config instead of `~/.ssh/config`.
    pub config: Option<PathBuf>,
    /// `-o KEY=VALUE` options, in order.
    pub options: Vec<String>,
}

/// ssh's own exit status: anything the remote command returns is something else.
const SSH_FAILED: i32 = 255;

/// Why a command on a node did not run to its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The node refused the login.
    #[error("cannot log in to `{host}` over ssh ({detail}); add your key to the node (`ssh-copy-id {host}`) or name the key in `~/.ssh/config`")]
    Auth {
        /// The node (its ssh host name).
        host: String,
        /// What ssh said, on one line.
        detail: String,
    },
    /// The node's host key is unknown or changed.
    #[error("the host key of `{host}` is not trusted ({detail}); connect once with `ssh {host}` and check the fingerprint")]
    HostKey {
        /// The node (its ssh host name).
        host: String,
        /// What ssh said, on one line.
        detail: String,
    },
    /// No connection to the node.
    #[error("cannot reach `{host}` over ssh ({detail}); check the node is up and that `ssh {host} true` works (`~/.ssh/config` maps names to addresses)")]
    Unreachable {
        /// The node (its ssh host name).
        host: String,
        /// What ssh said, on one line.
        detail: String,
    },
    /// The local `ssh` could not be started.
    #[error("cannot run `ssh`: {0}; install the OpenSSH client")]
    Spawn(std::io::Error),
    /// The command outlived its time limit and was stopped.
    #[error("`{command}` on `{host}` did not finish within {secs} s")]
    Timeout {
        /// The node (its ssh host name).
        host: String,
        /// The command, as run.
        command: String,
        /// The limit it outlived.
        secs: u64,
    },
}

/// What a remote command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// The remote command's exit status (ssh passes it through).
    pub status: ExitStatus,
    /// Its standard output, as text.
    pub stdout: String,
    /// Its standard error, as text.
    pub stderr: String,
}

impl Ssh {
    /// `ssh [options] HOST -- 'argv quoted for the remote shell'`.
    pub fn command(&self, host: &str, argv: &[String]) -> Command {
        let mut c = Command::new("ssh");
        if let Some(f) = &self.config {
            c.arg("-F").arg(f);
        }
        // The user's options first: ssh keeps the first value it is given for an option.
        for o in &self.options {
            c.arg("-o").arg(o);
        }
        c.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]);
        c.arg("--").arg(host).arg(cluster::shell::join(argv));
        c.stdin(Stdio::null());
        c
    }

    /// The command line as a person would type it (for the "commands run" list).
    pub fn display(&self, host: &str, argv: &[String]) -> String {
        let mut words = vec!["ssh".to_owned()];
        if let Some(f) = &self.config {
            words.extend(["-F".to_owned(), f.display().to_string()]);
        }
        for o in &self.options {
            words.extend(["-o".to_owned(), o.clone()]);
        }
        words.push(host.to_owned());
        format!("{} {}", cluster::shell::join(&words), cluster::shell::quote(&cluster::shell::join(argv)))
    }

    /// Runs `argv` on `host`, waiting at most `timeout`; ssh's own failures become errors.
    pub fn run(&self, host: &str, argv: &[String], timeout: Duration) -> Result<Output, RemoteError> {
        let child = self.command(host, argv).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(RemoteError::Spawn)?;
        let out =
            wait_output(child, timeout).ok_or_else(|| RemoteError::Timeout { host: host.to_owned(), command: argv.join(" "), secs: timeout.as_secs() })?;
        classify(host, &out)?;
        Ok(out)
    }

    /// Like [`Ssh::run`], with `input` copied to the remote command's stdin (a secret that must
    /// not be in argv, a file or an image stream).
    pub fn run_input(&self, host: &str, argv: &[String], mut input: Box<dyn Read + Send>, timeout: Duration) -> Result<Output, RemoteError> {
        let mut child = self.command(host, argv).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(RemoteError::Spawn)?;
        let mut stdin = child.stdin.take().expect("piped");
        // A remote end that stops reading (it failed) shows in its exit status, not here.
        let feeder = std::thread::spawn(move || {
            let _ = std::io::copy(&mut input, &mut stdin);
        });
        let out = wait_output(child, timeout);
        let _ = feeder.join();
        let out = out.ok_or_else(|| RemoteError::Timeout { host: host.to_owned(), command: argv.join(" "), secs: timeout.as_secs() })?;
        classify(host, &out)?;
        Ok(out)
    }

    /// Logs in and runs `true`: the node is reachable and the key is accepted.
    pub fn check(&self, host: &str) -> Result<(), RemoteError> {
        self.run(host, &["true".to_owned()], Duration::from_secs(30)).map(|_| ())
    }
}

/// Turns ssh's own failure (exit 255 with its message on stderr) into an error.
pub fn classify(host: &str, out: &Output) -> Result<(), RemoteError> {
    if out.status.code() != Some(SSH_FAILED) {
        return Ok(());
    }
    let detail = out
        .stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .unwrap_or("ssh exited 255")
        .trim_end_matches('.')
        .to_owned();
    let host = host.to_owned();
    Err(if detail.contains("Permission denied") || detail.contains("Too many authentication failures") {
        RemoteError::Auth { host, detail }
    } else if detail.contains("Host key verification failed") || detail.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        RemoteError::HostKey { host, detail }
    } else {
        RemoteError::Unreachable { host, detail }
    })
}

/// Waits for `child` (stdout/stderr piped) at most `timeout`, reading both pipes meanwhile;
/// on timeout the child is killed and `None` returned.
pub fn wait_output(mut child: Child, timeout: Duration) -> Option<Output> {
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    status.map(|status| Output { status, stdout, stderr })
}
