//! Operating DGX OS nodes from one control machine (`sparkctl up|down|status|logs`), sans-IO:
//! the files a node should have and what to do about each ([`files`]), the shell scripts the
//! control machine runs on a node and the parsers of what they print ([`node`]), and the model
//! copy plan ([`model`]). The CLI runs the scripts over ssh; nothing here touches a network.

pub mod files;
pub mod model;
pub mod node;

use sha2::{Digest, Sha256};

/// The systemd unit the renderers write (`spark-cluster.service`).
pub const UNIT: &str = crate::model::defaults::CONTAINER_NAME;
/// What sparkctl last installed on a node, `sha256  path` per line: a file whose content differs
/// from its entry was edited by hand.
pub const MANIFEST: &str = "/var/lib/spark-cluster/state/sparkctl-manifest";
/// The entrypoint's status file inside the container (its `--status-file` default).
pub const STATUS_FILE: &str = "/run/spark-entrypoint/status.json";
/// The entrypoint's restart history on the host (the state volume, `--state-file` default name).
pub const RESTARTS_FILE: &str = "/var/lib/spark-cluster/state/restarts.json";

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
