//! Making one node what its plan says: the files all-or-nothing, the token, the image, the model.

use super::local::LocalModel;
use super::plan::{ImageStep, ModelStep, NodePlan};
use crate::node::{self, LONG, SHORT};
use crate::Report;
use anyhow::{anyhow, bail, Context};
use cluster::ops::files::{self, Action, Apply, Wanted};
use cluster::ops::model as msync;
use cluster::ops::node::{self as script, b64};
use cluster::ops::MANIFEST;
use cluster::Cluster;
use std::process::{Command, Stdio};

/// Makes one node what the plan says; a failed file install leaves the node's files as they were.
pub(crate) fn apply(
    c: &Cluster,
    p: &NodePlan,
    token: Option<&(String, Vec<String>)>,
    model: Option<&LocalModel>,
    force: bool,
    report: &dyn Report,
) -> anyhow::Result<()> {
    let name = &p.node.name;
    let install: Vec<&Wanted> = p
        .files
        .iter()
        .filter(|(_, a)| matches!(a, Action::Create | Action::Update { .. }) || force && matches!(a, Action::HandEdited { .. }))
        .map(|(w, _)| w)
        .collect();
    if !install.is_empty() {
        let apply = Apply::for_formats(install.iter().map(|w| w.format));
        let manifest = files::format_manifest(&files::updated_manifest(&p.facts.manifest, &install));
        let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
        let mut args = vec![MANIFEST.to_owned(), b64(manifest.as_bytes()), flag(apply.netplan), flag(apply.sysctl), flag(apply.daemon_reload)];
        for w in &install {
            args.extend([w.path.clone(), format!("{:o}", w.mode), b64(w.text.as_bytes())]);
        }
        p.target.must("installing the files", script::INSTALL, &args, SHORT)?;
        report.line(&format!(
            "{name}: installed {} file(s){}",
            install.len(),
            if apply.commands().is_empty() { String::new() } else { format!(", ran {}", apply.commands().join(", ")) }
        ));
    }
    if let Some((tok, _)) = token.filter(|(_, to)| to.contains(name)) {
        let out = p.target.script_input(
            script::TOKEN,
            &[c.container.token_file.display().to_string()],
            Box::new(std::io::Cursor::new(tok.clone().into_bytes())),
            SHORT,
        )?;
        node::check(name, "writing the token", out)?;
        report.line(&format!("{name}: token written"));
    }
    match &p.image {
        ImageStep::Present(_) => {}
        ImageStep::Pull => {
            report.line(&format!("{name}: pulling `{}`", c.container.image));
            p.target.must(&format!("`docker pull {}`", c.container.image), "docker pull \"$1\" >/dev/null", std::slice::from_ref(&c.container.image), LONG)?;
        }
        ImageStep::Load => {
            report.line(&format!("{name}: sending `{}` from this machine", c.container.image));
            let mut save = Command::new("docker")
                .args(["save", &c.container.image])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("running `docker save` on this machine; install Docker here, or push the image to a registry the nodes can pull from")?;
            let stream = save.stdout.take().expect("piped");
            let out = p.target.script_input("docker load >/dev/null", &[], Box::new(stream), LONG)?;
            let saved = save.wait_with_output().context("waiting for `docker save`")?;
            if !saved.status.success() {
                bail!(
                    "`docker save {}` failed on this machine: {}; build or load the image here first",
                    c.container.image,
                    String::from_utf8_lossy(&saved.stderr).trim()
                );
            }
            node::check(name, "`docker load`", out)?;
        }
    }
    if let (Some(m), Some(lm)) = (&p.model, model) {
        copy_model(c, p, m, lm, report)?;
    }
    Ok(())
}

/// Copies the planned model files over the node's rail, each continued where a previous run
/// stopped and renamed into place once its hash matches; then points `refs/main` at it.
fn copy_model(c: &Cluster, p: &NodePlan, m: &ModelStep, lm: &LocalModel, report: &dyn Report) -> anyhow::Result<()> {
    let name = &p.node.name;
    let cache = c.container.hf_cache.display().to_string();
    let snap = msync::snapshot_dir(&cache, &c.serve.model, &lm.rev);
    let total = msync::bytes_to_send(&m.copies);
    let mut sent = 0u64;
    for cp in &m.copies {
        let path = lm.dir.join(&cp.rel);
        let mut f = std::fs::File::open(&path).with_context(|| format!("opening `{}`", path.display()))?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(cp.offset)).with_context(|| format!("reading `{}`", path.display()))?;
        let args = [snap.clone(), cp.rel.clone(), cp.size.to_string(), cp.sha256.clone(), cp.offset.to_string()];
        let out = p
            .target
            .script_input_via(&m.via, msync::RECEIVE, &args, Box::new(f), LONG)
            .map_err(|e| anyhow!("{e}; the model goes over the rail address: `~/.ssh/config` needs an entry (`Host {}`) like the one for `{name}`", m.via))?;
        node::check(name, &format!("copying `{}`", cp.rel), out)?;
        sent += cp.size - cp.offset;
        report.line(&format!("{name}: model {} MiB of {} MiB ({})", sent >> 20, total >> 20, cp.rel));
    }
    p.target.must("writing `refs/main`", msync::REF, &[cache, c.serve.model.clone(), lm.rev.clone()], SHORT)?;
    Ok(())
}
