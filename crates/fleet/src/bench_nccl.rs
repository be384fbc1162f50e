//! `bench nccl run`: the bus-bandwidth run from this machine, over the node layer of
//! `up`/`down`. Per node: log in, check it holds what `up` installed (Docker, the token, the env
//! file the container reads), stop serving as `down` does (the benchmark needs the same ports and
//! GPU), empty the results folder, then start the benchmark container on every node at once in
//! the foreground of an ssh session (the session lasts as long as the container). The head's end
//! is the run's end: its results are copied here, with every node's log, and read back with the
//! analyser. A node failing first, or the time running out, ends the run on every node. Every
//! path ends by removing the container on every node, so nothing is left running; serving stays
//! stopped until `up`.

use crate::node::{self, Target, LONG, SHORT};
use crate::remote::{Output, RemoteError};
use crate::{Report, Ssh};
use anyhow::{anyhow, bail, Context};
use cluster::model::Transport;
use cluster::nccl::check::Expect;
use cluster::nccl::{bench, report};
use cluster::ops::node as script;
use cluster::ops::{MANIFEST, UNIT};
use cluster::render::Format;
use cluster::{Cluster, Node};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the caller asks of the run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The transport to measure (`None`: `cluster.toml`'s).
    pub transport: Option<Transport>,
    /// Largest size of the sweep (`256M`, `1G`; at most `4G`).
    pub max_bytes: Option<String>,
    /// busbw (GB/s, out-of-place, largest size) every collective must reach.
    pub min_busbw: f64,
    /// Folder on this machine the head's results and every node's log are copied into.
    pub out: PathBuf,
    /// Folder on the nodes the benchmark container writes into (absolute).
    pub results: String,
    /// How long the whole run may take before it is stopped on every node.
    pub timeout: Duration,
}

/// How the wait ended.
enum End {
    Head,
    Failed(usize),
    Timeout,
}

/// Runs the benchmark on `nodes` (the head among them) and reads the head's results back;
/// progress goes to `say`.
pub fn run(c: &Cluster, nodes: &[Node], ssh: &Ssh, a: &Options, say: &dyn Report) -> anyhow::Result<report::Bench> {
    let head = c.head().name.clone();
    if !nodes.iter().any(|n| n.name == head) {
        bail!("`--node` leaves out the head `{head}`: the benchmark's rendezvous and results are on the head; add `--node {head}`");
    }
    if let Some(m) = &a.max_bytes {
        bench::parse_size(m).map_err(|e| anyhow!("`--max-bytes`: {e}"))?;
    }
    if a.out.exists() && !a.out.is_dir() {
        bail!("`--out {}` is a file; name a folder (it is made if missing)", a.out.display());
    }
    if !a.results.starts_with('/') {
        bail!("`--results {}`: a node folder must be an absolute path, e.g. `/var/tmp/sparkctl-nccl-bench`", a.results);
    }
    let transport = a.transport;
    let members: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();

    // Every node reachable and holding what `up` installed, before anything stops.
    let targets = node::all(node::each(nodes, |n| {
        let t = Target::connect(ssh, &n.name)?;
        let env = cluster::ops::files::wanted(c, n).into_iter().find(|w| w.format == Format::Env).expect("a node has an env file");
        let probe = [
            c.container.image.clone(),
            c.container.token_file.display().to_string(),
            c.container.hf_cache.display().to_string(),
            MANIFEST.to_owned(),
            UNIT.to_owned(),
            env.path.clone(),
        ];
        let out = t.must("the probe", script::PROBE, &probe, SHORT)?;
        let facts = script::parse_probe(&out.stdout, 1).map_err(|e| anyhow!("node `{}`: {e}", n.name))?;
        node::docker_ready(&n.name, facts.docker)?;
        if facts.token.is_none() {
            bail!(
                "node `{}`: no cluster token at `{}`; run `sparkctl up` first (it installs the token and the node's files)",
                n.name,
                c.container.token_file.display()
            );
        }
        if facts.files[0].as_deref() != Some(env.text.as_str()) {
            let what = if facts.files[0].is_none() { "is missing" } else { "is not what cluster.toml renders" };
            bail!("node `{}`: `{}` {what} (the benchmark container reads it); run `sparkctl up` first", n.name, env.path);
        }
        Ok((t, facts.unit))
    }))?;

    // Serving off, as `down` does (stopped and disabled: the unit's restart must not take the
    // ports and the GPU back mid-run).
    node::all(node::each(nodes, |n| {
        let (t, unit) = &targets[index(nodes, &n.name)];
        t.must(&format!("`systemctl stop {UNIT}`"), script::STOP, &[UNIT.to_owned()], SHORT)?;
        let was = if unit == "active" { "serving stopped" } else { "serving was not running" };
        say.line(&format!("{}: {was} (`{UNIT}` stopped and disabled, as `sparkctl down` does)", n.name));
        t.must("preparing the results folder", bench::PREPARE, &[a.results.clone(), bench::CONTAINER_NAME.to_owned()], SHORT)?;
        Ok(())
    }))?;

    let timeout = a.timeout;
    let head_i = index(nodes, &head);
    let max_bytes = a.max_bytes.as_deref();
    let start = Instant::now();
    let (end, outputs) = std::thread::scope(|s| {
        let mut pending: Vec<_> = nodes
            .iter()
            .map(|n| {
                let args = bench::run_args(c, &n.name, &members, transport, &a.results, max_bytes, a.min_busbw);
                let t = &targets[index(nodes, &n.name)].0;
                // The ssh session's own limit is a backstop; the loop below ends the run first.
                Some(s.spawn(move || t.script(bench::RUN, &args, timeout + SHORT)))
            })
            .collect();
        say.line(&format!("benchmark started on {} node(s): {}; waiting for the head `{head}`", nodes.len(), members.join(", ")));
        let mut done: Vec<Option<Result<Output, RemoteError>>> = nodes.iter().map(|_| None).collect();
        let collect = |pending: &mut Vec<Option<std::thread::ScopedJoinHandle<'_, _>>>, done: &mut Vec<Option<_>>| {
            for (p, d) in pending.iter_mut().zip(done.iter_mut()) {
                if p.as_ref().is_some_and(|h| h.is_finished()) {
                    *d = Some(p.take().expect("pending").join().expect("a node thread panicked"));
                }
            }
        };
        let end = loop {
            collect(&mut pending, &mut done);
            if done[head_i].is_some() {
                break End::Head;
            }
            if let Some(i) = done.iter().position(|d| d.as_ref().is_some_and(|r| r.as_ref().map_or(true, |o| !o.status.success()))) {
                break End::Failed(i);
            }
            if start.elapsed() > timeout {
                break End::Timeout;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        // After the head, the workers end on their own (their ranks are done): a short grace.
        if matches!(end, End::Head) {
            let grace = Instant::now();
            while pending.iter().any(Option::is_some) && grace.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(200));
                collect(&mut pending, &mut done);
            }
        }
        remove_everywhere(nodes, &targets, say);
        for (p, d) in pending.iter_mut().zip(done.iter_mut()) {
            if let Some(h) = p.take() {
                *d = Some(h.join().expect("a node thread panicked"));
            }
        }
        (end, done)
    });

    std::fs::create_dir_all(&a.out).with_context(|| format!("creating `{}`", a.out.display()))?;
    for (n, o) in nodes.iter().zip(&outputs) {
        if let Some(Ok(o)) = o {
            write_atomic(&a.out.join(format!("{}.log", n.name)), format!("{}{}", o.stdout, o.stderr).as_bytes())?;
        }
    }
    let outcome = |i: usize| -> String {
        match &outputs[i] {
            Some(Ok(o)) => format!("exit {}", o.status.code().map_or("by a signal".into(), |c| c.to_string())),
            Some(Err(e)) => e.to_string(),
            None => "no answer".into(),
        }
    };
    match end {
        End::Timeout => bail!(
            "the benchmark did not finish within {} s; it was stopped on every node (logs in `{}`); raise `--timeout` or shorten the sweep (`--max-bytes`)",
            a.timeout.as_secs(),
            a.out.display()
        ),
        End::Failed(i) => bail!(
            "the benchmark on `{}` ended first ({}): {}; it was stopped on every node (logs in `{}`)",
            nodes[i].name,
            outcome(i),
            last_words(&outputs[i]),
            a.out.display()
        ),
        End::Head => {}
    }
    let code = match &outputs[head_i] {
        Some(Ok(o)) => o.status.code(),
        Some(Err(e)) => bail!("the benchmark on the head `{head}`: {e}"),
        None => None,
    };
    // 0: the head's verdict passed, 1: it failed; anything else is the run failing.
    if !matches!(code, Some(0 | 1)) {
        bail!(
            "the benchmark on the head `{head}` failed ({}): {}; it was stopped on every node (logs in `{}`)",
            outcome(head_i),
            last_words(&outputs[head_i]),
            a.out.display()
        );
    }
    let t = &targets[head_i].0;
    let mut files = Vec::new();
    for f in [bench::TABLE_FILE, bench::DEBUG_FILE, bench::RESULT_FILE] {
        let out = t.must(&format!("reading `{}/{f}`", a.results), bench::READ, &[a.results.clone(), f.to_owned()], LONG)?;
        write_atomic(&a.out.join(f), out.stdout.as_bytes())?;
        files.push(out.stdout);
    }
    say.line(&format!("results of `{head}` copied to `{}` ({} s)", a.out.display(), start.elapsed().as_secs()));

    let mut expect = Expect::from_cluster(c);
    if let Some(t) = transport {
        expect.transport = t;
    }
    Ok(report::bench(&files[0], &files[1], Some(&expect), a.min_busbw))
}

fn index(nodes: &[Node], name: &str) -> usize {
    nodes.iter().position(|n| n.name == name).expect("a chosen node")
}

/// The benchmark container removed on every node, whatever state it is in; a node that cannot
/// be reached is named with the command to run there.
fn remove_everywhere(nodes: &[Node], targets: &[(Target, String)], report: &dyn Report) {
    let r = node::each(nodes, |n| {
        let t = &targets[index(nodes, &n.name)].0;
        t.script(bench::REMOVE, &[bench::CONTAINER_NAME.to_owned()], SHORT).map_err(anyhow::Error::from)
    });
    for (n, r) in nodes.iter().zip(r) {
        if let Err(e) = r {
            report.warning(&format!(
                "node `{}`: could not remove `{}` ({}); run `docker rm -f {}` there",
                n.name,
                bench::CONTAINER_NAME,
                crate::one_line(&e),
                bench::CONTAINER_NAME
            ));
        }
    }
}

/// The cause a node's run printed, for the error line: its last `error:` line (the
/// entrypoint's own, e.g. a failed preflight), else its last line.
fn last_words(o: &Option<Result<Output, RemoteError>>) -> String {
    match o {
        Some(Ok(o)) => {
            let all = format!("{}\n{}", o.stdout, o.stderr);
            let lines = || all.lines().map(str::trim).filter(|l| !l.is_empty());
            lines().rfind(|l| l.contains("error: ")).or_else(|| lines().next_back()).unwrap_or("no output").to_owned()
        }
        Some(Err(e)) => e.to_string(),
        None => "no answer".into(),
    }
}

/// Written beside its name and renamed over it: a file is either whole or absent.
fn write_atomic(p: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp: PathBuf = p.with_extension("sparkctl-tmp");
    std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, p)).with_context(|| format!("writing `{}`", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn ended(stdout: &str, stderr: &str) -> Option<Result<Output, RemoteError>> {
        Some(Ok(Output { status: std::process::ExitStatus::from_raw(3 << 8), stdout: stdout.into(), stderr: stderr.into() }))
    }

    #[test]
    fn a_node_s_cause_is_its_last_error_line_else_its_last_line() {
        assert_eq!(
            last_words(&ended("preflight\nerror: no RDMA device on rail 0; check cabling\nbye\n", "")),
            "error: no RDMA device on rail 0; check cabling"
        );
        assert_eq!(last_words(&ended("a\n", "  b  \n\n")), "b");
        assert_eq!(last_words(&ended("", "")), "no output");
        assert_eq!(last_words(&None), "no answer");
    }
}
