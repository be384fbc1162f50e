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

/// A reference with a registry host (`host.domain/…`, `host:port/…`, `localhost/…`) is pulled by
/// the nodes; a bare name (`vllm-spark:25.11`, `library/x`) lives in the control machine's Docker
/// and is streamed to them (`docker save | ssh NODE docker load`).
pub fn is_registry_ref(image: &str) -> bool {
    image.split_once('/').is_some_and(|(first, _)| first.contains('.') || first.contains(':') || first == "localhost")
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_references_are_told_from_local_names() {
        for r in ["spark-registry.lan:5000/sparkctl/vllm-spark:25.11", "nvcr.io/nvidia/vllm:25.11-py3", "localhost/x:1", "host:5000/a@sha256:00"] {
            assert!(super::is_registry_ref(r), "{r}");
        }
        for l in ["vllm-spark:25.11", "sparkctl/vllm-spark:25.11", "x"] {
            assert!(!super::is_registry_ref(l), "{l}");
        }
    }
}
