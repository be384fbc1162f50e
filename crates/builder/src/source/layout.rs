//! A base in an OCI layout directory (`oci:DIR[:TAG]`).

use super::{select_from_index_json, BlobSource};
use crate::descriptor::Descriptor;
use crate::error::{Error, IoContext, Result};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

pub(crate) struct LayoutSource {
    dir: PathBuf,
    name: String,
}

impl LayoutSource {
    pub(crate) fn open(dir: &Path, name: String) -> Result<LayoutSource> {
        let marker = dir.join("oci-layout");
        if !marker.is_file() {
            return Err(Error::Reference { reference: name, message: format!("`{}` is not an OCI layout (no `oci-layout` file)", dir.display()) });
        }
        Ok(LayoutSource { dir: dir.to_owned(), name })
    }

    pub(crate) fn resolve(&self, tag: Option<&str>) -> Result<Descriptor> {
        let path = self.dir.join("index.json");
        let raw = fs::read(&path).io_ctx("reading", &path)?;
        let index = serde_json::from_slice(&raw).map_err(|e| Error::malformed(&self.name, format!("index.json is not valid JSON: {e}")))?;
        select_from_index_json(&index, tag, &self.name)
    }

    fn blob_path(&self, desc: &Descriptor) -> PathBuf {
        self.dir.join(desc.digest.layout_path())
    }

    fn checked_path(&self, desc: &Descriptor) -> Result<PathBuf> {
        let path = self.blob_path(desc);
        match fs::metadata(&path) {
            Err(_) => Err(Error::MissingBlob { source_name: self.name.clone(), digest: desc.digest.to_string() }),
            // A size check costs no read; the digest is checked whenever the bytes are read.
            Ok(m) if m.len() != desc.size => {
                Err(Error::SizeMismatch { source_name: self.name.clone(), digest: desc.digest.to_string(), expected: desc.size, found: m.len() })
            }
            Ok(_) => Ok(path),
        }
    }
}

impl BlobSource for LayoutSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let path = self.checked_path(desc)?;
        Ok(Box::new(File::open(&path).io_ctx("opening blob", &path)?))
    }
    // No `link_to`: a blob of a layout is linked only through the store's verification.
    fn local_path(&self, desc: &Descriptor) -> Result<Option<PathBuf>> {
        self.checked_path(desc).map(Some)
    }
}
