//! `ibv_devinfo` and `ibv_devinfo -v`: per HCA and port the state, MTUs, link layer and GIDs.
//! Tabs or spaces, `-l` device lists, `| grep -i gid` fragments and elided (`.`) pastes all read.

use super::{key_value, leading_number};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) enum RoceVersion {
    /// `IB/RoCE v1` or `RoCE v1`.
    V1,
    V2,
}

/// One `GID[  3]:  ::ffff:10.0.0.1, RoCE v2` line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Gid {
    pub(crate) index: u32,
    pub(crate) gid: String,
    /// The address of an IPv4-mapped GID, in either spelling.
    pub(crate) ipv4: Option<Ipv4Addr>,
    pub(crate) roce: Option<RoceVersion>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Port {
    /// `None` for GIDs that appear before any `port:` line (elided or grepped pastes).
    pub(crate) number: Option<u8>,
    /// `PORT_ACTIVE (4)` → `PORT_ACTIVE`.
    pub(crate) state: Option<String>,
    pub(crate) max_mtu: Option<u32>,
    pub(crate) active_mtu: Option<u32>,
    pub(crate) link_layer: Option<String>,
    pub(crate) active_width: Option<String>,
    pub(crate) active_speed: Option<String>,
    pub(crate) phys_state: Option<String>,
    pub(crate) gids: Vec<Gid>,
}

impl Port {
    /// The RoCE v2 GID carrying `ip`, if any: the index NCCL and perftest (`-x`) need.
    #[cfg(test)]
    pub(crate) fn roce_v2_gid(&self, ip: Ipv4Addr) -> Option<u32> {
        self.gids.iter().find(|g| g.roce == Some(RoceVersion::V2) && g.ipv4 == Some(ip)).map(|g| g.index)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Hca {
    /// `hca_id`; empty for GID lines pasted without their device.
    pub(crate) name: String,
    pub(crate) transport: Option<String>,
    pub(crate) fw_ver: Option<String>,
    pub(crate) node_guid: Option<String>,
    pub(crate) sys_image_guid: Option<String>,
    pub(crate) vendor_id: Option<String>,
    pub(crate) vendor_part_id: Option<u32>,
    pub(crate) board_id: Option<String>,
    pub(crate) phys_port_cnt: Option<u8>,
    pub(crate) ports: Vec<Port>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
/// What `ibv_devinfo -v` printed: one entry per HCA.
pub struct DevInfo {
    pub(crate) hcas: Vec<Hca>,
    /// The names of an `N HCAs found:` list (`-l`).
    pub(crate) listed: Vec<String>,
    pub(crate) notes: Vec<String>,
    /// An HCA announced more ports than were printed, or a port stops before its link layer.
    pub(crate) truncated: bool,
}

impl DevInfo {
    #[cfg(test)]
    pub(crate) fn hca(&self, name: &str) -> Option<&Hca> {
        self.hcas.iter().find(|h| h.name == name)
    }
}

/// Reads `ibv_devinfo` output.
pub fn parse(text: &str) -> DevInfo {
    let mut out = DevInfo::default();
    let mut in_list = false;
    for raw in text.lines() {
        let t = raw.trim();
        if t.is_empty() {
            in_list = false;
            continue;
        }
        // `grep -i gid` output pasted as shell comments keeps its `# ` prefix.
        let g = t.trim_start_matches('#').trim_start();
        if let Some(rest) = g.strip_prefix("GID[") {
            match parse_gid(rest) {
                Some(gid) => current_port(&mut out).gids.push(gid),
                None => out.notes.push(format!("unreadable GID line `{t}`")),
            }
            continue;
        }
        if t.starts_with('#') {
            continue;
        }
        if t.ends_with("HCAs found:") || t.ends_with("HCA found:") {
            in_list = true;
            continue;
        }
        if in_list && !t.contains(':') && !t.contains(' ') {
            out.listed.push(t.to_owned());
            continue;
        }
        let Some((key, value)) = key_value(t) else {
            // Capability flag lists have no key; an elided paste has `.` lines.
            let note = "elided lines (`.`) in the paste";
            if t.chars().all(|c| c == '.') && !out.notes.iter().any(|n| n == note) {
                out.notes.push(note.to_owned());
            }
            continue;
        };
        match key {
            "hca_id" => out.hcas.push(Hca { name: value.to_owned(), ..Hca::default() }),
            "port" => {
                let number = value.parse().ok();
                current_hca(&mut out).ports.push(Port { number, ..Port::default() });
            }
            "transport" => current_hca(&mut out).transport = Some(value.to_owned()),
            "fw_ver" => current_hca(&mut out).fw_ver = Some(value.to_owned()),
            "node_guid" => current_hca(&mut out).node_guid = Some(value.to_owned()),
            "sys_image_guid" => current_hca(&mut out).sys_image_guid = Some(value.to_owned()),
            "vendor_id" => current_hca(&mut out).vendor_id = Some(value.to_owned()),
            "vendor_part_id" => current_hca(&mut out).vendor_part_id = value.parse().ok(),
            "board_id" => current_hca(&mut out).board_id = Some(value.to_owned()),
            "phys_port_cnt" => current_hca(&mut out).phys_port_cnt = value.parse().ok(),
            "state" => current_port(&mut out).state = value.split_whitespace().next().map(str::to_owned),
            "max_mtu" => current_port(&mut out).max_mtu = leading_number(value),
            "active_mtu" => current_port(&mut out).active_mtu = leading_number(value),
            "link_layer" => current_port(&mut out).link_layer = Some(value.to_owned()),
            "active_width" => current_port(&mut out).active_width = Some(value.to_owned()),
            "active_speed" => current_port(&mut out).active_speed = Some(value.to_owned()),
            "phys_state" => current_port(&mut out).phys_state = value.split_whitespace().next().map(str::to_owned),
            _ => {}
        }
    }
    for h in &out.hcas {
        let numbered = h.ports.iter().filter(|p| p.number.is_some()).count();
        let short = h.phys_port_cnt.is_some_and(|n| numbered < usize::from(n));
        let cut = h.ports.iter().any(|p| p.number.is_some() && p.link_layer.is_none());
        if short || cut {
            out.truncated = true;
            out.notes.push(format!("`{}`: output ends before all its ports were printed", h.name));
        }
    }
    out
}

fn current_hca(out: &mut DevInfo) -> &mut Hca {
    if out.hcas.is_empty() {
        out.notes.push("device lines before any `hca_id`".to_owned());
        out.hcas.push(Hca::default());
    }
    out.hcas.last_mut().expect("pushed above")
}

fn current_port(out: &mut DevInfo) -> &mut Port {
    let hca = current_hca(out);
    if hca.ports.is_empty() {
        hca.ports.push(Port::default());
    }
    hca.ports.last_mut().expect("pushed above")
}

/// `  3]:  ::ffff:10.0.0.1, RoCE v2` (after `GID[`).
fn parse_gid(rest: &str) -> Option<Gid> {
    let (index, value) = rest.split_once("]:")?;
    let index = index.trim().parse().ok()?;
    let (gid, kind) = match value.split_once(',') {
        Some((g, k)) => (g.trim(), Some(k.trim())),
        None => (value.trim(), None),
    };
    if gid.is_empty() {
        return None;
    }
    let roce = kind.and_then(|k| match k {
        "RoCE v2" => Some(RoceVersion::V2),
        "RoCE v1" | "IB/RoCE v1" => Some(RoceVersion::V1),
        _ => None,
    });
    Some(Gid { index, gid: gid.to_owned(), ipv4: crate::sysfs::parse_gid_ipv4(gid), roce })
}
