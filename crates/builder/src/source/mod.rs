//! Reading a base image: its index (if any), platform manifests and configs, verified; layer
//! blobs stay where they are until an output asks for them (ARCHITECTURE.md invariant 1).

mod archive;
mod layout;

pub(crate) use archive::ArchiveSource;
pub(crate) use layout::LayoutSource;

use crate::descriptor::Descriptor;
use crate::digest::{verify_bytes, Digest};
use crate::error::{Error, Result};
use crate::media;
use crate::reference::LocalRef;
use serde_json::Value;
use std::io::Read;
use std::path::Path;

/// Where the blobs of an image come from. Implementations: an OCI layout directory, a tar archive
/// (oci-archive, docker-archive), a registry (the registry module).
pub trait BlobSource: Send + Sync {
    /// Human name of the source for errors, e.g. `oci:/tmp/base:latest`.
    fn name(&self) -> &str;
    /// Streams a blob. The caller verifies (wrap in `VerifyingReader`); `read_verified` does it for small blobs.
    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>>;
    /// Hard-links the blob to `dest` without reading it, when the source is a file on this
    /// machine; `Ok(false)` when it cannot (the caller then streams it).
    fn link_to(&self, _desc: &Descriptor, _dest: &Path) -> Result<bool> {
        Ok(false)
    }
    /// The blob's file when the source is a folder on this machine (an OCI layout): outputs link
    /// it after the blob store verified it once (`crate::store::BlobStore::link_verified`).
    fn local_path(&self, _desc: &Descriptor) -> Result<Option<std::path::PathBuf>> {
        Ok(None)
    }
    /// Reads a small blob (manifest, config, index) whole, verified against its descriptor.
    fn read_verified(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        const LIMIT: u64 = 64 << 20;
        if desc.size > LIMIT {
            return Err(Error::malformed(self.name(), format!("{} is {} bytes, too large for a manifest or config", desc.digest, desc.size)));
        }
        let mut bytes = Vec::with_capacity(desc.size as usize);
        self.open(desc)?.take(desc.size + 1).read_to_end(&mut bytes).map_err(|e| Error::Io {
            context: "reading blob from",
            path: self.name().into(),
            source: e,
        })?;
        verify_bytes(&bytes, &desc.digest, desc.size, self.name())?;
        Ok(bytes)
    }
}

/// One platform image of the base: its manifest and config, raw and parsed.
#[derive(Debug, Clone)]
pub struct BaseManifest {
    pub(crate) desc: Descriptor,
    pub(crate) raw: Vec<u8>,
    pub(crate) json: Value,
    pub(crate) config_desc: Descriptor,
    pub(crate) config_raw: Vec<u8>,
    /// The manifest's layers.
    pub layers: Vec<Descriptor>,
}

/// The top of the base: an index (multi-platform) or one manifest.
// One per image read: the size difference costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum BaseTop {
    /// An index (multi-platform).
    Index {
        /// The index's descriptor.
        desc: Descriptor,
        /// The index's bytes.
        raw: Vec<u8>,
        /// The index's JSON.
        json: Value,
    },
    /// One manifest (the single entry).
    Manifest,
}

/// A base image, read shallowly: everything but the layer contents.
pub struct BaseImage {
    /// The index, or one manifest.
    pub top: BaseTop,
    /// Entries of the index in their order (or the single manifest): runnable images are
    /// `Some(manifest)`; other entries (attestations, unknown platforms) are `None`, kept as raw descriptors.
    pub entries: Vec<(Descriptor, Option<BaseManifest>)>,
    /// Where the base's blobs are read from.
    pub source: Box<dyn BlobSource>,
}

impl BaseImage {
    /// Reads the top descriptor's blob and everything under it that a build needs.
    pub(crate) fn read(source: Box<dyn BlobSource>, top: Descriptor) -> Result<BaseImage> {
        if media::is_index(&top.media_type) {
            let raw = source.read_verified(&top)?;
            let json: Value = parse_json(&raw, source.name(), "index")?;
            let list = json.get("manifests").and_then(Value::as_array).ok_or_else(|| Error::malformed(source.name(), "index without `manifests`"))?;
            let mut entries = Vec::new();
            for m in list {
                let desc = Descriptor::from_json(m, source.name())?;
                let manifest = if media::is_manifest(&desc.media_type) && !desc.is_attestation() && desc.platform.is_some() {
                    Some(read_manifest(source.as_ref(), &desc)?)
                } else {
                    None
                };
                entries.push((desc, manifest));
            }
            Ok(BaseImage { top: BaseTop::Index { desc: top, raw, json }, entries, source })
        } else if media::is_manifest(&top.media_type) {
            let manifest = read_manifest(source.as_ref(), &top)?;
            Ok(BaseImage { top: BaseTop::Manifest, entries: vec![(top, Some(manifest))], source })
        } else {
            Err(Error::MediaType {
                source_name: source.name().into(),
                what: "the image".into(),
                found: top.media_type.clone(),
                expected: "an OCI/Docker index or manifest".into(),
            })
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.source.name()
    }

    /// The platforms of an index's runnable entries (empty for a single manifest, whose
    /// platform is in its config).
    pub(crate) fn index_platforms(&self) -> Vec<crate::platform::Platform> {
        match self.top {
            BaseTop::Manifest => Vec::new(),
            BaseTop::Index { .. } => self.entries.iter().filter(|(_, m)| m.is_some()).filter_map(|(d, _)| d.platform.clone()).collect(),
        }
    }

    /// The image of one platform of an index, as a single-manifest image (what a one-platform
    /// output such as a docker-archive holds). A single manifest is returned as it is.
    pub(crate) fn only_platform(mut self, want: &crate::platform::Platform) -> Result<BaseImage> {
        if matches!(self.top, BaseTop::Manifest) {
            return Ok(self);
        }
        let have = self.index_platforms();
        let Some(i) = self.entries.iter().position(|(d, m)| m.is_some() && d.platform.as_ref().is_some_and(|p| want.satisfied_by(p))) else {
            let available = have.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            return Err(Error::MissingPlatform {
                source_name: self.name().into(),
                platform: want.to_string(),
                available: if available.is_empty() { "none".into() } else { available },
            });
        };
        let entry = self.entries.swap_remove(i);
        Ok(BaseImage { top: BaseTop::Manifest, entries: vec![entry], source: self.source })
    }

    /// The digest that identifies the base (index digest, or manifest digest when single).
    pub fn digest(&self) -> &Digest {
        match &self.top {
            BaseTop::Index { desc, .. } => &desc.digest,
            BaseTop::Manifest => &self.entries[0].0.digest,
        }
    }
}

fn parse_json(raw: &[u8], source_name: &str, what: &str) -> Result<Value> {
    serde_json::from_slice(raw).map_err(|e| Error::malformed(source_name, format!("{what} is not valid JSON: {e}")))
}

/// Reads and verifies one platform manifest and its config.
pub(crate) fn read_manifest(source: &dyn BlobSource, desc: &Descriptor) -> Result<BaseManifest> {
    let raw = source.read_verified(desc)?;
    let json = parse_json(&raw, source.name(), "manifest")?;
    if let Some(mt) = json.get("mediaType").and_then(Value::as_str) {
        if mt != desc.media_type {
            return Err(Error::MediaType {
                source_name: source.name().into(),
                what: format!("manifest {}", desc.digest),
                found: mt.into(),
                expected: format!("`{}` as its descriptor says", desc.media_type),
            });
        }
    }
    let config_desc = Descriptor::from_json(
        json.get("config").ok_or_else(|| Error::malformed(source.name(), format!("manifest {} has no config", desc.digest)))?,
        source.name(),
    )?;
    if !media::is_config(&config_desc.media_type) {
        return Err(Error::MediaType {
            source_name: source.name().into(),
            what: format!("config of {}", desc.digest),
            found: config_desc.media_type.clone(),
            expected: format!("`{}` or `{}`", media::OCI_CONFIG, media::DOCKER_CONFIG),
        });
    }
    let config_raw = source.read_verified(&config_desc)?;
    parse_json(&config_raw, source.name(), "config")?;
    let layers = json
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::malformed(source.name(), format!("manifest {} has no layers", desc.digest)))?
        .iter()
        .map(|l| Descriptor::from_json(l, source.name()))
        .collect::<Result<Vec<_>>>()?;
    Ok(BaseManifest { desc: desc.clone(), raw, json, config_desc, config_raw, layers })
}

/// Opens a base from a local reference (`oci:`, `oci-archive:`, `docker-archive:`); registry
/// bases are opened by the registry module ([`crate::open`] opens either).
pub fn open_local(r: &LocalRef) -> Result<BaseImage> {
    match r {
        LocalRef::Oci { dir, tag } => {
            let src = LayoutSource::open(dir, r.to_string())?;
            let top = src.resolve(tag.as_deref())?;
            BaseImage::read(Box::new(src), top)
        }
        LocalRef::OciArchive { file, tag } => {
            let src = ArchiveSource::open(file, r.to_string())?;
            let top = src.resolve_oci(tag.as_deref())?;
            BaseImage::read(Box::new(src), top)
        }
        LocalRef::DockerArchive { file, name } => {
            let src = ArchiveSource::open(file, r.to_string())?;
            let top = src.resolve_docker(name.as_ref().map(|n| n.written.as_str()))?;
            BaseImage::read(Box::new(src), top)
        }
    }
}

/// Picks the entry of an `index.json` for a tag: by `org.opencontainers.image.ref.name`, or the
/// only entry when no tag is given.
pub(crate) fn select_from_index_json(index: &Value, tag: Option<&str>, source_name: &str) -> Result<Descriptor> {
    let manifests = index.get("manifests").and_then(Value::as_array).ok_or_else(|| Error::malformed(source_name, "index.json without `manifests`"))?;
    let descs = manifests.iter().map(|m| Descriptor::from_json(m, source_name)).collect::<Result<Vec<_>>>()?;
    let names: Vec<String> = descs.iter().filter_map(|d| d.annotation("org.opencontainers.image.ref.name").map(str::to_owned)).collect();
    match tag {
        Some(t) => descs.into_iter().find(|d| d.annotation("org.opencontainers.image.ref.name") == Some(t)).ok_or_else(|| Error::Reference {
            reference: source_name.into(),
            message: format!("no image tagged `{t}` (tags: {})", if names.is_empty() { "none".into() } else { names.join(", ") }),
        }),
        None if descs.len() == 1 => Ok(descs.into_iter().next().expect("one")),
        None => Err(Error::Reference {
            reference: source_name.into(),
            message: format!("{} images in the layout; name one with `:TAG` (tags: {})", descs.len(), names.join(", ")),
        }),
    }
}
