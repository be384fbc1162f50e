//! Bad inputs to `sparkctl image build`: one `error:` line that names the operand, exit code 2,
//! and no output left behind.

use crate::base::{write_layout, BaseSpec};
use crate::support::{Project, Run};
use std::path::Path;

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
    fails(build(&p, &["-o", &o]), &["unknown key `workdir` in [config]", "did you mean `working_dir`?"], &out);
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
