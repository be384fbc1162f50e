//! Integration tests of `spark-entrypoint`: real processes in network namespaces joined by veth
//! rails, real Ray from PyPI, and real vLLM on CPU (`cargo xtask vllm`) serving a tiny model.
//! A stand-in for `vllm serve` (`tests/standin_vllm.py`) remains where real vLLM cannot do what
//! a test needs on demand (injected orphans, replayed NCCL logs, a recorded argv, a serve command
//! ready in a second) or cannot run (vLLM's CPU platform refuses the Ray executor); each such
//! test says so.
//!
//! Hermetic, run by a plain `cargo test`: `fuzz`, and the binary started directly, outside any
//! namespace, where it refuses a bad configuration (`rendezvous`, `ray`) or where the benchmark
//! script refuses its arguments (`nccl_bench`, python3).
//! System tests, compiled only with `--features system-tests`: everything else. They need root,
//! iproute2, curl, python3, `ray` on PATH, `target/vllm`, and for `docker` and `nccl_bench` the
//! Docker engine and debootstrap (`cargo xtask test` installs them); a missing tool fails the
//! test.

#[cfg(feature = "system-tests")]
mod docker;
mod fuzz;
mod harness;
#[cfg(feature = "system-tests")]
mod heal;
#[cfg(feature = "system-tests")]
mod nccl;
mod nccl_bench;
#[cfg(feature = "system-tests")]
mod pid1;
#[cfg(feature = "system-tests")]
mod plan;
mod ray;
mod rendezvous;
#[cfg(feature = "system-tests")]
mod vllm;
