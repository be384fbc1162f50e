//! Integration tests of `spark-entrypoint`: real processes in network namespaces joined by veth
//! rails, real Ray from PyPI, and a stand-in for `vllm serve` (`tests/standin_vllm.py`). They
//! need root, iproute2, python3 and `ray` on PATH (`cargo xtask test` installs them); a missing
//! tool fails the test.

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
