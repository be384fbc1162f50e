//! The shell scripts `sparkctl` runs on a node (`sh -c SCRIPT sh ARGS…`, values only as
//! positional arguments, never spliced into the text) and parsers for what they print.
//!
//! Every path a script touches is prefixed with `$SPARKCTL_ROOT` (unset, so `/`, on a real
//! node): network-namespace test nodes share one filesystem and each gets its own root.

use super::files::Manifest;

/// The argv that runs `script` with `args` through `sh` (the remote login shell then only
/// sees quoted words).
pub fn sh(script: &str, args: &[String]) -> Vec<String> {
    let mut v = vec!["sh".to_owned(), "-c".to_owned(), script.to_owned(), "sh".to_owned()];
    v.extend(args.iter().cloned());
    v
}

/// `id -u`, and whether non-interactive sudo works: `uid N` and `sudo yes|no`.
pub const WHO: &str = r#"echo "uid $(id -u)"; if sudo -n true 2>/dev/null; then echo "sudo yes"; else echo "sudo no"; fi"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// What a remote user may do on a node.
pub enum Privilege {
    /// The user is root.
    Root,
    /// The user has non-interactive sudo.
    Sudo,
    /// Neither.
    None,
}

/// Reads the answer of [`WHO`].
pub fn parse_who(out: &str) -> Privilege {
    let uid = out.lines().find_map(|l| l.strip_prefix("uid ")).map(str::trim);
    let sudo = out.lines().any(|l| l.trim() == "sudo yes");
    match (uid, sudo) {
        (Some("0"), _) => Privilege::Root,
        (_, true) => Privilege::Sudo,
        _ => Privilege::None,
    }
}

/// Everything `up` needs to know about a node, in one login. Args: image, token file, HF cache,
/// manifest, unit, then the managed files. Prints `key value` lines, file contents in base64,
/// and `end` last (a cut-off answer is told apart from an empty one).
pub const PROBE: &str = r#"R="${SPARKCTL_ROOT:-}"
img=$1 token=$2 cache=$3 manifest=$4 unit=$5; shift 5
echo "sparkctl-probe 1"
if ! command -v docker >/dev/null 2>&1; then
  echo "docker missing"
elif ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  echo "docker down"
else
  echo "docker yes"
  if id=$(docker image inspect --format '{{.Id}}' "$img" 2>/dev/null); then echo "image $id"; else echo "image missing"; fi
fi
echo "unit $(systemctl is-active "$unit" 2>/dev/null | head -n1)"
if [ -f "$R$token" ]; then echo "token $(sha256sum < "$R$token" | cut -d' ' -f1)"; else echo "token missing"; fi
d="$R$cache"; while [ ! -d "$d" ]; do d=$(dirname "$d"); done
echo "disk $(df -Pk "$d" | awk 'NR==2 {print $4}')"
if [ -f "$R$manifest" ]; then echo "manifest $(base64 -w0 < "$R$manifest")"; else echo "manifest missing"; fi
i=0
for f; do
  if [ -f "$R$f" ]; then echo "file $i $(base64 -w0 < "$R$f")"; else echo "file $i missing"; fi
  i=$((i + 1))
done
echo end
"#;

/// Whether a node can run the container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Docker {
    /// The daemon answers.
    Ready,
    /// `docker` is not on root's `PATH`.
    #[default]
    Missing,
    /// The client is there but the daemon does not answer.
    Down,
}

/// What [`PROBE`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Whether the node can run the container.
    pub docker: Docker,
    /// The image ID the node holds for `container.image`.
    pub image: Option<String>,
    /// `systemctl is-active`: `active`, `inactive`, `failed`, `activating`…
    pub unit: String,
    /// SHA-256 of the token file.
    pub token: Option<String>,
    /// Free space where the HF cache lives, in KiB.
    pub disk_free_kib: Option<u64>,
    /// What sparkctl installed on the node: path → SHA-256.
    pub manifest: Manifest,
    /// The managed files' current contents, by index (`None`: absent).
    pub files: Vec<Option<String>>,
}

/// Parses [`PROBE`]'s answer for `files` managed files; the error says what was wrong.
pub fn parse_probe(out: &str, files: usize) -> Result<Facts, String> {
    if !out.lines().any(|l| l == "sparkctl-probe 1") {
        return Err("the node's answer does not start like sparkctl's probe (is `sh` a POSIX shell?)".into());
    }
    if !out.lines().any(|l| l == "end") {
        return Err("the node's answer was cut off".into());
    }
    let mut f = Facts { files: vec![None; files], ..Facts::default() };
    for line in out.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let present = |v: &str| (v != "missing" && !v.is_empty()).then(|| v.to_owned());
        match key {
            "docker" => {
                f.docker = match value {
                    "yes" => Docker::Ready,
                    "down" => Docker::Down,
                    _ => Docker::Missing,
                }
            }
            "image" => f.image = present(value),
            "unit" => f.unit = value.trim().to_owned(),
            "token" => f.token = present(value),
            "disk" => f.disk_free_kib = value.trim().parse().ok(),
            "manifest" => f.manifest = present(value).and_then(|v| b64_text(&v)).map(|t| super::files::parse_manifest(&t)).unwrap_or_default(),
            "file" => {
                let (i, v) = value.split_once(' ').ok_or_else(|| format!("bad probe line `{line}`"))?;
                let i: usize = i.parse().map_err(|_| format!("bad probe line `{line}`"))?;
                let slot = f.files.get_mut(i).ok_or_else(|| format!("bad probe line `{line}`"))?;
                *slot = match present(v) {
                    None => None,
                    Some(b) => Some(b64_text(&b).ok_or_else(|| format!("file {i} is not UTF-8 text"))?),
                };
            }
            _ => {}
        }
    }
    Ok(f)
}

fn b64_text(s: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

/// Base64 (standard, padded) of `bytes`, for the node scripts' arguments.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Installs files atomically and applies them, all or nothing. Args: manifest path, new
/// manifest (base64), netplan/sysctl/daemon-reload flags (`1`/`0`), then `path mode base64`
/// per file. Each file is written beside its target and renamed over it; a replaced file is
/// kept as `PATH.sparkctl-bak`. Any failure puts every file back as it was (and re-applies
/// what was applied), then exits 3 with the cause on stderr.
pub const INSTALL: &str = r#"R="${SPARKCTL_ROOT:-}"
manifest=$1 newman=$2 do_netplan=$3 do_sysctl=$4 do_reload=$5; shift 5
undo=$(mktemp) || { echo "sparkctl: cannot create a temp file (disk full?)" >&2; exit 3; }
applied=""
fail() {
  echo "sparkctl: $1" >&2
  while IFS='	' read -r kind p; do
    if [ "$kind" = replaced ]; then mv -f "$p.sparkctl-bak" "$p"; else rm -f "$p"; fi
  done < "$undo"
  rm -f "$undo"
  case "$applied" in *netplan*) netplan apply >/dev/null 2>&1;; esac
  case "$applied" in *sysctl*) sysctl --system >/dev/null 2>&1;; esac
  case "$applied" in *reload*) systemctl daemon-reload >/dev/null 2>&1;; esac
  echo "sparkctl: the previous files are back in place" >&2
  exit 3
}
while [ $# -ge 3 ]; do
  p="$R$1" mode=$2 data=$3; shift 3
  mkdir -p "$(dirname "$p")" || fail "cannot create the folder of \`$1\`"
  tmp="$p.sparkctl-tmp"
  if ! printf '%s' "$data" | base64 -d > "$tmp" 2>/dev/null; then rm -f "$tmp"; fail "cannot write \`$1\` (disk full?)"; fi
  chmod "$mode" "$tmp" || fail "cannot chmod \`$1\`"
  if [ -e "$p" ]; then
    cp -p "$p" "$p.sparkctl-bak" || { rm -f "$tmp"; fail "cannot back up \`$1\` (disk full?)"; }
    printf 'replaced\t%s\n' "$p" >> "$undo"
  else
    printf 'created\t%s\n' "$p" >> "$undo"
  fi
  mv -f "$tmp" "$p" || fail "cannot install \`$1\`"
done
if [ "$do_netplan" = 1 ]; then applied="$applied netplan"; netplan apply || fail "\`netplan apply\` failed"; fi
if [ "$do_sysctl" = 1 ]; then applied="$applied sysctl"; sysctl --system >/dev/null || fail "\`sysctl --system\` failed"; fi
if [ "$do_reload" = 1 ]; then applied="$applied reload"; systemctl daemon-reload || fail "\`systemctl daemon-reload\` failed"; fi
m="$R$manifest"
mkdir -p "$(dirname "$m")" && printf '%s' "$newman" | base64 -d > "$m.sparkctl-tmp" && mv -f "$m.sparkctl-tmp" "$m" || fail "cannot write the manifest \`$manifest\`"
rm -f "$undo"
"#;

/// Writes the token read from stdin to the file `$1`, mode 0600, atomically.
pub const TOKEN: &str = r#"R="${SPARKCTL_ROOT:-}"
p="$R$1"
umask 077
mkdir -p "$(dirname "$p")" && cat > "$p.sparkctl-tmp" && chmod 600 "$p.sparkctl-tmp" && mv -f "$p.sparkctl-tmp" "$p"
"#;

/// Prints the token file `$1` (to copy it to a node that lacks it; never shown to anyone).
pub const READ_TOKEN: &str = r#"cat "${SPARKCTL_ROOT:-}$1""#;

/// The same, printing nothing when the node has no token file (a node outside `up --node`).
pub const READ_TOKEN_IF_ANY: &str = r#"p="${SPARKCTL_ROOT:-}$1"; if [ -e "$p" ]; then cat "$p"; fi"#;

/// Removes the restart history `$1` (`up --reset-budget`).
pub const CLEAR_RESTARTS: &str = r#"rm -f "${SPARKCTL_ROOT:-}$1""#;

/// Enables and (re)starts the unit `$1`; `$2` = `restart` or `start`.
pub const START: &str = r#"systemctl enable "$1" >/dev/null 2>&1; systemctl "$2" "$1""#;

/// Stops and disables the unit `$1`: nothing restarts it, not even a reboot.
pub const STOP: &str = r#"systemctl disable "$1" >/dev/null 2>&1; systemctl stop "$1""#;

/// `status`: the unit's state, the entrypoint's status file (inside the container), the image
/// ID, the restart history and the last `nccl:` lines the entrypoint logged. Args: unit,
/// container name, status file, image, restart file.
pub const STATUS: &str = r#"R="${SPARKCTL_ROOT:-}"
echo "unit $(systemctl is-active "$1" 2>/dev/null | head -n1)"
s=$(docker exec "$2" cat "$3" 2>/dev/null) && echo "status $(printf '%s' "$s" | base64 -w0)"
if id=$(docker image inspect --format '{{.Id}}' "$4" 2>/dev/null); then echo "image $id"; fi
[ -f "$R$5" ] && echo "restarts $(base64 -w0 < "$R$5")"
journalctl -u "$1" -o cat --no-pager -n 2000 2>/dev/null | grep 'nccl: ' | tail -n 8 | sed 's/^/log /'
echo end
"#;

/// What [`STATUS`] found on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NodeStatus {
    /// `systemctl is-active` of the unit.
    pub unit: String,
    /// The entrypoint's state (`preflight`, `rendezvous`, …, `ready`, `backoff`, `down`);
    /// `None` when no container answers.
    pub state: Option<String>,
    /// The entrypoint's detail for its state.
    pub detail: String,
    /// The ID of the image the node holds for `container.image`.
    pub image: Option<String>,
    /// The transport NCCL uses, from the entrypoint's `nccl:` lines (`IB`, `Socket`…).
    pub transport: Option<String>,
    /// Liveness probes failed in a row.
    pub liveness_failures: u32,
    /// Restarts spent from the budget.
    pub restarts_used: u32,
    /// The restart budget.
    pub restart_budget: u32,
    /// The cause of the last group stop in the restart history.
    pub last_error: Option<String>,
}

/// Reads the answer of [`STATUS`].
pub fn parse_status(out: &str) -> NodeStatus {
    let mut s = NodeStatus::default();
    for line in out.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "unit" => s.unit = value.trim().to_owned(),
            "image" => s.image = Some(value.trim().to_owned()),
            "status" => {
                if let Some(v) = b64_text(value).and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()) {
                    s.state = v["state"].as_str().map(str::to_owned);
                    s.detail = v["detail"].as_str().unwrap_or_default().to_owned();
                    let n = |k: &str| v[k].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
                    (s.liveness_failures, s.restarts_used, s.restart_budget) = (n("liveness_failures"), n("restarts_used"), n("restart_budget"));
                }
            }
            "restarts" => {
                let v = b64_text(value).and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
                s.last_error = v.as_ref().and_then(|v| v["failures"].as_array()?.last()?["why"].as_str().map(str::to_owned));
            }
            // `nccl: process H:P of NAME uses NET` (the entrypoint's summary of NCCL's INFO lines).
            "log" => {
                if let Some(net) = value.split_once(" uses ").and_then(|(_, rest)| rest.split_whitespace().next()) {
                    s.transport = Some(net.to_owned());
                }
            }
            _ => {}
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_parse_and_cut_ones_are_refused() {
        let out = format!(
            "sparkctl-probe 1\ndocker yes\nimage sha256:ab\nunit inactive\ntoken missing\ndisk 1234\nmanifest {}\nfile 0 {}\nfile 1 missing\nend\n",
            b64(format!("{}  /etc/x\n", "a".repeat(64)).as_bytes()),
            b64(b"A=1\n")
        );
        let f = parse_probe(&out, 2).unwrap();
        assert_eq!(f.docker, Docker::Ready);
        assert_eq!(f.image.as_deref(), Some("sha256:ab"));
        assert_eq!(f.unit, "inactive");
        assert_eq!(f.token, None);
        assert_eq!(f.disk_free_kib, Some(1234));
        assert_eq!(f.manifest.get("/etc/x").map(String::len), Some(64));
        assert_eq!(f.files, [Some("A=1\n".to_owned()), None]);
        assert!(parse_probe(&out.replace("end\n", ""), 2).unwrap_err().contains("cut off"));
        assert!(parse_probe("bash: sh: not found", 2).is_err());
        assert!(parse_probe(&out.replace("file 1 missing", "file 7 missing"), 2).is_err());
        assert!(parse_probe(&out.replace("image sha256:ab", "image missing").replace("docker yes", "docker missing"), 2)
            .is_ok_and(|f| f.docker == Docker::Missing && f.image.is_none()));
        assert_eq!(parse_probe(&out.replace("docker yes", "docker down"), 2).unwrap().docker, Docker::Down);
    }

    #[test]
    fn privilege_is_root_then_sudo() {
        assert_eq!(parse_who("uid 0\nsudo no\n"), Privilege::Root);
        assert_eq!(parse_who("uid 1000\nsudo yes\n"), Privilege::Sudo);
        assert_eq!(parse_who("uid 1000\nsudo no\n"), Privilege::None);
        assert_eq!(parse_who(""), Privilege::None);
    }

    #[test]
    fn status_reads_the_entrypoint_state_history_and_transport() {
        let st = r#"{"node":"b","role":"worker","state":"down","detail":"restart budget spent","api":null,"liveness_failures":0,"restarts_used":3,"restart_budget":3}"#;
        let hist = r#"{"failures":[{"at":1,"code":3,"why":"lost node `a`"},{"at":2,"code":5,"why":"the engine is wedged"}]}"#;
        let out = format!(
            "unit active\nstatus {}\nimage sha256:cd\nrestarts {}\nlog [b entrypoint] nccl: process b:12 of vllm uses NET/IB\nlog [b entrypoint] nccl: process b:13 of vllm uses NET/Socket although the rails passed\nend\n",
            b64(st.as_bytes()),
            b64(hist.as_bytes())
        );
        let s = parse_status(&out);
        assert_eq!(s.state.as_deref(), Some("down"));
        assert_eq!((s.restarts_used, s.restart_budget), (3, 3));
        assert_eq!(s.last_error.as_deref(), Some("the engine is wedged"));
        assert_eq!(s.transport.as_deref(), Some("NET/Socket"));
        assert_eq!(s.image.as_deref(), Some("sha256:cd"));
        let none = parse_status("unit inactive\nend\n");
        assert_eq!((none.unit.as_str(), none.state), ("inactive", None));
        assert_eq!(parse_status("status !!!\n").state, None);
    }
}
