//! Looking before changing: each node logged in to, probed once and planned (`cluster::ops`),
//! and the one token of the group.

use super::local::LocalModel;
use crate::node::{Target, LONG, SHORT};
use crate::Ssh;
use anyhow::{anyhow, bail, Context};
use cluster::ops::files::{self, Action, Wanted};
use cluster::ops::model as msync;
use cluster::ops::node::{self as script, Facts};
use cluster::ops::{sha256_hex, MANIFEST, UNIT};
use cluster::{Cluster, Node};
use std::io::Read;

/// What `up` will do on one node.
pub(crate) struct NodePlan {
    pub node: Node,
    pub target: Target,
    pub facts: Facts,
    pub files: Vec<(Wanted, Action)>,
    pub image: ImageStep,
    pub model: Option<ModelStep>,
}

pub(crate) enum ImageStep {
    Present(String),
    Pull,
    Load,
}

pub(crate) struct ModelStep {
    pub via: String,
    pub copies: Vec<msync::Copy>,
    pub free_kib: Option<u64>,
}

/// Logs in, probes, and plans one node.
pub(crate) fn look(c: &Cluster, n: &Node, ssh: &Ssh, model: Option<&LocalModel>, local_image: Option<&str>) -> anyhow::Result<NodePlan> {
    let target = Target::connect(ssh, &n.name)?;
    let wanted = files::wanted(c, n);
    let mut probe_args = vec![
        c.container.image.clone(),
        c.container.token_file.display().to_string(),
        c.container.hf_cache.display().to_string(),
        MANIFEST.to_owned(),
        UNIT.to_owned(),
    ];
    probe_args.extend(wanted.iter().map(|w| w.path.clone()));
    let out = target.must("the probe", script::PROBE, &probe_args, SHORT)?;
    let facts = script::parse_probe(&out.stdout, wanted.len()).map_err(|e| anyhow!("node `{}`: {e}", n.name))?;
    crate::node::docker_ready(&n.name, facts.docker)?;
    let files = wanted.into_iter().zip(&facts.files).map(|(w, cur)| {
        let a = files::action(&w, cur.as_deref(), &facts.manifest);
        (w, a)
    });
    let files = files.collect();
    let image = match (&facts.image, local_image) {
        (Some(have), Some(want)) if have == want => ImageStep::Present(have.clone()),
        (Some(have), None) => ImageStep::Present(have.clone()),
        _ if cluster::ops::is_registry_ref(&c.container.image) => ImageStep::Pull,
        _ => ImageStep::Load,
    };
    let model = match model {
        None => None,
        Some(m) => {
            let snap = msync::snapshot_dir(&c.container.hf_cache.display().to_string(), &c.serve.model, &m.rev);
            let mut list_args = vec![snap];
            for f in &m.files {
                list_args.extend([f.rel.clone(), f.size.to_string()]);
            }
            let out = target.must("listing the model", msync::LIST, &list_args, LONG)?;
            let listing = msync::parse_list(&out.stdout).map_err(|e| anyhow!("node `{}`: {e}", n.name))?;
            Some(ModelStep { via: n.rail_addr().to_string(), copies: msync::plan(&m.files, &listing), free_kib: listing.free_kib })
        }
    };
    Ok(NodePlan { node: n.clone(), target, facts, files, image, model })
}

/// The token: kept where every node has the same one; copied from a node that has it to those
/// that lack it; made once when no node has one. Nodes that disagree are an error unless forced
/// (then the head's wins). `Some((token, nodes to write))` when something is written.
///
/// `others` are the nodes `--node` left out: when no chosen node has a token, one of them may
/// (the group's, from an earlier `up`), so it is read from there; a new one would split the
/// group. One that cannot be asked stops `up` before any change.
pub(crate) fn token_plan(c: &Cluster, plans: &[NodePlan], others: &[&Node], ssh: &Ssh, force: bool) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let have: Vec<&NodePlan> = plans.iter().filter(|p| p.facts.token.is_some()).collect();
    let mut hashes: Vec<&str> = have.iter().filter_map(|p| p.facts.token.as_deref()).collect();
    hashes.sort_unstable();
    hashes.dedup();
    let elsewhere = if have.is_empty() { token_elsewhere(c, others, ssh)? } else { None };
    let token = match have.first() {
        None if elsewhere.is_some() => elsewhere.expect("checked"),
        None => {
            let mut bytes = [0u8; 32];
            std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).context("reading `/dev/urandom` for the cluster token")?;
            format!("{}\n", hex::encode(bytes))
        }
        Some(_) if hashes.len() > 1 && !force => bail!(
            "the cluster token differs between {}; remove the wrong token files, or run `up --force` to give every node the head's",
            have.iter().map(|p| format!("`{}`", p.node.name)).collect::<Vec<_>>().join(" and ")
        ),
        Some(first) => {
            let from = have.iter().find(|p| p.node.role == cluster::Role::Head).unwrap_or(first);
            from.target.must("reading the token", script::READ_TOKEN, &[c.container.token_file.display().to_string()], SHORT)?.stdout
        }
    };
    let hash = sha256_hex(token.as_bytes());
    let to: Vec<String> = plans.iter().filter(|p| p.facts.token.as_deref() != Some(hash.as_str())).map(|p| p.node.name.clone()).collect();
    Ok((!to.is_empty()).then_some((token, to)))
}

/// The token of the first node in `others` that has one (`None`: none has).
fn token_elsewhere(c: &Cluster, others: &[&Node], ssh: &Ssh) -> anyhow::Result<Option<String>> {
    let path = c.container.token_file.display().to_string();
    for n in others {
        let read = Target::connect(ssh, &n.name).and_then(|t| t.must("reading the token", script::READ_TOKEN_IF_ANY, std::slice::from_ref(&path), SHORT));
        match read {
            Ok(out) if !out.stdout.trim().is_empty() => return Ok(Some(out.stdout)),
            Ok(_) => {}
            Err(e) => bail!(
                "no chosen node has the cluster token `{path}` and `{}`, left out by `--node`, cannot be asked for its own ({}); reach it, or run `up` with every node so one token is made for all",
                n.name,
                crate::one_line(&e)
            ),
        }
    }
    Ok(None)
}
