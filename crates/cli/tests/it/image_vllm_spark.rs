//! The vllm-spark image: the real recipe (`images/vllm-spark.toml`) and overlays built by
//! `sparkctl image build --base …` on a stand-in base, then read by skopeo, umoci and the Docker
//! engine. The stand-in for NVIDIA's base is a Debian bookworm minbase with `python3-minimal`
//! (debootstrap, cached under `target/tmp` by its inputs), plus a fake `torch`
//! (`tests-image/fake-torch`) that logs what was done to `torch.backends.cudnn.enabled`, a stray
//! `/etc/nccl.conf`, and a stand-in for the apport hook that Debian's own sitecustomize installs.

// Only the hook's Python unit tests and the overlay trees' check are hermetic; the other tests'
// helpers are unused when those system tests are compiled out.
#![cfg_attr(not(feature = "system-tests"), allow(dead_code, unused_imports))]

use crate::support::{json, layer_entries, sparkctl, tool, Project, Run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use test_support::base::{write_layout, BaseSpec};

/// What the overlays bake into the config, in image order (cudnn-hook, then spark-env).
const BAKED_ENV: &[&str] = &[
    "PYTHONPATH=/usr/local/lib/sparkctl/python",
    "SPARK_CUDNN=auto",
    "NCCL_DMABUF_ENABLE=0",
    "NCCL_NET_GDR_C2C=0",
    "NCCL_NET_GDR_LEVEL=LOC",
    "NCCL_NET_PLUGIN=none",
    "RAY_memory_monitor_refresh_ms=0",
    "VLLM_ATTENTION_BACKEND=TRITON_ATTN",
];

/// Per-node values (ARCHITECTURE.md invariant 4: the entrypoint supplies them) and fallback switches
/// that a healthy Spark must not have: the image bakes none of them.
const NOT_BAKED: &[&str] = &[
    "NCCL_SOCKET_IFNAME",
    "NCCL_IB_HCA",
    "NCCL_IB_GID_INDEX",
    "GLOO_SOCKET_IFNAME",
    "UCX_NET_DEVICES",
    "VLLM_HOST_IP",
    "MASTER_ADDR",
    "RAY_ADDRESS",
    "NCCL_IB_DISABLE",
    "NCCL_NET",
];

const LABELS: &[(&str, &str)] = &[
    ("org.opencontainers.image.title", "vllm-spark"),
    ("org.opencontainers.image.description", "vLLM for multi-node DGX Spark (GB10) over RoCE, built by sparkctl"),
    ("org.opencontainers.image.source", "https://example.invalid/sparkctl"),
    ("org.opencontainers.image.version", "0.1.0"),
    ("org.opencontainers.image.licenses", "Apache-2.0"),
    ("org.opencontainers.image.revision", "0123456789abcdef0123456789abcdef01234567"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(std::path::Path::parent).unwrap().to_path_buf()
}

fn recipe() -> String {
    repo().join("images/vllm-spark.toml").display().to_string()
}

/// `image build` of the real recipe on `p`'s `base` layout for `platform` with `artifact`, into `p`'s `out`.
fn build_with_artifact(p: &Project, platform: &str, artifact: &str) -> Run {
    let (base, out) = (format!("oci:{}:base", p.s("base")), format!("oci:{}:v", p.s("out")));
    p.run(&["image", "build", &recipe(), "--base", &base, "--platform", platform, "--artifact", artifact, "--output", &out])
}

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("image-vllm-spark")
}

fn docker(args: &[&str]) -> Run {
    tool("docker", args)
}

/// The stand-in base: rootfs + `tests-image/base` + the fake torch, made with `docker import`,
/// kept as a `docker save` archive and an OCI layout, cached by the rootfs key and the bytes of
/// every added file; the Docker tag is there for the tests that run the base itself.
struct TestBase {
    /// The image as an OCI layout (`skopeo copy`), tag `base`: OCI media types, so the
    /// built layout is readable by skopeo 1.9 and umoci, which look only at OCI manifests.
    layout: PathBuf,
    tag: String,
}

fn files_under(root: &Path, rel: &str, out: &mut Vec<String>) {
    let p = root.join(rel);
    if p.is_dir() {
        let mut names: Vec<String> =
            std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n != "__pycache__").collect();
        names.sort();
        for n in names {
            files_under(root, &format!("{rel}/{n}"), out);
        }
    } else {
        out.push(rel.to_owned());
    }
}

fn test_base() -> &'static TestBase {
    static BASE: OnceLock<TestBase> = OnceLock::new();
    BASE.get_or_init(|| {
        let rootfs = test_support::debian::rootfs(&cache_dir(), "python3-minimal");
        let ti = repo().join("tests-image");
        let mut extra = Vec::new(); // (path in image, source)
        let mut rels = Vec::new();
        files_under(&ti.join("base"), "etc", &mut rels);
        files_under(&ti.join("base"), "usr", &mut rels);
        for r in &rels {
            extra.push((r.clone(), ti.join("base").join(r)));
        }
        let mut torch = Vec::new();
        files_under(&ti.join("fake-torch"), "torch", &mut torch);
        for r in &torch {
            extra.push((format!("usr/lib/python3/dist-packages/{r}"), ti.join("fake-torch").join(r)));
        }
        let mut parts: Vec<Vec<u8>> = vec![rootfs.display().to_string().into_bytes()];
        for (p, src) in &extra {
            parts.push(p.clone().into_bytes());
            parts.push(std::fs::read(src).unwrap());
        }
        let k = test_support::debian::key(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let archive = cache_dir().join(format!("base-{k}.tar"));
        let tag = format!("sparkctl-test/debian-python-base:{k}");
        if !archive.exists() {
            // Stage the extra files with fixed modes; tar adds them after the rootfs (later wins).
            let stage = tempfile::tempdir().unwrap();
            for (p, src) in &extra {
                let dst = stage.path().join(p);
                std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
                std::fs::copy(src, &dst).unwrap();
            }
            let cmd = format!(
                "set -e; cd {stage}; find . -type d -exec chmod 0755 {{}} +; find . -type f -exec chmod 0644 {{}} +; \
                 tar --numeric-owner -C {rootfs} -c . -C {stage} {paths} | docker import - {tag} >/dev/null; docker save -o {tmp} {tag}; mv {tmp} {archive}",
                stage = stage.path().display(),
                rootfs = rootfs.display(),
                paths = ["etc/nccl.conf", "usr/lib/python3/dist-packages/apport_python_hook.py", "usr/lib/python3/dist-packages/torch"].join(" "),
                tmp = archive.with_extension(format!("tmp-{}", std::process::id())).display(),
                archive = archive.display(),
            );
            let out = Command::new("bash").args(["-c", &cmd]).output().unwrap();
            assert!(out.status.success(), "making the test base failed: {}", String::from_utf8_lossy(&out.stderr));
        } else if docker(&["image", "inspect", &tag]).code != 0 {
            docker(&["load", "-q", "-i", &archive.display().to_string()]).ok();
        }
        let layout = cache_dir().join(format!("base-{k}-oci"));
        if !layout.join("index.json").exists() {
            let tmp = cache_dir().join(format!("base-{k}-oci.tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            tool("skopeo", &["copy", "-q", &format!("docker-archive:{}", archive.display()), &format!("oci:{}:base", tmp.display())]).ok();
            if std::fs::rename(&tmp, &layout).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        TestBase { layout, tag }
    })
}

/// A fake aarch64 executable: a valid 64-bit little-endian ELF header with e_machine 183.
fn aarch64_elf(path: &Path) {
    let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    h.resize(16, 0);
    h.extend(2u16.to_le_bytes()); // ET_EXEC
    h.extend(183u16.to_le_bytes()); // EM_AARCH64
    h.extend(1u32.to_le_bytes());
    h.resize(64, 0);
    std::fs::write(path, h).unwrap();
}

/// An x86-64 static executable to stand in for spark-entrypoint (its own tests are elsewhere).
const AMD64_ENTRYPOINT: &str = "/bin/busybox";

/// The image built once per test run on the Debian stand-in, linux/amd64, as an OCI layout and
/// loaded into Docker.
struct Built {
    layout: String,
    oci_dir: PathBuf,
    tag: String,
    digest: String,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let base = test_base();
        // Statics are never dropped, so a TempDir would leak: outputs live in `build-<pid>` under
        // the cache, and a run removes those of runs that have ended.
        for e in std::fs::read_dir(cache_dir()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("build-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = cache_dir().join(format!("build-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let oci_dir = dir.join("oci");
        let layout = format!("oci:{}:test", oci_dir.display());
        let archive = dir.join("image.tar");
        let base_ref = format!("oci:{}:base", base.layout.display());
        let artifact = format!("/usr/local/bin/spark-entrypoint@linux/amd64={AMD64_ENTRYPOINT}");
        let revision = format!("org.opencontainers.image.revision={}", LABELS[5].1);
        let docker_out = format!("docker-archive:{}:sparkctl-test/vllm-spark:build", archive.display());
        let store = cache_dir().join("store");
        let run = sparkctl(
            &store,
            &[
                "image",
                "build",
                &recipe(),
                "--base",
                &base_ref,
                "--platform",
                "linux/amd64",
                "--artifact",
                &artifact,
                "--label",
                &revision,
                "--output",
                &layout,
                "--output",
                &docker_out,
            ],
        )
        .ok();
        let digest = run.last_line().to_owned();
        // Tag by content, so concurrent runs of different trees never clash.
        let tag = format!("sparkctl-test/vllm-spark:{}", &digest[7..19]);
        docker(&["load", "-q", "-i", &archive.display().to_string()]).ok();
        docker(&["tag", "sparkctl-test/vllm-spark:build", &tag]).ok();
        std::fs::remove_file(&archive).unwrap();
        Built { layout, oci_dir, tag, digest }
    })
}

fn docker_python(image: &str, env: &[&str], args: &[&str]) -> Run {
    let mount = format!("{}:/t:ro", repo().join("tests-image").display());
    let mut a = vec!["run", "--rm", "--network", "none", "-v", &mount, "--entrypoint", "python3"];
    for e in env {
        a.extend(["-e", e]);
    }
    a.push(image);
    a.extend(args);
    docker(&a)
}

#[cfg(feature = "system-tests")]
#[test]
fn config_has_exactly_the_intended_env_entrypoint_and_labels() {
    let b = built();
    let base_cfg = json(&tool("skopeo", &["inspect", "--config", "--raw", &format!("oci:{}:base", test_base().layout.display())]).ok().stdout);
    let base_env: Vec<String> = base_cfg["config"]["Env"].as_array().map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect()).unwrap_or_default();

    let cfg = json(&tool("skopeo", &["inspect", "--config", "--raw", &b.layout]).ok().stdout);
    let c = &cfg["config"];
    let mut want_env = base_env.clone();
    want_env.extend(BAKED_ENV.iter().map(|s| s.to_string()));
    assert_eq!(c["Env"], serde_json::json!(want_env), "config Env");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/local/bin/spark-entrypoint"]));
    assert!(c["Cmd"].is_null() || c["Cmd"] == serde_json::json!([]), "no base CMD as entrypoint arguments: {}", c["Cmd"]);
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({ "Test": ["CMD", "/usr/local/bin/spark-entrypoint", "healthcheck"], "Interval": 15_000_000_000u64, "Timeout": 5_000_000_000u64, "StartPeriod": 1_200_000_000_000u64, "Retries": 3 }),
        "Docker's health check follows the entrypoint's readiness"
    );
    // Exactly the recipe's labels, the build's revision and the builder's base digest.
    let base_index = json(&std::fs::read_to_string(test_base().layout.join("index.json")).unwrap());
    let base_digest = base_index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let mut want_labels: serde_json::Map<String, Value> = LABELS.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
    want_labels.insert("org.opencontainers.image.base.digest".into(), Value::from(base_digest.as_str()));
    assert_eq!(c["Labels"], Value::Object(want_labels.clone()), "config Labels");
    for e in c["Env"].as_array().unwrap() {
        let name = e.as_str().unwrap().split('=').next().unwrap();
        assert!(!NOT_BAKED.contains(&name), "`{name}` is baked into the image");
    }

    // The manifest carries the labels as annotations, plus the base's name and digest.
    let manifest = json(&tool("skopeo", &["inspect", "--raw", &b.layout]).ok().stdout);
    let ann = &manifest["annotations"];
    for (k, v) in LABELS {
        assert_eq!(ann[*k], *v, "annotation {k}");
    }
    assert_eq!(ann["org.opencontainers.image.base.digest"], base_digest.as_str());
    // base.name is for registry bases only (the real recipe's docker:// ref), not a local path.
    assert_eq!(ann["org.opencontainers.image.base.name"], Value::Null);
    // One layer per overlay on top of the base's one.
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 5);

    // The Docker engine reads the same.
    let inspect = json(&docker(&["image", "inspect", &b.tag]).ok().stdout);
    let d = &inspect[0]["Config"];
    assert_eq!(d["Env"], serde_json::json!(want_env));
    assert_eq!(d["Entrypoint"], serde_json::json!(["/usr/local/bin/spark-entrypoint"]));
    assert_eq!(d["Labels"], Value::Object(want_labels), "docker Labels");
    assert!(d["Cmd"].is_null() || d["Cmd"] == serde_json::json!([]), "{}", d["Cmd"]);
    assert!(b.digest.starts_with("sha256:"));
}

#[cfg(feature = "system-tests")]
#[test]
fn cudnn_hook_runs_in_every_python_process_of_the_container() {
    let b = built();
    let case = |env: &[&str]| {
        let mut e = vec!["FAKE_TORCH_LOG=/tmp/fake-torch.log"];
        e.extend(env);
        let r = docker_python(&b.tag, &e, &["/t/in_container.py"]);
        assert_eq!(r.code, 0, "in_container.py failed: {}", r.stderr);
        json(r.stdout.lines().last().unwrap())
    };
    let set_false = |out: &Value, pid: &Value| out["log"].as_array().unwrap().iter().any(|l| l.as_str().unwrap() == format!("{pid} set cudnn.enabled=False"));

    // The image's own setting (auto) on a machine without a GPU: cuDNN stays on, everywhere.
    let out = case(&[]);
    assert_eq!(out["torch_imported_at_start"], false);
    assert_eq!(out["main"]["sitecustomize"], "/usr/local/lib/sparkctl/python/sitecustomize.py");
    assert_eq!(out["main"]["base_sitecustomize_ran"], true, "Debian's sitecustomize still ran: {out}");
    assert_eq!(out["main"]["hook"]["mode"], "auto");
    assert_eq!(out["main"]["hook"]["gpus"], serde_json::json!([]));
    for k in ["main", "inherited", "scrubbed"] {
        assert_eq!(out[k]["enabled"], true, "{k}: {out}");
        assert_eq!(out[k]["hook"]["installed"], true, "{k}: {out}");
    }
    assert_eq!(out["scrubbed"]["pythonpath"], Value::Null, "the scrubbed child has no PYTHONPATH");
    // Scrubbed children still get the hook through the .pth and obey their own SPARK_CUDNN.
    for k in ["scrubbed_off", "scrubbed_gb10", "isolated_off"] {
        assert_eq!(out[k]["enabled"], false, "{k}: {out}");
        assert!(set_false(&out, &out[k]["pid"]), "{k} set the flag itself: {out}");
    }

    // SPARK_CUDNN=off: disabled in the main process and in every child that inherits the env.
    let out = case(&["SPARK_CUDNN=off"]);
    for k in ["main", "inherited"] {
        assert_eq!(out[k]["enabled"], false, "{k}: {out}");
        assert!(set_false(&out, &out[k]["pid"]), "{k}: {out}");
    }
    assert_eq!(out["inherited"]["pythonpath"], "/usr/local/lib/sparkctl/python");

    // SPARK_CUDNN=on: the hook leaves torch alone (no set at all).
    let out = case(&["SPARK_CUDNN=on"]);
    assert_eq!(out["main"]["enabled"], true);
    assert_eq!(out["inherited"]["enabled"], true);
    assert!(!set_false(&out, &out["main"]["pid"]) && !set_false(&out, &out["inherited"]["pid"]), "{out}");

    // auto on a GB10 (the capability a launcher or the first probe leaves in the env).
    let out = case(&["SPARK_CUDNN_GPU_CC=12.1"]);
    assert_eq!(out["main"]["enabled"], false, "{out}");
    assert_eq!(out["inherited"]["enabled"], false, "{out}");
}

#[cfg(feature = "system-tests")]
#[test]
fn a_python_that_does_not_import_torch_does_not_pay_for_it() {
    let b = built();
    // -X importtime lists every module imported, with its time: the hook and sitecustomize are
    // there, torch is not, and the fake torch logged no import.
    let r = docker_python(
        &b.tag,
        &["FAKE_TORCH_LOG=/tmp/t.log"],
        &["-X", "importtime", "-c", "import os, sys; print('torch' in sys.modules, os.path.exists('/tmp/t.log'))"],
    )
    .ok();
    assert_eq!(r.stdout.trim(), "False False");
    let modules: Vec<&str> = r.stderr.lines().filter_map(|l| l.rsplit('|').next()).map(str::trim).collect();
    assert!(modules.contains(&"sparkctl_cudnn") && modules.contains(&"sitecustomize"), "{}", r.stderr);
    assert!(!modules.iter().any(|m| *m == "torch" || m.starts_with("torch.") || *m == "ctypes"), "imported at start: {}", r.stderr);
    // The check sees torch when it is imported (so the absence above means something).
    let r = docker_python(&b.tag, &[], &["-X", "importtime", "-c", "import torch"]).ok();
    assert!(r.stderr.lines().any(|l| l.rsplit('|').next().map(str::trim) == Some("torch")), "{}", r.stderr);
}

#[cfg(feature = "system-tests")]
#[test]
fn nccl_conf_of_the_base_is_gone_from_the_image() {
    let b = built();
    let sh = |image: &str| {
        docker(&["run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c", "cat /etc/nccl.conf 2>/dev/null || echo absent"]).ok().stdout
    };
    assert!(sh(&test_base().tag).contains("NCCL_IB_DISABLE=1"), "the test base has one");
    assert_eq!(sh(&b.tag).trim(), "absent");

    // Whiteouts in the spark-env layer, read back by umoci too.
    let manifest = json(&tool("skopeo", &["inspect", "--raw", &b.layout]).ok().stdout);
    let env_layer = manifest["layers"][2]["digest"].as_str().unwrap();
    let entries: Vec<String> = layer_entries(&b.oci_dir.join("blobs/sha256").join(&env_layer[7..])).into_iter().map(|e| e.0).collect();
    assert_eq!(entries, ["etc/.wh.nccl.conf", "root/.wh..nccl.conf"]);
    let unpack = tempfile::tempdir().unwrap();
    let bundle = unpack.path().join("bundle");
    tool("umoci", &["unpack", "--image", &format!("{}:test", b.oci_dir.display()), &bundle.display().to_string()]).ok();
    assert!(!bundle.join("rootfs/etc/nccl.conf").exists());
    assert!(bundle.join("rootfs/usr/local/lib/sparkctl/python/sparkctl_cudnn.py").exists());
    assert!(bundle.join("rootfs/usr/lib/python3/dist-packages/sparkctl-cudnn.pth").exists());
    assert!(bundle.join("rootfs/usr/local/bin/spark-entrypoint").exists());
}

#[cfg(feature = "system-tests")]
#[test]
fn the_recipe_builds_both_platforms_with_one_entrypoint_each() {
    // The real recipe on a small two-platform base (no Docker needed): arm64 gets an aarch64
    // entrypoint, amd64 an x86-64 one; the hook and env layers are the same blob on both.
    let p = Project::new();
    write_layout(&p.path("base"), &BaseSpec { attestation: false, ..BaseSpec::default() });
    aarch64_elf(&p.path("entry-arm64"));
    let out = format!("oci:{}:v", p.s("out"));
    let arm = format!("/usr/local/bin/spark-entrypoint@linux/arm64={}", p.s("entry-arm64"));
    let amd = format!("/usr/local/bin/spark-entrypoint@linux/amd64={AMD64_ENTRYPOINT}");
    p.run(&["image", "build", &recipe(), "--base", &format!("oci:{}:base", p.s("base")), "--artifact", &arm, "--artifact", &amd, "--output", &out]).ok();
    let index = json(&tool("skopeo", &["inspect", "--raw", &out]).ok().stdout);
    let m = index["manifests"].as_array().unwrap();
    let plats: Vec<&str> = m.iter().map(|e| e["platform"]["architecture"].as_str().unwrap()).collect();
    assert_eq!(plats, ["amd64", "arm64"]);
    let layers = |i: usize| {
        let man = json(&std::fs::read_to_string(p.path("out/blobs/sha256").join(&m[i]["digest"].as_str().unwrap()[7..])).unwrap());
        man["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let (a, r) = (layers(0), layers(1));
    assert_eq!(a.len(), r.len());
    let n = a.len();
    assert_eq!(a[n - 4..n - 1], r[n - 4..n - 1], "cudnn-hook, spark-env and nccl-bench: one blob for both platforms");
    assert_ne!(a[n - 1], r[n - 1], "one entrypoint per platform");
    let arm_entry = layer_entries(&p.path("out/blobs/sha256").join(&r[n - 1][7..]));
    assert_eq!(arm_entry.iter().map(|e| (e.0.as_str(), e.1)).collect::<Vec<_>>(), [("usr/local/bin/spark-entrypoint", 0o755)]);
    assert!(index["annotations"]["org.opencontainers.image.base.digest"].as_str().unwrap().starts_with("sha256:"));
}

#[cfg(feature = "system-tests")]
#[test]
fn an_x86_64_entrypoint_in_the_arm64_image_is_refused_before_anything_is_written() {
    let p = Project::new();
    write_layout(&p.path("base"), &BaseSpec::default());
    aarch64_elf(&p.path("entry-arm64"));
    let out = p.path("out");
    // amd64 image, aarch64 binary; then arm64 image, x86-64 binary.
    for (plat, file, found) in [("linux/amd64", p.s("entry-arm64"), "aarch64"), ("linux/arm64", AMD64_ENTRYPOINT.to_owned(), "x86-64")] {
        let art = format!("/usr/local/bin/spark-entrypoint@{plat}={file}");
        let r = build_with_artifact(&p, plat, &art);
        assert_eq!(r.code, 2, "{}", r.stderr);
        let first = r.stderr.lines().next().unwrap();
        assert!(first.starts_with("error: ") && first.contains(&file) && first.contains(found) && first.contains(plat), "{}", r.stderr);
        assert!(!out.exists(), "nothing written");
    }
    // A 32-bit or non-ELF file is named as such.
    std::fs::write(p.path("script"), "#!/bin/sh\nexec true\n").unwrap();
    let r = build_with_artifact(&p, "linux/amd64", &format!("/usr/local/bin/spark-entrypoint@linux/amd64={}", p.s("script")));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not an ELF"), "{}", r.stderr);
    assert!(!out.exists());
}

#[cfg(feature = "system-tests")]
#[test]
fn ray_workers_inherit_the_hook_from_the_raylet_environment() {
    // Real Ray (PyPI): workers are started by the raylet with the environment `ray start` (here:
    // ray.init) had, i.e. the container's config Env, so PYTHONPATH reaches every worker even
    // though vLLM's env copy does not carry it. A runtime_env like vLLM's adds variables
    // without dropping it.
    let python = ray_python();
    let hook = repo().join("overlays/cudnn-hook/rootfs/usr/local/lib/sparkctl/python");
    let fake = repo().join("tests-image/fake-torch");
    let code = r#"
import json, os, ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
def probe():
    import os, sys, torch
    return {"pid": os.getpid(), "enabled": torch.backends.cudnn.enabled, "hook": "sparkctl_cudnn" in sys.modules, "pythonpath": os.environ.get("PYTHONPATH")}
task = ray.remote(probe)
@ray.remote
class Worker:
    def probe(self):
        return probe()
actor = Worker.options(runtime_env={"env_vars": {"NCCL_SOCKET_IFNAME": "enp1s0f1np1", "VLLM_HOST_IP": "192.168.100.11"}}).remote()
print(json.dumps({"driver": os.getpid(), "task": ray.get(task.remote()), "actor": ray.get(actor.probe.remote())}))
ray.shutdown()
"#;
    let pythonpath = format!("{}:{}", hook.display(), fake.display());
    let out = Command::new(&python)
        .args(["-c", code])
        .env("PYTHONPATH", &pythonpath)
        .env("SPARK_CUDNN", "off")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .env("RAY_memory_monitor_refresh_ms", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ray failed: {}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    let v = json(stdout.lines().last().unwrap());
    for k in ["task", "actor"] {
        assert_ne!(v[k]["pid"], v["driver"], "{k} ran in a worker process");
        assert_eq!(v[k]["hook"], true, "{k}: {v}");
        assert_eq!(v[k]["enabled"], false, "{k}: {v}");
        assert_eq!(v[k]["pythonpath"].as_str().unwrap().split(':').next(), Some(hook.display().to_string().as_str()), "{k}: {v}");
    }
}

/// The Python that has Ray: the venv `cargo xtask deps` makes, else `python3` on PATH.
fn ray_python() -> PathBuf {
    let venv = repo().join("target/py/bin/python");
    for p in [venv, PathBuf::from("python3")] {
        if Command::new(&p).args(["-c", "import ray"]).output().is_ok_and(|o| o.status.success()) {
            return p;
        }
    }
    panic!("no Python with Ray (`cargo xtask deps` installs it into target/py)");
}

#[test]
fn hook_python_unit_tests() {
    let out = Command::new("python3")
        .args(["-m", "unittest", "-v", "test_sparkctl_cudnn"])
        .current_dir(repo().join("tests-image"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // "OK (skipped=1)" would not end in OK: nothing may be skipped.
    let ran: usize = err.lines().find_map(|l| l.strip_prefix("Ran ")).and_then(|l| l.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(ran >= 17 && err.trim_end().ends_with("OK"), "{err}");
}

#[test]
fn overlay_trees_hold_no_bytecode_or_stray_files() {
    // A __pycache__ left by a host run would land in the layer and change its digest.
    let mut found = Vec::new();
    for o in ["cudnn-hook", "spark-env", "nccl-bench", "spark-entrypoint"] {
        let root = repo().join("overlays").join(o);
        let mut stack = vec![root.join("rootfs")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    found.push(format!("{o}/{}", path.strip_prefix(&root).unwrap().display()));
                }
            }
        }
    }
    found.sort();
    assert_eq!(
        found,
        [
            "cudnn-hook/rootfs/usr/lib/python3/dist-packages/sparkctl-cudnn.pth",
            "cudnn-hook/rootfs/usr/local/lib/sparkctl/python/sitecustomize.py",
            "cudnn-hook/rootfs/usr/local/lib/sparkctl/python/sparkctl_cudnn.py",
            "nccl-bench/rootfs/usr/local/lib/sparkctl/nccl_bench.py",
        ]
    );
}
