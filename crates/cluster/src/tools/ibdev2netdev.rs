//! `ibdev2netdev` (and `ibdev2netdev -v`): which RDMA device and port sit behind which netdev.
//!
//! Plain: `rocep1s0f1 port 1 ==> enp1s0f1np1 (Up)`.
//! Verbose: `0000:01:00.1 rocep1s0f1 (MT4129 - NVD0000000087) NVIDIA ConnectX-7 … fw 28.45.4028
//! port 1 (ACTIVE) ==> enp1s0f1np1 (Up)`.
//! The state may be glued to whatever followed in a paste (`(Up)# next command`, `(Up)标注`).

/// One line of `ibdev2netdev`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct IbdevLink {
    pub(crate) rdma_device: String,
    pub(crate) port: u8,
    pub(crate) netdev: String,
    /// The netdev's link state, `(Up)`.
    pub(crate) up: bool,
    /// `-v` only: the PCI function, e.g. `0000:01:00.1`.
    pub(crate) pci: Option<String>,
    /// `-v` only: the RDMA port state, e.g. `ACTIVE`.
    pub(crate) port_state: Option<String>,
    /// `-v` only: the firmware version.
    pub(crate) fw: Option<String>,
}

/// The links found and the lines that looked like links but could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Ibdev2netdev {
    pub(crate) links: Vec<IbdevLink>,
    pub(crate) notes: Vec<String>,
}

/// Parses `ibdev2netdev` output, skipping prompts, comments and trailing annotations.
pub fn parse(text: &str) -> Ibdev2netdev {
    let mut out = Ibdev2netdev::default();
    for line in text.lines() {
        let Some((left, right)) = line.split_once("==>") else { continue };
        match parse_line(left, right) {
            Some(link) => out.links.push(link),
            None => out.notes.push(format!("unreadable line `{}`", line.trim())),
        }
    }
    out
}

fn parse_line(left: &str, right: &str) -> Option<IbdevLink> {
    let l: Vec<&str> = left.split_whitespace().collect();
    // The last `port N` on the left: in `-v` lines the description before it is free text.
    let at = l.iter().rposition(|t| *t == "port")?;
    let port = l.get(at + 1)?.parse().ok()?;
    let verbose = l.first().is_some_and(|t| is_pci(t));
    let (pci, rdma_device) = if verbose { (Some(l[0].to_owned()), (*l.get(1)?).to_owned()) } else { (None, (*l.first()?).to_owned()) };
    if at == 0 || (verbose && at < 2) {
        return None;
    }
    let port_state = l.get(at + 2).and_then(|s| s.strip_prefix('(')).and_then(|s| s.strip_suffix(')')).map(str::to_owned);
    let fw = l.iter().position(|t| *t == "fw").and_then(|i| l.get(i + 1)).map(|s| (*s).to_owned());
    let mut r = right.split_whitespace();
    let netdev = r.next()?.to_owned();
    let state = r.next().unwrap_or("");
    let up = state.starts_with("(Up)");
    if !up && !state.starts_with("(Down)") {
        return None;
    }
    Some(IbdevLink { rdma_device, port, netdev, up, pci, port_state: port_state.filter(|_| verbose), fw: fw.filter(|_| verbose) })
}

/// `0000:01:00.1`: domain, bus, device and function.
fn is_pci(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12 && b[4] == b':' && b[7] == b':' && b[10] == b'.' && s.chars().filter(|c| c.is_ascii_hexdigit()).count() == 9
}
