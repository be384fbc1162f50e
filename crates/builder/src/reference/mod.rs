//! Image references, one type for every command: skopeo's local transports (`oci:DIR[:TAG]`,
//! `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:NAME:TAG]`) and registry references
//! (`docker://REF`, or a bare `REGISTRY/REPO[:TAG][@DIGEST]` where a command takes one). Docker's
//! name and tag grammar (`reference::name`) serves every transport: one tag rule, one name rule.

mod name;

pub use name::RegistryRef;
pub(crate) use name::DOCKER_HUB;

use crate::error::{Error, Result};
use std::fmt;
use std::path::PathBuf;

/// Any image reference: a local image or a registry one. Functions that only read or write one
/// kind take [`LocalRef`] or [`RegistryRef`], so a registry reference cannot reach a local
/// writer (or the reverse) at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// An image on this machine.
    Local(LocalRef),
    /// An image in a registry.
    Registry(RegistryRef),
}

/// A local image: an OCI layout folder or an archive file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalRef {
    /// An OCI layout folder (`oci:DIR[:TAG]`).
    Oci {
        /// The layout's folder.
        dir: PathBuf,
        /// The tag, if given.
        tag: Option<String>,
    },
    /// An OCI archive (`oci-archive:FILE[:TAG]`).
    OciArchive {
        /// The archive file.
        file: PathBuf,
        /// The tag, if given.
        tag: Option<String>,
    },
    /// A Docker archive (`docker-archive:FILE[:NAME:TAG]`).
    DockerArchive {
        /// The archive file.
        file: PathBuf,
        /// The image name and tag in the archive, if given.
        name: Option<ArchiveName>,
    },
}

/// A docker-archive's `NAME:TAG`: as written (its `RepoTags` entry, what `docker load` shows)
/// and as Docker reads it (`busybox:1` is `docker.io/library/busybox:1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveName {
    pub(crate) written: String,
    pub(crate) reference: RegistryRef,
}

impl ArchiveName {
    /// A registry name with an explicit tag and no digest.
    #[cfg(test)]
    fn parse(n: &str) -> Result<ArchiveName> {
        archive_name(n).map_err(|message| Error::Reference { reference: n.to_owned(), message })
    }

    /// The tag (the name has one: it was parsed with it).
    pub(crate) fn tag(&self) -> &str {
        self.reference.tag.as_deref().unwrap_or("latest")
    }
}

const TRANSPORTS: &str = "`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:NAME:TAG]` or `docker://REGISTRY/REPO[:TAG][@DIGEST]`";

/// The local transports, and all transport names (for did-you-mean hints on a mistyped prefix).
const LOCAL_TRANSPORTS: [&str; 3] = ["oci", "oci-archive", "docker-archive"];
const TRANSPORT_NAMES: [&str; 4] = ["oci", "oci-archive", "docker-archive", "docker"];

/// What a reference without a transport is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bare {
    /// A registry reference (`ubuntu`, `localhost:5000/x`), as `docker pull` reads it.
    Registry,
    /// An error: where a forgotten `oci:` must not turn a path into a Docker Hub name.
    Refused,
}

impl ImageRef {
    /// Any reference: a local transport, `docker://REF`, or a bare `REGISTRY/REPO[:TAG][@DIGEST]`
    /// (Docker's rules: `ubuntu` is `docker.io/library/ubuntu:latest`; `localhost:5000/x` is bare,
    /// `localhost` is no transport). A mistyped transport or a URL scheme (`oci-archve:`,
    /// `dockr://`, `docker:/`, `http://`) is refused with the spelling it most likely meant, never
    /// read as a registry host: only a reference that parses as a registry one reaches the network.
    pub fn parse(s: &str) -> Result<ImageRef> {
        parse(s, Bare::Registry)
    }

    /// Like [`ImageRef::parse`], but the transport must be written (`docker://` for a registry):
    /// for build outputs and a recipe's `base.ref`, where `out/img` is a forgotten `oci:`.
    pub fn parse_explicit(s: &str) -> Result<ImageRef> {
        parse(s, Bare::Refused)
    }
}

impl LocalRef {
    /// A local reference; a registry one is refused, naming the local transports.
    pub fn parse(s: &str) -> Result<LocalRef> {
        match ImageRef::parse_explicit(s)? {
            ImageRef::Local(local) => Ok(local),
            ImageRef::Registry(_) => Err(Error::Reference {
                reference: s.to_owned(),
                message: "not a local image; write `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or `docker-archive:FILE[:NAME:TAG]`".into(),
            }),
        }
    }
}

fn parse(s: &str, bare: Bare) -> Result<ImageRef> {
    let err = |message: String| Error::Reference { reference: s.to_owned(), message };
    if let Some(rest) = s.strip_prefix("docker://") {
        if rest.is_empty() {
            return Err(err("empty registry reference after `docker://`".into()));
        }
        return name::parse(rest).map(ImageRef::Registry).map_err(err);
    }
    if let Some((transport, rest)) = s.split_once(':').filter(|(t, _)| LOCAL_TRANSPORTS.contains(t)) {
        return parse_local(transport, rest).map(ImageRef::Local).map_err(err);
    }
    check_transport(s).map_err(err)?;
    match bare {
        Bare::Registry => name::parse(s).map(ImageRef::Registry).map_err(err),
        Bare::Refused => Err(err(format!("no transport; write {TRANSPORTS}"))),
    }
}

/// The rest of `oci:`, `oci-archive:` or `docker-archive:`. Like skopeo, the path ends at the
/// first ':' (a path cannot contain one).
fn parse_local(transport: &str, rest: &str) -> std::result::Result<LocalRef, String> {
    if rest.is_empty() {
        return Err("empty path after the transport".into());
    }
    let (path, suffix) = match rest.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err("empty path".into());
    }
    let tag = |t: Option<&str>| t.map(|t| name::check_tag(t).map(|()| t.to_owned())).transpose();
    Ok(match transport {
        "oci" => LocalRef::Oci { dir: path.into(), tag: tag(suffix)? },
        "oci-archive" => LocalRef::OciArchive { file: path.into(), tag: tag(suffix)? },
        _ => LocalRef::DockerArchive { file: path.into(), name: suffix.map(archive_name).transpose()? },
    })
}

fn archive_name(n: &str) -> std::result::Result<ArchiveName, String> {
    let usage = || "docker-archive names are `NAME:TAG`".to_owned();
    n.rsplit_once(':').filter(|(_, t)| !t.contains('/')).ok_or_else(usage)?;
    let reference = name::parse(n)?;
    if reference.digest.is_some() {
        return Err(usage());
    }
    Ok(ArchiveName { written: n.to_owned(), reference })
}

/// Refuses what looks like a mistyped transport before anything would read it as a registry
/// host: `dir:/x`, `oci-archve:a.tar`, `dockr://x`, `docker:/x`, `http://x`. Passed on (to be
/// parsed by Docker's rules): `host[:port]/repo…`, bare `repo[:tag]`.
fn check_transport(s: &str) -> std::result::Result<(), String> {
    let Some((prefix, rest)) = s.split_once(':') else { return Ok(()) };
    if prefix.contains('/') {
        return Ok(()); // `repo/name:tag`
    }
    // `host:5000/repo` or `host:5000`: a port.
    let port = rest.split('/').next().unwrap_or("");
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    let suggestion = toml_schema::closest(prefix, TRANSPORT_NAMES);
    if let Some(scheme_rest) = rest.strip_prefix("//") {
        let hint = match prefix {
            "http" | "https" => {
                format!("registry references are `docker://HOST/REPO:TAG` (write `docker://{scheme_rest}`; plain HTTP is chosen per registry, see --insecure)")
            }
            _ => match suggestion {
                Some("docker") | None => format!("did you mean `docker://{scheme_rest}`? (transports: {TRANSPORTS})"),
                Some(t) => format!("did you mean `{t}:{scheme_rest}`?"),
            },
        };
        return Err(format!("unknown transport `{prefix}://`; {hint}"));
    }
    let tag_like = !rest.is_empty() && !rest.contains('/');
    if prefix == "docker" && rest.starts_with('/') {
        return Err(format!("`docker:` takes two slashes; did you mean `docker://{}`?", rest.trim_start_matches('/')));
    }
    if tag_like && (suggestion.is_none() || prefix == "docker") {
        return Ok(()); // `ubuntu:22.04`, `docker:27` (the Docker Hub image)
    }
    let hint = match suggestion {
        Some("docker") => format!("did you mean `docker://{}`?", rest.trim_start_matches('/')),
        Some(t) => format!("did you mean `{t}:{rest}`?"),
        None => format!("write {TRANSPORTS}"),
    };
    Err(format!("unknown transport `{prefix}:`; {hint}"))
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Local(l) => l.fmt(f),
            ImageRef::Registry(r) => write!(f, "docker://{r}"),
        }
    }
}

impl fmt::Display for LocalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |t: Option<&str>| t.map(|t| format!(":{t}")).unwrap_or_default();
        match self {
            LocalRef::Oci { dir, tag } => write!(f, "oci:{}{}", dir.display(), opt(tag.as_deref())),
            LocalRef::OciArchive { file, tag } => write!(f, "oci-archive:{}{}", file.display(), opt(tag.as_deref())),
            LocalRef::DockerArchive { file, name } => write!(f, "docker-archive:{}{}", file.display(), opt(name.as_ref().map(|n| n.written.as_str()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(s: &str) -> String {
        match ImageRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")) {
            ImageRef::Registry(r) => r.to_string(),
            ImageRef::Local(l) => panic!("{s} parsed as local {l}"),
        }
    }

    fn local(s: &str) -> LocalRef {
        let l = LocalRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ImageRef::parse(s).unwrap(), ImageRef::Local(l.clone()), "{s}");
        l
    }

    #[test]
    fn parses_each_transport() {
        assert_eq!(local("oci:out/img:v1"), LocalRef::Oci { dir: "out/img".into(), tag: Some("v1".into()) });
        assert_eq!(local("oci:out/img"), LocalRef::Oci { dir: "out/img".into(), tag: None });
        assert_eq!(local("oci-archive:a.tar"), LocalRef::OciArchive { file: "a.tar".into(), tag: None });
        let archive = |name: &str| LocalRef::DockerArchive { file: "a.tar".into(), name: Some(ArchiveName::parse(name).unwrap()) };
        assert_eq!(local("docker-archive:a.tar:localhost:5000/x/y:v2"), archive("localhost:5000/x/y:v2"));
        let LocalRef::DockerArchive { name: Some(n), .. } = local("docker-archive:a.tar:ubuntu:22.04") else { panic!("not a docker-archive") };
        assert_eq!((n.written.as_str(), n.reference.to_string().as_str(), n.tag()), ("ubuntu:22.04", "docker.io/library/ubuntu:22.04", "22.04"));
        let n = ArchiveName::parse("index.docker.io/me/app:v").unwrap();
        assert_eq!((n.written.as_str(), n.reference.to_string().as_str()), ("index.docker.io/me/app:v", "docker.io/me/app:v"));
        for (written, full) in [("busybox:1", "docker.io/library/busybox:1"), ("me/app:v", "docker.io/me/app:v"), ("localhost:5000/x:1", "localhost:5000/x:1")]
        {
            assert_eq!(ArchiveName::parse(written).unwrap().reference.to_string(), full);
        }
        let r = ImageRef::parse_explicit("docker://nvcr.io/nvidia/vllm:25.11-py3").unwrap();
        assert_eq!(r, ImageRef::Registry(RegistryRef::parse("nvcr.io/nvidia/vllm:25.11-py3").unwrap()));
        assert_eq!(r.to_string(), "docker://nvcr.io/nvidia/vllm:25.11-py3");
        for s in ["oci:out/img:v1", "oci-archive:a.tar:t", "docker-archive:a.tar:x/y:z"] {
            assert_eq!(ImageRef::parse(s).unwrap().to_string(), s);
        }
    }

    /// Bare references are registry ones with Docker's normalisation; only `parse` takes them.
    #[test]
    fn bare_references_follow_docker() {
        let d = format!("sha256:{}", "a".repeat(64));
        for (s, want) in [
            ("ubuntu", "docker.io/library/ubuntu:latest"),
            ("ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
            ("docker:27", "docker.io/library/docker:27"),
            ("docker://ubuntu", "docker.io/library/ubuntu:latest"),
            ("index.docker.io/x", "docker.io/library/x:latest"),
            ("docker://index.docker.io/team/x:1", "docker.io/team/x:1"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("localhost:5000/team/app:v1", "localhost:5000/team/app:v1"),
            ("localhost/x", "localhost/x:latest"),
            ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
            ("me/app:v1", "docker.io/me/app:v1"),
            (&format!("nvcr.io/nvidia/vllm@{d}"), &format!("nvcr.io/nvidia/vllm@{d}")),
            (&format!("docker://nvcr.io/nvidia/vllm:25.11-py3@{d}"), &format!("nvcr.io/nvidia/vllm:25.11-py3@{d}")),
        ] {
            assert_eq!(registry(s), want, "{s}");
        }
        for s in ["ubuntu", "localhost:5000/x", "out/img", "ubuntu:22.04"] {
            let e = ImageRef::parse_explicit(s).unwrap_err().to_string();
            assert!(e.contains(&format!("`{s}`")) && e.contains("no transport") && e.contains("oci:DIR"), "{s}: {e}");
        }
    }

    #[test]
    fn mistyped_transports_never_pass_as_registry_hosts() {
        for (bad, want) in [
            ("dir:/x", "unknown transport `dir:`"),
            ("oci-archve:a.tar", "did you mean `oci-archive:a.tar`?"),
            ("oci-archve:/tmp/a.tar", "did you mean `oci-archive:/tmp/a.tar`?"),
            ("docker-archiv:a.tar:x:1", "did you mean `docker-archive:a.tar:x:1`?"),
            ("ocii:out", "did you mean `oci:out`?"),
            ("dockr://reg/x:1", "did you mean `docker://reg/x:1`?"),
            ("docker:/reg/x:1", "did you mean `docker://reg/x:1`?"),
            ("docker:reg/x:1", "did you mean `docker://reg/x:1`?"),
            ("http://reg:5000/x:1", "write `docker://reg:5000/x:1`"),
            ("https://reg/x", "registry references are `docker://HOST/REPO:TAG`"),
            ("ftp://reg/x", "did you mean `docker://reg/x`?"),
            ("oci+archive:a.tar", "unknown transport"),
        ] {
            for e in [ImageRef::parse(bad).unwrap_err().to_string(), ImageRef::parse_explicit(bad).unwrap_err().to_string()] {
                assert!(e.contains(want) && e.contains(&format!("`{bad}`")), "{bad}: {e}");
            }
        }
    }

    /// One tag rule and one name rule, whatever the transport.
    #[test]
    fn bad_tags_and_names_are_refused_alike_naming_the_reference() {
        let d = format!("sha256:{}", "a".repeat(64));
        let long = "t".repeat(129);
        for (bad, want) in [
            ("oci:x:bad tag", "invalid tag `bad tag`"),
            ("oci-archive:a.tar:-x", "invalid tag `-x`"),
            ("ubuntu:.x", "invalid tag `.x`"),
            ("docker://reg.io/x:a+b", "invalid tag `a+b`"),
            ("docker-archive:a.tar:x:bad!", "invalid tag `bad!`"),
            (&format!("oci:x:{long}"), "invalid tag"),
            (&format!("reg.io/x:{long}"), "invalid tag"),
            ("docker-archive:a.tar:UPPER:v1", "invalid repository component `UPPER`"),
            ("docker://team/UPPER", "invalid repository component `UPPER`"),
            ("docker-archive:a.tar:a..b:v1", "invalid repository component `a..b`"),
            ("docker://a..b", "invalid repository component `a..b`"),
            ("docker-archive:a.tar:notag", "docker-archive names are `NAME:TAG`"),
            ("docker-archive:a.tar:x/y", "docker-archive names are `NAME:TAG`"),
            (&format!("docker-archive:a.tar:x:1@{d}"), "docker-archive names are `NAME:TAG`"),
            ("ubuntu@sha256:abc", "invalid digest `sha256:abc`"),
            ("docker://", "empty registry reference after `docker://`"),
            ("oci:", "empty path after the transport"),
            ("oci::v1", "empty path"),
        ] {
            let e = ImageRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }

    #[test]
    fn a_reference_without_a_transport_names_them_all() {
        for bad in ["out/img", "ubuntu"] {
            let e = ImageRef::parse_explicit(bad).unwrap_err().to_string();
            assert!(e.contains("oci:DIR") && e.contains("docker://REGISTRY"), "{bad}: {e}");
        }
        assert!(ImageRef::parse("").unwrap_err().to_string().contains("empty reference"));
        assert!(LocalRef::parse("docker://x").unwrap_err().to_string().contains("not a local image"));
    }
}
