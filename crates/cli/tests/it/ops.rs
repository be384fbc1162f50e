//! `sparkctl up | down | status | logs` on real parts: two network-namespace nodes (fabric's
//! [`Nodes`]: veth rails, a real OpenSSH server each, keys and ssh config made here), sparkctl
//! on node a as the control machine, the real `spark-entrypoint` forming a native-backend group
//! across the namespaces.
//!
//! What a namespace cannot have is substituted, per node, by small scripts on its `PATH`:
//! - `systemctl` runs the unit's command as `spark-cluster.service` would, minus Docker: the real
//!   `spark-entrypoint` with the rendered env file, restarted on failure like `Restart=on-failure`
//!   (the container's paths map to the node's root: token, HF cache, state folder);
//! - `journalctl -u spark-cluster` reads that process's log; `netplan` and `sysctl` record their
//!   calls (the host's network must not change) and `netplan` fails on request;
//! - `docker exec spark-cluster cat FILE` reads the node's FILE (no container), `docker version`
//!   fails on request (a stopped daemon); `docker run` of the NCCL benchmark container runs the
//!   real `spark-entrypoint` with that container's env file, `--env`s and results folder (no
//!   container, as for the unit) and `docker rm -f` ends it; every other `docker` call goes to
//!   the host's real Docker engine (image presence);
//! - `vllm` is the entrypoint tests' stand-in (`standin_vllm.py`), except in
//!   `up_runs_real_vllm_…`, where it is real vLLM on CPU (`cargo xtask vllm`).
//!
//! The namespaces share one file system: each node's files live under its `SPARKCTL_ROOT`, which
//! its sshd sets (sparkctl's node scripts prefix every path with it; it is unset on real nodes).

use crate::fabric::Nodes;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SYSTEMCTL: &str = r##"#!/bin/sh
# systemctl stand-in: spark-cluster.service's command without Docker (see crates/cli/tests/it/ops.rs).
R="$SPARKCTL_ROOT"; S="$R/standin"; mkdir -p "$S"
echo "systemctl $*" >> "$S/calls"
running() { [ -f "$S/pid" ] && kill -0 "$(cat "$S/pid")" 2>/dev/null; }
stop() {
  running || return 0
  pid=$(cat "$S/pid"); kill -TERM "-$pid" 2>/dev/null
  i=0; while kill -0 "-$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "-$pid" 2>/dev/null; rm -f "$S/pid"
}
start() {
  running && return 0
  [ -f "$R/etc/spark-cluster/spark.env" ] || { echo "spark.env missing" >&2; exit 1; }
  mkdir -p "$R/var/log" "$R/var/lib/spark-cluster/state" "$R/run/spark-entrypoint" "$R/home"
  setsid sh -c '
    R=$1
    while :; do
      (
        while IFS= read -r l; do case "$l" in "#"*|"") ;; *) export "$l" ;; esac; done < "$R/etc/spark-cluster/spark.env"
        while IFS= read -r l; do case "$l" in "#"*|"") ;; *) export "$l" ;; esac; done < "$R/standin/extra.env"
        export SPARK_TOKEN_FILE="$R/etc/spark-cluster/token" SPARK_STATUS_FILE="$R/run/spark-entrypoint/status.json" \
          SPARK_STATE_FILE="$R/var/lib/spark-cluster/state/restarts.json" HF_HOME="$R/var/lib/spark-cluster/huggingface" \
          HOME="$R/home" VLLM_CONFIG_ROOT="$R/home/vllm"
        exec spark-entrypoint
      ) >> "$R/var/log/spark-cluster.log" 2>&1
      [ $? = 0 ] && break
      sleep 1
    done' sh "$R" < /dev/null > /dev/null 2>&1 &
  echo $! > "$S/pid"
}
case "$1" in
  daemon-reload|enable|disable) ;;
  is-active) if running; then echo active; else echo inactive; exit 3; fi ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) echo "systemctl stand-in: $1 unsupported" >&2; exit 1 ;;
esac
"##;

const JOURNALCTL: &str = r#"#!/bin/sh
n=200; f=0
while [ $# -gt 0 ]; do case "$1" in -n) n=$2; shift ;; -f) f=1 ;; esac; shift; done
log="$SPARKCTL_ROOT/var/log/spark-cluster.log"; [ -f "$log" ] || exit 0
if [ $f = 1 ]; then exec tail -n "$n" -F "$log" 2>/dev/null; else exec tail -n "$n" "$log"; fi
"#;

const NETPLAN: &str = r#"#!/bin/sh
S="$SPARKCTL_ROOT/standin"; mkdir -p "$S"; echo "netplan $*" >> "$S/calls"
if [ -f "$S/netplan-fails" ]; then echo "Error in network definition: invalid mtu" >&2; exit 1; fi
"#;

const SYSCTL: &str = r#"#!/bin/sh
S="$SPARKCTL_ROOT/standin"; mkdir -p "$S"; echo "sysctl $*" >> "$S/calls"
"#;

const DOCKER: &str = r##"#!/bin/sh
S="$SPARKCTL_ROOT/standin"
if [ "$1" = run ]; then
  # The benchmark container of `bench nccl run`, minus Docker: the real spark-entrypoint with the
  # env file, the container's paths mapped to the node's root, the test's sweep (`bench.env`),
  # then the `--env`s (they win, as in Docker), the results volume as `SPARK_BENCH_OUT`, and the
  # node's stand-ins first on PATH (a root login's shell profile may put others before them).
  shift; mkdir -p "$S"; name=""; envfile=""; out=""; envs=$(mktemp)
  while [ $# -gt 1 ]; do
    case "$1" in
      --rm) shift ;;
      --name) name=$2; shift 2 ;;
      --env-file) envfile=$2; shift 2 ;;
      --env) printf '%s\n' "$2" >> "$envs"; shift 2 ;;
      --volume) case "$2" in *:/results) out="${2%:/results}" ;; esac; shift 2 ;;
      *) shift 2 ;;
    esac
  done
  echo "docker run $name $1" >> "$S/calls"
  [ "$name" = spark-nccl-bench ] || { echo "docker stand-in: only the benchmark container runs here" >&2; exit 125; }
  setsid sh -c '
    R=$1
    load() { while IFS= read -r l; do case "$l" in "#"*|"") ;; *) export "$l" ;; esac; done < "$1"; }
    load "$R$2"
    export SPARK_TOKEN_FILE="$R/etc/spark-cluster/token" SPARK_STATUS_FILE="$R/run/spark-entrypoint/status.json" \
      SPARK_STATE_FILE="$R/var/lib/spark-cluster/state/restarts.json" HOME="$R/home"
    [ -f "$R/standin/bench.env" ] && load "$R/standin/bench.env"
    load "$3"
    [ "$SPARK_BENCH_OUT" = /results ] && export SPARK_BENCH_OUT="$R$4"
    export PATH="$5:$PATH"
    exec spark-entrypoint' sh "$SPARKCTL_ROOT" "$envfile" "$envs" "$out" "$(dirname "$0")" < /dev/null &
  echo $! > "$S/bench.pid"
  wait $!; code=$?
  rm -f "$S/bench.pid" "$envs"
  exit $code
fi
if [ "$1" = rm ]; then
  # `docker rm -f spark-nccl-bench`: the benchmark's process group ends, as the container would.
  echo "docker $*" >> "$S/calls"
  if [ -f "$S/bench.pid" ]; then
    pid=$(cat "$S/bench.pid"); kill -TERM "-$pid" 2>/dev/null
    i=0; while kill -0 "-$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "-$pid" 2>/dev/null
  fi
  exit 0
fi
if [ "$1" = version ] && [ -f "$SPARKCTL_ROOT/standin/docker-down" ]; then
  echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1
fi
if [ "$1" = exec ]; then
  S="$SPARKCTL_ROOT/standin"
  [ -f "$S/pid" ] && kill -0 "$(cat "$S/pid")" 2>/dev/null || { echo "Error response from daemon: No such container: $2" >&2; exit 1; }
  [ "$3" = cat ] && exec cat "$SPARKCTL_ROOT$4"
  exit 1
fi
exec /usr/bin/docker "$@"
"##;

const T: Duration = Duration::from_secs(90);

struct Ops {
    n: Nodes,
    image: String,
}

impl Drop for Ops {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "--force", &self.image]).output();
    }
}

fn entrypoint_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_sparkctl")).with_file_name("spark-entrypoint");
    assert!(p.exists(), "`{}` is missing: `cargo build -p entrypoint` first (`cargo xtask test` builds every binary)", p.display());
    p
}

fn exe(p: &Path, text: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A safetensors file with one F32 tensor of `n` floats.
fn safetensors(n: usize, fill: u8) -> Vec<u8> {
    let h = format!(r#"{{"w":{{"dtype":"F32","shape":[{n}],"data_offsets":[0,{}]}}}}"#, n * 4);
    let mut v = (h.len() as u64).to_le_bytes().to_vec();
    v.extend(h.as_bytes());
    v.extend(std::iter::repeat_n(fill, n * 4));
    v
}

fn sha(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))))
}

impl Ops {
    fn new(extra_env: &str) -> Ops {
        let n = Nodes::new();
        let image = format!("sparkctl-ops-test-{}-{}", std::process::id(), n.a);
        let empty = n.path("empty.tar");
        tar::Builder::new(fs::File::create(&empty).unwrap()).finish().unwrap();
        let imp = Command::new("docker").args(["import", &empty.display().to_string(), &format!("{image}:1")]).output().expect("docker");
        assert!(imp.status.success(), "docker import: {}", String::from_utf8_lossy(&imp.stderr));
        let ops = Ops { n, image: format!("{image}:1") };
        let n = &ops.n;
        // The model goes over the rails: the head's rail address needs a known host key too.
        let known = fs::read_to_string(n.path("known_hosts")).unwrap();
        let host_a = fs::read_to_string(n.path("host-a.pub")).unwrap();
        fs::write(n.path("known_hosts"), format!("{known}[10.88.0.1]:2222 {host_a}")).unwrap();
        let standin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../entrypoint/tests/standin_vllm.py");
        let nccl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/nccl_debug/dgx-spark-nccl-2.30.7-ib-hca-set-to-roce-two-rails.txt");
        for node in ["a", "b"] {
            let bin = n.path(&format!("node-{node}/bin"));
            exe(&bin.join("systemctl"), SYSTEMCTL);
            exe(&bin.join("journalctl"), JOURNALCTL);
            exe(&bin.join("netplan"), NETPLAN);
            exe(&bin.join("sysctl"), SYSCTL);
            exe(&bin.join("docker"), DOCKER);
            exe(&bin.join("vllm"), &format!("#!/bin/sh\nexec python3 {} \"$@\"\n", standin.display()));
            std::os::unix::fs::symlink(entrypoint_bin(), bin.join("spark-entrypoint")).unwrap();
            let extra = format!("STANDIN_LOAD_SECONDS=1\nSTANDIN_NCCL_LOG={}\n{extra_env}", nccl.display());
            fs::create_dir_all(n.path(&format!("node-{node}/root/standin"))).unwrap();
            fs::write(n.path(&format!("node-{node}/root/standin/extra.env")), extra).unwrap();
        }
        let cluster = fs::read_to_string(n.path("cluster.toml"))
            .unwrap()
            .replace("backend = \"ray\"", "backend = \"native\"")
            .replace("spark-registry.lan:5000/sparkctl/vllm-spark:25.11", &ops.image)
            .replace("QuantTrio/Qwen3-VL-235B-A22B-Instruct-AWQ", "test-org/tiny-model")
            // The stand-in's record goes to the test's folder (never a host path such as
            // `/dev/null`: it writes beside the path and renames over it).
            .replace("env = { HF_HUB_OFFLINE = \"1\" }", &format!("env = {{ HF_HUB_OFFLINE = \"1\", STANDIN_RECORD = \"{}\" }}", n.s("standin-record.json")))
            .lines()
            .filter(|l| !l.starts_with("management = "))
            .collect::<Vec<_>>()
            .join("\n");
        let args = cluster.find("args = [").unwrap();
        let end = args + cluster[args..].find("]\n").unwrap() + 2;
        // The memory fraction explicit: without it the head's launch plan refuses the serve command
        // (unified memory; `SPARK_PLAN=enforce`), as it would on a Spark.
        let cluster = format!("{}args = [\"--tensor-parallel-size\", \"2\", \"--gpu-memory-utilization\", \"0.75\"]\n{}", &cluster[..args], &cluster[end..]);
        fs::write(n.path("cluster.toml"), cluster).unwrap();
        let m = n.path("model");
        fs::create_dir_all(&m).unwrap();
        fs::write(m.join("config.json"), r#"{"architectures":["Tiny"]}"#).unwrap();
        fs::write(m.join("model-00001-of-00002.safetensors"), safetensors(300_000, 1)).unwrap();
        fs::write(m.join("model-00002-of-00002.safetensors"), safetensors(200_000, 2)).unwrap();
        fs::write(m.join("model.safetensors.index.json"), r#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#)
            .unwrap();
        ops
    }

    fn root(&self, node: &str, rel: &str) -> PathBuf {
        self.n.path(&format!("node-{node}/root{rel}"))
    }

    /// The stand-ins' calls that change something (`systemctl is-active` only looks).
    fn calls(&self, node: &str) -> String {
        let all = fs::read_to_string(self.root(node, "/standin/calls")).unwrap_or_default();
        all.lines().filter(|l| !l.starts_with("systemctl is-active")).map(|l| format!("{l}\n")).collect()
    }

    fn run(&self, cmd: &str, extra: &[&str]) -> crate::fabric::Run {
        let (cluster, cfg, model) = (self.n.s("cluster.toml"), self.n.s("ssh_config"), self.n.s("model"));
        let mut args = vec![cmd, "--cluster", &cluster, "--ssh-config", &cfg];
        // `up`'s defaults for these tests, unless the test gives its own (clap refuses a
        // repeated option).
        if cmd == "up" {
            for (opt, value) in [("--model-dir", model.as_str()), ("--timeout", "90")] {
                if !extra.contains(&opt) {
                    args.extend([opt, value]);
                }
            }
        }
        args.extend(extra);
        let r = self.n.sparkctl(&args);
        eprintln!("$ sparkctl {}\n{}{}(exit {})", args.join(" "), r.stdout, r.stderr, r.code);
        r
    }

    fn snapshot(&self, node: &str) -> PathBuf {
        self.root(node, "/var/lib/spark-cluster/huggingface/hub/models--test-org--tiny-model/snapshots/sparkctl")
    }

    fn pid(&self, node: &str) -> String {
        fs::read_to_string(self.root(node, "/standin/pid")).unwrap_or_default()
    }
}

/// `logs -f` keeps going and shows a line written on each node after it started, prefixed.
fn follow_shows_new_lines(o: &Ops) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let (cluster, cfg) = (o.n.s("cluster.toml"), o.n.s("ssh_config"));
    let mut child = Command::new("ip")
        .args(["netns", "exec", &o.n.a, env!("CARGO_BIN_EXE_sparkctl"), "logs", "-f", "-n", "0", "--cluster", &cluster, "--ssh-config", &cfg])
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut want = vec![format!("spark-a | follow-marker-a-{}", std::process::id()), format!("spark-b | follow-marker-b-{}", std::process::id())];
    // Written again each second until seen: `-n 0` shows only what comes after the follower
    // started on the node (after the login), and when that is is not known here.
    let t0 = Instant::now();
    let mut seen = Vec::new();
    let mut last_write = None::<Instant>;
    while !want.is_empty() && t0.elapsed() < Duration::from_secs(30) {
        if last_write.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            for line in &want {
                let node = if line.starts_with("spark-a") { "a" } else { "b" };
                let mut f = fs::OpenOptions::new().append(true).open(o.root(node, "/var/log/spark-cluster.log")).unwrap();
                std::io::Write::write_all(&mut f, format!("{}\n", &line["spark-a | ".len()..]).as_bytes()).unwrap();
            }
            last_write = Some(Instant::now());
        }
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            want.retain(|w| *w != l);
            seen.push(l);
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "`logs -f` ended by itself");
    let pgid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", "--", &format!("-{pgid}")]).status();
    let _ = child.wait();
    assert!(want.is_empty(), "`logs -f` did not show {want:?}; it showed: {seen:?}");
    // Nothing of it stays on the nodes (a command without a terminal gets no SIGHUP).
    let t0 = Instant::now();
    while o.n.leftovers_now().iter().any(|p| p.contains("tail -n 0 -F")) {
        assert!(t0.elapsed() < Duration::from_secs(10), "`logs -f` left its followers running: {:?}", o.n.leftovers_now());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `sparkctl status --json` (null while it cannot say).
fn state(o: &Ops) -> serde_json::Value {
    serde_json::from_str(&o.run("status", &["--json"]).stdout).unwrap_or_default()
}

/// Waits until the head is down because a wedge spent the restart budget; fails at `deadline`
/// with `context()` added.
fn wait_down_with_the_budget_spent(o: &Ops, deadline: Instant, context: impl Fn() -> String) {
    loop {
        let v = state(o);
        if v[0]["state"] == "down" {
            assert!(v[0]["detail"].as_str().unwrap().contains("budget"), "{v}");
            assert!(v[0]["last_error"].as_str().unwrap().contains("wedged"), "{v}");
            return;
        }
        assert!(Instant::now() < deadline, "never down: {v}{}", context());
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `text` contains every one of `parts`.
fn assert_contains(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "no {part:?} in:\n{text}");
    }
}

fn assert_ok(r: &crate::fabric::Run) {
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
}

/// No node has a failure in its restart history (a requested stop is none).
fn assert_no_failures(o: &Ops) {
    for node in ["a", "b"] {
        let p = o.root(node, "/var/lib/spark-cluster/state/restarts.json");
        let text = fs::read_to_string(&p).unwrap_or_else(|_| r#"{"failures":[]}"#.into());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["failures"].as_array().map(Vec::len), Some(0), "node {node}: {text}");
    }
}

#[test]
fn up_from_zero_to_ready_then_again_changes_nothing_then_only_what_changed_then_down() {
    let mut o = Ops::new("");
    o.n.start_sshd();
    // Dry run first: every action shown, nothing done.
    let dry = o.run("up", &["--dry-run"]);
    assert_ok(&dry);
    assert!(dry.stdout.contains("spark-b: /etc/netplan/40-cx7.yaml: create"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("spark-b: model `test-org/tiny-model`: copy 4 of 4 file(s)") && dry.stdout.contains("over the rail 10.88.0.2"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("dry run: nothing was changed"));
    assert!(!o.root("b", "/etc").exists() && o.calls("b").is_empty(), "a dry run changed a node");

    let t0 = Instant::now();
    let up = o.run("up", &[]);
    assert_ok(&up);
    eprintln!("measured: `up` from zero to ready in {:.1} s", t0.elapsed().as_secs_f64());
    assert!(up.stdout.contains("ready in ") && up.stdout.contains("http://10.88.0.1:8000/v1"), "{}", up.stdout);
    assert!(up.stdout.contains("spark-b: rendezvous") || up.stdout.contains("spark-b: preflight") || up.stdout.contains("spark-b: ready"), "{}", up.stdout);
    // Files rendered for each node, netplan private, backups none (nothing replaced).
    let c = cluster::parse_file(&o.n.path("cluster.toml")).unwrap();
    for (node, name) in [("a", "spark-a"), ("b", "spark-b")] {
        for w in cluster::ops::files::wanted(&c, c.node(name).unwrap()) {
            let p = o.root(node, &w.path);
            assert_eq!(fs::read_to_string(&p).unwrap(), w.text, "{}", p.display());
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, w.mode, "{}", p.display());
        }
        assert!(o.calls(node).contains("netplan apply") && o.calls(node).contains("sysctl --system"), "{}", o.calls(node));
    }
    // One token, the same on both nodes, private, never printed, in no rendered file.
    let (ta, tb) = (o.root("a", "/etc/spark-cluster/token"), o.root("b", "/etc/spark-cluster/token"));
    let token = fs::read_to_string(&ta).unwrap();
    assert_eq!(token.trim().len(), 64);
    assert_eq!(fs::read_to_string(&tb).unwrap(), token);
    assert_eq!(fs::metadata(&tb).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!up.stdout.contains(token.trim()) && !up.stderr.contains(token.trim()));
    assert!(!fs::read_to_string(o.root("b", "/etc/spark-cluster/spark.env")).unwrap().contains(token.trim()));
    // The model on both nodes, byte for byte, and `refs/main` pointing at it.
    for node in ["a", "b"] {
        for f in ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"] {
            assert_eq!(sha(&o.snapshot(node).join(f)), sha(&o.n.path("model").join(f)), "{node} {f}");
        }
        let refs = o.root(node, "/var/lib/spark-cluster/huggingface/hub/models--test-org--tiny-model/refs/main");
        assert_eq!(fs::read_to_string(refs).unwrap(), "sparkctl");
    }

    // status and logs while running.
    let st = o.run("status", &["--json"]);
    assert_ok(&st);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    for row in v.as_array().unwrap() {
        assert_eq!(row["state"], "ready", "{row}");
        assert_eq!(row["unit"], "active", "{row}");
        assert_eq!(row["restart_budget"], 3, "{row}");
        assert_eq!(row["restarts_used"], 0, "{row}");
        assert!(row["image"].as_str().unwrap().starts_with("sha256:"), "{row}");
    }
    assert_eq!(v[0]["transport"], "NET/IB", "the head's engine logs NCCL on the rails: {}", v[0]);
    let logs = o.run("logs", &["-n", "1000"]);
    assert_ok(&logs);
    assert!(logs.stdout.lines().any(|l| l.starts_with("spark-a | [spark-a entrypoint]")), "{}", logs.stdout);
    assert!(logs.stdout.lines().any(|l| l.starts_with("spark-b | [spark-b entrypoint]")), "{}", logs.stdout);
    let one = o.run("logs", &["--node", "spark-b"]);
    assert!(one.stdout.lines().all(|l| l.starts_with("spark-b | ")), "{}", one.stdout);
    follow_shows_new_lines(&o);

    // Again: nothing changes, not even a restart.
    let (calls_b, pid_b) = (o.calls("b"), o.pid("b"));
    let again = o.run("up", &[]);
    assert_ok(&again);
    assert!(again.stdout.contains("nothing to change on 2 node(s)"), "{}", again.stdout);
    assert!(again.stdout.contains("spark-b: model `test-org/tiny-model`: 4 file(s) up to date"), "{}", again.stdout);
    assert_eq!(o.calls("b"), calls_b, "a second `up` changed something");
    assert_eq!(o.pid("b"), pid_b, "the group was restarted");

    // A truncated model file on the worker is found and copied again (only that file).
    let shard = o.snapshot("b").join("model-00001-of-00002.safetensors");
    fs::OpenOptions::new().write(true).open(&shard).unwrap().set_len(1000).unwrap();
    // And a copy cut short earlier (a partial file, the final one absent) continues from its end.
    let shard2 = o.snapshot("b").join("model-00002-of-00002.safetensors");
    let bytes = fs::read(&shard2).unwrap();
    fs::write(o.snapshot("b").join("model-00002-of-00002.safetensors.sparkctl-partial"), &bytes[..4096]).unwrap();
    fs::remove_file(&shard2).unwrap();
    let fix = o.run("up", &[]);
    assert_ok(&fix);
    assert!(fix.stdout.contains("spark-b: model `test-org/tiny-model`: copy 2 of 4"), "{}", fix.stdout);
    assert!(fix.stdout.contains("spark-b:   model-00002-of-00002.safetensors (continuing at byte 4096)"), "{}", fix.stdout);
    assert_eq!(fs::read(&shard2).unwrap(), bytes);
    assert!(!o.snapshot("b").join("model-00002-of-00002.safetensors.sparkctl-partial").exists());
    assert!(fix.stdout.contains("spark-a: model `test-org/tiny-model`: 4 file(s) up to date"), "{}", fix.stdout);
    assert_eq!(sha(&shard), sha(&o.n.path("model/model-00001-of-00002.safetensors")));

    // A changed cluster.toml (one extra variable) changes the env files only, restarts the group.
    let toml = fs::read_to_string(o.n.path("cluster.toml")).unwrap();
    fs::write(o.n.path("cluster.toml"), toml.replace("HF_HUB_OFFLINE = \"1\",", "HF_HUB_OFFLINE = \"1\", EXTRA_SETTING = \"on\",")).unwrap();
    let netplans = o.calls("b").matches("netplan apply").count();
    let changed = o.run("up", &[]);
    assert_ok(&changed);
    for node in ["spark-a", "spark-b"] {
        assert!(changed.stdout.contains(&format!("{node}: /etc/spark-cluster/spark.env: update")), "{}", changed.stdout);
        assert!(changed.stdout.contains(&format!("{node}: /etc/netplan/40-cx7.yaml: unchanged")), "{}", changed.stdout);
        assert!(changed.stdout.contains(&format!("{node}: /etc/systemd/system/spark-cluster.service: unchanged")), "{}", changed.stdout);
    }
    assert!(changed.stdout.contains("+EXTRA_SETTING=on"), "the diff is shown: {}", changed.stdout);
    assert!(changed.stdout.contains("group restarted on 2 node(s)"), "{}", changed.stdout);
    assert_eq!(o.calls("b").matches("netplan apply").count(), netplans, "netplan was applied again");
    // The group restart that `up` asked for spent no restart budget on either node.
    assert_no_failures(&o);
    assert!(fs::read_to_string(o.root("b", "/etc/spark-cluster/spark.env.sparkctl-bak")).unwrap().contains("HF_HUB_OFFLINE=1"));

    // A hand-edited file: shown as a diff, refused, left alone; replaced with --force (backup kept).
    let sysctl = o.root("b", "/etc/sysctl.d/90-spark-cx7.conf");
    let edited = format!("{}net.core.rmem_max = 1\n", fs::read_to_string(&sysctl).unwrap());
    fs::write(&sysctl, &edited).unwrap();
    let refused = o.run("up", &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert_contains(&refused.stdout, &["spark-b: /etc/sysctl.d/90-spark-cx7.conf: hand-edited", "-net.core.rmem_max = 1"]);
    assert_contains(&refused.stderr, &["`/etc/sysctl.d/90-spark-cx7.conf` on `spark-b`", "--force"]);
    assert_eq!(fs::read_to_string(&sysctl).unwrap(), edited);
    let forced = o.run("up", &["--force"]);
    assert_ok(&forced);
    assert!(!fs::read_to_string(&sysctl).unwrap().contains("rmem_max"));
    assert_eq!(fs::read_to_string(o.root("b", "/etc/sysctl.d/90-spark-cx7.conf.sparkctl-bak")).unwrap(), edited);

    // A failed apply on a node puts its files back.
    let netplan = o.root("b", "/etc/netplan/40-cx7.yaml");
    let before = fs::read_to_string(&netplan).unwrap();
    fs::write(o.root("b", "/standin/netplan-fails"), "").unwrap();
    let toml = fs::read_to_string(o.n.path("cluster.toml")).unwrap();
    fs::write(o.n.path("cluster.toml"), toml.replace("10.88.1.2/24", "10.88.1.3/24")).unwrap();
    let failed = o.run("up", &[]);
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert_contains(&failed.stderr, &["node `spark-b`: installing the files failed", "the previous files are back in place"]);
    assert_eq!(fs::read_to_string(&netplan).unwrap(), before);
    fs::write(o.n.path("cluster.toml"), toml).unwrap();
    fs::remove_file(o.root("b", "/standin/netplan-fails")).unwrap();

    // down: nothing left running on either node (but sshd).
    let down = o.run("down", &[]);
    assert_ok(&down);
    assert!(o.n.leftovers().is_empty(), "left running: {:?}", o.n.leftovers());
    let st = o.run("status", &[]);
    assert_ok(&st);
    assert!(st.stdout.contains("spark-b (worker): unit inactive, no container"), "{}", st.stdout);
}

#[test]
fn an_unreachable_node_is_named_and_nothing_changes() {
    let mut o = Ops::new("");
    o.n.start_sshd();
    o.n.ssh_config("ssh_config", "10.88.0.99", "id");
    let up = o.run("up", &[]);
    assert_eq!(up.code, 2, "{}", up.stderr);
    assert!(up.stderr.contains("cannot reach `spark-b` over ssh"), "{}", up.stderr);
    assert!(!o.root("a", "/etc").exists(), "the reachable node was changed");
    o.n.ssh_config("ssh_config", "10.88.0.2", "stranger");
    let st = o.run("status", &[]);
    assert_eq!(st.code, 2);
    assert!(st.stdout.contains("spark-b (worker): unreachable: cannot log in to `spark-b` over ssh"), "{}", st.stdout);
    assert!(st.stderr.starts_with("error: cannot log in to"), "{}", st.stderr);
}

#[test]
fn a_wedged_engine_restarts_the_group_and_a_spent_budget_stays_down() {
    let mut o = Ops::new("SPARK_LIVENESS_INTERVAL=1\nSPARK_LIVENESS_TIMEOUT=2\nSPARK_LIVENESS_FAILURES=2\nSPARK_RESTART_BUDGET=1\nSPARK_RESTART_DELAY=1\n");
    let wedge = o.n.path("wedge");
    for node in ["a", "b"] {
        let p = o.root(node, "/standin/extra.env");
        let extra = fs::read_to_string(&p).unwrap();
        fs::write(&p, format!("{extra}STANDIN_WEDGE_FILE={}\n", wedge.display())).unwrap();
    }
    o.n.start_sshd();
    assert_ok(&o.run("up", &[]));
    let ready_pid = o.pid("a");
    // Completions hang, /health stays 200: the head's liveness stops the group, the units
    // restart it (restart 1 of 1), and it is ready again.
    fs::write(&wedge, "").unwrap();
    let t0 = Instant::now();
    loop {
        let v = state(&o);
        if v[0]["restarts_used"] == 1 {
            break;
        }
        assert!(t0.elapsed() < T, "no group restart: {v}");
        std::thread::sleep(Duration::from_millis(500));
    }
    fs::remove_file(&wedge).unwrap();
    loop {
        let v = state(&o);
        if v[0]["state"] == "ready" && v[1]["state"] == "ready" {
            break;
        }
        assert!(t0.elapsed() < T, "not ready after the restart: {v}");
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("measured: wedge to ready again in {:.1} s", t0.elapsed().as_secs_f64());
    assert_eq!(o.pid("a"), ready_pid, "the unit (not sparkctl) restarted the entrypoint");
    // Wedged again: the budget (1) is spent, the head stays down and says why.
    fs::write(&wedge, "").unwrap();
    wait_down_with_the_budget_spent(&o, t0 + T * 2, String::new);
    let st = o.run("status", &[]);
    assert!(st.stdout.contains("spark-a (head): unit active, down"), "{}", st.stdout);
    assert!(st.stdout.contains("restarts used: 2 (budget 1)"), "{}", st.stdout);
    fs::remove_file(&wedge).unwrap();
    // The cause fixed, `up --reset-budget` clears the histories and restarts the group; that
    // restart (a requested stop of both nodes) is recorded on neither.
    let reset = o.run("up", &["--reset-budget"]);
    assert_ok(&reset);
    assert!(reset.stdout.contains("spark-b: restart history cleared") && reset.stdout.contains("group restarted on 2 node(s)"), "{}", reset.stdout);
    let v = state(&o);
    assert_eq!((v[0]["state"].as_str(), v[0]["restarts_used"].as_u64()), (Some("ready"), Some(0)), "{v}");
    assert_no_failures(&o);
    assert_ok(&o.run("down", &[]));
    assert_no_failures(&o);
    assert!(o.n.leftovers().is_empty(), "left running: {:?}", o.n.leftovers());
}

/// Stops short before any change: a node whose Docker daemon is down, then a node whose HF
/// cache (a real 1 MiB tmpfs) cannot hold the model (2 MiB).
#[test]
fn docker_down_and_a_full_disk_are_named_before_anything_changes() {
    let mut o = Ops::new("");
    o.n.start_sshd();
    fs::write(o.root("b", "/standin/docker-down"), "").unwrap();
    let down = o.run("up", &[]);
    assert_eq!(down.code, 2, "{}", down.stderr);
    assert!(down.stderr.contains("node `spark-b`: the Docker daemon does not answer") && down.stderr.contains("systemctl start docker"), "{}", down.stderr);
    fs::remove_file(o.root("b", "/standin/docker-down")).unwrap();
    let cache = o.root("b", "/var/lib/spark-cluster/huggingface");
    fs::create_dir_all(&cache).unwrap();
    // In the mount namespace of node b's sshd (`ip netns exec` gave it its own).
    let sshd = fs::read_to_string(o.n.path("sshd-b.pid")).unwrap().trim().to_owned();
    let nsenter = |args: &[&str]| Command::new("nsenter").args(["--target", &sshd, "--mount", "--"]).args(args).arg(&cache).output().unwrap();
    let mount = nsenter(&["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs"]);
    assert!(mount.status.success(), "mount: {}", String::from_utf8_lossy(&mount.stderr));
    let full = o.run("up", &[]);
    let umount = nsenter(&["umount"]);
    assert!(umount.status.success(), "umount: {}", String::from_utf8_lossy(&umount.stderr));
    assert_eq!(full.code, 2, "{}", full.stderr);
    assert!(full.stderr.contains("node `spark-b`: disk full: the model needs 1") && full.stderr.contains("has 1 MiB free"), "{}", full.stderr);
    assert!(!o.root("a", "/etc").exists() && !o.root("b", "/etc").exists(), "a node was changed");
}

/// Real vLLM 0.32 on CPU (`cargo xtask vllm`): `up` copies the tiny model into each node's HF
/// cache as `test-org/tiny-llama`, vLLM loads it from there offline, tensor parallel 2 across the
/// two nodes (native backend). Then the wedge exactly as seen on real nodes: the worker's vLLM
/// stopped with SIGSTOP leaves the head's `/health` at 200 while completions hang; the head's
/// liveness stops the group, the units restart it; stopped again with the budget spent, the
/// group stays down and `status` says why.
#[test]
fn up_runs_real_vllm_across_the_nodes_and_a_stopped_worker_restarts_the_group() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (vllm, tiny) = (repo.join("target/vllm/bin/vllm"), repo.join("target/tiny-llama"));
    assert!(vllm.exists() && tiny.join("config.json").exists(), "`cargo xtask vllm` installs real vLLM (CPU) and the tiny model");
    let mut o = Ops::new(
        "VLLM_CPU_KVCACHE_SPACE=1\nVLLM_CPU_OMP_THREADS_BIND=nobind\nVLLM_NO_USAGE_STATS=1\nDO_NOT_TRACK=1\n\
         SPARK_LIVENESS_INTERVAL=5\nSPARK_LIVENESS_TIMEOUT=10\nSPARK_LIVENESS_FAILURES=2\nSPARK_RESTART_BUDGET=1\nSPARK_RESTART_DELAY=1\nSPARK_READY_TIMEOUT=900\n",
    );
    for node in ["a", "b"] {
        let p = o.n.path(&format!("node-{node}/bin/vllm"));
        fs::remove_file(&p).unwrap();
        exe(&p, &format!("#!/bin/sh\nexec {} \"$@\"\n", vllm.canonicalize().unwrap().display()));
    }
    let toml = fs::read_to_string(o.n.path("cluster.toml")).unwrap().replace("test-org/tiny-model", "test-org/tiny-llama").replace(
        "args = [\"--tensor-parallel-size\", \"2\", \"--gpu-memory-utilization\", \"0.75\"]",
        "args = [\"--tensor-parallel-size\", \"2\", \"--gpu-memory-utilization\", \"0.75\", \"--served-model-name\", \"tiny\", \"--max-model-len\", \"256\", \"--enforce-eager\"]",
    );
    assert!(toml.contains("\"--served-model-name\", \"tiny\"") && toml.contains("test-org/tiny-llama"), "{toml}");
    fs::write(o.n.path("cluster.toml"), toml).unwrap();
    o.n.start_sshd();
    let tiny_s = tiny.display().to_string();
    let t0 = Instant::now();
    let up = o.run("up", &["--model-dir", &tiny_s, "--timeout", "900"]);
    assert_ok(&up);
    eprintln!("measured: `up` to ready with real vLLM (TP 2, native, two nodes) in {:.1} s", t0.elapsed().as_secs_f64());
    assert!(up.stdout.contains("http://10.88.0.1:8000/v1"), "{}", up.stdout);
    // The worker loaded the model from its own cache, copied by `up` over the rail.
    let snap = o.root("b", "/var/lib/spark-cluster/huggingface/hub/models--test-org--tiny-llama/snapshots/sparkctl");
    assert_eq!(sha(&snap.join("config.json")), sha(&tiny.join("config.json")));

    // The worker's vLLM processes (not its entrypoint, its restart loop or sshd).
    // vLLM renames its engine and worker processes (`VLLM::Worker_TP1…`, setproctitle): those
    // carry the work; the launcher's command line still says python.
    let stop_worker = |o: &Ops| {
        let keep = |cmd: &str| cmd.contains("sshd") || cmd.contains("spark-entrypoint") || cmd.starts_with("sh -c") || cmd.is_empty();
        let out = Command::new("ip").args(["netns", "pids", &o.n.b]).output().unwrap();
        let mut stopped = Vec::new();
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default();
            if !keep(&cmd) && (cmd.contains("python") || cmd.starts_with("VLLM")) {
                let _ = Command::new("kill").args(["-STOP", pid]).status();
                stopped.push(format!("{pid} {}", cmd.trim()));
            }
        }
        eprintln!("SIGSTOP to the worker's vLLM: {stopped:?}");
        assert!(stopped.iter().any(|c| c.contains("VLLM::Worker")), "no vLLM worker process in the worker's namespace: {stopped:?}");
    };
    let head_log = |o: &Ops| {
        let log = fs::read_to_string(o.root("a", "/var/log/spark-cluster.log")).unwrap_or_default();
        log.lines().filter(|l| l.contains(" entrypoint]")).rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    };
    stop_worker(&o);
    let t1 = Instant::now();
    // Bound: 2 failed looks 5 s apart, each up to 10 s, plus the stop: within 60 s.
    loop {
        let v = state(&o);
        if v[0]["restarts_used"] == 1 {
            break;
        }
        assert!(t1.elapsed() < Duration::from_secs(60), "the stopped worker did not restart the group: {v}\nhead:\n{}", head_log(&o));
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!("measured: SIGSTOP of the worker's vLLM to group stop in {:.1} s", t1.elapsed().as_secs_f64());
    loop {
        let v = state(&o);
        if v[0]["state"] == "ready" && v[1]["state"] == "ready" {
            break;
        }
        assert!(t1.elapsed() < Duration::from_secs(900), "not ready after the restart: {v}\nhead:\n{}", head_log(&o));
        std::thread::sleep(Duration::from_secs(2));
    }
    eprintln!("measured: SIGSTOP of the worker's vLLM to ready again (real vLLM) in {:.1} s", t1.elapsed().as_secs_f64());
    // Stopped again: the budget (1) is spent, the group stays down and says why.
    stop_worker(&o);
    wait_down_with_the_budget_spent(&o, Instant::now() + Duration::from_secs(120), || format!("\nhead:\n{}", head_log(&o)));
    assert_ok(&o.run("down", &[]));
    assert!(o.n.leftovers().is_empty(), "left running: {:?}", o.n.leftovers());
}

/// `bench nccl run` over ssh on the two namespace nodes. Refused before `up` installed the
/// node's files; after `up` (serving ready): serving is stopped on both nodes, the benchmark
/// container (the stand-in `docker run` above) runs the real `spark-entrypoint` in
/// `SPARK_MODE=nccl-bench` on both, whose rendezvous starts the real `nccl_bench.py` on gloo with
/// torch from the vLLM venv, `target/vllm` (the node's `python3` for that one script); the head's results come
/// back, the verdict is printed, nothing is left running. Then `--transport ib` on nodes without
/// RDMA: the entrypoints refuse, and the run ends on both nodes with the cause named.
#[test]
fn bench_nccl_run_stops_serving_runs_the_entrypoint_benchmark_on_both_nodes_and_leaves_nothing() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let torch = repo.join("target/vllm/bin/python3");
    assert!(repo.join("target/vllm/lib/python3.11/site-packages/torch/__init__.py").exists(), "no torch in `target/vllm`: `cargo xtask vllm` installs it");
    let script = repo.join("overlays/nccl-bench/rootfs/usr/local/lib/sparkctl/nccl_bench.py");
    let py = Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().unwrap();
    let py = String::from_utf8_lossy(&py.stdout).trim().to_owned();
    let mut o = Ops::new("");
    for node in ["a", "b"] {
        exe(
            &o.n.path(&format!("node-{node}/bin/python3")),
            &format!(
                "#!/bin/sh\nif [ \"$1\" = {} ]; then shift; exec {} {} \"$@\"; fi\nexec {py} \"$@\"\n",
                cluster::nccl::bench::SCRIPT,
                torch.display(),
                script.display()
            ),
        );
    }
    // A short sweep (cluster.toml keeps `SPARK_*` for sparkctl; the stand-in container reads it).
    for node in ["a", "b"] {
        fs::write(o.root(node, "/standin/bench.env"), "SPARK_BENCH_MIN_BYTES=64K\nSPARK_BENCH_ITERS=3\nSPARK_BENCH_WARMUP=1\n").unwrap();
    }
    o.n.start_sshd();
    let out = o.n.path("results");
    let out_s = out.display().to_string();
    let bench = |o: &Ops, extra: &[&str]| {
        let (cluster, cfg) = (o.n.s("cluster.toml"), o.n.s("ssh_config"));
        let mut args = vec!["bench", "nccl", "run", "--cluster", &cluster, "--ssh-config", &cfg];
        args.extend(["--max-bytes", "256K", "--min-busbw", "0.0001", "--out", &out_s, "--timeout", "120"]);
        args.extend(extra);
        let r = o.n.sparkctl(&args);
        eprintln!("$ sparkctl {}\n{}{}(exit {})", args.join(" "), r.stdout, r.stderr, r.code);
        for node in ["spark-a", "spark-b"] {
            eprintln!("--- {node}.log:\n{}", fs::read_to_string(out.join(format!("{node}.log"))).unwrap_or_default());
        }
        r
    };

    let before = bench(&o, &[]);
    assert_eq!(before.code, 2, "{}", before.stderr);
    assert!(before.stderr.contains("run `sparkctl up` first") && before.stderr.contains("node `spark-"), "{}", before.stderr);
    assert!(o.calls("a").is_empty() && o.calls("b").is_empty(), "a refused run changed a node");

    // Installed and started (not waited for: serving's readiness is the other tests' subject).
    let (cluster, cfg, model) = (o.n.s("cluster.toml"), o.n.s("ssh_config"), o.n.s("model"));
    assert_ok(&o.n.sparkctl(&["up", "--cluster", &cluster, "--ssh-config", &cfg, "--model-dir", &model, "--timeout", "0"]));
    assert!(!o.pid("a").is_empty() && !o.pid("b").is_empty(), "serving was not started");
    let t0 = Instant::now();
    let r = bench(&o, &[]);
    assert_ok(&r);
    eprintln!("measured: `bench nccl run` (two nodes, gloo, 64K..256K) in {:.1} s", t0.elapsed().as_secs_f64());
    for node in ["spark-a", "spark-b"] {
        assert!(r.stdout.contains(&format!("{node}: serving stopped (`spark-cluster` stopped and disabled")), "{}", r.stdout);
    }
    for want in ["all_gather", "all_reduce", "256 KiB", "no NCCL debug lines: the gloo backend", "VERDICT: PASS", "serving stays stopped"] {
        assert!(r.stdout.contains(want), "{want:?} missing:\n{}", r.stdout);
    }
    // The head's results, read back here, are the benchmark's own.
    let result: serde_json::Value = serde_json::from_str(&fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!((result["backend"].as_str(), result["world_size"].as_u64()), (Some("gloo"), Some(2)), "{result}");
    assert_eq!(result["results"].as_array().unwrap().len(), 2 * 3, "3 sizes (64K..256K) × 2 collectives");
    let table = fs::read_to_string(out.join("table.txt")).unwrap();
    let runs = cluster::nccl::table::parse(&table);
    assert_eq!(runs.iter().map(|r| r.rows.len()).sum::<usize>(), 6, "{table}");
    assert!(out.join("nccl-debug.log").exists());
    // Each node ran the script from the rendezvous, the head as master on its rail address.
    let (la, lb) = (fs::read_to_string(out.join("spark-a.log")).unwrap(), fs::read_to_string(out.join("spark-b.log")).unwrap());
    assert!(la.contains("nccl_bench.py --nnodes 2 --node-rank 0 --master-addr 10.88.0.1 --master-port 29501"), "{la}");
    assert!(lb.contains("--nnodes 2 --node-rank 1 --master-addr 10.88.0.1 --master-port 29501 --headless"), "{lb}");
    assert!(la.contains("nccl-bench: VERDICT: PASS"), "{la}");
    for node in ["a", "b"] {
        let calls = o.calls(node);
        assert!(calls.contains("systemctl stop spark-cluster"), "{calls}");
        assert!(calls.contains("docker run spark-nccl-bench") && calls.contains("docker rm -f spark-nccl-bench"), "{calls}");
    }
    assert!(o.n.leftovers().is_empty(), "left running: {:?}", o.n.leftovers());
    let st = o.run("status", &[]);
    assert!(st.stdout.contains("spark-a (head): unit inactive") && st.stdout.contains("spark-b (worker): unit inactive"), "{}", st.stdout);

    // IB asked of veths: the entrypoints refuse; the run stops on every node and says why.
    let ib = bench(&o, &["--transport", "ib"]);
    assert_eq!(ib.code, 2, "{}\n{}", ib.stdout, ib.stderr);
    // Whichever node refuses first ends the run: a worker, or the head itself.
    assert!(
        (ib.stderr.contains("the benchmark on `spark-") || ib.stderr.contains("the benchmark on the head `spark-a` failed"))
            && ib.stderr.contains("error: preflight failed"),
        "{}",
        ib.stderr
    );
    assert!(ib.stderr.contains("it was stopped on every node"), "{}", ib.stderr);
    assert!(o.n.leftovers().is_empty(), "left running: {:?}", o.n.leftovers());
}

/// `up --node` with some nodes: the token is the group's. A node left out that already has one
/// gives it to the chosen ones (a new token would split the group); one that cannot be asked
/// stops `up` before any change.
#[test]
fn up_for_some_nodes_takes_the_token_a_left_out_node_has() {
    let mut o = Ops::new("");
    o.n.start_sshd();
    // A cluster.toml without HF_HUB_OFFLINE=1: the copied model would not keep vLLM off the hub.
    let toml = fs::read_to_string(o.n.path("cluster.toml")).unwrap();
    fs::write(o.n.path("cluster.toml"), toml.replace("HF_HUB_OFFLINE = \"1\", ", "")).unwrap();
    let dry = o.run("up", &["--dry-run"]);
    assert_ok(&dry);
    assert!(dry.stderr.contains("`container.env` has no `HF_HUB_OFFLINE = \"1\"`") && dry.stderr.contains("add it to `[container] env`"), "{}", dry.stderr);
    fs::write(o.n.path("cluster.toml"), &toml).unwrap();
    assert!(!o.run("up", &["--dry-run"]).stderr.contains("HF_HUB_OFFLINE"), "warned although it is set");
    // Only the worker first (no node has a token yet): it gets a new one.
    assert_ok(&o.run("up", &["--node", "spark-b", "--timeout", "0"]));
    let (ta, tb) = (o.root("a", "/etc/spark-cluster/token"), o.root("b", "/etc/spark-cluster/token"));
    let token = fs::read_to_string(&tb).unwrap();
    assert_eq!(token.trim().len(), 64);
    assert!(!ta.exists(), "a node left out was changed");
    // Then only the head: it gets the worker's token, not a new one.
    let head = o.run("up", &["--node", "spark-a", "--timeout", "0"]);
    assert_ok(&head);
    assert!(head.stdout.contains("spark-a: token `/etc/spark-cluster/token`: write"), "{}", head.stdout);
    assert!(!head.stdout.contains(token.trim()) && !head.stderr.contains(token.trim()), "the token was printed");
    assert_eq!(fs::read_to_string(&ta).unwrap(), token, "the head got a token of its own: the group is split");
    assert_eq!(fs::read_to_string(&tb).unwrap(), token);
    // The head loses its token and the worker cannot be asked: refused, the head unchanged.
    fs::remove_file(&ta).unwrap();
    let env_a = fs::read_to_string(o.root("a", "/etc/spark-cluster/spark.env")).unwrap();
    o.n.ssh_config("ssh_config", "10.88.0.99", "id");
    let refused = o.run("up", &["--node", "spark-a", "--timeout", "0"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("no chosen node has the cluster token `/etc/spark-cluster/token` and `spark-b`, left out by `--node`, cannot be asked")
            && refused.stderr.contains("cannot reach `spark-b`"),
        "{}",
        refused.stderr
    );
    assert!(!ta.exists(), "a token was made while another node may hold the group's");
    assert_eq!(fs::read_to_string(o.root("a", "/etc/spark-cluster/spark.env")).unwrap(), env_a);
    o.n.ssh_config("ssh_config", "10.88.0.2", "id");
    assert_ok(&o.run("down", &[]));
    assert!(o.n.leftovers().is_empty(), "left running: {:?}", o.n.leftovers());
}

/// A login that is neither root nor allowed `sudo -n` (a real `sudo` asking for a password is
/// what `sudo -n` meets: the stand-ins answer as it does), then a node without Docker on its
/// `PATH` (a `PATH` of the host's tools without `docker`): each named, nothing changed.
#[test]
fn a_node_without_root_or_sudo_and_a_node_without_docker_are_named_before_anything_changes() {
    let mut o = Ops::new("");
    let bin = o.n.path("node-b/bin");
    exe(&bin.join("id"), "#!/bin/sh\nif [ \"$1\" = -u ]; then echo 1000; else exec /usr/bin/id \"$@\"; fi\n");
    exe(&bin.join("sudo"), "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n");
    o.n.start_sshd();
    let up = o.run("up", &[]);
    assert_eq!(up.code, 2, "{}", up.stderr);
    assert!(
        up.stderr.contains("node `spark-b`: the ssh user is not root and `sudo -n true` fails; log in as root") && up.stderr.contains("passwordless sudo"),
        "{}",
        up.stderr
    );
    assert!(!o.root("a", "/etc").exists() && !o.root("b", "/etc").exists(), "a node was changed");
    fs::remove_file(bin.join("id")).unwrap();
    fs::remove_file(bin.join("sudo")).unwrap();

    // Node b's PATH: its stand-ins but `docker`, then every tool of the host but `docker`.
    fs::remove_file(bin.join("docker")).unwrap();
    let tools = o.n.path("node-b/host-tools");
    fs::create_dir_all(&tools).unwrap();
    for dir in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"] {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name();
            if !name.to_string_lossy().starts_with("docker") && !tools.join(&name).exists() {
                std::os::unix::fs::symlink(e.path(), tools.join(&name)).unwrap();
            }
        }
    }
    let conf = o.n.path("sshd-b.conf");
    let text = fs::read_to_string(&conf).unwrap();
    let path_line = text.lines().find(|l| l.starts_with("SetEnv PATH=")).unwrap().to_owned();
    let root = path_line.split_whitespace().find(|w| w.starts_with("SPARKCTL_ROOT=")).unwrap();
    fs::write(&conf, text.replace(&path_line, &format!("SetEnv PATH={}:{} {root}", bin.display(), tools.display()))).unwrap();
    // sshd re-reads its configuration on SIGHUP (it re-executes itself).
    let sshd = fs::read_to_string(o.n.path("sshd-b.pid")).unwrap().trim().to_owned();
    assert!(Command::new("kill").args(["-HUP", &sshd]).status().unwrap().success());
    let t0 = Instant::now();
    let missing = loop {
        let r = o.run("up", &[]);
        if !r.stderr.contains("cannot reach") && !r.stderr.contains("cannot log in") || t0.elapsed() > Duration::from_secs(20) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("node `spark-b`: Docker is missing (`docker` is not on root's PATH); install Docker on the node"), "{}", missing.stderr);
    assert!(!o.root("a", "/etc").exists() && !o.root("b", "/etc").exists(), "a node was changed");
}
