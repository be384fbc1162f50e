//! OCI content descriptors, kept together with their raw JSON so entries we do not change are
//! written back exactly as the base had them.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::platform::Platform;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone)]
/// An OCI content descriptor: what a manifest or index says about a blob.
pub struct Descriptor {
    /// The blob's media type.
    pub media_type: String,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    pub(crate) platform: Option<Platform>,
    /// The descriptor object as it was read (or as we built it).
    pub(crate) raw: Value,
}

impl Descriptor {
    /// A descriptor with only these three fields.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        let raw = json!({ "mediaType": media_type, "digest": digest.as_str(), "size": size });
        Descriptor { media_type: media_type.to_owned(), digest, size, platform: None, raw }
    }

    /// Parses a descriptor object from a manifest or index; `source_name` names the image for errors.
    pub(crate) fn from_json(v: &Value, source_name: &str) -> Result<Descriptor> {
        let bad = |what: &str| Error::malformed(source_name, format!("descriptor {what}: {v}"));
        let media_type = v.get("mediaType").and_then(Value::as_str).ok_or_else(|| bad("without mediaType"))?;
        let digest = v.get("digest").and_then(Value::as_str).ok_or_else(|| bad("without digest"))?;
        let digest = Digest::parse(digest).ok_or_else(|| bad("with an invalid sha256 digest"))?;
        let size = v.get("size").and_then(Value::as_u64).ok_or_else(|| bad("without size"))?;
        let platform = v.get("platform").and_then(Platform::from_json);
        Ok(Descriptor { media_type: media_type.to_owned(), digest, size, platform, raw: v.clone() })
    }

    pub(crate) fn annotation(&self, key: &str) -> Option<&str> {
        self.raw.get("annotations")?.get(key)?.as_str()
    }

    /// A copy with annotations set (sorted by the canonical writer).
    pub(crate) fn with_annotations(mut self, annotations: &[(String, String)]) -> Descriptor {
        if annotations.is_empty() {
            return self;
        }
        let obj = self.raw.as_object_mut().expect("descriptor is an object");
        let map = obj.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = map {
            for (k, v) in annotations {
                m.insert(k.clone(), Value::String(v.clone()));
            }
        }
        self
    }

    /// An attestation manifest (BuildKit provenance/SBOM) rather than a runnable image.
    pub(crate) fn is_attestation(&self) -> bool {
        self.annotation("vnd.docker.reference.type") == Some("attestation-manifest")
    }
}
