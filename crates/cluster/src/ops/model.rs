//! The model on every node, as the community launchers do it (download once, copy over the
//! rails): `serve.model` in each node's Hugging Face cache layout, copied from a directory on
//! the control machine. Only missing or changed files move (size, then SHA-256); a copy goes to
//! `FILE.sparkctl-partial` first and continues from its size when interrupted, and is renamed
//! into place only once its hash matches.

use std::collections::BTreeMap;

/// One file of the model on the control machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Path relative to the snapshot directory (`config.json`, `model-00001-of-00002.safetensors`).
    pub rel: String,
    /// The file's size.
    pub size: u64,
    /// SHA-256 of its content.
    pub sha256: String,
}

/// `org/name` → `models--org--name` (the hub cache's folder name).
pub fn repo_folder(model: &str) -> String {
    format!("models--{}", model.replace('/', "--"))
}

/// Where the snapshot goes on a node: `<hf_cache>/hub/models--org--name/snapshots/<rev>`.
pub fn snapshot_dir(hf_cache: &str, model: &str, rev: &str) -> String {
    format!("{}/hub/{}/snapshots/{rev}", hf_cache.trim_end_matches('/'), repo_folder(model))
}

/// `serve.model` names a hub repository (`org/name`), not a path on the node.
pub fn is_hub_id(model: &str) -> bool {
    let parts: Vec<&str> = model.split('/').collect();
    parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && *p != "." && *p != "..")
}

/// Lists the node's copy. Args: snapshot dir, then `rel size` pairs. Prints per file
/// `have REL SHA256` (same size: hashed), `partial REL SIZE` (an interrupted copy), or
/// `missing REL`; `free KIB` for the cache's file system; `end`.
pub const LIST: &str = r#"R="${SPARKCTL_ROOT:-}"
snap="$R$1"; shift
d="$snap"; while [ ! -d "$d" ]; do d=$(dirname "$d"); done
echo "free $(df -Pk "$d" | awk 'NR==2 {print $4}')"
while [ $# -ge 2 ]; do
  f="$snap/$1"
  if [ -f "$f" ] && [ "$(stat -L -c %s "$f")" = "$2" ]; then echo "have $1 $(sha256sum < "$f" | cut -d' ' -f1)"
  elif [ -f "$f.sparkctl-partial" ]; then echo "partial $1 $(stat -c %s "$f.sparkctl-partial")"
  else echo "missing $1"; fi
  shift 2
done
echo end
"#;

/// Appends stdin to `SNAP/REL.sparkctl-partial` (args: snapshot dir, rel, expected size,
/// expected sha256, offset the data starts at); once whole, checks the hash and renames it into
/// place. Exit 4: the hash does not match (the partial file is removed).
pub const RECEIVE: &str = r#"R="${SPARKCTL_ROOT:-}"
f="$R$1/$2"; part="$f.sparkctl-partial"
mkdir -p "$(dirname "$f")" || exit 3
if [ "$5" = 0 ]; then : > "$part" || exit 3; fi
have=$(stat -c %s "$part" 2>/dev/null || echo 0)
[ "$have" = "$5" ] || { echo "sparkctl: the partial copy has $have bytes, expected $5" >&2; exit 3; }
cat >> "$part" || { echo "sparkctl: writing \`$part\` failed (disk full?)" >&2; exit 3; }
[ "$(stat -c %s "$part")" = "$3" ] || { echo "sparkctl: the copy of \`$2\` is short (connection lost?); run again to continue" >&2; exit 3; }
[ "$(sha256sum < "$part" | cut -d' ' -f1)" = "$4" ] || { rm -f "$part"; echo "sparkctl: \`$2\` arrived with another hash" >&2; exit 4; }
rm -f "$f" && mv -f "$part" "$f"
"#;

/// Points `refs/main` at the snapshot (args: hf cache, model, rev), so offline loads resolve it.
pub const REF: &str = r#"R="${SPARKCTL_ROOT:-}"
d="$R$1/hub/models--$(printf '%s' "$2" | sed 's|/|--|g')/refs"
mkdir -p "$d" && printf '%s' "$3" > "$d/main.sparkctl-tmp" && mv -f "$d/main.sparkctl-tmp" "$d/main"
"#;

/// What a node has of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Remote {
    Have { sha256: String },
    Partial { size: u64 },
    Missing,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
/// The model files a node has, and the free space.
pub struct Listing {
    pub(crate) files: BTreeMap<String, Remote>,
    /// Free space in the model's folder, in KiB.
    pub free_kib: Option<u64>,
}

/// Reads the answer of the node's file-list script.
pub fn parse_list(out: &str) -> Result<Listing, String> {
    if !out.lines().any(|l| l == "end") {
        return Err("the node's file list was cut off".into());
    }
    let mut l = Listing::default();
    // The file name sits between the keyword and a last word without spaces: names may have spaces.
    for line in out.lines() {
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        let last = rest.rsplit_once(' ');
        match (key, last) {
            ("free", _) => l.free_kib = rest.trim().parse().ok(),
            ("have", Some((rel, sha))) => {
                l.files.insert(rel.to_owned(), Remote::Have { sha256: sha.trim().to_owned() });
            }
            ("partial", Some((rel, n))) => {
                l.files.insert(rel.to_owned(), Remote::Partial { size: n.trim().parse().unwrap_or(0) });
            }
            ("missing", _) if !rest.is_empty() => {
                l.files.insert(rest.to_owned(), Remote::Missing);
            }
            _ => {}
        }
    }
    Ok(l)
}

/// One copy to make: `rel` from byte `offset` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Its path relative to the snapshot.
    pub rel: String,
    /// Its size.
    pub size: u64,
    /// SHA-256 of its content.
    pub sha256: String,
    /// The byte to start from.
    pub offset: u64,
}

/// The copies a node needs: files it lacks, holds with another size or hash, or holds in part
/// (continued from there when the partial copy is not longer than the file).
pub fn plan(local: &[LocalFile], remote: &Listing) -> Vec<Copy> {
    local
        .iter()
        .filter_map(|f| {
            let offset = match remote.files.get(&f.rel) {
                Some(Remote::Have { sha256 }) if *sha256 == f.sha256 => return None,
                Some(Remote::Partial { size }) if *size <= f.size => *size,
                _ => 0,
            };
            Some(Copy { rel: f.rel.clone(), size: f.size, sha256: f.sha256.clone(), offset })
        })
        .collect()
}

/// Bytes still to send for `copies`.
pub fn bytes_to_send(copies: &[Copy]) -> u64 {
    copies.iter().map(|c| c.size - c.offset).sum()
}

/// Checks a safetensors file from its first bytes and its size: an 8-byte little-endian header
/// length, a JSON header whose tensors' `data_offsets` end exactly where the file does. A
/// truncated or foreign file fails here before it is copied anywhere.
pub fn check_safetensors(head: &[u8], size: u64) -> Result<(), String> {
    let n = u64::from_le_bytes(head.get(..8).ok_or("shorter than the 8-byte header length")?.try_into().expect("8 bytes"));
    let end = 8u64.checked_add(n).filter(|e| *e <= size).ok_or_else(|| format!("header length {n} runs past the file ({size} bytes)"))?;
    let header = head.get(8..usize::try_from(end).map_err(|_| "header too large")?).ok_or("header not fully read")?;
    let v: serde_json::Value = serde_json::from_slice(header).map_err(|e| format!("header is not JSON ({e})"))?;
    let obj = v.as_object().ok_or("header is not a JSON object")?;
    let data_end = obj.iter().filter(|(k, _)| *k != "__metadata__").filter_map(|(_, t)| t["data_offsets"][1].as_u64()).max().unwrap_or(0);
    if end + data_end != size {
        return Err(format!("tensors end at byte {} but the file has {size} (truncated?)", end + data_end));
    }
    Ok(())
}

/// The weight files `model.safetensors.index.json` names that are not among `files`.
pub fn missing_from_index(index_json: &str, files: &[LocalFile]) -> Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_str(index_json).map_err(|e| format!("not JSON ({e})"))?;
    let map = v["weight_map"].as_object().ok_or("no `weight_map`")?;
    let mut wanted: Vec<String> = map.values().filter_map(|f| f.as_str().map(str::to_owned)).collect();
    wanted.sort();
    wanted.dedup();
    Ok(wanted.into_iter().filter(|w| !files.iter().any(|f| f.rel == *w)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lf(rel: &str, size: u64, sha: &str) -> LocalFile {
        LocalFile { rel: rel.into(), size, sha256: sha.into() }
    }

    #[test]
    fn only_missing_changed_and_partial_files_move() {
        let local = [lf("a", 10, "h1"), lf("b", 20, "h2"), lf("c", 30, "h3"), lf("d", 5, "h4"), lf("e", 7, "h5")];
        let out = "free 99\nhave a h1\nhave b other\npartial c 12\nmissing d\npartial e 9\nend\n";
        let l = parse_list(out).unwrap();
        assert_eq!(l.free_kib, Some(99));
        let p = plan(&local, &l);
        let got: Vec<_> = p.iter().map(|c| (c.rel.as_str(), c.offset)).collect();
        assert_eq!(got, [("b", 0), ("c", 12), ("d", 0), ("e", 0)]);
        assert_eq!(bytes_to_send(&p), 20 + 18 + 5 + 7);
        assert!(parse_list("have a h1\n").is_err());
        let spaced = parse_list("have sub dir/a b h1\nmissing c d\nend\n").unwrap();
        assert_eq!(spaced.files["sub dir/a b"], Remote::Have { sha256: "h1".into() });
        assert_eq!(spaced.files["c d"], Remote::Missing);
    }

    #[test]
    fn hub_ids_and_cache_paths() {
        assert!(is_hub_id("Qwen/Qwen3-0.6B"));
        assert!(!is_hub_id("/models/qwen") && !is_hub_id("a/b/c") && !is_hub_id("../x"));
        assert_eq!(snapshot_dir("/var/lib/hf/", "Qwen/Qwen3-0.6B", "abc"), "/var/lib/hf/hub/models--Qwen--Qwen3-0.6B/snapshots/abc");
    }

    fn safetensors(data: usize) -> Vec<u8> {
        let h = format!(r#"{{"__metadata__":{{"format":"pt"}},"w":{{"dtype":"F32","shape":[{}],"data_offsets":[0,{}]}}}}"#, data / 4, data);
        let mut v = (h.len() as u64).to_le_bytes().to_vec();
        v.extend(h.as_bytes());
        v.extend(vec![0u8; data]);
        v
    }

    #[test]
    fn safetensors_headers_catch_truncation() {
        let f = safetensors(64);
        assert_eq!(check_safetensors(&f, f.len() as u64), Ok(()));
        assert!(check_safetensors(&f[..f.len() - 10], f.len() as u64 - 10).unwrap_err().contains("truncated"));
        assert!(check_safetensors(b"abc", 3).is_err());
        assert!(check_safetensors(&[255; 16], 16).is_err());
        let idx = r#"{"weight_map":{"a":"m-1.safetensors","b":"m-2.safetensors","c":"m-1.safetensors"}}"#;
        assert_eq!(missing_from_index(idx, &[lf("m-1.safetensors", 1, "x")]).unwrap(), ["m-2.safetensors"]);
        assert!(missing_from_index("{}", &[]).is_err());
    }
}
