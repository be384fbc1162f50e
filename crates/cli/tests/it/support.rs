//! Running `sparkctl` and the peer tools, and a scratch project with a recipe and overlays.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "command failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
    /// The last stdout line (the image digest for `image build`).
    pub fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }
}

fn to_run(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub fn sparkctl(store: &Path, args: &[&str]) -> Run {
    to_run(Command::new(env!("CARGO_BIN_EXE_sparkctl")).args(args).env("SPARKCTL_STORE", store).env_remove("SOURCE_DATE_EPOCH").output().unwrap())
}

/// Runs a peer tool; a missing tool fails the test (the test command installs them).
pub fn tool(name: &str, args: &[&str]) -> Run {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| panic!("`{name}` could not run ({e}); `cargo xtask deps` installs it"));
    to_run(out)
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// A scratch project: `images/test.toml`, `overlays/…`, a base layout at `base/`, a store.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project { dir: tempfile::tempdir().unwrap() }
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn s(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }
    pub fn store(&self) -> PathBuf {
        self.path("store")
    }
    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    pub fn chmod(&self, rel: &str, mode: u32) {
        std::fs::set_permissions(self.path(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    pub fn run(&self, args: &[&str]) -> Run {
        sparkctl(&self.store(), args)
    }
    /// A recipe over `base` with the standard test overlays.
    pub fn standard(&self, base_ref: &str, platforms: &[&str]) {
        let plats = platforms.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
        self.write(
            "images/test.toml",
            &format!(
                "overlays = [\"files\", \"amd64-only\"]\n\n[base]\nref = \"{base_ref}\"\nplatforms = [{plats}]\n\n[config]\nenv = {{ RECIPE_VAR = \"from recipe\", BASE_ONLY = \"overridden\" }}\nentrypoint = [\"/bin/sh\", \"-c\"]\ncmd = [\"echo hi\"]\nworking_dir = \"/work\"\nlabels = {{ \"org.opencontainers.image.source\" = \"https://example.invalid/sparkctl\" }}\n"
            ),
        );
        self.write(
            "overlays/files/overlay.toml",
            "description = \"test files\"\ndelete = [\"/etc/nccl.conf\"]\n\n[env]\nOVERLAY_VAR = \"from overlay\"\n\n[modes]\n\"/usr/local/share/secret\" = 0o600\n",
        );
        self.write("overlays/files/rootfs/usr/local/bin/hello", "#!/bin/sh\necho hello from overlay\n");
        self.chmod("overlays/files/rootfs/usr/local/bin/hello", 0o755);
        self.write("overlays/files/rootfs/usr/local/share/secret", "s3cret\n");
        self.write("overlays/files/rootfs/etc/spark/conf", "a=1\n");
        std::fs::create_dir_all(self.path("overlays/files/rootfs/var/empty")).unwrap();
        std::os::unix::fs::symlink("/usr/local/bin/hello", self.path("overlays/files/rootfs/usr/local/bin/hello-link")).unwrap();
        self.write("overlays/amd64-only/overlay.toml", "platforms = [\"linux/amd64\"]\n");
        self.write("overlays/amd64-only/rootfs/etc/amd64-only", "x86\n");
    }
}

/// Lists the entries of a gzip layer blob: (path, mode, uid, gid, mtime, type).
pub fn layer_entries(blob: &Path) -> Vec<(String, u32, u64, u64, u64, char)> {
    let f = std::fs::File::open(blob).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let t = match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                _ => 'f',
            };
            (e.path().unwrap().display().to_string(), h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap(), h.mtime().unwrap(), t)
        })
        .collect()
}
