//! Pushing an image: blobs the target lacks (HEAD first), a cross-repository mount when the blob
//! already sits in another repository of the same registry, otherwise one streamed monolithic
//! upload per blob (POST, then one PUT with `Content-Length`: no 4 MiB chunking), several blobs
//! in flight; then the manifests (children before parents), then the top under the tag.
//!
//! An upload that fails for a reason worth retrying ([`RetryPolicy::retryable_error`]) is
//! restarted from a fresh upload session (a half-written session cannot be trusted); blobs that
//! finished before a crash are found by HEAD on the rerun.

use super::client::{Body, Client, Scope, Step};
use super::parallel;
use super::progress::{CountingReader, Progress};
use super::retry::RetryPolicy;
use crate::build::{BuiltImage, Origin};
use crate::descriptor::Descriptor;
use crate::digest::{Digest, VerifyingReader};
use crate::error::{Error, IoContext, Result};
use crate::media;
use crate::reference::RegistryRef;
use crate::source::BlobSource;
use serde::Serialize;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Where the bytes of one blob come from.
#[derive(Clone)]
pub(crate) enum BlobData<'a> {
    /// The base (a layout, an archive, a registry): streamed, verified on the way.
    Source(&'a dyn BlobSource),
    /// A file (the blob store): its digest was verified when it was stored.
    File(PathBuf),
    Memory(Arc<Vec<u8>>),
}

pub(crate) struct PushItem<'a> {
    pub(crate) desc: Descriptor,
    pub(crate) data: BlobData<'a>,
}

/// What a push did, for `--json` and the tests.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct PushSummary {
    /// The reference pushed to.
    pub reference: String,
    /// The digest of the pushed top (index or manifest).
    pub digest: String,
    pub(crate) blobs: u64,
    /// Blobs the registry already had.
    pub blobs_existing: u64,
    /// Blobs mounted from another repository of the registry.
    pub blobs_mounted: u64,
    /// Blobs uploaded.
    pub blobs_uploaded: u64,
    /// Manifests and indexes uploaded.
    pub manifests_pushed: u64,
    pub(crate) manifests_existing: u64,
    /// Request-body bytes of the uploads (blobs and manifests) that went to the registry.
    pub bytes_uploaded: u64,
    pub(crate) seconds: f64,
}

/// How a push runs.
pub struct PushOptions {
    /// Blobs in flight at once (at least 1; the default is 8).
    pub parallel: usize,
    /// Where the blob uploads report their progress; `finished` comes after the manifests.
    pub progress: Arc<dyn Progress>,
}

enum Outcome {
    Existing,
    Mounted,
    Uploaded(u64),
}

struct Pusher<'c> {
    client: &'c Client,
    /// Name of the source the image's base blobs come from (`docker://…` for a registry base).
    base_name: Option<String>,
    dest: RegistryRef,
    name: String,
    progress: Arc<dyn Progress>,
}

/// Pushes a built (or copied) image: its blobs in the order [`BuiltImage::blobs`] gives.
pub fn push_image(client: &Client, dest: &RegistryRef, image: &BuiltImage, opts: &PushOptions) -> Result<PushSummary> {
    let items: Vec<PushItem<'_>> = image
        .blobs()?
        .into_iter()
        .map(|b| {
            let data = match b.origin {
                Origin::Inline(raw) => BlobData::Memory(Arc::new(raw)),
                Origin::Store => BlobData::File(image.store.path(&b.desc.digest)),
                Origin::Base => BlobData::Source(image.base.source.as_ref()),
            };
            PushItem { desc: b.desc, data }
        })
        .collect();
    push(client, dest, &items, opts)
}

/// Pushes `items` (every blob of the image, children before parents, the top last) to `dest`.
pub(crate) fn push(client: &Client, dest: &RegistryRef, items: &[PushItem<'_>], opts: &PushOptions) -> Result<PushSummary> {
    let start = Instant::now();
    let top = items.last().ok_or_else(|| Error::malformed(dest.to_string(), "nothing to push"))?;
    if !(media::is_index(&top.desc.media_type) || media::is_manifest(&top.desc.media_type)) {
        return Err(Error::malformed(dest.to_string(), "the last item of a push must be the index or manifest"));
    }
    let base_name = items.iter().find_map(|i| match &i.data {
        BlobData::Source(src) => Some(src.name().to_owned()),
        _ => None,
    });
    if let Some(d) = dest.digest.as_ref().filter(|d| **d != top.desc.digest) {
        return Err(Error::Reference {
            reference: dest.to_string(),
            message: format!("the destination names digest {d} but the image is {}; drop `@{d}` or push the image it names", top.desc.digest),
        });
    }
    let p = Pusher { client, base_name, dest: dest.clone(), name: format!("docker://{dest}"), progress: Arc::clone(&opts.progress) };
    let (manifests, blobs): (Vec<&PushItem>, Vec<&PushItem>) =
        items.iter().partition(|i| media::is_index(&i.desc.media_type) || media::is_manifest(&i.desc.media_type));
    let mut summary = PushSummary { reference: dest.to_string(), digest: top.desc.digest.to_string(), blobs: blobs.len() as u64, ..Default::default() };
    p.progress.add_total(blobs.iter().map(|b| b.desc.size).sum());
    let counts = Mutex::new((0u64, 0u64, 0u64));
    let bytes = AtomicU64::new(0);
    parallel::for_each(&blobs, opts.parallel, |item| {
        let outcome = p.push_blob(item)?;
        let mut c = counts.lock().expect("lock");
        match outcome {
            Outcome::Existing => c.0 += 1,
            Outcome::Mounted => c.1 += 1,
            Outcome::Uploaded(n) => {
                c.2 += 1;
                bytes.fetch_add(n, Ordering::Relaxed);
            }
        }
        Ok(())
    })?;
    (summary.blobs_existing, summary.blobs_mounted, summary.blobs_uploaded) = counts.into_inner().expect("lock");
    summary.bytes_uploaded = bytes.into_inner();
    let last = manifests.len() - 1;
    for (i, m) in manifests.iter().enumerate() {
        // Children by digest; the top by tag (by digest when the destination names no tag).
        let reference = if i == last { dest.tag.clone().unwrap_or_else(|| m.desc.digest.to_string()) } else { m.desc.digest.to_string() };
        match p.push_manifest(m, &reference)? {
            Some(n) => {
                summary.manifests_pushed += 1;
                summary.bytes_uploaded += n;
            }
            None => summary.manifests_existing += 1,
        }
    }
    summary.seconds = start.elapsed().as_secs_f64();
    p.progress.finished();
    Ok(summary)
}

impl Pusher<'_> {
    fn repo(&self) -> &str {
        &self.dest.repository
    }

    fn scope(&self) -> Scope {
        Scope::push(self.repo())
    }

    fn head_blob(&self, digest: &Digest) -> Result<bool> {
        let url = self.client.url(&format!("/v2/{}/blobs/{digest}", self.repo()));
        let resp = self.client.send("HEAD", &url, &[], &self.scope(), &mut || Ok(Body::Empty))?;
        let resp = self.client.expect(&self.name, Step::CheckBlob(digest), resp)?;
        // The step's two answers: 200 the registry has the blob, 404 it does not.
        Ok(resp.status() == 200)
    }

    /// The repository to mount from: the image's base is a repository of this same registry.
    /// Tried for every blob: a mount of a blob the base lacks answers 202 with the upload
    /// session the upload needed anyway, so a miss costs no round trip.
    fn mount_source(&self) -> Option<String> {
        let from = RegistryRef::parse(self.base_name.as_deref()?.strip_prefix("docker://")?).ok()?;
        (from.registry == self.dest.registry && from.repository != self.dest.repository).then_some(from.repository)
    }

    fn push_blob(&self, item: &PushItem<'_>) -> Result<Outcome> {
        let digest = &item.desc.digest;
        if self.head_blob(digest)? {
            return Ok(Outcome::Existing);
        }
        let mount = self.mount_source();
        let policy = self.client.retry_policy().clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let location = match self.start_upload(digest, mount.as_deref())? {
                None => return Ok(Outcome::Mounted),
                Some(l) => l,
            };
            self.progress.blob_started(digest.as_str(), item.desc.size);
            let result = self.upload(item, &location);
            self.progress.blob_done(digest.as_str());
            match result {
                Ok(n) => return Ok(Outcome::Uploaded(n)),
                // The session may hold part of the bytes: start a fresh one.
                Err(e) if attempt < policy.attempts && RetryPolicy::retryable_error(&e) => std::thread::sleep(policy.delay(attempt, None)),
                Err(e) => return Err(e),
            }
        }
    }

    /// POST an upload session (with `mount`/`from` when mounting). `None`: the blob was mounted.
    fn start_upload(&self, digest: &Digest, mount_from: Option<&str>) -> Result<Option<String>> {
        let (path, scope) = match mount_from {
            Some(from) => (format!("/v2/{}/blobs/uploads/?mount={digest}&from={from}", self.repo()), self.scope().and_pull(from)),
            None => (format!("/v2/{}/blobs/uploads/", self.repo()), self.scope()),
        };
        let url = self.client.url(&path);
        let resp = self.client.send("POST", &url, &[("Content-Length", "0")], &scope, &mut || Ok(Body::Empty))?;
        let resp = self.client.expect(&self.name, Step::StartUpload { digest, mount: mount_from.is_some() }, resp)?;
        // 201 (expected only for a mount): mounted. 202: the session to upload into.
        if resp.status() == 201 {
            return Ok(None);
        }
        let location = resp.header("Location").ok_or_else(|| Error::malformed(&self.name, "upload session without a Location"))?;
        let base = url::Url::parse(&url).map_err(|e| Error::malformed(&self.name, format!("bad URL: {e}")))?;
        let mut put = base.join(location).map_err(|_| Error::malformed(&self.name, "upload Location is not a URL"))?;
        put.query_pairs_mut().append_pair("digest", digest.as_str());
        Ok(Some(put.to_string()))
    }

    /// One PUT with the whole blob streamed; returns the bytes sent.
    fn upload(&self, item: &PushItem<'_>, put_url: &str) -> Result<u64> {
        let desc = &item.desc;
        // A digest error found while streaming surfaces as a transport error; keep the real one.
        let verify_error: Arc<Mutex<Option<Error>>> = Arc::default();
        let mut open = || -> Result<Body> {
            let reader: Box<dyn Read + Send + '_> = match &item.data {
                BlobData::Memory(b) => Box::new(std::io::Cursor::new(Arc::clone(b).to_vec())),
                BlobData::File(path) => Box::new(std::fs::File::open(path).io_ctx("opening blob", path)?),
                BlobData::Source(src) => {
                    let r = src.open(desc)?;
                    Box::new(RecordingVerifier { inner: VerifyingReader::new(r, desc.digest.clone(), desc.size, src.name()), slot: Arc::clone(&verify_error) })
                }
            };
            Ok(Body::Stream(Box::new(CountingReader::new(reader, Arc::clone(&self.progress), desc.digest.as_str())), desc.size))
        };
        let resp = self.client.send_once("PUT", put_url, &[("Content-Type", "application/octet-stream")], &self.scope(), &mut open);
        if let Some(e) = verify_error.lock().expect("lock").take() {
            return Err(e);
        }
        self.client.expect(&self.name, Step::UploadBlob(&desc.digest), resp?)?;
        Ok(desc.size)
    }

    /// PUT a manifest unless the registry has it under `reference` already. `Some(bytes)` when sent.
    fn push_manifest(&self, item: &PushItem<'_>, reference: &str) -> Result<Option<u64>> {
        let desc = &item.desc;
        let raw = match &item.data {
            BlobData::Memory(b) => b.to_vec(),
            BlobData::File(path) => std::fs::read(path).io_ctx("reading manifest", path)?,
            BlobData::Source(src) => src.read_verified(desc)?,
        };
        let url = self.client.url(&format!("/v2/{}/manifests/{reference}", self.repo()));
        // Only a 200 naming our digest skips the PUT; any other answer (404, another digest, a
        // registry that refuses HEAD) leaves the decision to the PUT and its expected 201.
        let head = self.client.send("HEAD", &url, &[("Accept", desc.media_type.as_str())], &self.scope(), &mut || Ok(Body::Empty))?;
        if head.status() == 200 && head.header("Docker-Content-Digest") == Some(desc.digest.as_str()) {
            return Ok(None);
        }
        let resp = self.client.send("PUT", &url, &[("Content-Type", desc.media_type.as_str())], &self.scope(), &mut || Ok(Body::Bytes(raw.clone())))?;
        let resp = self.client.expect(&self.name, Step::PushManifest(&desc.digest), resp)?;
        if let Some(d) = resp.header("Docker-Content-Digest") {
            if d != desc.digest.as_str() {
                return Err(Error::DigestMismatch { source_name: self.name.clone(), digest: desc.digest.to_string(), found: d.to_owned() });
            }
        }
        Ok(Some(raw.len() as u64))
    }
}

/// Stores the builder error of a failed verification where the pusher can find it.
struct RecordingVerifier<R> {
    inner: VerifyingReader<R>,
    slot: Arc<Mutex<Option<Error>>>,
}

impl<R: Read> Read for RecordingVerifier<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.get_ref().is_some_and(|i| i.is::<Error>()) => {
                let inner = crate::digest::unwrap_io(e, "verifying", std::path::Path::new(""));
                let message = inner.to_string();
                *self.slot.lock().expect("lock") = Some(inner);
                Err(std::io::Error::other(message))
            }
            other => other,
        }
    }
}
