//! `sparkctl image push|pull`, and the registry flags and helpers `image build` shares
//! (`docker://` bases and outputs).

use crate::progress::Lines;
use anyhow::{bail, Context, Result};
use builder::build::BuiltImage;
use builder::reference::ImageRef;
use builder::registry::progress::Progress;
use builder::registry::retry::RetryPolicy;
use builder::registry::{self, lock, Client, ClientOptions, Credential, PushOptions, PushSummary, RegistryRef, Secret};
use builder::source::{self, BaseImage};
use builder::store::BlobStore;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How to reach registries (credentials, TLS, retries, parallelism, progress). `image build`
/// flattens these too (for `docker://` bases and outputs).
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryFlags {
    /// Docker config.json with credentials (default: $DOCKER_CONFIG/config.json, ~/.docker/config.json)
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Username for the registry; the password is read from stdin (see --password-stdin)
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password (or token) for --username from stdin
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Send --username (or SPARKCTL_REGISTRY_USER/_PASSWORD/_TOKEN) only to this registry host[:port] (default: SPARKCTL_REGISTRY_HOST, else every registry)
    #[arg(long, value_name = "HOST")]
    pub creds_host: Option<String>,
    /// Trust this CA certificate (PEM) besides the system roots
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Allow plain HTTP to this registry host[:port] (repeatable; loopback is always allowed)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
    /// Tries per request on connection errors, 429 and 5xx
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub retries: u32,
    /// Blobs transferred at once
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub parallel: usize,
    /// No progress display
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// The options once worked out: stdin holds the password only once.
    #[arg(skip)]
    resolved: std::sync::OnceLock<ClientOptions>,
    /// The command's progress lines (the fetches' and a push's share the terminal).
    #[arg(skip)]
    lines: std::sync::OnceLock<Lines>,
}

/// The flags' defaults, for callers without a command line (`image inspect docker://…`).
impl Default for RegistryFlags {
    fn default() -> Self {
        RegistryFlags {
            authfile: None,
            username: None,
            password_stdin: false,
            creds_host: None,
            ca_file: None,
            insecure: Vec::new(),
            retries: 5,
            parallel: 8,
            quiet: false,
            resolved: std::sync::OnceLock::new(),
            lines: std::sync::OnceLock::new(),
        }
    }
}

/// What push and pull add to the registry flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TransferFlags {
    /// Print a JSON summary on stdout instead of the digest
    #[arg(long)]
    pub json: bool,
    /// Blob store (default: $SPARKCTL_STORE or ~/.cache/sparkctl)
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

impl TransferFlags {
    pub fn blob_store(&self) -> Result<BlobStore> {
        Ok(BlobStore::open(self.store.clone().unwrap_or_else(crate::environment::store_root))?)
    }
}

impl RegistryFlags {
    fn lines(&self) -> &Lines {
        self.lines.get_or_init(|| Lines::new(!self.quiet))
    }

    /// Ends the line of the registry bases' fetches (they happen on demand: the library cannot
    /// tell when the last one was).
    fn fetches_done(&self) -> Result<()> {
        if let Some(p) = &self.client_options()?.progress {
            p.finished();
        }
        Ok(())
    }

    /// Credentials: `--username` + stdin, else the environment (CI), else the Docker config.
    pub fn client_options(&self) -> Result<ClientOptions> {
        if let Some(o) = self.resolved.get() {
            return Ok(o.clone());
        }
        let o = self.resolve()?;
        Ok(self.resolved.get_or_init(|| o).clone())
    }

    fn resolve(&self) -> Result<ClientOptions> {
        let mut credentials = crate::environment::credentials();
        credentials.config_file = self.authfile.clone();
        if self.creds_host.is_some() {
            credentials.explicit_for = self.creds_host.clone();
        }
        if let Some(user) = &self.username {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password).context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                bail!("--password-stdin: stdin was empty (hint: pipe the password, e.g. `printenv TOKEN | sparkctl … --username {user} --password-stdin`)");
            }
            credentials.explicit = Some(Credential::Basic { username: user.clone(), password: Secret::new(password) });
        }
        let mut retry = RetryPolicy::default();
        if self.retries == 0 {
            bail!("--retries 0: give at least 1 (tries in all, the first included)");
        }
        retry.attempts = self.retries;
        let progress = Some(self.lines().line("fetch") as std::sync::Arc<dyn Progress>);
        Ok(ClientOptions { credentials, ca_file: self.ca_file.clone(), insecure: self.insecure.clone(), retry, progress })
    }
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

/// A reference that is either local (a skopeo transport) or a registry one.
#[derive(Debug)]
pub enum AnyRef {
    Local(ImageRef),
    Registry(RegistryRef),
}

/// `docker://REF` and bare `REGISTRY/REPO…` are registry references; `oci:`, `oci-archive:` and
/// `docker-archive:` are local. (`localhost:5000/x` is bare: `localhost` is no transport.)
pub fn parse_any(s: &str) -> Result<AnyRef> {
    const LOCAL: [&str; 3] = ["oci:", "oci-archive:", "docker-archive:"];
    if LOCAL.iter().any(|p| s.starts_with(p)) {
        return Ok(AnyRef::Local(ImageRef::parse(s)?));
    }
    builder::reference::check_transport(s)?;
    Ok(AnyRef::Registry(RegistryRef::parse(s)?))
}

/// Opens any image: local references directly, registry ones shallowly (layers land in the
/// store only when read).
pub fn open_any(r: &AnyRef, flags: &RegistryFlags, store: &BlobStore) -> Result<BaseImage> {
    Ok(match r {
        AnyRef::Local(local) => source::open_local(local)?,
        AnyRef::Registry(reg) => registry::open_base(reg, &flags.client_options()?, Some(store.clone()))?.0,
    })
}

/// Opens the base of a build. A `docker://` base is read shallowly from its registry, or from
/// the lock file beside the recipe (`images/X.lock.json`) when there is one, with no network
/// for the metadata. `write_lock` (`build --lock`) resolves from the registry and (re)writes it.
pub fn open_build_base(base_ref: &str, recipe: &Path, write_lock: bool, flags: &RegistryFlags, store: &BlobStore) -> Result<BaseImage> {
    let reg = match parse_any(base_ref)? {
        AnyRef::Local(local) => {
            if write_lock {
                bail!("--lock: base `{base_ref}` is not a registry base; only docker:// bases are locked");
            }
            return Ok(source::open_local(&local)?);
        }
        AnyRef::Registry(reg) => reg,
    };
    let lock_path = lock::path_for(recipe);
    let opts = flags.client_options()?;
    if !write_lock && lock_path.exists() {
        let locked = lock::read(&lock_path)?;
        let same = locked.reference.registry == reg.registry && locked.reference.repository == reg.repository && locked.reference.tag == reg.tag;
        let pinned_ok = !matches!(&reg.digest, Some(d) if Some(d) != locked.reference.digest.as_ref());
        if !same || !pinned_ok {
            bail!("{}: locks `{}` but the base is `{reg}` (hint: rebuild with `--lock` to pin the new base)", lock_path.display(), locked.reference);
        }
        return Ok(locked.open_base(&opts, Some(store.clone()))?);
    }
    let (base, _) = registry::open_base(&reg, &opts, Some(store.clone()))?;
    if write_lock {
        lock::write(&lock_path, &reg, &base)?;
        eprintln!("locked {reg} at {} in {}", base.digest(), lock_path.display());
    }
    Ok(base)
}

/// Writes a build output: `docker://` (or a bare registry reference) is pushed, anything else
/// goes to the local writers. Returns the push summary for registry outputs.
pub fn write_any(image: &BuiltImage, dest: &str, flags: &RegistryFlags) -> Result<Option<PushSummary>> {
    match parse_any(dest)? {
        AnyRef::Local(local) => {
            // A registry base's layers, all at once into the store; the writer links them from there.
            registry::prefetch_layers(&image.base, flags.parallel)?;
            flags.fetches_done()?;
            builder::output::write(image, &local)?;
            Ok(None)
        }
        AnyRef::Registry(reg) => Ok(Some(push_to(image, &reg, flags)?)),
    }
}

/// Pushes an image (built or copied) to `dest`. A registry base's layers are fetched as they are
/// pushed: the fetches and the push each have their line, and both end here.
pub fn push_to(image: &BuiltImage, dest: &RegistryRef, flags: &RegistryFlags) -> Result<PushSummary> {
    let client = Client::connect(&dest.registry, dest.api_host(), &flags.client_options()?)?;
    let progress = flags.lines().line(format!("push {dest}"));
    let pushed = registry::push_image(&client, dest, image, &PushOptions { parallel: flags.parallel, progress });
    flags.fetches_done()?;
    Ok(pushed?)
}

pub fn push(args: PushArgs) -> Result<ExitCode> {
    let AnyRef::Registry(dest) = parse_any(&args.destination)? else {
        bail!("`{}`: push writes to a registry (docker://REGISTRY/REPO:TAG); for a local copy use `sparkctl image pull` or `build --output`", args.destination);
    };
    let store = args.transfer.blob_store()?;
    let base = open_any(&parse_any(&args.source)?, &args.registry, &store)?;
    let image = BuiltImage::unchanged(base, store)?;
    let summary = push_to(&image, &dest, &args.registry)?;
    print_summary(&summary, args.transfer.json)
}

pub fn pull(args: PullArgs) -> Result<ExitCode> {
    let AnyRef::Registry(src) = parse_any(&args.source)? else {
        bail!("`{}`: pull reads from a registry (docker://REGISTRY/REPO[:TAG]); a local image needs no pull", args.source);
    };
    let AnyRef::Local(dest) = parse_any(&args.destination)? else {
        bail!("`{}`: pull writes a local image (oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE); to copy between registries use `sparkctl image push docker://SRC docker://DEST`", args.destination);
    };
    let platform = args
        .platform
        .as_deref()
        .map(|p| builder::platform::Platform::parse(p).with_context(|| format!("--platform `{p}`: write OS/ARCH[/VARIANT], e.g. linux/arm64")))
        .transpose()?;
    let store = args.transfer.blob_store()?;
    let (base, handle) = registry::open_base(&src, &args.registry.client_options()?, Some(store.clone()))?;
    let base = match &platform {
        Some(p) => base.only_platform(p)?,
        None => base,
    };
    // Before any layer is downloaded: a docker-archive takes one platform.
    if matches!(dest, ImageRef::DockerArchive { .. }) {
        builder::output::check_one_platform(&dest.to_string(), &format!("`{src}`"), &base.index_platforms())?;
    }
    let progress = args.registry.lines().line(format!("pull {src}"));
    handle.set_progress(progress.clone());
    // All layers in parallel first; the writer then links them from the store.
    handle.fetch_all(&registry::base_layers(&base), args.registry.parallel)?;
    progress.finished();
    let image = BuiltImage::unchanged(base, store)?;
    builder::output::write(&image, &dest)?;
    let summary = serde_json::json!({
        "reference": src.to_string(),
        "destination": dest.to_string(),
        "digest": image.top.digest.to_string(),
        "bytes_downloaded": progress.bytes_done(),
        "seconds": progress.elapsed().as_secs_f64(),
    });
    if args.transfer.json {
        println!("{summary}");
    } else {
        println!("{}", image.top.digest);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_flags_are_the_command_line_defaults() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            flags: RegistryFlags,
        }
        let parsed = <Cli as clap::Parser>::parse_from(["t"]).flags;
        let default = RegistryFlags::default();
        assert_eq!((parsed.retries, parsed.parallel, parsed.quiet), (default.retries, default.parallel, default.quiet));
        assert_eq!(default.client_options().unwrap().retry.attempts, RetryPolicy::default().attempts);
    }

    #[test]
    fn local_transports_and_registry_references_are_told_apart() {
        let reg = |s: &str| match parse_any(s).unwrap() {
            AnyRef::Registry(r) => r.to_string(),
            AnyRef::Local(l) => panic!("{s} parsed as local {l}"),
        };
        assert_eq!(reg("docker://ubuntu"), "docker.io/library/ubuntu:latest");
        assert_eq!(reg("localhost:5000/team/app:v1"), "localhost:5000/team/app:v1");
        assert_eq!(reg("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
        for local in ["oci:out/img:v1", "oci-archive:a.tar", "docker-archive:a.tar:x/y:z"] {
            assert!(matches!(parse_any(local).unwrap(), AnyRef::Local(_)), "{local}");
        }
        assert!(parse_any("docker://team/UPPER").unwrap_err().to_string().contains("team/UPPER"));
    }
}
