//! Docker's name grammar, the one every reference uses: registry references (`ubuntu` is
//! `docker.io/library/ubuntu:latest`, `index.docker.io` is `docker.io`, the first path component
//! is a registry host only when it has a `.` or `:` or is `localhost`), the `NAME:TAG` of a
//! docker-archive, and the tags of every transport.

use crate::digest::Digest;
use crate::error::{Error, Result};
use std::fmt;

/// The registry Docker Hub references name; its API lives on [`DOCKER_HUB_API`].
pub(crate) const DOCKER_HUB: &str = "docker.io";
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
/// An image in a registry: registry, repository, and a tag or digest (Docker's normalisation).
pub struct RegistryRef {
    /// `host[:port]`, normalised (`docker.io` for Docker Hub).
    pub registry: String,
    /// `library/ubuntu`, `nvidia/vllm`.
    pub(crate) repository: String,
    pub(crate) tag: Option<String>,
    /// The digest, when pinned by one.
    pub digest: Option<Digest>,
}

impl RegistryRef {
    /// Parses `[REGISTRY/]REPO[:TAG][@DIGEST]` (with or without a `docker://` prefix). A reference
    /// with neither tag nor digest gets `latest`, as with `docker pull`.
    pub fn parse(input: &str) -> Result<RegistryRef> {
        parse(input.strip_prefix("docker://").unwrap_or(input)).map_err(|message| Error::Reference { reference: input.to_owned(), message })
    }

    /// Host (and port) the HTTP API is on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What goes after `/manifests/`: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// The same repository at a digest (what a lock file and the build annotations record).
    pub(crate) fn pinned(&self, digest: &Digest) -> RegistryRef {
        RegistryRef { digest: Some(digest.clone()), ..self.clone() }
    }

    /// `registry/repository`, the name without tag or digest.
    pub(crate) fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// `[REGISTRY/]REPO[:TAG][@DIGEST]` without a transport; the error is the message alone (the
/// caller names the reference).
pub(super) fn parse(s: &str) -> std::result::Result<RegistryRef, String> {
    if s.is_empty() {
        return Err("empty reference".into());
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(Digest::parse(d).ok_or_else(|| format!("invalid digest `{d}`: write `sha256:` and 64 lowercase hex digits"))?)),
        None => (s, None),
    };
    // A tag follows the last ':' after the last '/', so `localhost:5000/x` has no tag.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        check_tag(t)?;
    }
    let (registry, path) = match name.split_once('/') {
        Some((first, path)) if first.contains(['.', ':']) || first == "localhost" || first.bytes().any(|b| b.is_ascii_uppercase()) => {
            (first.to_owned(), path.to_owned())
        }
        _ => (DOCKER_HUB.to_owned(), name.to_owned()),
    };
    let registry = if registry == "index.docker.io" { DOCKER_HUB.to_owned() } else { registry };
    if registry.is_empty() || !registry.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)) {
        return Err(format!("invalid registry host `{registry}`"));
    }
    let repository = if registry == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path };
    for component in repository.split('/') {
        if !valid_component(component) {
            return Err(format!("invalid repository component `{component}`: lowercase letters and digits, separated by `.`, `_`, `__` or `-`"));
        }
    }
    if repository.len() > 255 {
        return Err("repository name longer than 255 characters".into());
    }
    let tag = match (tag, &digest) {
        (None, None) => Some("latest".to_owned()),
        (t, _) => t.map(str::to_owned),
    };
    Ok(RegistryRef { registry, repository, tag, digest })
}

/// The tag grammar of every transport: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(super) fn check_tag(t: &str) -> std::result::Result<(), String> {
    let valid = !t.is_empty() && t.len() <= 128 && !t.starts_with(['.', '-']) && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!("invalid tag `{t}`: use letters, digits, `_`, `.`, `-` (at most 128, not starting with `.` or `-`)"))
    }
}

/// One path component: `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !(bytes[i].is_ascii_lowercase() || bytes[i].is_ascii_digit()) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, registry: &str, repository: &str, tag: Option<&str>, digest: bool) {
        let r = RegistryRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag.as_deref(), r.digest.is_some()), (registry, repository, tag, digest), "{input}");
    }

    #[test]
    fn normalises_like_docker() {
        let d = format!("sha256:{}", "a".repeat(64));
        check("ubuntu", "docker.io", "library/ubuntu", Some("latest"), false);
        check("docker://ubuntu:24.04", "docker.io", "library/ubuntu", Some("24.04"), false);
        check("index.docker.io/library/ubuntu", "docker.io", "library/ubuntu", Some("latest"), false);
        check("index.docker.io/ubuntu", "docker.io", "library/ubuntu", Some("latest"), false);
        check("docker.io/nvidia/cuda:12", "docker.io", "nvidia/cuda", Some("12"), false);
        check("nvidia/cuda", "docker.io", "nvidia/cuda", Some("latest"), false);
        check("localhost/foo", "localhost", "foo", Some("latest"), false);
        check("localhost:5000/foo/bar:v1", "localhost:5000", "foo/bar", Some("v1"), false);
        check("127.0.0.1:5000/x", "127.0.0.1:5000", "x", Some("latest"), false);
        check("nvcr.io/nvidia/vllm:25.11-py3", "nvcr.io", "nvidia/vllm", Some("25.11-py3"), false);
        check(&format!("nvcr.io/nvidia/vllm@{d}"), "nvcr.io", "nvidia/vllm", None, true);
        check(&format!("nvcr.io/nvidia/vllm:25.11-py3@{d}"), "nvcr.io", "nvidia/vllm", Some("25.11-py3"), true);
        check("a__b/c-d--e/f.g_h", "docker.io", "a__b/c-d--e/f.g_h", Some("latest"), false);
    }

    #[test]
    fn docker_hub_api_host_and_display() {
        let r = RegistryRef::parse("ubuntu").unwrap();
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.to_string(), "docker.io/library/ubuntu:latest");
        assert_eq!(RegistryRef::parse("localhost:5000/a:b").unwrap().api_host(), "localhost:5000");
    }

    #[test]
    fn rejects_with_the_reference_named() {
        for bad in ["", "Ubuntu", "ubuntu:", "ubuntu:-x", "ubuntu@sha256:abc", "a//b", "a/-b", "a/b_", "a/b___c", "localhost:5000/"] {
            let e = RegistryRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }
}
