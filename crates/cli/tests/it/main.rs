//! Integration tests of the `sparkctl` binary, checked with independent tools (skopeo, umoci,
//! the Docker engine). One test binary; one module per capability.
//!
//! Hermetic, run by a plain `cargo test`: `build_errors`, `nccl`, `bench_serve` against the
//! in-process stand-in server, the pinned golden digests (`build`), the image hook's Python unit
//! tests and overlay trees (`image_vllm_spark`) and the registry flags' refusals (`registry`).
//! System tests, compiled only with `--features system-tests` (`cargo xtask test` installs what
//! they need): `fabric` and `ops` (root, network namespaces, sshd), `python_layers` (uv, PyPI,
//! Docker), the rest of `build` and `image_vllm_spark` (skopeo, umoci, the Docker engine,
//! debootstrap, a static busybox, Ray from `target/py`), of `registry` (Debian's
//! `docker-registry`, openssl, htpasswd, `docker-credential-pass`), of `bench_serve`
//! (`rsvg-convert`, real vLLM in `target/vllm`) and the block device of `build_errors` (root).

mod bench_serve;
mod build;
mod build_errors;
#[cfg(feature = "system-tests")]
mod fabric;
mod image_vllm_spark;
mod nccl;
#[cfg(feature = "system-tests")]
mod ops;
#[cfg(feature = "system-tests")]
mod python_layers;
mod registry;
mod support;
