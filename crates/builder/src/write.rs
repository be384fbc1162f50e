//! Writing an image anywhere: a local layout or archive, or a push to a registry (`image push`
//! is a copy of any image, unchanged, into a registry).

use crate::build::BuiltImage;
use crate::error::Result;
use crate::reference::{ImageRef, RegistryRef};
use crate::registry::progress::Phase;
use crate::registry::{self, Client, PushOptions, PushSummary, Remote};

/// Writes `image` to `dest`: a local one gets a registry base's layers first, all at once into
/// the store (the writer links them from there); a registry one is pushed, and its summary
/// returned.
pub fn to(image: &BuiltImage, dest: &ImageRef, remote: &Remote) -> Result<Option<PushSummary>> {
    match dest {
        ImageRef::Local(local) => {
            registry::prefetch_layers(&image.base, remote.parallel)?;
            remote.fetches_done();
            crate::output::write(image, local)?;
            Ok(None)
        }
        ImageRef::Registry(reg) => push(image, reg, remote).map(Some),
    }
}

/// Pushes an image (built or copied) to `dest`. A registry base's layers are fetched as they
/// are pushed: the fetches and the push are two phases, and both end here.
pub(crate) fn push(image: &BuiltImage, dest: &RegistryRef, remote: &Remote) -> Result<PushSummary> {
    let client = Client::connect(&dest.registry, dest.api_host(), &remote.options)?;
    let progress = remote.phases.start(Phase::Push(dest));
    let pushed = registry::push_image(&client, dest, image, &PushOptions { parallel: remote.parallel, progress });
    remote.fetches_done();
    pushed
}

/// `image push`: any image, unchanged, into a registry (only the blobs it lacks).
pub fn copy(src: &ImageRef, dest: &RegistryRef, remote: &Remote) -> Result<PushSummary> {
    let base = crate::open::image(src, remote)?;
    let image = BuiltImage::unchanged(base, remote.store.clone())?;
    push(&image, dest, remote)
}
