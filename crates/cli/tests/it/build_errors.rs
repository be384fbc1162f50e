//! Bad inputs to `sparkctl image build`: one `error:` line that names the operand, exit code 2,
//! and no output left behind.

use crate::support::{Project, Run};
use std::path::Path;
use test_support::base::{write_layout, BaseSpec};

fn base(p: &Project) -> String {
    write_layout(&p.path("base"), &BaseSpec::default());
    p.standard(&format!("oci:{}:base", p.s("base")), &["linux/amd64", "linux/arm64"]);
    format!("oci:{}:base", p.s("base"))
}

/// Asserts the failure shape and that `out` does not exist, and that no temp file was left in its folder.
fn fails(run: Run, needles: &[&str], out: &Path) {
    assert_eq!(run.code, 2, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line, got: {}", run.stderr);
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "`{n}` missing from: {}", lines[0]);
    }
    assert!(!out.exists(), "{} was written", out.display());
    let Ok(dir) = std::fs::read_dir(out.parent().unwrap()) else { return };
    let leftovers: Vec<_> = dir.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with(".sparkctl-")).collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

fn build(p: &Project, extra: &[&str]) -> Run {
    let recipe = p.s("images/test.toml");
    let mut args = vec!["image", "build", recipe.as_str()];
    args.extend_from_slice(extra);
    p.run(&args)
}

fn blob_of(p: &Project, media_type: &str) -> std::path::PathBuf {
    // Find the first blob of a kind by reading the manifests (amd64 is listed first).
    let idx: serde_json::Value = serde_json::from_slice(&std::fs::read(p.path("base/index.json")).unwrap()).unwrap();
    let top = idx["manifests"][0]["digest"].as_str().unwrap();
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(p.path(&format!("base/blobs/sha256/{}", &top[7..]))).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    if media_type == "manifest" {
        return p.path(&format!("base/blobs/sha256/{}", &m[7..]));
    }
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(p.path(&format!("base/blobs/sha256/{}", &m[7..]))).unwrap()).unwrap();
    let d = if media_type == "config" { manifest["config"]["digest"].as_str().unwrap() } else { manifest["layers"][0]["digest"].as_str().unwrap() };
    p.path(&format!("base/blobs/sha256/{}", &d[7..]))
}

#[test]
fn recipe_and_overlay_mistakes() {
    let p = Project::new();
    base(&p);
    let out = p.path("out");
    let o = format!("oci:{}", out.display());
    let recipe = std::fs::read_to_string(p.path("images/test.toml")).unwrap();
    p.write("images/test.toml", &recipe.replace("\"amd64-only\"", "\"amd64-onyl\""));
    fails(build(&p, &["-o", &o]), &["unknown overlay `amd64-onyl`", "did you mean `amd64-only`?", "test.toml"], &out);
    p.write("images/test.toml", &recipe.replace("working_dir", "workdir"));
    let line = recipe.lines().position(|l| l.starts_with("working_dir")).expect("the test recipe sets working_dir") + 1;
    fails(build(&p, &["-o", &o]), &[&format!("test.toml line {line}: unknown key `workdir` in [config]"), "did you mean `working_dir`?"], &out);
    p.write("images/test.toml", &recipe);
    fails(build(&p, &["-o", &o, "--platform", "linux/s390x"]), &["platform linux/s390x is not in", "linux/amd64, linux/arm64"], &out);
    fails(build(&p, &["-o", &format!("oci:{}", p.s("missing/dir"))]), &["output folder", "does not exist"], &p.path("missing/dir"));
    fails(build(&p, &["-o", &format!("docker-archive:{}", p.s("d.tar"))]), &["docker-archive holds one platform", "--platform"], &p.path("d.tar"));
    fails(build(&p, &["-o", "out"]), &["invalid image reference `out`", "oci:DIR"], &out);
    p.write("overlays/files/overlay.toml", "delete = [\"etc/nccl.conf\"]\n");
    fails(build(&p, &["-o", &o]), &["overlay.toml", "not an absolute image path", "/etc/nccl.conf"], &out);
    p.write("overlays/files/overlay.toml", "");
    std::os::unix::fs::symlink("../../../../../etc/passwd", p.path("overlays/files/rootfs/etc/spark/escape")).unwrap();
    fails(build(&p, &["-o", &o]), &["climbs out of the overlay tree"], &out);
    std::fs::remove_file(p.path("overlays/files/rootfs/etc/spark/escape")).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_sparkctl"))
        .args(["image", "build", &p.s("images/test.toml"), "-o", &o])
        .env("SPARKCTL_STORE", p.store())
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    fails(
        Run { code: run.status.code().unwrap(), stdout: String::from_utf8_lossy(&run.stdout).into(), stderr: String::from_utf8_lossy(&run.stderr).into() },
        &["SOURCE_DATE_EPOCH=`yesterday`"],
        &out,
    );
    // After all that, the same project builds.
    build(&p, &["-o", &o]).ok();
}

#[test]
fn corrupt_base_is_refused_with_nothing_written() {
    let cases: [(&str, &str, &[&str]); 4] = [
        ("config", "flip", &["digest mismatch", "corrupt"]),
        ("manifest", "truncate", &["size mismatch"]),
        ("config", "delete", &["is missing from"]),
        ("layer", "flip", &["digest mismatch"]),
    ];
    for (what, how, needles) in cases {
        let p = Project::new();
        base(&p);
        let blob = blob_of(&p, what);
        let mut bytes = std::fs::read(&blob).unwrap();
        match how {
            "flip" => {
                let i = bytes.len() / 2;
                bytes[i] ^= 0xff;
                std::fs::write(&blob, &bytes).unwrap();
            }
            "truncate" => std::fs::write(&blob, &bytes[..bytes.len() - 3]).unwrap(),
            _ => std::fs::remove_file(&blob).unwrap(),
        }
        // A corrupt layer is found when its bytes are read: by the archive writer.
        let out = p.path("out.tar");
        fails(build(&p, &["-o", &format!("oci-archive:{}", out.display())]), needles, &out);
    }
}

#[test]
fn wrong_media_type_is_named() {
    let p = Project::new();
    base(&p);
    let mut idx: serde_json::Value = serde_json::from_slice(&std::fs::read(p.path("base/index.json")).unwrap()).unwrap();
    idx["manifests"][0]["mediaType"] = "text/plain".into();
    std::fs::write(p.path("base/index.json"), idx.to_string()).unwrap();
    fails(build(&p, &["-o", &format!("oci:{}", p.s("out"))]), &["media type `text/plain`"], &p.path("out"));
}

#[test]
fn elf_of_the_wrong_machine_is_refused_before_anything_is_written() {
    let p = Project::new();
    base(&p);
    p.write("overlays/bin/overlay.toml", "[[artifact]]\npath = \"/usr/local/bin/tool\"\nelf = true\n");
    let recipe = std::fs::read_to_string(p.path("images/test.toml")).unwrap();
    p.write("images/test.toml", &recipe.replace("\"amd64-only\"]", "\"amd64-only\", \"bin\"]"));
    let x86 = env!("CARGO_BIN_EXE_sparkctl");
    let out = p.path("out");
    let o = format!("oci:{}", out.display());
    fails(
        build(&p, &["-o", &o, "--artifact", &format!("/usr/local/bin/tool@linux/amd64={x86}")]),
        &["no file for linux/arm64", "--artifact /usr/local/bin/tool@linux/arm64=FILE"],
        &out,
    );
    fails(
        build(
            &p,
            &["-o", &o, "--artifact", &format!("/usr/local/bin/tool@linux/amd64={x86}"), "--artifact", &format!("/usr/local/bin/tool@linux/arm64={x86}")],
        ),
        &["x86-64", "linux/arm64"],
        &out,
    );
    let store_layers = std::fs::read_dir(p.store().join("blobs/sha256")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(store_layers, 0, "no layer may be written before the artifacts are checked");
    // Right machine: builds, and only on amd64 (the arm64 image is left out by --platform).
    build(&p, &["-o", &o, "--platform", "linux/amd64", "--artifact", &format!("/usr/local/bin/tool@linux/amd64={x86}")]).ok();
}

/// Flips one byte in the middle of a blob, keeping its size (what a bad disk or a stray write does).
fn flip(blob: &Path) {
    let mut bytes = std::fs::read(blob).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0xff;
    std::fs::write(blob, &bytes).unwrap();
}

/// A layout output links base layers: a corrupt one must fail the build, not reach the output.
#[test]
fn corrupt_base_layer_never_reaches_a_layout_output() {
    let p = Project::new();
    base(&p);
    flip(&blob_of(&p, "layer"));
    let out = p.path("out");
    fails(build(&p, &["-o", &format!("oci:{}", out.display())]), &["digest mismatch", "corrupt", &p.s("base")], &out);
    // Into an existing layout too: nothing of this build is added to it.
    let existing = p.path("existing");
    std::fs::create_dir_all(existing.join("blobs/sha256")).unwrap();
    std::fs::write(existing.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(existing.join("index.json"), r#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
    let run = build(&p, &["-o", &format!("oci:{}", existing.display())]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("digest mismatch"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(existing.join("blobs/sha256")).unwrap().count(), 0, "blobs of a failed build were left in the layout");
}

/// Verification is remembered per file state: a second build does not read an unchanged base
/// blob again (proved by corrupting it behind the store's back, keeping size and mtime), while a
/// blob whose mtime changed is read again and caught.
#[test]
fn base_blobs_are_verified_once_and_again_when_they_change() {
    let p = Project::new();
    base(&p);
    build(&p, &["-o", &format!("oci:{}", p.s("out1"))]).ok();
    let records = std::fs::read_dir(p.store().join("verified/sha256")).unwrap().count();
    assert!(records >= 2, "one record per verified base layer, found {records}");

    // Same size, same mtime, other bytes: the store trusts its record, no byte is read.
    let blob = blob_of(&p, "layer");
    let mtime = std::fs::metadata(&blob).unwrap().modified().unwrap();
    flip(&blob);
    std::fs::File::options().write(true).open(&blob).unwrap().set_modified(mtime).unwrap();
    build(&p, &["-o", &format!("oci:{}", p.s("out2"))]).ok();

    // Touched: read again, and the flipped byte is found.
    std::fs::File::options().write(true).open(&blob).unwrap().set_modified(std::time::SystemTime::now()).unwrap();
    let out = p.path("out3");
    fails(build(&p, &["-o", &format!("oci:{}", out.display())]), &["digest mismatch"], &out);
    // Mended in place: verified and remembered again.
    flip(&blob);
    build(&p, &["-o", &format!("oci:{}", p.s("out4"))]).ok();
    // Another inode with the same size and mtime but corrupt bytes (a file rewritten and
    // renamed over the blob): only the inode tells it apart, and it is read again and caught.
    let mtime = std::fs::metadata(&blob).unwrap().modified().unwrap();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&blob).unwrap());
    let copy = p.path("copy");
    std::fs::copy(&blob, &copy).unwrap();
    flip(&copy);
    std::fs::File::options().write(true).open(&copy).unwrap().set_modified(mtime).unwrap();
    std::fs::rename(&copy, &blob).unwrap();
    assert_ne!(std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&blob).unwrap()), ino);
    assert_eq!(std::fs::metadata(&blob).unwrap().modified().unwrap(), mtime);
    let out = p.path("out5");
    fails(build(&p, &["-o", &format!("oci:{}", out.display())]), &["digest mismatch", blob.file_name().unwrap().to_str().unwrap()], &out);
}

#[test]
fn whiteout_names_in_an_overlay_tree_are_refused() {
    for name in [".wh.bin", ".wh..wh..opq", ".wh.", "sub/.wh.x"] {
        let p = Project::new();
        base(&p);
        p.write(&format!("overlays/files/rootfs/etc/{name}"), "");
        let out = p.path("out");
        fails(build(&p, &["-o", &format!("oci:{}", out.display())]), &[".wh.", "whiteout", "delete = [\"/path\"]"], &out);
    }
}

/// The same names written as image paths: a deletion, an artifact's path (overlay or flag).
#[test]
fn whiteout_names_as_image_paths_are_refused() {
    let p = Project::new();
    base(&p);
    let out = p.path("out");
    let o = format!("oci:{}", out.display());
    let recipe = std::fs::read_to_string(p.path("images/test.toml")).unwrap();
    p.write("images/test.toml", &recipe.replace("\"amd64-only\"]", "\"amd64-only\", \"bin\"]"));
    p.write("overlays/bin/overlay.toml", "delete = [\"/etc/.wh.hostname\"]\n");
    fails(
        build(&p, &["-o", &o]),
        &["overlay.toml line 1: delete: `/etc/.wh.hostname` has a part starting with `.wh.`", "write `delete = [\"/etc/hostname\"]`"],
        &out,
    );
    p.write("overlays/bin/overlay.toml", "delete = [\"/.wh..wh..opq\"]\n");
    fails(build(&p, &["-o", &o]), &["delete: `/.wh..wh..opq`", "OCI whiteout"], &out);
    p.write("overlays/bin/overlay.toml", "[[artifact]]\npath = \"/usr/.wh.bin\"\n");
    fails(build(&p, &["-o", &o]), &["artifact.path: `/usr/.wh.bin`", "OCI whiteout", "`delete = [\"/path\"]`"], &out);
    std::fs::remove_file(p.path("overlays/bin/overlay.toml")).unwrap();
    p.write("overlays/bin/overlay.toml", "");
    let x86 = env!("CARGO_BIN_EXE_sparkctl");
    for path in ["/usr/.wh.bin", "/usr/bin/.wh..wh..opq", "/.wh."] {
        fails(
            build(&p, &["-o", &o, "--platform", "linux/amd64", "--artifact", &format!("{path}@linux/amd64={x86}")]),
            &[&format!("--artifact: `{path}` has a part starting with `.wh.`"), "`delete = [\"/path\"]`"],
            &out,
        );
    }
}

#[test]
fn modes_must_name_paths_of_the_tree_in_octal() {
    let p = Project::new();
    base(&p);
    let out = p.path("out");
    let o = format!("oci:{}", out.display());
    p.write("overlays/files/overlay.toml", "[modes]\n\"/etc/spark/conf\" = 755\n");
    fails(build(&p, &["-o", &o]), &["modes.\"/etc/spark/conf\" = 755 is a decimal number (mode 0o1363)", "write `0o755`"], &out);
    p.write("overlays/files/overlay.toml", "[modes]\n\"/etc/spark/cnof\" = 0o600\n");
    fails(build(&p, &["-o", &o]), &["[modes] names `/etc/spark/cnof`, which is not in this rootfs/"], &out);
    p.write("overlays/amd64-only/overlay.toml", "platforms = [\"linux/amd64\"]\n[modes]\n\"/etc/nothing\" = 0o600\n");
    p.write("overlays/files/overlay.toml", "[modes]\n\"/etc/spark/conf\" = 0o600\n\"/etc/spark\" = 0o750\n");
    fails(build(&p, &["-o", &o]), &["`/etc/nothing`"], &out);
    p.write("overlays/amd64-only/overlay.toml", "platforms = [\"linux/amd64\"]\n");
    build(&p, &["-o", &o]).ok();
}

/// Archive outputs (and `render --output`, in its own tests) replace only regular files.
#[cfg(feature = "system-tests")]
#[test]
fn archive_outputs_refuse_what_is_not_a_regular_file() {
    let p = Project::new();
    base(&p);
    // Were /dev/null already a regular file (replaced by some older tool), the build would be
    // right to replace it again: say so instead.
    let is_char = || std::os::unix::fs::FileTypeExt::is_char_device(&std::fs::metadata("/dev/null").unwrap().file_type());
    assert!(is_char(), "/dev/null on this machine is not a character device: something replaced it (`mknod -m 666 /dev/null c 1 3` restores it)");
    let fifo = p.path("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let sock = std::os::unix::net::UnixListener::bind(p.path("sock")).unwrap();
    std::os::unix::fs::symlink(p.path("target.tar"), p.path("link")).unwrap();
    // A block device node of its own (the tests run as root): loop device 7:250, which need not
    // exist for its node to be made, and nothing of this machine's disks is at stake.
    let block = p.path("block");
    let made = std::process::Command::new("mknod").arg(&block).args(["b", "7", "250"]).status().unwrap();
    assert!(made.success(), "mknod {} b 7 250 failed: the tests run as root", block.display());
    let is_block = || std::os::unix::fs::FileTypeExt::is_block_device(&std::fs::symlink_metadata(&block).unwrap().file_type());
    for (path, what) in
        [(Path::new("/dev/null"), "character device"), (&block, "block device"), (&fifo, "FIFO"), (&p.path("sock"), "socket"), (&p.path("link"), "symlink")]
    {
        for transport in ["oci-archive", "docker-archive"] {
            let run = build(&p, &["--platform", "linux/amd64", "-o", &format!("{transport}:{}", path.display())]);
            assert_eq!(run.code, 2, "{transport}:{}: {}{}", path.display(), run.stdout, run.stderr);
            assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
            assert!(run.stderr.contains(&format!("is a {what}")) && run.stderr.contains("may only replace a regular file"), "{}", run.stderr);
        }
    }
    drop(sock);
    assert!(is_char(), "/dev/null was replaced");
    assert!(is_block(), "the block device node was replaced");
    assert!(!p.path("target.tar").exists());
}

#[test]
fn source_date_epoch_in_milliseconds_is_refused() {
    let p = Project::new();
    base(&p);
    let out = p.path("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_sparkctl"))
        .args(["image", "build", &p.s("images/test.toml"), "-o", &format!("oci:{}", out.display())])
        .env("SPARKCTL_STORE", p.store())
        .env("SOURCE_DATE_EPOCH", "1764547200000")
        .output()
        .unwrap();
    fails(
        Run { code: run.status.code().unwrap(), stdout: String::from_utf8_lossy(&run.stdout).into(), stderr: String::from_utf8_lossy(&run.stderr).into() },
        &["SOURCE_DATE_EPOCH=`1764547200000` is after year 9999", "milliseconds: divide by 1000"],
        &out,
    );
}

/// A mistyped transport is refused before any network use: no DNS lookup, no retries.
#[test]
fn unknown_base_transports_never_touch_the_network() {
    let p = Project::new();
    base(&p);
    let out = p.path("out");
    let o = format!("oci:{}", out.display());
    for (bad, needle) in [
        ("dir:/x".to_owned(), "unknown transport `dir:`".to_owned()),
        (format!("oci-archve:{}", p.s("base.tar")), format!("did you mean `oci-archive:{}`?", p.s("base.tar"))),
        (format!("ocii:{}:base", p.s("base")), format!("did you mean `oci:{}:base`?", p.s("base"))),
        ("dockr://reg.invalid/x:1".to_owned(), "did you mean `docker://reg.invalid/x:1`?".to_owned()),
        ("docker:/reg.invalid/x:1".to_owned(), "did you mean `docker://reg.invalid/x:1`?".to_owned()),
        ("http://reg.invalid/x:1".to_owned(), "write `docker://reg.invalid/x:1`".to_owned()),
    ] {
        let start = std::time::Instant::now();
        fails(build(&p, &["--base", &bad, "-o", &o]), &[&needle], &out);
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "{bad}: took {:?} (network retries?)", start.elapsed());
    }
}

/// An output without a transport is a forgotten `oci:`, never read as a Docker Hub name; a bad
/// tag is refused by the same rule on every transport, before the build starts.
#[test]
fn outputs_name_their_transport_and_their_tags_follow_one_rule() {
    let p = Project::new();
    base(&p);
    let out = p.path("out");
    fails(build(&p, &["-o", &p.s("out")]), &["no transport", "oci:DIR", "docker://REGISTRY"], &out);
    fails(build(&p, &["-o", &format!("oci:{}:bad!", p.s("out"))]), &["invalid tag `bad!`"], &out);
    fails(build(&p, &["-o", &format!("docker-archive:{}:x/Bad:1", p.s("out"))]), &["invalid repository component `Bad`"], &out);
}

/// clap's usage errors come out as the one `error:` line the README promises, exit code 2.
#[test]
fn usage_errors_are_one_line() {
    let p = Project::new();
    for (args, needle) in [
        (&["image", "build", "x.toml"][..], "--output <DEST>"),
        (&["image", "biuld"][..], "biuld"),
        (&["image", "build", "x.toml", "-o", "oci:x", "--bogus"][..], "--bogus"),
        (&["render", "netplna", "--node", "a"][..], "netplna"),
        (&["image", "pull", "--retries", "many", "a", "b"][..], "many"),
    ] {
        let run = p.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: ") && run.stderr.contains(needle) && run.stderr.contains("usage: sparkctl"), "{args:?}: {}", run.stderr);
    }
    let help = p.run(&["image", "build", "--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Usage:"));
}

#[test]
fn a_missing_overlays_folder_is_named_with_the_flag() {
    let p = Project::new();
    base(&p);
    let out = p.path("out");
    let o = format!("oci:{}", out.display());
    fails(build(&p, &["-o", &o, "--overlays", &p.s("nope")]), &["--overlays", "no such folder"], &out);
    std::fs::rename(p.path("overlays"), p.path("elsewhere")).unwrap();
    fails(build(&p, &["-o", &o]), &["does not exist", "pass `--overlays DIR`"], &out);
    build(&p, &["-o", &o, "--overlays", &p.s("elsewhere")]).ok();
}

/// The documented commands fit together: the stand-in example passes the binary the documented
/// glibc build writes (nothing here builds the musl targets), and a registry example that gives
/// only the arm64 binary keeps only arm64 (the recipe would otherwise ask for the amd64 one).
#[test]
fn documented_build_examples_name_binaries_that_the_documented_commands_build() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let image_md = std::fs::read_to_string(root.join("docs/image.md")).unwrap();
    let gnu = image_md.lines().find(|l| l.contains("crt-static") && l.contains("cargo build")).expect("a documented static glibc build");
    let arg = |line: &str, flag: &str| line.split_whitespace().skip_while(|w| *w != flag).nth(1).map(str::to_owned);
    let built = format!("target/{}/{}/spark-entrypoint", arg(gnu, "--target").unwrap(), arg(gnu, "--profile").unwrap());
    let stand_in = image_md.split("### On a local stand-in base").nth(1).unwrap();
    let artifact = stand_in.split_whitespace().find(|w| w.starts_with("/usr/local/bin/spark-entrypoint@")).expect("an --artifact in the stand-in example");
    assert_eq!(artifact.split_once('=').unwrap().1, built, "docs/image.md's stand-in example names a binary its build commands do not make");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for block in readme.split("```sh").skip(1).map(|b| b.split("```").next().unwrap()).filter(|b| b.contains("image build") && b.contains("docker://")) {
        let arm_only = block.contains("spark-entrypoint@linux/arm64") && !block.contains("spark-entrypoint@linux/amd64");
        assert!(!arm_only || block.contains("--platform linux/arm64"), "README registry build gives only the arm64 binary but keeps both platforms:\n{block}");
        assert!(block.contains("SOURCE_DATE_EPOCH="), "README registry build without a meaningful created date:\n{block}");
    }
}
