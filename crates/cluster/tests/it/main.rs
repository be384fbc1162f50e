//! Integration tests of the `cluster` crate: one binary, one module per concern.
//!
//! Hermetic, run by a plain `cargo test`: `fuzz`, `golden`, `plan`, `validation`, the Rust side of
//! `vectors`, `sh` reading the rendered `docker run` command (`docker_run`), the unit's
//! `ExecStart=` (`systemd`) and the VM tests' cluster file (`module`).
//! System tests, compiled only with `--features system-tests`: the real tools `nix-instantiate`
//! (`module`, `nix_files`, `netplan`, the Nix side of `vectors`), `netplan generate`,
//! `systemd-analyze verify` and the Docker engine (`docker_run`, `module`). A missing tool fails
//! the test (`cargo xtask deps` installs them).

mod docker_run;
mod fuzz;
mod golden;
mod module;
#[cfg(feature = "system-tests")]
mod netplan;
#[cfg(feature = "system-tests")]
mod nix_files;
mod plan;
mod support;
mod systemd;
mod validation;
mod vectors;
