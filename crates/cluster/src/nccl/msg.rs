//! The message part of an NCCL line (after `NCCL INFO `): what it says about the transport,
//! devices, GPU Direct RDMA, ranks and settings. Pure functions over `&str`.

use super::Net;

/// The network a message shows, and whether the message is authoritative (`Using network X`, a
/// channel `via NET/X`) rather than a plugin announcing itself. The name is NCCL's own
/// (`IB`, `IBext_v10`, `Socket`).
pub(crate) fn transport_of(msg: &str) -> Option<(Net, &str, bool)> {
    if let Some(name) = msg.strip_prefix("Using network ") {
        let name = name.split_whitespace().next()?;
        return Some((Net::from_name(name), name, true));
    }
    // NCCL 2.28: `Assigned NET plugin Socket to comm`.
    if let Some(name) = msg.strip_prefix("Assigned NET plugin ").and_then(|r| r.strip_suffix(" to comm")) {
        return Some((Net::from_name(name), name, true));
    }
    if let Some(at) = msg.find(" via NET/") {
        let name = msg[at + " via NET/".len()..].split(['/', ' ']).next()?;
        return Some((Net::from_name(name), name, true));
    }
    let (name, what) = net_message(msg)?;
    if name == "Plugin" || what.starts_with("No device found") {
        return None;
    }
    // `NET/IB : Using [RO]; OOB eth0:…` (NCCL 2.28 with no RDMA device) lists no device: IB is
    // not usable, so it is no transport; a device list starts with `[0]`.
    let using = what.strip_prefix("Using ").is_some_and(|rest| !devices(rest).is_empty());
    let announces = using || what.starts_with("GPU Direct RDMA") || what.starts_with("Made virtual device");
    announces.then(|| (Net::from_name(name), name, false))
}

/// `NET/IB : rest` (also `NET/IB: rest`) → (`IB`, `rest`).
pub(crate) fn net_message(msg: &str) -> Option<(&str, &str)> {
    let rest = msg.strip_prefix("NET/")?;
    let (name, what) = rest.split_once(':')?;
    Some((name.trim(), what.trim_start()))
}

/// `[0]rocep1s0f1:1/RoCE [1]roceP2p1s0f1:1/RoCE [RO]; OOB …` → `rocep1s0f1:1`, `roceP2p1s0f1:1`;
/// `[0]ens3:172.31.12.210<0>` → `ens3`.
pub(crate) fn devices(rest: &str) -> Vec<String> {
    let list = rest.split(';').next().unwrap_or("");
    list.split_whitespace()
        .filter_map(|tok| {
            let (idx, dev) = tok.strip_prefix('[')?.split_once(']')?;
            idx.parse::<u32>().ok()?;
            let dev = dev.split('/').next()?;
            // A socket device is `ifname:ip<port>`: keep the interface name.
            Some(if dev.contains('<') { dev.split(':').next()?.to_owned() } else { dev.to_owned() })
        })
        .collect()
}

/// `Made virtual device [1] name=roceP2p1s0f1 speed=200000 ndevs=1` → `roceP2p1s0f1`.
pub(crate) fn virtual_device(what: &str) -> Option<&str> {
    let rest = what.strip_prefix("Made virtual device")?;
    rest.split_whitespace().find_map(|t| t.strip_prefix("name="))
}

/// `GPU Direct RDMA (DMABUF) enabled for HCA 0 'rocep1s0f1` → (`rocep1s0f1`, `enabled (DMABUF)`).
/// NCCL omits the closing quote in some versions.
pub(crate) fn gdr(what: &str) -> Option<(String, String)> {
    let rest = what.strip_prefix("GPU Direct RDMA")?;
    let lower = rest.to_ascii_lowercase();
    let state = if lower.contains("disabled") {
        "disabled"
    } else if lower.contains("enabled") {
        "enabled"
    } else {
        return None;
    };
    let state = if rest.contains("(DMABUF)") { format!("{state} (DMABUF)") } else { state.to_owned() };
    let dev = rest.split_once('\'').map(|(_, d)| d.trim_end_matches('\'').to_owned()).unwrap_or_default();
    Some((dev, state))
}

/// `NAME set by environment to VALUE` (NCCL's echo of its variables, including those read from
/// `nccl.conf`) → (`NAME`, `VALUE`, true); `NCCL_X set to VALUE` → (…, false).
pub(crate) fn setting(msg: &str) -> Option<(&str, &str, bool)> {
    if let Some((name, value)) = msg.split_once(" set by environment to ") {
        return Some((name.trim(), value.trim().trim_end_matches('.'), true));
    }
    let (name, value) = msg.split_once(" set to ")?;
    let name = name.trim();
    (name.starts_with("NCCL_") && !name.contains(' ')).then(|| (name, value.trim().trim_end_matches('.'), false))
}

/// `… rank 0 nranks 2 …` (communicator init lines) → (0, 2).
pub(crate) fn rank(msg: &str) -> Option<(u32, u32)> {
    let at = msg.find(" rank ")?;
    let mut t = msg[at + " rank ".len()..].split_whitespace();
    let rank = t.next()?.parse().ok()?;
    (t.next()? == "nranks").then_some(())?;
    Some((rank, t.next()?.parse().ok()?))
}

/// The RoCE GID index a message reports: `GID index 3`, or the `GID 3 (` of NCCL's QP lines.
pub(crate) fn gid_index(msg: &str) -> Option<&str> {
    let at = msg.find("GID ")?;
    let rest = &msg[at + "GID ".len()..];
    let rest = rest.strip_prefix("index ").unwrap_or(rest);
    let n = rest.split([' ', ',', ')']).next()?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// An error return traced by NCCL: `transport/net.cc:1302 -> 6` (code non-zero).
pub(crate) fn is_error_trace(msg: &str) -> bool {
    match msg.split_once(" -> ") {
        Some((loc, code)) => loc.contains(':') && !loc.contains(' ') && code.split_whitespace().next().is_some_and(|c| c.parse::<u32>().is_ok_and(|c| c != 0)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(gdr("GPU Direct RDMA (DMABUF) enabled for HCA 0 'rocep1s0f1"), Some(("rocep1s0f1".into(), "enabled (DMABUF)".into())));
        assert_eq!(gdr("GPU Direct RDMA Disabled for HCA 1 'virbr0'"), Some(("virbr0".into(), "disabled".into())));
        assert_eq!(setting("NCCL_IB_GID_INDEX set by environment to 3."), Some(("NCCL_IB_GID_INDEX", "3", true)));
        assert_eq!(setting("NCCL_IB_HCA set to roce"), Some(("NCCL_IB_HCA", "roce", false)));
        assert_eq!(setting("Channel 00 set to x"), None);
        assert_eq!(rank("comm 0x5581 rank 1 nranks 2 cudaDev 0 nvmlDev 0 busId 1000 commId 0x1 - Init COMPLETE"), Some((1, 2)));
        assert_eq!(gid_index("NET/IB: Dev 0 Port 1 qpn 1234 mtu 5 GID 3 (0/A8C0FFFF0000)"), Some("3"));
        assert_eq!(gid_index("NCCL_IB_GID_INDEX set by environment to 3."), None);
        assert!(is_error_trace("transport/net.cc:1302 -> 6"));
        assert!(is_error_trace("proxy.cc:878 -> 6 [Progress Thread]"));
        assert!(!is_error_trace("Channel 00 : 0 -> 1"));
        assert_eq!(virtual_device("Made virtual device [1] name=roceP2p1s0f1 speed=200000 ndevs=1"), Some("roceP2p1s0f1"));
    }
}
