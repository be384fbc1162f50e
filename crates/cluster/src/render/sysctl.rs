//! The per-interface sysctls as a `sysctl.d` file. systemd's udev rule re-applies
//! `net.*.conf.<if>.*` entries when the interface appears, so a late NIC still gets them.

use crate::plan::NodePlan;
use std::fmt::Write;

pub(super) fn render(header: &[String], plan: &NodePlan) -> String {
    let mut out = String::new();
    for line in header {
        let _ = writeln!(out, "# {line}");
    }
    out.push_str("# Apply now with `sysctl --system`.\n");
    for (key, value) in &plan.sysctl {
        let _ = writeln!(out, "{key} = {value}");
    }
    out
}
