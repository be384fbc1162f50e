//! Writes one reproducible layer (tar + gzip) into the blob store.
//!
//! Every byte is a function of the entries and the epoch: headers are built field by field
//! (GNU format, uid/gid 0, no user/group names, mtime = epoch), entries come sorted, and the gzip
//! stream has no name, mtime 0 and OS byte 255 from a pinned compressor (see [`COMPRESSION`]),
//! compressed in fixed blocks on several threads with the same bytes for any thread count
//! (`compress`).

use crate::compress::{default_threads, ParallelGzip};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::store::BlobStore;
use crate::tree::{Entries, Kind};
use std::fs::File;
use std::io::{self, Write};

/// Recorded in the `dev.sparkctl.layer.compression` annotation: change it with the pins in
/// Cargo.toml, and the golden digests in the tests will say the bytes moved.
pub(crate) const COMPRESSION: &str = "gzip;blocks=1MiB+dict32KiB;flate2=1.1.11;zlib-rs=0.6.8;level=6";
const LEVEL: u32 = 6;

#[derive(Debug, Clone)]
pub(crate) struct LayerBlob {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub(crate) diff_id: Digest,
}

pub(crate) fn write(store: &BlobStore, entries: &Entries, epoch: u64) -> Result<LayerBlob> {
    write_with_threads(store, entries, epoch, default_threads())
}

/// [`write`] on `threads` compression threads: the bytes are the same for any count.
pub(crate) fn write_with_threads(store: &BlobStore, entries: &Entries, epoch: u64, threads: usize) -> Result<LayerBlob> {
    let out = store.writer()?;
    let gz = ParallelGzip::new(out, LEVEL, threads).map_err(|e| Error::Io { context: "writing layer", path: store.root().into(), source: e })?;
    let mut tar = tar::Builder::new(HashingWriter::new(gz));
    tar.follow_symlinks(false);
    for e in entries.values() {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(epoch);
        h.set_mode(e.mode);
        let ctx = |err: io::Error| Error::Io { context: "writing layer entry", path: e.path.clone().into(), source: err };
        match &e.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                tar.append_data(&mut h, format!("{}/", e.path), io::empty()).map_err(ctx)?;
            }
            Kind::File { source, size } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(*size);
                let f = File::open(source).io_ctx("opening overlay file", source)?;
                // A file that changed size since the walk would make a corrupt entry: refuse.
                let actual = f.metadata().io_ctx("reading", source)?.len();
                if actual != *size {
                    return Err(Error::input(source.display().to_string(), "changed while the layer was written", Some("build again".into())));
                }
                tar.append_data(&mut h, &e.path, f).map_err(ctx)?;
            }
            Kind::Symlink { target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &e.path, target).map_err(ctx)?;
            }
            Kind::Whiteout => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(0);
                tar.append_data(&mut h, &e.path, io::empty()).map_err(ctx)?;
            }
        }
    }
    let hashing = tar.into_inner().map_err(|e| Error::Io { context: "finishing layer", path: store.root().into(), source: e })?;
    let (gz, diff_id, _) = hashing.finish();
    let mut out = gz.finish().map_err(|e| Error::Io { context: "finishing gzip", path: store.root().into(), source: e })?;
    out.flush().map_err(|e| Error::Io { context: "flushing layer", path: store.root().into(), source: e })?;
    let (digest, size) = out.finish()?;
    Ok(LayerBlob { digest, size, diff_id })
}

/// `etc/nccl.conf` → `etc/.wh.nccl.conf`.
pub(crate) fn whiteout_path(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.wh.{name}"),
        None => format!(".wh.{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Entry;

    #[test]
    fn whiteout_names() {
        assert_eq!(whiteout_path("etc/nccl.conf"), "etc/.wh.nccl.conf");
        assert_eq!(whiteout_path("x"), ".wh.x");
    }

    #[test]
    fn compression_pins_match_cargo_lock() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
        for (name, ver) in [("flate2", "1.1.11"), ("zlib-rs", "0.6.8")] {
            assert!(
                lock.contains(&format!("name = \"{name}\"\nversion = \"{ver}\"")),
                "Cargo.lock moved {name} off {ver}: update COMPRESSION and the golden digests"
            );
            assert!(COMPRESSION.contains(&format!("{name}={ver}")));
        }
    }

    #[test]
    fn same_entries_same_bytes_and_gzip_header_is_fixed() {
        let d = tempfile::tempdir().unwrap();
        let store = BlobStore::open(d.path()).unwrap();
        let mut entries = Entries::new();
        entries.insert("etc/.wh.nccl.conf".into(), Entry { path: "etc/.wh.nccl.conf".into(), kind: Kind::Whiteout, mode: 0o644 });
        let a = write(&store, &entries, 0).unwrap();
        let b = write(&store, &entries, 0).unwrap();
        assert_eq!(a.digest, b.digest);
        let bytes = std::fs::read(store.path(&a.digest)).unwrap();
        assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255], "gzip header: no flags, mtime 0, OS 255");
        let c = write(&store, &entries, 1).unwrap();
        assert_ne!(a.diff_id, c.diff_id, "the epoch is in the tar headers");
    }

    #[test]
    fn the_same_layer_for_1_2_and_8_threads_is_byte_identical() {
        let d = tempfile::tempdir().unwrap();
        let store = BlobStore::open(d.path().join("store")).unwrap();
        let mut entries = Entries::new();
        // ~5 MB over several files: the tar crosses several compression blocks.
        for i in 0..5u8 {
            let path = format!("opt/f{i}");
            let source = d.path().join(format!("f{i}"));
            let body: Vec<u8> = (0..1_000_003u32).map(|j| if j % 3 == 0 { (j.wrapping_mul(2_654_435_761) >> 24) as u8 } else { i }).collect();
            std::fs::write(&source, &body).unwrap();
            entries.insert(path.clone(), Entry { path, kind: Kind::File { source, size: body.len() as u64 }, mode: 0o644 });
        }
        let one = write_with_threads(&store, &entries, 0, 1).unwrap();
        for t in [2, 8] {
            let other = write_with_threads(&store, &entries, 0, t).unwrap();
            assert_eq!(other.digest, one.digest, "{t} threads");
            assert_eq!(other.size, one.size);
            assert_eq!(other.diff_id, one.diff_id);
        }
    }
}
