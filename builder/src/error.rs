//! The builder's one error type. Variants carry the operand (file, reference, digest) so the CLI
//! prints one line that names what was wrong and, where there is one, the fix.

use crate::registry::code::ErrorCode;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A recipe, overlay or flag value is wrong; `hint` says how to fix it.
    #[error("{file}: {message}{}", hint.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    Input { file: String, message: String, hint: Option<String> },

    #[error("invalid image reference `{reference}`: {message}")]
    Reference { reference: String, message: String },

    #[error("blob {digest} from {source_name}: digest mismatch (found {found}): the base is corrupt, fetch or save it again")]
    DigestMismatch { source_name: String, digest: String, found: String },

    #[error("blob {digest} from {source_name}: size mismatch (descriptor says {expected} bytes, found {found}): the base is corrupt or truncated")]
    SizeMismatch { source_name: String, digest: String, expected: u64, found: u64 },

    #[error("blob {digest} is missing from {source_name}")]
    MissingBlob { source_name: String, digest: String },

    #[error("{source_name}: {what} has media type `{found}`, expected {expected}")]
    MediaType { source_name: String, what: String, found: String, expected: String },

    #[error("{source_name}: {message}")]
    Malformed { source_name: String, message: String },

    #[error("platform {platform} is not in {source_name} (it has: {available})")]
    MissingPlatform { source_name: String, platform: String, available: String },

    #[error("{context} `{}`: {source}", path.display())]
    Io { context: &'static str, path: PathBuf, source: std::io::Error },

    /// A registry refused or could not be reached; `status` is the HTTP status when the failure
    /// was one, `code` the registry's error code when its error body gave one.
    /// Never carries a credential: messages are built from status codes and the registry's error codes.
    #[error("{reference}: {message}{}", hint.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    Registry { reference: String, status: Option<u16>, code: Option<ErrorCode>, message: String, hint: Option<String> },
}

impl Error {
    pub fn input(file: impl Into<String>, message: impl Into<String>, hint: Option<String>) -> Self {
        Error::Input { file: file.into(), message: message.into(), hint }
    }
    pub fn malformed(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Malformed { source_name: source_name.into(), message: message.into() }
    }
}

/// Adds the path and what was being done to an `io::Error`.
pub trait IoContext<T> {
    fn io_ctx(self, context: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_ctx(self, context: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io { context, path: path.into(), source })
    }
}
