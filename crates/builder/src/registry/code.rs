//! The distribution API's error codes and the one place a registry's JSON error body is read.
//!
//! A registry answers a failed request with `{"errors":[{"code":"…","message":"…","detail":…}]}`.
//! The code is parsed once into [`ErrorCode`], so messages, hints and retry decisions match on
//! the enum; the registry's own message is kept for display only.

use serde_json::Value;
use std::fmt;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// An error code of the OCI distribution specification; codes it does not name (a
        /// registry's own, or a newer spec's) are kept as [`ErrorCode::Other`].
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
            /// A code the specification does not name, as the registry wrote it.
            Other(String),
        }

        impl ErrorCode {
            /// The code for its text; the match is exact, as the specification spells codes in
            /// capitals (a differently spelled code is kept as [`ErrorCode::Other`]).
            pub(crate) fn parse(text: &str) -> ErrorCode {
                match text {
                    $($text => ErrorCode::$variant,)*
                    other => ErrorCode::Other(other.to_owned()),
                }
            }

            /// The code as the registry wrote it.
            pub(crate) fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                    ErrorCode::Other(text) => text,
                }
            }
        }
    };
}

error_codes! {
    /// The blob is not in the repository.
    BlobUnknown = "BLOB_UNKNOWN",
    /// The upload failed; the client may restart it.
    BlobUploadInvalid = "BLOB_UPLOAD_INVALID",
    /// The upload session is unknown (expired or cancelled).
    BlobUploadUnknown = "BLOB_UPLOAD_UNKNOWN",
    /// The uploaded content does not match the digest given.
    DigestInvalid = "DIGEST_INVALID",
    /// A manifest references a blob the repository lacks.
    ManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN",
    /// The manifest is invalid.
    ManifestInvalid = "MANIFEST_INVALID",
    /// The manifest (tag or digest) is not in the repository.
    ManifestUnknown = "MANIFEST_UNKNOWN",
    /// The repository name is invalid.
    NameInvalid = "NAME_INVALID",
    /// The repository is not known to the registry.
    NameUnknown = "NAME_UNKNOWN",
    /// The content does not match the length given.
    SizeInvalid = "SIZE_INVALID",
    /// Authentication is required.
    Unauthorized = "UNAUTHORIZED",
    /// The credentials lack access to the resource.
    Denied = "DENIED",
    /// The operation is not supported.
    Unsupported = "UNSUPPORTED",
    /// Too many requests: the client should slow down and try again.
    TooManyRequests = "TOOMANYREQUESTS",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first error of a registry's error body: its code and its message. Both are absent when
/// the body is empty, not JSON (a proxy's or web server's page) or has no `errors`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// The registry's error code, when the body has a known one.
    pub code: Option<ErrorCode>,
    /// The registry's message, at most 200 characters (it is shown, not interpreted).
    pub(crate) message: Option<String>,
}

impl ErrorBody {
    /// Reads a registry's error body.
    pub fn parse(body: &str) -> ErrorBody {
        let first = serde_json::from_str::<Value>(body).ok().and_then(|v| v.get("errors")?.as_array()?.first().cloned());
        let text = |key: &str| first.as_ref().and_then(|e| e.get(key)?.as_str().map(str::to_owned)).filter(|s| !s.is_empty());
        ErrorBody { code: text("code").map(|c| ErrorCode::parse(&c)), message: text("message").map(|m| m.chars().take(200).collect()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_error_body_gives_its_first_code_and_message() {
        // As Distribution (`docker-registry`) answers a missing tag.
        let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#;
        assert_eq!(ErrorBody::parse(body), ErrorBody { code: Some(ErrorCode::ManifestUnknown), message: Some("manifest unknown".into()) });
        let two = r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"app/x"}},{"code":"DENIED","message":"no"}]}"#;
        assert_eq!(ErrorBody::parse(two).code, Some(ErrorCode::NameUnknown), "the first error decides");
        let bare = r#"{"errors":[{"code":"TOOMANYREQUESTS"}]}"#;
        assert_eq!(ErrorBody::parse(bare), ErrorBody { code: Some(ErrorCode::TooManyRequests), message: None });
        let long = format!(r#"{{"errors":[{{"code":"DENIED","message":"{}"}}]}}"#, "é".repeat(300));
        assert_eq!(ErrorBody::parse(&long).message.unwrap().chars().count(), 200);
    }

    #[test]
    fn no_code_from_an_empty_or_foreign_body() {
        for body in
            ["", "<html>nope</html>", "{}", r#"{"errors":[]}"#, r#"{"errors":"MANIFEST_UNKNOWN"}"#, r#"{"errors":[{"code":""}]}"#, r#"{"errors":[{"code":7}]}"#]
        {
            assert_eq!(ErrorBody::parse(body).code, None, "{body}");
        }
        // A message without a code is still shown.
        assert_eq!(ErrorBody::parse(r#"{"errors":[{"message":"quota exceeded"}]}"#).message.as_deref(), Some("quota exceeded"));
    }

    #[test]
    fn unknown_codes_are_kept_as_written() {
        let code = ErrorBody::parse(r#"{"errors":[{"code":"PAYMENT_REQUIRED","message":"x"}]}"#).code.unwrap();
        assert_eq!(code, ErrorCode::Other("PAYMENT_REQUIRED".into()));
        assert_eq!(code.to_string(), "PAYMENT_REQUIRED");
        assert_eq!(ErrorCode::parse("manifest_unknown"), ErrorCode::Other("manifest_unknown".into()), "codes are matched exactly");
    }

    #[test]
    fn every_spec_code_reads_back_as_written() {
        let all = [
            "BLOB_UNKNOWN",
            "BLOB_UPLOAD_INVALID",
            "BLOB_UPLOAD_UNKNOWN",
            "DIGEST_INVALID",
            "MANIFEST_BLOB_UNKNOWN",
            "MANIFEST_INVALID",
            "MANIFEST_UNKNOWN",
            "NAME_INVALID",
            "NAME_UNKNOWN",
            "SIZE_INVALID",
            "UNAUTHORIZED",
            "DENIED",
            "UNSUPPORTED",
            "TOOMANYREQUESTS",
        ];
        for text in all {
            let code = ErrorCode::parse(text);
            assert!(!matches!(code, ErrorCode::Other(_)), "{text}");
            assert_eq!(code.as_str(), text);
        }
    }
}
