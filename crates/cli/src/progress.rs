//! Progress lines of registry transfers. `builder` only reports events
//! ([`builder::registry::progress::Progress`]); here each phase (a push, a pull, the fetches of a
//! registry base) becomes one line on stderr, drawn with indicatif and redrawn in place a few
//! times a second: `LABEL: DONE / TOTAL at RATE/s` and the blobs in flight with their percentage.
//! Nothing is drawn with `--quiet` or when stderr is not a terminal; the counters are kept either
//! way (the `--json` summaries).

use builder::registry::progress::{Phase, Phases, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The lines of one command: phases that overlap (a registry-to-registry copy fetches and pushes
/// at once) each get their own.
#[derive(Debug, Clone)]
pub struct Lines {
    /// `None`: draw nothing.
    multi: Option<MultiProgress>,
}

impl Lines {
    /// `show`: the caller's wish (false with `--quiet`); drawing also needs a terminal.
    pub fn new(show: bool) -> Lines {
        Lines { multi: (show && std::io::stderr().is_terminal()).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())) }
    }

    /// A phase's line; it appears once there is something to transfer.
    pub fn line(&self, label: impl Into<String>) -> Arc<Line> {
        Arc::new(Line {
            multi: self.multi.clone(),
            bar: OnceLock::new(),
            counts: Arc::new(Counts {
                label: label.into(),
                done: AtomicU64::new(0),
                total: AtomicU64::new(0),
                active: Mutex::new(BTreeMap::new()),
                start: Instant::now(),
                last_moved: AtomicU64::new(0),
            }),
        })
    }
}

/// Each push and pull gets its line, labelled with its reference.
impl Phases for Lines {
    fn start(&self, phase: Phase<'_>) -> Arc<dyn Progress> {
        match phase {
            Phase::Push(r) => self.line(format!("push {r}")),
            Phase::Pull(r) => self.line(format!("pull {r}")),
        }
    }
}

/// One phase: counts the events and draws them.
pub struct Line {
    multi: Option<MultiProgress>,
    bar: OnceLock<ProgressBar>,
    counts: Arc<Counts>,
}

struct Counts {
    label: String,
    done: AtomicU64,
    total: AtomicU64,
    /// Short digest → (bytes done, size) for blobs in flight.
    active: Mutex<BTreeMap<String, (u64, u64)>>,
    start: Instant,
    /// Nanoseconds from `start` to the last bytes moved: with no blob in flight the rate is over
    /// the time the phase moved, so a phase that is done (the fetches of a copy, while its push
    /// goes on) keeps its rate rather than decaying until it is finished.
    last_moved: AtomicU64,
}

impl Counts {
    fn render(&self) -> String {
        let done = self.done.load(Ordering::Relaxed);
        let active = self.active.lock().expect("lock");
        let moving = if active.is_empty() { Duration::from_nanos(self.last_moved.load(Ordering::Relaxed)) } else { self.start.elapsed() };
        let secs = moving.as_secs_f64().max(0.001);
        let mut line = format!("{}: {} / {} at {}/s", self.label, human(done), human(self.total.load(Ordering::Relaxed)), human((done as f64 / secs) as u64));
        for (d, (n, size)) in active.iter().take(4) {
            line.push_str(&format!("  {d} {}%", if *size == 0 { 100 } else { n * 100 / size }));
        }
        line
    }
}

impl Line {
    /// The drawn line, made on the first bytes to show (a phase with nothing to transfer draws
    /// no line at all).
    fn bar(&self) -> Option<&ProgressBar> {
        let multi = self.multi.as_ref()?;
        Some(self.bar.get_or_init(|| {
            let counts = Arc::clone(&self.counts);
            let style = ProgressStyle::with_template("{transfer}").expect("a valid template").with_key(
                "transfer",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&counts.render());
                },
            );
            let bar = multi.add(ProgressBar::no_length().with_style(style));
            // Redrawn while nothing moves too, so the rate stays current.
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        }))
    }

    fn redraw(&self) {
        if let Some(bar) = self.bar() {
            bar.tick();
        }
    }
}

impl Progress for Line {
    fn add_total(&self, bytes: u64) {
        self.counts.total.fetch_add(bytes, Ordering::Relaxed);
        if self.counts.total.load(Ordering::Relaxed) > 0 {
            self.redraw();
        }
    }
    fn blob_started(&self, digest: &str, size: u64) {
        self.counts.active.lock().expect("lock").insert(short(digest), (0, size));
    }
    fn advanced(&self, digest: &str, bytes: u64) {
        self.counts.done.fetch_add(bytes, Ordering::Relaxed);
        self.counts.last_moved.store(self.counts.start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if let Some(e) = self.counts.active.lock().expect("lock").get_mut(&short(digest)) {
            e.0 += bytes;
        }
        if let Some(bar) = self.bar() {
            bar.inc(bytes);
        }
    }
    fn blob_done(&self, digest: &str) {
        self.counts.active.lock().expect("lock").remove(&short(digest));
    }
    /// The final state stays on its own line.
    fn finished(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish();
        }
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
    fn counts_events_without_drawing() {
        let line = Lines::new(false).line("push x");
        line.add_total(20);
        line.blob_started("sha256:0123456789abcdef", 20);
        line.advanced("sha256:0123456789abcdef", 5);
        assert_eq!(line.counts.done.load(Ordering::Relaxed), 5);
        assert!(line.counts.render().starts_with("push x: 5 B / 20 B at "), "{}", line.counts.render());
        assert!(line.counts.render().ends_with("  0123456789ab 25%"), "{}", line.counts.render());
        line.blob_done("sha256:0123456789abcdef");
        line.finished();
        assert!(line.bar.get().is_none(), "--quiet: no line");
    }
}
