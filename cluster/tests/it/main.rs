//! Integration tests of the `cluster` crate: one binary, one module per concern.
//! Real tools only: `nix-instantiate`, `netplan`, `systemd-analyze`, `sh`. A missing tool fails
//! the test (`cargo xtask deps` installs them).

mod docker_run;
mod fuzz;
#[path = "../../../builder/tests/support/fuzz.rs"]
mod fuzz_harness;
mod golden;
mod module;
mod netplan;
mod nix_files;
mod plan;
mod support;
mod systemd;
mod validation;
mod vectors;
