//! The registry client against a real registry (Debian `docker-registry`), read back by
//! independent tools: skopeo and the Docker engine (system tests). Its errors for servers that
//! are no registry, against fake servers on loopback, are hermetic.

// The harness and most helpers serve the system tests only: unused when they are compiled out.
#![cfg_attr(not(feature = "system-tests"), allow(dead_code, unused_imports))]

use builder::registry::retry::RetryPolicy;
use builder::registry::{self, lock, progress::NoProgress, Client, ClientOptions, CredentialStore, PushOptions, PushSummary, RegistryRef};
use builder::source;
use builder::BlobStore;
use builder::BuiltImage;
use builder::LocalRef;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use test_support::registry::proxy::{Fault, Proxy};
use test_support::registry::{free_port, make_image, run, token, Registry, TestImage};

fn quick_retries() -> RetryPolicy {
    RetryPolicy { attempts: 2, base: Duration::from_millis(50), max: Duration::from_millis(200) }
}

fn plain_opts() -> ClientOptions {
    // An empty Docker config: the host's own credentials must not leak into the tests.
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    ClientOptions {
        credentials: CredentialStore { explicit: None, explicit_for: None, config_file: Some(dir.join("config.json")), default_config_file: None },
        retry: quick_retries(),
        ..Default::default()
    }
}

fn push_local(img: &TestImage, dest: &str, opts: &ClientOptions, parallel: usize) -> builder::Result<PushSummary> {
    let store = BlobStore::open(tempfile::tempdir().unwrap().keep())?;
    let base = source::open_local(&LocalRef::parse(&img.reference())?)?;
    let image = BuiltImage::unchanged(base, store)?;
    let dest = RegistryRef::parse(dest)?;
    let client = Client::connect(&dest.registry, dest.api_host(), opts)?;
    registry::push_image(&client, &dest, &image, &PushOptions { parallel, progress: Arc::new(NoProgress) })
}

/// Pulls through the library into an OCI layout; returns the top digest.
fn pull_to_layout(src: &str, opts: &ClientOptions, store: &BlobStore, dest: &std::path::Path) -> builder::Result<String> {
    let remote = registry::Remote { options: opts.clone(), store: store.clone(), parallel: 8, phases: Arc::new(NoProgress) };
    let dest = LocalRef::parse(&format!("oci:{}:pulled", dest.display()))?;
    Ok(builder::pull::pull(&RegistryRef::parse(src)?, &dest, None, &remote)?.digest)
}

fn skopeo_raw_digest(args: &[&str], reference: &str) -> String {
    let raw = run(Command::new("skopeo").arg("inspect").args(args).arg("--raw").arg(reference));
    test_support::oci::sha(raw.as_bytes())
}

#[cfg(feature = "system-tests")]
#[test]
fn push_then_skopeo_and_docker_read_it_back() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(&tmp.path().join("img"), 2, 1 << 20, "v1");
    let dest = format!("{}/sparkctl/it-push:v1", reg.host());
    let summary = push_local(&img, &dest, &plain_opts(), 8).unwrap();
    assert_eq!(summary.digest, img.index.0);
    assert_eq!(summary.blobs_uploaded, 5, "busybox, 2 pads, overlay, config: {summary:?}");
    assert_eq!(summary.bytes_uploaded, img.total_blob_bytes() + img.manifest.1 + img.index.1);

    // skopeo sees the same index digest and copies the image back byte for byte.
    assert_eq!(skopeo_raw_digest(&["--tls-verify=false"], &format!("docker://{dest}")), img.index.0);
    let back = tmp.path().join("back");
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--preserve-digests",
        &format!("docker://{dest}"),
        &format!("oci:{}:v1", back.display()),
    ]));
    assert_eq!(skopeo_raw_digest(&[], &format!("oci:{}:v1", back.display())), img.index.0);

    // The Docker engine pulls it from the registry and runs it.
    run(Command::new("docker").args(["pull", "-q", &dest]));
    let out = run(Command::new("docker").args(["run", "--rm", &dest]));
    let _ = Command::new("docker").args(["rmi", "-f", &dest]).output();
    assert!(out.contains("hello from sparkctl v1") && out.contains("v1"), "{out}");

    // Our pull writes a layout that skopeo reads with the same digest; a second push moves nothing.
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let pulled = tmp.path().join("pulled");
    assert_eq!(pull_to_layout(&dest, &plain_opts(), &store, &pulled).unwrap(), img.index.0);
    assert_eq!(skopeo_raw_digest(&[], &format!("oci:{}:pulled", pulled.display())), img.index.0);
    run(Command::new("skopeo").args(["copy", &format!("oci:{}:pulled", pulled.display()), &format!("oci:{}:check", tmp.path().join("check").display())]));
    let again = push_local(&img, &dest, &plain_opts(), 8).unwrap();
    assert_eq!((again.blobs_existing, again.blobs_uploaded, again.bytes_uploaded, again.manifests_pushed), (5, 0, 0, 0), "{again:?}");
}

#[cfg(feature = "system-tests")]
#[test]
fn tls_and_htpasswd_with_docker_config_credentials() {
    let password = "s3cret-Pa55word-never-shown";
    let reg = Registry::tls_htpasswd("ci-user", password);
    let tls = reg.tls.as_ref().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(&tmp.path().join("img"), 1, 64 << 10, "tls");
    let dest = format!("{}/team/app:v1", reg.host());
    let config = |pw: &str| {
        let path = tmp.path().join(format!("config-{}.json", pw.len()));
        let auth = base64_encode(&format!("ci-user:{pw}"));
        std::fs::write(&path, format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host())).unwrap();
        path
    };
    let opts = |pw: Option<&str>, ca: bool| ClientOptions {
        credentials: CredentialStore {
            explicit: None,
            explicit_for: None,
            config_file: Some(pw.map(config).unwrap_or_else(|| config("").with_file_name("none.json"))),
            default_config_file: None,
        },
        ca_file: ca.then(|| tls.ca.clone()),
        retry: quick_retries(),
        ..Default::default()
    };
    std::fs::write(tmp.path().join("none.json"), "{}").unwrap();

    // Right credentials from config.json, CA from --ca-file: works over TLS.
    let good = opts(Some(password), true);
    let summary = push_local(&img, &dest, &good, 8).unwrap();
    assert_eq!(summary.digest, img.index.0);
    let creds = format!("ci-user:{password}");
    let cert_dir = format!("--cert-dir={}", tls.cert_dir.display());
    assert_eq!(skopeo_raw_digest(&[&cert_dir, "--creds", &creds], &format!("docker://{dest}")), img.index.0);
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    assert_eq!(pull_to_layout(&dest, &good, &store, &tmp.path().join("pulled")).unwrap(), img.index.0);
    // skopeo copies it back byte for byte; the Docker engine, with the same config.json as
    // its own (`--config`), pulls over TLS (127.0.0.0/8 is an insecure registry to Docker: no
    // CA needed) and runs it.
    let back = format!("oci:{}:v1", tmp.path().join("back").display());
    let src_cert_dir = format!("--src-cert-dir={}", tls.cert_dir.display());
    run(Command::new("skopeo").args(["copy", "--all", "--preserve-digests", &src_cert_dir, "--src-creds", &creds, &format!("docker://{dest}"), &back]));
    assert_eq!(skopeo_raw_digest(&[], &back), img.index.0);
    let docker_config = tmp.path().join("docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    std::fs::copy(config(password), docker_config.join("config.json")).unwrap();
    let docker = || {
        let mut c = Command::new("docker");
        c.arg("--config").arg(&docker_config);
        c
    };
    run(docker().args(["pull", "-q", &dest]));
    let out = run(docker().args(["run", "--rm", &dest]));
    let _ = docker().args(["rmi", "-f", &dest]).output();
    assert!(out.contains("hello from sparkctl tls"), "{out}");

    // Wrong password: a clear error naming the registry, no password anywhere.
    let wrong_pw = "wrong-Pa55word-never-shown";
    let err = push_local(&img, &format!("{}/team/app:v2", reg.host()), &opts(Some(wrong_pw), true), 8).unwrap_err();
    let shown = format!("{err} {err:?} {:?}", opts(Some(wrong_pw), true));
    assert!(shown.contains("rejected the credentials") && shown.contains(&reg.host()), "{shown}");
    assert!(!shown.contains(wrong_pw) && !shown.contains(password), "secret leaked: {shown}");
    let debug_good = format!("{:?} {:?}", good, Client::connect(&reg.host(), &reg.host(), &good).unwrap());
    assert!(!debug_good.contains(password), "secret in Debug: {debug_good}");

    // No credentials: authentication required, with the fix.
    let err = push_local(&img, &dest, &opts(None, true), 8).unwrap_err().to_string();
    assert!(err.contains("authentication required") && err.contains("docker login"), "{err}");

    // No CA: the certificate is refused and the hint names --ca-file.
    let err = push_local(&img, &dest, &opts(Some(password), false), 8).unwrap_err().to_string();
    assert!(err.contains("--ca-file") && !err.contains(password), "{err}");
}

fn base64_encode(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(feature = "system-tests")]
#[test]
fn repush_after_one_overlay_change_sends_only_that_layer() {
    let reg = Registry::plain();
    let proxy = Proxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let v1 = make_image(&tmp.path().join("v1"), 4, 2 << 20, "first");
    let v2 = make_image(&tmp.path().join("v2"), 4, 2 << 20, "second");
    assert_eq!(v1.layers[..5], v2.layers[..5], "only the overlay layer differs");
    let first = push_local(&v1, &format!("{}/app/it:v1", proxy.host()), &plain_opts(), 8).unwrap();
    assert!(proxy.sent.load(std::sync::atomic::Ordering::SeqCst) > 8 << 20);
    proxy.reset();
    let second = push_local(&v2, &format!("{}/app/it:v2", proxy.host()), &plain_opts(), 8).unwrap();
    let changed = v2.layers[5].1 + v2.config.1 + v2.manifest.1 + v2.index.1;
    assert_eq!((second.blobs_uploaded, second.blobs_existing, second.manifests_pushed), (2, 5, 2), "{second:?}");
    assert_eq!(second.bytes_uploaded, changed);
    // What the registry received: the changed blobs plus HTTP requests (HEADs, POSTs, headers).
    let wire = proxy.sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(wire >= changed && wire < changed + (32 << 10), "registry received {wire} bytes for {changed} changed bytes");
    assert!(first.bytes_uploaded > 40 * changed);
}

#[cfg(feature = "system-tests")]
#[test]
fn registry_killed_mid_push_then_rerun_skips_finished_blobs() {
    let mut reg = Registry::plain();
    let proxy = Proxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(&tmp.path().join("img"), 5, 4 << 20, "kill");
    let dest = format!("{}/app/killed:v1", proxy.host());
    // One blob at a time, so "finished" is well defined: kill after busybox and two pads.
    let kill_at = img.layers[0].1 + img.layers[1].1 + img.layers[2].1 + (2 << 20);
    let pid = Arc::new(std::sync::Mutex::new(Some(reg.port)));
    let registry_pid = registry_pid(reg.port);
    proxy.when_sent_exceeds(kill_at, move || {
        pid.lock().unwrap().take();
        let _ = Command::new("kill").args(["-KILL", &registry_pid.to_string()]).status();
    });
    let err = push_local(&img, &dest, &plain_opts(), 1).unwrap_err().to_string();
    assert!(err.contains("cannot reach the registry") && err.contains(&proxy.host()), "{err}");
    reg.kill();
    reg.restart();
    proxy.reset();
    let summary = push_local(&img, &dest, &plain_opts(), 1).unwrap();
    assert!(summary.blobs_existing >= 3, "finished blobs are not sent again: {summary:?}");
    let rest = img.total_blob_bytes() - (img.layers[0].1 + img.layers[1].1 + img.layers[2].1);
    assert!(summary.bytes_uploaded <= rest + img.manifest.1 + img.index.1, "{summary:?}");
    assert!(proxy.sent.load(std::sync::atomic::Ordering::SeqCst) < rest + (64 << 10));
    assert_eq!(skopeo_raw_digest(&["--tls-verify=false"], &format!("docker://{}/app/killed:v1", reg.host())), img.index.0);
}

/// The pid of the `docker-registry` listening on `port` (the harness owns the child; the
/// proxy's hook only has the pid).
fn registry_pid(port: u16) -> u32 {
    let out = run(Command::new("ss").args(["-Hltnp", &format!("sport = :{port}")]));
    let pid = out.split("pid=").nth(1).and_then(|s| s.split(',').next()).unwrap_or_else(|| panic!("no listener on {port}: {out}"));
    pid.parse().unwrap()
}

#[cfg(feature = "system-tests")]
#[test]
fn corrupt_blob_from_registry_is_a_digest_error_and_nothing_is_written() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(&tmp.path().join("img"), 1, 256 << 10, "corrupt");
    let dest = format!("{}/app/corrupt:v1", reg.host());
    push_local(&img, &dest, &plain_opts(), 8).unwrap();
    let (pad, size) = img.layers[1].clone();
    let data = reg.blob_data(&pad);
    let mut bytes = std::fs::read(&data).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    assert_eq!(bytes.len() as u64, size);

    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let out = tmp.path().join("out");
    let err = pull_to_layout(&dest, &plain_opts(), &store, &out).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("digest mismatch") && msg.contains(&pad), "{msg}");
    assert!(!out.exists(), "nothing written to the destination");
    assert!(!store.has(&builder::Digest::parse(&pad).unwrap(), size), "nothing stored");
    let leftovers: Vec<_> = std::fs::read_dir(store.root().join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "no partial file kept for a corrupt blob: {leftovers:?}");
}

#[cfg(feature = "system-tests")]
#[test]
fn interrupted_download_resumes_with_a_range_request() {
    let reg = Registry::plain();
    let proxy = Proxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(&tmp.path().join("img"), 1, 4 << 20, "resume");
    push_local(&img, &format!("{}/app/resume:v1", reg.host()), &plain_opts(), 8).unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    // What an interrupted run leaves: the first 3 MiB of the pad layer.
    let (pad, size) = img.layers[1].clone();
    let full = std::fs::read(img.layout.join("blobs/sha256").join(&pad[7..])).unwrap();
    std::fs::write(store.root().join("tmp").join(format!("{}.partial", &pad[7..])), &full[..3 << 20]).unwrap();
    proxy.reset();
    let src =
        builder::registry::RegistrySource::open(&RegistryRef::parse(&format!("{}/app/resume:v1", proxy.host())).unwrap(), &plain_opts(), Some(store.clone()))
            .unwrap();
    let desc = builder::Descriptor::new("application/vnd.oci.image.layer.v1.tar+gzip", builder::Digest::parse(&pad).unwrap(), size);
    let path = src.fetch(&desc).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), full);
    let downloaded = proxy.received.load(std::sync::atomic::Ordering::SeqCst);
    assert!(downloaded < size - (3 << 20) + (16 << 10), "only the missing part was downloaded: {downloaded} of {size}");
}

#[cfg(feature = "system-tests")]
#[test]
fn shallow_base_reads_metadata_only_and_lock_needs_no_network() {
    let mut reg = Registry::plain();
    let proxy = Proxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(&tmp.path().join("img"), 2, 4 << 20, "lock");
    let dest = format!("{}/base/img:v1", proxy.host());
    push_local(&img, &dest, &plain_opts(), 8).unwrap();
    proxy.reset();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let reference = RegistryRef::parse(&dest).unwrap();
    let (base, _) = registry::open_base(&reference, &plain_opts(), Some(store.clone())).unwrap();
    assert_eq!(base.digest().to_string(), img.index.0);
    let read = proxy.received.load(std::sync::atomic::Ordering::SeqCst);
    assert!(read < 32 << 10, "a shallow base reads a few kB, not layers: {read} bytes");
    for (layer, size) in &img.layers {
        assert!(!store.has(&builder::Digest::parse(layer).unwrap(), *size), "layer {layer} was fetched");
    }

    // Cross-repository push to the same registry: every base blob is mounted, none uploaded.
    let copy = BuiltImage::unchanged(base, store.clone()).unwrap();
    let other = RegistryRef::parse(&format!("{}/other/img:v1", proxy.host())).unwrap();
    let client = Client::connect(&other.registry, other.api_host(), &plain_opts()).unwrap();
    proxy.reset();
    let s = registry::push_image(&client, &other, &copy, &PushOptions { parallel: 8, progress: Arc::new(NoProgress) }).unwrap();
    assert_eq!((s.blobs_mounted, s.blobs_uploaded), (5, 0), "{s:?}");
    assert!(proxy.sent.load(std::sync::atomic::Ordering::SeqCst) < 32 << 10);

    // The lock file pins the base; with the registry down, the metadata still reads.
    let lock_path = lock::path_for(&tmp.path().join("images/app.toml"));
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    lock::write(&lock_path, &reference, &copy.base).unwrap();
    assert!(lock_path.ends_with("images/app.lock.json"));
    reg.kill();
    let locked = lock::read(&lock_path).unwrap();
    assert_eq!(locked.reference.digest.as_ref().unwrap().to_string(), img.index.0);
    let base = locked.open_base(&plain_opts(), Some(store)).unwrap();
    assert_eq!(base.digest().to_string(), img.index.0);
    assert_eq!(base.entries[0].1.as_ref().unwrap().layers.len(), 4);
    // An edited lock is refused.
    let text = std::fs::read_to_string(&lock_path).unwrap().replace("amd64", "arm64");
    std::fs::write(&lock_path, text).unwrap();
    let err = lock::read(&lock_path).unwrap_err().to_string();
    assert!(err.contains("app.lock.json") && err.contains("edited"), "{err}");
}

#[cfg(feature = "system-tests")]
#[test]
fn missing_tag_and_repository_errors_name_the_reference() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(&tmp.path().join("img"), 0, 0, "x");
    push_local(&img, &format!("{}/app/known:v1", reg.host()), &plain_opts(), 8).unwrap();
    let err = registry::open_base(&RegistryRef::parse(&format!("{}/app/known:nope", reg.host())).unwrap(), &plain_opts(), None).err().unwrap().to_string();
    assert!(err.contains("app/known:nope") && err.contains("manifest unknown"), "{err}");
    let err = registry::open_base(&RegistryRef::parse(&format!("{}/app/unknown:v1", reg.host())).unwrap(), &plain_opts(), None).err().unwrap().to_string();
    assert!(err.contains("app/unknown:v1") && err.contains("HTTP 404"), "{err}");
    // Nothing listens here: a clear error after the retries.
    let port = free_port();
    let err = registry::open_base(&RegistryRef::parse(&format!("127.0.0.1:{port}/a:b")).unwrap(), &plain_opts(), None).err().unwrap().to_string();
    assert!(err.contains("cannot reach") && err.contains(&port.to_string()), "{err}");
}

/// A loopback HTTP server that answers every request with `status` (a web server or another
/// service on the port a reference names), or says nothing at all (`None`).
fn fake_server(status: Option<u16>) -> u16 {
    fake_server_on("127.0.0.1", status)
}

fn fake_server_on(ip: &str, status: Option<u16>) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut c in l.incoming().flatten() {
            match status {
                None => held.push(c),
                Some(code) => {
                    let mut buf = [0u8; 4096];
                    let _ = std::io::Read::read(&mut c, &mut buf);
                    let body = "<html>nope</html>";
                    let _ = std::io::Write::write_all(
                        &mut c,
                        format!("HTTP/1.1 {code} Whatever\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                            .as_bytes(),
                    );
                }
            }
        }
    });
    port
}

#[test]
fn a_server_that_is_not_a_registry_is_named_as_such() {
    for status in [404, 501, 405] {
        let port = fake_server(Some(status));
        let err = registry::open_base(&RegistryRef::parse(&format!("127.0.0.1:{port}/app/x:v1")).unwrap(), &plain_opts(), None).err().unwrap().to_string();
        assert!(err.contains(&format!("127.0.0.1:{port} is not a container registry (`GET /v2/` answered HTTP {status}")), "{status}: {err}");
        assert!(err.contains("check the host and port") && !err.contains("retry later") && !err.contains("manifest unknown"), "{err}");
    }
}

#[test]
fn a_silent_server_is_a_timeout_not_a_tls_error() {
    let port = fake_server(None);
    let start = std::time::Instant::now();
    let err = Client::connect(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port}"), &plain_opts()).unwrap_err().to_string();
    assert!(err.contains("no answer within 10 s") && err.contains("said nothing"), "{err}");
    assert!(!err.to_lowercase().contains("tls"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
}

/// A remote (non-loopback, not `--insecure-registry`) host is spoken to over HTTPS only; silent,
/// it is named the same way within the probe timeout, not after a read timeout per retry.
#[cfg(feature = "system-tests")]
#[test]
fn a_silent_remote_registry_is_a_timeout_named_at_once() {
    let ip = Registry::non_loopback_ip();
    let port = fake_server_on(&ip, None);
    let host = format!("{ip}:{port}");
    let start = std::time::Instant::now();
    let err = Client::connect(&host, &host, &plain_opts()).unwrap_err().to_string();
    assert!(err.contains("no answer within 10 s") && err.contains(&format!("{host} accepted the connection and said nothing")), "{err}");
    assert!(!err.to_lowercase().contains("tls"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
    // Through the whole read of a base, with retries on: still one bounded wait.
    let start = std::time::Instant::now();
    let err = registry::open_base(&RegistryRef::parse(&format!("{host}/app/x:v1")).unwrap(), &plain_opts(), None).err().unwrap().to_string();
    assert!(err.contains("said nothing"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
    // Nothing listening is still a connection error, not silence.
    let closed = std::net::TcpListener::bind((ip.as_str(), 0)).unwrap();
    let host = format!("{ip}:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let err = registry::open_base(
        &RegistryRef::parse(&format!("{host}/app/x:v1")).unwrap(),
        &ClientOptions { retry: RetryPolicy { attempts: 1, base: Duration::from_millis(1), max: Duration::from_millis(1) }, ..plain_opts() },
        None,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(!err.contains("said nothing"), "{err}");
}

#[cfg(feature = "system-tests")]
#[test]
fn retries_503_429_and_resets_then_gives_a_clear_error() {
    let reg = Registry::plain();
    let proxy = Proxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(&tmp.path().join("img"), 0, 0, "retry");
    push_local(&img, &format!("{}/app/retry:v1", reg.host()), &plain_opts(), 8).unwrap();
    let reference = RegistryRef::parse(&format!("{}/app/retry:v1", proxy.host())).unwrap();
    let opts = |attempts| ClientOptions { retry: RetryPolicy { attempts, base: Duration::from_millis(20), max: Duration::from_millis(100) }, ..plain_opts() };

    // The manifest GET meets three faults in a row; 4 tries get through.
    let client = Client::connect(&reference.registry, reference.api_host(), &opts(4)).unwrap();
    proxy.inject(&[Fault::Status(503), Fault::Status(429), Fault::Reset]);
    let src = builder::registry::RegistrySource::with_client(std::sync::Arc::new(client), &reference, None);
    assert_eq!(src.resolve().unwrap().digest.to_string(), img.index.0);
    assert_eq!(proxy.faults_served.load(std::sync::atomic::Ordering::SeqCst), 3, "each fault was met once and retried");

    // More faults than tries: the last status is reported, naming the reference.
    proxy.faults_served.store(0, std::sync::atomic::Ordering::SeqCst);
    let client = Client::connect(&reference.registry, reference.api_host(), &opts(2)).unwrap();
    proxy.inject(&[Fault::Status(503), Fault::Status(503), Fault::Status(503)]);
    let src = builder::registry::RegistrySource::with_client(std::sync::Arc::new(client), &reference, None);
    let err = src.resolve().unwrap_err().to_string();
    assert!(err.contains("app/retry:v1") && err.contains("HTTP 503"), "{err}");
    assert_eq!(proxy.faults_served.load(std::sync::atomic::Ordering::SeqCst), 2, "exactly the allowed tries");
}

#[cfg(feature = "system-tests")]
#[test]
fn bearer_token_flow_anonymous_pull_authenticated_push_and_scope_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = token::TokenServer::start(tmp.path(), "ci-user", "tok3n-Pa55word-never-shown", 300);
    let reg = Registry::token(&tokens.realm(), token::SERVICE, token::ISSUER, &tokens.cert);
    let img = make_image(&tmp.path().join("img"), 1, 64 << 10, "token");
    let config = tmp.path().join("config.json");
    let auth = token::b64(b"ci-user:tok3n-Pa55word-never-shown", false);
    std::fs::write(&config, format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host())).unwrap();
    let creds = ClientOptions {
        credentials: CredentialStore { explicit: None, explicit_for: None, config_file: Some(config), default_config_file: None },
        retry: quick_retries(),
        ..Default::default()
    };

    // Push with credentials: the registry challenges with Bearer, the token service sees basic auth.
    let dest = format!("{}/team/app:v1", reg.host());
    let summary = push_local(&img, &dest, &creds, 8).unwrap();
    assert_eq!(summary.digest, img.index.0);
    let issued = tokens.issued.lock().unwrap().clone();
    assert!(issued.iter().any(|i| i.authenticated && i.scopes == ["repository:team/app:pull,push"]), "{issued:?}");

    // Anonymous pull: a token without credentials, pull scope only.
    tokens.issued.lock().unwrap().clear();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    assert_eq!(pull_to_layout(&dest, &plain_opts(), &store, &tmp.path().join("pulled")).unwrap(), img.index.0);
    let issued = tokens.issued.lock().unwrap().clone();
    assert!(!issued.is_empty() && issued.iter().all(|i| !i.authenticated && i.scopes == ["repository:team/app:pull"]), "{issued:?}");

    // A cross-repository push asks for a new scope set (push here + pull there) and mounts.
    tokens.issued.lock().unwrap().clear();
    let (base, _) = registry::open_base(&RegistryRef::parse(&dest).unwrap(), &creds, Some(store.clone())).unwrap();
    let copy = BuiltImage::unchanged(base, store.clone()).unwrap();
    let other = RegistryRef::parse(&format!("{}/team/copy:v1", reg.host())).unwrap();
    let client = Client::connect(&other.registry, other.api_host(), &creds).unwrap();
    let s = registry::push_image(&client, &other, &copy, &PushOptions { parallel: 8, progress: Arc::new(NoProgress) }).unwrap();
    assert_eq!((s.blobs_mounted, s.blobs_uploaded), (4, 0), "{s:?}");
    let issued = tokens.issued.lock().unwrap().clone();
    assert!(issued.iter().any(|i| i.scopes == ["repository:team/copy:pull,push", "repository:team/app:pull"]), "{issued:?}");

    // Anonymous push: the token grants no push, the registry refuses: authentication required.
    let err = push_local(&img, &format!("{}/team/anon:v1", reg.host()), &plain_opts(), 8).unwrap_err().to_string();
    assert!(err.contains("authentication required") && err.contains("team/anon"), "{err}");
}

#[cfg(feature = "system-tests")]
#[test]
fn bearer_tokens_are_cached_per_scope_and_fetched_again_on_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    // 10 s tokens: the client refreshes 5 s early, so they are reused for 5 s.
    let tokens = token::TokenServer::start(tmp.path(), "u", "p", 10);
    let reg = Registry::token(&tokens.realm(), token::SERVICE, token::ISSUER, &tokens.cert);
    let img = make_image(&tmp.path().join("img"), 0, 0, "expiry");
    let auth = token::b64(b"u:p", false);
    std::fs::write(tmp.path().join("config.json"), format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host())).unwrap();
    let creds = ClientOptions {
        credentials: CredentialStore { explicit: None, explicit_for: None, config_file: Some(tmp.path().join("config.json")), default_config_file: None },
        retry: quick_retries(),
        ..Default::default()
    };
    push_local(&img, &format!("{}/app/exp:v1", reg.host()), &creds, 8).unwrap();
    tokens.issued.lock().unwrap().clear();
    let reference = RegistryRef::parse(&format!("{}/app/exp:v1", reg.host())).unwrap();
    let src = builder::registry::RegistrySource::with_client(
        std::sync::Arc::new(Client::connect(&reference.registry, reference.api_host(), &plain_opts()).unwrap()),
        &reference,
        None,
    );
    let fetched = || tokens.issued.lock().unwrap().len();
    src.resolve().unwrap();
    let first = fetched();
    assert!(first >= 1, "the first request needs a token");
    src.resolve().unwrap();
    src.resolve().unwrap();
    assert_eq!(fetched(), first, "a live token is reused for the same scope");
    std::thread::sleep(Duration::from_millis(5500));
    src.resolve().unwrap();
    assert_eq!(fetched(), first + 1, "an expired token is fetched again");
}

#[cfg(feature = "system-tests")]
#[test]
fn plain_http_off_loopback_only_with_insecure_registry() {
    let reg = Registry::plain_on(&Registry::non_loopback_ip());
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(&tmp.path().join("img"), 0, 0, "insecure");
    let dest = format!("{}/app/insecure:v1", reg.host());
    // TLS is required: the plain-HTTP registry fails the handshake, and the hint names the flag.
    let err = push_local(&img, &dest, &plain_opts(), 8).unwrap_err().to_string();
    assert!(err.contains(&format!("--insecure-registry {}", reg.host())), "{err}");
    let opts = ClientOptions { insecure: vec![reg.host()], ..plain_opts() };
    let client = Client::connect(&reg.host(), &reg.host(), &opts).unwrap();
    assert!(client.is_plain_http());
    assert_eq!(push_local(&img, &dest, &opts, 8).unwrap().digest, img.index.0);
}

#[cfg(feature = "system-tests")]
#[test]
fn push_keeps_eight_blobs_in_flight_with_one_put_each() {
    let reg = Registry::plain();
    let proxy = Proxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(&tmp.path().join("img"), 12, 1 << 20, "parallel");
    // Slow the uploads down a little so that they overlap measurably.
    proxy.delay_us.store(5000, std::sync::atomic::Ordering::SeqCst);
    let summary = push_local(&img, &format!("{}/app/parallel:v1", proxy.host()), &plain_opts(), 8).unwrap();
    assert_eq!(summary.blobs_uploaded, 15);
    assert_eq!(proxy.peak.load(std::sync::atomic::Ordering::SeqCst), 8, "uploads in flight at once");
    // The registry's access log: one PUT per blob, no PATCH chunks.
    let log = reg.log();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("\"PATCH "), 0, "no chunked uploads:\n{log}");
    assert_eq!(count("\"PUT /v2/app/parallel/blobs/uploads/"), 15, "one PUT per blob:\n{log}");
    assert_eq!(count("\"POST /v2/app/parallel/blobs/uploads/"), 15);
}

#[cfg(feature = "system-tests")]
#[test]
fn identity_token_from_docker_config_uses_the_refresh_token_grant() {
    let tmp = tempfile::tempdir().unwrap();
    let password = "idt-owner-Pa55";
    let tokens = token::TokenServer::start(tmp.path(), "ci-user", password, 300);
    let reg = Registry::token(&tokens.realm(), token::SERVICE, token::ISSUER, &tokens.cert);
    let img = make_image(&tmp.path().join("img"), 0, 0, "idt");
    let config = tmp.path().join("config.json");
    std::fs::write(&config, format!(r#"{{"auths":{{"{}":{{"auth":"","identitytoken":"{}"}}}}}}"#, reg.host(), token::identity_token(password))).unwrap();
    let opts = ClientOptions {
        credentials: CredentialStore { explicit: None, explicit_for: None, config_file: Some(config), default_config_file: None },
        retry: quick_retries(),
        ..Default::default()
    };
    assert_eq!(push_local(&img, &format!("{}/team/idt:v1", reg.host()), &opts, 8).unwrap().digest, img.index.0);
    let issued = tokens.issued.lock().unwrap().clone();
    assert!(issued.iter().all(|i| i.refresh && i.authenticated), "every token came from the refresh-token grant: {issued:?}");
    assert!(issued.iter().any(|i| i.scopes == ["repository:team/idt:pull,push"]), "{issued:?}");
    // A wrong identity token gets a pull-only token: the push is refused with a clear error.
    std::fs::write(tmp.path().join("bad.json"), format!(r#"{{"auths":{{"{}":{{"identitytoken":"wrong-idt"}}}}}}"#, reg.host())).unwrap();
    let bad = ClientOptions {
        credentials: CredentialStore { explicit: None, explicit_for: None, config_file: Some(tmp.path().join("bad.json")), default_config_file: None },
        ..opts
    };
    let err = push_local(&img, &format!("{}/team/idt:v2", reg.host()), &bad, 8).unwrap_err().to_string();
    assert!(err.contains("rejected the credentials") && !err.contains("wrong-idt"), "{err}");
}

#[cfg(feature = "system-tests")]
#[test]
fn copy_between_registries_fetches_each_layer_once_into_the_store() {
    let a = Registry::plain();
    let b = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(&tmp.path().join("img"), 3, 512 << 10, "copy");
    let src = format!("{}/src/img:v1", a.host());
    push_local(&img, &src, &plain_opts(), 8).unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let (base, _) = registry::open_base(&RegistryRef::parse(&src).unwrap(), &plain_opts(), Some(store.clone())).unwrap();
    let copy = BuiltImage::unchanged(base, store.clone()).unwrap();
    let dest = RegistryRef::parse(&format!("{}/dst/img:v1", b.host())).unwrap();
    let client = Client::connect(&dest.registry, dest.api_host(), &plain_opts()).unwrap();
    let s = registry::push_image(&client, &dest, &copy, &PushOptions { parallel: 8, progress: Arc::new(NoProgress) }).unwrap();
    // Another registry: nothing to mount from, every blob is uploaded, each layer fetched once.
    assert_eq!((s.blobs_uploaded, s.blobs_mounted, s.digest.as_str()), (6, 0, img.index.0.as_str()), "{s:?}");
    for (layer, size) in &img.layers {
        assert!(store.has(&builder::Digest::parse(layer).unwrap(), *size), "layer {layer} is in the store");
    }
    assert_eq!(skopeo_raw_digest(&["--tls-verify=false"], &format!("docker://{dest}")), img.index.0);
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{dest}"),
        &format!("oci:{}:v1", tmp.path().join("back").display()),
    ]));
}
