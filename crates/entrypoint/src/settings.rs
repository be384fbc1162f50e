//! Every setting of `spark-entrypoint`, in ONE table: its environment variable, its flag, its
//! default and what it means. `--help` prints this table and `docs/entrypoint.md` and the README repeat it (a
//! test holds the two together). A flag wins over the environment, which wins over the default.
//!
//! The serve command comes after `--` (or as a JSON array in `SPARK_SERVE`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use cluster::model::{Backend, Role, Transport};

pub(crate) struct Setting {
    pub env: &'static str,
    pub flag: &'static str,
    /// `None`: required (or derived, as `help` says).
    pub default: Option<&'static str>,
    pub help: &'static str,
}

pub(crate) const SETTINGS: &[Setting] = &[
    Setting { env: "SPARK_ROLE", flag: "--role", default: None, help: "`head` or `worker` (required)" },
    Setting { env: "SPARK_NODE_NAME", flag: "--node-name", default: None, help: "this node's name; default: the hostname" },
    Setting {
        env: "SPARK_NODES",
        flag: "--nodes",
        default: None,
        help: "head only: every node's name, comma-separated, head first (required on the head); its length is the expected node count",
    },
    Setting {
        env: "SPARK_HEAD_ADDR",
        flag: "--head-addr",
        default: None,
        help: "the head's rail IPv4 address (required on workers); the head listens on its first rail's address",
    },
    Setting {
        env: "SPARK_RENDEZVOUS_PORT",
        flag: "--rendezvous-port",
        default: Some("29450"),
        help: "TCP port of the head's rendezvous (and heartbeat) listener",
    },
    Setting { env: "SPARK_RAILS", flag: "--rails", default: None, help: "rail netdevs, comma-separated, e.g. `enp1s0f1np1,enP2p1s0f1np1` (required)" },
    Setting { env: "SPARK_MTU", flag: "--mtu", default: Some("9000"), help: "MTU every rail must have" },
    Setting {
        env: "SPARK_TRANSPORT",
        flag: "--transport",
        default: Some("auto"),
        help: "`auto` (IB when RDMA checks pass, else Socket with a warning), `ib` (refuse without RDMA) or `socket`",
    },
    Setting {
        env: "SPARK_BACKEND",
        flag: "--backend",
        default: Some("native"),
        help: "`ray` (Ray cluster, serve on the head) or `native` (vLLM `--nnodes/--node-rank/--master-addr`, `--headless` workers)",
    },
    Setting {
        env: "SPARK_TOKEN",
        flag: "--token",
        default: None,
        help: "shared cluster secret authenticating rendezvous messages (HMAC-SHA256); this or `SPARK_TOKEN_FILE` is required",
    },
    Setting { env: "SPARK_TOKEN_FILE", flag: "--token-file", default: None, help: "file holding the cluster token (first line)" },
    Setting {
        env: "SPARK_IMAGE_DIGEST",
        flag: "--image-digest",
        default: Some("unknown"),
        help: "image digest, part of the fingerprint every node must share",
    },
    Setting {
        env: "SPARK_MODEL",
        flag: "--model",
        default: None,
        help: "model, part of the fingerprint; default: the argument after `serve` in the serve command",
    },
    Setting {
        env: "SPARK_SERVE",
        flag: "--serve",
        default: None,
        help: "serve command as a JSON array; default: the arguments after `--` (required on the head, and on workers with `native`)",
    },
    Setting { env: "SPARK_RAY_PORT", flag: "--ray-port", default: Some("6379"), help: "Ray GCS port on the head" },
    Setting {
        env: "SPARK_RAY_ARGS",
        flag: "--ray-args",
        default: Some(""),
        help: "extra `ray start` arguments, space-separated (e.g. `--num-cpus 4 --temp-dir /tmp/ray`)",
    },
    Setting {
        env: "SPARK_GPUS_PER_NODE",
        flag: "--gpus-per-node",
        default: Some("1"),
        help: "GPUs Ray must report per node before serving (CPUs are counted when Ray sees no GPU at all)",
    },
    Setting { env: "SPARK_MASTER_PORT", flag: "--master-port", default: Some("29501"), help: "`native` backend: torch.distributed master port on the head" },
    Setting {
        env: "SPARK_API_PORT",
        flag: "--api-port",
        default: Some("8000"),
        help: "port of the OpenAI-compatible API the readiness probe asks on 127.0.0.1",
    },
    Setting { env: "SPARK_JOIN_TIMEOUT", flag: "--join-timeout", default: Some("600"), help: "seconds to wait for every node to join the rendezvous" },
    Setting { env: "SPARK_CLUSTER_TIMEOUT", flag: "--cluster-timeout", default: Some("300"), help: "seconds to wait for Ray to report every node and GPU" },
    Setting {
        env: "SPARK_READY_TIMEOUT",
        flag: "--ready-timeout",
        default: Some("3600"),
        help: "seconds for the model to answer (`/health`, `/v1/models`, a 1-token completion)",
    },
    Setting {
        env: "SPARK_HEARTBEAT_TIMEOUT",
        flag: "--heartbeat-timeout",
        default: Some("5"),
        help: "seconds of silence after which a peer counts as dead (heartbeats every second)",
    },
    Setting {
        env: "SPARK_GRACE",
        flag: "--grace",
        default: Some("20"),
        help: "seconds children get between SIGTERM and SIGKILL on a requested stop (a signal); after a failure at most 5 s",
    },
    Setting {
        env: "SPARK_STATUS_FILE",
        flag: "--status-file",
        default: Some("/run/spark-entrypoint/status.json"),
        help: "JSON status (`state`: preflight, rendezvous, cluster, starting, ready, stopping) read by `spark-entrypoint healthcheck`",
    },
    Setting { env: "SPARK_ROOT", flag: "--root", default: Some("/"), help: "root prefix for the preflight reads of /sys, /proc, /dev, /etc" },
    Setting {
        env: "SPARK_LIVENESS_INTERVAL",
        flag: "--liveness-interval",
        default: Some("30"),
        help: "head, after ready: seconds between liveness looks (vLLM's token counter, else a 1-token completion); 0 turns them off",
    },
    Setting { env: "SPARK_LIVENESS_TIMEOUT", flag: "--liveness-timeout", default: Some("60"), help: "seconds the liveness 1-token completion may take" },
    Setting {
        env: "SPARK_LIVENESS_FAILURES",
        flag: "--liveness-failures",
        default: Some("3"),
        help: "consecutive failed liveness looks that mean a wedged engine and stop the group (exit 5)",
    },
    Setting {
        env: "SPARK_RESTART_BUDGET",
        flag: "--restart-budget",
        default: Some("3"),
        help: "group restarts allowed within `--restart-window` after failures; past it the node stays down and says why",
    },
    Setting { env: "SPARK_RESTART_WINDOW", flag: "--restart-window", default: Some("3600"), help: "seconds over which `--restart-budget` counts failures" },
    Setting {
        env: "SPARK_RESTART_DELAY",
        flag: "--restart-delay",
        default: Some("10"),
        help: "seconds a node waits before its first restart after a failure; doubles with each further failure in the window (at most 600)",
    },
    Setting {
        env: "SPARK_STATE_FILE",
        flag: "--state-file",
        default: Some("/var/lib/spark-entrypoint/restarts.json"),
        help: "restart history (failures with time and cause); on a host volume so it outlives the container",
    },
    Setting {
        env: "SPARK_PLAN",
        flag: "--plan",
        default: Some("enforce"),
        help: "head: memory fit and known-bad flags before launching (`sparkctl plan`): `enforce` (an error stops the launch), `warn` (logged, launch goes on) or `off`",
    },
    Setting {
        env: "SPARK_MODE",
        flag: "--mode",
        default: Some("serve"),
        help: "`serve`, or `nccl-bench`: the same preflight and rendezvous, then every node runs the bus-bandwidth benchmark (default command `python3 /usr/local/lib/sparkctl/nccl_bench.py`) with vLLM's native multi-node arguments instead of serving; the head prints the verdict",
    },
    Setting {
        env: "SPARK_BENCH_OUT",
        flag: "--bench-out",
        default: Some("/tmp/nccl-bench"),
        help: "`nccl-bench`: folder where rank 0 writes `table.txt`, `nccl-debug.log` and `result.json`",
    },
    Setting {
        env: "SPARK_BENCH_MIN_BUSBW",
        flag: "--bench-min-busbw",
        default: Some("21.875"),
        help: "`nccl-bench`: busbw (GB/s) each collective must reach at its largest size; the default is NVIDIA's bar for two Sparks",
    },
];

/// What the head does with the plan's errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlanMode {
    Enforce,
    Warn,
    Off,
}

/// What the node runs once the group formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Serve,
    NcclBench,
}

/// The parsed configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) role: Role,
    pub(crate) node: String,
    /// Every node, head first (head only; empty on workers).
    pub(crate) nodes: Vec<String>,
    pub(crate) head_addr: Option<Ipv4Addr>,
    pub(crate) rendezvous_port: u16,
    pub(crate) rails: Vec<String>,
    pub(crate) mtu: u32,
    pub(crate) transport: Transport,
    pub(crate) backend: Backend,
    pub(crate) token: String,
    pub(crate) image_digest: String,
    pub(crate) model: String,
    pub(crate) serve: Vec<String>,
    pub(crate) ray_port: u16,
    pub(crate) ray_args: Vec<String>,
    pub(crate) gpus_per_node: u32,
    pub(crate) master_port: u16,
    pub(crate) api_port: u16,
    pub(crate) join_timeout: Duration,
    pub(crate) cluster_timeout: Duration,
    pub(crate) ready_timeout: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) grace: Duration,
    pub(crate) status_file: PathBuf,
    pub(crate) root: PathBuf,
    pub(crate) liveness: crate::liveness::Policy,
    pub(crate) budget: crate::budget::Budget,
    pub(crate) state_file: PathBuf,
    pub(crate) plan: PlanMode,
    pub(crate) mode: Mode,
    pub(crate) bench_out: PathBuf,
    pub(crate) bench_min_busbw: f64,
}

fn setting(flag: &str) -> &'static Setting {
    SETTINGS.iter().find(|s| s.flag == flag).expect("flag is in SETTINGS")
}

/// Raw values: flags, then environment, then defaults.
struct Values {
    map: BTreeMap<&'static str, String>,
}

impl Values {
    /// The flags up to `--`, then the environment for every setting no flag gave; also the
    /// arguments after `--` (the serve command), when there is a `--`.
    fn read(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<(Values, Option<Vec<String>>), Error> {
        let mut map = BTreeMap::new();
        let mut serve_args: Option<Vec<String>> = None;
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a == "--" {
                serve_args = Some(args[i + 1..].to_vec());
                break;
            }
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (a.as_str(), None),
            };
            let Some(s) = SETTINGS.iter().find(|s| s.flag == flag) else {
                return Err(Error::UnknownArgument { arg: a.clone() });
            };
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i).cloned().ok_or_else(|| Error::MissingValue { flag: flag.to_owned() })?
                }
            };
            map.insert(s.flag, value);
            i += 1;
        }
        for s in SETTINGS {
            if !map.contains_key(s.flag) {
                if let Some(v) = env(s.env) {
                    map.insert(s.flag, v);
                }
            }
        }
        Ok((Values { map }, serve_args))
    }

    fn get(&self, flag: &str) -> Option<&str> {
        self.map.get(flag).map(String::as_str).filter(|s| !s.is_empty())
    }

    /// The value, or the table's default (`""` for a setting without one).
    fn value(&self, flag: &str) -> &str {
        self.get(flag).or(setting(flag).default).unwrap_or("")
    }

    fn path(&self, flag: &str) -> PathBuf {
        PathBuf::from(self.value(flag))
    }

    fn required(&self, flag: &str, fix: &str) -> Result<&str, Error> {
        let s = setting(flag);
        self.get(flag).ok_or_else(|| Error::Missing { env: s.env, flag: s.flag, fix: fix.to_owned() })
    }

    fn parse<T: std::str::FromStr>(&self, flag: &str, what: &str) -> Result<T, Error> {
        let v = self.value(flag);
        v.parse().map_err(|_| invalid(flag, v, what))
    }

    /// A TCP port to listen on or ask: 0 would mean "any port", which no peer could find.
    fn port(&self, flag: &str) -> Result<u16, Error> {
        match self.parse::<u16>(flag, "a TCP port (1-65535)")? {
            0 => Err(invalid(flag, "0", "a TCP port (1-65535); 0 would let the kernel pick one no other node knows")),
            p => Ok(p),
        }
    }

    fn seconds(&self, flag: &str) -> Result<Duration, Error> {
        let secs: f64 = self.parse(flag, "a number of seconds")?;
        if !(0.0..1e7).contains(&secs) {
            return Err(invalid(flag, &secs.to_string(), "a number of seconds between 0 and 10000000"));
        }
        Ok(Duration::from_secs_f64(secs))
    }
}

fn invalid(flag: &str, value: &str, expected: &str) -> Error {
    let s = setting(flag);
    Error::Invalid { env: s.env, flag: s.flag, value: value.to_owned(), expected: expected.to_owned() }
}

/// The rail MTU, in the range `cluster.toml` accepts.
fn mtu(v: &Values) -> Result<u32, Error> {
    let (min, max) = cluster::model::MTU_RANGE;
    let expected = format!("an MTU from {min} to {max} (9000 on RoCE rails)");
    let m: u32 = v.parse("--mtu", &expected)?;
    if !(u32::from(min)..=u32::from(max)).contains(&m) {
        return Err(invalid("--mtu", &m.to_string(), &expected));
    }
    Ok(m)
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Parses the arguments (without the program name) and the environment. The settings are read
/// in a fixed order, so bad input with several mistakes is always refused for the same one.
pub fn parse(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Error> {
    let (v, serve_args) = Values::read(args, env)?;
    let who = identity(&v)?;
    let rails = rails(&v)?;
    let transport = transport(&v)?;
    let backend = backend(&v)?;
    let token = token(&v)?;
    let mode = mode(&v)?;
    let serve = serve_command(&v, serve_args, mode, who.role, backend)?;
    let model = v.get("--model").map_or_else(|| served_model(&serve), str::to_owned);
    let plan = plan_mode(&v)?;
    let cfg = Config {
        role: who.role,
        node: who.node,
        nodes: who.nodes,
        head_addr: who.head_addr,
        rendezvous_port: v.port("--rendezvous-port")?,
        rails,
        mtu: mtu(&v)?,
        transport,
        backend,
        token,
        image_digest: v.value("--image-digest").to_owned(),
        model,
        serve,
        ray_port: v.port("--ray-port")?,
        ray_args: v.value("--ray-args").split_whitespace().map(str::to_owned).collect(),
        gpus_per_node: v.parse("--gpus-per-node", "a GPU count")?,
        master_port: v.port("--master-port")?,
        api_port: v.port("--api-port")?,
        join_timeout: v.seconds("--join-timeout")?,
        cluster_timeout: v.seconds("--cluster-timeout")?,
        ready_timeout: v.seconds("--ready-timeout")?,
        heartbeat_timeout: v.seconds("--heartbeat-timeout")?,
        grace: v.seconds("--grace")?,
        status_file: v.path("--status-file"),
        root: v.path("--root"),
        liveness: liveness_policy(&v)?,
        budget: restart_budget(&v)?,
        state_file: v.path("--state-file"),
        plan,
        mode,
        bench_out: v.path("--bench-out"),
        bench_min_busbw: bench_min_busbw(&v)?,
    };
    check_ports(&cfg)?;
    Ok(cfg)
}

/// Who this node is in the group.
struct Identity {
    role: Role,
    node: String,
    nodes: Vec<String>,
    head_addr: Option<Ipv4Addr>,
}

/// The role, the node's name, the node list (required on the head) and the head's address
/// (required on workers).
fn identity(v: &Values) -> Result<Identity, Error> {
    let role = match v.required("--role", "set it to `head` on one node and `worker` on the others")? {
        "head" => Role::Head,
        "worker" => Role::Worker,
        other => return Err(invalid("--role", other, "`head` or `worker`")),
    };
    let node = v.get("--node-name").map_or_else(hostname, str::to_owned);
    let nodes = v.get("--nodes").map(list).unwrap_or_default();
    if role == Role::Head {
        check_node_list(&nodes, &node)?;
    }
    let head_addr = match v.get("--head-addr") {
        Some(a) => Some(a.parse().map_err(|_| invalid("--head-addr", a, "an IPv4 address; give the head's first rail address"))?),
        None if role == Role::Worker => {
            return Err(Error::Missing { env: "SPARK_HEAD_ADDR", flag: "--head-addr", fix: "on a worker, give the head's first rail IPv4 address".into() })
        }
        None => None,
    };
    Ok(Identity { role, node, nodes, head_addr })
}

/// The head's node list: given, the head's own name first, no name twice.
fn check_node_list(nodes: &[String], head: &str) -> Result<(), Error> {
    if nodes.is_empty() {
        return Err(Error::Missing {
            env: "SPARK_NODES",
            flag: "--nodes",
            fix: "on the head, list every node's name, head first, e.g. `spark-a,spark-b`".into(),
        });
    }
    if nodes[0] != head {
        return Err(Error::HeadNotFirst { nodes: nodes.join(","), head: head.to_owned() });
    }
    if let Some(dup) = nodes.iter().enumerate().find(|(i, n)| nodes[..*i].contains(n)).map(|(_, n)| n) {
        return Err(Error::DuplicateNode { name: dup.clone() });
    }
    Ok(())
}

fn rails(v: &Values) -> Result<Vec<String>, Error> {
    let rails_s = v.required("--rails", "name the rail netdevs, e.g. `enp1s0f1np1,enP2p1s0f1np1`")?;
    let rails = list(rails_s);
    // The names become paths under /sys and /proc: `,,` or `../../../etc` must not get that far.
    if rails.is_empty() || rails_s.split(',').any(|r| r.trim().is_empty()) {
        return Err(invalid("--rails", rails_s, "netdev names separated by single commas, e.g. `enp1s0f1np1,enP2p1s0f1np1`"));
    }
    if let Some(e) = rails.iter().find_map(|r| cluster::sysfs::validate_netdev_name(r).err()) {
        return Err(invalid("--rails", rails_s, &format!("netdev names ({e})")));
    }
    Ok(rails)
}

fn transport(v: &Values) -> Result<Transport, Error> {
    let s = v.value("--transport");
    Transport::parse(s).ok_or_else(|| invalid("--transport", s, &format!("one of {}", Transport::ALLOWED)))
}

fn backend(v: &Values) -> Result<Backend, Error> {
    match v.value("--backend") {
        "ray" => Ok(Backend::Ray),
        "native" => Ok(Backend::Native),
        other => Err(invalid("--backend", other, "`ray` or `native`")),
    }
}

/// The cluster token: given, or the first line of the token file.
fn token(v: &Values) -> Result<String, Error> {
    let token = match (v.get("--token"), v.get("--token-file")) {
        (Some(t), _) => t.to_owned(),
        (None, Some(f)) => {
            let t =
                std::fs::read_to_string(f).map_err(|source| Error::TokenFile { path: f.to_owned(), source })?.lines().next().unwrap_or("").trim().to_owned();
            if t.is_empty() {
                return Err(Error::EmptyTokenFile { path: f.to_owned() });
            }
            t
        }
        (None, None) => String::new(),
    };
    if token.is_empty() {
        return Err(Error::Missing {
            env: "SPARK_TOKEN",
            flag: "--token",
            fix: "set it (or `SPARK_TOKEN_FILE`) to the same secret on every node, e.g. from `openssl rand -hex 32`".into(),
        });
    }
    Ok(token)
}

fn mode(v: &Values) -> Result<Mode, Error> {
    match v.value("--mode") {
        "serve" => Ok(Mode::Serve),
        cluster::nccl::bench::MODE => Ok(Mode::NcclBench),
        other => Err(invalid("--mode", other, "`serve` or `nccl-bench`")),
    }
}

/// The command to run: the arguments after `--`, else the benchmark's own in `nccl-bench` mode,
/// else `--serve`. The head and `native` workers must have one.
fn serve_command(v: &Values, serve_args: Option<Vec<String>>, mode: Mode, role: Role, backend: Backend) -> Result<Vec<String>, Error> {
    let serve = match (serve_args, v.get("--serve")) {
        (Some(a), _) if !a.is_empty() => a,
        // Every node's env file carries serving's command (`SPARK_SERVE`): the benchmark runs
        // its own unless one is given after `--`.
        _ if mode == Mode::NcclBench => cluster::nccl::bench::COMMAND.iter().map(|s| s.to_string()).collect(),
        (_, Some(json)) => serde_json::from_str::<Vec<String>>(json)
            .map_err(|e| invalid("--serve", json, &format!("a JSON array of strings ({e}); write e.g. `[\"vllm\",\"serve\",\"MODEL\"]`")))?,
        _ => Vec::new(),
    };
    if serve.is_empty() && (role == Role::Head || backend == Backend::Native) {
        return Err(Error::MissingServe);
    }
    Ok(serve)
}

/// The argument after `serve` in the serve command, if any.
fn served_model(serve: &[String]) -> String {
    serve.iter().position(|a| a == "serve").and_then(|i| serve.get(i + 1)).cloned().unwrap_or_default()
}

fn plan_mode(v: &Values) -> Result<PlanMode, Error> {
    match v.value("--plan") {
        "enforce" => Ok(PlanMode::Enforce),
        "warn" => Ok(PlanMode::Warn),
        "off" => Ok(PlanMode::Off),
        other => Err(invalid("--plan", other, "`enforce`, `warn` or `off`")),
    }
}

fn restart_budget(v: &Values) -> Result<crate::budget::Budget, Error> {
    Ok(crate::budget::Budget {
        restarts: v.parse("--restart-budget", "a count of restarts")?,
        window: v.seconds("--restart-window")?,
        delay: v.seconds("--restart-delay")?,
    })
}

fn bench_min_busbw(v: &Values) -> Result<f64, Error> {
    match v.parse::<f64>("--bench-min-busbw", "a bandwidth in GB/s")? {
        b if b.is_finite() && b >= 0.0 => Ok(b),
        b => Err(invalid("--bench-min-busbw", &b.to_string(), "a bandwidth in GB/s, 0 or more")),
    }
}

/// vLLM's API port when the serve command gives none.
const VLLM_DEFAULT_PORT: u16 = 8000;

/// Ports that would collide, and a readiness probe that would ask a port vLLM does not listen
/// on: both found at once, not after `--ready-timeout`. Only the ports this mode and backend
/// use count: `nccl-bench` serves no API and starts no Ray (its ranks meet on the master port).
fn check_ports(cfg: &Config) -> Result<(), Error> {
    let mut used = vec![("--rendezvous-port", cfg.rendezvous_port)];
    match (cfg.mode, cfg.backend) {
        (Mode::NcclBench, _) => used.push(("--master-port", cfg.master_port)),
        (Mode::Serve, Backend::Ray) => used.extend([("--api-port", cfg.api_port), ("--ray-port", cfg.ray_port)]),
        (Mode::Serve, Backend::Native) => used.extend([("--api-port", cfg.api_port), ("--master-port", cfg.master_port)]),
    }
    for (i, (flag, port)) in used.iter().enumerate() {
        if let Some((other, _)) = used[..i].iter().find(|(_, p)| p == port) {
            let (a, b) = (setting(other), setting(flag));
            return Err(Error::PortClash { first: a.env, first_flag: a.flag, second: b.env, second_flag: b.flag, port: *port });
        }
    }
    if cfg.role != Role::Head || cfg.mode == Mode::NcclBench {
        return Ok(());
    }
    let serve_port = cfg.serve.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--port") {
        Some("") => Some(cfg.serve.get(i + 1).cloned().unwrap_or_default()),
        Some(rest) => rest.strip_prefix('=').map(str::to_owned),
        None => None,
    });
    let (serve_port, given) = match serve_port {
        Some(p) => (p, true),
        None => (VLLM_DEFAULT_PORT.to_string(), false),
    };
    if serve_port != cfg.api_port.to_string() {
        return Err(Error::ApiPort { api_port: cfg.api_port, serve_port, given });
    }
    Ok(())
}

fn liveness_policy(v: &Values) -> Result<crate::liveness::Policy, Error> {
    let failures: u32 = v.parse("--liveness-failures", "a count of at least 1")?;
    if failures == 0 {
        return Err(invalid("--liveness-failures", "0", "a count of at least 1 (`--liveness-interval 0` turns liveness off)"));
    }
    let timeout = v.seconds("--liveness-timeout")?;
    if timeout.is_zero() {
        return Err(invalid("--liveness-timeout", "0", "a positive number of seconds"));
    }
    Ok(crate::liveness::Policy { interval: v.seconds("--liveness-interval")?, timeout, failures })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "node".into())
}

/// The `--help` text: usage and the settings table.
pub(crate) fn help() -> String {
    let mut out = String::from(
        "spark-entrypoint: PID 1 of a multi-node vLLM container (preflight, rendezvous, Ray or native launch, readiness, supervision)\n\n\
         usage: spark-entrypoint [FLAGS] -- SERVE_COMMAND...\n       spark-entrypoint healthcheck [--status-file FILE]\n       spark-entrypoint --version\n\n\
         settings (flag, environment variable, default):\n",
    );
    for s in SETTINGS {
        out.push_str(&format!(
            "  {:<20} {:<24} {:<10} {}\n",
            s.flag,
            s.env,
            s.default.map_or("-".to_owned(), |d| if d.is_empty() { "\"\"".into() } else { d.to_owned() }),
            s.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Config, Error> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse(&args, &|k| env.get(k).cloned())
    }

    const HEAD_ENV: &[(&str, &str)] =
        &[("SPARK_ROLE", "head"), ("SPARK_NODE_NAME", "a"), ("SPARK_NODES", "a,b"), ("SPARK_RAILS", "r0,r1"), ("SPARK_TOKEN", "t")];

    #[test]
    fn rails_that_are_not_netdev_names_are_refused() {
        for bad in ["../../../etc", ",,", "r0,,r1", "a/b", "..", "sixteen-chars-xx", "r0, ,r1"] {
            let e = parse_with(&["--rails", bad, "--", "vllm", "serve", "m"], HEAD_ENV).unwrap_err().to_string();
            assert!(e.contains("--rails"), "{bad:?}: {e}");
        }
        assert!(parse_with(&["--rails", "", "--", "vllm", "serve", "m"], HEAD_ENV).is_err());
        assert_eq!(parse_with(&["--rails", "enp1s0f1np1,enP2p1s0f1np1", "--", "vllm", "serve", "m"], HEAD_ENV).unwrap().rails.len(), 2);
    }

    #[test]
    fn mtu_outside_the_cluster_toml_range_is_refused() {
        for bad in ["0", "70000", "1499", "9979", "-1", "abc"] {
            let e = parse_with(&["--mtu", bad, "--", "vllm", "serve", "m"], HEAD_ENV).unwrap_err().to_string();
            assert!(e.contains("--mtu") && e.contains("1500 to 9978"), "{bad}: {e}");
        }
        for good in ["1500", "9000", "9978"] {
            assert_eq!(parse_with(&["--mtu", good, "--", "vllm", "serve", "m"], HEAD_ENV).unwrap().mtu.to_string(), good);
        }
    }

    #[test]
    fn flags_win_over_env_and_defaults_fill_the_rest() {
        let c = parse_with(&["--rendezvous-port=1234", "--", "vllm", "serve", "Qwen/Qwen3", "--tensor-parallel-size", "2"], HEAD_ENV).unwrap();
        assert_eq!(c.rendezvous_port, 1234);
        assert_eq!(c.ray_port, 6379);
        assert_eq!(c.mtu, 9000);
        assert_eq!(c.model, "Qwen/Qwen3");
        assert_eq!(c.rails, ["r0", "r1"]);
        assert_eq!(c.grace, Duration::from_secs(20));
        // Native is the default: the NGC bases ship without Ray.
        assert_eq!(c.backend, Backend::Native);
    }

    #[test]
    fn every_default_parses() {
        // A default that does not parse would only show on a node that relies on it.
        let c = parse_with(&["--", "vllm", "serve", "m"], HEAD_ENV).unwrap();
        assert_eq!(c.status_file, PathBuf::from("/run/spark-entrypoint/status.json"));
        assert_eq!(c.transport, Transport::Auto);
    }

    #[test]
    fn bad_input_names_the_variable_and_the_fix() {
        let err = |args: &[&str], env: &[(&str, &str)]| parse_with(args, env).unwrap_err().to_string();
        assert!(err(&["--", "x"], &[]).contains("`SPARK_ROLE`"));
        let mut e = HEAD_ENV.to_vec();
        e.retain(|(k, _)| *k != "SPARK_TOKEN");
        assert!(err(&["--", "x"], &e).contains("SPARK_TOKEN"));
        assert!(
            err(&["--transport", "rdma", "--", "x"], HEAD_ENV).contains("`SPARK_TRANSPORT` (`--transport`) = `rdma` is not one of `auto`, `ib` or `socket`")
        );
        assert!(err(&[], HEAD_ENV).contains("missing serve command"));
        assert!(err(&["--nodes", "b,a", "--", "x"], HEAD_ENV).contains("must start with the head's own name `a`"));
        assert!(err(&["--bogus", "--", "x"], HEAD_ENV).contains("unknown argument `--bogus`"));
        let worker = [("SPARK_ROLE", "worker"), ("SPARK_RAILS", "r0"), ("SPARK_TOKEN", "t")];
        assert!(err(&[], &worker).contains("SPARK_HEAD_ADDR"));
        assert!(err(&["--head-addr", "10.0.0.300"], &worker).contains("`10.0.0.300` is not an IPv4 address"));
        assert!(err(&["--grace", "soon", "--", "x"], HEAD_ENV).contains("`SPARK_GRACE` (`--grace`) = `soon`"));
    }

    #[test]
    fn ports_zero_and_clashing_ports_are_refused_naming_both() {
        let err = |args: &[&str], env: &[(&str, &str)]| parse_with(args, env).unwrap_err().to_string();
        for flag in ["--rendezvous-port", "--ray-port", "--master-port", "--api-port"] {
            let e = err(&[flag, "0", "--", "vllm", "serve", "m"], HEAD_ENV);
            assert!(e.contains(&format!("(`{flag}`) = `0` is not a TCP port (1-65535)")), "{flag}: {e}");
        }
        assert!(err(&["--api-port", "65536", "--", "x"], HEAD_ENV).contains("`65536` is not a TCP port"));
        let e = err(&["--api-port", "29450", "--", "vllm", "serve", "m", "--port", "29450"], HEAD_ENV);
        assert!(e.contains("`SPARK_RENDEZVOUS_PORT` (`--rendezvous-port`) and `SPARK_API_PORT` (`--api-port`) are both 29450"), "{e}");
        let e = err(&["--backend", "ray", "--ray-port", "29450", "--", "vllm", "serve", "m"], HEAD_ENV);
        assert!(e.contains("`--rendezvous-port`") && e.contains("`--ray-port`"), "{e}");
        // The master port only matters with the native backend (and the Ray port only with Ray).
        parse_with(&["--backend", "ray", "--master-port", "29450", "--", "vllm", "serve", "m"], HEAD_ENV).unwrap();
        parse_with(&["--ray-port", "29450", "--", "vllm", "serve", "m"], HEAD_ENV).unwrap();
        let e = err(&["--master-port", "8000", "--", "vllm", "serve", "m"], HEAD_ENV);
        assert!(e.contains("`--api-port`") && e.contains("`--master-port`") && e.contains("8000"), "{e}");
    }

    #[test]
    fn api_port_and_the_serve_commands_port_must_agree() {
        let err = |args: &[&str]| parse_with(args, HEAD_ENV).unwrap_err().to_string();
        let e = err(&["--api-port", "18080", "--", "vllm", "serve", "m"]);
        assert!(e.contains("no `--port`, so vLLM listens on 8000") && e.contains("18080") && e.contains("add `--port 18080`"), "{e}");
        let e = err(&["--api-port", "18080", "--", "vllm", "serve", "m", "--port", "9000"]);
        assert!(e.contains("`--port 9000`") && e.contains("18080"), "{e}");
        assert!(err(&["--", "vllm", "serve", "m", "--port=9000"]).contains("`--port 9000`"));
        assert_eq!(parse_with(&["--api-port", "18080", "--", "vllm", "serve", "m", "--port", "18080"], HEAD_ENV).unwrap().api_port, 18080);
        assert_eq!(parse_with(&["--api-port=9000", "--", "vllm", "serve", "m", "--port=9000"], HEAD_ENV).unwrap().api_port, 9000);
        parse_with(&["--", "vllm", "serve", "m"], HEAD_ENV).unwrap();
        // Workers serve no API: their serve command's port is not theirs to check.
        let worker = [("SPARK_ROLE", "worker"), ("SPARK_RAILS", "r0"), ("SPARK_TOKEN", "t"), ("SPARK_HEAD_ADDR", "10.0.0.1")];
        parse_with(&["--api-port", "18080", "--backend", "native", "--", "vllm", "serve", "m"], &worker).unwrap();
    }

    /// `nccl-bench` serves no API and starts no Ray: neither port is checked there, while the
    /// master port its ranks meet on still is.
    #[test]
    fn nccl_bench_mode_checks_only_the_ports_it_uses() {
        let head: Vec<(&str, &str)> = [HEAD_ENV, &[("SPARK_MODE", "nccl-bench")]].concat();
        let c = parse_with(&["--api-port", "18080"], &head).unwrap();
        assert_eq!((c.mode, c.api_port), (Mode::NcclBench, 18080));
        parse_with(&["--api-port", "18080", "--", "python3", "b.py", "--port", "9000"], &head).unwrap();
        parse_with(&["--api-port", "29450", "--ray-port", "29450"], &head).unwrap();
        let e = parse_with(&["--master-port", "29450"], &head).unwrap_err().to_string();
        assert!(e.contains("`--rendezvous-port`") && e.contains("`--master-port`") && e.contains("29450"), "{e}");
        // The same flags in serve mode are refused: the rule is skipped for the mode, not lost.
        assert!(parse_with(&["--api-port", "18080", "--", "vllm", "serve", "m"], HEAD_ENV).is_err());
    }

    #[test]
    fn an_empty_token_file_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        for content in ["", "\n", "   \nsecond-line\n"] {
            std::fs::write(&f, content).unwrap();
            let mut e: Vec<(&str, &str)> = HEAD_ENV.iter().copied().filter(|(k, _)| *k != "SPARK_TOKEN").collect();
            let path = f.display().to_string();
            e.push(("SPARK_TOKEN_FILE", &path));
            let msg = parse_with(&["--", "x"], &e).unwrap_err().to_string();
            assert!(msg.contains(&format!("`SPARK_TOKEN_FILE` `{path}` is empty")) && msg.contains("first line"), "{content:?}: {msg}");
        }
    }

    #[test]
    fn ray_worker_needs_no_serve_command_but_native_does() {
        let worker = [("SPARK_ROLE", "worker"), ("SPARK_RAILS", "r0"), ("SPARK_TOKEN", "t"), ("SPARK_HEAD_ADDR", "10.0.0.1")];
        assert!(parse_with(&["--backend", "ray"], &worker).is_ok());
        assert!(parse_with(&["--backend", "native"], &worker).is_err());
        let e = parse_with(&[], &worker).unwrap_err().to_string();
        assert!(e.contains("SPARK_SERVE"), "the default backend is native, whose workers need the serve command: {e}");
        let c = parse_with(&[], &[&worker[..], &[("SPARK_SERVE", "[\"vllm\",\"serve\",\"m\"]"), ("SPARK_BACKEND", "native")]].concat()).unwrap();
        assert_eq!(c.serve, ["vllm", "serve", "m"]);
    }

    #[test]
    fn nccl_bench_mode_runs_the_bundled_script_on_every_node() {
        let worker = [("SPARK_ROLE", "worker"), ("SPARK_RAILS", "r0"), ("SPARK_TOKEN", "t"), ("SPARK_HEAD_ADDR", "10.0.0.1"), ("SPARK_MODE", "nccl-bench")];
        let err = |args: &[&str], env: &[(&str, &str)]| parse_with(args, env).unwrap_err().to_string();
        let c = parse_with(&[], &worker).unwrap();
        assert_eq!((c.mode, c.serve.join(" ")), (Mode::NcclBench, "python3 /usr/local/lib/sparkctl/nccl_bench.py".to_owned()));
        assert_eq!((c.bench_out.display().to_string(), c.bench_min_busbw), ("/tmp/nccl-bench".to_owned(), 21.875));
        // The env file's serving command (every rendered node has one) does not replace it.
        let with_serve = [&worker[..], &[("SPARK_SERVE", "[\"vllm\",\"serve\",\"m\"]")]].concat();
        assert_eq!(parse_with(&[], &with_serve).unwrap().serve.join(" "), "python3 /usr/local/lib/sparkctl/nccl_bench.py");
        let c = parse_with(&["--bench-min-busbw", "0.5", "--", "python3", "b.py", "--max-bytes", "4M"], &worker).unwrap();
        assert_eq!((c.serve.len(), c.bench_min_busbw), (4, 0.5));
        assert!(err(&["--mode", "bench"], &worker).contains("`serve` or `nccl-bench`"));
        assert!(err(&["--bench-min-busbw", "-1"], &worker).contains("0 or more"));
        assert_eq!(parse_with(&["--", "vllm", "serve", "m"], HEAD_ENV).unwrap().mode, Mode::Serve);
    }

    /// `sparkctl render env` (cluster::plan) writes the container env from cluster.toml: the
    /// entrypoint must understand every SPARK_* variable it writes and come out configured as
    /// the description says.
    #[test]
    fn the_env_rendered_from_the_example_cluster_configures_every_node() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster.toml");
        let c = cluster::parse_file(&file).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        for node in &c.nodes {
            let mut env = cluster::plan::container_env(&c, node);
            for k in env.keys().filter(|k| k.starts_with("SPARK_")) {
                assert!(SETTINGS.iter().any(|s| s.env == k), "cluster renders `{k}`, which spark-entrypoint does not know");
            }
            env.insert("SPARK_TOKEN_FILE".into(), token.display().to_string());
            let cfg = parse(&[], &|k| env.get(k).cloned()).unwrap_or_else(|e| panic!("node `{}`: {e}", node.name));
            assert_eq!(cfg.node, node.name);
            assert_eq!(cfg.token, "s3cret");
            assert_eq!(cfg.rails, node.rails.iter().map(|r| r.interface.clone()).collect::<Vec<_>>());
            assert_eq!(cfg.head_addr, Some(c.head().rail_addr()));
            assert_eq!(cfg.model, c.serve.model);
            assert_eq!(&cfg.serve[..3], ["vllm", "serve", c.serve.model.as_str()]);
            assert_eq!(cfg.api_port, c.serve.port);
            assert_eq!(cfg.transport, c.transport);
            if cfg.role == Role::Head {
                assert_eq!(cfg.nodes, c.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn docs_list_every_setting_with_its_default() {
        for file in ["docs/entrypoint.md", "README.md"] {
            let doc = std::fs::read_to_string(format!("{}/../../{file}", env!("CARGO_MANIFEST_DIR"))).expect(file);
            for s in SETTINGS {
                let row = doc.lines().find(|l| l.starts_with(&format!("| `{}` |", s.env))).unwrap_or_else(|| panic!("{file} does not list `{}`", s.env));
                assert!(row.contains(&format!("`{}`", s.flag)), "{file}: row of {} lacks `{}`", s.env, s.flag);
                if let Some(d) = s.default.filter(|d| !d.is_empty()) {
                    assert!(row.contains(&format!("`{d}`")), "{file}: row of {} lacks its default `{d}`", s.env);
                }
            }
        }
    }
}
