//! OCI platforms (`os/arch[/variant]`) as written in recipes and flags.

use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
/// An image platform: OS, architecture and variant (`linux/arm64`).
pub struct Platform {
    pub(crate) os: String,
    pub(crate) arch: String,
    pub(crate) variant: Option<String>,
}

impl Platform {
    /// Parses `linux/arm64`, `linux/arm64/v8`, `linux/amd64`.
    pub fn parse(s: &str) -> Option<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Some(Platform { os: os.to_string(), arch: arch.to_string(), variant: None }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Some(Platform { os: os.to_string(), arch: arch.to_string(), variant: Some(v.to_string()) }),
            _ => None,
        }
    }

    /// Reads the `platform` object of an index entry.
    pub(crate) fn from_json(v: &Value) -> Option<Platform> {
        Some(Platform {
            os: v.get("os")?.as_str()?.to_owned(),
            arch: v.get("architecture")?.as_str()?.to_owned(),
            variant: v.get("variant").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// Whether an image's platform satisfies what the user asked for. A request without a variant
    /// takes any variant (`linux/arm64` matches `linux/arm64/v8`), as Docker does.
    pub(crate) fn satisfied_by(&self, have: &Platform) -> bool {
        self.os == have.os && self.arch == have.arch && (self.variant.is_none() || self.variant == have.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let want = Platform::parse("linux/arm64").unwrap();
        assert!(want.satisfied_by(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(!want.satisfied_by(&Platform::parse("linux/amd64").unwrap()));
        assert!(!Platform::parse("linux/arm64/v8").unwrap().satisfied_by(&want));
        for bad in ["linux", "linux/", "/arm64", "linux/arm64/v8/x", "linux arm64"] {
            assert!(Platform::parse(bad).is_none(), "{bad}");
        }
    }
}
