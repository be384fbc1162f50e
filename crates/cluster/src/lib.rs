//! `cluster`: everything sparkctl knows about a cluster that needs no network stack
//! (ARCHITECTURE.md invariant 5): the `cluster.toml` schema, the per-node environment derived from the
//! rails, renderers for DGX OS nodes, node checks over a root prefix, and log analysers.

#![warn(missing_docs, unreachable_pub)]

pub mod derive;
pub mod doctor;
mod error;
pub mod fit;
pub mod known_bad;
pub mod model;
mod parse;
pub mod plan;
pub mod render;
pub mod shell;
mod validate;

pub use error::Error;
pub use model::{Backend, Cluster, Node, RailSpec, Role};
pub use parse::{parse_file, parse_str};
pub mod nccl;
pub mod ops;
pub mod preflight;
pub mod rdma_bench;
pub mod sysfs;
#[cfg(test)]
mod test_util;
pub mod tools;
