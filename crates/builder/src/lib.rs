//! `builder`: the reproducible OCI image builder.
//!
//! Data flow: a recipe (`recipe`) names a base (`reference` → `source`) and overlays (`overlay`);
//! `build` reads the base shallowly (index, manifests, configs), writes one reproducible layer per
//! overlay (`tree` → `layer`) into the blob store (`store`), edits each kept platform's config as
//! raw JSON (`config`), and yields a [`BuiltImage`] that the writers in `output` turn into
//! an OCI layout, an oci-archive or a docker-archive (the registry module pushes the same value).
//!
//! The image commands' flows, one module each: `open` (any image; a build's base and its lock
//! file), `write` (a built image to any destination, pushes included) and `pull`.

#![warn(missing_docs, unreachable_pub)]

mod build;
mod compress;
mod config;
mod descriptor;
mod digest;
mod elf;
mod error;
mod fsutil;
pub mod inspect;
mod json;
mod layer;
mod layer_cache;
mod media;
pub mod open;
pub mod output;
pub mod overlay;
mod platform;
pub mod pull;
mod python;
pub mod recipe;
mod reference;
pub mod registry;
pub mod source;
mod store;
mod tree;
pub mod write;

pub use build::{build, BuildOptions, BuiltImage, Origin};
pub use descriptor::Descriptor;
pub use digest::{Digest, VerifyingReader};
pub use error::{Error, Result};
pub use platform::Platform;
pub use reference::{ImageRef, LocalRef};
pub use store::BlobStore;
