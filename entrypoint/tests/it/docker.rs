//! End to end in the Docker engine: the real recipe (`images/vllm-spark.toml`) built by
//! `sparkctl image build` on a Debian test base (debootstrap minbase + python3, with the vLLM
//! stand-in installed as `/usr/local/bin/vllm`), with this spark-entrypoint as the artifact. Head
//! and worker containers run it on two Docker networks (the two rails, MTU 9000): the cluster
//! forms (native backend: Ray is not in this base), the model answers, Docker's health check
//! turns healthy; killing the worker container makes the head exit 3 within 10 s, and
//! `docker stop` of the head stops the worker (exit 3) as well.
//!
//! Needs Docker, debootstrap and a built `sparkctl` next to this test's `spark-entrypoint`
//! (`cargo xtask test` builds the whole workspace first).

use crate::harness::{standin, BIN};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn run(cmd: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("`{cmd}` could not run ({e}); `cargo xtask deps` installs it"));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(cmd: &str, args: &[&str]) -> String {
    let (code, out, err) = run(cmd, args);
    assert_eq!(code, 0, "`{cmd} {}` failed:\n{out}\n{err}", args.join(" "));
    out
}

fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("entrypoint-e2e")
}

/// The Debian mirror of this machine's apt sources (never a hard-coded host).
fn apt_mirror() -> (String, String) {
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let codename = os.lines().find_map(|l| l.strip_prefix("VERSION_CODENAME=")).map(|c| c.trim_matches('"').to_owned()).unwrap_or_default();
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    let mut more: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d").map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    more.sort();
    files.extend(more);
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        if f.extension().is_some_and(|e| e == "sources") {
            for stanza in text.split("\n\n") {
                let field = |k: &str| stanza.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_owned()).unwrap_or_default();
                if field("Types:").split_whitespace().any(|t| t == "deb") && field("Suites:").split_whitespace().any(|s| s == codename) {
                    if let Some(uri) = field("URIs:").split_whitespace().next() {
                        return (uri.to_owned(), codename);
                    }
                }
            }
        } else {
            for l in text.lines() {
                let w: Vec<&str> = l.split_whitespace().filter(|w| !w.starts_with('[')).collect();
                if w.len() >= 3 && w[0] == "deb" && w[2] == codename {
                    return (w[1].to_owned(), codename);
                }
            }
        }
    }
    panic!("no `deb` source for `{codename}` in /etc/apt/sources.list(.d): debootstrap needs a Debian mirror");
}

/// Debian minbase + python3 (the stand-in serves HTTP), made once and cached.
fn rootfs() -> PathBuf {
    let dir = cache().join("debian-python3");
    let root = dir.join("rootfs");
    if root.join("usr/bin/python3").exists() {
        return root;
    }
    let (mirror, codename) = apt_mirror();
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!("rootfs.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let t = tmp.display().to_string();
    ok("debootstrap", &["--variant=minbase", "--include=python3", &codename, &t, &mirror]);
    if std::fs::rename(&tmp, &root).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    root
}

/// The test base as a `docker save` archive: the rootfs plus the stand-in as `vllm`.
fn base_archive(id: &str) -> PathBuf {
    let root = rootfs();
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
struct Docker {
    id: String,
    containers: Vec<String>,
    networks: Vec<String>,
    image: Option<String>,
    files: Vec<PathBuf>,
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
        }
        let _ = &self.id;
    }
}

fn logs(c: &str) -> String {
    let (_, out, err) = run("docker", &["logs", c]);
    format!("{out}{err}")
}

fn wait_log(c: &str, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let l = logs(c);
        if l.contains(needle) {
            return l;
        }
        assert!(Instant::now() < deadline, "container `{c}` did not log {needle:?} within {timeout:?}:\n{l}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn state(c: &str) -> (bool, i32, String) {
    let out = ok("docker", &["inspect", "-f", "{{.State.Running}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", c]);
    let mut w = out.split_whitespace();
    (w.next() == Some("true"), w.next().and_then(|s| s.parse().ok()).unwrap_or(-1), w.next().unwrap_or("").to_owned())
}

fn wait_exit(c: &str, timeout: Duration) -> (i32, Duration) {
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

#[test]
fn docker_image_built_by_sparkctl_forms_the_cluster_and_fails_as_a_group() {
    let id = format!("e{}", std::process::id());
    let sparkctl = Path::new(BIN).with_file_name("sparkctl");
    assert!(sparkctl.exists(), "`{}` is missing: build it first (`cargo build -p cli`; `cargo xtask test` builds the workspace)", sparkctl.display());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut d = Docker { id: id.clone(), containers: vec![], networks: vec![], image: None, files: vec![] };

    // Build the image with sparkctl, this entrypoint as the artifact.
    let base = base_archive(&id);
    d.files.push(base.clone());
    let out = cache().join(format!("image-{id}.tar"));
    d.files.push(out.clone());
    let tag = format!("sparkctl-e2e/vllm-spark:{id}");
    let build = Command::new(&sparkctl)
        .args(["image", "build", &repo.join("images/vllm-spark.toml").display().to_string()])
        .args(["--base", &format!("docker-archive:{}", base.display()), "--platform", "linux/amd64"])
        .args(["--artifact", &format!("/usr/local/bin/spark-entrypoint@linux/amd64={BIN}")])
        .args(["--output", &format!("docker-archive:{}:{tag}", out.display())])
        .env("SPARKCTL_STORE", cache().join("store"))
        .output()
        .unwrap();
    assert!(build.status.success(), "sparkctl image build failed:\n{}", String::from_utf8_lossy(&build.stderr));
    let digest = String::from_utf8_lossy(&build.stdout).lines().last().unwrap_or("").to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    ok("docker", &["load", "-q", "-i", &out.display().to_string()]);
    d.image = Some(tag.clone());
    assert_eq!(ok("docker", &["inspect", "-f", "{{json .Config.Entrypoint}}", &tag]).trim(), "[\"/usr/local/bin/spark-entrypoint\"]");

    // Two rails: two networks, MTU 9000, on /24s derived from the pid; the next ones when the
    // engine says a pool overlaps one in use (other tests, the host's own networks).
    let mut subnets = Vec::new();
    for attempt in 0..20 {
        let n = (std::process::id() + attempt * 7) % 200 + 20;
        let candidate = [format!("10.{n}.10"), format!("10.{n}.11")];
        let mut made = Vec::new();
        for (i, s) in candidate.iter().enumerate() {
            let name = format!("{id}-rail{i}");
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
            subnets = candidate.to_vec();
            break;
        }
        for m in made {
            let _ = run("docker", &["network", "rm", &m]);
        }
    }
    assert_eq!(subnets.len(), 2, "no free pair of /24s for the rails");
    let head_ip = format!("{}.2", subnets[0]);
    let start = |d: &mut Docker, name: &str, role: &str, host: u8| {
        let c = format!("{id}-{name}");
        let mut args: Vec<String> =
            vec!["create".into(), "--name".into(), c.clone(), "--network".into(), d.networks[0].clone(), "--ip".into(), format!("{}.{host}", subnets[0])];
        args.extend(
            [
                "--sysctl",
                "net.ipv6.conf.all.disable_ipv6=1",
                "--health-cmd",
                "spark-entrypoint healthcheck",
                "--health-interval",
                "1s",
                "--health-retries",
                "1",
            ]
            .map(String::from),
        );
        for (k, v) in [
            ("SPARK_ROLE", role.to_owned()),
            ("SPARK_NODE_NAME", name.to_owned()),
            ("SPARK_NODES", "a,b".into()),
            ("SPARK_HEAD_ADDR", head_ip.clone()),
            ("SPARK_RAILS", "eth0,eth1".into()),
            ("SPARK_TOKEN", "e2e-token".into()),
            ("SPARK_BACKEND", "native".into()),
            ("SPARK_IMAGE_DIGEST", digest.clone()),
            ("SPARK_GRACE", "5".into()),
        ] {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        args.extend([tag.clone(), "--".into(), "vllm".into(), "serve".into(), "e2e-model".into(), "--port".into(), "8000".into()]);
        ok("docker", &args.iter().map(String::as_str).collect::<Vec<_>>());
        ok("docker", &["network", "connect", "--ip", &format!("{}.{host}", subnets[1]), &d.networks[1], &c]);
        ok("docker", &["start", &c]);
        d.containers.push(c.clone());
        c
    };

    // Round 1: worker first, then head; the cluster forms and the model answers.
    let worker = start(&mut d, "b", "worker", 3);
    let head = start(&mut d, "a", "head", 2);
    let hlog = wait_log(&head, "READY: `e2e-model` answers", Duration::from_secs(60));
    assert!(hlog.contains(&format!("ipv4           eth0             {head_ip}/24")), "rail order in the container:\n{hlog}");
    assert!(hlog.contains("mtu            eth1             9000"), "{hlog}");
    let wlog = wait_log(&worker, "released by the head (rank 1)", Duration::from_secs(30));
    assert!(wlog.contains(&format!("--master-addr {head_ip} --master-port 29501 --headless")), "{wlog}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while state(&head).2 != "healthy" {
        assert!(Instant::now() < deadline, "docker health of the head: {:?}\n{}", state(&head), logs(&head));
        std::thread::sleep(Duration::from_millis(300));
    }

    // The worker's container dies: the head stops, non-zero, within 10 s.
    ok("docker", &["kill", &worker]);
    let (code, took) = wait_exit(&head, Duration::from_secs(20));
    let hlog = logs(&head);
    assert_eq!(code, 3, "{hlog}");
    assert!(took < Duration::from_secs(10), "head took {took:?}:\n{hlog}");
    assert!(hlog.contains("lost node `b`"), "{hlog}");

    // Round 2 (a restart policy's view): both start again, then `docker stop` of the head stops
    // the worker too.
    ok("docker", &["start", &worker]);
    ok("docker", &["start", &head]);
    // Logs accumulate across restarts: count READY lines.
    let deadline = Instant::now() + Duration::from_secs(60);
    while logs(&head).matches("READY: `e2e-model` answers").count() < 2 {
        assert!(Instant::now() < deadline, "second round did not get ready:\n{}", logs(&head));
        std::thread::sleep(Duration::from_millis(200));
    }
    ok("docker", &["stop", "-t", "10", &head]);
    let (hcode, _) = wait_exit(&head, Duration::from_secs(15));
    assert_eq!(hcode, 143, "the head exits with the serve command's SIGTERM status:\n{}", logs(&head));
    let (wcode, wtook) = wait_exit(&worker, Duration::from_secs(15));
    assert_eq!(wcode, 3, "{}", logs(&worker));
    assert!(wtook < Duration::from_secs(10));
}
