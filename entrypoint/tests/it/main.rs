//! Integration tests of `spark-entrypoint`: real processes in network namespaces joined by veth
//! rails, real Ray from PyPI, and real vLLM on CPU (`cargo xtask vllm`) serving a tiny model.
//! A stand-in for `vllm serve` (`tests/standin_vllm.py`) remains where real vLLM cannot do what
//! a test needs on demand (injected orphans, replayed NCCL logs, a recorded argv, a serve command
//! ready in a second) or cannot run (vLLM's CPU platform refuses the Ray executor); each such
//! test says so. They need root, iproute2, curl, python3, `ray` on PATH and `target/vllm`
//! (`cargo xtask test` installs them); a missing tool fails the test.

#[path = "../../../builder/tests/support/debian.rs"]
mod debian;
mod docker;
mod fuzz;
#[path = "../../../builder/tests/support/fuzz.rs"]
mod fuzz_harness;
mod harness;
mod heal;
mod nccl;
mod nccl_bench;
mod pid1;
mod plan;
mod ray;
mod rendezvous;
mod vllm;
#[path = "../support/vllm_base.rs"]
mod vllm_base;
