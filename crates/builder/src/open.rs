//! Opening an image for the image commands: a local one directly, a registry one shallowly
//! (index, manifests, configs; layers land in the store only when read), and a build's base,
//! which a lock file beside the recipe (`images/X.lock.json`) may pin.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::{ImageRef, RegistryRef};
use crate::registry::{self, lock, Remote};
use crate::source::{open_local, BaseImage};
use std::path::{Path, PathBuf};

/// Opens any image.
pub fn image(r: &ImageRef, remote: &Remote) -> Result<BaseImage> {
    match r {
        ImageRef::Local(local) => open_local(local),
        ImageRef::Registry(reg) => Ok(registry::open_base(reg, &remote.options, Some(remote.store.clone()))?.0),
    }
}

/// What the lock file beside a recipe is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockFile {
    /// Read the base's metadata from it when there is one (no network for the metadata).
    Read,
    /// Resolve the base from its registry and (re)write the lock (`build --lock`).
    Write,
}

/// A build's base, and the lock written for it.
pub struct BuildBase {
    /// The base, read shallowly.
    pub image: BaseImage,
    /// The lock file written, when the base was pinned by it.
    pub locked: Option<Locked>,
}

/// A lock file written: `reference` pinned at `digest` in `path`.
#[derive(Debug, Clone)]
pub struct Locked {
    /// The registry reference pinned.
    pub reference: RegistryRef,
    /// The digest it is pinned at.
    pub digest: Digest,
    /// The lock file.
    pub path: PathBuf,
}

/// Opens the base of the build of `recipe`. A registry base is read from the lock file beside
/// the recipe when there is one and it locks the same reference (a mismatch is an error that
/// says to lock again), else shallowly from its registry; [`LockFile::Write`] resolves it from
/// the registry and (re)writes the lock. Only registry bases are locked.
pub fn build_base(base: &ImageRef, recipe: &Path, lock_file: LockFile, remote: &Remote) -> Result<BuildBase> {
    let reg = match base {
        ImageRef::Local(local) if lock_file == LockFile::Write => {
            return Err(Error::input("--lock", format!("base `{local}` is not a registry base; only docker:// bases are locked"), None));
        }
        ImageRef::Local(local) => return Ok(BuildBase { image: open_local(local)?, locked: None }),
        ImageRef::Registry(reg) => reg,
    };
    let lock_path = lock::path_for(recipe);
    if lock_file == LockFile::Read && lock_path.exists() {
        let locked = lock::read(&lock_path)?;
        let same = locked.reference.registry == reg.registry && locked.reference.repository == reg.repository && locked.reference.tag == reg.tag;
        let pinned_ok = !matches!(&reg.digest, Some(d) if Some(d) != locked.reference.digest.as_ref());
        if !same || !pinned_ok {
            return Err(Error::input(
                lock_path.display().to_string(),
                format!("locks `{}` but the base is `{reg}`", locked.reference),
                Some("rebuild with `--lock` to pin the new base".into()),
            ));
        }
        return Ok(BuildBase { image: locked.open_base(&remote.options, Some(remote.store.clone()))?, locked: None });
    }
    let (image, _) = registry::open_base(reg, &remote.options, Some(remote.store.clone()))?;
    if lock_file == LockFile::Read {
        return Ok(BuildBase { image, locked: None });
    }
    lock::write(&lock_path, reg, &image)?;
    let locked = Locked { reference: reg.clone(), digest: image.digest().clone(), path: lock_path };
    Ok(BuildBase { image, locked: Some(locked) })
}
