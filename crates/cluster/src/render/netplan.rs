//! The rails as netplan YAML, like NVIDIA's stock `40-cx7.yaml` but with static addresses, the
//! jumbo MTU, no link-local addressing and no router advertisements (IPv6 off keeps RoCE GID
//! indexes stable). Written by hand: the structure is fixed and every scalar is quoted.

use crate::plan::NodePlan;
use std::fmt::Write;

pub(super) fn render(header: &[String], plan: &NodePlan) -> String {
    let mut out = String::new();
    for line in header {
        let _ = writeln!(out, "# {line}");
    }
    out.push_str("# netplan wants this file private: chmod 600, then `netplan apply`.\n");
    out.push_str("network:\n  version: 2\n  renderer: networkd\n  ethernets:\n");
    for rail in &plan.rails {
        let net = &plan.networks[&crate::plan::network_name(&rail.interface)];
        let _ = writeln!(out, "    {}:", yaml_str(&rail.interface));
        out.push_str("      dhcp4: false\n      dhcp6: false\n");
        out.push_str("      addresses:\n");
        for a in &net.address {
            let _ = writeln!(out, "        - {}", yaml_str(a));
        }
        let _ = writeln!(out, "      mtu: {}", net.link_config["MTUBytes"]);
        let link_local = if net.network_config.link_local_addressing == "no" { "[]" } else { "[ipv6]" };
        let _ = writeln!(out, "      link-local: {link_local}");
        let _ = writeln!(out, "      accept-ra: {}", net.network_config.ipv6_accept_ra);
    }
    out
}

/// A double-quoted YAML scalar (interface names and addresses never need escapes, but a quoted
/// scalar can never be misread as a number or a boolean).
fn yaml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
