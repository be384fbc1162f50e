//! Log lines on stderr, each saying which node and which source (the entrypoint itself or a
//! named child) it comes from: `[spark-a entrypoint] …`, `[spark-a ray] …`.

use std::io::Write;
use std::sync::OnceLock;

static NODE: OnceLock<String> = OnceLock::new();

pub(crate) fn set_node(name: &str) {
    let _ = NODE.set(name.to_owned());
}

fn node() -> &'static str {
    NODE.get().map_or("?", String::as_str)
}

/// One line from `source` (`entrypoint`, or a child's name).
pub(crate) fn line(source: &str, text: &str) {
    // One write per line keeps lines from different threads whole.
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "[{} {source}] {text}", node());
}

pub(crate) fn info(text: &str) {
    line("entrypoint", text);
}

/// A warning meant to be seen in a long log: framed and upper-case tagged.
pub(crate) fn loud(text: &str) {
    let bar = "!".repeat(72);
    line("entrypoint", &bar);
    line("entrypoint", &format!("WARNING: {text}"));
    line("entrypoint", &bar);
}

/// Logs one formatted line as this node's entrypoint.
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::info(&format!($($t)*)) };
}
