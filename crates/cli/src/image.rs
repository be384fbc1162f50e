//! `sparkctl image build|inspect|push|pull`: each parses its arguments, makes one call to the
//! builder (`build`, `open`, `write`, `pull`) and prints what it returns.

use crate::registry_flags::{RegistryFlags, TransferFlags};
use anyhow::{bail, Context, Result};
use builder::open::LockFile;
use builder::overlay::Overlay;
use builder::recipe::Recipe;
use builder::registry::PushSummary;
use builder::BlobStore;
use builder::Platform;
use builder::{build, BuildOptions};
use builder::{ImageRef, LocalRef};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum ImageCommand {
    /// Build an image from a recipe; prints the image digest as the last line
    Build(BuildArgs),
    /// Show an image's index, manifests, config and layers
    Inspect(InspectArgs),
    /// Push an image to a registry (only the blobs it lacks); prints the digest
    Push(PushArgs),
    /// Pull an image from a registry into a local layout or archive; prints the digest
    Pull(PullArgs),
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Recipe file, e.g. images/vllm-spark.toml
    pub recipe: PathBuf,
    /// Where to write the image (repeatable): oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG], docker://REGISTRY/REPO:TAG
    #[arg(long = "output", short = 'o', required = true, value_name = "DEST")]
    pub outputs: Vec<String>,
    /// Use this base instead of the recipe's base.ref (e.g. a local stand-in: oci:DIR:TAG)
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// Keep these platforms instead of the recipe's (repeatable)
    #[arg(long = "platform", value_name = "OS/ARCH")]
    pub platforms: Vec<String>,
    /// Extra label / annotation (repeatable), e.g. org.opencontainers.image.revision=abc123
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// File for an overlay artifact on one platform (repeatable)
    #[arg(long = "artifact", value_name = "PATH@PLATFORM=FILE")]
    pub artifacts: Vec<String>,
    /// Overlays folder (default: overlays/ beside the recipe's folder)
    #[arg(long, value_name = "DIR")]
    pub overlays: Option<PathBuf>,
    /// Blob store (default: $SPARKCTL_STORE or ~/.cache/sparkctl)
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Resolve the docker:// base and pin it in images/X.lock.json beside the recipe (later builds read the base metadata from it, offline)
    #[arg(long)]
    pub lock: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Image reference: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG], docker://REGISTRY/REPO[:TAG][@DIGEST] (or bare REGISTRY/REPO[:TAG])
    pub reference: String,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(clap::Args)]
pub struct PushArgs {
    /// Image to push: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or docker://REF
    pub source: String,
    /// Destination: docker://REGISTRY/REPO[:TAG] (or bare REGISTRY/REPO[:TAG])
    pub destination: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[command(flatten)]
    pub transfer: TransferFlags,
}

#[derive(clap::Args)]
pub struct PullArgs {
    /// Image to pull: docker://REGISTRY/REPO[:TAG][@DIGEST] (or bare)
    pub source: String,
    /// Where to write it: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]
    pub destination: String,
    /// Pull only this platform of a multi-platform image (a docker-archive holds one)
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[command(flatten)]
    pub transfer: TransferFlags,
}

pub fn run(cmd: ImageCommand) -> Result<ExitCode> {
    match cmd {
        ImageCommand::Build(args) => build_cmd(args),
        ImageCommand::Inspect(args) => inspect_cmd(args),
        ImageCommand::Push(args) => push_cmd(args),
        ImageCommand::Pull(args) => pull_cmd(args),
    }
}

fn build_cmd(args: BuildArgs) -> Result<ExitCode> {
    let recipe = Recipe::load(&args.recipe)?;
    let recipe_file = args.recipe.display().to_string();
    let outputs = args.outputs.iter().map(|o| ImageRef::parse_explicit(o)).collect::<builder::Result<Vec<_>>>()?;
    let platforms =
        if args.platforms.is_empty() { recipe.platforms.clone() } else { builder::recipe::parse_platforms("--platform", "--platform", &args.platforms)? };
    let overlays_dir = args.overlays.clone().unwrap_or_else(|| recipe.default_overlay_dir());
    if let Some(dir) = args.overlays.as_ref().filter(|d| !d.is_dir()) {
        bail!("--overlays `{}`: no such folder (hint: name the folder that holds one `NAME/overlay.toml` per overlay, e.g. `overlays`)", dir.display());
    }
    let overlays = recipe.overlays.iter().map(|n| Overlay::load(&overlays_dir, n, &recipe_file)).collect::<builder::Result<Vec<_>>>()?;
    let labels = args.labels.iter().map(|l| parse_label(l)).collect::<Result<Vec<_>>>()?;
    let artifacts = args.artifacts.iter().map(|a| parse_artifact(a)).collect::<Result<Vec<_>>>()?;
    let epoch = source_date_epoch()?;
    // An unusable output fails before the build does any work.
    for out in &outputs {
        if let ImageRef::Local(out @ (LocalRef::OciArchive { file, .. } | LocalRef::DockerArchive { file, .. })) = out {
            builder::output::check_output_file(file).with_context(|| format!("--output `{out}`"))?;
        }
    }
    for out in &outputs {
        if let ImageRef::Local(out @ LocalRef::DockerArchive { .. }) = out {
            builder::output::check_one_platform(&format!("--output {out}"), "this build", &platforms)?;
        }
    }
    let base_ref = args.base.clone().unwrap_or_else(|| recipe.base.clone());
    let store = BlobStore::open(args.store.clone().unwrap_or_else(crate::environment::store_root))?;
    let remote = args.registry.remote(store.clone())?;
    let lock_file = if args.lock { LockFile::Write } else { LockFile::Read };
    let base = ImageRef::parse(&base_ref)
        .and_then(|r| builder::open::build_base(&r, &args.recipe, lock_file, &remote))
        .with_context(|| format!("opening base `{base_ref}`"))?;
    if let Some(l) = &base.locked {
        eprintln!("locked {} at {} in {}", l.reference, l.digest, l.path.display());
    }
    let opts = BuildOptions { recipe, overlays, platforms, labels, artifacts, epoch, base_name: base_ref.clone() };
    let image = build(&opts, base.image, store)?;
    for (out, given) in outputs.iter().zip(&args.outputs) {
        builder::write::to(&image, out, &remote).with_context(|| format!("writing `{given}`"))?;
    }
    println!("{}", image.top.digest);
    Ok(ExitCode::SUCCESS)
}

fn inspect_cmd(args: InspectArgs) -> Result<ExitCode> {
    // A local image needs neither the registry flags nor the blob store.
    let image = match ImageRef::parse(&args.reference)? {
        ImageRef::Local(local) => builder::source::open_local(&local)?,
        r => builder::open::image(&r, &args.registry.remote(BlobStore::open(crate::environment::store_root())?)?)?,
    };
    let summary = builder::inspect::summary(&image);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", builder::inspect::table(&summary));
    }
    Ok(ExitCode::SUCCESS)
}

fn push_cmd(args: PushArgs) -> Result<ExitCode> {
    let ImageRef::Registry(dest) = ImageRef::parse(&args.destination)? else {
        bail!("`{}`: push writes to a registry (docker://REGISTRY/REPO:TAG); for a local copy use `sparkctl image pull` or `build --output`", args.destination);
    };
    let src = ImageRef::parse(&args.source)?;
    let remote = args.registry.remote(args.transfer.blob_store()?)?;
    let summary = builder::write::copy(&src, &dest, &remote)?;
    print_summary(&summary, args.transfer.json)
}

fn pull_cmd(args: PullArgs) -> Result<ExitCode> {
    let ImageRef::Registry(src) = ImageRef::parse(&args.source)? else {
        bail!("`{}`: pull reads from a registry (docker://REGISTRY/REPO[:TAG]); a local image needs no pull", args.source);
    };
    let ImageRef::Local(dest) = ImageRef::parse(&args.destination)? else {
        bail!("`{}`: pull writes a local image (oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE); to copy between registries use `sparkctl image push docker://SRC docker://DEST`", args.destination);
    };
    let platform = args
        .platform
        .as_deref()
        .map(|p| Platform::parse(p).with_context(|| format!("--platform `{p}`: write OS/ARCH[/VARIANT], e.g. linux/arm64")))
        .transpose()?;
    let remote = args.registry.remote(args.transfer.blob_store()?)?;
    let summary = builder::pull::pull(&src, &dest, platform.as_ref(), &remote)?;
    if args.transfer.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", summary.digest);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(summary: &PushSummary, json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(summary)?);
    } else {
        eprintln!(
            "pushed {}: sent {} ({} blobs uploaded, {} mounted, {} already there; {} manifests)",
            summary.reference,
            crate::progress::human(summary.bytes_uploaded),
            summary.blobs_uploaded,
            summary.blobs_mounted,
            summary.blobs_existing,
            summary.manifests_pushed
        );
        println!("{}", summary.digest);
    }
    Ok(ExitCode::SUCCESS)
}

fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(s) => check_epoch(&s),
    }
}

/// The last second of year 9999: RFC 3339 (the config's `created`) has four-digit years, and
/// Docker and skopeo refuse an image created later.
const MAX_EPOCH: u64 = 253_402_300_799;

fn check_epoch(s: &str) -> Result<u64> {
    let hint = "hint: `export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)`";
    let n: u64 = s.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH=`{s}` is not a whole number of seconds ({hint})"))?;
    if n > MAX_EPOCH {
        let unit = if n / 1_000 <= MAX_EPOCH {
            "it looks like milliseconds: divide by 1000"
        } else if n / 1_000_000 <= MAX_EPOCH {
            "it looks like microseconds: divide by 1000000"
        } else {
            "it looks like nanoseconds or a typo"
        };
        bail!("SOURCE_DATE_EPOCH=`{s}` is after year 9999 (at most {MAX_EPOCH} seconds); {unit} ({hint})");
    }
    Ok(n)
}

fn parse_label(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => bail!("--label `{s}`: write KEY=VALUE, e.g. org.opencontainers.image.revision=abc123"),
    }
}

fn parse_artifact(s: &str) -> Result<(String, Platform, PathBuf)> {
    let usage = || {
        anyhow::anyhow!("--artifact `{s}`: write /IMAGE/PATH@OS/ARCH=FILE, e.g. /usr/local/bin/spark-entrypoint@linux/arm64=target/aarch64/spark-entrypoint")
    };
    let (lhs, file) = s.split_once('=').ok_or_else(usage)?;
    let (path, platform) = lhs.rsplit_once('@').ok_or_else(usage)?;
    let platform = Platform::parse(platform).ok_or_else(usage)?;
    let path = builder::overlay::image_path("--artifact", "--artifact", path)?;
    if file.is_empty() {
        return Err(usage());
    }
    Ok((path, platform, PathBuf::from(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_date_epoch_is_bounded_and_names_the_unit_mistake() {
        assert_eq!(check_epoch("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(check_epoch(" 253402300799\n").unwrap(), MAX_EPOCH);
        let e = |s: &str| format!("{:#}", check_epoch(s).unwrap_err());
        assert!(e("1700000000000").contains("looks like milliseconds: divide by 1000"), "{}", e("1700000000000"));
        assert!(e("253402300800").contains("after year 9999"));
        assert!(e("1700000000000000").contains("microseconds"));
        assert!(e("1700000000000000000").contains("nanoseconds"));
        assert!(e("-1").contains("not a whole number of seconds"));
        assert!(e("18446744073709551616").contains("not a whole number of seconds"));
    }
}
