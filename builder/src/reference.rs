//! Image references in skopeo's transport syntax: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
//! `docker-archive:FILE[:NAME:TAG]`, `docker://REF`.

use crate::error::{Error, Result};
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Oci {
        dir: PathBuf,
        tag: Option<String>,
    },
    OciArchive {
        file: PathBuf,
        tag: Option<String>,
    },
    /// `name` is `NAME:TAG` (the RepoTags entry) when given.
    DockerArchive {
        file: PathBuf,
        name: Option<String>,
    },
    /// Everything after `docker://`, parsed by the registry module.
    Docker {
        reference: String,
    },
}

const TRANSPORTS: &str = "`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:NAME:TAG]` or `docker://REGISTRY/REPO[:TAG][@DIGEST]`";

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef> {
        let err = |m: &str| Error::Reference { reference: s.to_owned(), message: m.to_owned() };
        if let Some(rest) = s.strip_prefix("docker://") {
            if rest.is_empty() {
                return Err(err("empty registry reference after `docker://`"));
            }
            return Ok(ImageRef::Docker { reference: rest.to_owned() });
        }
        let Some((transport, rest)) = s.split_once(':') else {
            return Err(err(&format!("no transport; write {TRANSPORTS}")));
        };
        if rest.is_empty() {
            return Err(err("empty path after the transport"));
        }
        // Like skopeo: the path ends at the first ':'; a path cannot contain one.
        let (path, suffix) = match rest.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(err("empty path"));
        }
        let tag = |t: Option<&str>| -> Result<Option<String>> {
            match t {
                None => Ok(None),
                Some(t) if valid_tag(t) => Ok(Some(t.to_owned())),
                Some(t) => Err(err(&format!("invalid tag `{t}`: use letters, digits, `_`, `.`, `-` (at most 128, not starting with `.` or `-`)"))),
            }
        };
        match transport {
            "oci" => Ok(ImageRef::Oci { dir: path.into(), tag: tag(suffix)? }),
            "oci-archive" => Ok(ImageRef::OciArchive { file: path.into(), tag: tag(suffix)? }),
            "docker-archive" => {
                let name = match suffix {
                    None => None,
                    Some(n) => {
                        let (repo, t) = n.rsplit_once(':').filter(|(_, t)| !t.contains('/')).ok_or_else(|| err("docker-archive names are `NAME:TAG`"))?;
                        if repo.is_empty() || !repo.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b)) {
                            return Err(err(&format!("invalid image name `{repo}`: lowercase letters, digits, `.`, `_`, `-`, `/`")));
                        }
                        tag(Some(t))?;
                        Some(n.to_owned())
                    }
                };
                Ok(ImageRef::DockerArchive { file: path.into(), name })
            }
            // A typo of `docker://` or a URL scheme gets the registry spelling.
            _ if check_transport(s).is_err() && (rest.starts_with("//") || transport == "docker") => Err(check_transport(s).expect_err("checked")),
            other => Err(err(&match toml_schema::closest(other, TRANSPORT_NAMES) {
                Some(t) => format!("unknown transport `{other}`; did you mean `{t}:`? ({TRANSPORTS})"),
                None => format!("unknown transport `{other}`; write {TRANSPORTS}"),
            })),
        }
    }
}

/// Transport names, for did-you-mean hints on a mistyped prefix.
const TRANSPORT_NAMES: [&str; 4] = ["oci", "oci-archive", "docker-archive", "docker"];

/// Refuses what looks like a mistyped transport before anything would read it as a registry
/// host: `dir:/x`, `oci-archve:a.tar`, `dockr://x`, `docker:/x`, `http://x`. Only a reference that
/// parses as a registry reference may reach the network. Accepted here (and parsed by the
/// registry module): `host[:port]/repo…`, bare `repo[:tag]`, `docker://…`.
pub fn check_transport(s: &str) -> Result<()> {
    let err = |m: String| Err(Error::Reference { reference: s.to_owned(), message: m });
    if s.starts_with("docker://") {
        return Ok(());
    }
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
        return err(format!("unknown transport `{prefix}://`; {hint}"));
    }
    let tag_like = !rest.is_empty() && !rest.contains('/');
    if prefix == "docker" && rest.starts_with('/') {
        return err(format!("`docker:` takes two slashes; did you mean `docker://{}`?", rest.trim_start_matches('/')));
    }
    if tag_like && (suggestion.is_none() || prefix == "docker") {
        return Ok(()); // `ubuntu:22.04`, `docker:27` (the Docker Hub image)
    }
    let hint = match suggestion {
        Some("docker") => format!("did you mean `docker://{}`?", rest.trim_start_matches('/')),
        Some(t) => format!("did you mean `{t}:{rest}`?"),
        None => format!("write {TRANSPORTS}"),
    };
    err(format!("unknown transport `{prefix}:`; {hint}"))
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty() && t.len() <= 128 && !t.starts_with(['.', '-']) && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |t: &Option<String>| t.as_ref().map(|t| format!(":{t}")).unwrap_or_default();
        match self {
            ImageRef::Oci { dir, tag } => write!(f, "oci:{}{}", dir.display(), opt(tag)),
            ImageRef::OciArchive { file, tag } => write!(f, "oci-archive:{}{}", file.display(), opt(tag)),
            ImageRef::DockerArchive { file, name } => write!(f, "docker-archive:{}{}", file.display(), opt(name)),
            ImageRef::Docker { reference } => write!(f, "docker://{reference}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_transport() {
        assert_eq!(ImageRef::parse("oci:out/img:v1").unwrap(), ImageRef::Oci { dir: "out/img".into(), tag: Some("v1".into()) });
        assert_eq!(ImageRef::parse("oci:out/img").unwrap(), ImageRef::Oci { dir: "out/img".into(), tag: None });
        assert_eq!(ImageRef::parse("oci-archive:a.tar").unwrap(), ImageRef::OciArchive { file: "a.tar".into(), tag: None });
        assert_eq!(
            ImageRef::parse("docker-archive:a.tar:localhost:5000/x/y:v2").unwrap(),
            ImageRef::DockerArchive { file: "a.tar".into(), name: Some("localhost:5000/x/y:v2".into()) }
        );
        assert_eq!(ImageRef::parse("docker://nvcr.io/nvidia/vllm:25.11-py3").unwrap(), ImageRef::Docker { reference: "nvcr.io/nvidia/vllm:25.11-py3".into() });
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
            let e = check_transport(bad).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains(bad), "{bad}: {e}");
        }
        for good in
            ["docker://reg/x:1", "localhost:5000/x:1", "reg.example:443/a/b@sha256:00", "ubuntu:22.04", "ubuntu", "docker:27", "me/app:v1", "127.0.0.1:5000/x"]
        {
            check_transport(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn rejects_what_users_mistype() {
        for bad in ["out/img", "oci:", "oci-dir:x", "docker://", "oci:x:bad tag", "docker-archive:a.tar:notag", "docker-archive:a.tar:UPPER:v1"] {
            let e = ImageRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "error must name the reference: {e}");
        }
        assert!(ImageRef::parse("out/img").unwrap_err().to_string().contains("oci:DIR"));
        for (bad, want) in
            [("dockr://reg/x:1", "did you mean `docker://reg/x:1`?"), ("docker:/reg/x", "did you mean `docker://reg/x`?"), ("ocii:out", "did you mean `oci:`?")]
        {
            let e = ImageRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
