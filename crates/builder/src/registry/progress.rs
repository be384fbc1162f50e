//! Transfer progress as events. The library only reports what happens (bytes to transfer, blobs
//! started, bytes moved, blobs done, the end of a phase) to a [`Progress`] the caller passes in;
//! whether and how that is shown (a terminal line, nothing with `--quiet`) is the caller's
//! business, as are counters for a summary.

use crate::reference::RegistryRef;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a transfer reports as it goes; every method defaults to doing nothing. One value is
/// one phase (a push, a pull, the fetches of a base), so a caller that shows phases gives each
/// its own. Called from several threads at once (blobs move in parallel).
pub trait Progress: Send + Sync {
    /// `bytes` more to transfer: a push announces all its blobs at once, a fetch each blob as it
    /// starts (less what an interrupted run had downloaded).
    fn add_total(&self, _bytes: u64) {}
    /// A blob of `size` bytes starts moving (again, when an upload is retried).
    fn blob_started(&self, _digest: &str, _size: u64) {}
    /// `bytes` more of the blob `digest` went by.
    fn advanced(&self, _digest: &str, _bytes: u64) {}
    /// The blob stopped moving: done, or failed.
    fn blob_done(&self, _digest: &str) {}
    /// The phase is over (a push sends it once its manifests are there; for fetches, which
    /// happen on demand, the caller knows when it is done with them).
    fn finished(&self) {}
}

impl std::fmt::Debug for dyn Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// Reports nothing (tests, callers that show nothing and count nothing).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

impl Phases for NoProgress {
    fn start(&self, _phase: Phase<'_>) -> Arc<dyn Progress> {
        Arc::new(NoProgress)
    }
}

/// A phase with its own [`Progress`]: a push to, or a pull from, a registry. (The fetches of a
/// registry base report to [`super::ClientOptions::progress`].)
#[derive(Debug, Clone, Copy)]
pub enum Phase<'a> {
    /// A push to this reference.
    Push(&'a RegistryRef),
    /// A pull from this reference.
    Pull(&'a RegistryRef),
}

/// Gives each phase its [`Progress`] as the phase starts: whether and how phases are shown
/// (one line each on a terminal) is the caller's business.
pub trait Phases: Send + Sync {
    /// The progress of `phase`, which starts now.
    fn start(&self, phase: Phase<'_>) -> Arc<dyn Progress>;
}

/// Passes every event on and counts the bytes moved (what a summary reports).
pub(crate) struct Tally {
    inner: Arc<dyn Progress>,
    bytes: AtomicU64,
}

impl Tally {
    pub(crate) fn new(inner: Arc<dyn Progress>) -> Arc<Tally> {
        Arc::new(Tally { inner, bytes: AtomicU64::new(0) })
    }
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Progress for Tally {
    fn add_total(&self, bytes: u64) {
        self.inner.add_total(bytes)
    }
    fn blob_started(&self, digest: &str, size: u64) {
        self.inner.blob_started(digest, size)
    }
    fn advanced(&self, digest: &str, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.inner.advanced(digest, bytes)
    }
    fn blob_done(&self, digest: &str) {
        self.inner.blob_done(digest)
    }
    fn finished(&self) {
        self.inner.finished()
    }
}

/// Reports what passes through it as progress of one blob.
pub(crate) struct CountingReader<R> {
    inner: R,
    progress: Arc<dyn Progress>,
    digest: String,
}

impl<R> CountingReader<R> {
    pub(crate) fn new(inner: R, progress: Arc<dyn Progress>, digest: &str) -> Self {
        CountingReader { inner, progress, digest: digest.to_owned() }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.progress.advanced(&self.digest, n as u64);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Count(AtomicU64);
    impl Progress for Count {
        fn advanced(&self, digest: &str, bytes: u64) {
            assert_eq!(digest, "sha256:abc");
            self.0.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    #[test]
    fn counts_through_a_reader() {
        let p = Arc::new(Count::default());
        let mut r = CountingReader::new(&b"hello world"[..], p.clone(), "sha256:abc");
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(p.0.load(Ordering::Relaxed), 11);
    }

    #[test]
    fn a_tally_counts_and_passes_every_event_on() {
        let p = Arc::new(Count::default());
        let tally = Tally::new(p.clone());
        let mut r = CountingReader::new(&b"hello"[..], tally.clone(), "sha256:abc");
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!((tally.bytes(), p.0.load(Ordering::Relaxed)), (5, 5));
    }
}
