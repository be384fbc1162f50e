//! What this machine holds: the model's files (found, hashed, checked) and the image's ID.

use anyhow::{anyhow, bail, Context};
use cluster::ops::model::{self as msync, LocalFile};
use cluster::Cluster;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The model on this machine.
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
