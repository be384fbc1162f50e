//! The layer cache: a layer is written once per distinct input. Its key hashes everything the
//! layer's bytes are a function of (each entry's path, kind, mode and content or target, the epoch,
//! and the compressor's identity [`COMPRESSION`]); the record, `<store>/cache/layers/<key hex>`,
//! names the blob, which must still be in the store with its size for a hit. A rebuild where no
//! overlay changed therefore reads the overlay files (to hash them) but compresses nothing.

use crate::digest::{Digest, HashingWriter};
use crate::error::{IoContext, Result};
use crate::layer::{self, LayerBlob, COMPRESSION};
use crate::store::BlobStore;
use crate::tree::{Entries, Kind};
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io;
use std::path::PathBuf;

/// Bump when the record format or what the key covers changes.
const VERSION: &str = "sparkctl layer cache v1";

/// A cache key (sha256 over length-prefixed fields, so no two inputs share an encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key(Digest);

/// Builds a key from fields; [`KeyBuilder::finish`] adds the compressor's identity and the epoch.
pub(crate) struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub(crate) fn new(kind: &str) -> KeyBuilder {
        let mut b = KeyBuilder(Sha256::new());
        b.field(VERSION.as_bytes()).field(kind.as_bytes());
        b
    }
    pub(crate) fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }
    pub(crate) fn finish(mut self, epoch: u64) -> Key {
        self.field(COMPRESSION.as_bytes()).field(&epoch.to_le_bytes());
        Key(Digest::from_hasher(self.0))
    }
}

/// The key of the layer [`layer::write`] makes of `entries`: file contents are hashed, so a file
/// touched but unchanged still hits and a changed one misses whatever its mtime says.
pub(crate) fn key_of_entries(entries: &Entries, epoch: u64) -> Result<Key> {
    let mut k = KeyBuilder::new("tree");
    for e in entries.values() {
        k.field(e.path.as_bytes()).field(&e.mode.to_le_bytes());
        match &e.kind {
            Kind::Dir => {
                k.field(b"dir");
            }
            Kind::Whiteout => {
                k.field(b"whiteout");
            }
            Kind::Symlink { target } => {
                k.field(b"symlink").field(target.as_bytes());
            }
            Kind::File { source, size } => {
                let mut h = HashingWriter::new(io::sink());
                let mut f = fs::File::open(source).io_ctx("opening overlay file", source)?;
                io::copy(&mut f, &mut h).io_ctx("reading overlay file", source)?;
                let (_, digest, n) = h.finish();
                // A size other than the walk's makes a different (refused) layer: key it apart.
                k.field(b"file").field(&size.to_le_bytes()).field(&n.to_le_bytes()).field(digest.as_str().as_bytes());
            }
        }
    }
    Ok(k.finish(epoch))
}

fn record_path(store: &BlobStore, key: &Key) -> PathBuf {
    store.root().join("cache/layers").join(key.0.hex())
}

/// The cached layer for `key`, if its record parses and its blob is in the store.
pub(crate) fn lookup(store: &BlobStore, key: &Key) -> Option<LayerBlob> {
    let text = fs::read_to_string(record_path(store, key)).ok()?;
    let mut it = text.split_whitespace();
    let digest = Digest::parse(it.next()?)?;
    let size: u64 = it.next()?.parse().ok()?;
    let diff_id = Digest::parse(it.next()?)?;
    store.has(&digest, size).then_some(LayerBlob { digest, size, diff_id })
}

/// Records `blob` under `key` (temp file + rename: a reader never sees half a record).
pub(crate) fn record(store: &BlobStore, key: &Key, blob: &LayerBlob) -> Result<()> {
    let dest = record_path(store, key);
    let dir = dest.parent().expect("record paths have a folder");
    fs::create_dir_all(dir).io_ctx("creating the layer cache", dir)?;
    let line = format!("{} {} {}\n", blob.digest, blob.size, blob.diff_id);
    crate::fsutil::write_atomic(&store.root().join("tmp"), &dest, line.as_bytes(), "storing layer cache record")
}

/// [`layer::write`] through the cache.
pub(crate) fn write(store: &BlobStore, entries: &Entries, epoch: u64) -> Result<LayerBlob> {
    let key = key_of_entries(entries, epoch)?;
    if let Some(hit) = lookup(store, &key) {
        return Ok(hit);
    }
    let blob = layer::write(store, entries, epoch)?;
    record(store, &key, &blob)?;
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Entry;

    fn file_entries(dir: &std::path::Path, body: &str) -> Entries {
        let source = dir.join("f");
        fs::write(&source, body).unwrap();
        let mut e = Entries::new();
        e.insert("etc/f".into(), Entry { path: "etc/f".into(), kind: Kind::File { source, size: body.len() as u64 }, mode: 0o644 });
        e
    }

    #[test]
    fn hit_on_same_content_miss_on_change_and_on_a_lost_blob() {
        let d = tempfile::tempdir().unwrap();
        let store = BlobStore::open(d.path().join("store")).unwrap();
        let e = file_entries(d.path(), "one");
        let a = write(&store, &e, 0).unwrap();
        let key = key_of_entries(&e, 0).unwrap();
        assert_eq!(lookup(&store, &key).unwrap().digest, a.digest);
        // Same content, new mtime: a hit.
        filetime_touch(&d.path().join("f"));
        assert_eq!(key_of_entries(&e, 0).unwrap(), key);
        // Other content (same size), other mode, other epoch: misses.
        let changed = file_entries(d.path(), "two");
        assert_ne!(key_of_entries(&changed, 0).unwrap(), key);
        let mut moded = e.clone();
        moded.get_mut("etc/f").unwrap().mode = 0o755;
        assert_ne!(key_of_entries(&moded, 0).unwrap(), key);
        assert_ne!(key_of_entries(&e, 1).unwrap(), key);
        // The blob gone from the store: no hit, and a write puts it back.
        fs::write(d.path().join("f"), "one").unwrap();
        fs::remove_file(store.path(&a.digest)).unwrap();
        assert!(lookup(&store, &key).is_none());
        let again = write(&store, &e, 0).unwrap();
        assert_eq!(again.digest, a.digest);
        assert!(store.has(&a.digest, a.size));
    }

    #[test]
    fn a_garbled_record_is_a_miss() {
        let d = tempfile::tempdir().unwrap();
        let store = BlobStore::open(d.path().join("store")).unwrap();
        let e = file_entries(d.path(), "x");
        write(&store, &e, 0).unwrap();
        let key = key_of_entries(&e, 0).unwrap();
        fs::write(record_path(&store, &key), "sha256:zz 1 nope").unwrap();
        assert!(lookup(&store, &key).is_none());
    }

    fn filetime_touch(p: &std::path::Path) {
        assert!(std::process::Command::new("touch").args(["-d", "2001-01-01"]).arg(p).status().unwrap().success());
    }
}
