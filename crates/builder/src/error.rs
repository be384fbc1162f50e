//! The builder's one error type. Variants carry the operand (file, reference, digest) so the CLI
//! prints one line that names what was wrong and, where there is one, the fix.

use crate::registry::code::ErrorCode;
use std::path::PathBuf;

/// The result of the library's fallible calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
/// What can go wrong in the library.
pub enum Error {
    /// A recipe, overlay or flag value is wrong; `line` is where in `file`, `hint` says how to fix it.
    #[error("{file}{}: {message}{}", line.map(|l| format!(" line {l}")).unwrap_or_default(), hint.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    Input {
        /// The file (or flag) the value comes from.
        file: String,
        /// The 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
        /// How to fix it, when there is one way.
        hint: Option<String>,
    },

    #[error("invalid image reference `{reference}`: {message}")]
    /// An image reference that does not parse.
    Reference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        message: String,
    },

    #[error("blob {digest} from {source_name}: digest mismatch (found {found}): the base is corrupt, fetch or save it again")]
    /// A blob's bytes do not hash to its digest.
    DigestMismatch {
        /// The image the blob comes from.
        source_name: String,
        /// The digest expected.
        digest: String,
        /// The digest of the bytes read.
        found: String,
    },

    #[error("blob {digest} from {source_name}: size mismatch (descriptor says {expected} bytes, found {found}): the base is corrupt or truncated")]
    /// A blob has another size than its descriptor says.
    SizeMismatch {
        /// The image the blob comes from.
        source_name: String,
        /// The blob's digest.
        digest: String,
        /// The size its descriptor says.
        expected: u64,
        /// The size read.
        found: u64,
    },

    #[error("blob {digest} is missing from {source_name}")]
    /// A blob the image refers to is not there.
    MissingBlob {
        /// The image.
        source_name: String,
        /// The blob's digest.
        digest: String,
    },

    #[error("{source_name}: {what} has media type `{found}`, expected {expected}")]
    /// A manifest, index or config has an unexpected media type.
    MediaType {
        /// The image.
        source_name: String,
        /// What has it (`the index`, `a manifest`…).
        what: String,
        /// The media type found.
        found: String,
        /// The media types expected.
        expected: String,
    },

    #[error("{source_name}: {message}")]
    /// A manifest, index, config or archive that does not follow its format.
    Malformed {
        /// The image.
        source_name: String,
        /// What is wrong.
        message: String,
    },

    #[error("platform {platform} is not in {source_name} (it has: {available})")]
    /// A platform asked for is not in the image.
    MissingPlatform {
        /// The image.
        source_name: String,
        /// The platform asked for.
        platform: String,
        /// The platforms the image has.
        available: String,
    },

    #[error("{context} `{}`: {source}", path.display())]
    /// A file-system operation failed.
    Io {
        /// What was being done (`reading recipe`).
        context: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// A registry refused or could not be reached; `status` is the HTTP status when the failure
    /// was one, `code` the registry's error code when its error body gave one.
    /// Never carries a credential: messages are built from status codes and the registry's error codes.
    #[error("{reference}: {message}{}", hint.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    Registry {
        /// The reference the request was about.
        reference: String,
        /// The HTTP status, when the failure was one.
        status: Option<u16>,
        /// The registry's error code, when its error body gave one.
        code: Option<ErrorCode>,
        /// What went wrong.
        message: String,
        /// How to fix it, when there is one way.
        hint: Option<String>,
    },
}

impl Error {
    pub(crate) fn input(file: impl Into<String>, message: impl Into<String>, hint: Option<String>) -> Self {
        Error::Input { file: file.into(), line: None, message: message.into(), hint }
    }
    /// An input error at `line` of `file`.
    pub(crate) fn input_at(file: impl Into<String>, line: impl Into<Option<usize>>, message: impl Into<String>, hint: Option<String>) -> Self {
        Error::Input { file: file.into(), line: line.into(), message: message.into(), hint }
    }
    /// Places an input error without a line at `line`.
    pub(crate) fn at(self, line: usize) -> Self {
        match self {
            Error::Input { file, line: None, message, hint } => Error::Input { file, line: Some(line), message, hint },
            other => other,
        }
    }
    /// A recipe or overlay that is not TOML, has an unknown key or a value of the wrong type.
    pub(crate) fn toml(file: &str, e: toml_schema::Error) -> Self {
        let line = e.line();
        match e {
            toml_schema::Error::Syntax { column, message, .. } => Error::input_at(file, line, format!("not valid TOML at column {column}: {message}"), None),
            toml_schema::Error::UnknownKey { key, table, suggestion, allowed, .. } => {
                // `[artifact]`, not `[artifact[0]]`: the line says which one.
                let table: String =
                    table.split('[').enumerate().map(|(i, part)| if i == 0 { part } else { part.split_once(']').map_or(part, |(_, rest)| rest) }).collect();
                let place = if table.is_empty() { format!("unknown key `{key}`") } else { format!("unknown key `{key}` in [{table}]") };
                let hint = match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("valid keys: {}", allowed.join(", ")),
                };
                Error::input_at(file, line, place, Some(hint))
            }
            toml_schema::Error::WrongType { path, expected, found, .. } => {
                Error::input_at(file, line, format!("{path} must be {expected}, found {found}"), None)
            }
            toml_schema::Error::Deserialize { path, message, .. } => Error::input_at(file, line, format!("{path}: {message}"), None),
            other => Error::input_at(file, line, other.to_string(), None),
        }
    }
    /// Deserialises `v` into `T`; a value that does not fit is reported as `what` (which says
    /// what would), at the line of the offending part.
    pub(crate) fn typed<T: serde::de::DeserializeOwned>(file: &str, what: &str, v: &toml_schema::Value<'_>) -> Result<T> {
        v.typed().map_err(|e| match e {
            toml_schema::Error::Deserialize { line, message, .. } => Error::input_at(file, line, format!("{what}: {message}"), None),
            other => Error::toml(file, other),
        })
    }
    pub(crate) fn malformed(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Malformed { source_name: source_name.into(), message: message.into() }
    }
}

/// Adds the path and what was being done to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn io_ctx(self, context: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_ctx(self, context: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io { context, path: path.into(), source })
    }
}
