//! `status`: per node, the unit, the entrypoint's state and detail, the image, the NCCL
//! transport in use, liveness failures, restarts used of the budget, and the last error.

use crate::node::{self, Target, SHORT};
use crate::Ssh;
use cluster::model::defaults::CONTAINER_NAME;
use cluster::ops::node::NodeStatus;
use cluster::ops::{RESTARTS_FILE, STATUS_FILE, UNIT};
use cluster::{Cluster, Node};

/// One node's status as the control machine sees it.
pub fn node_status(c: &Cluster, t: &Target) -> anyhow::Result<NodeStatus> {
    let args = [UNIT.to_owned(), CONTAINER_NAME.to_owned(), STATUS_FILE.to_owned(), c.container.image.clone(), RESTARTS_FILE.to_owned()];
    let out = t.script(cluster::ops::node::STATUS, &args, SHORT)?;
    Ok(cluster::ops::node::parse_status(&out.stdout))
}

/// Every node's status, in node order; a node that cannot be asked has its error (unreachable,
/// auth refused, no root).
pub fn status(c: &Cluster, nodes: &[Node], ssh: &Ssh) -> Vec<anyhow::Result<NodeStatus>> {
    node::each(nodes, |n| node_status(c, &Target::connect(ssh, &n.name)?))
}
