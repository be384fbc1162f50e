//! `down`: stop and disable the unit on every node, so nothing restarts the group (not
//! `Restart=on-failure`, not a reboot) until the next `up`.

use crate::node::{self, Target, SHORT};
use crate::{Report, Ssh};
use cluster::ops::UNIT;
use cluster::Node;

/// Stops the group on `nodes`, a line per node as it stops.
pub fn down(nodes: &[Node], ssh: &Ssh, report: &dyn Report) -> anyhow::Result<()> {
    node::all(node::each(nodes, |n| {
        let t = Target::connect(ssh, &n.name)?;
        t.must(&format!("`systemctl stop {UNIT}`"), cluster::ops::node::STOP, &[UNIT.to_owned()], SHORT)?;
        report.line(&format!("{}: stopped", n.name));
        Ok(())
    }))?;
    Ok(())
}
