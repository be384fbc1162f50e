//! One line of a log → the NCCL line in it, whatever launcher wrapped it.
//!
//! Launchers put their own text before NCCL's `host:pid:tid [dev] NCCL INFO msg`: Ray's
//! `(Actor pid=.., ip=..)` (stacked, often in ANSI colour), `srun -l`'s `0: `, docker compose's
//! `name  | `, mpirun `--tag-output`'s `[1,0]<stdout>:` (glued to the host), torchrun's
//! `[default0]:` (glued too), a `[155] ` rank, ISO timestamps (`docker logs -t`, log shippers).
//! Rather than knowing every prefix, the header is found from the right: it is the last
//! `host:pid:tid` token before `NCCL INFO`/`NCCL WARN`, after at most a `[dev]` and a
//! `file.cc:NN` token. Whatever stands before the header is the prefix; a rank is read from its
//! last element when the launcher put one there.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Info,
    Warn,
}

/// An NCCL line taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NcclLine<'a> {
    pub(crate) host: &'a str,
    pub(crate) pid: u32,
    /// A rank the launcher's prefix carries (`[155]`, `0: `, `[1,0]<stdout>:`, `[default0]:`).
    pub(crate) launcher_rank: Option<u32>,
    pub(crate) level: Level,
    pub(crate) msg: &'a str,
}

/// What a segment of a log line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    Nccl(NcclLine<'a>),
    /// `NCCL version 2.19.3+cuda12.3` with no header (older NCCL prints it on rank 0's stdout).
    Version(&'a str),
    Other,
}

/// Removes ANSI escape sequences (CSI `ESC [ … final`, and two-byte `ESC x`). Borrowed when
/// there are none, which is the common case.
pub(crate) fn strip_ansi(s: &str) -> Cow<'_, str> {
    if !s.contains('\x1b') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        // CSI: parameters and intermediates, up to the final byte 0x40..=0x7e; any other
        // escape is two bytes.
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('\x40'..='\x7e').contains(&c) {
                    break;
                }
            }
        }
    }
    Cow::Owned(out)
}

/// Parses one segment: a line, or the part of a line between carriage returns (progress bars
/// redraw with `\r`; the caller splits on it). ANSI sequences must be gone already.
pub(crate) fn parse(seg: &str) -> Parsed<'_> {
    let Some((at, level, tag_len)) = find_tag(seg) else {
        return match seg.find("NCCL version ") {
            Some(i) => seg[i + "NCCL version ".len()..].split_whitespace().next().map_or(Parsed::Other, Parsed::Version),
            None => Parsed::Other,
        };
    };
    let before = &seg[..at];
    let msg = seg[at + tag_len..].trim();
    // Right to left: the header, after at most `[dev]` and `file.cc:NN`.
    let mut end = before.len();
    for _ in 0..3 {
        let trimmed = before[..end].trim_end();
        let start = trimmed.char_indices().rev().find(|(_, c)| c.is_whitespace()).map_or(0, |(i, c)| i + c.len_utf8());
        let tok = &trimmed[start..];
        if tok.is_empty() {
            return Parsed::Other;
        }
        if let Some((glued, host, pid)) = header(tok) {
            let prefix = &before[..start + glued];
            return Parsed::Nccl(NcclLine { host, pid, launcher_rank: rank_of_prefix(prefix), level, msg });
        }
        end = start;
    }
    Parsed::Other
}

/// ` NCCL INFO ` or ` NCCL WARN ` (also at the end of the line): (position, level, length).
fn find_tag(seg: &str) -> Option<(usize, Level, usize)> {
    let mut from = 0;
    while let Some(i) = seg[from..].find(" NCCL ") {
        let at = from + i;
        let rest = &seg[at + " NCCL ".len()..];
        for (word, level) in [("INFO", Level::Info), ("WARN", Level::Warn)] {
            if let Some(after) = rest.strip_prefix(word) {
                if after.is_empty() || after.starts_with(' ') {
                    return Some((at, level, " NCCL ".len() + word.len()));
                }
            }
        }
        from = at + 1;
    }
    None
}

/// `host:pid:tid` (possibly glued behind a launcher prefix ending in `:`) → (length of the glued
/// prefix, host, pid).
fn header(tok: &str) -> Option<(usize, &str, u32)> {
    let mut parts = tok.rsplitn(3, ':');
    let tid = parts.next()?;
    let pid = parts.next()?;
    let rest = parts.next()?;
    if tid.is_empty() || !tid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pid: u32 = pid.parse().ok()?;
    // A host name is letters, digits, `-`, `.`, `_`: what stands before is a glued prefix
    // (`[1,0]<stdout>:`, `[default0]:`, a progress bar redrawn without a newline).
    let host_at = rest.char_indices().rev().find(|&(_, c)| !(c.is_alphanumeric() || matches!(c, '-' | '.' | '_'))).map_or(0, |(i, c)| i + c.len_utf8());
    let host = &rest[host_at..];
    if host.is_empty() {
        return None;
    }
    Some((host_at, host, pid))
}

/// The rank in the last element of a launcher prefix: `[155]`, `3:` (srun -l), `[1,0]<stdout>:`
/// (mpirun), `[default0]:` (torchrun). Ray, compose and timestamp prefixes carry none.
fn rank_of_prefix(prefix: &str) -> Option<u32> {
    let t = prefix.trim_end();
    let colon = t.ends_with(':');
    let p = t.strip_suffix(':').unwrap_or(t).trim_end();
    let p = p.strip_suffix("<stdout>").or_else(|| p.strip_suffix("<stderr>")).unwrap_or(p);
    if let Some(inner) = p.strip_suffix(']') {
        let inner = &inner[inner.rfind('[')? + 1..];
        // `[1,0]`: job, rank. `[default0]`: role name, rank.
        let inner = inner.rsplit(',').next()?;
        let digits = inner.trim_start_matches(|c: char| c.is_ascii_alphabetic() || c == '_');
        return digits.parse().ok();
    }
    // `srun -l`: the task number and a colon.
    if colon {
        return p.rsplit(char::is_whitespace).next()?.parse().ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nccl(seg: &str) -> (String, u32, Option<u32>, String) {
        match parse(&strip_ansi(seg)) {
            Parsed::Nccl(l) => (l.host.to_owned(), l.pid, l.launcher_rank, l.msg.to_owned()),
            other => panic!("{seg:?} → {other:?}"),
        }
    }

    #[test]
    fn headers_behind_every_prefix() {
        let cases: &[(&str, &str, u32, Option<u32>)] = &[
            ("h:1:2 [0] NCCL INFO x", "h", 1, None),
            ("[155] h:1:2 [0] NCCL INFO x", "h", 1, Some(155)),
            ("12: h:1:2 [0] NCCL INFO x", "h", 1, Some(12)),
            ("node-b-1  | h:1:2 [0] NCCL INFO x", "h", 1, None),
            ("[1,3]<stdout>:h:1:2 [0] NCCL INFO x", "h", 1, Some(3)),
            ("[1,3]<stderr>: h:1:2 [0] NCCL INFO x", "h", 1, Some(3)),
            ("[default7]:h:1:2 [0] NCCL INFO x", "h", 1, Some(7)),
            ("2026-11-24T10:11:12.123456789Z h:1:2 [0] NCCL INFO x", "h", 1, None),
            ("2026-11-24 10:11:12,345 h:1:2 [0] NCCL INFO x", "h", 1, None),
            ("\x1b[36m(RayWorkerWrapper pid=2981, ip=10.0.0.2)\x1b[0m h:1:2 [0] NCCL INFO x", "h", 1, None),
            ("-worker-1:946:988 [0] transport/net_ib.cc:839 NCCL WARN x", "-worker-1", 946, None),
        ];
        for (seg, host, pid, rank) in cases {
            let (h, p, r, m) = nccl(seg);
            assert_eq!((h.as_str(), p, r, m.as_str()), (*host, *pid, *rank, "x"), "{seg:?}");
        }
    }

    /// Pieces of real lines glued at random: never a panic.
    #[test]
    fn any_mix_of_pieces_parses_without_panicking() {
        let pieces = [
            "h:1:2",
            " ",
            "\u{3000}",
            "[0]",
            " NCCL ",
            "INFO",
            "WARN",
            "ü",
            ":",
            "]",
            "[",
            "<stdout>",
            "\x1b[",
            "m",
            "\r",
            "9",
            "NCCL version ",
            "-> 3",
            "é:7:8",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut w = super::super::Watcher::new();
        for _ in 0..20_000 {
            let mut line = String::new();
            for _ in 0..(x % 12) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                line.push_str(pieces[(x % pieces.len() as u64) as usize]);
            }
            let _ = parse(&strip_ansi(&line));
            w.feed(&line);
            let _ = super::super::table::parse(&line);
            x = x.wrapping_add(1);
        }
    }

    #[test]
    fn other_lines() {
        for seg in ["", "NCCL INFO x", "plain text", "a:b:c NCCL INFO", "10:11:12 [0] NCCLINFO x", "[1] NCCL WARN x"] {
            assert!(!matches!(parse(seg), Parsed::Nccl(_)), "{seg:?}");
        }
        assert_eq!(parse("NCCL version 2.11.4+cuda11.4"), Parsed::Version("2.11.4+cuda11.4"));
        // Multi-byte whitespace and letters around the header (no panic on char boundaries).
        assert!(matches!(parse("ü\u{3000}h:1:2\u{3000}[0] NCCL INFO x"), Parsed::Nccl(NcclLine { pid: 1, .. })));
        assert_eq!(strip_ansi("\x1b[1;31mred\x1b[0m \x1b7x"), "red x");
    }
}
