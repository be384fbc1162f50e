//! Debian rootfs trees for test base images: `debootstrap --variant=minbase` of the host's own
//! release from the mirror in the host's apt sources (never a hard-coded host), cached by its
//! inputs and shared by every test that asks for the same packages.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The first `deb` source serving the host's release codename (deb822 `.sources` or one-line
/// `.list`), and that codename.
pub fn apt_mirror() -> (String, String) {
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let codename = os_release.lines().find_map(|l| l.strip_prefix("VERSION_CODENAME=")).map(|c| c.trim_matches('"').to_owned()).unwrap_or_default();
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    let mut dir: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d").map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    dir.sort();
    files.extend(dir);
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        if f.extension().is_some_and(|e| e == "sources") {
            for stanza in text.split("\n\n") {
                let field = |k: &str| stanza.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_owned()).unwrap_or_default();
                if field("Types:").split_whitespace().any(|t| t == "deb") && field("Suites:").split_whitespace().any(|s| s == codename) {
                    if let Some(uri) = field("URIs:").split_whitespace().next() {
                        return (uri.to_owned(), codename);
                    }
                }
            }
        } else if f.extension().is_some_and(|e| e == "list") || f.ends_with("sources.list") {
            for l in text.lines() {
                let words: Vec<&str> = l.split_whitespace().filter(|w| !w.starts_with('[')).collect();
                if words.len() >= 3 && words[0] == "deb" && words[2] == codename {
                    return (words[1].to_owned(), codename);
                }
            }
        }
    }
    panic!("no `deb` source for release `{codename}` in /etc/apt/sources.list(.d): debootstrap needs a Debian mirror");
}

/// FNV-1a: a stable cache key from the inputs (a file name, not a security boundary).
pub fn key(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in p.iter().chain(b"\0") {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

/// A minbase rootfs with `include` (e.g. `python3-minimal`), made once under `cache` and reused.
/// debootstrap is retried (4 attempts, 5/10/15 s apart): a mirror that drops a download now and
/// then must not fail the suite.
pub fn rootfs(cache: &Path, include: &str) -> PathBuf {
    let (mirror, codename) = apt_mirror();
    let arch = String::from_utf8(Command::new("dpkg").arg("--print-architecture").output().expect("dpkg").stdout).unwrap().trim().to_owned();
    let include_arg = format!("--include={include}");
    let args = ["--variant=minbase", include_arg.as_str(), codename.as_str()];
    let dir = cache.join(format!("debian-{codename}-{}", key(&[args.join(" ").as_bytes(), mirror.as_bytes(), arch.as_bytes()])));
    let root = dir.join("rootfs");
    // One debootstrap at a time in this process (tests run in parallel and ask for the same
    // tree); the tree only ever appears by rename, complete.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if root.exists() {
        unmount_below(&root);
        return root;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!("rootfs.tmp-{}", std::process::id()));
    let mut last = String::new();
    for attempt in 1..=4 {
        let _ = std::fs::remove_dir_all(&tmp);
        let out = Command::new("debootstrap")
            .args(args)
            .arg(&tmp)
            .arg(&mirror)
            .output()
            .unwrap_or_else(|e| panic!("debootstrap could not run ({e}); `cargo xtask deps` installs it"));
        unmount_below(&tmp);
        if out.status.success() {
            // Another test process may have won the race; either tree is good.
            if std::fs::rename(&tmp, &root).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            return root;
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
        std::thread::sleep(std::time::Duration::from_secs(5 * attempt));
    }
    let _ = std::fs::remove_dir_all(&tmp);
    panic!("debootstrap {args:?} {mirror} failed four times:\n{last}");
}

/// Unmounts everything mounted at or below `dir`, deepest first. debootstrap mounts `/proc` (and
/// `/dev/pts`) in its target and unmounts them from an exit trap; when that `umount` fails (seen
/// on a loaded machine) the tree keeps a live procfs, which then cannot be hard-linked, tarred
/// or removed, and moves with the tree when it is renamed.
pub fn unmount_below(dir: &Path) {
    let Ok(dir) = dir.canonicalize() else { return };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // The fifth field is the mount point, with space, tab, newline and backslash octal-escaped.
    let unescape = |p: &str| p.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
    let mut points: Vec<PathBuf> =
        mountinfo.lines().filter_map(|l| l.split(' ').nth(4)).map(|p| PathBuf::from(unescape(p))).filter(|p| p.starts_with(&dir)).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let status = Command::new("umount").arg("--lazy").arg(&p).status();
        assert!(status.is_ok_and(|s| s.success()), "could not unmount `{}` (left mounted in a debootstrap tree)", p.display());
    }
}
