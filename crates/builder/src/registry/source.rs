//! A registry repository as a [`BlobSource`]: the shallow base. Resolving reads one manifest or
//! index (a few kB); manifests and configs are read on demand; layer blobs are fetched only when
//! an output asks for them, into the blob store, verified, resuming a partial download with a
//! `Range` request, several in parallel.

use super::client::{Body, Client, ClientOptions, Scope, Step};
use super::progress::{CountingReader, Progress};
use crate::descriptor::Descriptor;
use crate::digest::{Digest, VerifyingReader};
use crate::error::{Error, IoContext, Result};
use crate::media;
use crate::reference::RegistryRef;
use crate::source::BlobSource;
use crate::store::BlobStore;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Everything a manifest request accepts: sparkctl reads both families.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Manifests and indexes are small; a larger answer is not one.
const MANIFEST_LIMIT: u64 = 8 << 20;

/// The blobs of a registry image, fetched through a client (into the blob store when one is given).
pub struct RegistrySource {
    client: Arc<Client>,
    reference: RegistryRef,
    name: String,
    store: Option<BlobStore>,
    /// Manifests already fetched (the resolved top), by digest.
    cache: Mutex<HashMap<Digest, Vec<u8>>>,
    progress: Mutex<Option<Arc<dyn Progress>>>,
}

impl RegistrySource {
    /// `store`: where layer blobs are cached; without one, layers are streamed. Downloads
    /// report to `opts.progress` when set.
    pub fn open(reference: &RegistryRef, opts: &ClientOptions, store: Option<BlobStore>) -> Result<RegistrySource> {
        let client = Arc::new(Client::connect(&reference.registry, reference.api_host(), opts)?);
        let src = Self::with_client(client, reference, store);
        *src.progress.lock().expect("lock") = opts.progress.clone();
        Ok(src)
    }

    /// A source for `reference` over an existing client; blobs land in `store` when given.
    pub fn with_client(client: Arc<Client>, reference: &RegistryRef, store: Option<BlobStore>) -> RegistrySource {
        RegistrySource {
            client,
            reference: reference.clone(),
            name: format!("docker://{reference}"),
            store,
            cache: Mutex::default(),
            progress: Mutex::default(),
        }
    }

    /// Fetches report here from now on (the pull command's own phase).
    pub(crate) fn set_progress(&self, p: Arc<dyn Progress>) {
        *self.progress.lock().expect("lock") = Some(p);
    }

    fn scope(&self) -> Scope {
        Scope::pull(&self.reference.repository)
    }

    /// Tag (or digest) → the top descriptor (an index or a manifest), verified: when the
    /// reference pins a digest, the bytes must hash to it.
    pub fn resolve(&self) -> Result<Descriptor> {
        let r = self.reference.manifest_reference();
        let (raw, media_type) = self.get_manifest(&r)?;
        let digest = Digest::of(&raw);
        if let Some(pinned) = &self.reference.digest {
            if &digest != pinned {
                return Err(Error::DigestMismatch { source_name: self.name.clone(), digest: pinned.to_string(), found: digest.to_string() });
            }
        }
        let desc = Descriptor::new(&media_type, digest.clone(), raw.len() as u64);
        self.cache.lock().expect("lock").insert(digest, raw);
        Ok(desc)
    }

    /// GET `/manifests/<reference>`: the raw bytes and their media type.
    fn get_manifest(&self, reference: &str) -> Result<(Vec<u8>, String)> {
        let url = self.client.url(&format!("/v2/{}/manifests/{reference}", self.reference.repository));
        let resp = self.client.send("GET", &url, &[("Accept", MANIFEST_ACCEPT)], &self.scope(), &mut || Ok(Body::Empty))?;
        let resp = self.client.expect(&self.name, Step::ReadManifest(reference), resp)?;
        let header_type = resp.content_type().to_owned();
        let mut raw = Vec::new();
        resp.into_reader().take(MANIFEST_LIMIT + 1).read_to_end(&mut raw).map_err(|e| self.io_error("reading a manifest", e))?;
        if raw.len() as u64 > MANIFEST_LIMIT {
            return Err(Error::malformed(&self.name, format!("manifest `{reference}` is larger than {MANIFEST_LIMIT} bytes")));
        }
        // Content-Type is authoritative when it names a manifest type; some registries send
        // `application/json`, then the document's own `mediaType` decides.
        let media_type = if media::is_index(&header_type) || media::is_manifest(&header_type) {
            header_type
        } else {
            serde_json::from_slice::<serde_json::Value>(&raw).ok().and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned)).ok_or_else(|| {
                Error::MediaType {
                    source_name: self.name.clone(),
                    what: format!("manifest `{reference}`"),
                    found: header_type,
                    expected: "an OCI/Docker index or manifest".into(),
                }
            })?
        };
        Ok((raw, media_type))
    }

    fn io_error(&self, context: &'static str, e: io::Error) -> Error {
        crate::digest::unwrap_io(e, context, Path::new(&self.name))
    }

    /// GET `/blobs/<digest>` from `offset` on; answers the response status and body.
    fn get_blob(&self, digest: &Digest, offset: u64) -> Result<ureq::Response> {
        let url = self.client.url(&format!("/v2/{}/blobs/{digest}", self.reference.repository));
        let range = format!("bytes={offset}-");
        let headers: Vec<(&str, &str)> = if offset > 0 { vec![("Range", &range)] } else { vec![] };
        let resp = self.client.send("GET", &url, &headers, &self.scope(), &mut || Ok(Body::Empty))?;
        self.client.expect(&self.name, Step::ReadBlob(digest), resp)
    }

    /// Makes sure a blob is in the store: downloads it (resuming a partial file left by an
    /// interrupted run), verifies digest and size, and only then renames it into place.
    pub fn fetch(&self, desc: &Descriptor) -> Result<PathBuf> {
        let store = self.store.as_ref().ok_or_else(|| Error::malformed(&self.name, "no blob store to fetch into"))?;
        if store.has(&desc.digest, desc.size) {
            return Ok(store.path(&desc.digest));
        }
        // A stable name per digest, so a rerun finds what the last run had downloaded.
        let partial = store.root().join("tmp").join(format!("{}.partial", desc.digest.hex()));
        let progress = self.progress.lock().expect("lock").clone();
        if let Some(p) = &progress {
            let have = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0).min(desc.size);
            p.add_total(desc.size - have);
            p.blob_started(desc.digest.as_str(), desc.size);
        }
        let result = self.download(desc, &partial, progress.as_ref());
        if let Some(p) = &progress {
            p.blob_done(desc.digest.as_str());
        }
        let hasher = result?;
        let found = Digest::from_hasher(hasher);
        if found != desc.digest {
            let _ = fs::remove_file(&partial);
            return Err(Error::DigestMismatch { source_name: self.name.clone(), digest: desc.digest.to_string(), found: found.to_string() });
        }
        let dest = store.path(&desc.digest);
        File::open(&partial).and_then(|f| f.sync_all()).io_ctx("syncing", &partial)?;
        fs::rename(&partial, &dest).io_ctx("storing blob", &dest)?;
        store.remember_verified(&dest, &desc.digest)?;
        Ok(dest)
    }

    /// [`RegistrySource::fetch`], then the cached file verified unless it is unchanged since it
    /// was (it may have changed on disk since it was fetched).
    fn fetch_verified(&self, desc: &Descriptor) -> Result<PathBuf> {
        let path = self.fetch(desc)?;
        let store = self.store.as_ref().ok_or_else(|| Error::malformed(&self.name, "no blob store to fetch into"))?;
        store.verify_file(&path, desc, &self.name).map_err(|e| match e {
            // The registry is not at fault: the copy this machine keeps is, and removing it is the fix.
            Error::DigestMismatch { digest, found, .. } => Error::input(
                path.display().to_string(),
                format!("blob {digest} of {}, cached in the blob store, is corrupt (digest mismatch, found {found})", self.name),
                Some("remove this file; the next build fetches the blob again".into()),
            ),
            e => e,
        })?;
        Ok(path)
    }

    /// Appends to `partial` until it holds `desc.size` bytes; returns the hash of the whole file.
    fn download(&self, desc: &Descriptor, partial: &Path, progress: Option<&Arc<dyn Progress>>) -> Result<Sha256> {
        let mut interrupted = 0;
        loop {
            let mut have = fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
            if have > desc.size {
                have = 0;
            }
            let resp = self.get_blob(&desc.digest, have)?;
            // 206: the server honoured the Range; 200: it sends everything, start over.
            let resumed = resp.status() == 206 && have > 0;
            if !resumed {
                have = 0;
            }
            let mut file = OpenOptions::new().create(true).write(true).truncate(!resumed).append(resumed).open(partial).io_ctx("opening", partial)?;
            let mut hasher = Sha256::new();
            if resumed {
                // Re-hash what is already there rather than trust a file from an earlier run blindly.
                let mut old = File::open(partial).io_ctx("reading", partial)?;
                io::copy(&mut old, &mut HashSink(&mut hasher)).io_ctx("reading", partial)?;
            }
            let remaining = desc.size - have;
            let body = resp.into_reader().take(remaining + 1);
            let mut reader: Box<dyn Read> = match progress {
                Some(p) => Box::new(CountingReader::new(body, Arc::clone(p), desc.digest.as_str())),
                None => Box::new(body),
            };
            let mut tee = TeeHash { file: &mut file, hasher: &mut hasher };
            match io::copy(&mut reader, &mut tee) {
                Ok(n) if have + n == desc.size => return Ok(hasher),
                Ok(n) if have + n > desc.size => {
                    let _ = fs::remove_file(partial);
                    return Err(Error::SizeMismatch { source_name: self.name.clone(), digest: desc.digest.to_string(), expected: desc.size, found: have + n });
                }
                // A short body or a broken connection: resume from where the file ends.
                Ok(_) | Err(_) if interrupted + 1 < 5 => interrupted += 1,
                Ok(n) => {
                    return Err(Error::Registry {
                        reference: self.name.clone(),
                        status: None,
                        code: None,
                        message: format!("blob {} ended after {} of {} bytes", desc.digest, have + n, desc.size),
                        hint: Some("run the command again: the download resumes".into()),
                    })
                }
                Err(e) => return Err(self.io_error("downloading a blob", e)),
            }
        }
    }

    /// Fetches blobs into the store, `parallel` at a time; the first error is returned.
    pub(crate) fn fetch_all(&self, descs: &[Descriptor], parallel: usize) -> Result<()> {
        let mut unique: Vec<&Descriptor> = Vec::new();
        for d in descs {
            if !unique.iter().any(|u| u.digest == d.digest) {
                unique.push(d);
            }
        }
        super::parallel::for_each(&unique, parallel, |d| self.fetch(d).map(|_| ()))
    }
}

struct HashSink<'a>(&'a mut Sha256);
impl Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct TeeHash<'a> {
    file: &'a mut File,
    hasher: &'a mut Sha256,
}
impl Write for TeeHash<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A shared handle as a [`BlobSource`], so the caller keeps the concrete source (to prefetch
/// layers in parallel) while a `BaseImage` owns the boxed one.
pub(crate) struct SharedSource(pub Arc<RegistrySource>);

impl BlobSource for SharedSource {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        self.0.open(desc)
    }
    fn link_to(&self, desc: &Descriptor, dest: &Path) -> Result<bool> {
        self.0.link_to(desc, dest)
    }
}

impl BlobSource for RegistrySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        if media::is_index(&desc.media_type) || media::is_manifest(&desc.media_type) {
            // Manifests live under /manifests/, not /blobs/.
            if let Some(raw) = self.cache.lock().expect("lock").get(&desc.digest) {
                return Ok(Box::new(io::Cursor::new(raw.clone())));
            }
            let (raw, _) = self.get_manifest(desc.digest.as_str())?;
            return Ok(Box::new(io::Cursor::new(raw)));
        }
        if self.store.is_some() {
            let path = self.fetch_verified(desc)?;
            return Ok(Box::new(File::open(&path).io_ctx("opening blob", &path)?));
        }
        let resp = self.get_blob(&desc.digest, 0)?;
        Ok(Box::new(VerifyingReader::new(resp.into_reader(), desc.digest.clone(), desc.size, self.name.clone())))
    }

    fn link_to(&self, desc: &Descriptor, dest: &Path) -> Result<bool> {
        if self.store.is_none() || media::is_index(&desc.media_type) || media::is_manifest(&desc.media_type) {
            return Ok(false);
        }
        let path = self.fetch_verified(desc)?;
        Ok(fs::hard_link(&path, dest).is_ok())
    }
}
