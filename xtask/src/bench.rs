//! `cargo xtask bench image`: the builder on synthetic bases of ~0.2, ~2 and ~8 GB, side by side
//! with `docker build` and an umoci flow producing the same image, in the same run; then the
//! compression floor (`gzip -6` and `pigz -6` of the same layer tar) for a 10 MB and a 200 MB
//! layer, and a no-change rebuild of the real recipe (the layer cache).
//! Results print as Markdown tables (copied into BENCHMARKS.md) and land in target/bench/.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;
use test_support::base;
use test_support::fuzz::noise;
use xshell::{cmd, Shell};

pub fn run(sh: &Shell, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("image") => image(sh, &args[1..]),
        Some("registry") => crate::bench_registry::run(sh, &args[1..]),
        Some("nccl-log") => crate::bench_nccl::run(sh, &args[1..]),
        Some("serve") => crate::bench_serve::run(sh, &args[1..]),
        Some("plan") => crate::bench_plan::run(sh, &args[1..]),
        other => bail!("unknown benchmark {other:?}: expected `image`, `registry`, `nccl-log`, `serve` or `plan`"),
    }
}

struct Row {
    size_gb: f64,
    /// The first build on an empty store: verifies the base's blobs, compresses the overlays.
    first_s: f64,
    /// Later builds on that store: the layer cache gives the overlays' layers.
    sparkctl_s: f64,
    sparkctl_rss_mb: f64,
    docker_load_s: f64,
    docker_build_s: f64,
    docker_save_s: f64,
    umoci_s: f64,
}

/// Sizes in GB from the arguments (default 0.2 2 8).
fn image(sh: &Shell, args: &[String]) -> Result<()> {
    // `--layers-only`: just the compression-floor and layer-cache tables (no docker, no big bases).
    let layers_only = args.iter().any(|a| a == "--layers-only");
    // `--prebuilt`: use target/release/sparkctl as it is (a machine without cargo, e.g. a quiet
    // host the binaries were copied to, under `taskset` for a fixed core count).
    let prebuilt = args.iter().any(|a| a == "--prebuilt");
    let args: Vec<String> = args.iter().filter(|a| *a != "--layers-only" && *a != "--prebuilt").cloned().collect();
    let sizes: Vec<f64> = if layers_only {
        Vec::new()
    } else if args.is_empty() {
        vec![0.2, 2.0, 8.0]
    } else {
        args.iter().map(|a| a.parse().context("sizes are GB numbers")).collect::<Result<_>>()?
    };
    if !prebuilt {
        cmd!(sh, "cargo build --release --locked -p cli").run()?;
    }
    let sparkctl = sh.current_dir().join("target/release/sparkctl");
    let root = sh.current_dir().join("target/bench/image");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    write_recipe(&root)?;
    let mut rows = Vec::new();
    for size in sizes {
        rows.push(one_size(sh, &sparkctl, &root, size)?);
    }
    let mut table = if rows.is_empty() { String::new() } else { render(&rows) + "\n" };
    table += &crate::bench_layers::run(sh, &sparkctl, &root)?;
    println!("{table}");
    std::fs::write(root.join("results.md"), &table)?;
    Ok(())
}

/// The recipe: two overlays (~10 MB of files, and a small config tree) plus env, like the
/// vllm-spark overlays but independent of them.
fn write_recipe(root: &Path) -> Result<()> {
    let o = root.join("overlays/payload/rootfs/opt/payload");
    std::fs::create_dir_all(&o)?;
    for i in 0..50 {
        std::fs::write(o.join(format!("f{i:02}.bin")), noise(200 * 1024, 1000 + i))?;
    }
    std::fs::write(root.join("overlays/payload/overlay.toml"), "description = \"10 MB of files\"\n[env]\nPAYLOAD = \"1\"\n")?;
    let c = root.join("overlays/conf/rootfs/etc/spark");
    std::fs::create_dir_all(&c)?;
    std::fs::write(c.join("a.conf"), "a=1\n")?;
    std::fs::write(root.join("overlays/conf/overlay.toml"), "[env]\nCONF = \"1\"\n")?;
    std::fs::create_dir_all(root.join("images"))?;
    std::fs::write(root.join("images/bench.toml"), "overlays = [\"payload\", \"conf\"]\n[base]\nref = \"oci:unused\"\nplatforms = [\"linux/amd64\"]\n")?;
    Ok(())
}

fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// Runs under `/usr/bin/time -f %M` and returns (seconds, peak RSS in MB).
fn timed_rss(sh: &Shell, argv: &[String]) -> Result<(f64, f64)> {
    let rss_file = sh.current_dir().join("target/bench/rss.txt");
    let start = Instant::now();
    cmd!(sh, "/usr/bin/time -f %M -o {rss_file} {argv...}").quiet().ignore_stdout().run()?;
    let t = secs(start);
    let kb: f64 = std::fs::read_to_string(&rss_file)?.trim().lines().last().unwrap_or("0").parse()?;
    Ok((t, kb / 1024.0))
}

fn one_size(sh: &Shell, sparkctl: &Path, root: &Path, size_gb: f64) -> Result<Row> {
    let tag = format!("{}", (size_gb * 1000.0) as u64);
    let dir = root.join(format!("base-{tag}"));
    let bytes = (size_gb * 1e9) as u64;
    let layers = ((size_gb * 2.0).ceil() as usize).max(4);
    eprintln!("== {size_gb} GB base: {layers} layers");
    base::write_layout(
        &dir,
        &base::BaseSpec {
            platforms: vec![("linux", "amd64")],
            attestation: false,
            pad_bytes: bytes,
            pad_layers: layers,
            pad_uncompressed: true,
            ..Default::default()
        },
    );
    sync(sh)?;
    let base_ref = format!("oci:{}:base", dir.display());

    // sparkctl: a first build verifies the base's blobs once into the store (reported, not
    // ranked); then the median of 3 builds, each to a fresh output, on that store.
    let store = root.join(format!("store-{tag}"));
    let mut runs = Vec::new();
    for i in 0..4 {
        let out = format!("oci:{}:bench", root.join(format!("out-{tag}-{i}")).display());
        let argv: Vec<String> = vec![
            sparkctl.display().to_string(),
            "image".into(),
            "build".into(),
            root.join("images/bench.toml").display().to_string(),
            "--base".into(),
            base_ref.clone(),
            "--store".into(),
            store.display().to_string(),
            "-o".into(),
            out,
        ];
        runs.push(timed_rss(sh, &argv)?);
    }
    let (first_s, _) = runs.remove(0);
    eprintln!("   sparkctl first build on a fresh store (verifies the base once): {first_s:.2}s");
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (sparkctl_s, sparkctl_rss_mb) = runs[1];

    // docker: load the base (setup, reported), then build and save the same result.
    let image = format!("sparkctl-bench/base:{tag}");
    let archive = root.join(format!("base-{tag}.docker.tar"));
    cmd!(sh, "skopeo copy --quiet {base_ref} docker-archive:{archive}:{image}").run()?;
    let start = Instant::now();
    cmd!(sh, "docker load -q -i {archive}").quiet().ignore_stdout().run()?;
    let docker_load_s = secs(start);
    // Disk is shared: the archive is not needed once loaded.
    let _ = std::fs::remove_file(&archive);
    let ctx = root.join(format!("ctx-{tag}"));
    std::fs::create_dir_all(&ctx)?;
    cmd!(sh, "cp -a {root}/overlays/payload/rootfs {ctx}/payload").run()?;
    cmd!(sh, "cp -a {root}/overlays/conf/rootfs {ctx}/conf").run()?;
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {image}\nCOPY payload/ /\nENV PAYLOAD=1\nCOPY conf/ /\nENV CONF=1\n"))?;
    let built = format!("sparkctl-bench/built:{tag}");
    let start = Instant::now();
    cmd!(sh, "docker build -q --no-cache -t {built} {ctx}").quiet().ignore_stdout().run()?;
    let docker_build_s = secs(start);
    let saved = root.join(format!("built-{tag}.tar"));
    let start = Instant::now();
    cmd!(sh, "docker save -o {saved} {built}").run()?;
    let docker_save_s = secs(start);
    let _ = cmd!(sh, "docker rmi -f {built} {image}").quiet().ignore_stdout().ignore_stderr().run();
    let _ = std::fs::remove_file(&saved);
    let _ = std::fs::remove_file(&archive);

    // umoci: unpack, add the overlay files, repack, set env.
    let bundle = root.join(format!("bundle-{tag}"));
    let layout = dir.display().to_string();
    let start = Instant::now();
    cmd!(sh, "umoci unpack --image {layout}:base {bundle}").quiet().ignore_stdout().run()?;
    cmd!(sh, "cp -a {root}/overlays/payload/rootfs/. {bundle}/rootfs/").run()?;
    cmd!(sh, "cp -a {root}/overlays/conf/rootfs/. {bundle}/rootfs/").run()?;
    cmd!(sh, "umoci repack --image {layout}:umoci {bundle}").quiet().ignore_stdout().run()?;
    cmd!(sh, "umoci config --image {layout}:umoci --config.env PAYLOAD=1 --config.env CONF=1").quiet().ignore_stdout().run()?;
    let umoci_s = secs(start);
    let _ = std::fs::remove_dir_all(&bundle);
    let _ = std::fs::remove_dir_all(&dir);
    for i in 0..4 {
        let _ = std::fs::remove_dir_all(root.join(format!("out-{tag}-{i}")));
    }
    let _ = std::fs::remove_dir_all(&store);
    let row = Row { size_gb, first_s, sparkctl_s, sparkctl_rss_mb, docker_load_s, docker_build_s, docker_save_s, umoci_s };
    eprintln!(
        "   sparkctl {:.2}s ({:.0} MB)  docker build {:.2}s (+save {:.2}s, load {:.2}s)  umoci {:.2}s",
        row.sparkctl_s, row.sparkctl_rss_mb, row.docker_build_s, row.docker_save_s, row.docker_load_s, row.umoci_s
    );
    Ok(row)
}

fn sync(sh: &Shell) -> Result<()> {
    cmd!(sh, "sync").run()?;
    Ok(())
}

fn render(rows: &[Row]) -> String {
    let mut s = String::from("| base | sparkctl first build, empty store | sparkctl rebuild on that store (OCI layout) | peak RSS | docker build | docker build + save | umoci unpack+repack+config | docker build ÷ sparkctl first build | docker build ÷ sparkctl rebuild | umoci ÷ sparkctl rebuild | (docker load of the base, setup) |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        s += &format!(
            "| {:.1} GB | {:.2} s | {:.3} s | {:.0} MB | {:.2} s | {:.2} s | {:.2} s | {:.1}× | {:.0}× | {:.0}× | {:.1} s |\n",
            r.size_gb,
            r.first_s,
            r.sparkctl_s,
            r.sparkctl_rss_mb,
            r.docker_build_s,
            r.docker_build_s + r.docker_save_s,
            r.umoci_s,
            r.docker_build_s / r.first_s,
            r.docker_build_s / r.sparkctl_s,
            r.umoci_s / r.sparkctl_s,
            r.docker_load_s
        );
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        s += &format!("\nsparkctl time, largest ÷ smallest base: {:.2}× (must stay ≤ 1.2×)\n", last.sparkctl_s / first.sparkctl_s);
    }
    s
}
