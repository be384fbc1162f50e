//! The plan of one node as the lines `up` shows (and `--dry-run` stops after).

use super::local::LocalModel;
use super::plan::{ImageStep, NodePlan};
use cluster::ops::files::{self, Action, Apply};
use cluster::ops::model as msync;
use cluster::ops::UNIT;
use cluster::Cluster;

/// What will happen on one node, as lines; `true` when something changes there.
pub(crate) fn show(c: &Cluster, p: &NodePlan, token: Option<&(String, Vec<String>)>, model: Option<&LocalModel>) -> (Vec<String>, bool) {
    let name = &p.node.name;
    let mut out = Vec::new();
    let mut changed = false;
    for (w, a) in &p.files {
        out.push(format!("{name}: {}: {}", w.path, a.verb()));
        match a {
            Action::Unchanged => {}
            Action::Create => changed = true,
            Action::Update { current } | Action::HandEdited { current } => {
                changed = true;
                out.extend(files::diff(&w.path, current, &w.text).lines().map(str::to_owned));
            }
        }
    }
    let apply = Apply::for_formats(p.files.iter().filter(|(_, a)| *a != Action::Unchanged).map(|(w, _)| w.format));
    if !apply.commands().is_empty() {
        out.push(format!("{name}: then: {}", apply.commands().join(", ")));
    }
    match token {
        Some((_, to)) if to.contains(name) => {
            out.push(format!("{name}: token `{}`: write (mode 0600, the same on every node)", c.container.token_file.display()))
        }
        _ => out.push(format!("{name}: token `{}`: unchanged", c.container.token_file.display())),
    }
    match &p.image {
        ImageStep::Present(id) => out.push(format!("{name}: image `{}`: present ({})", c.container.image, short(id))),
        ImageStep::Pull => {
            changed = true;
            out.push(format!("{name}: image `{}`: docker pull on the node", c.container.image));
        }
        ImageStep::Load => {
            changed = true;
            out.push(format!("{name}: image `{}`: docker save here | ssh {name} docker load", c.container.image));
        }
    }
    match (&p.model, model) {
        (Some(m), Some(lm)) if m.copies.is_empty() => out.push(format!("{name}: model `{}`: {} file(s) up to date", c.serve.model, lm.files.len())),
        (Some(m), Some(lm)) => {
            changed = true;
            out.push(format!(
                "{name}: model `{}`: copy {} of {} file(s), {} MiB, over the rail {}",
                c.serve.model,
                m.copies.len(),
                lm.files.len(),
                msync::bytes_to_send(&m.copies) / (1 << 20),
                m.via
            ));
            for cp in &m.copies {
                let from = if cp.offset > 0 { format!(" (continuing at byte {})", cp.offset) } else { String::new() };
                out.push(format!("{name}:   {}{from}", cp.rel));
            }
        }
        _ => out.push(format!("{name}: model `{}`: no copy on this machine (`--model-dir`); the node must have it", c.serve.model)),
    }
    out.push(format!("{name}: unit {UNIT}: {}", p.facts.unit));
    (out, changed)
}

fn short(id: &str) -> &str {
    id.get(..19).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::super::plan::ModelStep;
    use super::*;
    use crate::{Ssh, Target};
    use cluster::ops::files::wanted;
    use cluster::ops::model::{Copy, LocalFile};
    use cluster::ops::node::Facts;

    fn cluster() -> Cluster {
        cluster::parse_str(include_str!("../../../../examples/cluster.toml"), "cluster.toml".as_ref()).unwrap()
    }

    fn plan(c: &Cluster, files: impl Fn(usize, &str) -> Action, image: ImageStep, model: Option<ModelStep>) -> NodePlan {
        let n = c.nodes[0].clone();
        let files = wanted(c, &n).into_iter().enumerate().map(|(i, w)| (w.clone(), files(i, &w.text))).collect();
        let facts = Facts { unit: "inactive".into(), ..Facts::default() };
        NodePlan { target: Target { name: n.name.clone(), ssh: Ssh::default(), sudo: false }, node: n, facts, files, image, model }
    }

    #[test]
    fn nothing_to_change_is_one_line_a_step_and_changes_nothing() {
        let c = cluster();
        let p = plan(&c, |_, _| Action::Unchanged, ImageStep::Present("sha256:0123456789abcdef0123".into()), None);
        let (lines, changed) = show(&c, &p, None, None);
        assert!(!changed);
        let n = p.files.len();
        assert!(lines[..n].iter().all(|l| l.starts_with("spark-2: /") && l.ends_with(": unchanged")), "{lines:?}");
        assert_eq!(
            lines[n..],
            [
                "spark-2: token `/etc/spark-cluster/token`: unchanged",
                "spark-2: image `spark-registry.lan:5000/sparkctl/vllm-spark:25.11`: present (sha256:0123456789ab)",
                "spark-2: model `QuantTrio/Qwen3-VL-235B-A22B-Instruct-AWQ`: no copy on this machine (`--model-dir`); the node must have it",
                "spark-2: unit spark-cluster: inactive",
            ]
        );
    }

    #[test]
    fn an_update_shows_its_diff_and_the_token_image_and_model_steps() {
        let c = cluster();
        let edit = |i: usize, text: &str| if i == 0 { Action::Update { current: text.replacen('\n', "\nextra\n", 1) } } else { Action::Unchanged };
        let copies = vec![Copy { rel: "model-1.safetensors".into(), size: 3 << 20, sha256: "ab".into(), offset: 1 << 20 }];
        let model = ModelStep { via: "192.168.100.10".into(), copies, free_kib: None };
        let p = plan(&c, edit, ImageStep::Pull, Some(model));
        let lm =
            LocalModel { dir: "/m".into(), rev: "r".into(), files: vec![LocalFile { rel: "model-1.safetensors".into(), size: 3 << 20, sha256: "ab".into() }] };
        let token = ("t\n".to_owned(), vec!["spark-2".to_owned()]);
        let (lines, changed) = show(&c, &p, Some(&token), Some(&lm));
        assert!(changed);
        let path = &p.files[0].0.path;
        assert_eq!(lines[0], format!("spark-2: {path}: update"));
        assert_eq!(lines[1], format!("--- {path} (on the node)"));
        assert!(lines.contains(&"-extra".to_owned()), "{lines:?}");
        let tail: Vec<&str> = lines[lines.len() - 5..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "spark-2: token `/etc/spark-cluster/token`: write (mode 0600, the same on every node)",
                "spark-2: image `spark-registry.lan:5000/sparkctl/vllm-spark:25.11`: docker pull on the node",
                "spark-2: model `QuantTrio/Qwen3-VL-235B-A22B-Instruct-AWQ`: copy 1 of 1 file(s), 2 MiB, over the rail 192.168.100.10",
                "spark-2:   model-1.safetensors (continuing at byte 1048576)",
                "spark-2: unit spark-cluster: inactive",
            ]
        );
    }
}
