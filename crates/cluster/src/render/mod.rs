//! Renderers for nodes that are not NixOS (DGX OS, Ubuntu): each turns a node's [`NodePlan`](crate::plan::NodePlan)
//! into one file's text. Pure and deterministic: same `cluster.toml`, same bytes.

pub(crate) mod docker;
mod envfile;
mod netplan;
mod sysctl;
mod systemd;

use crate::model::{Cluster, Node};
use crate::plan::node_plan;

pub use docker::docker_args;

/// What `sparkctl render` can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `/etc/netplan/40-cx7.yaml`: the rails with addresses, MTU, no link-local, no RA.
    Netplan,
    /// `/etc/sysctl.d/90-spark-cx7.conf`: per-interface IPv6 off and ARP flux settings.
    Sysctl,
    /// The container's env file (`container.env_file`).
    Env,
    /// The full `docker run` command line.
    DockerRun,
    /// A systemd service running the container (`spark-cluster.service`).
    Systemd,
}

impl Format {
    /// Every format with its name on the command line.
    pub const ALL: &'static [(&'static str, Format)] =
        &[("netplan", Format::Netplan), ("sysctl", Format::Sysctl), ("env", Format::Env), ("docker-run", Format::DockerRun), ("systemd", Format::Systemd)];

    /// Where the rendered file goes on a DGX OS node (`None`: a command, not a file).
    pub(crate) fn install_path(self, c: &Cluster) -> Option<String> {
        match self {
            Format::Netplan => Some("/etc/netplan/40-cx7.yaml".into()),
            Format::Sysctl => Some("/etc/sysctl.d/90-spark-cx7.conf".into()),
            Format::Env => Some(c.container.env_file.display().to_string()),
            Format::DockerRun => None,
            Format::Systemd => Some(format!("/etc/systemd/system/{}.service", crate::model::defaults::CONTAINER_NAME)),
        }
    }
}

/// The file (or command) of `format` for `node` of cluster `c`.
pub fn render(c: &Cluster, node: &Node, format: Format) -> String {
    let plan = node_plan(c, node);
    let header = header(c, node, format);
    match format {
        Format::Netplan => netplan::render(&header, &plan),
        Format::Sysctl => sysctl::render(&header, &plan),
        Format::Env => envfile::render(&header, &plan),
        Format::DockerRun => docker::render(&header, c),
        Format::Systemd => systemd::render(&header, c, node),
    }
}

/// The comment every rendered file starts with (without the comment marker): which node, which
/// cluster, where it goes. No time stamp, no absolute path of the source: output is deterministic.
fn header(c: &Cluster, node: &Node, format: Format) -> Vec<String> {
    let source = c.source.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    vec![
        format!("Rendered by `sparkctl render` from `{source}` for node `{}` ({}) of cluster `{}`.", node.name, node.role.as_str(), c.name),
        match format.install_path(c) {
            Some(path) => format!("Do not edit: change cluster.toml and render again. Install as `{path}`."),
            None => "Run it on the node; `sparkctl render systemd` wraps the same command in a service.".to_owned(),
        },
    ]
}
