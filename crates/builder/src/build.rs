//! The build: append one layer per overlay to every kept platform of the base, edit each config,
//! and assemble new manifests and a new index. Reads only the base's index, manifests and configs.

use crate::config::{self, LayerRecord};
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::json::canonical;
use crate::layer::{self, LayerBlob, COMPRESSION};
use crate::media::{self, Family};
use crate::overlay::Overlay;
use crate::platform::Platform;
use crate::recipe::Recipe;
use crate::source::{BaseImage, BaseManifest, BaseTop};
use crate::store::BlobStore;
use crate::tree::{self, Entry, Kind};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

/// Everything a build needs besides the base.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The recipe being built.
    pub recipe: Recipe,
    /// The recipe's overlays, read, in the recipe's order.
    pub overlays: Vec<Overlay>,
    /// Kept platforms (the recipe's unless `--platform` overrides).
    pub platforms: Vec<Platform>,
    /// `--label`s: config labels and annotations on top of the recipe's.
    pub labels: Vec<(String, String)>,
    /// `--artifact PATH@PLATFORM=FILE`: (image path, platform, file).
    pub artifacts: Vec<(String, Platform, PathBuf)>,
    /// `SOURCE_DATE_EPOCH`: every timestamp of the new content.
    pub epoch: u64,
    /// The base reference as given; a `docker://` one becomes the `org.opencontainers.image.base.name` annotation.
    pub base_name: String,
}

/// Where an output finds a blob's bytes.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Manifests, configs, the index: built in memory.
    Inline(Vec<u8>),
    /// New layers, in the blob store.
    Store,
    /// Base blobs, from the base's source.
    Base,
}

#[derive(Debug, Clone)]
/// One blob of a built image and where its bytes are.
pub struct Blob {
    /// The blob's descriptor.
    pub desc: Descriptor,
    /// Where its bytes are.
    pub origin: Origin,
}

/// One rewritten platform image.
#[derive(Debug, Clone)]
pub struct BuiltManifest {
    pub(crate) platform: Platform,
    /// The new manifest's descriptor.
    pub desc: Descriptor,
    pub(crate) raw: Vec<u8>,
    /// The new config's descriptor.
    pub config: Descriptor,
    pub(crate) config_raw: Vec<u8>,
    /// The base's layers, kept.
    pub base_layers: Vec<Descriptor>,
    /// The layers the overlays added.
    pub new_layers: Vec<Descriptor>,
}

/// A built image: the new manifests, configs and index over the base, with the new layers in the blob store.
pub struct BuiltImage {
    /// The base it was built on.
    pub base: BaseImage,
    pub(crate) store: BlobStore,
    /// The image's top: the new index, or the one manifest.
    pub top: Descriptor,
    /// The top's bytes.
    pub top_raw: Vec<u8>,
    /// One rewritten image per kept platform.
    pub manifests: Vec<BuiltManifest>,
    /// Index entries copied as they were (attestations, other platforms with `keep_other_platforms`).
    pub verbatim: Vec<Descriptor>,
}

impl BuiltImage {
    /// An existing image, unchanged (for copying it: push, pull, re-export).
    pub fn unchanged(base: BaseImage, store: BlobStore) -> Result<BuiltImage> {
        let (top, top_raw) = match &base.top {
            BaseTop::Index { desc, raw, .. } => (desc.clone(), raw.clone()),
            BaseTop::Manifest => (base.entries[0].0.clone(), base.entries[0].1.as_ref().expect("single manifest read").raw.clone()),
        };
        let verbatim = match &base.top {
            BaseTop::Index { .. } => base.entries.iter().map(|(d, _)| d.clone()).collect(),
            BaseTop::Manifest => Vec::new(),
        };
        let manifests = match &base.top {
            BaseTop::Index { .. } => Vec::new(),
            BaseTop::Manifest => {
                let m = base.entries[0].1.as_ref().expect("single manifest read");
                let platform = config_platform(&m.config_raw).unwrap_or(Platform { os: "linux".into(), arch: "unknown".into(), variant: None });
                vec![BuiltManifest {
                    platform,
                    desc: m.desc.clone(),
                    raw: m.raw.clone(),
                    config: m.config_desc.clone(),
                    config_raw: m.config_raw.clone(),
                    base_layers: m.layers.clone(),
                    new_layers: vec![],
                }]
            }
        };
        Ok(BuiltImage { base, store, top, top_raw, manifests, verbatim })
    }

    /// Whether the top is an index (else one manifest).
    pub fn is_index(&self) -> bool {
        media::is_index(&self.top.media_type)
    }

    /// Every blob of the image, each once, children before parents (the order a registry push
    /// needs: layers and configs, then manifests, then the index).
    pub fn blobs(&self) -> Result<Vec<Blob>> {
        let mut out: Vec<Blob> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut add = |desc: &Descriptor, origin: Origin, out: &mut Vec<Blob>| {
            if seen.insert(desc.digest.clone()) {
                out.push(Blob { desc: desc.clone(), origin });
            }
        };
        for m in &self.manifests {
            for l in &m.base_layers {
                add(l, Origin::Base, &mut out);
            }
            for l in &m.new_layers {
                add(l, Origin::Store, &mut out);
            }
            add(&m.config, Origin::Inline(m.config_raw.clone()), &mut out);
            add(&m.desc, Origin::Inline(m.raw.clone()), &mut out);
        }
        for d in &self.verbatim {
            if media::is_manifest(&d.media_type) {
                let raw = self.base.source.read_verified(d)?;
                let json: Value = serde_json::from_slice(&raw).map_err(|e| Error::malformed(self.base.name(), format!("manifest {}: {e}", d.digest)))?;
                let children = json.get("config").into_iter().chain(json.get("layers").and_then(Value::as_array).into_iter().flatten());
                for c in children {
                    add(&Descriptor::from_json(c, self.base.name())?, Origin::Base, &mut out);
                }
                add(d, Origin::Inline(raw), &mut out);
            } else {
                return Err(Error::malformed(
                    self.base.name(),
                    format!("index entry {} has media type `{}`; only manifests can be copied", d.digest, d.media_type),
                ));
            }
        }
        if self.is_index() {
            add(&self.top, Origin::Inline(self.top_raw.clone()), &mut out);
        }
        Ok(out)
    }

    /// Opens a blob's bytes. Base blobs are streamed unverified: wrap in `VerifyingReader`.
    pub fn open(&self, blob: &Blob) -> Result<Box<dyn Read + Send + '_>> {
        match &blob.origin {
            Origin::Inline(b) => Ok(Box::new(std::io::Cursor::new(b.clone()))),
            Origin::Store => {
                let p = self.store.path(&blob.desc.digest);
                Ok(Box::new(std::fs::File::open(&p).io_ctx("opening blob", &p)?))
            }
            Origin::Base => self.base.source.open(&blob.desc),
        }
    }

    /// The runnable platform images (rewritten or verbatim), for single-platform outputs.
    pub(crate) fn platforms(&self) -> Vec<Platform> {
        self.manifests.iter().map(|m| m.platform.clone()).collect()
    }
}

fn config_platform(raw: &[u8]) -> Option<Platform> {
    let v: Value = serde_json::from_slice(raw).ok()?;
    Some(Platform {
        os: v.get("os")?.as_str()?.to_owned(),
        arch: v.get("architecture")?.as_str()?.to_owned(),
        variant: v.get("variant").and_then(Value::as_str).map(str::to_owned),
    })
}

/// One layer per (overlay index, its artifact files, the platform for a Python overlay).
type LayerKey = (usize, Vec<(String, PathBuf)>, Option<String>);

/// Builds the image. The order matters for "nothing half-written": every input is checked
/// (platforms exist, artifacts present and of the right machine) before a layer is written.
pub fn build(opts: &BuildOptions, base: BaseImage, store: BlobStore) -> Result<BuiltImage> {
    let kept = select_platforms(&base, &opts.platforms, &opts.recipe)?;
    let artifacts = resolve_artifacts(opts, &kept)?;
    let mut layers = Layers { opts, store: &store, artifacts: &artifacts, written: BTreeMap::new() };
    let mut manifests = Vec::new();
    let mut rewritten: BTreeMap<Digest, usize> = BTreeMap::new();
    for (entry_idx, platform) in &kept {
        let bm = base.entries[*entry_idx].1.as_ref().expect("kept entries are runnable manifests");
        let manifest = rewrite_manifest(opts, &base, bm, platform, &mut layers)?;
        rewritten.insert(bm.desc.digest.clone(), manifests.len());
        manifests.push(manifest);
    }
    let (top, top_raw, verbatim) = match &base.top {
        BaseTop::Manifest => (manifests[0].desc.clone(), manifests[0].raw.clone(), Vec::new()),
        BaseTop::Index { desc, json, .. } => rewrite_index(opts, &base, desc, json, &rewritten, &mut manifests),
    };
    Ok(BuiltImage { base, store, top, top_raw, manifests, verbatim })
}

/// The overlays' layers, written into the store as the platforms ask for them. Overlays without
/// artifacts give the same blob for every platform, written once.
struct Layers<'a> {
    opts: &'a BuildOptions,
    store: &'a BlobStore,
    artifacts: &'a BTreeMap<(String, Platform), PathBuf>,
    written: BTreeMap<LayerKey, LayerBlob>,
}

/// What the overlays add to one platform's image.
struct Added {
    layers: Vec<Descriptor>,
    /// (diff_id, created_by, comment) of each layer, for the config's history.
    records: Vec<(Digest, String, String)>,
    env: Vec<(String, String)>,
}

impl Layers<'_> {
    /// The layers of every overlay that applies to `platform`, in overlay order.
    fn for_platform(&mut self, bm: &BaseManifest, platform: &Platform, family: Family) -> Result<Added> {
        let mut added = Added { layers: Vec::new(), records: Vec::new(), env: Vec::new() };
        for (oi, overlay) in self.opts.overlays.iter().enumerate() {
            if !overlay.applies_to(platform) {
                continue;
            }
            added.env.extend(overlay.env.iter().cloned());
            let blob = self.layer(oi, overlay, bm, platform)?;
            let mut desc = Descriptor::new(family.layer_gzip(), blob.digest.clone(), blob.size);
            if family == Family::Oci {
                desc = desc.with_annotations(&[("dev.sparkctl.overlay".into(), overlay.name.clone())]);
            }
            added.layers.push(desc);
            added.records.push((blob.diff_id.clone(), format!("sparkctl: overlay {}", overlay.name), overlay.description.clone()));
        }
        Ok(added)
    }

    /// Overlay `oi`'s layer for `platform`: written on first use, then the same blob.
    fn layer(&mut self, oi: usize, overlay: &Overlay, bm: &BaseManifest, platform: &Platform) -> Result<LayerBlob> {
        let opts = self.opts;
        let arts: Vec<(String, PathBuf)> =
            overlay.artifacts.iter().map(|a| (a.path.clone(), self.artifacts[&(a.path.clone(), platform.clone())].clone())).collect();
        // A Python layer differs per platform (wheels); others only by their artifacts.
        let key = (oi, arts.clone(), overlay.python.as_ref().map(|_| platform.to_string()));
        if let Some(b) = self.written.get(&key) {
            return Ok(b.clone());
        }
        let b = match &overlay.python {
            Some(py) => {
                // `base.python` speaks for the recipe's own base, not a `--base` stand-in.
                let declared = opts.recipe.base_python.as_deref().filter(|_| opts.base_name == opts.recipe.base);
                let facts = crate::python::BaseFacts { name: &opts.base_name, config: &bm.config_raw, python: declared };
                crate::python::overlay_layer(py, overlay, self.store, platform, &facts, opts.epoch)?
            }
            None => crate::layer_cache::write(self.store, &overlay_entries(overlay, &arts)?, opts.epoch)?,
        };
        self.written.insert(key, b.clone());
        Ok(b)
    }
}

/// One platform's image: the base manifest with the overlays' layers appended and its config
/// edited to match.
fn rewrite_manifest(opts: &BuildOptions, base: &BaseImage, bm: &BaseManifest, platform: &Platform, layers: &mut Layers<'_>) -> Result<BuiltManifest> {
    let family = Family::of_manifest(&bm.desc.media_type).expect("read_manifest checked the type");
    let Added { layers: new_layers, records, env } = layers.for_platform(bm, platform, family)?;
    let (config, config_raw) = edit_config(opts, base, bm, family, &records, env)?;
    let mut manifest = bm.json.clone();
    manifest["config"] = config.raw.clone();
    let manifest_layers = manifest["layers"].as_array_mut().expect("read_manifest checked layers");
    manifest_layers.extend(new_layers.iter().map(|d| d.raw.clone()));
    if family == Family::Oci {
        set_annotations(&mut manifest, &image_annotations(opts, base));
    }
    let raw = canonical(&manifest);
    let mut desc = Descriptor::new(&bm.desc.media_type, Digest::of(&raw), raw.len() as u64);
    desc.platform = Some(platform.clone());
    Ok(BuiltManifest { platform: platform.clone(), desc, raw, config, config_raw, base_layers: bm.layers.clone(), new_layers })
}

/// The base config with the new layers' diff_ids and history, the overlays' env and the labels.
fn edit_config(
    opts: &BuildOptions,
    base: &BaseImage,
    bm: &BaseManifest,
    family: Family,
    records: &[(Digest, String, String)],
    env: Vec<(String, String)>,
) -> Result<(Descriptor, Vec<u8>)> {
    let layer_records: Vec<LayerRecord<'_>> = records.iter().map(|(d, by, c)| LayerRecord { diff_id: d, created_by: by.clone(), comment: c.clone() }).collect();
    let labels = image_labels(opts, base);
    let edit = config::Edit {
        layers: layer_records,
        env,
        recipe: &opts.recipe.config,
        extra_labels: &labels,
        epoch: opts.epoch,
        recipe_name: recipe_name(&opts.recipe),
    };
    let config_json = config::apply(&bm.config_raw, &edit, base.name())?;
    let config_raw = canonical(&config_json);
    Ok((Descriptor::new(family.config(), Digest::of(&config_raw), config_raw.len() as u64), config_raw))
}

/// The new index: the base's entries in their order, rewritten ones pointing at the new
/// manifests (whose descriptors become those entries), kept ones verbatim, the rest dropped.
fn rewrite_index(
    opts: &BuildOptions,
    base: &BaseImage,
    desc: &Descriptor,
    json: &Value,
    rewritten: &BTreeMap<Digest, usize>,
    manifests: &mut [BuiltManifest],
) -> (Descriptor, Vec<u8>, Vec<Descriptor>) {
    let family = Family::of_index(&desc.media_type).expect("read checked the type");
    let mut entries = Vec::new();
    let mut verbatim = Vec::new();
    for (d, _) in &base.entries {
        if let Some(&i) = rewritten.get(&d.digest) {
            // Same entry object, new digest/size: platform and annotations stay.
            let mut e = d.raw.clone();
            e["digest"] = json!(manifests[i].desc.digest.as_str());
            e["size"] = json!(manifests[i].desc.size);
            manifests[i].desc.raw = e.clone();
            entries.push(e);
        } else if keep_verbatim(d, base, rewritten, opts.recipe.keep_other_platforms) {
            verbatim.push(d.clone());
            entries.push(d.raw.clone());
        }
    }
    let mut index = json.clone();
    index["manifests"] = Value::Array(entries);
    if family == Family::Oci {
        set_annotations(&mut index, &image_annotations(opts, base));
    }
    let raw = canonical(&index);
    (Descriptor::new(&desc.media_type, Digest::of(&raw), raw.len() as u64), raw, verbatim)
}

/// Attestations stay when the manifest they describe is kept (their `vnd.docker.reference.digest`
/// then still names the base manifest, which is what they attest). Other platforms stay only on request.
fn keep_verbatim(d: &Descriptor, base: &BaseImage, rewritten: &BTreeMap<Digest, usize>, keep_others: bool) -> bool {
    if d.is_attestation() {
        let subject = d.annotation("vnd.docker.reference.digest").and_then(Digest::parse);
        return subject.is_some_and(|s| rewritten.contains_key(&s) || (keep_others && base.entries.iter().any(|(e, _)| e.digest == s)));
    }
    keep_others
}

/// Maps each requested platform to the base entry that satisfies it (index order).
fn select_platforms(base: &BaseImage, wanted: &[Platform], recipe: &Recipe) -> Result<Vec<(usize, Platform)>> {
    let available: Vec<(usize, Platform)> = match &base.top {
        BaseTop::Manifest => {
            let m = base.entries[0].1.as_ref().expect("single manifest read");
            let p = config_platform(&m.config_raw).ok_or_else(|| Error::malformed(base.name(), "config without os/architecture"))?;
            vec![(0, p)]
        }
        BaseTop::Index { .. } => {
            base.entries.iter().enumerate().filter(|(_, (_, m))| m.is_some()).filter_map(|(i, (d, _))| d.platform.clone().map(|p| (i, p))).collect()
        }
    };
    let names = available.iter().map(|(_, p)| p.to_string()).collect::<Vec<_>>().join(", ");
    let mut out: Vec<(usize, Platform)> = Vec::new();
    for w in wanted {
        let hit = available.iter().find(|(_, p)| w.satisfied_by(p)).ok_or_else(|| Error::MissingPlatform {
            source_name: base.name().into(),
            platform: w.to_string(),
            available: if names.is_empty() { "none".into() } else { names.clone() },
        })?;
        if out.iter().any(|(i, _)| *i == hit.0) {
            return Err(Error::input(recipe.file.display().to_string(), format!("platforms `{w}` and another name the same base image"), None));
        }
        out.push(hit.clone());
    }
    // Index order, so the new index lists platforms as the base did.
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

/// Finds the file of every artifact for every kept platform it applies to, checking each is an
/// executable of the right machine when `elf = true`: all before anything is written.
fn resolve_artifacts(opts: &BuildOptions, kept: &[(usize, Platform)]) -> Result<BTreeMap<(String, Platform), PathBuf>> {
    let mut out = BTreeMap::new();
    for (path, p, _) in &opts.artifacts {
        if !opts.overlays.iter().any(|o| o.artifacts.iter().any(|a| &a.path == path)) {
            return Err(Error::input("--artifact", format!("no overlay of this recipe declares an artifact at `/{path}` (for {p})"), None));
        }
    }
    for overlay in &opts.overlays {
        for a in &overlay.artifacts {
            for (_, platform) in kept.iter().filter(|(_, p)| overlay.applies_to(p)) {
                let given = opts.artifacts.iter().find(|(ap, pp, _)| ap == &a.path && pp.satisfied_by(platform)).map(|(_, _, f)| f.clone());
                let default = a.sources.iter().find(|(p, _)| Platform::parse(p).is_some_and(|p| p.satisfied_by(platform))).map(|(_, f)| f.clone());
                let file = given.or(default).ok_or_else(|| {
                    Error::input(
                        overlay.dir.join("overlay.toml").display().to_string(),
                        format!("artifact `/{}` has no file for {platform}", a.path),
                        Some(format!("pass --artifact /{}@{platform}=FILE", a.path)),
                    )
                })?;
                let meta = std::fs::metadata(&file).map_err(|e| {
                    Error::input(
                        file.display().to_string(),
                        format!("artifact `/{}` for {platform} cannot be read: {e}", a.path),
                        Some("build it first or pass --artifact".into()),
                    )
                })?;
                if !meta.is_file() {
                    return Err(Error::input(file.display().to_string(), format!("artifact `/{}` is not a regular file", a.path), None));
                }
                if a.elf {
                    check_elf(&file, platform)?;
                }
                out.insert((a.path.clone(), platform.clone()), file);
            }
        }
    }
    Ok(out)
}

fn check_elf(file: &std::path::Path, platform: &Platform) -> Result<()> {
    let mut head = [0u8; 64];
    let mut f = std::fs::File::open(file).io_ctx("opening artifact", file)?;
    let n = f.read(&mut head).io_ctx("reading artifact", file)?;
    crate::elf::check_platform(&head[..n], platform)
        .map_err(|msg| Error::input(file.display().to_string(), msg, Some(format!("supply a {platform} build of it"))))
}

/// The tree entries of an overlay's layer for one platform: rootfs files, whiteouts, artifacts.
fn overlay_entries(overlay: &Overlay, artifacts: &[(String, PathBuf)]) -> Result<tree::Entries> {
    let mut entries = tree::walk(&overlay.rootfs(), overlay.parents, &overlay.modes)?;
    for p in &overlay.delete {
        let wh = layer::whiteout_path(p);
        entries.insert(wh.clone(), Entry { path: wh, kind: Kind::Whiteout, mode: 0o644 });
    }
    for (path, file) in artifacts {
        let a = overlay.artifacts.iter().find(|a| &a.path == path).expect("artifact of this overlay");
        let size = std::fs::metadata(file).io_ctx("reading artifact", file)?.len();
        entries.insert(path.clone(), Entry { path: path.clone(), kind: Kind::File { source: file.clone(), size }, mode: a.mode });
    }
    Ok(entries)
}

fn recipe_name(r: &Recipe) -> String {
    r.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Labels set in the config: the recipe's, `--label`s, and the base's identity.
fn image_labels(opts: &BuildOptions, base: &BaseImage) -> Vec<(String, String)> {
    let mut l = vec![("org.opencontainers.image.base.digest".to_owned(), base.digest().to_string())];
    // Only a registry reference names the base for others; a local path would only make the
    // digest depend on where the base happened to sit.
    if let Some(name) = opts.base_name.strip_prefix("docker://") {
        l.push(("org.opencontainers.image.base.name".to_owned(), name.to_owned()));
    }
    l.extend(opts.labels.iter().cloned());
    l
}

/// Annotations on manifests and the index (OCI family only): labels plus the compressor record.
fn image_annotations(opts: &BuildOptions, base: &BaseImage) -> Vec<(String, String)> {
    let mut a: Vec<(String, String)> = opts.recipe.config.labels.clone();
    a.extend(image_labels(opts, base));
    a.push(("dev.sparkctl.layer.compression".into(), COMPRESSION.into()));
    a.push(("org.opencontainers.image.created".into(), crate::json::rfc3339(opts.epoch)));
    a
}

fn set_annotations(obj: &mut Value, annotations: &[(String, String)]) {
    let map = obj.as_object_mut().expect("manifest/index is an object").entry("annotations").or_insert_with(|| json!({}));
    if let Some(m) = map.as_object_mut() {
        for (k, v) in annotations {
            m.insert(k.clone(), Value::String(v.clone()));
        }
    }
}
