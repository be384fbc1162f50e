//! Files the entrypoint writes for others to read (status, restart history, vLLM's config):
//! whole or not at all.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `content` to a temp file beside `path`, syncs it and renames it over `path`, so a
/// reader (or a crash) never sees half a file.
pub(crate) fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = PathBuf::from(format!("{}.tmp{}", path.display(), std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
