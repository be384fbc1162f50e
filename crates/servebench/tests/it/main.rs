//! servebench's integration tests: the parsers on recorded streams, and the load generator's
//! metrics against the stand-in server told known delays.

mod load;
mod replay;
mod shapes;
mod sse;

use std::path::PathBuf;

pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/openai_sse").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The fixture without its `# source:` comment lines.
pub fn fixture_body(name: &str) -> String {
    fixture(name).lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect()
}
