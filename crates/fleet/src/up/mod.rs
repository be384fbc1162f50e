//! `up`: from the control machine, make every node what `cluster.toml` says and start the
//! group. Per node: log in (root or `sudo -n`), look (one probe), plan (`cluster::ops`), show
//! the plan, then install changed files all-or-nothing, the token, the image, the model, and
//! (re)start the group; wait for readiness with a line per node and show the API URL.

mod apply;
mod local;
mod plan;
mod ready;
mod show;

use crate::node::{self, SHORT};
use crate::{Report, Ssh};
use anyhow::bail;
use cluster::ops::files::Action;
use cluster::ops::model as msync;
use cluster::ops::node as script;
use cluster::ops::{RESTARTS_FILE, UNIT};
use cluster::{Cluster, Node};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the caller asks of `up`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `cluster.toml`'s path, for the messages that name it.
    pub cluster_file: PathBuf,
    /// Show every action and diff, change nothing.
    pub dry_run: bool,
    /// Replace files edited on a node (a backup is kept).
    pub force: bool,
    /// The model's files on this machine; `None`: the snapshot `refs/main` names under
    /// `hf_home`.
    pub model_dir: Option<PathBuf>,
    /// This machine's Hugging Face cache (`None`: no model is sent unless `model_dir` is given).
    pub hf_home: Option<PathBuf>,
    /// How long to wait for every node to be ready (`None`: do not wait).
    pub timeout: Option<Duration>,
    /// Clear each node's restart history and restart the group.
    pub reset_budget: bool,
}

/// Brings `nodes` of `c` up as `o` says, showing the plan and the progress on `report`.
pub fn up(c: &Cluster, nodes: &[Node], ssh: &Ssh, o: &Options, report: &dyn Report) -> anyhow::Result<()> {
    let start = Instant::now();
    let local_model = local::local_model(c, o.model_dir.as_deref(), o.hf_home.as_deref())?;
    let local_image = local::local_image_id(&c.container.image);
    // Look at every node at once; a node that cannot be reached stops `up` before any change.
    let plans = node::all(node::each(nodes, |n| plan::look(c, n, ssh, local_model.as_ref(), local_image.as_deref())))?;
    // `--node` chose some nodes: the others may already hold the group's token.
    let others: Vec<&Node> = c.nodes.iter().filter(|n| !nodes.iter().any(|m| m.name == n.name)).collect();
    let token = plan::token_plan(c, &plans, &others, ssh, o.force)?;
    // A node whose budget is spent stays `down` with its unit running: clearing the history
    // restarts the group, or it would wait in `down` until a signal.
    let mut changed_any = token.is_some() || o.reset_budget;
    let mut refused = Vec::new();
    for p in &plans {
        let (lines, changed) = show::show(c, p, token.as_ref(), local_model.as_ref());
        lines.iter().for_each(|l| report.line(l));
        changed_any |= changed;
        if o.reset_budget {
            report.line(&format!("{}: restart history `{RESTARTS_FILE}`: clear", p.node.name));
        }
        for (w, a) in &p.files {
            if matches!(a, Action::HandEdited { .. }) && !o.force {
                refused.push(format!("`{}` on `{}`", w.path, p.node.name));
            }
        }
        if let Some(m) = &p.model {
            let need = msync::bytes_to_send(&m.copies) / 1024;
            if let Some(free) = m.free_kib.filter(|f| *f < need) {
                bail!(
                    "node `{}`: disk full: the model needs {} MiB more but {} has {} MiB free; free space or move `container.hf_cache`",
                    p.node.name,
                    need / 1024,
                    c.container.hf_cache.display(),
                    free / 1024
                );
            }
        }
    }
    if !refused.is_empty() {
        bail!("{} changed on the node since sparkctl installed it (diff above); put the change into cluster.toml, or run `up --force` to replace it (the old file is kept as `.sparkctl-bak`)", refused.join(", "));
    }
    // The model is on every node from here: without HF_HUB_OFFLINE=1 vLLM still asks the hub
    // for it at each start (slow, and on a node without internet a failed start). Said, not
    // set: the rendered files stay exactly what `cluster.toml` says (as `sparkctl render` shows).
    if local_model.is_some() && c.container.env.get("HF_HUB_OFFLINE").map(String::as_str) != Some("1") {
        report.warning(&format!(
            "`{}`: `container.env` has no `HF_HUB_OFFLINE = \"1\"`: the model is copied to every node, but vLLM there will still contact the Hugging Face hub at each start (and fail on a node without internet); add it to `[container] env`",
            o.cluster_file.display()
        ));
    }
    let running = plans.iter().all(|p| p.facts.unit == "active");
    if o.dry_run {
        report.line("dry run: nothing was changed");
        return Ok(());
    }
    if !changed_any && running {
        report.line(&format!("nothing to change on {} node(s); the group is running", plans.len()));
    } else {
        for p in &plans {
            apply::apply(c, p, token.as_ref(), local_model.as_ref(), o.force, report)?;
            if o.reset_budget {
                p.target.must("clearing the restart history", script::CLEAR_RESTARTS, &[RESTARTS_FILE.to_owned()], SHORT)?;
                report.line(&format!("{}: restart history cleared", p.node.name));
            }
        }
        // One group: a change on any node restarts every node together (the rendezvous
        // fingerprint covers the serve command, the image and the node list).
        let verb = if changed_any { "restart" } else { "start" };
        node::all(node::each(nodes, |n| {
            let t = &plans.iter().find(|p| p.node.name == n.name).expect("planned").target;
            t.must(&format!("`systemctl {verb} {UNIT}`"), script::START, &[UNIT.to_owned(), verb.to_owned()], SHORT).map(|_| ())
        }))?;
        report.line(&format!("group {verb}ed on {} node(s)", plans.len()));
    }
    match o.timeout {
        None => Ok(()),
        Some(timeout) => ready::wait_ready(c, &plans, start, timeout, report),
    }
}
