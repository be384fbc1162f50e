//! Reading bases from every local transport, including the ones `sparkctl` never writes itself
//! (a legacy `docker save` archive, a layout whose top is a single manifest).

use builder::overlay::Overlay;
use builder::recipe::Recipe;
use builder::source::{open_local, BaseTop};
use builder::BlobStore;
use builder::LocalRef;
use builder::Platform;
use builder::{build, BuildOptions, BuiltImage, Origin};
use serde_json::{json, Value};
use std::path::Path;
use test_support::base::{write_layout, BaseSpec};
use test_support::oci::sha;

fn options(dir: &Path, platforms: &[&str]) -> BuildOptions {
    std::fs::create_dir_all(dir.join("overlays/o/rootfs/etc")).unwrap();
    std::fs::write(dir.join("overlays/o/overlay.toml"), "[env]\nO = \"1\"\n").unwrap();
    std::fs::write(dir.join("overlays/o/rootfs/etc/o"), "o\n").unwrap();
    let recipe = Recipe::parse("overlays = [\"o\"]\n[base]\nref = \"oci:x\"\nplatforms = [\"linux/amd64\"]\n", &dir.join("images/r.toml")).unwrap();
    let overlays = vec![Overlay::load(&dir.join("overlays"), "o", "r.toml").unwrap()];
    let platforms = platforms.iter().map(|p| Platform::parse(p).unwrap()).collect();
    BuildOptions { recipe, overlays, platforms, labels: vec![], artifacts: vec![], epoch: 0, base_name: "oci:x".into() }
}

fn build_from(reference: &str, dir: &Path, platforms: &[&str]) -> BuiltImage {
    let base = open_local(&LocalRef::parse(reference).unwrap()).unwrap();
    build(&options(dir, platforms), base, BlobStore::open(dir.join("store")).unwrap()).unwrap()
}

#[test]
fn oci_archive_base_gives_the_same_image_as_its_layout() {
    let d = tempfile::tempdir().unwrap();
    write_layout(&d.path().join("base"), &BaseSpec::default());
    let from_layout = build_from(&format!("oci:{}:base", d.path().join("base").display()), d.path(), &["linux/amd64", "linux/arm64"]);
    // Tar the layout (GNU tar, as a user would) and build from the archive.
    let status = std::process::Command::new("tar")
        .args(["-C", &d.path().join("base").display().to_string(), "-cf", &d.path().join("base.tar").display().to_string(), "."])
        .status()
        .unwrap();
    assert!(status.success());
    let from_archive = build_from(&format!("oci-archive:{}:base", d.path().join("base.tar").display()), d.path(), &["linux/amd64", "linux/arm64"]);
    assert_eq!(from_layout.top.digest, from_archive.top.digest);
    // Every blob of the result is readable from the archive source and matches its digest.
    for blob in from_archive.blobs().unwrap() {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut from_archive.open(&blob).unwrap(), &mut bytes).unwrap();
        assert_eq!(sha(&bytes), blob.desc.digest.as_str());
    }
}

#[test]
fn blobs_are_listed_children_first_each_once() {
    let d = tempfile::tempdir().unwrap();
    write_layout(&d.path().join("base"), &BaseSpec::default());
    let img = build_from(&format!("oci:{}:base", d.path().join("base").display()), d.path(), &["linux/amd64", "linux/arm64"]);
    let blobs = img.blobs().unwrap();
    let pos = |digest: &str| blobs.iter().position(|b| b.desc.digest.as_str() == digest).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    assert!(blobs.iter().all(|b| seen.insert(b.desc.digest.clone())), "a blob is listed twice");
    assert_eq!(pos(img.top.digest.as_str()), blobs.len() - 1, "the index comes last");
    for m in &img.manifests {
        for l in m.base_layers.iter().chain(&m.new_layers).chain([&m.config]) {
            assert!(pos(l.digest.as_str()) < pos(m.desc.digest.as_str()));
        }
    }
    // The kept attestation brings its own manifest, config and layer from the base.
    assert_eq!(img.verbatim.len(), 1);
    assert!(matches!(blobs[pos(img.verbatim[0].digest.as_str())].origin, Origin::Inline(_)));
    assert_eq!(blobs.len(), 2 * 4 + 1 /*shared overlay layer is once*/ - 1 + 3 + 1);
}

/// A `docker save` archive as Docker < 25 wrote it: `manifest.json`, `<id>.json`, `<id>/layer.tar`.
#[test]
fn legacy_docker_save_archive_is_read_and_hashed() {
    let d = tempfile::tempdir().unwrap();
    let layer = {
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o644);
        t.append_data(&mut h, "etc/legacy", &b"old"[..]).unwrap();
        t.into_inner().unwrap()
    };
    let diff_id = sha(&layer);
    let config = json!({ "architecture": "amd64", "os": "linux", "config": { "Env": ["PATH=/bin"] }, "rootfs": { "type": "layers", "diff_ids": [diff_id] }, "history": [{ "created_by": "legacy" }] }).to_string();
    let config_name = format!("{}.json", &sha(config.as_bytes())[7..]);
    let manifest = json!([{ "Config": config_name, "RepoTags": ["legacy/app:1"], "Layers": ["abc123/layer.tar"] }]).to_string();
    let mut t = tar::Builder::new(std::fs::File::create(d.path().join("legacy.tar")).unwrap());
    for (name, bytes) in [("manifest.json", manifest.as_bytes()), (config_name.as_str(), config.as_bytes()), ("abc123/layer.tar", &layer[..])] {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        t.append_data(&mut h, name, bytes).unwrap();
    }
    t.finish().unwrap();
    drop(t);

    let r = format!("docker-archive:{}:legacy/app:1", d.path().join("legacy.tar").display());
    let base = open_local(&LocalRef::parse(&r).unwrap()).unwrap();
    assert!(matches!(base.top, BaseTop::Manifest));
    let m = base.entries[0].1.as_ref().unwrap();
    assert_eq!(m.layers[0].digest.as_str(), diff_id, "an uncompressed layer's digest is its diff_id");
    assert_eq!(m.layers[0].media_type, "application/vnd.docker.image.rootfs.diff.tar");
    let img = build(&options(d.path(), &["linux/amd64"]), base, BlobStore::open(d.path().join("store")).unwrap()).unwrap();
    let out = d.path().join("out");
    builder::output::write(&img, &LocalRef::Oci { dir: out.clone(), tag: Some("x".into()) }).unwrap();
    let man: Value = serde_json::from_slice(&std::fs::read(out.join(img.top.digest.layout_path())).unwrap()).unwrap();
    assert_eq!(man["layers"][0]["digest"], diff_id.as_str());
    assert_eq!(man["layers"][1]["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
    assert_eq!(std::fs::read(out.join(man["layers"][0]["digest"].as_str().unwrap().replace("sha256:", "blobs/sha256/"))).unwrap(), layer);
}

#[test]
fn single_manifest_layout_base_and_platform_check() {
    let d = tempfile::tempdir().unwrap();
    write_layout(&d.path().join("base"), &BaseSpec { platforms: vec![("linux", "arm64")], attestation: false, ..BaseSpec::default() });
    // Point index.json straight at the arm64 manifest.
    let idx: Value = serde_json::from_slice(&std::fs::read(d.path().join("base/index.json")).unwrap()).unwrap();
    let top = idx["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let inner: Value = serde_json::from_slice(&std::fs::read(d.path().join("base/blobs/sha256").join(&top[7..])).unwrap()).unwrap();
    let mut entry = inner["manifests"][0].clone();
    entry.as_object_mut().unwrap().remove("platform");
    entry["annotations"] = json!({ "org.opencontainers.image.ref.name": "one" });
    std::fs::write(d.path().join("base/index.json"), json!({ "schemaVersion": 2, "manifests": [entry] }).to_string()).unwrap();
    let r = format!("oci:{}:one", d.path().join("base").display());
    let img = build_from(&r, d.path(), &["linux/arm64"]);
    assert!(!img.is_index());
    assert_eq!(img.manifests[0].new_layers.len(), 1);
    let base = open_local(&LocalRef::parse(&r).unwrap()).unwrap();
    let err = build(&options(d.path(), &["linux/amd64"]), base, BlobStore::open(d.path().join("store")).unwrap()).err().unwrap().to_string();
    assert!(err.contains("platform linux/amd64 is not in") && err.contains("linux/arm64"), "{err}");
}

#[test]
fn keep_other_platforms_copies_their_entries_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    let index_digest = write_layout(&d.path().join("base"), &BaseSpec::default());
    let base_index: Value = serde_json::from_slice(&std::fs::read(d.path().join("base/blobs/sha256").join(&index_digest[7..])).unwrap()).unwrap();
    let mut opts = options(d.path(), &["linux/amd64"]);
    opts.recipe.keep_other_platforms = true;
    let base = open_local(&LocalRef::parse(&format!("oci:{}:base", d.path().join("base").display())).unwrap()).unwrap();
    let img = build(&opts, base, BlobStore::open(d.path().join("store")).unwrap()).unwrap();
    let index: Value = serde_json::from_slice(&img.top_raw).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_ne!(entries[0]["digest"], base_index["manifests"][0]["digest"], "amd64 is rebuilt");
    assert_eq!(entries[1], base_index["manifests"][1], "arm64 is kept as it was");
    assert_eq!(entries[2], base_index["manifests"][2], "the attestation is kept as it was");
    // The kept manifest's blob is the base's own bytes (pretty-printed there), not a re-serialisation.
    let out = d.path().join("out");
    builder::output::write(&img, &LocalRef::Oci { dir: out.clone(), tag: None }).unwrap();
    let arm = entries[1]["digest"].as_str().unwrap();
    assert_eq!(std::fs::read(out.join("blobs/sha256").join(&arm[7..])).unwrap(), std::fs::read(d.path().join("base/blobs/sha256").join(&arm[7..])).unwrap());

    // Without the switch, arm64 is dropped and the attestation of amd64 stays.
    let base = open_local(&LocalRef::parse(&format!("oci:{}:base", d.path().join("base").display())).unwrap()).unwrap();
    let img = build(&options(d.path(), &["linux/amd64"]), base, BlobStore::open(d.path().join("store")).unwrap()).unwrap();
    let index: Value = serde_json::from_slice(&img.top_raw).unwrap();
    let kinds: Vec<&str> = index["manifests"].as_array().unwrap().iter().map(|m| m["platform"]["architecture"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["amd64", "unknown"]);
}

fn open_err(reference: &str) -> String {
    match open_local(&LocalRef::parse(reference).unwrap()) {
        Ok(_) => panic!("{reference} opened"),
        Err(e) => e.to_string(),
    }
}

/// Archives that are cut short, compressed, or lack the asked-for name: each error says which
/// of these it is and what to do, instead of "not a docker-archive" or tar garbage.
#[test]
fn truncated_compressed_and_misnamed_archives_are_named_as_such() {
    let d = tempfile::tempdir().unwrap();
    write_layout(&d.path().join("base"), &BaseSpec::default());
    let img = build_from(&format!("oci:{}:base", d.path().join("base").display()), d.path(), &["linux/amd64"]);
    let full = d.path().join("full.tar");
    builder::output::write(&img, &LocalRef::parse(&format!("docker-archive:{}:sparkctl/x:1", full.display())).unwrap()).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    // Where each entry's header starts, to cut exactly between entries.
    let mut headers = Vec::new();
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let e = e.unwrap();
        headers.push((e.path().unwrap().display().to_string(), e.raw_header_position()));
    }
    let at = |name: &str| headers.iter().find(|(p, _)| p == name).unwrap().1 as usize;
    let cut = d.path().join("cut.tar");
    for (len, transport, needle) in [
        (bytes.len() / 2, "docker-archive", "is truncated: its entries need"),
        (at("manifest.json"), "docker-archive", "it looks truncated"),
        (at("oci-layout"), "oci-archive", "it looks truncated"),
        (bytes.len() - 1024 - 512, "oci-archive", "is truncated"),
    ] {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let e = open_err(&format!("{transport}:{}", cut.display()));
        assert!(e.contains(needle) && e.contains("again"), "cut at {len} of {}: {e}", bytes.len());
    }

    let gz = d.path().join("full.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &bytes).unwrap();
    enc.finish().unwrap();
    for transport in ["docker-archive", "oci-archive"] {
        let e = open_err(&format!("{transport}:{}", gz.display()));
        assert!(e.contains("is gzip-compressed") && e.contains("gzip -dk"), "{e}");
    }

    let e = open_err(&format!("docker-archive:{}:sparkctl/y:1", full.display()));
    assert!(e.contains("no image named `sparkctl/y:1`") && e.contains("names: sparkctl/x:1"), "{e}");
    open_local(&LocalRef::parse(&format!("docker-archive:{}:sparkctl/x:1", full.display())).unwrap()).unwrap();

    // The other transport's archive: named, with the transport to use.
    let legacy = d.path().join("legacy.tar");
    let mut t = tar::Builder::new(std::fs::File::create(&legacy).unwrap());
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    h.set_mode(0o644);
    t.append_data(&mut h, "manifest.json", &b"[]"[..]).unwrap();
    t.finish().unwrap();
    drop(t);
    let e = open_err(&format!("oci-archive:{}", legacy.display()));
    assert!(e.contains("a `docker save` archive: use `docker-archive:`"), "{e}");
    std::fs::write(&cut, &bytes).unwrap();
    let tar_dir = d.path().join("layout.tar");
    let status = std::process::Command::new("tar")
        .args(["-C", &d.path().join("base").display().to_string(), "-cf", &tar_dir.display().to_string(), "."])
        .status()
        .unwrap();
    assert!(status.success());
    let e = open_err(&format!("docker-archive:{}", tar_dir.display()));
    assert!(e.contains("an OCI archive: use `oci-archive:`"), "{e}");
}
