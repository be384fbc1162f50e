//! The files a DGX OS node gets from the renderers, compared with what the node has: install
//! only what changed, and never overwrite a file someone edited by hand (its content differs
//! from what sparkctl last installed, per the node's manifest) unless forced.

use super::sha256_hex;
use crate::model::{Cluster, Node};
use crate::render::{render, Format};
use std::collections::BTreeMap;

/// One file a node should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Which renderer makes it.
    pub format: Format,
    /// Absolute path on the node.
    pub path: String,
    /// netplan refuses world-readable files; the others are ordinary config files.
    pub mode: u32,
    /// The content.
    pub text: String,
}

/// Every file of `node`, in a fixed order (netplan, sysctl, env, unit).
pub fn wanted(c: &Cluster, node: &Node) -> Vec<Wanted> {
    [Format::Netplan, Format::Sysctl, Format::Env, Format::Systemd]
        .into_iter()
        .map(|format| Wanted {
            format,
            path: format.install_path(c).expect("these formats are files"),
            mode: if format == Format::Netplan { 0o600 } else { 0o644 },
            text: render(c, node, format),
        })
        .collect()
}

/// `path → sha256` of what sparkctl installed.
pub(crate) type Manifest = BTreeMap<String, String>;

/// Reads a manifest (`sha256  path` lines, as `sha256sum` writes); lines that are not entries
/// are ignored, so a damaged manifest only makes files look hand-edited (the safe side).
pub(crate) fn parse_manifest(text: &str) -> Manifest {
    text.lines()
        .filter_map(|l| {
            let (hash, path) = l.split_once("  ")?;
            (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && path.starts_with('/')).then(|| (path.to_owned(), hash.to_owned()))
        })
        .collect()
}

/// The manifest as written on the node: `HASH  PATH` lines.
pub fn format_manifest(m: &Manifest) -> String {
    m.iter().map(|(path, hash)| format!("{hash}  {path}\n")).collect()
}

/// What to do about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The node has exactly this content.
    Unchanged,
    /// Not on the node yet.
    Create,
    /// The node has what sparkctl installed before: replace it (backup kept).
    Update {
        /// The node's content.
        current: String,
    },
    /// The node's file is not what sparkctl installed (or sparkctl never installed it):
    /// shown as a diff, replaced only with `--force`.
    HandEdited {
        /// The node's content.
        current: String,
    },
}

impl Action {
    /// The action as a word for the table.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Unchanged => "unchanged",
            Action::Create => "create",
            Action::Update { .. } => "update",
            Action::HandEdited { .. } => "hand-edited",
        }
    }
}

/// What to do about `w`, given the node's content (`None`: absent) and the manifest.
pub fn action(w: &Wanted, current: Option<&str>, manifest: &Manifest) -> Action {
    match current {
        None => Action::Create,
        Some(cur) if cur == w.text => Action::Unchanged,
        Some(cur) if manifest.get(&w.path).is_some_and(|h| *h == sha256_hex(cur.as_bytes())) => Action::Update { current: cur.to_owned() },
        Some(cur) => Action::HandEdited { current: cur.to_owned() },
    }
}

/// What applying a set of changed files takes on the node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Apply {
    /// The netplan files changed: `netplan apply`.
    pub netplan: bool,
    /// The sysctl file changed: `sysctl --system`.
    pub sysctl: bool,
    /// A systemd unit changed: `systemctl daemon-reload`.
    pub daemon_reload: bool,
}

impl Apply {
    /// What applying files of these formats takes.
    pub fn for_formats(formats: impl IntoIterator<Item = Format>) -> Apply {
        let mut a = Apply::default();
        for f in formats {
            match f {
                Format::Netplan => a.netplan = true,
                Format::Sysctl => a.sysctl = true,
                Format::Systemd => a.daemon_reload = true,
                Format::Env | Format::DockerRun => {}
            }
        }
        a
    }

    /// The commands, as the plan prints them.
    pub fn commands(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.netplan {
            v.push("netplan apply");
        }
        if self.sysctl {
            v.push("sysctl --system");
        }
        if self.daemon_reload {
            v.push("systemctl daemon-reload");
        }
        v
    }
}

/// The manifest after installing `installed`: their new hashes replace the old entries.
pub fn updated_manifest(old: &Manifest, installed: &[&Wanted]) -> Manifest {
    let mut m = old.clone();
    for w in installed {
        m.insert(w.path.clone(), sha256_hex(w.text.as_bytes()));
    }
    m
}

/// A unified line diff (`---`/`+++` header, `-`/`+`/` ` lines, no hunk headers: the files are
/// short), from the longest common subsequence of lines.
pub fn diff(path: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut out = format!("--- {path} (on the node)\n+++ {path} (rendered)\n");
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!(" {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str) -> Wanted {
        Wanted { format: Format::Env, path: "/etc/spark-cluster/spark.env".into(), mode: 0o644, text: text.into() }
    }

    #[test]
    fn a_file_is_replaced_only_when_sparkctl_put_the_old_one_there() {
        let new = w("A=2\n");
        let mut m = Manifest::new();
        assert_eq!(action(&new, None, &m), Action::Create);
        assert_eq!(action(&new, Some("A=2\n"), &m), Action::Unchanged);
        // Never installed by sparkctl: someone wrote it.
        assert_eq!(action(&new, Some("A=1\n"), &m), Action::HandEdited { current: "A=1\n".into() });
        m = updated_manifest(&m, &[&w("A=1\n")]);
        assert_eq!(action(&new, Some("A=1\n"), &m), Action::Update { current: "A=1\n".into() });
        // Installed as A=1, then edited on the node.
        assert_eq!(action(&new, Some("A=1\nB=3\n"), &m), Action::HandEdited { current: "A=1\nB=3\n".into() });
    }

    #[test]
    fn manifest_round_trips_and_ignores_damage() {
        let m = updated_manifest(&Manifest::new(), &[&w("x")]);
        let text = format_manifest(&m);
        assert_eq!(text, format!("{}  /etc/spark-cluster/spark.env\n", sha256_hex(b"x")));
        assert_eq!(parse_manifest(&text), m);
        assert!(parse_manifest("garbage\nabc  /etc/x\n\n").is_empty());
    }

    #[test]
    fn diff_shows_removed_and_added_lines_in_place() {
        let d = diff("/f", "a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(d, "--- /f (on the node)\n+++ /f (rendered)\n a\n-b\n+B\n c\n+d\n");
    }

    #[test]
    fn apply_follows_the_changed_files() {
        assert_eq!(Apply::for_formats([Format::Env]).commands(), Vec::<&str>::new());
        assert_eq!(Apply::for_formats([Format::Systemd, Format::Netplan]).commands(), ["netplan apply", "systemctl daemon-reload"]);
    }

    #[test]
    fn the_token_is_in_no_wanted_file() {
        let c = crate::parse_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster.toml")).unwrap();
        let files = wanted(&c, c.head());
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["/etc/netplan/40-cx7.yaml", "/etc/sysctl.d/90-spark-cx7.conf", "/etc/spark-cluster/spark.env", "/etc/systemd/system/spark-cluster.service"]
        );
        assert_eq!(files[0].mode, 0o600);
    }
}
