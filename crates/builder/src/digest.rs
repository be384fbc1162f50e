//! Content digests (`sha256:<64 hex>`) and the readers/writers that compute or verify them.

use crate::error::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read, Write};

/// A validated `sha256:` digest. Other algorithms are refused: every image sparkctl meets uses
/// sha256, and refusing early beats half-supporting sha512.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Reads `sha256:<64 lowercase hex digits>`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Digest> {
        let hex = s.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then(|| Digest(s.to_owned()))
    }
    pub(crate) fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }
    pub(crate) fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(h.finalize())))
    }
    pub(crate) fn hex(&self) -> &str {
        &self.0[7..]
    }
    /// The digest as written, `sha256:…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Relative path of the blob in an OCI layout: `blobs/sha256/<hex>`.
    pub fn layout_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks bytes read whole (manifests, configs) against their descriptor.
pub(crate) fn verify_bytes(bytes: &[u8], digest: &Digest, size: u64, source_name: &str) -> Result<()> {
    if bytes.len() as u64 != size {
        return Err(Error::SizeMismatch { source_name: source_name.into(), digest: digest.to_string(), expected: size, found: bytes.len() as u64 });
    }
    let found = Digest::of(bytes);
    if &found != digest {
        return Err(Error::DigestMismatch { source_name: source_name.into(), digest: digest.to_string(), found: found.to_string() });
    }
    Ok(())
}

/// Hashes and counts what passes through a writer.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), count: 0 }
    }
    pub(crate) fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that fails with a digest or size error at EOF (or as soon as it overruns) when the
/// bytes are not those of the descriptor. Streams of any size, constant memory.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    expected: Digest,
    size: u64,
    source_name: String,
}

impl<R: Read> VerifyingReader<R> {
    /// A reader of `inner` that fails unless it yields exactly `size` bytes hashing to `expected`; `source_name` names the image in errors.
    pub fn new(inner: R, expected: Digest, size: u64, source_name: impl Into<String>) -> Self {
        VerifyingReader { inner, hasher: Sha256::new(), count: 0, expected, size, source_name: source_name.into() }
    }
    fn error(&self, e: Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if self.count > self.size || (n == 0 && self.count != self.size) {
            let e = Error::SizeMismatch { source_name: self.source_name.clone(), digest: self.expected.to_string(), expected: self.size, found: self.count };
            return Err(self.error(e));
        }
        if n == 0 {
            let found = Digest::from_hasher(self.hasher.clone());
            if found != self.expected {
                let e = Error::DigestMismatch { source_name: self.source_name.clone(), digest: self.expected.to_string(), found: found.to_string() };
                return Err(self.error(e));
            }
        }
        Ok(n)
    }
}

/// Turns an I/O error raised by a [`VerifyingReader`] back into the builder's error.
pub(crate) fn unwrap_io(e: io::Error, context: &'static str, path: &std::path::Path) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        match e.into_inner().map(|b| b.downcast::<Error>()) {
            Some(Ok(inner)) => return *inner,
            _ => unreachable!("checked above"),
        }
    }
    Error::Io { context, path: path.to_owned(), source: e }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_sha256_with_64_lowercase_hex() {
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(64))).is_some());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_none());
        assert!(Digest::parse(&format!("sha512:{}", "a".repeat(128))).is_none());
        assert!(Digest::parse("sha256:abc").is_none());
    }

    #[test]
    fn empty_digest_is_the_well_known_one() {
        assert_eq!(Digest::of(b"").as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn verifying_reader_rejects_wrong_content_and_truncation() {
        let good = Digest::of(b"hello");
        let mut out = Vec::new();
        VerifyingReader::new(&b"hello"[..], good.clone(), 5, "t").read_to_end(&mut out).unwrap();
        let err = VerifyingReader::new(&b"hellO"[..], good.clone(), 5, "t").read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        let err = VerifyingReader::new(&b"hell"[..], good.clone(), 5, "t").read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().contains("size mismatch"), "{err}");
        let err = VerifyingReader::new(&b"hello!"[..], good, 5, "t").read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().contains("size mismatch"), "{err}");
    }
}
