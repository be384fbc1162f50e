//! A base in a tar archive: `oci-archive:` (a tarred OCI layout) or `docker-archive:` (`docker
//! save`: modern Docker writes an OCI layout plus `manifest.json`; older Docker writes only
//! `manifest.json` with uncompressed `layer.tar` files, whose manifest we synthesise).
//!
//! The archive is indexed once by seeking over entry headers, so a 15 GB archive is scanned
//! without reading its layer contents.

use super::{select_from_index_json, BlobSource};
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::json::canonical;
use crate::media;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub(crate) struct ArchiveSource {
    file: PathBuf,
    name: String,
    /// Entry path (normalised, no leading `./`) → (data offset, size).
    entries: BTreeMap<String, (u64, u64)>,
    /// Blobs that exist only in memory (the synthesised manifest of a legacy docker-archive).
    synthetic: Mutex<BTreeMap<Digest, Vec<u8>>>,
    /// Legacy docker-archive: digest → entry path of its (uncompressed) layer or config file.
    legacy_paths: Mutex<BTreeMap<Digest, String>>,
}

impl ArchiveSource {
    pub(crate) fn open(file: &Path, name: String) -> Result<ArchiveSource> {
        let mut f = File::open(file).map_err(|e| Error::Reference { reference: name.clone(), message: format!("cannot open `{}`: {e}", file.display()) })?;
        let len = f.metadata().io_ctx("reading", file)?.len();
        let mut magic = [0u8; 4];
        let got = f.read(&mut magic).io_ctx("reading", file)?;
        f.seek(SeekFrom::Start(0)).io_ctx("seeking in", file)?;
        if let Some(kind) = compressed(&magic[..got]) {
            return Err(Error::input(
                &name,
                format!("`{}` is {kind}-compressed; archives are read as plain tar files", file.display()),
                Some(format!("decompress it first (e.g. `{} -dk {}`), then name the .tar", if kind == "gzip" { "gzip" } else { "zstd" }, file.display())),
            ));
        }
        let mut archive = tar::Archive::new(f);
        let mut entries = BTreeMap::new();
        let bad = |e: io::Error| Error::malformed(&name, format!("not a readable tar archive: {e}"));
        let mut end = 0;
        for entry in archive.entries_with_seek().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            // Seeking over contents never notices a short file: the sizes must fit in it.
            end = end.max(entry.raw_file_position() + entry.size());
            if entry.header().entry_type().is_file() {
                let path = entry.path().map_err(bad)?.to_string_lossy().trim_start_matches("./").to_owned();
                entries.insert(path, (entry.raw_file_position(), entry.size()));
            }
        }
        if end > len {
            return Err(Error::input(
                &name,
                format!("`{}` is truncated: its entries need {end} bytes, the file has {len}", file.display()),
                Some("the copy or `docker save` was cut short; save or copy it again".into()),
            ));
        }
        if entries.is_empty() {
            return Err(Error::malformed(&name, "the archive holds no files"));
        }
        Ok(ArchiveSource { file: file.to_owned(), name, entries, synthetic: Mutex::default(), legacy_paths: Mutex::default() })
    }

    fn read_entry(&self, path: &str) -> Result<Vec<u8>> {
        let (off, size) = *self.entries.get(path).ok_or_else(|| Error::malformed(&self.name, format!("the archive has no `{path}`")))?;
        let mut buf = Vec::with_capacity(size as usize);
        self.open_at(off, size)?.read_to_end(&mut buf).io_ctx("reading", &self.file)?;
        Ok(buf)
    }

    fn open_at(&self, off: u64, size: u64) -> Result<impl Read + Send> {
        let mut f = File::open(&self.file).io_ctx("opening", &self.file)?;
        f.seek(SeekFrom::Start(off)).io_ctx("seeking in", &self.file)?;
        Ok(f.take(size))
    }

    fn index_json(&self) -> Result<Value> {
        let raw = self.read_entry("index.json")?;
        serde_json::from_slice(&raw).map_err(|e| Error::malformed(&self.name, format!("index.json is not valid JSON: {e}")))
    }

    pub(crate) fn resolve_oci(&self, tag: Option<&str>) -> Result<Descriptor> {
        if !self.entries.contains_key("oci-layout") {
            let message = if !ends_cleanly(&self.file, &self.entries) {
                "no `oci-layout` entry, and the file ends without tar's end marker: it looks truncated; write or copy it again"
            } else if self.entries.contains_key("manifest.json") {
                "not an oci-archive (no `oci-layout` entry) but a `docker save` archive: use `docker-archive:`"
            } else {
                "not an oci-archive (no `oci-layout` entry)"
            };
            return Err(Error::Reference { reference: self.name.clone(), message: message.into() });
        }
        select_from_index_json(&self.index_json()?, tag, &self.name)
    }

    /// `docker save` output. With an `index.json` (Docker 25+) the OCI side is used; `name`
    /// picks the image by its RepoTags entry when the archive holds several.
    pub(crate) fn resolve_docker(&self, name: Option<&str>) -> Result<Descriptor> {
        let raw = self.read_entry("manifest.json").map_err(|_| Error::Reference {
            reference: self.name.clone(),
            message: if !ends_cleanly(&self.file, &self.entries) {
                "no `manifest.json`, and the file ends without tar's end marker: it looks truncated; save or copy it again".into()
            } else if self.entries.contains_key("oci-layout") {
                "not a docker-archive (no `manifest.json`) but an OCI archive: use `oci-archive:`".into()
            } else {
                "not a docker-archive (no `manifest.json`); for an OCI archive use `oci-archive:`".into()
            },
        })?;
        let list: Vec<Value> = serde_json::from_slice(&raw).map_err(|e| Error::malformed(&self.name, format!("manifest.json is not valid JSON: {e}")))?;
        let tags = |m: &Value| -> Vec<String> {
            m.get("RepoTags").and_then(Value::as_array).map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
        };
        let pick = match name {
            Some(n) => list.iter().find(|m| tags(m).iter().any(|t| t == n)),
            None if list.len() == 1 => list.first(),
            None => None,
        }
        .ok_or_else(|| {
            let all: Vec<String> = list.iter().flat_map(tags).collect();
            let have = if all.is_empty() { "no names (untagged images)".to_owned() } else { format!("names: {}", all.join(", ")) };
            let message = match name {
                Some(n) => format!("no image named `{n}` in manifest.json ({have}); name one of them as `docker-archive:FILE:NAME:TAG`"),
                None => format!("{} images in manifest.json ({have}); name one as `docker-archive:FILE:NAME:TAG`", list.len()),
            };
            Error::Reference { reference: self.name.clone(), message }
        })?;
        let config_path = pick.get("Config").and_then(Value::as_str).ok_or_else(|| Error::malformed(&self.name, "manifest.json entry without Config"))?;
        let layer_paths: Vec<&str> = pick
            .get("Layers")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::malformed(&self.name, "manifest.json entry without Layers"))?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if let Some(d) = config_path.strip_prefix("blobs/sha256/").and_then(|h| Digest::parse(&format!("sha256:{h}"))) {
            // Dual format: the OCI descriptor of this image is in index.json; prefer it so the
            // manifest's digest is the one Docker reports.
            if self.entries.contains_key("index.json") {
                if let Ok(index) = self.index_json() {
                    for m in index.get("manifests").and_then(Value::as_array).into_iter().flatten() {
                        let desc = Descriptor::from_json(m, &self.name)?;
                        if media::is_manifest(&desc.media_type) {
                            let manifest: Value = serde_json::from_slice(&self.read_entry(&desc.digest.layout_path())?).unwrap_or_default();
                            if manifest.pointer("/config/digest").and_then(Value::as_str) == Some(d.as_str()) {
                                return Ok(desc);
                            }
                        }
                    }
                }
            }
        }
        self.synthesise_legacy(config_path, &layer_paths)
    }

    /// Builds a Docker v2 manifest for a legacy `docker save` image. Layers are uncompressed
    /// tars, so their digests are their diff_ids (this reads each layer once to hash it).
    fn synthesise_legacy(&self, config_path: &str, layer_paths: &[&str]) -> Result<Descriptor> {
        let config = self.read_entry(config_path)?;
        let config_digest = Digest::of(&config);
        let mut paths = self.legacy_paths.lock().expect("not poisoned");
        paths.insert(config_digest.clone(), config_path.to_owned());
        let mut layers = Vec::new();
        for p in layer_paths {
            let (off, size) = *self.entries.get(*p).ok_or_else(|| Error::MissingBlob { source_name: self.name.clone(), digest: (*p).to_owned() })?;
            let mut hw = crate::digest::HashingWriter::new(io::sink());
            io::copy(&mut self.open_at(off, size)?, &mut hw).io_ctx("hashing a layer of", &self.file)?;
            let (_, digest, _) = hw.finish();
            paths.insert(digest.clone(), (*p).to_owned());
            layers.push(json!({ "mediaType": media::DOCKER_LAYER_TAR, "digest": digest.as_str(), "size": size }));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST,
            "config": { "mediaType": media::DOCKER_CONFIG, "digest": config_digest.as_str(), "size": config.len() },
            "layers": layers,
        });
        let bytes = canonical(&manifest);
        let digest = Digest::of(&bytes);
        let desc = Descriptor::new(media::DOCKER_MANIFEST, digest.clone(), bytes.len() as u64);
        self.synthetic.lock().expect("not poisoned").insert(digest, bytes);
        Ok(desc)
    }
}

/// The compression a file starts with, by magic number.
fn compressed(magic: &[u8]) -> Option<&'static str> {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else {
        None
    }
}

/// Whether the archive ends with tar's end marker (two zero blocks after the last entry):
/// without it, a missing `manifest.json` more likely means a cut-short file than another format.
fn ends_cleanly(file: &Path, entries: &BTreeMap<String, (u64, u64)>) -> bool {
    let last = entries.values().map(|(off, size)| off + size.div_ceil(512) * 512).max().unwrap_or(0);
    std::fs::metadata(file).is_ok_and(|m| m.len() >= last + 1024)
}

impl BlobSource for ArchiveSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        if let Some(bytes) = self.synthetic.lock().expect("not poisoned").get(&desc.digest) {
            return Ok(Box::new(io::Cursor::new(bytes.clone())));
        }
        let path = self.legacy_paths.lock().expect("not poisoned").get(&desc.digest).cloned().unwrap_or_else(|| desc.digest.layout_path());
        let (off, size) = *self.entries.get(&path).ok_or_else(|| Error::MissingBlob { source_name: self.name.clone(), digest: desc.digest.to_string() })?;
        if size != desc.size {
            return Err(Error::SizeMismatch { source_name: self.name.clone(), digest: desc.digest.to_string(), expected: desc.size, found: size });
        }
        Ok(Box::new(self.open_at(off, size)?))
    }
}
