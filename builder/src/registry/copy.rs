//! Copying an image that already exists (a base read from a layout, an archive or a registry):
//! the ordered blob list a push needs, and a plain OCI layout writer for `pull`.

use super::push::{BlobData, PushItem};
use crate::descriptor::Descriptor;
use crate::digest::{unwrap_io, Digest, VerifyingReader};
use crate::error::{Error, IoContext, Result};
use crate::media;
use crate::source::{read_manifest, BaseImage, BaseTop};
use serde_json::json;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Every blob of `base` in push order: each platform's layers and config, then its manifest,
/// then the index. Entries the builder does not run (attestations) are copied too.
pub fn push_items(base: &BaseImage) -> Result<Vec<PushItem<'_>>> {
    let src = base.source.as_ref();
    let mut seen = BTreeSet::new();
    let mut items = Vec::new();
    let mut add = |items: &mut Vec<PushItem<'_>>, desc: Descriptor, data| {
        if seen.insert(desc.digest.clone()) {
            items.push(PushItem { desc, data });
        }
    };
    for (desc, manifest) in &base.entries {
        let m = match manifest {
            Some(m) => m.clone(),
            None if media::is_manifest(&desc.media_type) => read_manifest(src, desc)?,
            None => return Err(Error::MediaType { source_name: base.name().into(), what: format!("index entry {}", desc.digest), found: desc.media_type.clone(), expected: "a manifest".into() }),
        };
        for layer in &m.layers {
            add(&mut items, layer.clone(), BlobData::Source(src));
        }
        add(&mut items, m.config_desc.clone(), BlobData::Memory(Arc::new(m.config_raw.clone())));
        add(&mut items, desc.clone(), BlobData::Memory(Arc::new(m.raw.clone())));
    }
    if let BaseTop::Index { desc, raw, .. } = &base.top {
        add(&mut items, desc.clone(), BlobData::Memory(Arc::new(raw.clone())));
    }
    Ok(items)
}

/// The descriptor of the image as a whole (index, or the single manifest).
pub fn top_descriptor(base: &BaseImage) -> Descriptor {
    match &base.top {
        BaseTop::Index { desc, .. } => desc.clone(),
        BaseTop::Manifest => base.entries[0].0.clone(),
    }
}

/// Writes `base` with all its blobs as a new OCI layout at `dir` (tagged `tag`). The layout is
/// assembled in a temp directory beside `dir` and renamed into place: nothing half-written.
pub fn write_layout(base: &BaseImage, dir: &Path, tag: Option<&str>) -> Result<Digest> {
    if dir.exists() && fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Error::input(dir.display().to_string(), "exists and is not empty", Some("remove it or name a new directory".into())));
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).io_ctx("creating", parent)?;
    let tmp = tempfile::Builder::new().prefix(".sparkctl-pull-").tempdir_in(parent).io_ctx("creating a temp dir in", parent)?;
    let blobs = tmp.path().join("blobs/sha256");
    fs::create_dir_all(&blobs).io_ctx("creating", &blobs)?;
    for item in push_items(base)? {
        let dest = tmp.path().join(item.desc.digest.layout_path());
        match &item.data {
            BlobData::Memory(b) => fs::write(&dest, b.as_slice()).io_ctx("writing", &dest)?,
            BlobData::File(p) => {
                crate::store::link_or_copy(p, &dest)?;
            }
            BlobData::Source(src) => {
                if !src.link_to(&item.desc, &dest)? {
                    let mut r = VerifyingReader::new(src.open(&item.desc)?, item.desc.digest.clone(), item.desc.size, src.name());
                    let mut f = fs::File::create(&dest).io_ctx("creating", &dest)?;
                    io::copy(&mut r, &mut f).map_err(|e| unwrap_io(e, "writing", &dest))?;
                }
            }
        }
    }
    let top = top_descriptor(base);
    let mut entry = top.raw.clone();
    if let Some(t) = tag {
        entry["annotations"] = json!({ "org.opencontainers.image.ref.name": t });
    }
    let index = json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [entry] });
    fs::write(tmp.path().join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).io_ctx("writing", tmp.path())?;
    fs::write(tmp.path().join("index.json"), serde_json::to_vec(&index).expect("json")).io_ctx("writing", tmp.path())?;
    if dir.exists() {
        fs::remove_dir(dir).io_ctx("replacing the empty directory", dir)?;
    }
    let kept = tmp.keep();
    fs::rename(&kept, dir).io_ctx("moving the layout into place at", dir)?;
    Ok(top.digest)
}
