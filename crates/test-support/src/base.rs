//! Test bases written independently of the builder's own layer code (plain `tar` with ustar
//! headers and real-looking owners and mtimes, like a base made elsewhere would have), as OCI
//! layouts with a multi-platform index, optionally an attestation entry, in OCI or Docker v2 media
//! types. Deterministic for a given spec, so golden digests can be pinned on top of them.
use crate::fuzz::noise;
use crate::oci::sha;
use flate2::{write::GzEncoder, Compression};
use serde_json::json;
use std::path::Path;

pub struct BaseSpec {
    pub platforms: Vec<(&'static str, &'static str)>,
    pub docker_media_types: bool,
    pub attestation: bool,
    /// Put the host's static busybox in (for images that must run); breaks golden digests.
    pub busybox: bool,
    /// Bytes of incompressible padding per platform, split over `pad_layers` layers (benchmarks).
    pub pad_bytes: u64,
    pub pad_layers: usize,
    /// Padding layers as plain tar (`…layer.v1.tar`): benchmarks write gigabytes quickly.
    pub pad_uncompressed: bool,
}

impl Default for BaseSpec {
    fn default() -> Self {
        BaseSpec {
            platforms: vec![("linux", "amd64"), ("linux", "arm64")],
            docker_media_types: false,
            attestation: true,
            busybox: false,
            pad_bytes: 0,
            pad_layers: 0,
            pad_uncompressed: false,
        }
    }
}

fn put(dir: &Path, bytes: &[u8]) -> (String, u64) {
    let d = sha(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    (d, bytes.len() as u64)
}

enum Item<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, Vec<u8>),
    Link(&'a str, &'a str),
}

fn tar_gz(items: &[Item<'_>]) -> (Vec<u8>, String) {
    let (tar, diff_id) = tar_plain(items);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

fn tar_plain(items: &[Item<'_>]) -> (Vec<u8>, String) {
    let mut t = tar::Builder::new(Vec::new());
    for it in items {
        let mut h = tar::Header::new_ustar();
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_700_000_000);
        match it {
            Item::Dir(p, m) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*m);
                h.set_size(0);
                t.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Item::File(p, m, data) => {
                h.set_mode(*m);
                h.set_size(data.len() as u64);
                t.append_data(&mut h, p, &data[..]).unwrap();
            }
            Item::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                t.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    let tar = t.into_inner().unwrap();
    let diff_id = sha(&tar);
    (tar, diff_id)
}

/// Writes the layout at `dir` (tag `base`) and returns the index digest.
pub fn write_layout(dir: &Path, spec: &BaseSpec) -> String {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let (mt_index, mt_manifest, mt_config, mt_layer) = if spec.docker_media_types {
        (
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    } else {
        (
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    };
    let busybox = if spec.busybox { Some(std::fs::read("/bin/busybox").expect("busybox-static is installed by `cargo xtask deps`")) } else { None };
    let mut entries = Vec::new();
    for (pi, (os, arch)) in spec.platforms.iter().enumerate() {
        let mut layers: Vec<(Vec<u8>, String, &str)> = Vec::new();
        let mut l1 = vec![Item::Dir("bin/", 0o755), Item::Dir("usr/", 0o750), Item::Dir("usr/local/", 0o755), Item::Dir("etc/", 0o755)];
        let bb = busybox.clone();
        if let Some(bb) = bb {
            l1.push(Item::File("bin/busybox", 0o755, bb));
            for tool in ["sh", "cat", "ls", "env", "test", "stat", "readlink", "echo"] {
                l1.push(Item::Link(Box::leak(format!("bin/{tool}").into_boxed_str()), "busybox"));
            }
        }
        l1.push(Item::File("usr/local/base-marker", 0o644, format!("{os}/{arch}\n").into_bytes()));
        let gz = |items: &[Item<'_>]| {
            let (b, d) = tar_gz(items);
            (b, d, mt_layer)
        };
        layers.push(gz(&l1));
        layers.push(gz(&[
            Item::File("etc/nccl.conf", 0o644, b"NCCL_DEBUG=WARN\nNCCL_IB_DISABLE=1\n".to_vec()),
            Item::File("etc/os-release", 0o644, b"ID=sparkbase\n".to_vec()),
        ]));
        for l in 0..spec.pad_layers {
            let n = (spec.pad_bytes / spec.pad_layers as u64) as usize;
            let name = format!("opt/pad/{l}.bin");
            let items = [Item::File(Box::leak(name.into_boxed_str()), 0o644, noise(n, (pi * 100 + l + 1) as u64))];
            layers.push(if spec.pad_uncompressed {
                let (b, d) = tar_plain(&items);
                (b, d, if spec.docker_media_types { "application/vnd.docker.image.rootfs.diff.tar" } else { "application/vnd.oci.image.layer.v1.tar" })
            } else {
                gz(&items)
            });
        }
        let mut layer_descs = Vec::new();
        let mut diff_ids = Vec::new();
        for (blob, diff, mt) in &layers {
            let (d, s) = put(dir, blob);
            layer_descs.push(json!({ "mediaType": mt, "digest": d, "size": s }));
            diff_ids.push(json!(diff));
        }
        let config = json!({
            "architecture": arch, "os": os, "created": "2025-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "BASE_ONLY=1"],
                "Cmd": ["/bin/sh"],
                "Healthcheck": { "Test": ["CMD", "true"], "Interval": 30000000000u64 },
                "ArgsEscaped": true,
                "Labels": { "base.label": "kept" }
            },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": [{ "created": "2025-01-01T00:00:00Z", "created_by": "test base layer 1" }, { "created": "2025-01-01T00:00:00Z", "created_by": "test base layer 2" }]
        });
        let (cd, cs) = put(dir, serde_json::to_string_pretty(&config).unwrap().as_bytes());
        let manifest =
            json!({ "schemaVersion": 2, "mediaType": mt_manifest, "config": { "mediaType": mt_config, "digest": cd, "size": cs }, "layers": layer_descs });
        // Pretty-printed on purpose: untouched manifests must be copied byte for byte, not re-serialised.
        let (md, ms) = put(dir, serde_json::to_string_pretty(&manifest).unwrap().as_bytes());
        entries.push(json!({ "mediaType": mt_manifest, "digest": md, "size": ms, "platform": { "architecture": arch, "os": os } }));
    }
    if spec.attestation {
        let subject = entries[0]["digest"].as_str().unwrap().to_owned();
        let (ld, ls) = put(dir, br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2"}"#);
        let (cd, cs) = put(dir, br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#);
        let m = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs }, "layers": [{ "mediaType": "application/vnd.in-toto+json", "digest": ld, "size": ls, "annotations": { "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2" } }] });
        let (md, ms) = put(dir, serde_json::to_string(&m).unwrap().as_bytes());
        entries.push(json!({ "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms, "platform": { "architecture": "unknown", "os": "unknown" }, "annotations": { "vnd.docker.reference.digest": subject, "vnd.docker.reference.type": "attestation-manifest" } }));
    }
    let index = json!({ "schemaVersion": 2, "mediaType": mt_index, "manifests": entries });
    let (id, is) = put(dir, serde_json::to_string(&index).unwrap().as_bytes());
    let top = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{ "mediaType": mt_index, "digest": id, "size": is, "annotations": { "org.opencontainers.image.ref.name": "base" } }] });
    std::fs::write(dir.join("index.json"), serde_json::to_string(&top).unwrap()).unwrap();
    id
}
