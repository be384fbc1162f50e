//! End to end in the Docker engine: the real recipe (`images/vllm-spark.toml`) built by
//! `sparkctl image build` on a Debian test base (debootstrap minbase + python3), with this
//! spark-entrypoint as the artifact. Head and worker containers run it on two Docker networks
//! (the two rails, MTU 9000), once per backend:
//! - `native`, with **real vLLM**: the base carries the CPU build from `cargo xtask vllm`
//!   (`test_support::vllm_base`), the tiny model is mounted as a user mounts theirs, and
//!   `vllm serve` runs with tensor parallelism 2 across the two containers. The group forms, the
//!   model answers a chat completion through the head, Docker's health check turns healthy;
//!   killing the worker container makes the head exit 3 within 10 s, and after a restart of both
//!   `docker stop` of the head stops the worker (exit 3) as well.
//! - `ray`, with the **stand-in** serve command (`/usr/local/bin/vllm` on a Debian base without
//!   vLLM): vLLM's CPU platform refuses the Ray executor ("current platform cpu does not support
//!   ray"), so real Ray (the `target/py` venv as an overlay; the real base has Ray) runs with the
//!   stand-in, which asks Ray for its nodes as vLLM does: `ray start --head`, the worker joins,
//!   the serve command starts only once Ray reports both nodes, healthy, worker killed ⇒ head
//!   exits 3.
//!
//! Needs Docker, debootstrap, curl, a built `sparkctl` next to this test's `spark-entrypoint`
//! (`cargo xtask test` builds the whole workspace first), Ray in `target/py` and real vLLM with
//! the tiny model in `target/vllm` and `target/tiny-llama` (`cargo xtask deps`).

use crate::harness::{heavy_lock, standin, tiny_model, BIN, REAL_VLLM_ENV};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) fn run(cmd: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("`{cmd}` could not run ({e}); `cargo xtask deps` installs it"));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub(crate) fn ok(cmd: &str, args: &[&str]) -> String {
    let (code, out, err) = run(cmd, args);
    assert_eq!(code, 0, "`{cmd} {}` failed:\n{out}\n{err}", args.join(" "));
    out
}

pub(crate) fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("entrypoint-e2e")
}

/// The Debian trees the bases start from: a mount debootstrap leaves in one (its `/proc`, seen on
/// a fresh machine) would break the base's hard-link copy; `unmount_below` takes every mount
/// under the tree away, nested ones included, and nothing outside it.
#[test]
fn a_mount_left_in_a_debian_tree_is_taken_away() {
    let tree = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let (proc_dir, nested) = (tree.path().join("proc"), tree.path().join("proc/sys"));
    std::fs::create_dir_all(&proc_dir).unwrap();
    ok("mount", &["-t", "tmpfs", "left", &proc_dir.display().to_string()]);
    std::fs::create_dir_all(&nested).unwrap();
    ok("mount", &["-t", "tmpfs", "left", &nested.display().to_string()]);
    ok("mount", &["-t", "tmpfs", "kept", &outside.path().display().to_string()]);
    let mounted = |p: &Path| std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap()));
    assert!(mounted(&proc_dir) && mounted(&nested) && mounted(outside.path()));

    test_support::debian::unmount_below(tree.path());
    let (left, kept) = (mounted(&proc_dir) || mounted(&nested), mounted(outside.path()));
    // Nothing stays mounted after the test, whatever it found.
    let _ = run("umount", &["-R", &outside.path().display().to_string()]);
    let _ = run("umount", &["-R", &proc_dir.display().to_string()]);
    assert!(!left, "a mount under the tree is left");
    assert!(kept, "a mount outside the tree was taken away too");
}

/// The Ray test's base as a `docker save` archive: the rootfs plus the stand-in as `vllm`.
pub(crate) fn base_archive(id: &str) -> PathBuf {
    let root = test_support::debian::rootfs(&cache(), "python3");
    let stage = tempfile::tempdir().unwrap();
    let vllm = stage.path().join("usr/local/bin/vllm");
    std::fs::create_dir_all(vllm.parent().unwrap()).unwrap();
    std::fs::copy(standin(), &vllm).unwrap();
    ok("chmod", &["0755", &vllm.display().to_string()]);
    let archive = cache().join(format!("base-{id}.tar"));
    let tag = format!("sparkctl-e2e/base:{id}");
    let script = format!(
        "set -e; tar --numeric-owner -C {root} -c . -C {stage} usr/local/bin/vllm | docker import - {tag} >/dev/null; docker save -o {archive} {tag}; docker rmi {tag} >/dev/null",
        root = root.display(),
        stage = stage.path().display(),
        archive = archive.display(),
    );
    ok("bash", &["-c", &script]);
    archive
}

/// Containers, networks and the image of one test run, removed on drop.
pub(crate) struct Docker {
    pub(crate) id: String,
    containers: Vec<String>,
    networks: Vec<String>,
    image: Option<String>,
    pub(crate) files: Vec<PathBuf>,
}

impl Drop for Docker {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = run("docker", &["rm", "-f", c]);
        }
        for n in &self.networks {
            let _ = run("docker", &["network", "rm", n]);
        }
        if let Some(i) = &self.image {
            let _ = run("docker", &["rmi", "-f", i]);
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
            let _ = std::fs::remove_dir_all(f);
        }
        let _ = &self.id;
    }
}

pub(crate) fn logs(c: &str) -> String {
    let (_, out, err) = run("docker", &["logs", c]);
    format!("{out}{err}")
}

pub(crate) fn wait_log(c: &str, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let l = logs(c);
        if l.contains(needle) {
            return l;
        }
        assert!(Instant::now() < deadline, "container `{c}` did not log {needle:?} within {timeout:?}:\n{l}");
        // A container that stopped will not log it: fail now, not at the deadline.
        let (running, code, _) = state(c);
        assert!(running || logs(c).contains(needle), "container `{c}` exited ({code}) before logging {needle:?}:\n{l}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn state(c: &str) -> (bool, i32, String) {
    let out = ok("docker", &["inspect", "-f", "{{.State.Running}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", c]);
    let mut w = out.split_whitespace();
    (w.next() == Some("true"), w.next().and_then(|s| s.parse().ok()).unwrap_or(-1), w.next().unwrap_or("").to_owned())
}

pub(crate) fn wait_exit(c: &str, timeout: Duration) -> (i32, Duration) {
    let start = Instant::now();
    loop {
        let (running, code, _) = state(c);
        if !running {
            return (code, start.elapsed());
        }
        assert!(start.elapsed() < timeout, "container `{c}` still running after {timeout:?}:\n{}", logs(c));
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(std::path::Path::parent).unwrap().to_path_buf()
}

/// The `ray` launcher the image gets: Debian's python3 runs Ray's own CLI entry point.
const RAY_LAUNCHER: &str = "#!/usr/bin/python3\nfrom ray.scripts.scripts import main\nmain()\n";

/// Left out of the Ray overlay: Ray's Java jars and AI libraries (nothing of `ray start`, the
/// raylet, its agents or `ray status` imports them; the CLI's `serve` subcommand is optional)
/// and the venv's packaging tools. A third less to compress, by a debug-build sparkctl.
const NOT_IN_RAY_OVERLAY: &[&str] = &[
    "ray/jars",
    "ray/rllib",
    "ray/tune",
    "ray/train",
    "ray/data",
    "ray/llm",
    "ray/serve",
    "pip",
    "setuptools",
    "pkg_resources",
    "_distutils_hack",
    "distutils-precedence.pth",
];

/// An overlays folder for a test recipe: the real overlays (symlinked, so they are read as they
/// are in the checkout) plus `ray-pypi`, Ray from PyPI as `cargo xtask deps` installed it in
/// `target/py` (CPython 3.11, like the Debian bookworm base): its `site-packages` at
/// `/usr/local/lib/python3.11/dist-packages`, which Debian's python3 reads, and a `ray` launcher.
/// The real base (NGC vLLM) has Ray already; the Debian stand-in has not. Staged once with hard
/// links, cached by Ray's RECORD (the list and hashes of its installed files) and the launcher.
fn overlays_with_ray() -> PathBuf {
    let site = repo().join("target/py/lib/python3.11/site-packages");
    let dist_info = std::fs::read_dir(&site)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("ray-") && n.ends_with(".dist-info"))
        .unwrap_or_else(|| panic!("no Ray in `{}`: `cargo xtask deps` installs it (a CPython 3.11 venv, like the Debian base's python3)", site.display()));
    let record = std::fs::read(site.join(&dist_info).join("RECORD")).unwrap();
    let toml = "description = \"Ray from PyPI (the test host's target/py venv, CPython 3.11) for the Debian stand-in base\"\n";
    let left_out = NOT_IN_RAY_OVERLAY.join(" ");
    let dir = cache().join(format!("overlays-ray-{}", test_support::debian::key(&[&record, RAY_LAUNCHER.as_bytes(), toml.as_bytes(), left_out.as_bytes()])));
    if dir.join("ray-pypi/overlay.toml").exists() {
        return dir;
    }
    let tmp = cache().join(format!("overlays-ray.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let rootfs = tmp.join("ray-pypi/rootfs");
    let pylib = rootfs.join("usr/local/lib/python3.11");
    std::fs::create_dir_all(&pylib).unwrap();
    // Hard links: no copy of ~300 MB (target/ is one file system); pip replaces files, never
    // rewrites them, so the staged tree stays what the RECORD says.
    ok("cp", &["-al", &site.display().to_string(), &pylib.join("dist-packages").display().to_string()]);
    for rel in NOT_IN_RAY_OVERLAY {
        let p = pylib.join("dist-packages").join(rel);
        let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
    }
    let launcher = rootfs.join("usr/local/bin/ray");
    std::fs::create_dir_all(launcher.parent().unwrap()).unwrap();
    std::fs::write(&launcher, RAY_LAUNCHER).unwrap();
    ok("chmod", &["0755", &launcher.display().to_string()]);
    std::fs::write(tmp.join("ray-pypi/overlay.toml"), toml).unwrap();
    for e in std::fs::read_dir(repo().join("overlays")).unwrap().flatten() {
        std::os::unix::fs::symlink(e.path(), tmp.join(e.file_name())).unwrap();
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    dir
}

/// The real recipe with `ray-pypi` as its first overlay (Ray comes with the base in the real
/// image, so it goes under the image's own layers), written into `dir`.
fn recipe_with_ray(dir: &Path) -> PathBuf {
    let real = std::fs::read_to_string(repo().join("images/vllm-spark.toml")).unwrap();
    let text = real.replacen("\noverlays = [", "\noverlays = [\"ray-pypi\", ", 1);
    assert_ne!(text, real, "images/vllm-spark.toml has no `overlays = [` line to add the Ray overlay to");
    let p = dir.join("vllm-spark-ray.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Builds the image with `sparkctl image build` (this spark-entrypoint as the artifact) on the
/// Debian test base and loads it into Docker; returns its tag and digest.
/// How a built image reaches Docker.
#[derive(Clone, Copy)]
pub(crate) enum Load {
    /// `--output docker-archive:FILE`, then `docker load -i FILE`: what users do.
    Archive,
    /// `--output oci:DIR` (the base's layers are hard links, no copy), then the layout with a
    /// `manifest.json` beside its `index.json` (the two-in-one format of `docker save` and of the
    /// builder's docker-archive) tarred straight into `docker load`: no archive file. For the
    /// 6 GB real-vLLM image, whose archive would be one more 3 GB copy at the disk peak.
    Streamed,
}

/// Builds `recipe` onto `base` (a source reference: `docker-archive:…`, `oci:…`) for linux/amd64
/// and loads it into Docker; returns the tag and the image digest.
pub(crate) fn build_image(d: &mut Docker, recipe: &Path, overlays: Option<&Path>, base: &str, load: Load) -> (String, String) {
    let sparkctl = Path::new(BIN).with_file_name("sparkctl");
    assert!(sparkctl.exists(), "`{}` is missing: build it first (`cargo build -p cli`; `cargo xtask test` builds the workspace)", sparkctl.display());
    let id = d.id.clone();
    let tag = format!("sparkctl-e2e/vllm-spark:{id}");
    let (out, output) = match load {
        Load::Archive => {
            let out = cache().join(format!("image-{id}.tar"));
            let output = format!("docker-archive:{}:{tag}", out.display());
            (out, output)
        }
        Load::Streamed => {
            let out = cache().join(format!("image-{id}"));
            let output = format!("oci:{}", out.display());
            (out, output)
        }
    };
    d.files.push(out.clone());
    let mut build = Command::new(&sparkctl);
    build
        .args(["image", "build", &recipe.display().to_string()])
        .args(["--base", base, "--platform", "linux/amd64"])
        .args(["--artifact", &format!("/usr/local/bin/spark-entrypoint@linux/amd64={BIN}")])
        .args(["--output", &output])
        .env("SPARKCTL_STORE", cache().join("store"));
    if let Some(o) = overlays {
        build.arg("--overlays").arg(o);
    }
    let build = build.output().unwrap();
    assert!(build.status.success(), "sparkctl image build failed:\n{}", String::from_utf8_lossy(&build.stderr));
    let digest = String::from_utf8_lossy(&build.stdout).lines().last().unwrap_or("").to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    match load {
        Load::Archive => {
            ok("docker", &["load", "-q", "-i", &out.display().to_string()]);
            let _ = std::fs::remove_file(&out);
        }
        Load::Streamed => {
            write_docker_manifest(&out, &tag);
            ok("bash", &["-c", &format!("set -o pipefail; tar -C {} -c . | docker load -q", out.display())]);
            let _ = std::fs::remove_dir_all(&out);
        }
    }
    d.image = Some(tag.clone());
    assert_eq!(ok("docker", &["inspect", "-f", "{{json .Config.Entrypoint}}", &tag]).trim(), "[\"/usr/local/bin/spark-entrypoint\"]");
    (tag, digest)
}

/// `manifest.json` for the one image of an OCI layout: its config and layers by layout path.
fn write_docker_manifest(layout: &Path, tag: &str) {
    let blob = |digest: &serde_json::Value| test_support::oci::blob_path(digest.as_str().unwrap());
    let manifest = test_support::oci::one_manifest(layout).unwrap();
    let layers: Vec<String> = manifest["layers"].as_array().unwrap().iter().map(|l| blob(&l["digest"])).collect();
    let docker = serde_json::json!([{ "Config": blob(&manifest["config"]["digest"]), "RepoTags": [tag], "Layers": layers }]);
    std::fs::write(layout.join("manifest.json"), docker.to_string()).unwrap();
}

/// Two rails: two networks, MTU 9000, on /24s derived from the pid; the next ones when the
/// engine says a pool overlaps one in use (other tests, the host's own networks). Returns the
/// two subnets' first three octets.
pub(crate) fn rail_networks(d: &mut Docker, salt: u32) -> [String; 2] {
    for attempt in 0..20 {
        let n = (std::process::id() + salt * 101 + attempt * 7) % 200 + 20;
        let candidate = [format!("10.{n}.10"), format!("10.{n}.11")];
        let mut made = Vec::new();
        for (i, s) in candidate.iter().enumerate() {
            let name = format!("{}-rail{i}", d.id);
            let (code, _, err) = run(
                "docker",
                &["network", "create", "--driver", "bridge", "--subnet", &format!("{s}.0/24"), "--opt", "com.docker.network.driver.mtu=9000", &name],
            );
            if code != 0 {
                assert!(err.contains("overlap"), "docker network create {name}: {err}");
                break;
            }
            made.push(name);
        }
        if made.len() == 2 {
            d.networks = made;
            return candidate;
        }
        for m in made {
            let _ = run("docker", &["network", "rm", &m]);
        }
    }
    panic!("no free pair of /24s for the rails");
}

/// What every node container of one cluster shares.
pub(crate) struct ClusterSpec {
    pub(crate) tag: String,
    pub(crate) digest: String,
    pub(crate) subnets: [String; 2],
    /// `SPARK_BACKEND` and any further settings.
    pub(crate) env: Vec<(&'static str, String)>,
    pub(crate) serve: Vec<&'static str>,
    /// More `docker create` options (volumes).
    pub(crate) extra: Vec<String>,
}

impl ClusterSpec {
    pub(crate) fn head_ip(&self) -> String {
        format!("{}.2", self.subnets[0])
    }

    /// Creates node `name` (`<host>` on both rails: eth0 and eth1) and starts it.
    pub(crate) fn start(&self, d: &mut Docker, name: &str, role: &str, host: u8) -> String {
        let c = format!("{}-{name}", d.id);
        let mut args: Vec<String> =
            vec!["create".into(), "--name".into(), c.clone(), "--network".into(), d.networks[0].clone(), "--ip".into(), format!("{}.{host}", self.subnets[0])];
        args.extend(
            [
                "--sysctl",
                "net.ipv6.conf.all.disable_ipv6=1",
                // Ray's object store lives in /dev/shm (Docker's default is 64 MB).
                "--shm-size",
                "256m",
                "--health-cmd",
                "spark-entrypoint healthcheck",
                "--health-interval",
                "1s",
                "--health-retries",
                "1",
            ]
            .map(String::from),
        );
        let mut env = vec![
            ("SPARK_ROLE", role.to_owned()),
            ("SPARK_NODE_NAME", name.to_owned()),
            ("SPARK_NODES", "a,b".into()),
            ("SPARK_HEAD_ADDR", self.head_ip()),
            ("SPARK_RAILS", "eth0,eth1".into()),
            ("SPARK_TOKEN", "e2e-token".into()),
            ("SPARK_IMAGE_DIGEST", self.digest.clone()),
            ("SPARK_GRACE", "5".into()),
            // The stand-in `vllm serve` commands are not real configurations (no model files):
            // the launch check logs its findings and goes on (`plan.rs` tests `enforce`).
            ("SPARK_PLAN", "warn".into()),
        ];
        env.extend(self.env.iter().cloned());
        for (k, v) in env {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        args.extend(self.extra.iter().cloned());
        args.push(self.tag.clone());
        args.push("--".into());
        args.extend(self.serve.iter().map(|s| s.to_string()));
        ok("docker", &args.iter().map(String::as_str).collect::<Vec<_>>());
        ok("docker", &["network", "connect", "--ip", &format!("{}.{host}", self.subnets[1]), &d.networks[1], &c]);
        ok("docker", &["start", &c]);
        d.containers.push(c.clone());
        c
    }
}

fn wait_healthy(c: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while state(c).2 != "healthy" {
        assert!(Instant::now() < deadline, "docker health of `{c}`: {:?}\n{}", state(c), logs(c));
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Kills the worker's container: the head stops, exit 3, within 10 s.
fn worker_killed_stops_the_head(worker: &str, head: &str) {
    ok("docker", &["kill", worker]);
    let (code, took) = wait_exit(head, Duration::from_secs(20));
    let hlog = logs(head);
    assert_eq!(code, 3, "{hlog}");
    assert!(took < Duration::from_secs(10), "head took {took:?}:\n{hlog}");
    assert!(hlog.contains("lost node `b`"), "{hlog}");
}

pub(crate) fn new_docker(suffix: &str) -> Docker {
    Docker { id: format!("e{}{suffix}", std::process::id()), containers: vec![], networks: vec![], image: None, files: vec![] }
}

/// The tiny model as the containers see it (mounted read-only).
const MODEL_IN_CONTAINER: &str = "/models/tiny";

/// `curl` from the host to a container's rail address: (HTTP status, body).
fn curl_json(url: &str, body: &serde_json::Value) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "120", "-w", "\n%{http_code}", "-H", "Content-Type: application/json", "-d", &body.to_string(), url])
        .output()
        .expect("curl runs (`cargo xtask deps` installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[test]
fn docker_image_on_a_real_vllm_base_serves_the_tiny_model_and_fails_as_a_group() {
    // Two vLLM nodes take the 2 CI cores and GBs of memory while they start: one group at a time.
    let _heavy = heavy_lock();
    let mut d = new_docker("n");
    let base = test_support::vllm_base::layout(&cache(), &repo().join("target/vllm"));
    let (tag, digest) = build_image(&mut d, &repo().join("images/vllm-spark.toml"), None, &format!("oci:{}", base.display()), Load::Streamed);
    let subnets = rail_networks(&mut d, 0);
    let mut env: Vec<(&'static str, String)> = vec![("SPARK_BACKEND", "native".into())];
    env.extend(REAL_VLLM_ENV.iter().map(|(k, v)| (*k, v.to_string())));
    // vLLM's CPU worker compiles a kernel with torch's inductor even under `--enforce-eager`; the
    // stand-in base has no C++ compiler for it (NVIDIA's base has one): eager torch instead.
    env.push(("TORCH_COMPILE_DISABLE", "1".into()));
    let serve = vec![
        "vllm",
        "serve",
        MODEL_IN_CONTAINER,
        "--served-model-name",
        "tiny",
        "--max-model-len",
        "256",
        "--enforce-eager",
        "--tensor-parallel-size",
        "2",
        "--port",
        "8000",
    ];
    let spec = ClusterSpec { tag, digest, subnets, env, serve, extra: vec!["--volume".into(), format!("{}:{MODEL_IN_CONTAINER}:ro", tiny_model())] };
    let head_ip = spec.head_ip();
    let ready = Duration::from_secs(900);

    // Round 1: worker first, then head; the group forms and the model answers.
    let t = Instant::now();
    let worker = spec.start(&mut d, "b", "worker", 3);
    let head = spec.start(&mut d, "a", "head", 2);
    let hlog = wait_log(&head, "READY: `tiny` answers", ready);
    eprintln!("real vLLM in two containers (TP 2, native) ready in {:.1} s", t.elapsed().as_secs_f64());
    assert!(hlog.contains(&format!("ipv4           eth0             {head_ip}/24")), "rail order in the container:\n{hlog}");
    assert!(hlog.contains("mtu            eth1             9000"), "{hlog}");
    let wlog = wait_log(&worker, "released by the head (rank 1)", Duration::from_secs(30));
    assert!(wlog.contains(&format!("--master-addr {head_ip} --master-port 29501 --headless")), "{wlog}");
    wait_healthy(&head, Duration::from_secs(30));
    // A user's request through the head's rail address.
    let chat = serde_json::json!({"model": "tiny", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 5});
    let (code, body) = curl_json(&format!("http://{head_ip}:8000/v1/chat/completions"), &chat);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["role"], "assistant", "{body}");
    assert_eq!(v["usage"]["completion_tokens"], 5, "{body}");

    // The worker's container dies: the head stops, non-zero, within 10 s.
    worker_killed_stops_the_head(&worker, &head);

    // Round 2 (a restart policy's view): both start again, then `docker stop` of the head stops
    // the worker too.
    ok("docker", &["start", &worker]);
    ok("docker", &["start", &head]);
    // Logs accumulate across restarts: count READY lines.
    let deadline = Instant::now() + ready;
    while logs(&head).matches("READY: `tiny` answers").count() < 2 {
        assert!(Instant::now() < deadline, "second round did not get ready:\n{}", logs(&head));
        std::thread::sleep(Duration::from_millis(500));
    }
    ok("docker", &["stop", "-t", "10", &head]);
    let (hcode, _) = wait_exit(&head, Duration::from_secs(15));
    assert_eq!(hcode, 0, "vLLM exits 0 on SIGTERM and the head with the serve command's status:\n{}", logs(&head));
    let (wcode, wtook) = wait_exit(&worker, Duration::from_secs(15));
    assert_eq!(wcode, 3, "{}", logs(&worker));
    assert!(wtook < Duration::from_secs(10));
}

#[test]
fn docker_image_with_ray_forms_the_ray_cluster_before_serving_and_fails_as_a_group() {
    let mut d = new_docker("r");
    let dir = tempfile::tempdir().unwrap();
    let base = base_archive(&d.id);
    d.files.push(base.clone());
    let (tag, digest) =
        build_image(&mut d, &recipe_with_ray(dir.path()), Some(&overlays_with_ray()), &format!("docker-archive:{}", base.display()), Load::Archive);
    let subnets = rail_networks(&mut d, 1);
    // One CPU per node (Ray sees no GPU: the head waits for both nodes' CPUs) and Ray's smallest
    // object store (75 MiB), which fits the containers' /dev/shm.
    let env = vec![("SPARK_BACKEND", "ray".to_owned()), ("SPARK_RAY_ARGS", "--num-cpus 1 --object-store-memory 80000000".to_owned())];
    // TP 2 over two one-"GPU" nodes: the stand-in asks Ray, like vLLM, and fails with
    // "exceeds available GPUs" when it runs before the worker's node joined.
    let spec = ClusterSpec {
        tag,
        digest,
        subnets,
        env,
        serve: vec!["vllm", "serve", "e2e-ray-model", "--port", "8000", "--tensor-parallel-size", "2"],
        extra: vec![],
    };
    let head_ip = spec.head_ip();
    // Two Ray clusters at once would starve the 2 CI cores (see the netns Ray tests).
    let _heavy = heavy_lock();

    let worker = spec.start(&mut d, "b", "worker", 3);
    let head = spec.start(&mut d, "a", "head", 2);
    let hlog = wait_log(&head, "READY: `e2e-ray-model` answers", Duration::from_secs(120));
    // `ray start --head` on the head's first rail; the worker joined it from its own rail.
    assert!(hlog.contains(&format!("--node-ip-address {head_ip}")), "{hlog}");
    let complete = hlog.find("ray cluster complete: 2 nodes").unwrap_or_else(|| panic!("Ray completeness not logged:\n{hlog}"));
    let started = hlog.find("started serve").unwrap_or_else(|| panic!("serve start not logged:\n{hlog}"));
    assert!(complete < started, "serve started before Ray reported both nodes:\n{hlog}");
    assert!(hlog.contains("ray cluster has 2 nodes"), "the stand-in's own look at Ray:\n{hlog}");
    assert!(hlog.contains("--distributed-executor-backend ray"), "{hlog}");
    let wlog = logs(&worker);
    assert!(wlog.contains(&format!("--address {head_ip}:6379 --node-ip-address {}.3", spec.subnets[0])), "{wlog}");
    wait_healthy(&head, Duration::from_secs(30));

    worker_killed_stops_the_head(&worker, &head);
}
