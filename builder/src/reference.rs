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
            other => Err(err(&format!("unknown transport `{other}`; write {TRANSPORTS}"))),
        }
    }
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
    fn rejects_what_users_mistype() {
        for bad in ["out/img", "oci:", "oci-dir:x", "docker://", "oci:x:bad tag", "docker-archive:a.tar:notag", "docker-archive:a.tar:UPPER:v1"] {
            let e = ImageRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "error must name the reference: {e}");
        }
        assert!(ImageRef::parse("out/img").unwrap_err().to_string().contains("oci:DIR"));
    }
}
