//! What this machine holds: the model's files (found, hashed, checked) and the image's ID.

use anyhow::{anyhow, bail, Context};
use cluster::ops::model::{self as msync, LocalFile};
use cluster::Cluster;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The model on this machine.
#[derive(Debug)]
pub(crate) struct LocalModel {
    pub dir: PathBuf,
    pub rev: String,
    pub files: Vec<LocalFile>,
}

/// Finds `serve.model` on this machine, hashes it, and checks its safetensors files.
pub(crate) fn local_model(c: &Cluster, model_dir: Option<&Path>, hf_home: Option<&Path>) -> anyhow::Result<Option<LocalModel>> {
    if !msync::is_hub_id(&c.serve.model) {
        return Ok(None);
    }
    let dir = match model_dir {
        Some(d) => d.to_owned(),
        None => {
            let Some(repo) = hf_home.map(|h| h.join("hub").join(msync::repo_folder(&c.serve.model))) else { return Ok(None) };
            let Ok(rev) = std::fs::read_to_string(repo.join("refs/main")) else { return Ok(None) };
            repo.join("snapshots").join(rev.trim())
        }
    };
    if !dir.is_dir() {
        bail!("the model folder `{}` does not exist; point `--model-dir` at a folder holding `{}`", dir.display(), c.serve.model);
    }
    let rev = match (dir.parent().and_then(Path::file_name), dir.file_name()) {
        (Some(p), Some(r)) if p == "snapshots" => r.to_string_lossy().into_owned(),
        _ => "sparkctl".to_owned(),
    };
    let mut rels = Vec::new();
    walk(&dir, &dir, &mut rels).with_context(|| format!("reading the model folder `{}`", dir.display()))?;
    rels.sort();
    let mut files = Vec::new();
    for rel in rels {
        let path = dir.join(&rel);
        let (size, sha256, head) = hash_file(&path).with_context(|| format!("reading `{}`", path.display()))?;
        if rel.ends_with(".safetensors") {
            msync::check_safetensors(&head, size).map_err(|e| anyhow!("the model file `{}` is damaged: {e}; download it again", path.display()))?;
        }
        files.push(LocalFile { rel, size, sha256 });
    }
    if let Ok(index) = std::fs::read_to_string(dir.join("model.safetensors.index.json")) {
        let missing = msync::missing_from_index(&index, &files).map_err(|e| anyhow!("`{}/model.safetensors.index.json`: {e}", dir.display()))?;
        if !missing.is_empty() {
            bail!("the model in `{}` is incomplete: its index names {} which are not there; finish the download first", dir.display(), missing.join(", "));
        }
    }
    Ok(Some(LocalModel { dir, rev, files }))
}

/// Regular files under `dir` (symlinks followed: hub snapshots link into `blobs/`), relative.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let meta = std::fs::metadata(&p)?;
        if meta.is_dir() {
            walk(root, &p, out)?;
        } else if meta.is_file() && !p.to_string_lossy().ends_with(".sparkctl-partial") {
            out.push(p.strip_prefix(root).expect("under root").to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// Size, SHA-256, and the first bytes (up to a safetensors header's worth).
fn hash_file(path: &Path) -> std::io::Result<(u64, String, Vec<u8>)> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < (16 << 20) {
            head.extend_from_slice(&buf[..n.min((16 << 20) - head.len())]);
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(h.finalize()), head))
}

/// The ID of `image` in this machine's Docker, if it holds it.
pub(crate) fn local_image_id(image: &str) -> Option<String> {
    let out = Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", image]).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn cluster() -> Cluster {
        cluster::parse_str(include_str!("../../../../examples/cluster.toml"), "cluster.toml".as_ref()).unwrap()
    }

    #[test]
    fn the_hub_cache_snapshot_is_found_hashed_and_named_by_its_revision() {
        let c = cluster();
        let home = tempfile::tempdir().unwrap();
        let repo = home.path().join("hub").join(msync::repo_folder(&c.serve.model));
        let snap = repo.join("snapshots/abc123");
        fs::create_dir_all(snap.join("sub")).unwrap();
        fs::create_dir_all(repo.join("refs")).unwrap();
        fs::write(repo.join("refs/main"), "abc123\n").unwrap();
        fs::write(snap.join("config.json"), "{}").unwrap();
        fs::write(snap.join("sub/b.txt"), "b").unwrap();
        fs::write(snap.join("x.sparkctl-partial"), "half").unwrap();
        let m = local_model(&c, None, Some(home.path())).unwrap().expect("found");
        assert_eq!(m.rev, "abc123");
        let files: Vec<(&str, u64)> = m.files.iter().map(|f| (f.rel.as_str(), f.size)).collect();
        assert_eq!(files, [("config.json", 2), ("sub/b.txt", 1)]);
        assert_eq!(m.files[0].sha256, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        // No cache, or no snapshot in it: nothing to send.
        assert!(local_model(&c, None, None).unwrap().is_none());
        assert!(local_model(&c, None, Some(&home.path().join("elsewhere"))).unwrap().is_none());
    }

    #[test]
    fn a_missing_folder_and_a_damaged_safetensors_file_are_refused() {
        let c = cluster();
        let dir = tempfile::tempdir().unwrap();
        let e = local_model(&c, Some(&dir.path().join("nope")), None).unwrap_err().to_string();
        assert!(e.contains("does not exist; point `--model-dir` at a folder holding"), "{e}");
        fs::write(dir.path().join("model.safetensors"), b"\x05\0\0\0\0\0\0\0{").unwrap();
        let e = local_model(&c, Some(dir.path()), None).unwrap_err().to_string();
        assert!(e.contains("is damaged") && e.ends_with("download it again"), "{e}");
    }
}
