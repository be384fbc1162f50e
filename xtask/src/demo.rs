//! `cargo xtask demo`: the product doing its job on a machine with no GPU and no registry.
//! Builds sparkctl and a static spark-entrypoint, makes a stand-in base that carries real vLLM
//! (Debian + python3 + the CPU build from `cargo xtask vllm`, an OCI layout with one gzip layer; see
//! `test_support::vllm_base`), builds `images/vllm-spark.toml` onto it for
//! linux/amd64, loads it into Docker, then runs a two-node group of it: head and worker
//! containers on two Docker networks (the two rails), `vllm serve` of the tiny model with
//! tensor parallelism 2 across them, and answers a chat completion through the head. The
//! containers and networks are removed at the end (also on failure); the image stays loaded.

use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};
use test_support::{debian, oci, vllm_base};
use xshell::{cmd, Shell};

pub const ENTRYPOINT_TARGET: &str = "x86_64-unknown-linux-gnu";
const IMAGE: &str = "sparkctl/vllm-spark:demo";

/// Builds the static entrypoint for this machine and returns its path. The dev profile: the same
/// code as the release-small build the release ships (fat LTO, one codegen unit: ~2 min of one
/// core), built in a fraction of the time (its dependencies are few; the proc macros are the ones
/// `sparkctl`'s build just compiled).
pub fn build_entrypoint(sh: &Shell) -> Result<std::path::PathBuf> {
    let _flags = sh.push_env("RUSTFLAGS", "-C target-feature=+crt-static");
    cmd!(sh, "cargo build --locked -p entrypoint --target {ENTRYPOINT_TARGET}").run()?;
    Ok(sh.current_dir().join(format!("target/{ENTRYPOINT_TARGET}/debug/spark-entrypoint")))
}

/// The demo's containers and networks, removed on drop.
struct Group<'a> {
    sh: &'a Shell,
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        let sh = self.sh;
        for c in &self.containers {
            let _ = cmd!(sh, "docker rm -f {c}").quiet().ignore_stdout().ignore_stderr().run();
        }
        for n in &self.networks {
            let _ = cmd!(sh, "docker network rm {n}").quiet().ignore_stdout().ignore_stderr().run();
        }
    }
}

pub fn run(sh: &Shell) -> Result<()> {
    let start = Instant::now();
    // debootstrap for the base, pigz for its layer, curl for the request (Debian packages; the
    // tests' Python tools are not needed here); then real vLLM and the tiny model.
    crate::deps::install_debian(sh)?;
    // The Docker end-to-end test's cache (`CARGO_TARGET_TMPDIR`): one base for both.
    let cache = sh.current_dir().join("target/tmp/entrypoint-e2e");
    // On a fresh machine vLLM's 3 GB download and install, the base's Debian tree (debootstrap)
    // and the two builds take minutes each: side by side, not one after the other.
    let (v, entrypoint) = std::thread::scope(|s| -> Result<_> {
        let root = sh.current_dir();
        let vllm = s.spawn(move || -> Result<crate::vllm::Vllm> {
            let sh = Shell::new()?;
            sh.change_dir(root);
            crate::vllm::install(&sh)
        });
        let tree = s.spawn(|| debian::rootfs(&cache, vllm_base::DEBIAN_PACKAGES));
        // sparkctl in the dev profile: its hash and compressor crates are optimised there too
        // (the workspace's Cargo.toml), and it compiles in half the time of a release build.
        let built = cmd!(sh, "cargo build --locked -p cli").run().map_err(anyhow::Error::from).and_then(|()| build_entrypoint(sh));
        let v = vllm.join().map_err(|_| anyhow::anyhow!("installing vLLM panicked"))??;
        tree.join().map_err(|_| anyhow::anyhow!("debootstrap of the base's Debian tree failed (its message is above)"))?;
        Ok((v, built?))
    })?;
    let sparkctl = sh.current_dir().join("target/debug/sparkctl");
    let dir = sh.current_dir().join("target/demo");
    sh.create_dir(&dir)?;

    eprintln!("demo: the stand-in base with real vLLM (made once, ~3 GB)");
    let base = vllm_base::layout(&cache, &v.venv);
    let revision = cmd!(sh, "git rev-parse HEAD").read().unwrap_or_else(|_| "unknown".into());
    let art = format!("/usr/local/bin/spark-entrypoint@linux/amd64={}", entrypoint.display());
    let layout = format!("oci:{}/vllm-spark:demo", dir.display());
    let archive_file = dir.join("vllm-spark-amd64.tar");
    let archive = format!("docker-archive:{}:{IMAGE}", archive_file.display());
    let _ = std::fs::remove_dir_all(dir.join("vllm-spark"));
    // The layout first: base layers are hard links, so this takes a second on a rerun.
    let build = |outputs: &[String]| -> Result<String> {
        let outs: Vec<String> = outputs.iter().flat_map(|o| ["--output".to_owned(), o.clone()]).collect();
        let out = cmd!(sh, "{sparkctl} image build -q images/vllm-spark.toml --base oci:{base} --platform linux/amd64 --artifact {art} --label org.opencontainers.image.revision={revision} {outs...}").read()?;
        Ok(out.lines().last().unwrap_or_default().to_owned())
    };
    let digest = build(std::slice::from_ref(&layout))?;
    cmd!(sh, "{sparkctl} image inspect {layout}").run()?;
    // Same inputs, same bytes: when Docker already holds this image (its id is the config's
    // digest), the ~3 GB archive and `docker load` are skipped.
    let config = config_digest(&dir.join("vllm-spark"))?;
    let format = "{{.Id}}";
    let loaded = cmd!(sh, "docker image inspect --format {format} {IMAGE}").quiet().ignore_stderr().read().unwrap_or_default();
    if loaded.trim() == config {
        eprintln!("demo: {IMAGE} is already loaded with this build ({config}): no archive, no `docker load`");
    } else {
        build(std::slice::from_ref(&archive))?;
        cmd!(sh, "docker load -q -i {archive_file}").run()?;
        let _ = std::fs::remove_file(&archive_file);
    }
    let built = start.elapsed();

    let id = format!("sparkctl-demo-{}", std::process::id());
    let mut group = Group { sh, containers: vec![], networks: vec![] };
    let subnets = rail_networks(sh, &id, &mut group)?;
    let head_ip = format!("{}.2", subnets[0]);
    let token = format!("demo-{}-{}", std::process::id(), start.elapsed().as_nanos());
    let model = v.model.display().to_string();
    let t = Instant::now();
    for (name, role, host) in [("b", "worker", 3), ("a", "head", 2)] {
        let c = format!("{id}-{name}");
        let (net0, net1) = (&group.networks[0], &group.networks[1]);
        let (ip0, ip1) = (format!("{}.{host}", subnets[0]), format!("{}.{host}", subnets[1]));
        let env = [
            format!("SPARK_ROLE={role}"),
            format!("SPARK_NODE_NAME={name}"),
            "SPARK_NODES=a,b".into(),
            format!("SPARK_HEAD_ADDR={head_ip}"),
            "SPARK_RAILS=eth0,eth1".into(),
            format!("SPARK_TOKEN={token}"),
            format!("SPARK_IMAGE_DIGEST={digest}"),
            "SPARK_BACKEND=native".into(),
            // Real vLLM on a small CPU machine: 1 GiB of KV cache, no pinning, nothing sent out.
            "VLLM_CPU_KVCACHE_SPACE=1".into(),
            "VLLM_CPU_OMP_THREADS_BIND=nobind".into(),
            "VLLM_NO_USAGE_STATS=1".into(),
            "DO_NOT_TRACK=1".into(),
            "HF_HUB_OFFLINE=1".into(),
            // vLLM's CPU worker compiles a kernel with torch's inductor even under
            // `--enforce-eager`; the stand-in base has no C++ compiler (NVIDIA's base has one).
            "TORCH_COMPILE_DISABLE=1".into(),
        ];
        let env_args: Vec<String> = env.iter().flat_map(|e| ["-e".to_owned(), e.clone()]).collect();
        cmd!(sh, "docker create -q --name {c} --network {net0} --ip {ip0} --sysctl net.ipv6.conf.all.disable_ipv6=1 --shm-size 256m -v {model}:/models/tiny:ro {env_args...} {IMAGE} -- vllm serve /models/tiny --served-model-name tiny --max-model-len 256 --gpu-memory-utilization 0.75 --enforce-eager --tensor-parallel-size 2").quiet().ignore_stdout().run()?;
        group.containers.push(c.clone());
        cmd!(sh, "docker network connect --ip {ip1} {net1} {c}").run()?;
        cmd!(sh, "docker start {c}").quiet().ignore_stdout().run()?;
    }
    let head = format!("{id}-a");
    eprintln!("demo: two nodes started (head {head_ip}); waiting for the model to answer");
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let logs = cmd!(sh, "docker logs {head}").quiet().ignore_status().read_stderr().unwrap_or_default();
        if logs.contains("READY: `tiny` answers") {
            break;
        }
        let format = "{{.State.Running}}";
        let running = cmd!(sh, "docker inspect -f {format} {head}").quiet().read().unwrap_or_default();
        if running.trim() != "true" || Instant::now() >= deadline {
            eprintln!("{logs}");
            bail!("the head did not get ready (running: {}); its log is above", running.trim());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let ready = t.elapsed();
    for line in cmd!(sh, "docker logs {head}").quiet().read_stderr()?.lines().filter(|l| l.contains("[a entrypoint]")) {
        eprintln!("{line}");
    }
    let body = r#"{"model": "tiny", "messages": [{"role": "user", "content": "Hello! How can I help you today?"}], "max_tokens": 12, "temperature": 0}"#;
    let url = format!("http://{head_ip}:8000/v1/chat/completions");
    let answer = cmd!(sh, "curl -sS --fail-with-body --max-time 120 -H Content-Type:application/json -d {body} {url}")
        .read()
        .context("the chat completion through the head")?;
    println!("POST {url}\n{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).context("the answer is not JSON")?;
    if v["choices"][0]["message"]["role"] != "assistant" {
        bail!("no assistant message in the answer");
    }
    eprintln!(
        "\ndemo: image {IMAGE} ({digest}) built and loaded in {:.0} s; two-node group ready in {:.0} s; total {:.0} s\n(a tiny random model: the words are noise, the path is real)",
        built.as_secs_f64(),
        ready.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    drop(group);
    Ok(())
}

/// Two bridge networks (the rails, MTU 9000) on free /24s; returns their first three octets.
fn rail_networks(sh: &Shell, id: &str, group: &mut Group) -> Result<[String; 2]> {
    for attempt in 0..20u32 {
        let n = (std::process::id() + attempt * 7) % 200 + 20;
        let subnets = [format!("10.{n}.20"), format!("10.{n}.21")];
        let mut made = Vec::new();
        for (i, s) in subnets.iter().enumerate() {
            let name = format!("{id}-rail{i}");
            let sub = format!("{s}.0/24");
            if cmd!(sh, "docker network create --driver bridge --subnet {sub} --opt com.docker.network.driver.mtu=9000 {name}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run()
                .is_err()
            {
                break;
            }
            made.push(name);
        }
        if made.len() == 2 {
            group.networks = made;
            return Ok(subnets);
        }
        for m in made {
            let _ = cmd!(sh, "docker network rm {m}").quiet().ignore_stdout().run();
        }
    }
    bail!("no free pair of /24s for the demo's rails")
}

/// The config digest of the one image in an OCI layout (Docker's image id once it is loaded).
fn config_digest(layout: &std::path::Path) -> Result<String> {
    let manifest = oci::one_manifest(layout).map_err(anyhow::Error::msg)?;
    Ok(manifest["config"]["digest"].as_str().context("the manifest names no config")?.to_owned())
}
