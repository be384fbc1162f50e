//! `sparkctl image build`: multi-platform builds read back by skopeo and umoci, docker-archive
//! outputs loaded and run by the Docker engine, and determinism with pinned golden digests.

// Only the golden digests are hermetic; the other tests' helpers are unused when those system
// tests are compiled out.
#![cfg_attr(not(feature = "system-tests"), allow(dead_code, unused_imports))]

use crate::support::{json, layer_entries, tool, Project};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use test_support::base::{write_layout, BaseSpec};
use test_support::oci::sha;

fn base_ref(p: &Project) -> String {
    format!("oci:{}:base", p.s("base"))
}

#[cfg(feature = "system-tests")]
#[test]
fn multi_platform_build_is_read_back_by_skopeo_and_umoci() {
    let p = Project::new();
    let base_index = write_layout(&p.path("base"), &BaseSpec::default());
    p.standard(&base_ref(&p), &["linux/amd64", "linux/arm64"]);
    let out = format!("oci:{}:v1", p.s("out"));
    let archive = format!("oci-archive:{}:v1", p.s("out.tar"));
    let run = p.run(&["image", "build", &p.s("images/test.toml"), "--output", &out, "--output", &archive]).ok();
    let digest = run.last_line().to_owned();

    // The printed digest is the index skopeo reads from both outputs.
    let raw = tool("skopeo", &["inspect", "--raw", &out]).ok().stdout;
    assert_eq!(sha(raw.as_bytes()), digest);
    assert_eq!(sha(tool("skopeo", &["inspect", "--raw", &archive]).ok().stdout.as_bytes()), digest);
    let index = json(&raw);
    let entries = index["manifests"].as_array().unwrap();
    let plats: Vec<String> =
        entries.iter().map(|m| format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())).collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64", "unknown/unknown"]);

    // The attestation entry is the base's, byte for byte (same object, same digest).
    let base_idx = json(&String::from_utf8(std::fs::read(p.path(&format!("base/blobs/sha256/{}", &base_index[7..]))).unwrap()).unwrap());
    assert_eq!(entries[2], base_idx["manifests"][2]);
    assert_eq!(index["annotations"]["org.opencontainers.image.base.digest"], base_index.as_str());

    // Same overlay layer on both platforms; the amd64-only overlay only on amd64.
    let manifest = |arch: &str| {
        let e = entries.iter().find(|m| m["platform"]["architecture"] == arch).unwrap();
        json(&std::fs::read_to_string(p.path("out/blobs/sha256").join(&e["digest"].as_str().unwrap()[7..])).unwrap())
    };
    let (amd, arm) = (manifest("amd64"), manifest("arm64"));
    let layers = |m: &serde_json::Value| m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(layers(&amd).len(), 4);
    assert_eq!(layers(&arm).len(), 3);
    assert_eq!(layers(&amd)[2], layers(&arm)[2], "one overlay, one blob for every platform");
    assert_eq!(amd["layers"][2]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    // Base layers are untouched descriptors; base blobs were linked, not copied.
    let base_amd_layer = Path::new(&p.s("base")).join("blobs/sha256").join(&layers(&amd)[0][7..]);
    let out_amd_layer = Path::new(&p.s("out")).join("blobs/sha256").join(&layers(&amd)[0][7..]);
    assert_eq!(std::fs::metadata(&base_amd_layer).unwrap().ino(), std::fs::metadata(&out_amd_layer).unwrap().ino(), "base blob hard-linked");

    // Config: raw edits; unknown fields and base history survive; env merged in order.
    let cfg = json(&tool("skopeo", &["inspect", "--config", "--raw", "--override-arch", "amd64", &out]).ok().stdout);
    let c = &cfg["config"];
    assert_eq!(
        c["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "BASE_ONLY=overridden",
            "OVERLAY_VAR=from overlay",
            "RECIPE_VAR=from recipe"
        ])
    );
    assert_eq!(c["Healthcheck"]["Test"], serde_json::json!(["CMD", "true"]));
    assert_eq!(c["ArgsEscaped"], true);
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["WorkingDir"], "/work");
    assert_eq!(c["Labels"]["base.label"], "kept");
    assert_eq!(c["Labels"]["org.opencontainers.image.source"], "https://example.invalid/sparkctl");
    let hist = cfg["history"].as_array().unwrap();
    assert_eq!(hist.len(), 2 + 2 + 1);
    assert_eq!(hist[0]["created_by"], "test base layer 1");
    assert_eq!(hist[2]["created_by"], "sparkctl: overlay files");
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 4);
    assert_eq!(cfg["created"], "1970-01-01T00:00:00Z");

    // skopeo copies every platform (it verifies every blob digest on the way).
    tool("skopeo", &["copy", "--all", &out, &format!("oci:{}:copy", p.s("copy"))]).ok();

    // The new layer: sorted, owners 0, mtime = epoch, no parent folders, whiteout present.
    let entries = layer_entries(&p.path("out/blobs/sha256").join(&layers(&amd)[2][7..]));
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["etc/.wh.nccl.conf", "etc/spark/conf", "usr/local/bin/hello", "usr/local/bin/hello-link", "usr/local/share/secret", "var/empty/"]);
    assert!(entries.iter().all(|e| e.2 == 0 && e.3 == 0 && e.4 == 0), "{entries:?}");

    // umoci unpacks each platform: files with their modes, whiteout applied, base /usr kept.
    for (arch, has_amd64_file) in [("amd64", true), ("arm64", false)] {
        let single = format!("oci:{}:{arch}", p.s("single"));
        tool("skopeo", &["copy", "--override-arch", arch, &out, &single]).ok();
        let bundle = p.path(&format!("bundle-{arch}"));
        tool("umoci", &["unpack", "--image", &format!("{}:{arch}", p.s("single")), bundle.to_str().unwrap()]).ok();
        let root = bundle.join("rootfs");
        let mode = |rel: &str| std::fs::symlink_metadata(root.join(rel)).unwrap().mode() & 0o7777;
        assert_eq!(mode("usr/local/bin/hello"), 0o755);
        assert_eq!(mode("usr/local/share/secret"), 0o600);
        assert_eq!(mode("etc/spark/conf"), 0o644);
        assert_eq!(mode("usr"), 0o750, "the base's /usr must not be clobbered by the overlay");
        assert_eq!(std::fs::read_link(root.join("usr/local/bin/hello-link")).unwrap(), Path::new("/usr/local/bin/hello"));
        assert!(root.join("var/empty").is_dir());
        assert!(!root.join("etc/nccl.conf").exists(), "whiteout must delete /etc/nccl.conf");
        assert!(root.join("etc/os-release").exists());
        assert_eq!(std::fs::read_to_string(root.join("usr/local/base-marker")).unwrap(), format!("linux/{arch}\n"));
        assert_eq!(root.join("etc/amd64-only").exists(), has_amd64_file);
    }
}

/// Docker names used by these tests, removed when the test ends.
struct DockerImages(Vec<String>);
impl Drop for DockerImages {
    fn drop(&mut self) {
        for i in &self.0 {
            let _ = std::process::Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

/// A rootfs tarball with busybox and an /etc/nccl.conf, for `docker import`.
fn busybox_rootfs(path: &Path) {
    let mut t = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    t.append_path_with_name("/bin/busybox", "bin/busybox").unwrap();
    for tool in ["sh", "cat", "test", "echo", "env", "stat"] {
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        t.append_link(&mut h, format!("bin/{tool}"), "busybox").unwrap();
    }
    let conf = b"NCCL_DEBUG=WARN\n";
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(conf.len() as u64);
    t.append_data(&mut h, "etc/nccl.conf", &conf[..]).unwrap();
    t.finish().unwrap();
}

#[cfg(feature = "system-tests")]
#[test]
fn docker_archive_from_a_docker_save_base_loads_and_runs_in_docker() {
    let p = Project::new();
    let id = format!("{}", std::process::id());
    let base_tag = format!("sparkctl-test-base:{id}");
    let out_tag = format!("sparkctl-test/app:{id}");
    let _guard = DockerImages(vec![base_tag.clone(), out_tag.clone()]);
    busybox_rootfs(&p.path("rootfs.tar"));
    tool("docker", &["import", &p.s("rootfs.tar"), &base_tag]).ok();
    tool("docker", &["save", "-o", &p.s("saved.tar"), &base_tag]).ok();

    p.standard("oci:unused:x", &["linux/amd64"]);
    let dest = format!("docker-archive:{}:{out_tag}", p.s("app.tar"));
    let base = format!("docker-archive:{}", p.s("saved.tar"));
    let digest = p.run(&["image", "build", &p.s("images/test.toml"), "--base", &base, "--output", &dest]).ok().last_line().to_owned();
    assert!(digest.starts_with("sha256:"));

    // The same file is an OCI layout too: skopeo reads it as an oci-archive.
    assert_eq!(sha(tool("skopeo", &["inspect", "--raw", &format!("oci-archive:{}", p.s("app.tar"))]).ok().stdout.as_bytes()), digest);
    let loaded = tool("docker", &["load", "-i", &p.s("app.tar")]).ok();
    assert!(loaded.stdout.contains(&out_tag), "{}", loaded.stdout);
    let run = tool("docker", &["run", "--rm", &out_tag, "cat /usr/local/bin/hello; echo \"$OVERLAY_VAR|$RECIPE_VAR\"; test -e /etc/nccl.conf && echo present || echo nccl.conf gone; stat -c %a /usr/local/share/secret"]).ok();
    assert_eq!(run.stdout, "#!/bin/sh\necho hello from overlay\nfrom overlay|from recipe\nnccl.conf gone\n600\n");
    let inspect = json(&tool("docker", &["inspect", &out_tag]).ok().stdout);
    assert_eq!(inspect[0]["Config"]["Labels"]["org.opencontainers.image.source"], "https://example.invalid/sparkctl");
    assert_eq!(inspect[0]["Config"]["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
}

#[cfg(feature = "system-tests")]
#[test]
fn docker_v2_base_gets_docker_v2_layers_and_runs() {
    let p = Project::new();
    let id = format!("{}", std::process::id());
    let out_tag = format!("sparkctl-test/v2:{id}");
    let _guard = DockerImages(vec![out_tag.clone()]);
    let spec = BaseSpec {
        docker_media_types: true,
        busybox: true,
        attestation: false,
        platforms: vec![("linux", "amd64"), ("linux", "arm64")],
        ..BaseSpec::default()
    };
    write_layout(&p.path("base"), &spec);
    p.standard(&base_ref(&p), &["linux/amd64", "linux/arm64"]);
    let out = format!("oci:{}:v2", p.s("out"));
    p.run(&["image", "build", &p.s("images/test.toml"), "-o", &out]).ok();
    // skopeo's `oci:` transport skips index.json entries of Docker media types, so this layout is
    // read back with `sparkctl image inspect` here, and by Docker below.
    let summary = json(&p.run(&["image", "inspect", "--json", &out]).ok().stdout);
    assert_eq!(summary["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json");
    let amd = &summary["manifests"][0];
    assert_eq!(amd["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(amd["platform"], "linux/amd64");
    let layer_types: Vec<&str> = amd["layers"].as_array().unwrap().iter().map(|l| l["mediaType"].as_str().unwrap()).collect();
    assert_eq!(layer_types, ["application/vnd.docker.image.rootfs.diff.tar.gzip"; 4]);
    // Docker-format layers carry no annotation: the history names the overlay of each new layer.
    let overlays: Vec<&str> = amd["layers"].as_array().unwrap().iter().map(|l| l["overlay"].as_str().unwrap_or("-")).collect();
    assert_eq!(overlays, ["-", "-", "files", "amd64-only"]);
    let table = p.run(&["image", "inspect", &out]).ok().stdout;
    assert!(table.contains("overlay amd64-only") && table.contains("overlay files"), "{table}");
    let m = json(&std::fs::read_to_string(p.path("out/blobs/sha256").join(&amd["digest"].as_str().unwrap()[7..])).unwrap());
    assert_eq!(m["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
    assert!(m.get("annotations").is_none(), "Docker v2 manifests carry no annotations");

    let dest = format!("docker-archive:{}:{out_tag}", p.s("v2.tar"));
    p.run(&["image", "build", &p.s("images/test.toml"), "--platform", "linux/amd64", "-o", &dest]).ok();
    tool("docker", &["load", "-i", &p.s("v2.tar")]).ok();
    let run = tool("docker", &["run", "--rm", &out_tag, "cat /etc/amd64-only /usr/local/base-marker; echo $BASE_ONLY"]).ok();
    assert_eq!(run.stdout, "x86\nlinux/amd64\noverridden\n");
}

/// Copies the overlays to a second project with other mtimes and modes (as another checkout
/// under another umask would have).
fn perturbed_copy(from: &Project, to: &Project) {
    let status = std::process::Command::new("cp").args(["-a", &from.s("overlays"), &to.s("overlays")]).status().unwrap();
    assert!(status.success());
    std::fs::create_dir_all(to.path("images")).unwrap();
    std::fs::copy(from.path("images/test.toml"), to.path("images/test.toml")).unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("cd {} && find . -exec touch -h -d '2011-03-04 05:06:07' {{}} + && chmod 0664 rootfs/etc/spark/conf && chmod 0775 rootfs/usr/local/bin/hello rootfs/etc/spark", to.s("overlays/files")))
        .status()
        .unwrap();
    assert!(status.success());
}

/// Golden digests: a change of these means images built before and after differ. If it is
/// intended (a new compressor pin, a format change), update them and say so in the commit.
const GOLDEN_EPOCH_0: &str = "sha256:d076aadb46095b7ca3063e0c58a8c27e048eb2131276da64f9519028f5450d5d";
const GOLDEN_EPOCH_1700000000: &str = "sha256:780fa73a13f9f1fce76ada44228e4e819f9d022e23fdabf24e3701db94864925";

#[test]
fn same_inputs_give_the_same_bytes_and_the_pinned_digest() {
    let a = Project::new();
    let b = Project::new();
    write_layout(&a.path("base"), &BaseSpec::default());
    a.standard(&base_ref(&a), &["linux/amd64", "linux/arm64"]);
    perturbed_copy(&a, &b);
    // b's recipe points at a's base: same base bytes, different project and store.
    let build =
        |p: &Project, out: &str| p.run(&["image", "build", &p.s("images/test.toml"), "-o", &format!("oci-archive:{}", p.s(out))]).ok().last_line().to_owned();
    let da = build(&a, "a.tar");
    let db = build(&b, "b.tar");
    assert_eq!(da, db);
    assert_eq!(std::fs::read(a.path("a.tar")).unwrap(), std::fs::read(b.path("b.tar")).unwrap(), "archives must be byte-identical");
    assert_eq!(da, GOLDEN_EPOCH_0, "golden digest moved");
    // What `image inspect` says of the golden image, as a table and as JSON.
    let archive = format!("oci-archive:{}", a.s("a.tar"));
    let inspect = |json: &[&str]| a.run(&[&["image", "inspect", &archive][..], json].concat()).ok().stdout.replace(&archive, "[ARCHIVE]");
    insta::assert_snapshot!("inspect_table", inspect(&[]));
    insta::assert_snapshot!("inspect_json", inspect(&["--json"]));

    let run = std::process::Command::new(env!("CARGO_BIN_EXE_sparkctl"))
        .args(["image", "build", &a.s("images/test.toml"), "-o", &format!("oci:{}", a.s("epoch"))])
        .env("SPARKCTL_STORE", a.store())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let de = String::from_utf8(run.stdout).unwrap().lines().last().unwrap().to_owned();
    assert_ne!(de, da);
    assert_eq!(de, GOLDEN_EPOCH_1700000000, "golden digest moved");
}
