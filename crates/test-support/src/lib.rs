//! Test fixtures shared by the crates' integration tests (a dev-dependency of `builder`,
//! `cluster`, `entrypoint` and `cli`) and by `xtask`, whose benchmarks and demo make the same
//! bases at run time. One job per module:
//!
//! - `base` — synthetic base images (OCI layouts, multi-platform, golden-digest stable), written
//!   without the builder's own layer code.
//! - `debian` — debootstrap rootfs trees from the host's mirror, cached by their inputs.
//! - `vllm_base` — the stand-in base that carries real vLLM (CPU) for the Docker end-to-end
//!   test and `cargo xtask demo`.
//! - `fuzz` — the mutation fuzzer (seeds, edits, time budget) and deterministic noise bytes.
//! - `netns` — two network-namespace nodes joined by two veth rails (root).
//! - `oci` — digests, and reading an OCI layout's one image (index → manifest).
//! - `sysfs` — a root prefix with healthy RoCE rails, for the checks that read through one.
//! - `registry` — a real `docker-registry` (plain, TLS + htpasswd, token auth), a byte-counting
//!   fault proxy in front of it, a token service, and small runnable images.
//!
//! Nothing here is a product: it panics on failure, like the tests that call it.

pub mod base;
pub mod debian;
pub mod fuzz;
pub mod netns;
pub mod oci;
pub mod registry;
pub mod sysfs;
pub mod vllm_base;
