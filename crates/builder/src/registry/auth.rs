//! Credentials and the registry auth handshake: `WWW-Authenticate` challenges (Basic, Bearer
//! with realm/service/scope), Docker's `config.json` (`auths`, `credsStore`, `credHelpers` via the
//! `docker-credential-*` protocol) and explicit credentials the caller passes (the CLI takes them
//! from its flags or the environment; this module reads neither).
//!
//! Secrets live in [`Secret`], whose `Debug`/`Display` print `***`: nothing that formats a
//! credential can leak it into a log, an error or `--json` output.

use crate::error::{Error, Result};
use base64::Engine as _;
use serde_json::Value;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A password or token. Only `Secret::expose` gives the text, at the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
/// A credential for one registry.
pub enum Credential {
    /// Username and password (or a personal access token used as a password).
    Basic {
        /// The user name.
        username: String,
        /// The password or token.
        password: Secret,
    },
    /// An OAuth2 refresh token (`identitytoken` in config.json, `<token>` from a helper).
    IdentityToken(Secret),
    /// A ready bearer token sent as is (CI systems that mint one).
    Bearer(Secret),
}

impl Credential {
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credential::Basic { username, password } => {
                Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", password.expose()))))
            }
            _ => None,
        }
    }
}

/// Where credentials come from, in order: an explicit credential, then a Docker `config.json`.
#[derive(Clone, Debug, Default)]
pub struct CredentialStore {
    /// The CLI's `--username`/`--password-stdin` or `SPARKCTL_REGISTRY_USER`/`_PASSWORD`/`_TOKEN`.
    pub explicit: Option<Credential>,
    /// The one registry the explicit credential is for (the CLI's `--creds-host`, `SPARKCTL_REGISTRY_HOST`);
    /// `None`: every registry. A build reading a public base from one registry and pushing to
    /// another must not send the push credentials to the base's registry.
    pub explicit_for: Option<String>,
    /// A `config.json` named by the user (`--authfile`): it must exist.
    pub config_file: Option<PathBuf>,
    /// The `config.json` read when `config_file` is `None`, where a missing file means no
    /// credentials (the CLI passes `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`);
    /// `None`: no config at all.
    pub default_config_file: Option<PathBuf>,
}

impl CredentialStore {
    fn config_path(&self) -> Option<PathBuf> {
        self.config_file.clone().or_else(|| self.default_config_file.clone())
    }

    /// The credential for `registry` (`host[:port]`, `docker.io` for Docker Hub), if any.
    pub(crate) fn lookup(&self, registry: &str) -> Result<Option<Credential>> {
        if let Some(c) = &self.explicit {
            let applies = match self.explicit_for.as_deref() {
                None => true,
                Some(host) => key_matches(host, registry),
            };
            if applies {
                return Ok(Some(c.clone()));
            }
        }
        let Some(path) = self.config_path() else { return Ok(None) };
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            // No config file is the common anonymous case; an explicitly named one must exist.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.config_file.is_none() => return Ok(None),
            Err(e) => return Err(Error::Io { context: "reading the registry credentials", path, source: e }),
        };
        let config: Value = serde_json::from_slice(&raw).map_err(|e| Error::input(path.display().to_string(), format!("not valid JSON: {e}"), None))?;
        from_config(&config, registry, &path)
    }
}

/// The keys Docker writes for a registry: `host`, `https://host`, and for Docker Hub `https://index.docker.io/v1/`.
fn key_matches(key: &str, registry: &str) -> bool {
    let host = key.trim_start_matches("https://").trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    host == registry || (registry == crate::reference::DOCKER_HUB && matches!(host, "index.docker.io" | "registry-1.docker.io"))
}

fn from_config(config: &Value, registry: &str, path: &Path) -> Result<Option<Credential>> {
    let file = path.display().to_string();
    let helper_for =
        config.get("credHelpers").and_then(Value::as_object).and_then(|h| h.iter().find(|(k, _)| key_matches(k, registry))).and_then(|(_, v)| v.as_str());
    if let Some(helper) = helper_for {
        return helper_get(helper, registry);
    }
    let entry = config.get("auths").and_then(Value::as_object).and_then(|a| a.iter().find(|(k, _)| key_matches(k, registry)));
    if let Some((key, entry)) = entry {
        if let Some(t) = entry.get("identitytoken").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken(Secret::new(t))));
        }
        if let Some(auth) = entry.get("auth").and_then(Value::as_str).filter(|a| !a.is_empty()) {
            let bad =
                || Error::input(&file, format!("`auths.{key}.auth` is not base64 of `user:password`"), Some(format!("run `docker login {registry}` again")));
            let decoded = base64::engine::general_purpose::STANDARD.decode(auth.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (u, p) = decoded.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credential::Basic { username: u.to_owned(), password: Secret::new(p) }));
        }
        if let (Some(u), Some(p)) = (entry.get("username").and_then(Value::as_str), entry.get("password").and_then(Value::as_str)) {
            return Ok(Some(Credential::Basic { username: u.to_owned(), password: Secret::new(p) }));
        }
    }
    if let Some(store) = config.get("credsStore").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        // A store answers "not found" for registries it has nothing for: anonymous then.
        return helper_get(store, registry);
    }
    Ok(None)
}

/// `docker-credential-NAME get`: the server URL on stdin, `{"Username","Secret"}` on stdout.
/// `Ok(None)`: the helper has nothing for this registry (anonymous then).
fn helper_get(name: &str, registry: &str) -> Result<Option<Credential>> {
    run_helper(&format!("docker-credential-{name}"), registry)
}

/// [`helper_get`] with the program named (a path in the tests).
fn run_helper(program: &str, registry: &str) -> Result<Option<Credential>> {
    let server = if registry == crate::reference::DOCKER_HUB { "https://index.docker.io/v1/".to_owned() } else { registry.to_owned() };
    let fail = |m: String| helper_error(program, registry, m);
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot run the credential helper `{program}`: {e}")))?;
    child.stdin.take().expect("piped").write_all(server.as_bytes()).map_err(|e| fail(format!("writing to `{program}`: {e}")))?;
    let out = child.wait_with_output().map_err(|e| fail(format!("waiting for `{program}`: {e}")))?;
    helper_answer(program, registry, &out.status, &out.stdout)
}

/// What a helper's exit status and stdout say. A `Username` of `<token>` marks an identity
/// token. The helper's output is never echoed (it may hold a secret).
fn helper_answer(program: &str, registry: &str, status: &std::process::ExitStatus, stdout: &[u8]) -> Result<Option<Credential>> {
    let fail = |m: String| helper_error(program, registry, m);
    if !status.success() {
        // The protocol's answer for an unknown server; anything else is a failure.
        if String::from_utf8_lossy(stdout).contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!("`{program} get` failed ({status})")));
    }
    let v: Value = serde_json::from_slice(stdout).map_err(|_| fail(format!("`{program} get` did not print the JSON the helper protocol specifies")))?;
    let user = v.get("Username").and_then(Value::as_str).unwrap_or_default();
    let secret = v.get("Secret").and_then(Value::as_str).ok_or_else(|| fail(format!("`{program} get` printed no `Secret`")))?;
    if user.is_empty() && secret.is_empty() {
        // Some helpers (docker-credential-pass 0.6) answer an unknown server with empty fields.
        return Ok(None);
    }
    Ok(Some(if user == "<token>" {
        Credential::IdentityToken(Secret::new(secret))
    } else {
        Credential::Basic { username: user.to_owned(), password: Secret::new(secret) }
    }))
}

fn helper_error(program: &str, registry: &str, message: String) -> Error {
    Error::Registry { reference: registry.to_owned(), status: None, code: None, message, hint: Some(format!("check `{program}` (named in the Docker config)")) }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic authentication.
    Basic,
    /// A bearer token from the `realm` token service.
    Bearer {
        /// The token service's URL.
        realm: String,
        /// The `service` parameter, if given.
        service: Option<String>,
        /// The `scope` parameter, if given.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses a `WWW-Authenticate` header's value; `None` for other schemes.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic),
            "bearer" => {
                let params = parse_params(params);
                let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
                Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
            }
            _ => None,
        }
    }
}

/// `k="v",k2=v2` with quoted strings that may hold commas and `\"`.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect::<String>().trim().to_owned();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#;
        assert_eq!(
            Challenge::parse(h),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/ubuntu:pull,push".into())
            })
        );
        assert_eq!(Challenge::parse(r#"Basic realm="basic-realm""#), Some(Challenge::Basic));
        assert_eq!(Challenge::parse(r#"bearer realm=https://x/t"#), Some(Challenge::Bearer { realm: "https://x/t".into(), service: None, scope: None }));
        assert_eq!(Challenge::parse("Bearer service=x"), None, "a bearer challenge needs a realm");
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn secrets_never_format() {
        let c = Credential::Basic { username: "ci".into(), password: Secret::new("hunter2-secret") };
        let shown = format!("{c:?} {:?} {}", Secret::new("tok-secret"), Secret::new("tok-secret"));
        assert!(!shown.contains("hunter2") && !shown.contains("tok-secret"), "{shown}");
        assert!(shown.contains("ci"), "the username may show: {shown}");
    }

    #[test]
    fn reads_docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        std::fs::write(&path, format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"127.0.0.1:5000":{{"identitytoken":"idt"}}}}}}"#))
            .unwrap();
        let store = CredentialStore { explicit: None, explicit_for: None, config_file: Some(path), default_config_file: None };
        assert_eq!(store.lookup("docker.io").unwrap(), Some(Credential::Basic { username: "alice".into(), password: Secret::new("pa:ss") }));
        assert_eq!(store.lookup("127.0.0.1:5000").unwrap(), Some(Credential::IdentityToken(Secret::new("idt"))));
        assert_eq!(store.lookup("ghcr.io").unwrap(), None);
    }

    #[test]
    fn explicit_credentials_can_be_kept_to_one_registry() {
        let cred = Credential::Basic { username: "ci".into(), password: Secret::new("x") };
        let everywhere =
            CredentialStore { explicit: Some(cred.clone()), explicit_for: None, config_file: Some("/nonexistent-ok".into()), default_config_file: None };
        assert_eq!(everywhere.lookup("nvcr.io").unwrap(), Some(cred.clone()));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.json"), "{}").unwrap();
        let only = CredentialStore {
            explicit: Some(cred.clone()),
            explicit_for: Some("ghcr.io".into()),
            config_file: Some(dir.path().join("c.json")),
            default_config_file: None,
        };
        assert_eq!(only.lookup("ghcr.io").unwrap(), Some(cred));
        assert_eq!(only.lookup("nvcr.io").unwrap(), None, "the base's registry gets no push credentials");
    }

    #[test]
    fn a_helper_with_nothing_for_the_registry_means_no_credentials() {
        use std::os::unix::process::ExitStatusExt;
        let (ok, failed) = (std::process::ExitStatus::from_raw(0), std::process::ExitStatus::from_raw(1 << 8));
        let answer = |status, out: &str| helper_answer("docker-credential-x", "r.io", status, out.as_bytes());
        // The protocol's "not found" (exit 1), and docker-credential-pass 0.6's empty fields.
        assert_eq!(answer(&failed, "credentials not found in native keychain\n").unwrap(), None);
        assert_eq!(answer(&ok, r#"{"ServerURL":"r.io","Username":"","Secret":""}"#).unwrap(), None);
        assert_eq!(
            answer(&ok, r#"{"ServerURL":"r.io","Username":"ci","Secret":"s3cret"}"#).unwrap(),
            Some(Credential::Basic { username: "ci".into(), password: Secret::new("s3cret") })
        );
        assert_eq!(answer(&ok, r#"{"Username":"<token>","Secret":"idt"}"#).unwrap(), Some(Credential::IdentityToken(Secret::new("idt"))));
        // Any other failure is an error that shows none of the helper's output.
        let e = answer(&failed, "gpg: decryption failed: s3cret-ish").unwrap_err().to_string();
        assert!(e.contains("`docker-credential-x get` failed") && !e.contains("s3cret"), "{e}");
        assert!(answer(&ok, "not json").unwrap_err().to_string().contains("did not print the JSON"));
    }

    #[test]
    fn a_helper_program_is_asked_for_the_server_on_stdin() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n[ \"$1\" = get ] || exit 9\nread server\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path.display().to_string()
        };
        let none = script("none", r#"echo "credentials not found in native keychain"; exit 1"#);
        let some = script("some", r#"[ "$server" = https://index.docker.io/v1/ ] && echo '{"Username":"alice","Secret":"pw"}'"#);
        assert_eq!(run_helper(&none, "r.io:5000").unwrap(), None);
        assert_eq!(run_helper(&some, "docker.io").unwrap(), Some(Credential::Basic { username: "alice".into(), password: Secret::new("pw") }));
        let missing = dir.path().join("absent").display().to_string();
        assert!(run_helper(&missing, "r.io").unwrap_err().to_string().contains("cannot run the credential helper"));
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let store = CredentialStore { explicit: None, explicit_for: None, config_file: Some("/nonexistent/config.json".into()), default_config_file: None };
        let e = store.lookup("x.io").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/config.json"), "{e}");
    }
}
