//! A systemd service that runs the node's container and restarts it as a group member: when one
//! node dies the entrypoint exits non-zero on every node and `Restart=on-failure` brings the
//! group back together (the supervision contract in docs/entrypoint.md).

use crate::model::{defaults, Cluster, Node};
use crate::shell::systemd_quote;
use std::fmt::Write;

pub(super) fn render(header: &[String], c: &Cluster, node: &Node) -> String {
    let name = defaults::CONTAINER_NAME;
    let exec = std::iter::once("docker".to_owned()).chain(super::docker_args(c)).map(|a| systemd_quote(&a)).collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    for line in header {
        let _ = writeln!(out, "# {line}");
    }
    let _ = write!(
        out,
        "[Unit]
Description=sparkctl {role} `{node}` of cluster `{cluster}` (vLLM over RoCE)
Documentation=man:docker-run(1)
Requires=docker.service
After=docker.service network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStartPre=-docker rm --force {name}
ExecStart={exec}
ExecStop=docker stop --time 60 {name}
Restart=on-failure
RestartSec=10
TimeoutStopSec=90
LimitMEMLOCK=infinity

[Install]
WantedBy=multi-user.target
",
        role = node.role.as_str(),
        node = node.name,
        cluster = c.name,
    );
    out
}
