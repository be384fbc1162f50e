//! A content-addressed blob store (`<root>/blobs/sha256/<hex>`, the OCI layout shape): new layers
//! are written here once and hard-linked into layout outputs; the registry client caches base
//! blobs here. A blob is only ever renamed into place after its digest and size were verified.

use crate::descriptor::Descriptor;
use crate::digest::{unwrap_io, Digest, HashingWriter, VerifyingReader};
use crate::error::{Error, IoContext, Result};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
/// The blob store: content-addressed blobs on disk, shared by builds, pulls and pushes.
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the blob store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore> {
        let root = root.into();
        let dir = root.join("blobs/sha256");
        fs::create_dir_all(&dir).io_ctx("creating the blob store", &dir)?;
        fs::create_dir_all(root.join("tmp")).io_ctx("creating the blob store", root.join("tmp"))?;
        Ok(BlobStore { root })
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join(digest.layout_path())
    }

    /// Present with the right size (content was verified when it was put here).
    pub fn has(&self, digest: &Digest, size: u64) -> bool {
        fs::metadata(self.path(digest)).is_ok_and(|m| m.len() == size)
    }

    /// A temp file inside the store, on the same filesystem as the blobs (for the final rename).
    pub(crate) fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        let dir = self.root.join("tmp");
        tempfile::NamedTempFile::new_in(&dir).io_ctx("creating a temp file in", &dir)
    }

    /// Moves a finished temp file to its digest path (the caller computed `digest` over its bytes).
    pub(crate) fn commit(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> Result<PathBuf> {
        let dest = self.path(digest);
        crate::fsutil::persist(tmp, &dest, "storing blob")?;
        Ok(dest)
    }

    /// Hard-links a base blob that sits on this machine (an `oci:` layout, or a registry base's
    /// layer cached here) to `dest`, verifying its bytes first unless this store already
    /// verified that very file: a verification is remembered by device, inode, size and mtime
    /// (`verified/sha256/<hex>`), so a second build on the same base reads no layer (the first
    /// invariant) while a blob changed since is read again. Returns false when the link cannot
    /// be made (the caller then streams it, verified).
    pub(crate) fn link_verified(&self, src: &Path, desc: &Descriptor, dest: &Path, source_name: &str) -> Result<bool> {
        self.verify_file(src, desc, source_name)?;
        Ok(fs::hard_link(src, dest).is_ok())
    }

    /// Verifies `src` against `desc` unless this store already verified that very file state
    /// (see [`BlobStore::link_verified`]), and remembers it.
    pub(crate) fn verify_file(&self, src: &Path, desc: &Descriptor, source_name: &str) -> Result<()> {
        let stamp = file_stamp(&fs::metadata(src).io_ctx("reading blob", src)?);
        let known = fs::read_to_string(self.record_path(&desc.digest)).unwrap_or_default();
        if !known.lines().any(|l| l == stamp) {
            let file = fs::File::open(src).io_ctx("opening blob", src)?;
            let mut reader = VerifyingReader::new(io::BufReader::new(file), desc.digest.clone(), desc.size, source_name);
            io::copy(&mut reader, &mut io::sink()).map_err(|e| unwrap_io(e, "reading blob", src))?;
            // The stamp from before the read: a file rewritten meanwhile is read again next time.
            self.record(&desc.digest, &known, &stamp)?;
        }
        Ok(())
    }

    /// Records that `file` (just hashed on its way into the store) holds `digest`, so linking
    /// it later reads nothing.
    pub(crate) fn remember_verified(&self, file: &Path, digest: &Digest) -> Result<()> {
        let stamp = file_stamp(&fs::metadata(file).io_ctx("reading blob", file)?);
        let known = fs::read_to_string(self.record_path(digest)).unwrap_or_default();
        self.record(digest, &known, &stamp)
    }

    fn record_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("verified/sha256").join(digest.hex())
    }

    /// One line per verified file (the same blob may sit in several bases), the last eight.
    fn record(&self, digest: &Digest, known: &str, stamp: &str) -> Result<()> {
        let path = self.record_path(digest);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).io_ctx("creating", dir)?;
        }
        let kept: Vec<&str> = known.lines().rev().take(7).collect();
        let lines: String = kept.into_iter().rev().chain([stamp]).map(|l| format!("{l}\n")).collect();
        crate::fsutil::write_atomic(&self.root.join("tmp"), &path, lines.as_bytes(), "recording a verified blob at")
    }

    /// A writer that hashes what it stores; `finish` renames it to its digest.
    pub(crate) fn writer(&self) -> Result<StoreWriter<'_>> {
        Ok(StoreWriter { store: self, inner: HashingWriter::new(io::BufWriter::new(self.temp_file()?)) })
    }
}

pub(crate) struct StoreWriter<'a> {
    store: &'a BlobStore,
    inner: HashingWriter<io::BufWriter<tempfile::NamedTempFile>>,
}

impl StoreWriter<'_> {
    pub(crate) fn finish(self) -> Result<(Digest, u64)> {
        let (buf, digest, size) = self.inner.finish();
        let tmp = buf.into_inner().map_err(|e| Error::Io { context: "flushing a blob", path: PathBuf::new(), source: e.into_error() })?;
        self.store.commit(tmp, &digest)?;
        Ok((digest, size))
    }
}

impl Write for StoreWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What identifies one state of a file without reading it. Not ctime: linking the blob into an
/// output changes its ctime.
fn file_stamp(m: &fs::Metadata) -> String {
    format!("dev={} ino={} size={} mtime={}.{:09}", m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec())
}

/// Places `src` at `dest` by hard link when both sit on one filesystem, else by copy.
/// Returns true when linked (no bytes were read).
pub(crate) fn link_or_copy(src: &Path, dest: &Path) -> Result<bool> {
    if fs::hard_link(src, dest).is_ok() {
        return Ok(true);
    }
    fs::copy(src, dest).io_ctx("copying blob to", dest)?;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_is_remembered_per_file_of_each_base() {
        let d = tempfile::tempdir().unwrap();
        let store = BlobStore::open(d.path().join("store")).unwrap();
        let bytes = b"layer bytes";
        let desc = Descriptor::new("application/vnd.oci.image.layer.v1.tar+gzip", Digest::of(bytes), bytes.len() as u64);
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::write(&a, bytes).unwrap();
        fs::write(&b, bytes).unwrap();
        assert!(store.link_verified(&a, &desc, &d.path().join("out-a"), "base-a").unwrap());
        assert!(store.link_verified(&b, &desc, &d.path().join("out-b"), "base-b").unwrap());
        let record = fs::read_to_string(d.path().join("store/verified/sha256").join(desc.digest.hex())).unwrap();
        assert_eq!(record.lines().count(), 2, "both bases' files are remembered: {record}");
        // Linking again verifies nothing new.
        assert!(store.link_verified(&a, &desc, &d.path().join("out-a2"), "base-a").unwrap());
        assert_eq!(fs::read_to_string(d.path().join("store/verified/sha256").join(desc.digest.hex())).unwrap(), record);
        // Other bytes under that digest: refused, nothing linked.
        let c = d.path().join("c");
        fs::write(&c, b"other bytes").unwrap();
        let wrong = Descriptor::new("application/vnd.oci.image.layer.v1.tar+gzip", Digest::of(bytes), 11);
        let e = store.link_verified(&c, &wrong, &d.path().join("out-c"), "base-c").unwrap_err().to_string();
        assert!(e.contains("digest mismatch") && e.contains("base-c"), "{e}");
        assert!(!d.path().join("out-c").exists());
    }
}
