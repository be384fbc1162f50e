//! `oci-archive:FILE[:TAG]` (a tarred OCI layout) and `docker-archive:FILE[:NAME:TAG]` (the dual
//! format of modern `docker save`: an OCI layout plus `manifest.json`, so one file serves
//! `docker load` — Docker 20.10 reads `manifest.json` — and OCI tools). Archives are written to a
//! temp file beside the destination, entries sorted, headers fixed, then renamed into place.
//! Base blobs are streamed through verbatim (never recompressed) and verified on the way.

use super::layout::OCI_LAYOUT;
use super::parent_of;
use crate::build::{Blob, BuiltImage, Origin};
use crate::digest::{unwrap_io, VerifyingReader};
use crate::error::{Error, IoContext, Result};
use crate::json::canonical;
use crate::media;
use crate::platform::Platform;
use crate::reference::ArchiveName;
use serde_json::json;
use std::io::{self, Read};
use std::path::Path;

pub(crate) fn write_oci_archive(image: &BuiltImage, file: &Path, tag: Option<&str>) -> Result<()> {
    let mut entry = json!({ "mediaType": image.top.media_type, "digest": image.top.digest.as_str(), "size": image.top.size });
    if let Some(t) = tag {
        entry["annotations"] = json!({ "org.opencontainers.image.ref.name": t });
    }
    let index = json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [entry] });
    write_archive(image, file, &canonical(&index), None, image.blobs()?)
}

pub(crate) fn write_docker_archive(image: &BuiltImage, file: &Path, name: Option<&ArchiveName>) -> Result<()> {
    if image.manifests.len() != 1 || !image.verbatim.iter().all(|d| d.is_attestation()) {
        // A copied index (pull, push) keeps its manifests verbatim: list the base's platforms.
        let platforms = if image.manifests.is_empty() { image.base.index_platforms() } else { image.platforms() };
        check_one_platform(&format!("docker-archive:{}", file.display()), "the image", &platforms)?;
    }
    let m = &image.manifests[0];
    let blob = |d: &crate::descriptor::Descriptor, origin: Origin| Blob { desc: d.clone(), origin };
    let mut blobs: Vec<Blob> = m.base_layers.iter().map(|d| blob(d, Origin::Base)).chain(m.new_layers.iter().map(|d| blob(d, Origin::Store))).collect();
    blobs.push(blob(&m.config, Origin::Inline(m.config_raw.clone())));
    blobs.push(blob(&m.desc, Origin::Inline(m.raw.clone())));

    let mut entry = json!({ "mediaType": m.desc.media_type, "digest": m.desc.digest.as_str(), "size": m.desc.size });
    let mut repo_tags = Vec::new();
    if let Some(n) = name {
        entry["annotations"] = json!({ "io.containerd.image.name": n.reference.to_string(), "org.opencontainers.image.ref.name": n.tag() });
        repo_tags.push(n.written.clone());
    }
    let index = json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [entry] });
    let layers: Vec<String> = m.base_layers.iter().chain(&m.new_layers).map(|d| d.digest.layout_path()).collect();
    let manifest_json = json!([{ "Config": m.config.digest.layout_path(), "RepoTags": repo_tags, "Layers": layers }]);
    write_archive(image, file, &canonical(&index), Some(&canonical(&manifest_json)), blobs)
}

/// A docker-archive holds one platform (its `manifest.json` names one config). The one statement
/// of the rule: `build` and `pull` check it before any work, the writer again when it writes.
/// `output` names the destination, `source` what has the `platforms`.
pub fn check_one_platform(output: &str, source: &str, platforms: &[Platform]) -> Result<()> {
    if platforms.len() <= 1 {
        return Ok(());
    }
    let list: Vec<String> = platforms.iter().map(ToString::to_string).collect();
    let pick = list.iter().find(|p| p.starts_with("linux/arm64")).unwrap_or(&list[0]);
    Err(Error::input(
        output,
        format!("a docker-archive holds one platform; {source} has {} platforms ({})", list.len(), list.join(", ")),
        Some(format!("add `--platform {pick}` (build and pull take it), or write an oci-archive")),
    ))
}

fn write_archive(image: &BuiltImage, file: &Path, index: &[u8], manifest_json: Option<&[u8]>, mut blobs: Vec<Blob>) -> Result<()> {
    let parent = parent_of(file)?;
    if file.is_dir() {
        return Err(Error::input(
            file.display().to_string(),
            "is a folder; an archive output is a file",
            Some("name a file, or use `oci:DIR` for a layout".into()),
        ));
    }
    super::check_output_file(file)?;
    let tmp = tempfile::Builder::new().prefix(".sparkctl-archive-").tempfile_in(parent).io_ctx("creating a temp file in", parent)?;
    let epoch = 0;
    let mut tar = tar::Builder::new(io::BufWriter::new(tmp));
    let add = |tar: &mut tar::Builder<_>, path: &str, size: u64, data: &mut dyn Read| -> Result<()> {
        let mut h = header(size, epoch, if path.ends_with('/') { tar::EntryType::Directory } else { tar::EntryType::Regular });
        tar.append_data(&mut h, path, data).map_err(|e| unwrap_io(e, "writing archive", file))
    };
    add(&mut tar, "blobs/", 0, &mut io::empty())?;
    add(&mut tar, "blobs/sha256/", 0, &mut io::empty())?;
    blobs.sort_by(|a, b| a.desc.digest.cmp(&b.desc.digest));
    blobs.dedup_by(|a, b| a.desc.digest == b.desc.digest);
    for blob in &blobs {
        let reader = image.open(blob)?;
        let mut reader: Box<dyn Read + '_> = match blob.origin {
            Origin::Base => Box::new(VerifyingReader::new(reader, blob.desc.digest.clone(), blob.desc.size, image.base.name())),
            _ => reader,
        };
        add(&mut tar, &blob.desc.digest.layout_path(), blob.desc.size, &mut reader)?;
    }
    add(&mut tar, "index.json", index.len() as u64, &mut &index[..])?;
    if let Some(m) = manifest_json {
        add(&mut tar, "manifest.json", m.len() as u64, &mut &m[..])?;
    }
    add(&mut tar, "oci-layout", OCI_LAYOUT.len() as u64, &mut &OCI_LAYOUT[..])?;
    let buf = tar.into_inner().map_err(|e| unwrap_io(e, "finishing archive", file))?;
    let tmp = buf.into_inner().map_err(|e| Error::Io { context: "flushing archive", path: file.to_owned(), source: e.into_error() })?;
    crate::fsutil::persist(tmp, file, "moving the archive into place at")
}

fn header(size: u64, epoch: u64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(epoch);
    h
}
