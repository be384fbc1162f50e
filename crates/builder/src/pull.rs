//! `image pull`: a registry image into a local layout or archive. Every layer is fetched into
//! the store first, in parallel; the writer then links them from there.

use crate::build::BuiltImage;
use crate::error::Result;
use crate::platform::Platform;
use crate::reference::{LocalRef, RegistryRef};
use crate::registry::progress::{Phase, Progress, Tally};
use crate::registry::{self, Remote};
use serde::Serialize;
use std::time::Instant;

/// What a pull did, for `--json` (fields in the order it prints them).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PullSummary {
    /// Layer bytes that came from the registry (not those already in the store).
    pub(crate) bytes_downloaded: u64,
    pub(crate) destination: String,
    /// The digest of the pulled image's top.
    pub digest: String,
    pub(crate) reference: String,
    /// From the first layer fetch to the written image.
    pub(crate) seconds: f64,
}

/// Pulls `src` (only `platform` of it, when given) into `dest`. A docker-archive holds one
/// platform: that is checked before any layer is downloaded.
pub fn pull(src: &RegistryRef, dest: &LocalRef, platform: Option<&Platform>, remote: &Remote) -> Result<PullSummary> {
    let (base, handle) = registry::open_base(src, &remote.options, Some(remote.store.clone()))?;
    let base = match platform {
        Some(p) => base.only_platform(p)?,
        None => base,
    };
    if matches!(dest, LocalRef::DockerArchive { .. }) {
        crate::output::check_one_platform(&dest.to_string(), &format!("`{src}`"), &base.index_platforms())?;
    }
    let progress = Tally::new(remote.phases.start(Phase::Pull(src)));
    let start = Instant::now();
    handle.set_progress(progress.clone());
    handle.fetch_all(&registry::base_layers(&base), remote.parallel)?;
    progress.finished();
    let image = BuiltImage::unchanged(base, remote.store.clone())?;
    crate::output::write(&image, dest)?;
    Ok(PullSummary {
        bytes_downloaded: progress.bytes(),
        destination: dest.to_string(),
        digest: image.top.digest.to_string(),
        reference: src.to_string(),
        seconds: start.elapsed().as_secs_f64(),
    })
}
