//! Two nodes on one machine: two network namespaces joined by two veth pairs (the two rails,
//! each on its own /24, MTU 9000, IPv6 off), and entrypoint processes started inside them.
//! Names are unique per test so tests run in parallel; `Drop` kills whatever is left in the
//! namespaces and deletes them, also when a test fails.

// Most of it serves the system tests: unused when they are compiled out.
#![cfg_attr(not(feature = "system-tests"), allow(dead_code))]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use test_support::netns;
use test_support::sysfs::RoceRoot;

pub const BIN: &str = env!("CARGO_BIN_EXE_spark-entrypoint");
pub const HEAD_IP: &str = "10.77.0.1";
pub const WORKER_IP: &str = "10.77.0.2";

/// How long a node may take to reach a line of its log or to exit (stand-in serve).
pub const T: Duration = Duration::from_secs(30);

static COUNTER: AtomicU32 = AtomicU32::new(0);
static HEAVY: Mutex<()> = Mutex::new(());

/// Ray clusters and real vLLM groups each take most of the 2 CI cores (and GBs of memory) while
/// they form: one at a time.
pub fn heavy_lock() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The stand-in `vllm serve` (`tests/standin_vllm.py`): only where real vLLM cannot do what a
/// test needs on demand (see each test), or cannot run at all (vLLM's CPU platform refuses Ray).
pub fn standin() -> String {
    format!("{}/tests/standin_vllm.py", env!("CARGO_MANIFEST_DIR"))
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(std::path::Path::parent).expect("the entrypoint crate is in the workspace").to_owned()
}

/// Real vLLM on CPU: the `vllm` command of the venv `cargo xtask vllm` makes (`target/vllm`).
pub fn real_vllm() -> String {
    let p = repo().join("target/vllm/bin/vllm");
    assert!(p.exists(), "`{}` is missing: `cargo xtask vllm` installs real vLLM (CPU) and the tiny model", p.display());
    p.display().to_string()
}

/// The tiny Llama `cargo xtask vllm` writes (`xtask/py/tiny_model.py`), served as `tiny`.
pub fn tiny_model() -> String {
    let p = repo().join("target/tiny-llama");
    assert!(p.join("config.json").exists(), "`{}` is missing: `cargo xtask vllm` writes the tiny model", p.display());
    p.display().to_string()
}

/// `-- vllm serve TINY_MODEL …` with real vLLM: the tiny model as `tiny`, eager mode (no
/// compilation: minutes on 2 cores for nothing a test looks at), a short context.
pub fn real_serve(extra: &[&str]) -> Vec<String> {
    let mut v = vec!["--".to_owned(), real_vllm(), "serve".into(), tiny_model()];
    v.extend(["--served-model-name", "tiny", "--max-model-len", "256", "--enforce-eager"].map(String::from));
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// What real vLLM needs on a small CPU test machine: 1 GiB of KV cache per node (the default
/// takes a share of the RAM), no thread pinning (both nodes share 2 cores), nothing sent out
/// (usage statistics) and nothing looked up on a model hub.
pub const REAL_VLLM_ENV: &[(&str, &str)] =
    &[("VLLM_CPU_KVCACHE_SPACE", "1"), ("VLLM_CPU_OMP_THREADS_BIND", "nobind"), ("VLLM_NO_USAGE_STATS", "1"), ("DO_NOT_TRACK", "1"), ("HF_HUB_OFFLINE", "1")];

/// Two namespaces `<id>a` (head) and `<id>b` (worker), rails `rail0`/`rail1` in each.
pub struct Pair {
    pub head: String,
    pub worker: String,
    pub dir: tempfile::TempDir,
}

impl Pair {
    pub fn new() -> Pair {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = tempfile::tempdir().unwrap();
        let (head, worker) = netns::make_pair(&format!("ep{}x{n}", std::process::id() % 100_000), ["10.77.0", "10.77.1"]);
        Pair { head, worker, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every pid in namespace `ns`.
    pub fn pids(ns: &str) -> Vec<u32> {
        netns::pids(ns)
    }

    /// Kills every process of `ns` (a node's power cut).
    pub fn kill_all(ns: &str) {
        for p in Pair::pids(ns) {
            let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        netns::remove(&[&self.head, &self.worker]);
    }
}

/// An entrypoint running in a namespace, its output in a log file.
pub struct Node {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Node {
    /// Starts `spark-entrypoint` in `ns` with the given environment and arguments.
    pub fn start(ns: &str, name: &str, log: PathBuf, env: &[(&str, String)], args: &[String]) -> Node {
        let out = fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, BIN])
            .args(args)
            .env("SPARK_NODE_NAME", name)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting ip netns exec spark-entrypoint");
        Node { child, log, name: name.to_owned() }
    }

    pub fn pid(&self) -> u32 {
        // `ip netns exec` execs the program: the child is the entrypoint itself.
        self.child.id()
    }

    pub fn text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; panics with the log otherwise.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.text();
            if t.contains(needle) {
                return t;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("`{}` exited ({st}) before logging {needle:?}:\n{t}", self.name);
            }
            if Instant::now() >= deadline {
                panic!("`{}` did not log {needle:?} within {timeout:?}:\n{t}", self.name);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the exit; returns the code and how long it took.
    pub fn wait_exit(&mut self, timeout: Duration) -> (i32, Duration) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                use std::os::unix::process::ExitStatusExt;
                return (st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)), start.elapsed());
            }
            if start.elapsed() >= timeout {
                panic!("`{}` still running after {timeout:?}:\n{}", self.name, self.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid() as i32), sig).expect("signalling the entrypoint");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The common environment of a test node.
pub fn env(pair: &Pair, role: &str, token: &str, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let name = if role == "head" { "a" } else { "b" };
    let mut v: Vec<(&'static str, String)> = vec![
        ("SPARK_ROLE", role.into()),
        ("SPARK_RAILS", "rail0,rail1".into()),
        ("SPARK_TOKEN", token.into()),
        ("SPARK_HEAD_ADDR", HEAD_IP.into()),
        ("SPARK_STATUS_FILE", pair.path(&format!("status-{name}.json")).display().to_string()),
        ("VLLM_CONFIG_ROOT", pair.path(&format!("vllm-{name}")).display().to_string()),
        ("STANDIN_RECORD", pair.path(&format!("record-{name}.json")).display().to_string()),
        // The restart history stays in the test's folder, never in the machine's /var/lib.
        ("SPARK_STATE_FILE", pair.path(&format!("restarts-{name}.json")).display().to_string()),
        ("STANDIN_LOAD_SECONDS", "1".into()),
        // The stand-in serve commands are not real vLLM configurations (no model files, no
        // tensor-parallel size): the launch check logs its findings and goes on. `plan.rs` tests
        // `enforce`.
        ("SPARK_PLAN", "warn".into()),
        // Ray: one CPU and a small object store per node, its own temp dir (both nodes share /tmp).
        ("SPARK_RAY_ARGS", format!("--num-cpus 1 --object-store-memory 80000000 --temp-dir {}", pair.path(&format!("ray-{name}")).display())),
    ];
    // Ray keeps state under `~/.ray` (e.g. an `auth_token` that turns token authentication on):
    // each node gets its own home. A pyenv shim for `ray` still needs the real pyenv root.
    let real_home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let pyenv = std::env::var("PYENV_ROOT").unwrap_or_else(|_| format!("{real_home}/.pyenv"));
    if Path::new(&pyenv).is_dir() {
        v.push(("PYENV_ROOT", pyenv));
    }
    v.push(("HOME", pair.path(&format!("home-{name}")).display().to_string()));
    if role == "head" {
        v.push(("SPARK_NODES", "a,b".into()));
    }
    for (k, val) in extra {
        let k: &'static str = Box::leak(k.to_string().into_boxed_str());
        v.retain(|(kk, _)| *kk != k);
        v.push((k, val.to_string()));
    }
    v
}

/// `-- python3 standin_vllm.py serve MODEL ARGS…`
pub fn serve(model: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["--".to_owned(), "python3".into(), standin(), "serve".into(), model.into()];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// A head and a worker of `pair` serving the stand-in `m` with token `t` and `extra` on both
/// (logs `a{run}.log`, `b{run}.log`), started, not waited for.
pub fn start_group(pair: &Pair, extra: &[(&str, &str)], run: &str) -> (Node, Node) {
    let head = Node::start(&pair.head, "a", pair.path(&format!("a{run}.log")), &env(pair, "head", "t", extra), &serve("m", &[]));
    let worker = Node::start(&pair.worker, "b", pair.path(&format!("b{run}.log")), &env(pair, "worker", "t", extra), &serve("m", &[]));
    (head, worker)
}

/// [`start_group`], then waits until the head is READY and the worker serves headless rank 1.
pub fn formed_group(pair: &Pair, extra: &[(&str, &str)], run: &str) -> (Node, Node) {
    let (mut head, mut worker) = start_group(pair, extra, run);
    head.wait_for("READY", T);
    worker.wait_for("headless rank 1", T);
    (head, worker)
}

pub fn read_json(p: &Path) -> serde_json::Value {
    let s = fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    serde_json::from_str(&s).unwrap()
}

/// The environment of a process, from `/proc/<pid>/environ`.
pub fn environ(pid: u32) -> Vec<(String, String)> {
    fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter_map(|kv| String::from_utf8_lossy(kv).split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

pub fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline")).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default()
}

/// A root prefix whose `/sys`, `/proc` and `/dev` show the namespace's rails as healthy RoCE rails
/// (the CX-7 twins' RDMA names, ACTIVE ports, RoCE v2 GIDs for the real addresses, memlock
/// unlimited): the RDMA that veth pairs cannot have, so the IB branch runs on real processes.
pub fn rdma_root(dir: &Path, host: u8) -> PathBuf {
    let mut root = RoceRoot::new(&dir.join(format!("rdma-root-{host}")));
    for (i, dev) in ["rocep1s0f1", "roceP2p1s0f1"].iter().enumerate() {
        root.rail(&format!("rail{i}"), dev, 9000, std::net::Ipv4Addr::new(10, 77, i as u8, host));
    }
    root.finish()
}

pub fn fixture(rel: &str) -> String {
    format!("{}/../../fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))
}
