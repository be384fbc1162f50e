//! Digests, and reading the one image of an OCI layout (index → manifest), for tests that hand
//! a built image to another tool and for the demo.

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::path::Path;

/// `sha256:<hex>` of `b`.
pub fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Where a layout keeps the blob of `digest`, relative to the layout: `blobs/sha256/<hex>`.
pub fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// The manifest of the layout's one image: the blob `index.json`'s first entry names.
pub fn one_manifest(layout: &Path) -> Result<Value, String> {
    let read = |p: &Path| -> Result<Value, String> {
        let bytes = std::fs::read(p).map_err(|e| format!("reading `{}`: {e}", p.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("`{}` is no JSON: {e}", p.display()))
    };
    let index = read(&layout.join("index.json"))?;
    let digest = index["manifests"][0]["digest"].as_str().ok_or_else(|| format!("the index of `{}` names no manifest", layout.display()))?;
    read(&layout.join(blob_path(digest)))
}
