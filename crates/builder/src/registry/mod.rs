//! The registry client: `docker://` bases (shallow), push, pull.
//!
//! The HTTP sequence of the distribution API is driven here on a small blocking client (`ureq`
//! over rustls/ring), because the parts that matter for a 15 GB base are exactly the ones
//! library defaults get wrong: HEAD before every upload, cross-repository mounts, one streamed
//! upload per blob, resumable verified downloads. docs/registry.md explains the choice.
//!
//! Map: references (Docker's rules) are parsed by `reference`; [`auth`] holds
//! credentials and challenges; `client` sends requests (scheme, auth, retries) and names each
//! `client::Step`'s expected statuses; `code` reads a registry's error body into typed error
//! codes; `source` is the shallow base and the layer fetcher; `push` uploads a
//! [`crate::build::BuiltImage`]; [`lock`] pins a base's metadata next to a recipe; [`progress`]
//! reports transfers as events; [`retry`] is the backoff policy. [`Remote`] is what the image
//! commands' flows (`crate::open`, `crate::write`, `crate::pull`) take to reach registries.

pub mod auth;
pub(crate) mod client;
pub mod code;
pub mod lock;
mod parallel;
pub mod progress;
pub(crate) mod push;
pub mod retry;
pub(crate) mod source;
mod tls;

pub use crate::reference::RegistryRef;
pub use auth::Credential;
pub use auth::CredentialStore;
pub use auth::Secret;
pub use client::Client;
pub use client::ClientOptions;
pub use push::push_image;
pub use push::PushOptions;
pub use push::PushSummary;
pub use source::RegistrySource;
pub(crate) use source::SharedSource;

use crate::source::BaseImage;
use crate::store::BlobStore;
use progress::Phases;
use std::sync::Arc;

/// What the image commands need to reach registries: the client's options (credentials, TLS,
/// retries, where a registry base's fetches report), the blob store that registry blobs land
/// in, how many blobs move at once, and what gives each push or pull its progress.
#[derive(Clone)]
pub struct Remote {
    /// The registry client's options.
    pub options: ClientOptions,
    /// The blob store registry blobs land in.
    pub store: BlobStore,
    /// Blobs in flight at once (at least 1).
    pub parallel: usize,
    /// Gives each push or pull its progress.
    pub phases: Arc<dyn Phases>,
}

impl Remote {
    /// Ends the phase of the registry bases' fetches: they happen on demand, so only the caller
    /// of the last read knows when they are over.
    pub(crate) fn fetches_done(&self) {
        if let Some(p) = &self.options.progress {
            p.finished();
        }
    }
}

/// Opens a `docker://` base shallowly: resolves the tag, reads index, manifests and configs.
/// Layer blobs are fetched into `store` only when an output reads them. The returned handle is
/// the same source the base reads from, for fetching layers in parallel ahead of an output.
pub fn open_base(reference: &RegistryRef, opts: &ClientOptions, store: Option<BlobStore>) -> crate::Result<(BaseImage, Arc<RegistrySource>)> {
    let src = Arc::new(RegistrySource::open(reference, opts, store)?);
    let top = src.resolve()?;
    Ok((BaseImage::read(Box::new(SharedSource(Arc::clone(&src))), top)?, src))
}

/// Downloads the layers of a registry base into the store, `parallel` at a time, before an
/// output that reads them all (a layout or archive); a no-op for local bases and for layers
/// already stored. Outputs then link them from the store.
pub(crate) fn prefetch_layers(base: &BaseImage, parallel: usize) -> crate::Result<()> {
    if !base.name().starts_with("docker://") {
        return Ok(());
    }
    let mut layers = base_layers(base);
    layers.sort_by(|a, b| a.digest.cmp(&b.digest));
    layers.dedup_by(|a, b| a.digest == b.digest);
    parallel::for_each(&layers, parallel, |d| {
        // Opening a registry layer fetches it into the store (verified); the file is not read here.
        base.source.open(d).map(drop)
    })
}

/// Every layer descriptor of a base (each platform's, the kept entries only).
pub(crate) fn base_layers(base: &BaseImage) -> Vec<crate::descriptor::Descriptor> {
    base.entries.iter().filter_map(|(_, m)| m.as_ref()).flat_map(|m| m.layers.iter().cloned()).collect()
}
