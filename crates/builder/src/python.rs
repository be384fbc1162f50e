//! Python packages as layers: an overlay's `[python]` table names `requirements` and a hashed
//! `lock` beside `overlay.toml`; the builder installs the locked wheels for each target platform
//! with uv (`uv pip install --target … --python-platform … --python-version …`), never running the
//! target's Python, and writes the tree as one layer per platform: site-packages at the image's
//! path, console scripts in the image's `bin` with the image's Python in the shebang, `RECORD`
//! rewritten to match, no bytecode. The layer cache keys it by the lock, the target and uv's
//! version, so a lock is installed once. Format and errors: docs/recipes.md.

use crate::error::{Error, IoContext, Result};
use crate::layer::LayerBlob;
use crate::layer_cache::{self, KeyBuilder};
use crate::overlay::image_path;
use crate::platform::Platform;
use crate::store::BlobStore;
use crate::tree;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const KEYS: &[&str] = &["requirements", "lock", "version", "site_packages", "bin", "interpreter", "pure_sdists", "platform"];
const PLATFORM_KEYS: &[&str] = &["tag", "site_packages"];

/// The `[python]` table of an overlay, with its lock read and checked against the requirements.
#[derive(Debug, Clone)]
pub(crate) struct PythonSpec {
    pub(crate) lock_path: PathBuf,
    pub(crate) lock_text: String,
    pub(crate) lock: Vec<Pin>,
    /// `X.Y`: the base's Python.
    pub(crate) version: String,
    /// Image path (relative, normalised) of site-packages, unless a platform overrides it.
    pub(crate) site_packages: String,
    /// Image path (relative) for console scripts.
    pub(crate) bin: String,
    /// Absolute image path of the Python for console-script shebangs.
    pub(crate) interpreter: String,
    /// Normalised names allowed to build from an sdist; the wheel they give must be pure Python.
    pub(crate) pure_sdists: Vec<String>,
    /// Platform string → (uv `--python-platform` tag, site-packages override).
    pub(crate) platforms: BTreeMap<String, (Option<String>, Option<String>)>,
}

/// One locked distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pin {
    /// Normalised (PEP 503).
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) hashes: usize,
}

/// PEP 503 normalisation: lowercase, runs of `-_.` become `-`.
pub(crate) fn normalise(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Splits `name[extras] <spec>; marker` into (normalised name, spec).
fn requirement(line: &str) -> Option<(String, String)> {
    let line = line.split(';').next()?.trim();
    let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))).unwrap_or(line.len());
    if end == 0 {
        return None;
    }
    let rest = line[end..].trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(r) => r.split_once(']').map(|(_, after)| after).unwrap_or(""),
        None => rest,
    };
    Some((normalise(&line[..end]), rest.trim().to_owned()))
}

/// Lines of a requirements file without comments, blanks and continuations joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for raw in text.lines() {
        let l = raw.split(" #").next().unwrap_or("");
        let l = if l.trim_start().starts_with('#') { "" } else { l };
        if let Some(head) = l.trim_end().strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(l);
        if !cur.trim().is_empty() {
            out.push(cur.trim().to_owned());
        }
        cur.clear();
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// Parses a `uv pip compile --generate-hashes` lock: every line pins `name==version` with hashes.
pub(crate) fn parse_lock(file: &str, text: &str) -> Result<Vec<Pin>> {
    let mut pins = Vec::new();
    for line in logical_lines(text) {
        if line.starts_with('-') {
            continue; // --index-url and the like
        }
        let mut parts = line.split_whitespace();
        let req = parts.next().unwrap_or_default();
        let hashes = line.matches("--hash=sha256:").count();
        let (name, spec) = requirement(&line).ok_or_else(|| Error::input(file, format!("cannot read lock line `{req}`"), None))?;
        let version = spec.strip_prefix("==").map(|v| v.split_whitespace().next().unwrap_or("").to_owned()).filter(|v| !v.is_empty());
        let Some(version) = version else {
            return Err(Error::input(file, format!("`{name}` is not pinned with `==`"), Some(relock_hint())));
        };
        if hashes == 0 {
            return Err(Error::input(file, format!("`{name}=={version}` has no `--hash`"), Some(relock_hint())));
        }
        pins.push(Pin { name, version, hashes });
    }
    if pins.is_empty() {
        return Err(Error::input(file, "the lock pins nothing", Some(relock_hint())));
    }
    Ok(pins)
}

fn relock_hint() -> String {
    "write it with `uv pip compile --universal --generate-hashes --python-version X.Y requirements.in -o requirements.lock` beside overlay.toml".into()
}

/// The `--python-version` the lock was compiled for, from uv's header line.
fn lock_python_version(text: &str) -> Option<String> {
    let header = text.lines().take(5).find(|l| l.contains("uv pip compile"))?;
    let mut it = header.split_whitespace();
    while let Some(w) = it.next() {
        if w == "--python-version" {
            return it.next().map(str::to_owned);
        }
        if let Some(v) = w.strip_prefix("--python-version=") {
            return Some(v.to_owned());
        }
    }
    None
}

/// Every requirement must be in the lock; an exact `==` requirement must be pinned at that version.
pub(crate) fn check_lock_current(req_file: &str, req_text: &str, lock_file: &str, lock: &[Pin]) -> Result<()> {
    for line in logical_lines(req_text) {
        if line.starts_with('-') {
            continue;
        }
        let (name, spec) = requirement(&line).ok_or_else(|| Error::input(req_file, format!("cannot read requirement `{line}`"), None))?;
        let hint = Some(format!("requirements changed since `{lock_file}` was written: {}", relock_hint()));
        let Some(pin) = lock.iter().find(|p| p.name == name) else {
            return Err(Error::input(lock_file, format!("lock out of date: `{name}` is required by `{req_file}` but not locked"), hint));
        };
        if let Some(want) = spec.strip_prefix("==").map(str::trim) {
            if !want.contains('*') && want != pin.version {
                return Err(Error::input(lock_file, format!("lock out of date: `{req_file}` wants `{name}=={want}`, the lock has {}", pin.version), hint));
            }
        }
    }
    Ok(())
}

impl PythonSpec {
    /// Parses the `[python]` table of `dir/overlay.toml` and reads the files it names.
    pub(crate) fn parse(file: &str, dir: &Path, v: &toml_schema::Value<'_>) -> Result<PythonSpec> {
        let t = v.as_table().ok_or_else(|| Error::input_at(file, v.line(), "python must be a table", Some("write `[python]`".into())))?;
        t.check_keys(KEYS).map_err(|e| Error::toml(file, e))?;
        let line = |key: &str| t.get(key).map_or(t.line(), |v| v.line());
        let string =
            |key: &str| -> Result<Option<String>> { t.get(key).map(|v| Error::typed(file, &format!("python.{key} must be a string"), &v)).transpose() };
        let need = |key: &str, example: &str| -> Result<String> {
            string(key)?.ok_or_else(|| Error::input_at(file, t.line(), format!("python.{key} is missing"), Some(format!("add `{key} = \"{example}\"`"))))
        };
        let version = need("version", "3.12")?;
        if !is_x_y(&version) {
            return Err(Error::input_at(file, line("version"), format!("python.version `{version}` is not X.Y"), Some("e.g. `version = \"3.12\"`".into())));
        }
        let site_packages = image_path(file, "python.site_packages", &need("site_packages", "/usr/local/lib/python3.12/dist-packages")?)
            .and_then(|sp| check_site_packages_version(file, "python.site_packages", &sp, &version).map(|()| sp))
            .map_err(|e| e.at(line("site_packages")))?;
        let bin = image_path(file, "python.bin", &string("bin")?.unwrap_or_else(|| "/usr/local/bin".into())).map_err(|e| e.at(line("bin")))?;
        let interpreter = string("interpreter")?.unwrap_or_else(|| "/usr/bin/python3".into());
        if !interpreter.starts_with('/') || interpreter.contains(char::is_whitespace) {
            return Err(Error::input_at(
                file,
                line("interpreter"),
                format!("python.interpreter `{interpreter}` is not an absolute path"),
                Some("e.g. `/usr/bin/python3`".into()),
            ));
        }
        let pure: Vec<String> =
            t.get("pure_sdists").map(|v| Error::typed(file, "python.pure_sdists must be a list of names", &v)).transpose()?.unwrap_or_default();
        let mut platforms = BTreeMap::new();
        if let Some(pt) = t.get("platform") {
            let pt = pt
                .as_table()
                .ok_or_else(|| Error::input_at(file, pt.line(), "python.platform must be a table of `[python.platform.\"linux/arm64\"]`", None))?;
            for (p, v) in pt.entries() {
                crate::recipe::parse_platform(file, "python.platform", p, Some(v.line()))?;
                let vt = v.as_table().ok_or_else(|| Error::input_at(file, v.line(), format!("python.platform.\"{p}\" must be a table"), None))?;
                vt.check_keys(PLATFORM_KEYS).map_err(|e| Error::toml(file, e))?;
                let get = |k: &str| -> Result<Option<String>> {
                    vt.get(k).map(|v| Error::typed(file, &format!("python.platform.\"{p}\".{k} must be a string"), &v)).transpose()
                };
                let sp_line = vt.get("site_packages").map_or(vt.line(), |v| v.line());
                let sp = get("site_packages")?
                    .map(|s| {
                        image_path(file, "python.platform.site_packages", &s)
                            .and_then(|sp| check_site_packages_version(file, "python.platform.site_packages", &sp, &version).map(|()| sp))
                            .map_err(|e| e.at(sp_line))
                    })
                    .transpose()?;
                platforms.insert(p.to_owned(), (get("tag")?, sp));
            }
        }
        let req_path = dir.join(need("requirements", "requirements.in")?);
        let lock_path = dir.join(need("lock", "requirements.lock")?);
        let req_text =
            fs::read_to_string(&req_path).map_err(|e| Error::input(file, format!("python.requirements `{}` cannot be read: {e}", req_path.display()), None))?;
        let lock_text = fs::read_to_string(&lock_path)
            .map_err(|e| Error::input(file, format!("python.lock `{}` cannot be read: {e}", lock_path.display()), Some(relock_hint())))?;
        let lock_name = lock_path.display().to_string();
        let lock = parse_lock(&lock_name, &lock_text)?;
        if let Some(lv) = lock_python_version(&lock_text) {
            if lv != version {
                return Err(Error::input(
                    &lock_name,
                    format!("the lock was compiled for Python {lv}, the overlay targets {version}"),
                    Some(format!("compile it again with `--python-version {version}`")),
                ));
            }
        }
        check_lock_current(&req_path.display().to_string(), &req_text, &lock_name, &lock)?;
        Ok(PythonSpec {
            lock_path,
            lock_text,
            lock,
            version,
            site_packages,
            bin,
            interpreter,
            pure_sdists: pure.iter().map(|n| normalise(n)).collect(),
            platforms,
        })
    }

    /// uv's `--python-platform` for `p`: the override, else manylinux 2.28 for the architecture.
    pub(crate) fn tag(&self, p: &Platform) -> Result<String> {
        if let Some((Some(tag), _)) = self.platform_entry(p) {
            return Ok(tag.clone());
        }
        match p.arch.as_str() {
            "arm64" => Ok("aarch64-manylinux_2_28".into()),
            "amd64" => Ok("x86_64-manylinux_2_28".into()),
            other => Err(Error::input(
                self.lock_path.display().to_string(),
                format!("no default wheel tag for architecture `{other}`"),
                Some(format!("set `tag` in `[python.platform.\"{p}\"]`")),
            )),
        }
    }

    pub(crate) fn site_packages(&self, p: &Platform) -> &str {
        match self.platform_entry(p) {
            Some((_, Some(sp))) => sp,
            _ => &self.site_packages,
        }
    }

    fn platform_entry(&self, p: &Platform) -> Option<&(Option<String>, Option<String>)> {
        self.platforms.iter().find(|(k, _)| Platform::parse(k).is_some_and(|k| k.satisfied_by(p))).map(|(_, v)| v)
    }

    /// Refuses a base that has another Python, by what says so: `PYTHON_VERSION` in its config
    /// env, the recipe's `base.python` (`declared`, for the recipe's own base), or the NGC tag
    /// table (NGC's vLLM images set no `PYTHON_VERSION`).
    pub(crate) fn check_base(&self, overlay_file: &str, base_name: &str, config_raw: &[u8], declared: Option<&str>) -> Result<()> {
        let mut facts: Vec<(String, &str)> = Vec::new();
        let v = serde_json::from_slice::<serde_json::Value>(config_raw).unwrap_or_default();
        let env = v.pointer("/config/Env").and_then(|e| e.as_array()).cloned().unwrap_or_default();
        let from_env: Vec<String> = env.iter().filter_map(|e| e.as_str()?.strip_prefix("PYTHON_VERSION=").map(str::to_owned)).collect();
        for found in &from_env {
            facts.push((found.clone(), "its PYTHON_VERSION"));
        }
        if let Some(d) = declared {
            facts.push((d.to_owned(), "base.python in the recipe"));
        }
        if let Some(n) = ngc_python(base_name) {
            facts.push((n.to_owned(), "NGC's vLLM image of that tag"));
        }
        for (found, source) in facts {
            let same = found == self.version || found.strip_prefix(&self.version).is_some_and(|r| r.starts_with('.'));
            if !same {
                return Err(Error::input(
                    overlay_file,
                    format!("python.version is {} but the base `{base_name}` has Python {found} ({source})", self.version),
                    Some("set python.version and site_packages to the base's Python and compile the lock again".into()),
                ));
            }
        }
        Ok(())
    }
}

/// `3.12`: two dot-separated numbers.
pub(crate) fn is_x_y(v: &str) -> bool {
    v.split('.').count() == 2 && v.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The Python of NGC's `nvcr.io/nvidia/vllm:<YY.MM>-py3` images, which set no `PYTHON_VERSION`
/// (their Python is Ubuntu's `/usr/bin/python3`): the tags whose Python is documented (NVIDIA's
/// release notes, the validated bases of docs/image.md), beside crates/cluster/src/known_bad.rs' tag →
/// vLLM table. Add a row when validating a base; an unlisted tag is not checked.
const NGC_VLLM_PYTHON: &[(&str, &str)] = &[("25.11", "3.12"), ("26.09", "3.12")];

/// The Python of an NGC vLLM base named by `base_name` (`docker://nvcr.io/nvidia/vllm:26.09-py3@sha256:…`).
pub(crate) fn ngc_python(base_name: &str) -> Option<&'static str> {
    let (_, tag) = base_name.split_once("nvidia/vllm:")?;
    NGC_VLLM_PYTHON.iter().find(|(t, _)| tag.strip_prefix(t).is_some_and(|r| r.is_empty() || r.starts_with(['-', '@']))).map(|(_, v)| *v)
}

/// A `pythonX.Y` folder in site-packages must be the target version.
fn check_site_packages_version(file: &str, key: &str, sp: &str, version: &str) -> Result<()> {
    for part in sp.split('/') {
        if let Some(v) = part.strip_prefix("python") {
            if v.contains('.') && v != version {
                return Err(Error::input(file, format!("{key} `/{sp}` is for Python {v}, python.version is {version}"), None));
            }
        }
    }
    Ok(())
}

/// The uv the layers are made with (xtask pins the same; a test holds them together). It is in
/// the cache key, so a cache hit spawns nothing; a miss checks that the uv on PATH is this one.
pub(crate) const UV_VERSION: &str = "0.13.8";

fn check_uv(overlay_file: &str) -> Result<()> {
    let hint = Some(format!("install the pinned one: `pip install uv=={UV_VERSION}`"));
    let out =
        Command::new("uv").arg("--version").output().map_err(|e| Error::input(overlay_file, format!("Python layers need `uv` on PATH: {e}"), hint.clone()))?;
    let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if found.split_whitespace().nth(1) != Some(UV_VERSION) {
        return Err(Error::input(overlay_file, format!("Python layers are made with uv {UV_VERSION}; `uv --version` on PATH says `{found}`"), hint));
    }
    Ok(())
}

/// What is known of the base a `[python]` overlay goes on.
pub(crate) struct BaseFacts<'a> {
    /// The base's name as given (`docker://…`, `oci:…`).
    pub(crate) name: &'a str,
    /// The platform's image config, raw.
    pub(crate) config: &'a [u8],
    /// The recipe's `base.python`, when it speaks for this base.
    pub(crate) python: Option<&'a str>,
}

/// The layer of a `[python]` overlay for one platform of the base (checked against it first).
pub(crate) fn overlay_layer(
    spec: &PythonSpec,
    overlay: &crate::overlay::Overlay,
    store: &BlobStore,
    platform: &Platform,
    base: &BaseFacts,
    epoch: u64,
) -> Result<LayerBlob> {
    let file = overlay.dir.join("overlay.toml").display().to_string();
    spec.check_base(&file, base.name, base.config, base.python)?;
    layer(store, spec, &file, platform, epoch)
}

/// The layer of `spec` for `platform`, from the cache or installed now.
pub(crate) fn layer(store: &BlobStore, spec: &PythonSpec, overlay_file: &str, platform: &Platform, epoch: u64) -> Result<LayerBlob> {
    let tag = spec.tag(platform)?;
    let sp = spec.site_packages(platform).to_owned();
    let mut k = KeyBuilder::new("python");
    k.field(spec.lock_text.as_bytes()).field(tag.as_bytes()).field(spec.version.as_bytes()).field(sp.as_bytes());
    k.field(spec.bin.as_bytes()).field(spec.interpreter.as_bytes()).field(spec.pure_sdists.join(",").as_bytes()).field(UV_VERSION.as_bytes());
    let key = k.finish(epoch);
    if let Some(hit) = layer_cache::lookup(store, &key) {
        return Ok(hit);
    }
    check_uv(overlay_file)?;
    let tmp = tempfile::Builder::new().prefix("python-").tempdir_in(store.root().join("tmp")).io_ctx("creating a temp folder in", store.root())?;
    let target = tmp.path().join("target");
    install(spec, overlay_file, platform, &tag, &target)?;
    let stage = tmp.path().join("stage");
    arrange(spec, overlay_file, platform, &sp, &target, &stage)?;
    let entries = tree::walk(&stage, false, &BTreeMap::new())?;
    let blob = crate::layer::write(store, &entries, epoch)?;
    layer_cache::record(store, &key, &blob)?;
    Ok(blob)
}

/// Runs uv: offline first (a rebuild from the wheel cache needs no network), then online.
fn install(spec: &PythonSpec, overlay_file: &str, platform: &Platform, tag: &str, target: &Path) -> Result<()> {
    // Everything is wheel-only except the packages declared pure.
    let binary_only: Vec<&str> = spec.lock.iter().map(|p| p.name.as_str()).filter(|n| !spec.pure_sdists.iter().any(|s| s == n)).collect();
    let run = |offline: bool| -> Result<std::process::Output> {
        let _ = fs::remove_dir_all(target);
        let mut c = Command::new("uv");
        c.args(["pip", "install", "--quiet", "--no-config", "--require-hashes", "--no-deps", "--link-mode", "copy", "--no-compile"]);
        c.arg("--target").arg(target).args(["--python-platform", tag, "--python-version", &spec.version]);
        if !binary_only.is_empty() {
            c.arg("--only-binary").arg(binary_only.join(","));
        }
        if offline {
            c.arg("--offline");
        }
        c.arg("-r").arg(&spec.lock_path);
        c.env_remove("PYTHONPATH");
        c.output().map_err(|e| Error::input(overlay_file, format!("running uv: {e}"), None))
    };
    let mut out = run(true)?;
    if !out.status.success() {
        out = run(false)?;
    }
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(uv_error(spec, overlay_file, platform, tag, &stderr))
}

fn pure_sdist_not_pure(file: &str, dist: &str, built: &str) -> Error {
    Error::input(
        file,
        format!("`{dist}` is listed in python.pure_sdists but its sdist built a platform wheel ({built})"),
        Some("pin a version with wheels for every platform; only pure-Python sdists are built".into()),
    )
}

/// One line from uv's explanation: which locked package has no wheel for the platform.
fn uv_error(spec: &PythonSpec, overlay_file: &str, platform: &Platform, tag: &str, stderr: &str) -> Error {
    let lock = spec.lock_path.display().to_string();
    let flat = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    let culprit = spec
        .lock
        .iter()
        .find(|p| flat.contains(&format!("{}=={}", p.name, p.version)))
        .or_else(|| spec.lock.iter().find(|p| flat.contains(&format!("`{}`", p.name))));
    // A package declared pure whose sdist built a platform wheel for another interpreter: uv
    // refuses to install it ("The built wheel `x-1.0-cp311-cp311-linux_x86_64.whl` is not
    // compatible with the target …"); built for the target's own, the layer check refuses it.
    let built = flat.split("The built wheel `").nth(1).and_then(|r| r.split('`').next()).filter(|_| flat.contains("is not compatible"));
    if let (Some(wheel), Some(p)) = (built, culprit.filter(|p| spec.pure_sdists.contains(&normalise(&p.name)))) {
        return pure_sdist_not_pure(overlay_file, &normalise(&p.name), wheel);
    }
    let no_wheel = flat.contains("no wheels")
        || flat.contains("no usable wheels")
        || flat.contains("matching platform tag")
        || flat.contains("building from source is disabled")
        || flat.contains("only-binary");
    if no_wheel {
        let what = culprit.map(|p| format!("`{}=={}`", p.name, p.version)).unwrap_or_else(|| "a locked package".into());
        return Error::input(
            lock,
            format!("no wheel of {what} for {platform} ({tag}, Python {}); sdists are built only for pure-Python packages", spec.version),
            Some("pin a version with a wheel for this platform, or list it in python.pure_sdists if it is pure Python".into()),
        );
    }
    let first = stderr.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("uv failed");
    Error::input(lock, format!("uv could not install the lock for {platform} ({tag}): {first}"), None)
}

fn record_hash(bytes: &[u8]) -> String {
    format!("sha256={}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes)))
}

/// `from` → `to` as a relative path (both relative image paths).
fn relative(from_dir: &str, to: &str) -> String {
    let a: Vec<&str> = from_dir.split('/').collect();
    let b: Vec<&str> = to.split('/').collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<&str> = vec![".."; a.len() - common];
    parts.extend(&b[common..]);
    parts.join("/")
}

/// Moves uv's `--target` tree into image paths, fixes console scripts and `RECORD`, and checks
/// every wheel's tags against the platform.
fn arrange(spec: &PythonSpec, overlay_file: &str, platform: &Platform, sp: &str, target: &Path, stage: &Path) -> Result<()> {
    let sp_dir = stage.join(sp);
    let bin_dir = stage.join(&spec.bin);
    fs::create_dir_all(&sp_dir).io_ctx("creating", &sp_dir)?;
    fs::create_dir_all(&bin_dir).io_ctx("creating", &bin_dir)?;
    let bin_rel = relative(sp, &spec.bin);
    // Scripts: the image's Python in the shebang.
    let mut scripts: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let tbin = target.join("bin");
    if tbin.is_dir() {
        for e in fs::read_dir(&tbin).io_ctx("reading", &tbin)? {
            let e = e.io_ctx("reading", &tbin)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let mut body = fs::read(e.path()).io_ctx("reading", e.path())?;
            if body.starts_with(b"#!") {
                let nl = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
                let first = String::from_utf8_lossy(&body[..nl]).into_owned();
                if first.contains("python") {
                    body.splice(..nl, format!("#!{}", spec.interpreter).into_bytes());
                }
            }
            let dest = bin_dir.join(&name);
            fs::write(&dest, &body).io_ctx("writing", &dest)?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).io_ctx("writing", &dest)?;
            scripts.insert(name, body);
        }
    }
    for e in fs::read_dir(target).io_ctx("reading", target)? {
        let e = e.io_ctx("reading", target)?;
        if e.file_name() == "bin" {
            continue;
        }
        fs::rename(e.path(), sp_dir.join(e.file_name())).io_ctx("moving", e.path())?;
    }
    strip_bytecode(&sp_dir)?;
    let arch_tag = spec.tag(platform)?;
    let arch = arch_tag.split('-').next().unwrap_or("");
    for e in fs::read_dir(&sp_dir).io_ctx("reading", &sp_dir)? {
        let e = e.io_ctx("reading", &sp_dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".dist-info") {
            continue;
        }
        let dist = normalise(name.trim_end_matches(".dist-info").rsplit_once('-').map(|(n, _)| n).unwrap_or(&name));
        let wheel = fs::read_to_string(e.path().join("WHEEL")).unwrap_or_default();
        let tags: Vec<&str> = wheel.lines().filter_map(|l| l.strip_prefix("Tag:")).map(str::trim).collect();
        for t in &tags {
            let plat = t.rsplit('-').next().unwrap_or("");
            if plat != "any" && !plat.contains(arch) {
                return Err(Error::input(overlay_file, format!("`{dist}` was installed from a wheel tagged `{t}`, not for {platform} ({arch_tag})"), None));
            }
        }
        if spec.pure_sdists.contains(&dist) && !tags.iter().all(|t| t.ends_with("-none-any")) {
            return Err(pure_sdist_not_pure(overlay_file, &dist, &tags.join(", ")));
        }
        let record = e.path().join("RECORD");
        if let Ok(text) = fs::read_to_string(&record) {
            let mut out = String::new();
            for line in text.lines() {
                let path = line.split(',').next().unwrap_or("");
                match path.strip_prefix("bin/").and_then(|n| scripts.get(n).map(|b| (n, b))) {
                    Some((n, body)) => out += &format!("{bin_rel}/{n},{},{}\n", record_hash(body), body.len()),
                    None if path.starts_with("bin/") => out += &format!("{bin_rel}/{}\n", &line[4..]),
                    None => {
                        out += line;
                        out.push('\n');
                    }
                }
            }
            fs::write(&record, out).io_ctx("writing", &record)?;
        }
    }
    Ok(())
}

/// No `.pyc`: their bytes embed source mtimes; Python writes its own on first import.
fn strip_bytecode(dir: &Path) -> Result<()> {
    for e in fs::read_dir(dir).io_ctx("reading", dir)? {
        let e = e.io_ctx("reading", dir)?;
        let p = e.path();
        let ft = e.file_type().io_ctx("reading", &p)?;
        if ft.is_dir() {
            if e.file_name() == "__pycache__" {
                fs::remove_dir_all(&p).io_ctx("removing", &p)?;
            } else {
                strip_bytecode(&p)?;
            }
        } else if p.extension().is_some_and(|x| x == "pyc") {
            fs::remove_file(&p).io_ctx("removing", &p)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "# This file was autogenerated by uv via the following command:\n#    uv pip compile --universal --generate-hashes --python-version 3.12 requirements.in -o requirements.lock\nsix==1.17.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n    # via -r requirements.in\nWheel==0.45.1 ; python_version >= '3.8' \\\n    --hash=sha256:cc\n";

    fn spec_dir(req: &str, lock: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("requirements.in"), req).unwrap();
        fs::write(d.path().join("requirements.lock"), lock).unwrap();
        d
    }

    fn parse(d: &Path, extra: &str) -> Result<PythonSpec> {
        let text = format!(
            "[python]\nrequirements = \"requirements.in\"\nlock = \"requirements.lock\"\nversion = \"3.12\"\nsite_packages = \"/usr/local/lib/python3.12/dist-packages\"\n{extra}"
        );
        let doc = toml_schema::parse(&text).unwrap();
        PythonSpec::parse("overlay.toml", d, &doc.root().get("python").unwrap())
    }

    #[test]
    fn lock_parses_and_names_normalise() {
        let pins = parse_lock("l", LOCK).unwrap();
        assert_eq!(
            pins,
            vec![Pin { name: "six".into(), version: "1.17.0".into(), hashes: 2 }, Pin { name: "wheel".into(), version: "0.45.1".into(), hashes: 1 }]
        );
        assert_eq!(normalise("Foo__Bar.baz"), "foo-bar-baz");
        assert_eq!(lock_python_version(LOCK).as_deref(), Some("3.12"));
        assert!(parse_lock("l", "six==1.17.0\n").unwrap_err().to_string().contains("has no `--hash`"));
        assert!(parse_lock("l", "six>=1 --hash=sha256:aa\n").unwrap_err().to_string().contains("not pinned with `==`"));
        assert!(parse_lock("l", "# nothing\n").unwrap_err().to_string().contains("pins nothing"));
    }

    #[test]
    fn spec_parses_and_defaults_tags() {
        let d = spec_dir("six\nwheel==0.45.1  # scripts\n", LOCK);
        let s = parse(d.path(), "[python.platform.\"linux/arm64\"]\ntag = \"aarch64-manylinux_2_34\"\n").unwrap();
        assert_eq!(s.tag(&Platform::parse("linux/arm64").unwrap()).unwrap(), "aarch64-manylinux_2_34");
        assert_eq!(s.tag(&Platform::parse("linux/amd64").unwrap()).unwrap(), "x86_64-manylinux_2_28");
        assert_eq!(s.bin, "usr/local/bin");
        assert_eq!(relative("usr/local/lib/python3.12/dist-packages", "usr/local/bin"), "../../../bin");
    }

    #[test]
    fn bad_input_gives_one_line_naming_the_cause() {
        let d = spec_dir("six\nrequests\n", LOCK);
        let e = parse(d.path(), "").unwrap_err().to_string();
        assert!(e.contains("lock out of date: `requests` is required") && e.contains("uv pip compile"), "{e}");
        let d = spec_dir("wheel==0.44.0\n", LOCK);
        let e = parse(d.path(), "").unwrap_err().to_string();
        assert!(e.contains("wants `wheel==0.44.0`, the lock has 0.45.1"), "{e}");
        let d = spec_dir("six\n", &LOCK.replace("--python-version 3.12", "--python-version 3.11"));
        assert!(parse(d.path(), "").unwrap_err().to_string().contains("compiled for Python 3.11, the overlay targets 3.12"));
        let d = spec_dir("six\n", LOCK);
        let text = "[python]\nrequirements = \"requirements.in\"\nlock = \"requirements.lock\"\nversion = \"3.12\"\nsite_packages = \"/usr/lib/python3.11/site-packages\"\n";
        let doc = toml_schema::parse(text).unwrap();
        assert!(PythonSpec::parse("o", d.path(), &doc.root().get("python").unwrap()).unwrap_err().to_string().contains("is for Python 3.11"));
        assert!(parse(d.path(), "pure_sdist = []\n").unwrap_err().to_string().contains("did you mean `pure_sdists`?"));
        let s = parse(d.path(), "").unwrap();
        let cfg = br#"{"config":{"Env":["PATH=/usr/bin","PYTHON_VERSION=3.11.9"]}}"#;
        // NGC's vLLM images set no PYTHON_VERSION: the tag table or the recipe's base.python says it.
        let ngc = "docker://nvcr.io/nvidia/vllm:26.09-py3@sha256:557747337846eecf34486866f3d992383c6f8af869fdb0e365b5093fcaee02c2";
        assert!(s.check_base("o", ngc, b"{}", None).is_ok());
        assert_eq!(
            (ngc_python(ngc), ngc_python("nvcr.io/nvidia/vllm:25.11-py3"), ngc_python("nvcr.io/nvidia/vllm:26.091-py3")),
            (Some("3.12"), Some("3.12"), None)
        );
        let mut s311 = s.clone();
        s311.version = "3.11".into();
        let e = s311.check_base("o", ngc, b"{}", None).unwrap_err().to_string();
        assert!(e.contains("python.version is 3.11 but the base") && e.contains("has Python 3.12 (NGC's vLLM image of that tag)"), "{e}");
        let e = s.check_base("o", "oci:b", b"{}", Some("3.10")).unwrap_err().to_string();
        assert!(e.contains("has Python 3.10 (base.python in the recipe)"), "{e}");
        assert!(s.check_base("o", "oci:b", b"{}", Some("3.12")).is_ok());
        assert!(s.check_base("o", "docker://nvcr.io/nvidia/vllm:27.01-py3@sha256:00", b"{}", None).is_ok(), "an unlisted tag is not checked");
        let e = s.check_base("o", "oci:b", cfg, None).unwrap_err().to_string();
        assert!(e.contains("python.version is 3.12 but the base `oci:b` has Python 3.11.9"), "{e}");
        assert!(s.check_base("o", "oci:b", br#"{"config":{"Env":["PYTHON_VERSION=3.12.3"]}}"#, None).is_ok());
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/recipes.md")).unwrap();
        let block = doc.split("```toml\n").nth(3).unwrap().split("```").next().unwrap();
        let d = spec_dir("six\n", LOCK);
        let doc = toml_schema::parse(block).unwrap();
        let s = PythonSpec::parse("overlay.toml", d.path(), &doc.root().get("python").unwrap()).unwrap();
        assert_eq!(s.site_packages, "usr/local/lib/python3.12/dist-packages");
        assert_eq!(s.tag(&Platform::parse("linux/arm64").unwrap()).unwrap(), "aarch64-manylinux_2_28");
    }

    #[test]
    fn uv_pin_matches_xtask() {
        let deps = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../xtask/src/deps.rs")).unwrap();
        assert!(deps.contains(&format!("\"uv=={UV_VERSION}\"")), "xtask/src/deps.rs must pin uv=={UV_VERSION}");
    }
}
