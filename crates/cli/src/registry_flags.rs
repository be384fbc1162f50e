//! The registry flags of the image commands (`build`, `inspect`, `push`, `pull`), resolved with
//! the environment's credentials into the [`Remote`] the builder's image flows take.

use crate::progress::Lines;
use anyhow::{bail, Context, Result};
use builder::registry::progress::Progress;
use builder::registry::retry::RetryPolicy;
use builder::registry::{ClientOptions, Credential, Remote, Secret};
use builder::BlobStore;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// How one command reaches registries, its blobs landing in `store`; the command's progress
    /// lines (a registry base's fetches, each push or pull) share the terminal. Call once per
    /// command: a `--password-stdin` password is read here.
    pub fn remote(&self, store: BlobStore) -> Result<Remote> {
        let lines = Lines::new(!self.quiet);
        let options = ClientOptions { progress: Some(lines.line("fetch") as Arc<dyn Progress>), ..self.client_options()? };
        Ok(Remote { options, store, parallel: self.parallel, phases: Arc::new(lines) })
    }

    /// Credentials: `--username` + stdin, else the environment (CI), else the Docker config.
    fn client_options(&self) -> Result<ClientOptions> {
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
        Ok(ClientOptions { credentials, ca_file: self.ca_file.clone(), insecure: self.insecure.clone(), retry, progress: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_flags_are_the_default_retry_policy() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            flags: RegistryFlags,
        }
        let parsed = <Cli as clap::Parser>::parse_from(["t"]).flags;
        assert_eq!(parsed.client_options().unwrap().retry.attempts, RetryPolicy::default().attempts);
    }
}
