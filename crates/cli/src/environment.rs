//! The environment the commands read, in one place: `builder` and `fleet` read none of it and
//! take what it names as parameters (the blob store's path, the credentials, the Docker config,
//! the Hugging Face cache).

use builder::registry::{Credential, CredentialStore, Secret};
use std::path::PathBuf;

/// The default blob store: `$SPARKCTL_STORE`, else `$XDG_CACHE_HOME/sparkctl`, else
/// `~/.cache/sparkctl`.
pub fn store_root() -> PathBuf {
    if let Some(p) = std::env::var_os("SPARKCTL_STORE") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    cache.unwrap_or_else(|| PathBuf::from("/tmp")).join("sparkctl")
}

/// Registry credentials before the flags: explicit ones for CI (`SPARKCTL_REGISTRY_TOKEN`, or
/// `SPARKCTL_REGISTRY_USER` with `SPARKCTL_REGISTRY_PASSWORD`; only for `SPARKCTL_REGISTRY_HOST`
/// when set), and Docker's `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn credentials() -> CredentialStore {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let explicit = match (var("SPARKCTL_REGISTRY_TOKEN"), var("SPARKCTL_REGISTRY_USER"), var("SPARKCTL_REGISTRY_PASSWORD")) {
        (Some(t), _, _) => Some(Credential::Bearer(Secret::new(t))),
        (None, Some(u), Some(p)) => Some(Credential::Basic { username: u, password: Secret::new(p) }),
        _ => None,
    };
    let default_config_file = match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => Some(PathBuf::from(d).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
    };
    CredentialStore { explicit, explicit_for: var("SPARKCTL_REGISTRY_HOST"), config_file: None, default_config_file }
}

/// The Hugging Face cache when `HF_HOME` is not set: `~/.cache/huggingface`.
pub fn hf_home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface"))
}
