//! Cross-field checks on a parsed cluster: the mistakes that silently break a RoCE cluster
//! (rails, subnets, MTU, RDMA devices, parallelism) are refused here, before anything is rendered.

use crate::derive::NODE_SPECIFIC_VARS;
use crate::error::{Error, Result};
use crate::fit::ServeArgs;
use crate::model::{Cluster, Role};
use std::collections::BTreeMap;

pub(crate) fn validate(c: &Cluster) -> Result<()> {
    names(c)?;
    head(c)?;
    rails(c)?;
    rdma_devices(c)?;
    addresses(c)?;
    container(c)?;
    parallelism(c)
}

fn invalid(c: &Cluster, key: &str, value: &str, problem: &str, fix: &str) -> Error {
    Error::InvalidValue { file: c.source.clone(), line: None, key: key.into(), value: value.into(), problem: problem.into(), fix: fix.into() }
}

/// Node names become host names, NixOS configuration names and file names.
fn names(c: &Cluster) -> Result<()> {
    let hostname =
        |s: &str| !s.is_empty() && s.len() <= 63 && !s.starts_with('-') && s.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    if !hostname(&c.name) {
        return Err(invalid(c, "cluster.name", &format!("{:?}", c.name), "it is not a DNS label", "use lowercase letters, digits and `-`"));
    }
    let mut seen = BTreeMap::new();
    for (i, n) in c.nodes.iter().enumerate() {
        if !hostname(&n.name) {
            return Err(invalid(c, &format!("node[{i}].name"), &format!("{:?}", n.name), "it is not a host name", "use lowercase letters, digits and `-`"));
        }
        if seen.insert(n.name.as_str(), i).is_some() {
            return Err(Error::DuplicateNode { file: c.source.clone(), name: n.name.clone() });
        }
    }
    Ok(())
}

fn head(c: &Cluster) -> Result<()> {
    let heads: Vec<&str> = c.nodes.iter().filter(|n| n.role == Role::Head).map(|n| n.name.as_str()).collect();
    match heads.as_slice() {
        [] => Err(Error::NoHead { file: c.source.clone() }),
        [_] => Ok(()),
        [first, second, ..] => Err(Error::SeveralHeads { file: c.source.clone(), first: (*first).into(), second: (*second).into() }),
    }
}

/// Rail i of every node shares one subnet (same port cabled on both ends); the twins of a node
/// never share one (each twin its own subnet).
fn rails(c: &Cluster) -> Result<()> {
    let head = c.head();
    for n in &c.nodes {
        if n.rails.len() != head.rails.len() {
            return Err(Error::RailCountMismatch {
                file: c.source.clone(),
                node: n.name.clone(),
                found: n.rails.len(),
                head: head.name.clone(),
                expected: head.rails.len(),
            });
        }
        for (i, a) in n.rails.iter().enumerate() {
            for b in &n.rails[i + 1..] {
                if a.interface == b.interface {
                    return Err(invalid(
                        c,
                        &format!("node `{}` rail interface", n.name),
                        &format!("{:?}", a.interface),
                        "it is listed twice",
                        "list each netdev once",
                    ));
                }
                if a.address.subnet() == b.address.subnet() {
                    return Err(Error::TwinsShareSubnet {
                        file: c.source.clone(),
                        node: n.name.clone(),
                        first: a.interface.clone(),
                        second: b.interface.clone(),
                        subnet: a.address.subnet(),
                    });
                }
            }
            let h = &head.rails[i];
            if a.address.subnet() != h.address.subnet() {
                return Err(Error::RailSubnetMismatch {
                    file: c.source.clone(),
                    index: i,
                    node_a: head.name.clone(),
                    subnet_a: h.address.subnet(),
                    node_b: n.name.clone(),
                    subnet_b: a.address.subnet(),
                });
            }
        }
    }
    Ok(())
}

/// No IPv4 address appears twice across rails and management interfaces.
fn addresses(c: &Cluster) -> Result<()> {
    let mut seen: BTreeMap<std::net::Ipv4Addr, String> = BTreeMap::new();
    for n in &c.nodes {
        let mut owned: Vec<(std::net::Ipv4Addr, String)> = n.rails.iter().map(|r| (r.address.addr, format!("{}/{}", n.name, r.interface))).collect();
        if let Some(m) = &n.management {
            owned.push((m.address.addr, format!("{}/{}", n.name, m.interface)));
        }
        for (addr, who) in owned {
            if let Some(first) = seen.insert(addr, who.clone()) {
                return Err(Error::DuplicateAddress { file: c.source.clone(), address: addr.to_string(), first, second: who });
            }
        }
    }
    Ok(())
}

/// spark-entrypoint settings that are the same on every node and derived from nothing, so
/// `container.env` may set them (the launch check's mode: docs/plan.md).
const SHARED_SETTINGS: &[&str] = &["SPARK_PLAN"];

fn container(c: &Cluster) -> Result<()> {
    let image = &c.container.image;
    if image.chars().any(|ch| ch.is_whitespace() || ch.is_control()) || image.starts_with('-') || image.is_empty() {
        return Err(invalid(c, "container.image", &format!("{image:?}"), "it is not an image reference", "write `name:tag` or `name@sha256:…`"));
    }
    if let Some(repo) = image_repository(image).filter(|r| r.bytes().any(|b| b.is_ascii_uppercase())) {
        return Err(invalid(
            c,
            "container.image",
            &format!("{image:?}"),
            &format!("its repository `{repo}` has uppercase letters, which Docker refuses"),
            &format!("write `{}` (tags may keep uppercase)", image.replacen(repo, &repo.to_ascii_lowercase(), 1)),
        ));
    }
    for (key, path) in
        [("container.hf_cache", &c.container.hf_cache), ("container.env_file", &c.container.env_file), ("container.token_file", &c.container.token_file)]
    {
        let shown = format!("{:?}", path.display().to_string());
        if !path.is_absolute() {
            return Err(invalid(c, key, &shown, "it is a relative path", "use an absolute path on the node"));
        }
        // These become `--volume HOST:CONTAINER[:ro]` and `--env-file PATH` in docker run lines
        // and systemd units: `:` splits a volume, whitespace splits a unit's command line.
        let text = path.to_string_lossy();
        if let Some(bad) = text.chars().find(|ch| *ch == ':' || *ch == ',' || ch.is_whitespace() || ch.is_control()) {
            let what = if bad == ':' || bad == ',' { format!("`{bad}`") } else { format!("{bad:?}") };
            return Err(invalid(
                c,
                key,
                &shown,
                &format!("it contains {what}, which breaks docker's `--volume HOST:CONTAINER` and the rendered command lines"),
                "use a path of letters, digits, `/`, `.`, `_` and `-` (a symlink can point elsewhere)",
            ));
        }
    }
    for name in c.container.env.keys() {
        let valid =
            name.chars().next().is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_') && name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !valid {
            return Err(invalid(c, &format!("container.env.{name}"), name, "it is not a variable name", "use letters, digits and `_`"));
        }
        if NODE_SPECIFIC_VARS.contains(&name.as_str()) || (name.starts_with("SPARK_") && !SHARED_SETTINGS.contains(&name.as_str())) {
            return Err(invalid(
                c,
                &format!("container.env.{name}"),
                name,
                "it is derived per node from the rails and the node's role",
                "remove it; sparkctl sets it for each node",
            ));
        }
    }
    if let Some(flag) = c.serve.args.iter().find(|a| *a == "--port" || a.starts_with("--port=")) {
        return Err(invalid(c, "serve.args", &format!("{flag:?}"), "the API port is `serve.port`", "remove it from `serve.args` and set `serve.port`"));
    }
    if c.serve.port == c.rendezvous_port {
        return Err(invalid(
            c,
            "serve.port",
            &c.serve.port.to_string(),
            "it equals `cluster.rendezvous_port`",
            "give the API and the rendezvous different ports",
        ));
    }
    Ok(())
}

/// The repository part of an image reference (no registry host, tag or digest), where Docker
/// allows only lowercase; `None` when there is nothing to check.
fn image_repository(image: &str) -> Option<&str> {
    let name = image.split('@').next()?;
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let name = match name[last_slash..].rfind(':') {
        Some(i) => &name[..last_slash + i],
        None => name,
    };
    match name.split_once('/') {
        Some((host, repo)) if host.contains(['.', ':']) || host == "localhost" => Some(repo),
        _ => Some(name),
    }
}

/// RDMA device names reach `NCCL_IB_HCA` (`dev:port,dev:port`) verbatim: the kernel's names are
/// letters, digits, `_`, `-` and `.`, at most 63 bytes.
fn rdma_devices(c: &Cluster) -> Result<()> {
    for n in &c.nodes {
        for (i, r) in n.rails.iter().enumerate() {
            let Some(dev) = &r.rdma_device else { continue };
            let ok = !dev.is_empty() && dev.len() <= 63 && dev.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) && dev != "." && dev != "..";
            if !ok {
                return Err(invalid(
                    c,
                    &format!("node `{}` rail[{i}].rdma_device", n.name),
                    &format!("{dev:?}"),
                    "it is not an RDMA device name (letters, digits, `_`, `-`, `.`; at most 63)",
                    "write the name `ibdev2netdev` shows (e.g. `rocep1s0f1`), or leave it out to resolve it on the node",
                ));
            }
        }
    }
    Ok(())
}

/// One GPU per Spark: tensor × pipeline parallel size, where given, equals the node count
/// ("tensor parallel size (2) exceeds available GPUs (1)" from vLLM otherwise). The flags are read
/// as vLLM reads them ([`ServeArgs`], which also refuses malformed sizes, lengths, utilisations).
fn parallelism(c: &Cluster) -> Result<()> {
    let a = ServeArgs::parse(&c.serve.args, &c.source, "serve.args")?;
    let (tp, pp) = (a.has("--tensor-parallel-size").then_some(a.tp), a.has("--pipeline-parallel-size").then_some(a.pp));
    if tp.is_none() && pp.is_none() {
        return Ok(());
    }
    let product = a.tp * a.pp;
    if product != c.nodes.len() as u64 {
        let parallel = match (tp, pp) {
            (Some(t), Some(p)) => format!("--tensor-parallel-size {t} × --pipeline-parallel-size {p}"),
            (Some(t), None) => format!("--tensor-parallel-size {t}"),
            (None, Some(p)) => format!("--pipeline-parallel-size {p}"),
            (None, None) => unreachable!("handled above"),
        };
        return Err(Error::ParallelismMismatch { file: c.source.clone(), parallel, product, nodes: c.nodes.len() });
    }
    Ok(())
}
