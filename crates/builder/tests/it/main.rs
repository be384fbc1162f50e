//! Integration tests of the builder library: sources, outputs, the registry client.
//!
//! Hermetic, run by a plain `cargo test`: `sources`, `fuzz`, and the registry client's errors
//! against fake servers on loopback. System tests, compiled only with `--features system-tests`
//! (`cargo xtask test` installs what they need): the rest of `registry`, which drives Debian's
//! `docker-registry`, skopeo, the Docker engine, openssl, htpasswd, actionlint, a static busybox
//! and the machine's non-loopback IPv4 address.

mod fuzz;
mod registry;
mod release;
mod sources;
