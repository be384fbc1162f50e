//! The one way the builder puts a file in place: written to a temp file on the destination's
//! filesystem, synced, then renamed over the destination. A reader sees the old file or the whole
//! new one, and a crash after the rename cannot leave an empty file under the final name.

use crate::error::{Error, IoContext, Result};
use std::io::Write;
use std::path::Path;

/// Syncs a finished temp file and renames it to `dest` (`context` names the step in errors).
pub(crate) fn persist(tmp: tempfile::NamedTempFile, dest: &Path, context: &'static str) -> Result<()> {
    tmp.as_file().sync_all().io_ctx("syncing", tmp.path().to_owned())?;
    tmp.persist(dest).map_err(|e| Error::Io { context, path: dest.to_owned(), source: e.error })?;
    Ok(())
}

/// Writes `bytes` to a temp file in `tmp_dir` (on `dest`'s filesystem) and [`persist`]s it.
pub(crate) fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8], context: &'static str) -> Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir).io_ctx("creating a temp file in", tmp_dir)?;
    tmp.write_all(bytes).io_ctx("writing", tmp.path().to_owned())?;
    persist(tmp, dest, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_destination_whole_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("index.json");
        std::fs::write(&dest, "old").unwrap();
        write_atomic(d.path(), &dest, b"new", "writing").unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "new");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "a temp file was left");
        // A destination that cannot be replaced (a folder) is an error naming it; nothing is left.
        let folder = d.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        let e = write_atomic(d.path(), &folder, b"x", "writing").unwrap_err().to_string();
        assert!(e.contains(&folder.display().to_string()), "{e}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2, "a temp file was left");
    }
}
