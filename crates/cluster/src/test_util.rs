//! Helpers shared by the unit tests of this crate.

use std::fs;
use std::path::Path;

/// A file under the repository's `fixtures/` (real outputs of the tools we parse).
pub(crate) fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading fixture {}: {e}", p.display()))
}

/// Writes `content` at `root/rel`, making its folders (a test's sysfs/procfs tree).
pub(crate) fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}
