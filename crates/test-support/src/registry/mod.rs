//! A real registry for the tests: Debian's `docker-registry` (Docker Distribution) on a free
//! loopback port with a temp config and storage, plain or htpasswd + TLS with a CA made by
//! `openssl` for this run; and small OCI layouts (busybox that runs, incompressible padding
//! layers, one "overlay" layer whose content the test picks) written without the builder.

pub mod proxy;
pub mod token;

use crate::fuzz::noise;
use crate::oci::sha;
use flate2::{write::GzEncoder, Compression};
use serde_json::json;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (cargo xtask deps installs the test tools)"));
    assert!(out.status.success(), "{cmd:?} failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Tls {
    pub ca: PathBuf,
    /// A folder with `ca.crt`, for `skopeo --cert-dir`.
    pub cert_dir: PathBuf,
}

pub struct Registry {
    child: Option<Child>,
    /// The address it listens on (127.0.0.1 unless started with [`Registry::plain_on`]).
    pub ip: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub tls: Option<Tls>,
}

impl Registry {
    pub fn plain() -> Registry {
        Self::start(None)
    }

    /// Plain HTTP on another address of this machine (not loopback).
    pub fn plain_on(ip: &str) -> Registry {
        let mut r = Self::start(None);
        r.kill();
        let config = std::fs::read_to_string(r.dir.path().join("config.yml"))
            .unwrap()
            .replace(&format!("addr: 127.0.0.1:{}", r.port), &format!("addr: {ip}:{}", r.port));
        std::fs::write(r.dir.path().join("config.yml"), config).unwrap();
        r.ip = ip.to_owned();
        r.restart();
        r
    }

    /// A global (non-loopback) IPv4 address of this machine.
    pub fn non_loopback_ip() -> String {
        let out = run(Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]));
        out.split_whitespace().skip_while(|w| *w != "inet").nth(1).and_then(|cidr| cidr.split('/').next()).map(str::to_owned).expect("a global IPv4 address")
    }

    /// Plain HTTP with `auth: token`: clients get Bearer tokens from `realm`, signed by `cert`'s key.
    pub fn token(realm: &str, service: &str, issuer: &str, cert: &Path) -> Registry {
        let mut r = Self::start(None);
        r.kill();
        let config = std::fs::read_to_string(r.dir.path().join("config.yml")).unwrap();
        let auth = format!("auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n", cert.display());
        std::fs::write(r.dir.path().join("config.yml"), config + &auth).unwrap();
        r.restart();
        r
    }

    pub fn tls_htpasswd(user: &str, password: &str) -> Registry {
        Self::start(Some((user, password)))
    }

    /// Plain HTTP, its config and storage in a temp folder under `parent` (a benchmark's disk).
    pub fn plain_in(parent: &Path) -> Registry {
        Self::start_in(tempfile::tempdir_in(parent).unwrap(), None)
    }

    fn start(auth: Option<(&str, &str)>) -> Registry {
        Self::start_in(tempfile::tempdir().unwrap(), auth)
    }

    fn start_in(dir: tempfile::TempDir, auth: Option<(&str, &str)>) -> Registry {
        let port = free_port();
        let root = dir.path();
        let mut http = format!("  addr: 127.0.0.1:{port}\n  secret: sparkctl-test\n");
        let mut auth_yaml = String::new();
        let tls = auth.map(|(user, password)| {
            make_certs(root);
            let htpasswd = run(Command::new("htpasswd").args(["-Bbn", user, password]));
            std::fs::write(root.join("htpasswd"), htpasswd).unwrap();
            http.push_str(&format!("  tls:\n    certificate: {}\n    key: {}\n", root.join("server.pem").display(), root.join("server.key").display()));
            auth_yaml = format!("auth:\n  htpasswd:\n    realm: sparkctl-test\n    path: {}\n", root.join("htpasswd").display());
            let cert_dir = root.join("certs.d");
            std::fs::create_dir_all(&cert_dir).unwrap();
            std::fs::copy(root.join("ca.pem"), cert_dir.join("ca.crt")).unwrap();
            Tls { ca: root.join("ca.pem"), cert_dir }
        });
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n{http}{auth_yaml}",
            root.join("storage").display()
        );
        std::fs::write(root.join("config.yml"), config).unwrap();
        let mut r = Registry { child: None, ip: "127.0.0.1".into(), port, dir, tls };
        r.restart();
        r
    }

    /// Starts (again) on the same port with the same storage.
    pub fn restart(&mut self) {
        let root = self.dir.path();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(root.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(root.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (cargo xtask deps)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((self.ip.as_str(), self.port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the registry process (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Where the filesystem driver keeps a blob's bytes.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.path().join("storage/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it (EC keys: fast to make).
fn make_certs(dir: &Path) {
    let d = |f: &str| dir.join(f).display().to_string();
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=sparkctl test CA"])
        .args([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &d("ca.key"),
            "-out",
            &d("ca.pem"),
        ]));
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &d("server.key"),
        "-out",
        &d("server.csr"),
    ]));
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        &d("server.csr"),
        "-CA",
        &d("ca.pem"),
        "-CAkey",
        &d("ca.key"),
        "-CAcreateserial",
        "-extfile",
        &d("ext.cnf"),
        "-out",
        &d("server.pem"),
    ]));
}

fn tar_gz(files: &[(&str, u32, Vec<u8>)], links: &[(&str, &str)]) -> (Vec<u8>, String) {
    let mut t = tar::Builder::new(Vec::new());
    for (path, mode, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        t.append_data(&mut h, path, &data[..]).unwrap();
    }
    for (path, target) in links {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        t.append_link(&mut h, path, target).unwrap();
    }
    let tar = t.into_inner().unwrap();
    let diff_id = sha(&tar);
    // Level 0: padding is incompressible anyway, and the tests write tens of MB.
    let mut gz = GzEncoder::new(Vec::new(), Compression::none());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

pub struct TestImage {
    pub layout: PathBuf,
    /// Layer digests and sizes in manifest order: busybox, pads…, overlay.
    pub layers: Vec<(String, u64)>,
    pub config: (String, u64),
    pub manifest: (String, u64),
    pub index: (String, u64),
}

impl TestImage {
    pub fn reference(&self) -> String {
        format!("oci:{}:latest", self.layout.display())
    }
    pub fn total_blob_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.1).sum::<u64>() + self.config.1
    }
}

/// An amd64 image under an OCI index: busybox (runs `echo $GREETING`), `pads` layers of
/// `pad_size` random bytes, and an overlay layer holding `overlay` at /etc/overlay.txt.
pub fn make_image(dir: &Path, pads: usize, pad_size: usize, overlay: &str) -> TestImage {
    let layout = dir.to_owned();
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let put = |b: &[u8]| -> (String, u64) {
        let d = sha(b);
        std::fs::write(layout.join("blobs/sha256").join(&d[7..]), b).unwrap();
        (d, b.len() as u64)
    };
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed (cargo xtask deps)");
    let mut layer_tars = vec![tar_gz(&[("bin/busybox", 0o755, busybox)], &[("bin/sh", "busybox")])];
    for i in 0..pads {
        layer_tars.push(tar_gz(&[(&format!("pad/{i}.bin"), 0o644, noise(pad_size, (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)))], &[]));
    }
    layer_tars.push(tar_gz(&[("etc/overlay.txt", 0o644, overlay.as_bytes().to_vec())], &[]));
    let layers: Vec<(String, u64)> = layer_tars.iter().map(|(gz, _)| put(gz)).collect();
    let diff_ids: Vec<&String> = layer_tars.iter().map(|(_, d)| d).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Env": ["PATH=/bin", format!("GREETING=hello from sparkctl {overlay}")], "Cmd": ["/bin/sh", "-c", "echo $GREETING; cat /etc/overlay.txt"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": []
    }))
    .unwrap();
    let config = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1 },
        "layers": layers.iter().map(|(d, s)| json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s })).collect::<Vec<_>>(),
    }))
    .unwrap();
    let manifest = put(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{ "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest.0, "size": manifest.1, "platform": { "architecture": "amd64", "os": "linux" } }],
    }))
    .unwrap();
    let index = put(&index);
    let top = json!({ "schemaVersion": 2, "manifests": [{ "mediaType": "application/vnd.oci.image.index.v1+json", "digest": index.0, "size": index.1, "annotations": { "org.opencontainers.image.ref.name": "latest" } }] });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    TestImage { layout, layers, config, manifest, index }
}
