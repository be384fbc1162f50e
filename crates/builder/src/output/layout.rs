//! `oci:DIR[:TAG]`: an OCI image layout. A new directory is assembled beside its final name and
//! renamed into place; an existing layout gets its new blobs first and its `index.json` replaced
//! atomically last (blobs are content-addressed, so readers never see a broken image).

use super::{copy_blob, parent_of};
use crate::build::{BuiltImage, Origin};
use crate::error::{Error, IoContext, Result};
use crate::json::canonical;
use crate::store::link_or_copy;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

pub(super) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

pub(crate) fn write_layout(image: &BuiltImage, dir: &Path, tag: Option<&str>) -> Result<()> {
    if dir.exists() {
        if !dir.join("oci-layout").is_file() {
            return Err(Error::input(dir.display().to_string(), "exists and is not an OCI layout", Some("choose a new folder or remove it".into())));
        }
        let mut added = Vec::new();
        let result = write_blobs(image, dir, &mut added).and_then(|()| update_index(image, dir, tag));
        if result.is_err() {
            for p in added {
                let _ = fs::remove_file(p);
            }
        }
        return result;
    }
    let parent = parent_of(dir)?;
    let tmp = tempfile::Builder::new().prefix(".sparkctl-layout-").tempdir_in(parent).io_ctx("creating a temp folder in", parent)?;
    fs::write(tmp.path().join("oci-layout"), OCI_LAYOUT).io_ctx("writing", tmp.path().join("oci-layout"))?;
    write_blobs(image, tmp.path(), &mut Vec::new())?;
    update_index(image, tmp.path(), tag)?;
    let tmp = tmp.keep();
    fs::rename(&tmp, dir).map_err(|e| {
        let _ = fs::remove_dir_all(&tmp);
        Error::Io { context: "moving the layout into place at", path: dir.to_owned(), source: e }
    })?;
    Ok(())
}

fn write_blobs(image: &BuiltImage, dir: &Path, added: &mut Vec<PathBuf>) -> Result<()> {
    let blobs_dir = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs_dir).io_ctx("creating", &blobs_dir)?;
    for blob in image.blobs()? {
        let dest = dir.join(blob.desc.digest.layout_path());
        if fs::metadata(&dest).is_ok_and(|m| m.len() == blob.desc.size) {
            continue;
        }
        // Base and store blobs are linked, not copied (invariant 1): a local base blob is read once
        // to verify it, then never again while the file is unchanged.
        let linked = match blob.origin {
            Origin::Store => {
                link_or_copy(&image.store.path(&blob.desc.digest), &dest)?;
                true
            }
            Origin::Base => match image.base.source.local_path(&blob.desc)? {
                Some(src) => image.store.link_verified(&src, &blob.desc, &dest, image.base.name())?,
                None => image.base.source.link_to(&blob.desc, &dest)?,
            },
            Origin::Inline(_) => false,
        };
        if !linked {
            let mut tmp = tempfile::NamedTempFile::new_in(&blobs_dir).io_ctx("creating a temp file in", &blobs_dir)?;
            copy_blob(image, &blob, tmp.as_file_mut(), &dest)?;
            crate::fsutil::persist(tmp, &dest, "writing blob")?;
        }
        added.push(dest);
    }
    Ok(())
}

/// Adds the image to `index.json`, replacing an entry with the same tag.
fn update_index(image: &BuiltImage, dir: &Path, tag: Option<&str>) -> Result<()> {
    let path = dir.join("index.json");
    let mut index: Value = match fs::read(&path) {
        Ok(raw) => serde_json::from_slice(&raw).map_err(|e| Error::malformed(dir.display().to_string(), format!("index.json is not valid JSON: {e}")))?,
        Err(_) => json!({ "schemaVersion": 2, "mediaType": crate::media::OCI_INDEX, "manifests": [] }),
    };
    let mut entry = json!({ "mediaType": image.top.media_type, "digest": image.top.digest.as_str(), "size": image.top.size });
    if let Some(t) = tag {
        entry["annotations"] = json!({ "org.opencontainers.image.ref.name": t });
    }
    let list = index["manifests"].as_array_mut().ok_or_else(|| Error::malformed(dir.display().to_string(), "index.json without `manifests`"))?;
    list.retain(|m| match tag {
        Some(t) => m.pointer("/annotations/org.opencontainers.image.ref.name").and_then(Value::as_str) != Some(t),
        None => m.get("digest").and_then(Value::as_str) != Some(image.top.digest.as_str()),
    });
    list.push(entry);
    crate::fsutil::write_atomic(dir, &path, &canonical(&index), "writing")
}
