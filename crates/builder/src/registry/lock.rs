//! Lock files: `images/X.lock.json` beside `images/X.toml` pins a registry base (its digest,
//! raw index, manifests and configs), so a later build reads the base metadata without the
//! network and a Nix fixed-output derivation has its hashes. Layer blobs still come from the
//! registry, and only when an output needs them. The format is in docs/registry.md.

use super::client::ClientOptions;
use super::source::RegistrySource;
use crate::descriptor::Descriptor;
use crate::digest::{verify_bytes, Digest};
use crate::error::{Error, IoContext, Result};
use crate::reference::RegistryRef;
use crate::source::{BaseImage, BaseTop, BlobSource};
use crate::store::BlobStore;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub(crate) const LOCK_VERSION: u64 = 1;

/// `images/X.toml` → `images/X.lock.json`.
pub fn path_for(recipe: &Path) -> PathBuf {
    recipe.with_extension("lock.json")
}

/// A parsed lock file.
#[derive(Debug, Clone)]
pub struct Lock {
    /// The reference as the recipe gives it (normalised), e.g. `nvcr.io/nvidia/vllm:25.11-py3`.
    pub reference: RegistryRef,
    /// The top descriptor (index or manifest) the tag resolved to.
    pub(crate) top: Descriptor,
    /// Raw index, manifests (attestations included) and configs by digest, each verified against its digest on read.
    pub(crate) blobs: BTreeMap<Digest, Vec<u8>>,
}

/// Writes the lock for a base opened from `reference` (temp file + rename).
pub fn write(path: &Path, reference: &RegistryRef, base: &BaseImage) -> Result<()> {
    let mut blobs = BTreeMap::new();
    let top = match &base.top {
        BaseTop::Index { desc, .. } => desc.clone(),
        BaseTop::Manifest => base.entries[0].0.clone(),
    };
    if let BaseTop::Index { desc, raw, .. } = &base.top {
        blobs.insert(desc.digest.clone(), raw.clone());
    }
    for (desc, m) in &base.entries {
        match m {
            Some(m) => {
                blobs.insert(m.desc.digest.clone(), m.raw.clone());
                blobs.insert(m.config_desc.digest.clone(), m.config_raw.clone());
            }
            // Entries copied verbatim (attestations): their manifest too, so every output's
            // metadata is in the lock; their small blobs come from the store or the registry.
            None if crate::media::is_manifest(&desc.media_type) => {
                blobs.insert(desc.digest.clone(), base.source.read_verified(desc)?);
            }
            None => {}
        }
    }
    let text_of = |raw: &[u8]| String::from_utf8(raw.to_vec()).map_err(|_| Error::malformed(base.name(), "a manifest or config is not UTF-8 JSON"));
    let mut entries = serde_json::Map::new();
    for (d, raw) in &blobs {
        entries.insert(d.to_string(), Value::String(text_of(raw)?));
    }
    let reference_unpinned = RegistryRef { digest: None, ..reference.clone() };
    let doc = json!({
        "lockVersion": LOCK_VERSION,
        "reference": reference_unpinned.to_string(),
        "resolved": format!("{}@{}", reference.name(), top.digest),
        "top": top.raw,
        "blobs": entries,
    });
    let mut text = serde_json::to_vec_pretty(&doc).expect("json");
    text.push(b'\n');
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    crate::fsutil::write_atomic(dir, path, &text, "writing")
}

/// Reads and verifies a lock file: every blob must hash to its key.
pub fn read(path: &Path) -> Result<Lock> {
    let file = path.display().to_string();
    let raw = std::fs::read(path).io_ctx("reading the lock file", path)?;
    let bad = |m: String| Error::input(&file, m, Some("delete the lock file and build with `--lock` to write it again".into()));
    let doc: Value = serde_json::from_slice(&raw).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    match doc.get("lockVersion").and_then(Value::as_u64) {
        Some(LOCK_VERSION) => {}
        other => return Err(bad(format!("`lockVersion` is {other:?}, this sparkctl reads {LOCK_VERSION}"))),
    }
    let reference = doc.get("reference").and_then(Value::as_str).ok_or_else(|| bad("no `reference`".into()))?;
    let top = Descriptor::from_json(doc.get("top").ok_or_else(|| bad("no `top`".into()))?, &file)?;
    let reference = RegistryRef::parse(reference)?.pinned(&top.digest);
    let mut blobs = BTreeMap::new();
    for (k, v) in doc.get("blobs").and_then(Value::as_object).ok_or_else(|| bad("no `blobs`".into()))? {
        let digest = Digest::parse(k).ok_or_else(|| bad(format!("`blobs` key `{k}` is not a sha256 digest")))?;
        let text = v.as_str().ok_or_else(|| bad(format!("`blobs.{k}` is not a string")))?;
        let found = Digest::of(text.as_bytes());
        if found != digest {
            return Err(bad(format!("`blobs.{k}` hashes to {found}: the lock file was edited")));
        }
        blobs.insert(digest, text.as_bytes().to_vec());
    }
    if !blobs.contains_key(&top.digest) {
        return Err(bad(format!("`blobs` lacks the top {}", top.digest)));
    }
    Ok(Lock { reference, top, blobs })
}

impl Lock {
    /// The base from the lock: metadata from the file, layers from the registry (connected
    /// only when a layer is read).
    pub fn open_base(&self, opts: &ClientOptions, store: Option<BlobStore>) -> Result<BaseImage> {
        let src = LockedSource { lock: self.clone(), name: format!("docker://{}", self.reference), opts: opts.clone(), store, registry: OnceLock::new() };
        BaseImage::read(Box::new(src), self.top.clone())
    }
}

/// Serves the lock's blobs from memory and everything else from the registry.
struct LockedSource {
    lock: Lock,
    name: String,
    opts: ClientOptions,
    store: Option<BlobStore>,
    registry: OnceLock<RegistrySource>,
}

impl LockedSource {
    fn registry(&self) -> Result<&RegistrySource> {
        if let Some(r) = self.registry.get() {
            return Ok(r);
        }
        let r = RegistrySource::open(&self.lock.reference, &self.opts, self.store.clone())?;
        Ok(self.registry.get_or_init(|| r))
    }
}

impl LockedSource {
    fn stored(&self, desc: &Descriptor) -> Option<PathBuf> {
        self.store.as_ref().filter(|s| s.has(&desc.digest, desc.size)).map(|s| s.path(&desc.digest))
    }
}

impl BlobSource for LockedSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        if let Some(raw) = self.lock.blobs.get(&desc.digest) {
            verify_bytes(raw, &desc.digest, desc.size, &self.name)?;
            return Ok(Box::new(std::io::Cursor::new(raw.clone())));
        }
        // Layers already in the store need no network; the rest come from the registry.
        if let Some(path) = self.stored(desc) {
            return Ok(Box::new(std::fs::File::open(&path).io_ctx("opening blob", &path)?));
        }
        self.registry()?.open(desc)
    }
    fn link_to(&self, desc: &Descriptor, dest: &Path) -> Result<bool> {
        if self.lock.blobs.contains_key(&desc.digest) {
            return Ok(false);
        }
        if let (Some(path), Some(store)) = (self.stored(desc), self.store.as_ref()) {
            return store.link_verified(&path, desc, dest, &self.name);
        }
        self.registry()?.link_to(desc, dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_sits_beside_the_recipe() {
        assert_eq!(path_for(Path::new("images/vllm-spark.toml")), Path::new("images/vllm-spark.lock.json"));
    }

    #[test]
    fn a_lock_with_a_wrong_version_or_an_edited_blob_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock.json");
        let raw = r#"{"a":1}"#;
        let d = Digest::of(raw.as_bytes());
        let doc = |version: u64, text: &str| {
            json!({ "lockVersion": version, "reference": "nvcr.io/nvidia/vllm:25.11-py3", "top": { "mediaType": crate::media::OCI_MANIFEST, "digest": d.as_str(), "size": raw.len() }, "blobs": { d.as_str(): text } }).to_string()
        };
        std::fs::write(&path, doc(1, raw)).unwrap();
        let lock = read(&path).unwrap();
        assert_eq!(lock.reference.to_string(), format!("nvcr.io/nvidia/vllm:25.11-py3@{d}"));
        std::fs::write(&path, doc(2, raw)).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("lockVersion"));
        std::fs::write(&path, doc(1, r#"{"a":2}"#)).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("x.lock.json") && e.contains("edited"), "{e}");
    }
}
