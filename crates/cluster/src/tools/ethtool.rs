//! `ethtool IF`: negotiated speed, lanes, duplex, link and the supported/advertised link modes.
//! One text may hold several outputs (one per interface, or `ethtool IF | grep Speed` lines
//! pasted one after another): a block starts at `Settings for IF:` or at a prompt running
//! `ethtool IF`.

use super::key_value;

/// What `ethtool` says about one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Link {
    /// From `Settings for IF:` or the command line; `None` when neither was pasted.
    pub(crate) interface: Option<String>,
    /// `Speed: 200000Mb/s` → 200000; `None` when absent or `Unknown!` (link down).
    pub(crate) speed_mbps: Option<u64>,
    pub(crate) lanes: Option<u32>,
    pub(crate) duplex: Option<String>,
    pub(crate) link_detected: Option<bool>,
    pub(crate) supported_modes: Vec<String>,
    pub(crate) advertised_modes: Vec<String>,
    /// Lines that could not be used, e.g. `Cannot get wake-on-lan settings: Operation not permitted`.
    pub(crate) notes: Vec<String>,
    /// A `Settings for` block that ended before `Link detected` (ethtool's last line).
    pub(crate) truncated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
/// What `ethtool` printed: one block per interface.
pub struct Ethtool {
    pub(crate) links: Vec<Link>,
}

impl Ethtool {
    /// The block of `interface`; the last one when the paste holds several (the latest state).
    #[cfg(test)]
    pub(crate) fn link(&self, interface: &str) -> Option<&Link> {
        self.links.iter().rev().find(|l| l.interface.as_deref() == Some(interface))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Modes {
    None,
    Supported,
    Advertised,
}

/// Reads `ethtool` output (several interfaces' blocks may be pasted together).
pub fn parse(text: &str) -> Ethtool {
    let mut links: Vec<Link> = Vec::new();
    // Whether the current block has seen its `Settings for` header.
    let mut has_header = false;
    let mut modes = Modes::None;
    let mut seen_modes = (false, false);
    for raw in text.lines() {
        let line = raw.trim_end();
        let t = line.trim_start();
        if t.is_empty() {
            continue;
        }
        let indented = line.len() != t.len();
        if !indented {
            modes = Modes::None;
            if let Some(name) = t.strip_prefix("Settings for ").and_then(|s| s.strip_suffix(':')) {
                let reuse = !has_header && links.last().is_some_and(|l| l.interface.as_deref() == Some(name) && l.speed_mbps.is_none());
                if !reuse {
                    finish(links.last_mut(), has_header);
                    links.push(Link { interface: Some(name.to_owned()), ..Link::default() });
                    seen_modes = (false, false);
                }
                has_header = true;
                continue;
            }
            if t.starts_with('#') {
                continue;
            }
            if let Some(name) = command_interface(t) {
                finish(links.last_mut(), has_header);
                links.push(Link { interface: Some(name), ..Link::default() });
                has_header = false;
                seen_modes = (false, false);
                continue;
            }
            // Not indented and not a header: a warning ethtool printed (or a stray line).
            if let Some(l) = links.last_mut() {
                l.notes.push(t.to_owned());
            }
            continue;
        }
        if links.is_empty() {
            links.push(Link::default());
        }
        let link = links.last_mut().expect("pushed above");
        let Some((key, value)) = key_value(t) else {
            // Continuation of a modes list.
            match modes {
                Modes::Supported => push_modes(&mut link.supported_modes, t),
                Modes::Advertised => push_modes(&mut link.advertised_modes, t),
                Modes::None => link.notes.push(t.to_owned()),
            }
            continue;
        };
        modes = Modes::None;
        match key {
            "Speed" => link.speed_mbps = value.strip_suffix("Mb/s").and_then(|v| v.trim().parse().ok()),
            "Lanes" => link.lanes = value.parse().ok(),
            "Duplex" => link.duplex = Some(value.to_owned()),
            "Link detected" => link.link_detected = Some(value == "yes"),
            "Supported link modes" | "Advertised link modes" => {
                let supported = key.starts_with('S');
                let seen = if supported { &mut seen_modes.0 } else { &mut seen_modes.1 };
                if *seen {
                    // A second block (pastes repeat them) adds modes, never replaces the first.
                    link.notes.push(format!("`{key}` appears twice; modes merged"));
                }
                *seen = true;
                modes = if supported { Modes::Supported } else { Modes::Advertised };
                let list = if supported { &mut link.supported_modes } else { &mut link.advertised_modes };
                push_modes(list, value);
            }
            _ => {}
        }
    }
    finish(links.last_mut(), has_header);
    Ethtool { links }
}

fn push_modes(list: &mut Vec<String>, value: &str) {
    if value == "Not reported" {
        return;
    }
    for m in value.split_whitespace() {
        if !list.iter().any(|x| x == m) {
            list.push(m.to_owned());
        }
    }
}

fn finish(link: Option<&mut Link>, has_header: bool) {
    if let Some(l) = link {
        l.truncated = has_header && l.link_detected.is_none();
    }
}

/// The interface of a pasted command line running `ethtool IF` (flags before it skipped).
fn command_interface(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    words.by_ref().find(|w| *w == "ethtool" || w.ends_with("/ethtool"))?;
    let name = words.find(|w| !w.starts_with('-'))?;
    let name = name.trim_end_matches(['|', ';']);
    (!name.is_empty()).then(|| name.to_owned())
}
