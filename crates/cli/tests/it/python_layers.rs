//! Python packages as layers (`[python]` overlays): wheels from PyPI installed by uv for each
//! target platform, checked in the layer itself (wheel tags, shebangs, RECORD), run by the Docker
//! engine (Ray on linux/amd64), rebuilt offline, and refused with one line when they cannot be.
//! uv, the network to PyPI (first run; later runs use uv's wheel cache) and Docker are required.

use crate::support::{tool, Project, Run};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::base::{write_layout, BaseSpec};

/// The layer of `crates/cli/tests/fixtures/python-pure` (six + wheel, pure Python) at epoch 0: the same
/// for both platforms and on any machine. Moves only with the compressor, uv's layout or the lock.
const GOLDEN_PURE_LAYER: &str = "sha256:38c57e999671257f1bf8ebe847ada1a22f1a592725ffef4f649a40ee7c6bd990";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(std::path::Path::parent).unwrap().to_owned()
}

fn uv_present() {
    let ok = Command::new("uv").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "`uv` is not on PATH: `cargo xtask deps` installs the pinned one into target/py");
}

/// A project whose overlay `py` is a `[python]` overlay over the files of `fixture_dir`.
fn python_project(fixture_dir: &Path, version: &str, extra: &str, platforms: &[(&'static str, &'static str)]) -> Project {
    uv_present();
    let p = Project::new();
    write_layout(&p.path("base"), &BaseSpec { platforms: platforms.to_vec(), ..Default::default() });
    for f in ["requirements.in", "requirements.lock"] {
        p.write(&format!("overlays/py/{f}"), &std::fs::read_to_string(fixture_dir.join(f)).unwrap());
    }
    p.write(
        "overlays/py/overlay.toml",
        &format!(
            "[python]\nrequirements = \"requirements.in\"\nlock = \"requirements.lock\"\nversion = \"{version}\"\nsite_packages = \"/usr/local/lib/python{version}/dist-packages\"\n{extra}"
        ),
    );
    let plats = platforms.iter().map(|(o, a)| format!("\"{o}/{a}\"")).collect::<Vec<_>>().join(", ");
    p.write("images/test.toml", &format!("overlays = [\"py\"]\n[base]\nref = \"oci:{}:base\"\nplatforms = [{plats}]\n", p.s("base")));
    p
}

/// (platform, digest of the last layer) of every manifest of an OCI layout.
fn last_layers(layout: &Path) -> Vec<(String, String)> {
    let read = |d: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap()).unwrap()
    };
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let top = read(index["manifests"][0]["digest"].as_str().unwrap());
    let mut out = Vec::new();
    // Attestation entries (platform unknown/unknown) are kept verbatim: not ours.
    for m in top["manifests"].as_array().unwrap().iter().filter(|m| m["platform"]["architecture"] != "unknown") {
        let man = read(m["digest"].as_str().unwrap());
        let last = man["layers"].as_array().unwrap().last().unwrap()["digest"].as_str().unwrap().to_owned();
        out.push((format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap()), last));
    }
    out
}

struct LayerFile {
    mode: u32,
    mtime: u64,
    body: Vec<u8>,
}

fn layer_files(blob: &Path) -> BTreeMap<String, LayerFile> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(blob).unwrap()));
    let mut out = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let (mode, mtime) = (e.header().mode().unwrap(), e.header().mtime().unwrap());
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        out.insert(path, LayerFile { mode, mtime, body });
    }
    out
}

/// `a/b/../c` → `a/c`.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// Every RECORD row names a file of the layer with its sha256 and size; every file of a
/// distribution is in its RECORD. Returns the number of rows checked.
fn check_records(files: &BTreeMap<String, LayerFile>, sp: &str) -> usize {
    let mut rows = 0;
    // Installed distributions only (`<sp>/<name>.dist-info/RECORD`); packages vendor others deeper.
    let records: Vec<&String> =
        files.keys().filter(|k| k.strip_prefix(&format!("{sp}/")).is_some_and(|r| r.matches('/').count() == 1 && r.ends_with(".dist-info/RECORD"))).collect();
    assert!(!records.is_empty(), "no RECORD under {sp}");
    for r in records {
        for line in String::from_utf8(files[r].body.clone()).unwrap().lines() {
            let cols: Vec<&str> = line.rsplitn(3, ',').collect();
            let (path, hash, size) = (cols[2], cols[1], cols[0]);
            if hash.is_empty() {
                continue; // RECORD itself
            }
            let full = normalise(&format!("{sp}/{path}"));
            let f = files.get(&full).unwrap_or_else(|| panic!("{r}: `{path}` ({full}) is not in the layer"));
            let want = format!("sha256={}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&f.body)));
            assert_eq!(hash, want, "{r}: hash of {path}");
            assert_eq!(size, f.body.len().to_string(), "{r}: size of {path}");
            rows += 1;
        }
    }
    rows
}

fn no_bytecode_and_fixed_mtimes(files: &BTreeMap<String, LayerFile>) {
    for (p, f) in files {
        assert!(!p.ends_with(".pyc") && !p.contains("__pycache__"), "bytecode in the layer: {p}");
        assert_eq!(f.mtime, 0, "{p}: mtime is the epoch");
    }
}

#[test]
fn a_pure_python_lock_gives_the_pinned_layer_digest_a_clean_tree_and_builds_offline() {
    let p = python_project(&fixture("python-pure"), "3.12", "", &[("linux", "amd64"), ("linux", "arm64")]);
    let recipe = p.s("images/test.toml");
    p.run(&["image", "build", &recipe, "-o", &format!("oci:{}:x", p.s("out"))]).ok();
    let layers = last_layers(&p.path("out"));
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0].1, layers[1].1, "pure wheels: the same layer for both platforms");
    let digest = layers[0].1.clone();
    let files = layer_files(&p.path("out/blobs/sha256").join(digest.trim_start_matches("sha256:")));
    no_bytecode_and_fixed_mtimes(&files);
    let sp = "usr/local/lib/python3.12/dist-packages";
    assert!(files.contains_key(&format!("{sp}/six.py")) && files.contains_key(&format!("{sp}/wheel/__init__.py")));
    let script = &files["usr/local/bin/wheel"];
    assert_eq!(script.mode, 0o755);
    assert!(script.body.starts_with(b"#!/usr/bin/python3\n"), "{}", String::from_utf8_lossy(&script.body));
    assert!(check_records(&files, sp) > 20);
    let record = String::from_utf8(files[&format!("{sp}/wheel-0.45.1.dist-info/RECORD")].body.clone()).unwrap();
    assert!(record.lines().any(|l| l.starts_with("../../../bin/wheel,sha256=")), "{record}");
    assert_eq!(digest, GOLDEN_PURE_LAYER, "golden Python layer moved");

    // Offline, with an empty blob store (so no layer cache): uv installs from its wheel cache.
    let store2 = p.path("store-offline");
    let out = Command::new("unshare")
        .args(["--net", env!("CARGO_BIN_EXE_sparkctl"), "image", "build", &recipe, "-o", &format!("oci:{}:x", p.s("out2"))])
        .env("SPARKCTL_STORE", &store2)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(out.status.success(), "offline rebuild failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(last_layers(&p.path("out2"))[0].1, digest, "offline rebuild gives the same layer");
}

fn refused(r: Run) -> String {
    assert_eq!(r.code, 2, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {}", r.stderr);
    lines[0].to_owned()
}

#[test]
fn bad_python_input_is_one_line_and_writes_nothing() {
    // An sdist-only package.
    let p = python_project(&fixture("python-sdist"), "3.12", "", &[("linux", "amd64")]);
    let out = format!("oci:{}:x", p.s("out"));
    let e = refused(p.run(&["image", "build", &p.s("images/test.toml"), "-o", &out]));
    assert!(e.contains("no wheel of `docopt==0.6.2` for linux/amd64 (x86_64-manylinux_2_28, Python 3.12)") && e.contains("python.pure_sdists"), "{e}");
    assert!(!p.path("out").exists());
    // Declared pure: uv builds the sdist on the host and the wheel it gives is pure.
    let overlay = std::fs::read_to_string(p.path("overlays/py/overlay.toml")).unwrap();
    p.write("overlays/py/overlay.toml", &format!("{overlay}pure_sdists = [\"docopt\"]\n"));
    p.run(&["image", "build", &p.s("images/test.toml"), "-o", &out]).ok();
    let (_, d) = &last_layers(&p.path("out"))[0];
    let files = layer_files(&p.path("out/blobs/sha256").join(d.trim_start_matches("sha256:")));
    assert!(files.contains_key("usr/local/lib/python3.12/dist-packages/docopt.py"));
    no_bytecode_and_fixed_mtimes(&files);

    // Wheels only for other platforms.
    let p = python_project(&fixture("python-win"), "3.12", "", &[("linux", "arm64")]);
    let e = refused(p.run(&["image", "build", &p.s("images/test.toml"), "-o", &format!("oci:{}:x", p.s("out"))]));
    assert!(e.contains("no wheel of `pywin32==311` for linux/arm64 (aarch64-manylinux_2_28"), "{e}");

    // The lock out of date with the requirements; compiled for another Python.
    let p = python_project(&fixture("python-pure"), "3.12", "", &[("linux", "amd64")]);
    p.write("overlays/py/requirements.in", "six==1.17.0\nwheel==0.45.1\nrequests\n");
    let e = refused(p.run(&["image", "build", &p.s("images/test.toml"), "-o", &format!("oci:{}:x", p.s("out"))]));
    assert!(e.contains("lock out of date: `requests` is required") && e.contains("uv pip compile"), "{e}");
    let p = python_project(&fixture("python-pure"), "3.11", "", &[("linux", "amd64")]);
    let e = refused(p.run(&["image", "build", &p.s("images/test.toml"), "-o", &format!("oci:{}:x", p.s("out"))]));
    assert!(e.contains("the lock was compiled for Python 3.12, the overlay targets 3.11"), "{e}");
}

/// Bases that do not say their Python in their config (NGC's vLLM images set no
/// `PYTHON_VERSION`): the recipe's `base.python` says it, and an overlay for another Python is
/// refused before anything is installed or written.
#[test]
fn a_recipe_base_python_other_than_the_overlays_is_refused() {
    let p = python_project(&fixture("python-pure"), "3.12", "", &[("linux", "amd64")]);
    let recipe = std::fs::read_to_string(p.path("images/test.toml")).unwrap();
    p.write("images/test.toml", &recipe.replace("[base]\n", "[base]\npython = \"3.11\"\n"));
    let out = format!("oci:{}:x", p.s("out"));
    let e = refused(p.run(&["image", "build", &p.s("images/test.toml"), "-o", &out]));
    assert!(e.contains("overlays/py/overlay.toml") && e.contains("python.version is 3.12 but the base"), "{e}");
    assert!(e.contains("has Python 3.11 (base.python in the recipe)") && e.contains("compile the lock again"), "{e}");
    assert!(!p.path("out").exists(), "nothing written");
    let blobs = p.store().join("blobs/sha256");
    assert!(!blobs.exists() || std::fs::read_dir(&blobs).unwrap().next().is_none(), "no layer made before the refusal");
    // The same statement, right: it builds.
    p.write("images/test.toml", &recipe.replace("[base]\n", "[base]\npython = \"3.12\"\n"));
    p.run(&["image", "build", &p.s("images/test.toml"), "-o", &out]).ok();
    assert_eq!(last_layers(&p.path("out"))[0].1, GOLDEN_PURE_LAYER);
}

/// The layer cache: a second build on the same store takes the Python layer from the cache,
/// keyed by the lock, without uv (not on its PATH), and writes no blob the first did not.
#[test]
fn a_rebuild_on_the_same_store_needs_no_uv_and_writes_no_new_blob() {
    let p = python_project(&fixture("python-pure"), "3.12", "", &[("linux", "amd64"), ("linux", "arm64")]);
    let recipe = p.s("images/test.toml");
    p.run(&["image", "build", &recipe, "-o", &format!("oci:{}:x", p.s("out1"))]).ok();
    let blobs = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    let store_blobs = p.store().join("blobs/sha256");
    let before = blobs(&store_blobs);
    // A PATH with the tools a build may use but no uv (checked: the test would prove nothing if it had one).
    let bin = p.path("bin-without-uv");
    std::fs::create_dir_all(&bin).unwrap();
    for t in ["sh", "gzip"] {
        if let Some(found) = ["/usr/bin", "/bin"].iter().map(|d| Path::new(d).join(t)).find(|f| f.exists()) {
            std::os::unix::fs::symlink(found, bin.join(t)).unwrap();
        }
    }
    assert!(Command::new("uv").env("PATH", &bin).arg("--version").output().is_err(), "uv is still reachable");
    let out = Command::new(env!("CARGO_BIN_EXE_sparkctl"))
        .args(["image", "build", &recipe, "-o", &format!("oci:{}:x", p.s("out2"))])
        .env("PATH", &bin)
        .env("SPARKCTL_STORE", p.store())
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(out.status.success(), "rebuild without uv failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(last_layers(&p.path("out2")), last_layers(&p.path("out1")), "same layers");
    assert_eq!(std::fs::read(p.path("out2/index.json")).unwrap(), std::fs::read(p.path("out1/index.json")).unwrap(), "same image");
    assert_eq!(blobs(&store_blobs), before, "the rebuild wrote a new blob to the store");
    // And the cache is what made it work: an empty store without uv cannot build the layer.
    let out = Command::new(env!("CARGO_BIN_EXE_sparkctl"))
        .args(["image", "build", &recipe, "-o", &format!("oci:{}:x", p.s("out3"))])
        .env("PATH", &bin)
        .env("SPARKCTL_STORE", p.path("store-empty"))
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Python layers need `uv` on PATH"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A local sdist (`cext-fixture`, served to uv through `UV_FIND_LINKS`) whose build gives a
/// platform wheel (`linux_x86_64`, as a C extension would), with its lock.
fn platform_sdist_fixture(dir: &Path) -> PathBuf {
    let src = [
        ("pyproject.toml", "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n"),
        (
            "setup.py",
            "from setuptools import setup\nfrom setuptools.dist import Distribution\n\n\nclass Platform(Distribution):\n    def has_ext_modules(self):\n        return True\n\n\nsetup(name=\"cext-fixture\", version=\"1.0\", packages=[\"cext_fixture\"], distclass=Platform)\n",
        ),
        ("PKG-INFO", "Metadata-Version: 2.1\nName: cext-fixture\nVersion: 1.0\n"),
        ("cext_fixture/__init__.py", ""),
    ];
    let links = dir.join("links");
    std::fs::create_dir_all(&links).unwrap();
    let sdist = links.join("cext_fixture-1.0.tar.gz");
    let mut t = tar::Builder::new(flate2::write::GzEncoder::new(std::fs::File::create(&sdist).unwrap(), flate2::Compression::default()));
    for (name, body) in src {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, format!("cext_fixture-1.0/{name}"), body.as_bytes()).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap();
    let hash = hex::encode(Sha256::digest(std::fs::read(&sdist).unwrap()));
    let fix = dir.join("fixture");
    std::fs::create_dir_all(&fix).unwrap();
    std::fs::write(fix.join("requirements.in"), "cext-fixture==1.0\n").unwrap();
    std::fs::write(fix.join("requirements.lock"), format!("cext-fixture==1.0 \\\n    --hash=sha256:{hash}\n")).unwrap();
    links
}

/// `pure_sdists` names a package whose sdist builds a platform wheel: refused with one line
/// naming the package and the wheel, nothing written. uv builds with the host's Python: for the
/// target's own version the wheel installs and the layer check refuses its tag; for another
/// version uv refuses the wheel and its message is recognised. Both are tried.
#[test]
fn a_pure_sdist_that_builds_a_platform_wheel_is_refused() {
    let host = Command::new("python3").args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).output().unwrap();
    let host = String::from_utf8(host.stdout).unwrap().trim().to_owned();
    let other = if host == "3.12" { "3.11" } else { "3.12" };
    let scratch = tempfile::tempdir().unwrap();
    let links = platform_sdist_fixture(scratch.path());
    for version in [host.as_str(), other] {
        let p = python_project(&scratch.path().join("fixture"), version, "pure_sdists = [\"cext-fixture\"]\n", &[("linux", "amd64")]);
        let out = Command::new(env!("CARGO_BIN_EXE_sparkctl"))
            .args(["image", "build", &p.s("images/test.toml"), "-o", &format!("oci:{}:x", p.s("out"))])
            .env("UV_FIND_LINKS", &links)
            .env("SPARKCTL_STORE", p.store())
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap();
        let e = refused(Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        });
        assert!(e.contains("overlays/py/overlay.toml"), "Python {version}: {e}");
        assert!(
            e.contains("`cext-fixture` is listed in python.pure_sdists but its sdist built a platform wheel") && e.contains("linux_x86_64"),
            "Python {version}: {e}"
        );
        assert!(e.contains("pin a version with wheels for every platform"), "{e}");
        assert!(!p.path("out").exists(), "nothing written");
    }
}

#[test]
fn the_real_ray_overlay_gives_an_arm64_tree_of_aarch64_wheels() {
    uv_present();
    let p = Project::new();
    write_layout(&p.path("base"), &BaseSpec { platforms: vec![("linux", "arm64")], ..Default::default() });
    p.write("images/test.toml", &format!("overlays = [\"ray\"]\n[base]\nref = \"oci:{}:base\"\nplatforms = [\"linux/arm64\"]\n", p.s("base")));
    let overlays = repo_root().join("overlays").display().to_string();
    p.run(&["image", "build", &p.s("images/test.toml"), "--overlays", &overlays, "-o", &format!("oci:{}:x", p.s("out"))]).ok();
    let (plat, d) = &last_layers(&p.path("out"))[0];
    assert_eq!(plat, "linux/arm64");
    let files = layer_files(&p.path("out/blobs/sha256").join(d.trim_start_matches("sha256:")));
    no_bytecode_and_fixed_mtimes(&files);
    let sp = "usr/local/lib/python3.12/dist-packages";
    // Wheel tags: aarch64 or pure, nothing for x86-64.
    let mut tags = Vec::new();
    for (path, f) in files.iter().filter(|(k, _)| k.ends_with(".dist-info/WHEEL")) {
        for t in String::from_utf8_lossy(&f.body).lines().filter_map(|l| l.strip_prefix("Tag: ")) {
            assert!(t.ends_with("-any") || t.contains("aarch64"), "{path}: {t}");
            tags.push(t.to_owned());
        }
    }
    assert!(tags.iter().any(|t| t.starts_with("cp312-cp312-manylinux") && t.contains("aarch64")), "{tags:?}");
    // Compiled modules are aarch64 ELF (e_machine 183).
    let raylet = files.iter().find(|(k, _)| k.starts_with(&format!("{sp}/ray/_raylet")) && k.ends_with(".so")).expect("ray/_raylet*.so");
    assert_eq!(u16::from_le_bytes([raylet.1.body[18], raylet.1.body[19]]), 183, "{}", raylet.0);
    let ray = &files["usr/local/bin/ray"];
    assert!(ray.body.starts_with(b"#!/usr/bin/python3\n") && ray.mode == 0o755);
    assert!(check_records(&files, sp) > 1000);
}

/// A Debian rootfs with the full `python3` (Ray needs more of the standard library than
/// python3-minimal has), imported into Docker and copied to an OCI layout; cached by its rootfs.
fn debian_python_base() -> (PathBuf, String) {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-layers");
    std::fs::create_dir_all(&cache).unwrap();
    let rootfs = test_support::debian::rootfs(&cache, "python3");
    let k = test_support::debian::key(&[rootfs.display().to_string().as_bytes()]);
    let layout = cache.join(format!("base-{k}-oci"));
    if !layout.join("index.json").exists() {
        let tmp = cache.join(format!("base-{k}.tmp-{}", std::process::id()));
        let tag = format!("sparkctl-test/debian-python3:{k}");
        let cmd = format!(
            "set -e; tar --numeric-owner -C {r} -c . | docker import - {tag} >/dev/null; docker save -o {tmp}.tar {tag}; docker rmi -f {tag} >/dev/null; \
             skopeo copy -q docker-archive:{tmp}.tar oci:{tmp}:base; rm -f {tmp}.tar",
            r = rootfs.display(),
            tmp = tmp.display()
        );
        let out = Command::new("bash").args(["-c", &cmd]).output().unwrap();
        assert!(out.status.success(), "making the python3 base failed: {}", String::from_utf8_lossy(&out.stderr));
        if std::fs::rename(&tmp, &layout).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    let version = std::fs::read_dir(rootfs.join("usr/lib"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("python3.").map(|m| format!("3.{m}")))
        .find(|v| v.split('.').count() == 2 && !v.ends_with("dist-packages"))
        .expect("python3.X in the rootfs");
    (layout, version)
}

#[test]
fn an_image_with_ray_from_pypi_runs_ray_in_docker() {
    uv_present();
    let (layout, version) = debian_python_base();
    let p = Project::new();
    // Locked here for the stand-in's Python (the real overlay is locked for the NGC bases' 3.12).
    p.write("overlays/ray/requirements.in", "ray==2.60.0\n");
    let lock = tool(
        "uv",
        &[
            "pip",
            "compile",
            "--no-config",
            "--quiet",
            "--universal",
            "--generate-hashes",
            "--python-version",
            &version,
            &p.s("overlays/ray/requirements.in"),
            "-o",
            &p.s("overlays/ray/requirements.lock"),
        ],
    );
    assert_eq!(lock.code, 0, "{}", lock.stderr);
    p.write(
        "overlays/ray/overlay.toml",
        &format!("[python]\nrequirements = \"requirements.in\"\nlock = \"requirements.lock\"\nversion = \"{version}\"\nsite_packages = \"/usr/local/lib/python{version}/dist-packages\"\n"),
    );
    p.write("images/test.toml", &format!("overlays = [\"ray\"]\n[base]\nref = \"oci:{}:base\"\nplatforms = [\"linux/amd64\"]\n", layout.display()));
    let tag = format!("sparkctl-test/ray-layer:{}", std::process::id());
    let archive = p.s("ray.tar");
    p.run(&["image", "build", &p.s("images/test.toml"), "-o", &format!("docker-archive:{archive}:{tag}")]).ok();
    tool("docker", &["load", "-q", "-i", &archive]).ok();
    let ray = tool("docker", &["run", "--rm", "--entrypoint", "ray", &tag, "--version"]);
    let import =
        tool("docker", &["run", "--rm", "--entrypoint", "python3", &tag, "-c", "import ray, sys; print(ray.__version__, ray.__file__, sys.executable)"]);
    let _ = tool("docker", &["rmi", "-f", &tag]);
    assert_eq!(ray.code, 0, "ray --version: {}", ray.stderr);
    assert!(ray.stdout.contains("2.60.0"), "{}", ray.stdout);
    assert_eq!(import.code, 0, "import ray: {}", import.stderr);
    assert_eq!(import.stdout.trim(), format!("2.60.0 /usr/local/lib/python{version}/dist-packages/ray/__init__.py /usr/bin/python3"));
}
