//! `cargo xtask bench registry [GB]`: push and pull of a multi-layer image (default 2.2 GB) to
//! and from a local `docker-registry`, side by side with `skopeo copy` of the same image in the
//! same run, and the bytes a re-push sends after one overlay changed (counted on the wire by a
//! proxy in front of the registry). Prints a Markdown table, also written to
//! target/bench/registry/results.md (copied into BENCHMARKS.md, section "Registry").
//! skopeo runs with `--preserve-digests`: without it, it gzips the uncompressed layers on the
//! way to a registry, so it would neither move the same bytes nor produce the same image.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;
use test_support::base;
use test_support::fuzz::noise;
use test_support::registry::proxy::Proxy;
use test_support::registry::Registry;
use xshell::{cmd, Shell};

pub fn run(sh: &Shell, args: &[String]) -> Result<()> {
    let size_gb: f64 = match args.first() {
        Some(a) => a.parse().context("the argument is the image size in GB, e.g. 2.2")?,
        None => 2.2,
    };
    if size_gb < 0.01 {
        bail!("size {size_gb} GB: give at least 0.01");
    }
    cmd!(sh, "cargo build --release --locked -p cli").run()?;
    let sparkctl = sh.current_dir().join("target/release/sparkctl");
    let root = sh.current_dir().join("target/bench/registry");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;

    // The image: a base of incompressible layers plus one small overlay (v1), and the same
    // with the overlay's content changed (v2), built by sparkctl.
    let layers = ((size_gb * 3.0).ceil() as usize).max(4);
    eprintln!("== writing a {size_gb} GB base with {layers} padding layers");
    let base_dir = root.join("base");
    base::write_layout(
        &base_dir,
        &base::BaseSpec {
            platforms: vec![("linux", "amd64")],
            attestation: false,
            pad_bytes: (size_gb * 1e9) as u64,
            pad_layers: layers,
            pad_uncompressed: true,
            ..Default::default()
        },
    );
    let store = root.join("store");
    let mut images = Vec::new();
    for v in ["v1", "v2"] {
        write_recipe(&root, v)?;
        let out = root.join(format!("img-{v}"));
        let (recipe, base_ref, out_ref) = (root.join("images/bench.toml"), format!("oci:{}:base", base_dir.display()), format!("oci:{}:{v}", out.display()));
        cmd!(sh, "{sparkctl} image build {recipe} --base {base_ref} --store {store} -o {out_ref}").quiet().ignore_stdout().run()?;
        images.push(out_ref);
    }
    let image_bytes = layout_bytes(&root.join("img-v1"))?;
    cmd!(sh, "sync").run()?;

    let registry = Registry::plain_in(&root);
    let host = registry.host();
    let q = "--quiet";
    let v1 = &images[0];
    let v2 = &images[1];

    eprintln!("== push {v1}");
    let push_sparkctl = timed(|| cmd!(sh, "{sparkctl} image push {q} {v1} docker://{host}/bench/sparkctl:v1").quiet().ignore_stdout().run())?;
    let push_skopeo = timed(|| cmd!(sh, "skopeo copy {q} --preserve-digests --dest-tls-verify=false {v1} docker://{host}/bench/skopeo:v1").run())?;

    eprintln!("== pull");
    let pull_store = root.join("pull-store");
    let (s_out, k_out) = (format!("oci:{}:v1", root.join("pulled-sparkctl").display()), format!("oci:{}:v1", root.join("pulled-skopeo").display()));
    let pull_sparkctl =
        timed(|| cmd!(sh, "{sparkctl} image pull {q} --store {pull_store} docker://{host}/bench/sparkctl:v1 {s_out}").quiet().ignore_stdout().run())?;
    let pull_skopeo = timed(|| cmd!(sh, "skopeo copy {q} --preserve-digests --src-tls-verify=false docker://{host}/bench/skopeo:v1 {k_out}").run())?;

    eprintln!("== re-push after one overlay change, through a byte-counting proxy");
    let proxy = Proxy::start(registry.port);
    let take = || proxy.sent.swap(0, Ordering::SeqCst);
    let via = proxy.host();
    let json = cmd!(sh, "{sparkctl} image push {q} --json {v2} docker://{via}/bench/sparkctl:v2").read()?;
    let repush_sparkctl_wire = take();
    let summary: serde_json::Value = serde_json::from_str(json.lines().last().unwrap_or("{}")).context("push --json output")?;
    let repush_sparkctl_body = summary["bytes_uploaded"].as_u64().unwrap_or(0);
    cmd!(sh, "skopeo copy {q} --preserve-digests --dest-tls-verify=false {v2} docker://{via}/bench/skopeo:v2").run()?;
    let repush_skopeo_wire = take();
    let changed = changed_bytes(&root.join("img-v1"), &root.join("img-v2"))?;

    let gb = image_bytes as f64 / 1e9;
    let row = |what: &str, s: f64, k: f64| format!("| {what} | {s:.1} s ({:.0} MB/s) | {k:.1} s ({:.0} MB/s) | {:.2} |\n", gb * 1e3 / s, gb * 1e3 / k, k / s);
    let mut table = format!("Image: {gb:.2} GB in {} layers (incompressible), one platform; local `docker-registry` on loopback, plain HTTP.\n\n", layers + 3);
    table += "| operation | sparkctl | skopeo copy | skopeo / sparkctl |\n| --- | --- | --- | --- |\n";
    table += &row("push (empty registry)", push_sparkctl, push_skopeo);
    table += &row("pull (empty store / new layout)", pull_sparkctl, pull_skopeo);
    table += &format!(
        "\nRe-push after changing one overlay (changed blobs: new layer + config + manifest + index = {changed} bytes):\n\n| | bytes received by the registry (wire) | request bodies |\n| --- | --- | --- |\n| sparkctl | {repush_sparkctl_wire} | {repush_sparkctl_body} |\n| skopeo copy | {repush_skopeo_wire} | — |\n"
    );
    println!("{table}");
    std::fs::write(root.join("results.md"), &table)?;
    drop(registry);
    for d in ["base", "img-v1", "img-v2", "store", "pull-store", "pulled-sparkctl", "pulled-skopeo"] {
        let _ = std::fs::remove_dir_all(root.join(d));
    }
    Ok(())
}

fn timed(f: impl FnOnce() -> xshell::Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

fn write_recipe(root: &Path, version: &str) -> Result<()> {
    let o = root.join("overlays/payload/rootfs/opt/payload");
    std::fs::create_dir_all(&o)?;
    std::fs::write(o.join("version.txt"), format!("{version}\n"))?;
    std::fs::write(o.join("data.bin"), noise(4 << 20, if version == "v1" { 7 } else { 8 }))?;
    std::fs::write(root.join("overlays/payload/overlay.toml"), "description = \"4 MB that change between v1 and v2\"\n")?;
    std::fs::create_dir_all(root.join("images"))?;
    std::fs::write(root.join("images/bench.toml"), "overlays = [\"payload\"]\n[base]\nref = \"oci:unused\"\nplatforms = [\"linux/amd64\"]\n")?;
    Ok(())
}

fn blob_set(layout: &Path) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(layout.join("blobs/sha256"))? {
        let e = e?;
        out.push((e.file_name().to_string_lossy().into_owned(), e.metadata()?.len()));
    }
    Ok(out)
}

fn layout_bytes(layout: &Path) -> Result<u64> {
    Ok(blob_set(layout)?.iter().map(|b| b.1).sum())
}

/// Bytes of the blobs of `v2` that `v1` lacks.
fn changed_bytes(v1: &Path, v2: &Path) -> Result<u64> {
    let old = blob_set(v1)?;
    Ok(blob_set(v2)?.iter().filter(|b| !old.iter().any(|o| o.0 == b.0)).map(|b| b.1).sum())
}
