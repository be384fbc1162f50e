//! Writers for built images: OCI layout directory, oci-archive, docker-archive. Each writes to a
//! temp path and renames it into place, so a failed build leaves nothing behind (invariant 3).

mod archive;
mod layout;

pub use archive::check_one_platform;
pub(crate) use archive::write_docker_archive;
pub(crate) use archive::write_oci_archive;
pub(crate) use layout::write_layout;

use crate::build::{Blob, BuiltImage, Origin};
use crate::digest::{unwrap_io, VerifyingReader};
use crate::error::{Error, IoContext, Result};
use crate::reference::LocalRef;
use std::io::{self, Write};
use std::path::Path;

/// Writes `image` to a local reference (registry outputs are pushed: [`crate::write`]).
pub fn write(image: &BuiltImage, dest: &LocalRef) -> Result<()> {
    match dest {
        LocalRef::Oci { dir, tag } => write_layout(image, dir, tag.as_deref()),
        LocalRef::OciArchive { file, tag } => write_oci_archive(image, file, tag.as_deref()),
        LocalRef::DockerArchive { file, name } => write_docker_archive(image, file, name.as_ref()),
    }
}

/// Copies a blob's bytes to `w`, verifying base blobs against their descriptor on the way.
pub(crate) fn copy_blob(image: &BuiltImage, blob: &Blob, w: &mut dyn Write, dest: &Path) -> Result<u64> {
    let reader = image.open(blob)?;
    let n = match blob.origin {
        Origin::Base => io::copy(&mut VerifyingReader::new(reader, blob.desc.digest.clone(), blob.desc.size, image.base.name()), w),
        _ => io::copy(&mut { reader }, w),
    }
    .map_err(|e| unwrap_io(e, "writing blob to", dest))?;
    if n != blob.desc.size {
        return Err(Error::SizeMismatch { source_name: image.base.name().into(), digest: blob.desc.digest.to_string(), expected: blob.desc.size, found: n });
    }
    Ok(n)
}

/// An output file is renamed over whatever has its name: only a regular file or nothing may be
/// there. A device node, FIFO, socket or folder would be replaced by a regular file (as root,
/// `/dev/null` would become one), a symlink by a file instead of its target.
pub fn check_output_file(path: &Path) -> Result<()> {
    let Ok(m) = std::fs::symlink_metadata(path) else { return Ok(()) };
    let ft = m.file_type();
    use std::os::unix::fs::FileTypeExt;
    let what = if ft.is_file() {
        return Ok(());
    } else if ft.is_dir() {
        "a folder"
    } else if ft.is_symlink() {
        "a symlink"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    };
    let hint = if ft.is_symlink() { "name the file itself, or a new file" } else { "name a new file or a regular file to replace" };
    Err(Error::input(path.display().to_string(), format!("is {what}; an output file may only replace a regular file"), Some(hint.into())))
}

/// Places the parent folder of an output, naming the output in the error.
pub(crate) fn parent_of(path: &Path) -> Result<&Path> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Error::input(path.display().to_string(), format!("output folder `{}` does not exist", parent.display()), Some("create it first".into())));
    }
    std::fs::metadata(parent).io_ctx("reading", parent)?;
    Ok(parent)
}
