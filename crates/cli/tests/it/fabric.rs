//! The fabric commands on real parts: two network-namespace "nodes" joined by two veth rails
//! (MTU 9000, IPv6 off), a real OpenSSH server in each (host and user keys made here), and
//! sparkctl run inside the first node. `doctor` reads the namespace's real /sys and /proc,
//! pings across the rails and repairs a broken rail; `bench rdma` drives perftest stand-ins
//! (this kernel has no RDMA) that print real outputs, over ssh. Names are unique per test and
//! everything is killed and deleted on drop; each test checks nothing it started is left.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use test_support::netns::{self, sh};

static COUNTER: AtomicU32 = AtomicU32::new(0);
const SPARKCTL: &str = env!("CARGO_BIN_EXE_sparkctl");

fn write(p: &Path, content: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Two nodes `spark-a` (namespace `<id>a`, where sparkctl runs) and `spark-b`, rails `rail0`
/// (10.88.0.0/24) and `rail1` (10.88.1.0/24), an sshd on port 2222 in each.
pub struct Nodes {
    pub a: String,
    pub b: String,
    pub dir: tempfile::TempDir,
    sshd: Vec<Child>,
}

impl Nodes {
    pub fn new() -> Nodes {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = netns::make_pair(&format!("fb{}x{n}", std::process::id() % 100_000), ["10.88.0", "10.88.1"]);
        let mut nodes = Nodes { a, b, dir, sshd: Vec::new() };
        nodes.keys_and_config();
        nodes
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn s(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    /// Host keys, a user key, the client's ssh config and known hosts, the cluster.toml, each
    /// node's perftest stand-ins and a sysfs tree with the CX-7 facts veths lack.
    fn keys_and_config(&mut self) {
        for key in ["host-a", "host-b", "id", "stranger"] {
            sh(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", &self.s(key)]);
        }
        fs::copy(self.path("id.pub"), self.path("authorized_keys")).unwrap();
        let pubkey = |k: &str| fs::read_to_string(self.path(&format!("{k}.pub"))).unwrap();
        write(&self.path("known_hosts"), &format!("[127.0.0.1]:2222 {}[10.88.0.2]:2222 {}", pubkey("host-a"), pubkey("host-b")));
        self.ssh_config("ssh_config", "10.88.0.2", "id");
        let cluster = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster.toml")).unwrap();
        let cluster = cluster
            .replace("spark-2", "spark-a")
            .replace("spark-3", "spark-b")
            .replace("enp1s0f1np1", "rail0")
            .replace("enP2p1s0f1np1", "rail1")
            .replace("transport = \"ib\"", "transport = \"auto\"")
            .replace("192.168.100.10", "10.88.0.1")
            .replace("192.168.101.10", "10.88.1.1")
            .replace("192.168.100.11", "10.88.0.2")
            .replace("192.168.101.11", "10.88.1.2");
        write(&self.path("cluster.toml"), &cluster);
        for (rail, dev, pci) in [("rail0", "rocep1s0f1", "0000:01:00.1"), ("rail1", "roceP2p1s0f1", "0002:01:00.1")] {
            fs::create_dir_all(self.path(&format!("sysroot/sys/class/net/{rail}/device/infiniband/{dev}"))).unwrap();
            write(&self.path(&format!("sysroot/sys/class/net/{rail}/device/uevent")), &format!("DRIVER=mlx5_core\nPCI_SLOT_NAME={pci}\n"));
            write(&self.path(&format!("sysroot/sys/class/infiniband/{dev}/ports/1/rate")), "200 Gb/sec (4X HDR)\n");
        }
        let standin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standin_perftest.py");
        for node in ["a", "b"] {
            for tool in ["ib_write_bw", "ib_write_lat"] {
                let p = self.path(&format!("node-{node}/bin/{tool}"));
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::copy(&standin, &p).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
            }
            self.standin(node, &[], &[]);
        }
    }

    /// The client's ssh config: `spark-b` reached at `b_addr`, with the key `key`.
    pub fn ssh_config(&self, file: &str, b_addr: &str, key: &str) {
        let cfg = format!(
            "Host spark-a\n  HostName 127.0.0.1\nHost spark-b\n  HostName {b_addr}\nHost *\n  Port 2222\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n  ConnectTimeout 3\n",
            self.s(key),
            self.s("known_hosts")
        );
        write(&self.path(file), &cfg);
    }

    /// Node `node`'s stand-in state: `degraded` devices, flags left out of `--help`.
    pub fn standin(&self, node: &str, degraded: &[&str], help_drop: &[&str]) {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let synthetic = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/synthetic");
        let modes: serde_json::Map<String, serde_json::Value> = degraded.iter().map(|d| (d.to_string(), "degraded".into())).collect();
        let cfg = serde_json::json!({
            "fixtures": fixtures, "synthetic": synthetic, "devices": ["rocep1s0f1", "roceP2p1s0f1"], "modes": modes, "help_drop": help_drop,
        });
        write(&self.path(&format!("node-{node}/standin.json")), &cfg.to_string());
    }

    /// Starts sshd in both namespaces and waits until both accept the user key. Each node's
    /// sessions get its own `PATH` (`node-X/bin` first) and `SPARKCTL_ROOT` (`node-X/root`: the
    /// namespaces share one file system, and `up` installs a node's files under it).
    pub fn start_sshd(&mut self) {
        fs::create_dir_all("/run/sshd").unwrap();
        for (node, ns) in [("a", self.a.clone()), ("b", self.b.clone())] {
            let cfg = format!(
                "Port 2222\nListenAddress 0.0.0.0\nHostKey {hk}\nPidFile {dir}/sshd-{node}.pid\nAuthorizedKeysFile {dir}/authorized_keys\nUsePAM no\nStrictModes no\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPrintMotd no\nLogLevel ERROR\n\
                 SetEnv PATH={dir}/node-{node}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin SPARKCTL_ROOT={dir}/node-{node}/root\n",
                hk = self.s(&format!("host-{node}")),
                dir = self.dir.path().display(),
            );
            write(&self.path(&format!("sshd-{node}.conf")), &cfg);
            let log = fs::File::create(self.path(&format!("sshd-{node}.log"))).unwrap();
            let child = Command::new("ip")
                .args(["netns", "exec", &ns, "/usr/sbin/sshd", "-D", "-e", "-f", &self.s(&format!("sshd-{node}.conf"))])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("sshd (`cargo xtask deps` installs openssh-server)");
            self.sshd.push(child);
        }
        let start = Instant::now();
        for host in ["spark-a", "spark-b"] {
            loop {
                let ok = Command::new("ip")
                    .args(["netns", "exec", &self.a, "ssh", "-F", &self.s("ssh_config"), "-o", "BatchMode=yes", host, "true"])
                    .output()
                    .unwrap();
                if ok.status.success() {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(20), "sshd on {host} never answered: {}", String::from_utf8_lossy(&ok.stderr));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Runs sparkctl inside node a.
    pub fn sparkctl(&self, args: &[&str]) -> Run {
        let out = Command::new("ip").args(["netns", "exec", &self.a, SPARKCTL]).args(args).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Command lines of the processes in both namespaces other than the sshd listeners.
    pub fn leftovers_now(&self) -> Vec<String> {
        let listeners: Vec<u32> = self.sshd.iter().map(Child::id).collect();
        let mut left = Vec::new();
        for ns in [&self.a, &self.b] {
            let out = Command::new("ip").args(["netns", "pids", ns]).output().unwrap();
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|s| s.parse::<u32>().ok()) {
                let cmd = fs::read(format!("/proc/{pid}/cmdline")).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default();
                if listeners.contains(&pid) || cmd.starts_with("/usr/sbin/sshd -D") || cmd.is_empty() {
                    continue;
                }
                left.push(format!("{ns}: {pid} {cmd}"));
            }
        }
        left
    }

    /// [`Nodes::leftovers_now`] after giving ending sessions a moment.
    pub fn leftovers(&self) -> Vec<String> {
        let start = Instant::now();
        loop {
            let left = self.leftovers_now();
            if left.is_empty() || start.elapsed() > Duration::from_secs(5) {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.sshd {
            let _ = c.kill();
            let _ = c.wait();
        }
        netns::remove(&[&self.a, &self.b]);
    }
}

fn line<'a>(text: &'a str, starts: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(starts)).unwrap_or_else(|| panic!("no line starting with {starts:?} in:\n{text}"))
}

#[test]
fn doctor_on_veth_rails_finds_the_broken_rail_pings_both_ways_and_fix_repairs_it() {
    let mut n = Nodes::new();
    n.start_sshd();
    // Break rail1 of node a: MTU 1500, IPv6 on.
    sh(&["ip", "-n", &n.a, "link", "set", "rail1", "mtu", "1500"]);
    sh(&["ip", "netns", "exec", &n.a, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/rail1/disable_ipv6"]);
    let cluster = n.s("cluster.toml");
    let cfg = n.s("ssh_config");
    let r = n.sparkctl(&["doctor", "--node", "spark-a", "--cluster", &cluster, "--peers", "--ssh-config", &cfg]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let t = &r.stdout;
    assert!(line(t, "FAIL  mtu            rail1").contains("1500 (expected 9000); fix: ip link set dev rail1 mtu 9000"), "{t}");
    assert!(line(t, "FAIL  ipv6-off       rail1").contains("fix: sysctl -w net.ipv6.conf.rail1.disable_ipv6=1"), "{t}");
    assert!(line(t, "PASS  mtu            rail0").ends_with("9000"), "{t}");
    assert!(line(t, "PASS  ipv4           rail0").contains("10.88.0.1/24"), "{t}");
    assert!(line(t, "PASS  carrier        rail0").contains('1'), "{t}");
    assert!(line(t, "PASS  declared-ip    rail1").contains("10.88.1.1/24"), "{t}");
    assert!(line(t, "PASS  ping           rail0 -> spark-b").contains("3/3 answered"), "{t}");
    assert!(line(t, "PASS  ping           rail0 <- spark-b").contains("3/3 answered"), "{t}");
    assert!(line(t, "FAIL  ping           rail1 -> spark-b").contains("this interface's MTU is 1500"), "{t}");
    assert!(line(t, "FAIL  ping           rail1 <- spark-b").contains("0/3 answered"), "{t}");
    // veths are no CX-7: the speed check says so instead of passing.
    assert!(line(t, "FAIL  speed          rail0").contains("(expected 200000Mb/s)"), "{t}");
    assert!(line(t, "WARN  rdma-device    rail0").contains("none behind the netdev"), "{t}");

    let r = n.sparkctl(&["doctor", "--node", "spark-a", "--cluster", &cluster, "--fix", "--peers", "--ssh-config", &cfg]);
    let t = &r.stdout;
    assert!(t.contains("fix: ip link set dev rail1 mtu 9000\n"), "{t}");
    assert!(t.contains("applied: ip link set dev rail1 mtu 9000 (undo: ip link set dev rail1 mtu 1500)"), "{t}");
    assert!(t.contains("applied: sysctl -w net.ipv6.conf.rail1.disable_ipv6=1 (undo: sysctl -w net.ipv6.conf.rail1.disable_ipv6=0)"), "{t}");
    assert!(line(t, "PASS  mtu            rail1").ends_with("9000"), "{t}");
    assert!(line(t, "PASS  ipv6-off       rail1").contains("disabled"), "{t}");
    assert!(line(t, "PASS  arp-ignore     rail1").ends_with('1'), "{t}");
    assert!(line(t, "PASS  ping           rail1 -> spark-b").contains("3/3 answered"), "{t}");
    assert!(line(t, "PASS  ping           rail1 <- spark-b").contains("3/3 answered"), "{t}");
    // The kernel agrees: the repair is real.
    let mtu = sh(&["ip", "netns", "exec", &n.a, "cat", "/sys/class/net/rail1/mtu"]);
    assert_eq!(String::from_utf8_lossy(&mtu.stdout).trim(), "9000");

    let j = n.sparkctl(&["doctor", "--node", "spark-a", "--cluster", &cluster, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap_or_else(|e| panic!("{e}: {}", j.stdout));
    let mtu = doc["checks"].as_array().unwrap().iter().find(|c| c["check"] == "mtu" && c["subject"] == "rail1").unwrap();
    assert_eq!((mtu["status"].as_str(), mtu["measured"].as_str(), mtu["expected"].as_str()), (Some("PASS"), Some("9000"), Some("9000")));
    assert_eq!(doc["worst"], "FAIL");
    assert_eq!(j.code, 3);

    // A peer ssh cannot reach: the way back is a FAIL line naming why, the way out still runs.
    n.ssh_config("unreachable", "10.88.0.99", "id");
    let r = n.sparkctl(&["doctor", "--node", "spark-a", "--cluster", &cluster, "--peers", "--ssh-config", &n.s("unreachable")]);
    assert!(line(&r.stdout, "FAIL  ping           rail0 <- spark-b").contains("not run: cannot reach `spark-b` over ssh"), "{}", r.stdout);
    assert!(line(&r.stdout, "PASS  ping           rail0 -> spark-b").contains("3/3 answered"), "{}", r.stdout);
    assert!(n.leftovers().is_empty(), "{:?}", n.leftovers());
}

#[test]
fn bench_rdma_over_ssh_measures_each_rail_and_all_rails_and_stops_its_servers() {
    let mut n = Nodes::new();
    n.start_sshd();
    let (cluster, cfg, root) = (n.s("cluster.toml"), n.s("ssh_config"), n.s("sysroot"));
    let base = ["bench", "rdma", "--cluster", &cluster, "--ssh-config", &cfg, "--remote-root", &root, "--duration", "1"];
    let r = n.sparkctl(&[&base[..], &["--lat"]].concat());
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let t = &r.stdout;
    assert!(t.contains("ib_write_bw --help"), "the flags are checked first: {t}");
    assert!(t.contains("ib_write_bw --ib-dev rocep1s0f1 --port 18515 --rdma_cm --CPU-freq --report_gbits --qp 4 --duration 1 10.88.0.2"), "{t}");
    assert!(t.contains("ssh -F"), "{t}");
    let rail0 = line(t, "PASS  alone     rail 0");
    assert!(rail0.contains("111.71") && rail0.contains("75.00"), "{rail0}");
    assert!(line(t, "PASS  alone     rail 1").contains("111.71"), "{t}");
    let agg = line(t, "PASS  all rails aggregate");
    assert!(agg.contains("223.42") && agg.contains("150.00"), "{agg}");
    assert!(line(t, "PASS  latency   rail 0").contains("1.47 µs typical"), "{t}");
    assert!(n.leftovers().is_empty(), "{:?}", n.leftovers());

    // rail1 of node b degraded: 13 Gb/s on a 200G link.
    n.standin("b", &["roceP2p1s0f1"], &[]);
    n.standin("a", &["roceP2p1s0f1"], &[]);
    let r = n.sparkctl(&base);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(line(&r.stdout, "FAIL  alone     rail 1").contains("degraded link: 13.23 Gb/s on a link that says 200 Gb/s"), "{}", r.stdout);
    assert!(line(&r.stdout, "PASS  alone     rail 0").contains("111.71"), "{}", r.stdout);
    n.standin("a", &[], &[]);
    n.standin("b", &[], &[]);

    // Server unreachable: rail1 of node b is down, the client cannot connect; its server is stopped.
    sh(&["ip", "-n", &n.b, "link", "set", "rail1", "down"]);
    let r = n.sparkctl(&base);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(line(&r.stdout, "FAIL  alone     rail 1").contains("Couldn't connect to 10.88.1.2:18516"), "{}", r.stdout);
    assert!(n.leftovers().is_empty(), "{:?}", n.leftovers());
    sh(&["ip", "-n", &n.b, "link", "set", "rail1", "up"]);

    // Wrong device: cluster.toml names an RDMA device node b does not have.
    let wrong = fs::read_to_string(&cluster).unwrap();
    let wrong = {
        // spark-b's second rail is the last `roceP2p1s0f1` in the file.
        let at = wrong.rfind("roceP2p1s0f1").unwrap();
        format!("{}mlx5_9{}", &wrong[..at], &wrong[at + "roceP2p1s0f1".len()..])
    };
    write(&n.path("wrong.toml"), &wrong);
    let wrong_path = n.s("wrong.toml");
    let r = n.sparkctl(&["bench", "rdma", "--cluster", &wrong_path, "--ssh-config", &cfg, "--remote-root", &root, "--duration", "1"]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("--ib-dev mlx5_9 --port 18516"), "{}", r.stdout);
    assert!(
        line(&r.stdout, "FAIL  alone     rail 1").contains("server on `spark-b`: IB device mlx5_9 not found"),
        "the server's own error comes first: {}",
        r.stdout
    );
    assert!(n.leftovers().is_empty(), "{:?}", n.leftovers());

    // JSON: the same numbers.
    let j = n.sparkctl(&[&base[..], &["--json"]].concat());
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap_or_else(|e| panic!("{e}: {}", j.stdout));
    assert_eq!(doc["worst"], "PASS");
    assert_eq!(doc["results"][2]["gbps"].as_f64(), Some(111.71));
    assert_eq!(doc["results"][4]["rail"], "aggregate");
}

#[test]
fn bench_rdma_bad_input_is_one_line_and_exit_2() {
    let mut n = Nodes::new();
    n.start_sshd();
    let (cluster, cfg, root) = (n.s("cluster.toml"), n.s("ssh_config"), n.s("sysroot"));
    let one_line = |r: &Run, needle: &str| {
        assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.starts_with("error: ") && r.stderr.contains(needle), "{needle}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    };
    let r = n.sparkctl(&["bench", "rdma", "--cluster", &cluster, "--ssh-config", &cfg, "--server", "spark-z"]);
    one_line(&r, "no node is named `spark-z`");

    n.ssh_config("unreachable", "10.88.0.99", "id");
    let r = n.sparkctl(&["bench", "rdma", "--cluster", &cluster, "--ssh-config", &n.s("unreachable"), "--remote-root", &root]);
    one_line(&r, "cannot reach `spark-b` over ssh");

    n.ssh_config("stranger", "10.88.0.2", "stranger");
    let r = n.sparkctl(&["bench", "rdma", "--cluster", &cluster, "--ssh-config", &n.s("stranger"), "--remote-root", &root]);
    one_line(&r, "cannot log in to `spark-a` over ssh (root@127.0.0.1: Permission denied (publickey))");

    n.standin("b", &[], &["--rdma_cm"]);
    let r = n.sparkctl(&["bench", "rdma", "--cluster", &cluster, "--ssh-config", &cfg, "--remote-root", &root]);
    one_line(&r, "`ib_write_bw` on `spark-b` lacks --rdma_cm");

    fs::remove_file(n.path("node-b/bin/ib_write_bw")).unwrap();
    let r = n.sparkctl(&["bench", "rdma", "--cluster", &cluster, "--ssh-config", &cfg, "--remote-root", &root]);
    one_line(&r, "perftest's `ib_write_bw` is not installed on `spark-b`");
    assert!(n.leftovers().is_empty(), "{:?}", n.leftovers());
}

#[test]
fn bench_rdma_interrupted_stops_the_remote_servers_and_clients() {
    let mut n = Nodes::new();
    n.start_sshd();
    let (cluster, cfg, root) = (n.s("cluster.toml"), n.s("ssh_config"), n.s("sysroot"));
    let child = Command::new("ip")
        .args(["netns", "exec", &n.a, SPARKCTL, "bench", "rdma", "--cluster", &cluster, "--ssh-config", &cfg, "--remote-root", &root, "--duration", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the client and server of the first rail run on the nodes.
    let start = Instant::now();
    loop {
        let left = n.leftovers_now();
        if left.iter().any(|l| l.contains(&n.b) && l.contains("ib_write_bw"))
            && left.iter().any(|l| l.contains(&n.a) && l.contains("ib_write_bw") && l.contains("10.88.0.2"))
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "perftest never started: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted; the perftest servers and clients were stopped"), "{stderr}");
    assert!(n.leftovers().is_empty(), "{:?}", n.leftovers());
}
