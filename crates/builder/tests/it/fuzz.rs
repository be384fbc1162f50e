//! Bounded mutation fuzzing of everything the builder parses from users and from files it did
//! not write: references, recipes, overlays, registry headers and error bodies, and base archives (whose tar
//! headers announce sizes and offsets). See `crates/test-support/src/fuzz.rs`.

use builder::overlay::Overlay;
use builder::recipe::Recipe;
use builder::registry::auth::Challenge;
use builder::registry::code::ErrorBody;
use builder::registry::retry::parse_retry_after;
use builder::registry::RegistryRef;
use builder::source::open_local;
use builder::Platform;
use builder::{ImageRef, LocalRef};
use std::io::Read;
use std::path::Path;
use test_support::base::{write_layout, BaseSpec};
use test_support::fuzz::{run, seeds_from};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn fuzz_references_platforms_and_registry_headers() {
    let seeds: Vec<Vec<u8>> = [
        "oci:out/img:v1",
        "oci-archive:/tmp/a.tar:tag",
        "docker-archive:a.tar:localhost:5000/x/y:v2",
        "docker://nvcr.io/nvidia/vllm:25.11-py3@sha256:557747337846eecf34486866f3d992383c6f8af869fdb0e365b5093fcaee02c2",
        "localhost:5000/team/app:v1",
        "[::1]:5000/a/b:c",
        "linux/arm64/v8",
        "Bearer realm=\"https://auth.example/token\",service=\"registry\",scope=\"repository:a/b:pull,push\"",
        "Basic realm=\"x\"",
        "120",
        r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let n = run("references", &seeds, &["docker://", "oci:", "@sha256:", ":", "/", "//", "realm=", ",", "\"", "{\"errors\":[", "\"code\":"], |b| {
        let s = String::from_utf8_lossy(b);
        let _ = ImageRef::parse_explicit(&s).map(|r| r.to_string());
        if let Ok(ImageRef::Registry(r)) = ImageRef::parse(&s) {
            let _ = (r.to_string(), r.api_host().to_owned(), r.manifest_reference());
        }
        let _ = RegistryRef::parse(&s).map(|r| r.to_string());
        let _ = Platform::parse(&s).map(|p| p.to_string());
        let _ = Challenge::parse(&s);
        let _ = parse_retry_after(Some(&s));
        let _ = ErrorBody::parse(&s).code.map(|c| c.to_string());
    });
    assert!(n > 100);
}

#[test]
fn fuzz_recipes_and_overlays() {
    let mut seeds = seeds_from(&root().join("images"));
    seeds.retain(|s| !s.starts_with(b"{"));
    for dir in std::fs::read_dir(root().join("overlays")).unwrap().flatten() {
        seeds.push(std::fs::read(dir.path().join("overlay.toml")).unwrap());
    }
    let dict = [
        "[modes]\n",
        "\"/etc/x\" = 755\n",
        "0o",
        "[[artifact]]\n",
        "[base]\n",
        "ref = ",
        "platforms = [\"linux/arm64\"]\n",
        "delete = [\"/\"]\n",
        "[env]\n",
        "\"",
    ];
    let n = run("Recipe::parse, Overlay::parse", &seeds, &dict, |b| {
        let text = String::from_utf8_lossy(b);
        let _ = Recipe::parse(&text, Path::new("images/fuzz.toml"));
        let _ = Overlay::parse("fuzz", Path::new("overlays/fuzz"), &text);
    });
    assert!(n > 20);
}

/// Mutated `docker save` and OCI archives: opened, every blob read through its verification,
/// summarised. Truncations, huge announced sizes and garbage JSON must all be errors.
#[test]
fn fuzz_base_archives() {
    let d = tempfile::tempdir().unwrap();
    write_layout(&d.path().join("base"), &BaseSpec { attestation: false, platforms: vec![("linux", "amd64")], ..Default::default() });
    let tar = |extra: &[&str]| {
        let out = d.path().join("seed.tar");
        let status = std::process::Command::new("tar")
            .args(extra)
            .args(["-C", &d.path().join("base").display().to_string(), "-cf", &out.display().to_string(), "."])
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(&out).unwrap()
    };
    let seeds = vec![tar(&[]), tar(&["--format=ustar"])];
    let file = d.path().join("fuzz.tar");
    let n = run("archive sources", &seeds, &["00000000000", "77777777777", "ustar", "oci-layout", "index.json", "manifest.json", "blobs/sha256/"], |b| {
        std::fs::write(&file, b).unwrap();
        for reference in [format!("oci-archive:{}", file.display()), format!("docker-archive:{}", file.display())] {
            let Ok(img) = open_local(&LocalRef::parse(&reference).unwrap()) else { continue };
            let _ = builder::inspect::table(&builder::inspect::summary(&img));
            for (_, m) in &img.entries {
                for l in m.iter().flat_map(|m| &m.layers) {
                    if let Ok(r) = img.source.open(l) {
                        let mut v = builder::VerifyingReader::new(r.take(64 << 20), l.digest.clone(), l.size, "fuzz");
                        let _ = std::io::copy(&mut v, &mut std::io::sink());
                    }
                }
            }
        }
    });
    assert!(n > 20);
}
