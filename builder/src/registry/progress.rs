//! Transfer progress: per-blob and total bytes with the rate, redrawn on stderr a few times a
//! second when stderr is a terminal and `--quiet` was not given; counters are kept either way for
//! the `--json` summary and the tests.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Progress {
    label: String,
    draw: bool,
    done: AtomicU64,
    total: AtomicU64,
    /// Short digest → (bytes done, size) for blobs in flight.
    active: Mutex<BTreeMap<String, (u64, u64)>>,
    start: Instant,
    stop: AtomicBool,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").field("label", &self.label).field("done", &self.bytes_done()).finish_non_exhaustive()
    }
}

impl Progress {
    /// `show`: the caller's wish (false with `--quiet`); drawing also needs a terminal.
    pub fn new(label: &str, show: bool) -> Arc<Progress> {
        let p = Arc::new(Progress {
            label: label.to_owned(),
            draw: show && std::io::stderr().is_terminal(),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            active: Mutex::new(BTreeMap::new()),
            start: Instant::now(),
            stop: AtomicBool::new(false),
        });
        if p.draw {
            let q = Arc::clone(&p);
            std::thread::spawn(move || {
                while !q.stop.load(Ordering::Relaxed) {
                    q.render(false);
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
        }
        p
    }

    pub fn add_total(&self, bytes: u64) {
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn bytes_done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn blob_started(&self, digest: &str, size: u64) {
        self.active.lock().expect("lock").insert(short(digest), (0, size));
    }
    pub fn blob_finished(&self, digest: &str) {
        self.active.lock().expect("lock").remove(&short(digest));
    }
    fn advance(&self, digest: &str, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        if let Some(e) = self.active.lock().expect("lock").get_mut(&short(digest)) {
            e.0 += n;
        }
    }

    /// Stops redrawing and prints the final line (when drawing).
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.draw {
            self.render(true);
        }
    }

    fn render(&self, last: bool) {
        let done = self.bytes_done();
        if self.total.load(Ordering::Relaxed) == 0 && done == 0 {
            return; // nothing to transfer (yet): no line at all
        }
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let mut line = format!("{}: {} / {} at {}/s", self.label, human(done), human(self.total.load(Ordering::Relaxed)), human((done as f64 / secs) as u64));
        for (d, (n, size)) in self.active.lock().expect("lock").iter().take(4) {
            line.push_str(&format!("  {d} {}%", if *size == 0 { 100 } else { n * 100 / size }));
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}{}", if last { "\n" } else { "" });
        let _ = err.flush();
    }
}

fn short(digest: &str) -> String {
    digest.trim_start_matches("sha256:").chars().take(12).collect()
}

pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Counts what passes into the progress of one blob.
pub struct CountingReader<R> {
    inner: R,
    progress: Arc<Progress>,
    digest: String,
}

impl<R> CountingReader<R> {
    pub fn new(inner: R, progress: Arc<Progress>, digest: &str) -> Self {
        CountingReader { inner, progress, digest: digest.to_owned() }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(&self.digest, n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }

    #[test]
    fn counts_through_a_reader() {
        let p = Progress::new("t", false);
        let mut r = CountingReader::new(&b"hello world"[..], Arc::clone(&p), "sha256:abc");
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(p.bytes_done(), 11);
    }
}
