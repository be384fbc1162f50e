//! Integration tests of the `sparkctl` binary, checked with independent tools (skopeo, umoci,
//! the Docker engine). One test binary; one module per capability.

#[path = "../../../builder/tests/support/base.rs"]
mod base;
mod bench_serve;
mod build;
mod build_errors;
#[path = "../../../builder/tests/support/debian.rs"]
mod debian;
mod fabric;
mod image_vllm_spark;
mod nccl;
mod ops;
mod python_layers;
mod registry;
mod support;
