//! `sparkctl image build|push|pull` with registries: a `docker://` base read shallowly and pinned
//! by `--lock`, `--output docker://`, credentials and TLS, against Debian's `docker-registry`;
//! results read back by skopeo and run by the Docker engine.

// Only the refusal of `--password-stdin` alone is hermetic; the other tests' helpers are unused
// when those system tests are compiled out.
#![cfg_attr(not(feature = "system-tests"), allow(dead_code, unused_imports))]

use super::support::{json, tool, Project};
use std::io::Write;
use std::process::{Command, Stdio};
use test_support::base;
use test_support::oci::sha;
use test_support::registry::Registry;

/// A runnable two-platform base (busybox) pushed to `reg` as `nvidia/base:1`; returns its pinned reference.
fn push_base(p: &Project, reg: &Registry) -> String {
    let index = base::write_layout(&p.path("base"), &base::BaseSpec { busybox: true, ..Default::default() });
    let dest = format!("docker://{}/nvidia/base:1", reg.host());
    let out = p.run(&["image", "push", "--quiet", "--json", &format!("oci:{}:base", p.s("base")), &dest]).ok();
    let summary = json(out.last_line());
    assert_eq!(summary["digest"], index.as_str(), "{summary}");
    format!("{dest}@{index}")
}

/// Gzip layers of the base layout (what a shallow build must not download).
fn base_layers(p: &Project) -> Vec<String> {
    std::fs::read_dir(p.path("base/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| std::fs::read(f).unwrap().starts_with(&[0x1f, 0x8b]))
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[cfg(feature = "system-tests")]
#[test]
fn build_on_a_registry_base_locks_it_pushes_and_docker_runs_the_result() {
    let mut reg = Registry::plain();
    let p = Project::new();
    let base_ref = push_base(&p, &reg);
    p.standard(&base_ref, &["linux/amd64", "linux/arm64"]);

    // Build straight to the registry: the base is read shallowly and its layers are mounted/HEADed, never downloaded.
    let dest = format!("{}/team/app:v1", reg.host());
    let digest = p.run(&["image", "build", &p.s("images/test.toml"), "--lock", "--quiet", "-o", &format!("docker://{dest}")]).ok().last_line().to_owned();
    for layer in base_layers(&p) {
        assert!(!p.store().join("blobs/sha256").join(&layer).exists(), "base layer {layer} was downloaded");
    }
    let lock = json(&std::fs::read_to_string(p.path("images/test.lock.json")).unwrap());
    assert_eq!(lock["resolved"], format!("{}/nvidia/base@{}", reg.host(), base_ref.rsplit('@').next().unwrap()).as_str());

    let raw = tool("skopeo", &["inspect", "--tls-verify=false", "--raw", &format!("docker://{dest}")]).ok().stdout;
    assert_eq!(sha(raw.as_bytes()), digest);
    let inspected = p.run(&["image", "inspect", "--json", &format!("docker://{dest}")]).ok();
    assert!(inspected.stdout.contains(&digest), "inspect reads the pushed image from the registry: {}", inspected.stdout);
    tool("docker", &["pull", "-q", &dest]).ok();
    let run = tool("docker", &["run", "--rm", "--platform", "linux/amd64", &dest]);
    let _ = tool("docker", &["rmi", "-f", &dest]);
    assert!(run.stdout.contains("hi"), "{}{}", run.stdout, run.stderr);

    // A layout output fetches the layers once into the store; then, with the registry down,
    // the lock file and the store rebuild the same image offline.
    let first = p.run(&["image", "build", &p.s("images/test.toml"), "--quiet", "-o", &format!("oci:{}:v1", p.s("out1"))]).ok().last_line().to_owned();
    assert_eq!(first, digest);
    reg.kill();
    let offline = p.run(&["image", "build", &p.s("images/test.toml"), "--quiet", "-o", &format!("oci:{}:v1", p.s("out2"))]).ok().last_line().to_owned();
    assert_eq!(offline, digest, "the lock file reproduces the build without the registry");
}

/// A registry base's layer cached in the store is verified once; changed on disk afterwards
/// (its mtime with it), it is read again and the build fails naming it instead of linking it.
#[cfg(feature = "system-tests")]
#[test]
fn a_corrupt_cached_registry_blob_fails_the_build_naming_it() {
    let reg = Registry::plain();
    let p = Project::new();
    let base_ref = push_base(&p, &reg);
    p.standard(&base_ref, &["linux/amd64", "linux/arm64"]);
    p.run(&["image", "build", &p.s("images/test.toml"), "--quiet", "-o", &format!("oci:{}:v1", p.s("out1"))]).ok();
    let cached = base_layers(&p).into_iter().map(|l| p.store().join("blobs/sha256").join(l)).find(|f| f.exists()).expect("a base layer in the store");
    let mut bytes = std::fs::read(&cached).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0xff;
    // The output's hard link to the same inode is replaced too: write a new file over it.
    let tmp = cached.with_extension("tmp");
    std::fs::write(&tmp, &bytes).unwrap();
    std::fs::rename(&tmp, &cached).unwrap();
    // A layout output would link it, an archive output would stream it: both refuse it.
    let hex = cached.file_name().unwrap().to_string_lossy().into_owned();
    for (out, dest) in [(p.path("out2"), format!("oci:{}:v1", p.s("out2"))), (p.path("out2.tar"), format!("oci-archive:{}", p.s("out2.tar")))] {
        let run = p.run(&["image", "build", &p.s("images/test.toml"), "--quiet", "-o", &dest]);
        assert_eq!(run.code, 2, "{dest}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        for needle in [
            format!("blob sha256:{hex} of "),
            "cached in the blob store, is corrupt (digest mismatch".into(),
            "remove this file".into(),
            cached.display().to_string(),
        ] {
            assert!(run.stderr.contains(&needle), "{dest}: `{needle}` missing from: {}", run.stderr);
        }
        assert!(!out.exists(), "a failed build wrote {}", out.display());
    }
    let out = p.path("out2");
    // Removed, it is fetched again and the build is whole.
    std::fs::remove_file(&cached).unwrap();
    p.run(&["image", "build", &p.s("images/test.toml"), "--quiet", "-o", &format!("oci:{}:v1", out.display())]).ok();
}

#[cfg(feature = "system-tests")]
#[test]
fn push_and_pull_with_tls_credentials_and_no_secret_in_any_output() {
    let password = "cli-Pa55word-never-shown";
    let reg = Registry::tls_htpasswd("ci-user", password);
    let ca = reg.tls.as_ref().unwrap().ca.display().to_string();
    let p = Project::new();
    base::write_layout(&p.path("base"), &base::BaseSpec { platforms: vec![("linux", "amd64")], attestation: false, ..Default::default() });
    let src = format!("oci:{}:base", p.s("base"));
    let dest = format!("docker://{}/team/app:v1", reg.host());
    let auth = harness_b64(&format!("ci-user:{password}"));
    p.write("docker/config.json", &format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()));
    let authfile = p.s("docker/config.json");

    let pushed = p.run(&["image", "push", "--json", "--quiet", "--authfile", &authfile, "--ca-file", &ca, &src, &dest]).ok();
    let summary = json(pushed.last_line());
    assert!(summary["blobs_uploaded"].as_u64().unwrap() >= 3, "{summary}");
    let pulled = p.run(&["image", "pull", "--json", "--quiet", "--authfile", &authfile, "--ca-file", &ca, &dest, &format!("oci:{}:v1", p.s("pulled"))]).ok();
    assert_eq!(json(pulled.last_line())["digest"], summary["digest"]);
    let raw = tool("skopeo", &["inspect", "--raw", &format!("oci:{}:v1", p.s("pulled"))]).ok().stdout;
    assert_eq!(sha(raw.as_bytes()), summary["digest"].as_str().unwrap());
    for out in [&pushed.stdout, &pushed.stderr, &pulled.stdout, &pulled.stderr] {
        assert!(!out.contains(password), "password printed: {out}");
    }

    // A wrong password on stdin: exit 2, one error line naming the registry, no password.
    let wrong = "wrong-cli-Pa55word";
    let mut child = Command::new(env!("CARGO_BIN_EXE_sparkctl"))
        .args(["image", "push", "--json", "--username", "ci-user", "--password-stdin", "--ca-file", &ca, &src, &format!("docker://{}/team/app:v2", reg.host())])
        .env("SPARKCTL_STORE", p.store())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{wrong}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains("rejected the credentials") && stderr.contains(&reg.host()), "{stderr}");
    assert!(!stdout.contains(wrong) && !stderr.contains(wrong) && !stderr.contains(password), "password printed: {stdout}{stderr}");

    // Pull writes nothing when it fails (wrong tag).
    let missing = p.run(&[
        "image",
        "pull",
        "--quiet",
        "--authfile",
        &authfile,
        "--ca-file",
        &ca,
        &format!("docker://{}/team/app:nope", reg.host()),
        &format!("oci:{}:x", p.s("never")),
    ]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("team/app:nope") && missing.stderr.contains("manifest unknown"), "{}", missing.stderr);
    assert!(!p.path("never").exists());
}

fn harness_b64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            out.push(if k <= c.len() { T[(n >> (18 - 6 * k) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// A password store with one credential, for `docker-credential-pass` (a real helper, gpg-backed).
struct PassStore {
    dir: tempfile::TempDir,
}

impl PassStore {
    fn new(server: &str, user: &str, secret: &str) -> PassStore {
        let dir = tempfile::tempdir().unwrap();
        let s = PassStore { dir };
        std::fs::create_dir(s.gnupg()).unwrap();
        std::fs::set_permissions(s.gnupg(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let key = "sparkctl-test@example.invalid";
        s.ok(Command::new("gpg").args(["--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", key, "default", "default", "never"]));
        s.ok(Command::new("pass").args(["init", key]));
        let mut store = s
            .env(&mut Command::new("docker-credential-pass"))
            .arg("store")
            .stdin(Stdio::piped())
            .spawn()
            .expect("docker-credential-pass is installed (cargo xtask deps)");
        store.stdin.take().unwrap().write_all(format!(r#"{{"ServerURL":"{server}","Username":"{user}","Secret":"{secret}"}}"#).as_bytes()).unwrap();
        assert!(store.wait().unwrap().success());
        s
    }
    fn gnupg(&self) -> std::path::PathBuf {
        self.dir.path().join("gnupg")
    }
    fn env<'c>(&self, c: &'c mut Command) -> &'c mut Command {
        c.env("GNUPGHOME", self.gnupg()).env("PASSWORD_STORE_DIR", self.dir.path().join("pass"))
    }
    fn ok(&self, c: &mut Command) {
        let out = self.env(c).output().unwrap_or_else(|e| panic!("{c:?}: {e} (cargo xtask deps installs gnupg and pass)"));
        assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for PassStore {
    fn drop(&mut self) {
        // The gpg-agent this store started (its GNUPGHOME only).
        let _ = self.env(&mut Command::new("gpgconf")).args(["--kill", "gpg-agent"]).status();
    }
}

#[cfg(feature = "system-tests")]
#[test]
fn credentials_from_a_real_credential_helper_creds_store_and_cred_helpers() {
    let password = "helper-Pa55word-never-shown";
    let reg = Registry::tls_htpasswd("ci-user", password);
    let ca = reg.tls.as_ref().unwrap().ca.display().to_string();
    let pass = PassStore::new(&reg.host(), "ci-user", password);
    let p = Project::new();
    base::write_layout(&p.path("base"), &base::BaseSpec { platforms: vec![("linux", "amd64")], attestation: false, ..Default::default() });
    let src = format!("oci:{}:base", p.s("base"));
    let push = |store: &PassStore, config: &str, repo: &str| {
        p.write("docker/config.json", config);
        let mut c = Command::new(env!("CARGO_BIN_EXE_sparkctl"));
        store.env(&mut c).env("SPARKCTL_STORE", p.store()).args([
            "image",
            "push",
            "--quiet",
            "--authfile",
            &p.s("docker/config.json"),
            "--ca-file",
            &ca,
            &src,
            &format!("docker://{}/{repo}:v1", reg.host()),
        ]);
        let out = c.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, out) = push(&pass, r#"{"credsStore":"pass"}"#, "team/store");
    assert_eq!(code, Some(0), "credsStore: {out}");
    let (code, out) = push(&pass, &format!(r#"{{"credHelpers":{{"{}":"pass"}}}}"#, reg.host()), "team/helpers");
    assert_eq!(code, Some(0), "credHelpers: {out}");
    assert!(!out.contains(password));
    // A store with nothing for this registry: anonymous, so the registry asks to log in.
    let elsewhere = PassStore::new("other.invalid", "someone", "other-secret");
    let (code, out) = push(&elsewhere, r#"{"credsStore":"pass"}"#, "team/anon");
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("authentication required") && !out.contains("other-secret"), "{out}");
}

/// Runs `sparkctl ARGS` under `script`, which gives it a pseudo-terminal (progress is drawn only
/// on a terminal); returns everything it wrote.
fn on_a_terminal(p: &Project, args: &[&str]) -> String {
    let mut line = String::from(env!("CARGO_BIN_EXE_sparkctl"));
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let out = Command::new("script").args(["-qefc", &line, "/dev/null"]).env("SPARKCTL_STORE", p.store()).output().expect("script (bsdutils) is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(feature = "system-tests")]
#[test]
fn progress_is_drawn_on_a_terminal_and_not_with_quiet_or_without_one() {
    let reg = Registry::plain();
    let p = Project::new();
    base::write_layout(
        &p.path("base"),
        &base::BaseSpec {
            platforms: vec![("linux", "amd64")],
            attestation: false,
            pad_bytes: 160 << 20,
            pad_layers: 4,
            pad_uncompressed: true,
            ..Default::default()
        },
    );
    let src = format!("oci:{}:base", p.s("base"));
    let shown = on_a_terminal(&p, &["image", "push", &src, &format!("docker://{}/app/progress:v1", reg.host())]);
    // `push <ref>: <done> / <total> at <rate>/s`, redrawn in place, ending at the full size.
    assert!(shown.contains(&format!("push {}/app/progress:v1: ", reg.host())) && shown.contains("/s"), "{shown}");
    assert!(shown.contains("\r\x1b[2K"), "redrawn in place: {shown:?}");
    assert!(shown.contains("160.0 MiB / 160.0 MiB at "), "the total and the rate: {shown}");
    assert!(shown.split("\r\x1b[2K").any(|frame| frame.matches('%').count() >= 2), "blobs in flight with their percentage: {shown}");
    let quiet = on_a_terminal(&p, &["image", "push", "--quiet", &src, &format!("docker://{}/app/progress:v2", reg.host())]);
    assert!(!quiet.contains("\x1b[2K"), "--quiet draws nothing: {quiet:?}");
    let piped = p.run(&["image", "push", &src, &format!("docker://{}/app/progress:v3", reg.host())]).ok();
    assert!(!piped.stderr.contains("\x1b[2K"), "no terminal, no drawing: {:?}", piped.stderr);
    // A copy between registries fetches and pushes at once: each phase on its own line, both
    // ending at the full size.
    let other = Registry::plain();
    let copied = on_a_terminal(&p, &["image", "push", &format!("docker://{}/app/progress:v1", reg.host()), &format!("docker://{}/app/copy:v1", other.host())]);
    let last = copied.rsplit("\x1b[2K").next().unwrap_or_default();
    let fetch = last.find("fetch: 160.0 MiB / 160.0 MiB at ").unwrap_or_else(|| panic!("the fetches' line, finished: {copied:?}"));
    let push =
        last.find(&format!("push {}/app/copy:v1: 160.0 MiB / 160.0 MiB at ", other.host())).unwrap_or_else(|| panic!("the push's line, finished: {copied:?}"));
    let summary = last.find("pushed ").unwrap_or_else(|| panic!("the summary: {copied:?}"));
    // Each line fills its row (padded to the terminal's width), so the next starts a row of its own.
    let (first, second) = (fetch.min(push), fetch.max(push));
    assert_eq!(second - first, summary - second, "one row each: {last:?}");
}

/// `image inspect` takes the flags push and pull take (a private CA, credentials) and a bare
/// `REGISTRY/REPO:TAG`; `pull` of a two-platform image into a docker-archive asks for
/// `--platform` before downloading anything, and with it writes that platform alone.
#[cfg(feature = "system-tests")]
#[test]
fn inspect_takes_registry_flags_and_pull_picks_one_platform_for_a_docker_archive() {
    let password = "inspect-Pa55word-never-shown";
    let reg = Registry::tls_htpasswd("ci-user", password);
    let ca = reg.tls.as_ref().unwrap().ca.display().to_string();
    let p = Project::new();
    let index = base::write_layout(&p.path("base"), &base::BaseSpec::default());
    let auth = harness_b64(&format!("ci-user:{password}"));
    p.write("docker/config.json", &format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()));
    let authfile = p.s("docker/config.json");
    let bare = format!("{}/team/multi:v1", reg.host());
    p.run(&["image", "push", "--quiet", "--authfile", &authfile, "--ca-file", &ca, &format!("oci:{}:base", p.s("base")), &format!("docker://{bare}")]).ok();

    let inspected = p.run(&["image", "inspect", "--json", "--authfile", &authfile, "--ca-file", &ca, &bare]).ok();
    assert!(inspected.stdout.contains(&index), "{}", inspected.stdout);
    let help = p.run(&["image", "inspect", "--help"]).ok().stdout;
    assert!(help.contains("docker://REGISTRY/REPO") && help.contains("--ca-file") && help.contains("--authfile"), "{help}");

    let archive = p.path("one.tar");
    let dest = format!("docker-archive:{}:team/multi:v1", archive.display());
    let refused = p.run(&["image", "pull", "--quiet", "--authfile", &authfile, "--ca-file", &ca, &bare, &dest]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("has 2 platforms (linux/amd64, linux/arm64)") && refused.stderr.contains("--platform linux/arm64"), "{}", refused.stderr);
    assert!(!archive.exists());
    for layer in base_layers(&p) {
        assert!(!p.store().join("blobs/sha256").join(&layer).exists(), "base layer {layer} was downloaded before the refusal");
    }

    let pulled = p.run(&["image", "pull", "--quiet", "--platform", "linux/arm64", "--authfile", &authfile, "--ca-file", &ca, &bare, &dest]).ok();
    let inspected = tool("skopeo", &["inspect", "--raw", &format!("docker-archive:{}", archive.display())]).ok().stdout;
    assert!(inspected.contains("\"layers\""), "a single manifest, not an index: {inspected}");
    let config = json(&tool("skopeo", &["inspect", "--config", &format!("docker-archive:{}", archive.display())]).ok().stdout);
    assert_eq!(config["architecture"], "arm64", "{config}");
    assert!(!pulled.stdout.contains(password));
    let missing =
        p.run(&["image", "pull", "--quiet", "--platform", "linux/s390x", "--authfile", &authfile, "--ca-file", &ca, &bare, &format!("oci:{}", p.s("x"))]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("platform linux/s390x is not in") && missing.stderr.contains("linux/amd64, linux/arm64"), "{}", missing.stderr);
}

/// `--password-stdin` alone would silently send no credentials: refused, one line.
#[test]
fn password_stdin_without_username_is_refused() {
    let p = Project::new();
    for cmd in
        [&["image", "push", "--password-stdin", "oci:x", "docker://localhost:1/x:1"][..], &["image", "inspect", "--password-stdin", "localhost:1/x:1"][..]]
    {
        let run = p.run(cmd);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.starts_with("error: ") && run.stderr.contains("--username"), "{}", run.stderr);
    }
}

/// A reference of the wrong kind (or a mistyped transport) is refused before any file or
/// network is touched, in one line naming it.
#[test]
fn references_of_the_wrong_kind_are_refused_naming_the_right_one() {
    let p = Project::new();
    for (cmd, needle) in [
        (&["image", "push", "oci:x", "oci:y"][..], "`oci:y`: push writes to a registry"),
        (&["image", "pull", "oci:x", "oci:y"][..], "`oci:x`: pull reads from a registry"),
        (&["image", "pull", "localhost:1/x:1", "localhost:1/y:1"][..], "`localhost:1/y:1`: pull writes a local image"),
        (&["image", "pull", "docker://localhost:1/x:1", "oci-archve:y.tar"][..], "did you mean `oci-archive:y.tar`?"),
        (&["image", "inspect", "dockr://localhost:1/x:1"][..], "did you mean `docker://localhost:1/x:1`?"),
        (&["image", "push", "oci:x", "docker://localhost:1/x:bad!"][..], "invalid tag `bad!`"),
    ] {
        let start = std::time::Instant::now();
        let run = p.run(cmd);
        assert_eq!(run.code, 2, "{cmd:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{cmd:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: ") && run.stderr.contains(needle), "{cmd:?}: {}", run.stderr);
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "{cmd:?}: took {:?}", start.elapsed());
    }
}
