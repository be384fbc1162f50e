//! Media types of the two families sparkctl reads and writes (OCI and Docker v2 schema 2).

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub(crate) const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub(crate) const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Which family an image belongs to; new layers, configs and indexes follow the base's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Oci,
    Docker,
}

impl Family {
    pub(crate) fn of_manifest(media_type: &str) -> Option<Family> {
        match media_type {
            OCI_MANIFEST => Some(Family::Oci),
            DOCKER_MANIFEST => Some(Family::Docker),
            _ => None,
        }
    }
    pub(crate) fn of_index(media_type: &str) -> Option<Family> {
        match media_type {
            OCI_INDEX => Some(Family::Oci),
            DOCKER_LIST => Some(Family::Docker),
            _ => None,
        }
    }
    pub(crate) fn config(self) -> &'static str {
        match self {
            Family::Oci => OCI_CONFIG,
            Family::Docker => DOCKER_CONFIG,
        }
    }
    pub(crate) fn layer_gzip(self) -> &'static str {
        match self {
            Family::Oci => OCI_LAYER_GZIP,
            Family::Docker => DOCKER_LAYER_GZIP,
        }
    }
}

pub(crate) fn is_index(media_type: &str) -> bool {
    Family::of_index(media_type).is_some()
}
pub(crate) fn is_manifest(media_type: &str) -> bool {
    Family::of_manifest(media_type).is_some()
}
pub(crate) fn is_config(media_type: &str) -> bool {
    matches!(media_type, OCI_CONFIG | DOCKER_CONFIG)
}
