//! One HTTP client per registry: scheme choice (TLS unless the host is loopback or named
//! insecure), the auth handshake with token caching per scope, and retries with backoff.
//!
//! Every request goes through [`Client::send`], which is the only place a credential is put on
//! the wire and the only place retries happen; the body is produced by a closure so a streamed
//! upload can be re-opened for a retry.

use super::auth::{Challenge, Credential, CredentialStore, Secret};
use super::code::{ErrorBody, ErrorCode};
use super::retry::{parse_retry_after, RetryPolicy};
use super::tls;
use crate::digest::Digest;
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How to reach registries; shared by every client of one command.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// The credentials, by registry.
    pub credentials: CredentialStore,
    /// Extra CA certificate (PEM) trusted besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Hosts (`host[:port]`) allowed over plain HTTP besides loopback (`--insecure-registry`).
    pub insecure: Vec<String>,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
    /// Where layer downloads report their progress (events; the caller shows them), if anywhere.
    pub progress: Option<std::sync::Arc<dyn super::progress::Progress>>,
}

/// The permissions a request needs, as token scopes (`repository:NAME:pull,push`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope(Vec<String>);

impl Scope {
    pub(crate) fn pull(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:pull")])
    }
    pub(crate) fn push(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:pull,push")])
    }
    /// Adds pull access to another repository of the registry (cross-repository mount).
    pub(crate) fn and_pull(mut self, repo: &str) -> Scope {
        self.0.push(format!("repository:{repo}:pull"));
        self
    }
    fn key(&self) -> String {
        self.0.join(" ")
    }
}

pub(crate) enum Body<'a> {
    Empty,
    Bytes(Vec<u8>),
    /// A streamed body of known length (sent with `Content-Length`, never chunked).
    Stream(Box<dyn Read + Send + 'a>, u64),
}

struct Token {
    value: Secret,
    expires: Instant,
}

/// A registry client: one HTTP agent, its tokens and options.
pub struct Client {
    agent: ureq::Agent,
    /// `host[:port]` as references name it (`docker.io` for Docker Hub): for credentials and messages.
    pub(crate) registry: String,
    /// `https://host[:port]` or `http://…`.
    base: String,
    credential: Option<Credential>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, Token>>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("registry", &self.registry).field("base", &self.base).field("credential", &self.credential).finish_non_exhaustive()
    }
}

fn is_loopback(host: &str) -> bool {
    let h = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h == "::1" || h.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
}

impl Client {
    /// A client for `registry` whose API is at `api_host`. Loopback and `insecure` hosts are
    /// tried over HTTPS first and fall back to HTTP (what Docker does for insecure registries).
    pub fn connect(registry: &str, api_host: &str, opts: &ClientOptions) -> Result<Client> {
        let agent = ureq::AgentBuilder::new()
            .tls_config(tls::client_config(opts.ca_file.as_deref())?)
            .timeout_connect(Duration::from_secs(20))
            .timeout_read(Duration::from_secs(300))
            .timeout_write(Duration::from_secs(300))
            .max_idle_connections_per_host(32)
            // Blob GETs may redirect to storage on another host: credentials stay with the registry.
            .redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost)
            .user_agent(concat!("sparkctl/", env!("CARGO_PKG_VERSION")))
            .build();
        let credential = opts.credentials.lookup(registry)?;
        let mut client = Client {
            agent,
            registry: registry.to_owned(),
            base: format!("https://{api_host}"),
            credential,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            retry: opts.retry.clone(),
        };
        let plain_ok = is_loopback(api_host) || opts.insecure.iter().any(|h| h == api_host || h == registry);
        if plain_ok {
            // Any HTTP answer (even 401) means the scheme works; Err is the transport error text.
            let probe = |base: &str| -> std::result::Result<u16, (String, bool)> {
                match client.agent.get(&format!("{base}/v2/")).timeout(PROBE_TIMEOUT).call() {
                    Ok(r) => Ok(r.status()),
                    Err(ureq::Error::Status(code, _)) => Ok(code),
                    Err(ureq::Error::Transport(t)) => Err((t.to_string(), is_timeout(&t))),
                }
            };
            if let Err((tls_err, timed_out)) = probe(&client.base) {
                // A plain-HTTP server answers a TLS hello at once (with an error): silence on
                // TLS is silence, not a TLS problem, and asking again over HTTP would only wait twice.
                if timed_out {
                    return Err(client.silent());
                }
                let http = format!("http://{api_host}");
                match probe(&http) {
                    // A TLS port answers plain HTTP with 400: the TLS error is the one to report.
                    Ok(400) | Err(_) => return Err(client.unreachable(&tls_err)),
                    // Plain HTTP works; a status a registry would not give is explained by the
                    // first request's error (`status_error` asks /v2/).
                    Ok(_) => client.base = http,
                }
            }
        } else {
            // HTTPS only. A server that accepts and then says nothing would hold each request
            // for the read timeout, retried: one `/v2/` bounded by the probe timeout names it
            // at once. Anything else (refused, DNS, a TLS error, any status) is left to the
            // requests, which report it as they always did.
            if let Err(ureq::Error::Transport(t)) = client.agent.get(&client.url("/v2/")).timeout(PROBE_TIMEOUT).call() {
                if accepted_then_silent(&t) {
                    return Err(client.silent());
                }
            }
        }
        Ok(client)
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Whether requests go over plain HTTP.
    pub fn is_plain_http(&self) -> bool {
        self.base.starts_with("http://")
    }

    fn silent(&self) -> Error {
        Error::Registry {
            reference: self.registry.clone(),
            status: None,
            code: None,
            message: format!("no answer within {} s: {} accepted the connection and said nothing", PROBE_TIMEOUT.as_secs(), self.registry),
            hint: Some("check that the port is the registry's (not another service's) and that the registry is not hung".into()),
        }
    }

    /// Whether the server speaks the registry API: `GET /v2/` answers 200 or 401 on every
    /// registry. Asked only to explain an odd status; `None` when it does (or cannot be asked).
    fn not_a_registry(&self) -> Option<u16> {
        let status = match self.agent.get(&self.url("/v2/")).timeout(PROBE_TIMEOUT).call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(ureq::Error::Transport(_)) => return None,
        };
        // Only answers that cannot come from a registry count (a 5xx may be a passing fault).
        matches!(status, 400 | 404 | 405 | 501).then_some(status)
    }

    fn unreachable(&self, detail: &str) -> Error {
        Error::Registry {
            reference: self.registry.clone(),
            status: None,
            code: None,
            message: format!("cannot reach the registry: {detail}"),
            hint: Some(if is_loopback(&self.registry) {
                format!("check that a registry listens on {} (a private CA needs `--ca-file`)", self.registry)
            } else {
                format!("check that {} is up; a private CA needs `--ca-file`, plain HTTP needs `--insecure-registry {}`", self.registry, self.registry)
            }),
        }
    }

    /// Sends a request with auth and retries. Returns the response whatever its status (the
    /// caller maps statuses to meaning); fails only when the registry cannot be reached.
    pub(crate) fn send<'b>(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        scope: &Scope,
        body: &mut dyn FnMut() -> Result<Body<'b>>,
    ) -> Result<ureq::Response> {
        self.send_with(method, url, headers, scope, body, self.retry.attempts)
    }

    /// Like [`Client::send`] without retries on transport errors or 5xx (an upload whose
    /// session may hold part of the bytes is restarted by the caller instead); the auth
    /// handshake still happens.
    pub(crate) fn send_once<'b>(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        scope: &Scope,
        body: &mut dyn FnMut() -> Result<Body<'b>>,
    ) -> Result<ureq::Response> {
        self.send_with(method, url, headers, scope, body, 1)
    }

    fn send_with<'b>(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        scope: &Scope,
        body: &mut dyn FnMut() -> Result<Body<'b>>,
        attempts: u32,
    ) -> Result<ureq::Response> {
        let mut reauthenticated = false;
        let mut retry = 0;
        loop {
            let mut req = self.agent.request(method, url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(auth) = self.auth_header(scope)? {
                req = req.set("Authorization", &auth);
            }
            let result = match body()? {
                Body::Empty => req.call(),
                Body::Bytes(b) => req.send_bytes(&b),
                Body::Stream(r, len) => req.set("Content-Length", &len.to_string()).send(r),
            };
            match result {
                Ok(resp) => return Ok(resp),
                Err(ureq::Error::Status(401, resp)) if !reauthenticated => {
                    // First 401, or a token that expired or lacks this scope: learn the challenge, drop the token, try again.
                    reauthenticated = true;
                    match resp.header("WWW-Authenticate").and_then(Challenge::parse) {
                        Some(ch) => *self.challenge.lock().expect("lock") = Some(ch),
                        None => return Ok(resp),
                    }
                    self.tokens.lock().expect("lock").remove(&scope.key());
                }
                Err(ureq::Error::Status(code, resp)) if RetryPolicy::retryable(code) && retry + 1 < attempts => {
                    retry += 1;
                    std::thread::sleep(self.retry.delay(retry, parse_retry_after(resp.header("Retry-After"))));
                }
                Err(ureq::Error::Status(_, resp)) => return Ok(resp),
                Err(ureq::Error::Transport(_)) if retry + 1 < attempts => {
                    retry += 1;
                    std::thread::sleep(self.retry.delay(retry, None));
                }
                Err(ureq::Error::Transport(t)) => {
                    return Err(self.unreachable(&format!("{method} {} failed after {} tries: {}", strip_query(url), retry + 1, transport_detail(&t))));
                }
            }
        }
    }

    /// The `Authorization` value for a scope, fetching a token when the registry wants one.
    fn auth_header(&self, scope: &Scope) -> Result<Option<String>> {
        let challenge = self.challenge.lock().expect("lock").clone();
        match (challenge, &self.credential) {
            (_, Some(Credential::Bearer(t))) => Ok(Some(format!("Bearer {}", t.expose()))),
            (None, _) => Ok(None),
            (Some(Challenge::Basic), c) => Ok(c.as_ref().and_then(Credential::basic_header)),
            (Some(Challenge::Bearer { realm, service, .. }), _) => {
                if let Some(t) = self.tokens.lock().expect("lock").get(&scope.key()).filter(|t| t.expires > Instant::now()) {
                    return Ok(Some(format!("Bearer {}", t.value.expose())));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scope)?;
                let header = format!("Bearer {}", token.value.expose());
                self.tokens.lock().expect("lock").insert(scope.key(), token);
                Ok(Some(header))
            }
        }
    }

    /// The token flow: GET realm?service&scope (basic auth when we have a password, anonymous
    /// otherwise), or the OAuth2 refresh-token POST for an identity token.
    fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &Scope) -> Result<Token> {
        let fail = |status: Option<u16>, m: String| Error::Registry {
            reference: self.registry.clone(),
            status,
            code: None,
            message: m,
            hint: Some(format!("check the credentials for {} (`docker login {}`)", self.registry, self.registry)),
        };
        let result = match &self.credential {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form: Vec<(&str, &str)> = vec![("grant_type", "refresh_token"), ("refresh_token", refresh.expose()), ("client_id", "sparkctl")];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                let scopes = scope.0.join(" ");
                form.push(("scope", &scopes));
                self.agent.post(realm).send_form(&form)
            }
            other => {
                let mut req = self.agent.get(realm);
                if let Some(s) = service {
                    req = req.query("service", s);
                }
                for s in &scope.0 {
                    req = req.query("scope", s);
                }
                if let Some(b) = other.as_ref().and_then(|c| c.basic_header()) {
                    req = req.set("Authorization", &b);
                }
                req.call()
            }
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(code, _)) => return Err(fail(Some(code), format!("the token service {} refused (HTTP {code})", strip_query(realm)))),
            Err(ureq::Error::Transport(t)) => {
                return Err(fail(None, format!("cannot reach the token service {}: {}", strip_query(realm), transport_detail(&t))))
            }
        };
        let v: Value = serde_json::from_reader(resp.into_reader().take(1 << 20))
            .map_err(|_| fail(None, format!("the token service {} did not answer JSON", strip_query(realm))))?;
        let value = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(Value::as_str)
            .ok_or_else(|| fail(None, "the token service answered without a token".into()))?;
        // Tokens live 60 s unless the service says otherwise; refresh a little early.
        let lifetime = v.get("expires_in").and_then(Value::as_u64).unwrap_or(60).max(10);
        Ok(Token { value: Secret::new(value), expires: Instant::now() + Duration::from_secs(lifetime - 5) })
    }

    /// The response when its status is one `step` expects; otherwise the error for it.
    pub(crate) fn expect(&self, reference: &str, step: Step<'_>, resp: ureq::Response) -> Result<ureq::Response> {
        if step.answers().contains(&resp.status()) {
            Ok(resp)
        } else {
            Err(self.status_error(reference, step, resp))
        }
    }

    /// An error for an unexpected status, naming the reference and the registry's error code.
    fn status_error(&self, reference: &str, step: Step<'_>, resp: ureq::Response) -> Error {
        let status = resp.status();
        let mut body = String::new();
        let _ = resp.into_reader().take(64 << 10).read_to_string(&mut body);
        let ErrorBody { code, message: detail } = ErrorBody::parse(&body);
        let registry = &self.registry;
        // A registry's errors carry a code; without one, an odd status may be another kind of
        // server on that port (a web server's 404, a proxy's 501): ask /v2/ before guessing.
        if code.is_none() && matches!(status, 400 | 404 | 405 | 501) {
            if let Some(v2) = self.not_a_registry() {
                return Error::Registry {
                    reference: reference.to_owned(),
                    status: Some(status),
                    code: None,
                    message: format!("{step}: {registry} is not a container registry (`GET /v2/` answered HTTP {v2}, a registry answers 200 or 401)"),
                    hint: Some("check the host and port of the reference".into()),
                };
            }
        }
        let (message, hint) = match (status, &code) {
            (401, _) if self.credential.is_some() => {
                ("the registry rejected the credentials".to_owned(), format!("check the credentials for {registry} (`docker login {registry}`)"))
            }
            (401, _) => (
                "authentication required".to_owned(),
                format!("log in with `docker login {registry}`, or give `--authfile`, or set SPARKCTL_REGISTRY_USER and SPARKCTL_REGISTRY_PASSWORD"),
            ),
            (403, _) => ("access denied".to_owned(), "the credentials lack permission for this repository (a push needs write access)".to_owned()),
            (404, Some(ErrorCode::ManifestUnknown) | None) if step.names_a_manifest() => ("manifest unknown".to_owned(), "check the tag or digest".to_owned()),
            (404, Some(ErrorCode::NameUnknown)) => ("repository not found".to_owned(), "check the repository name".to_owned()),
            (_, Some(ErrorCode::NameInvalid)) => ("invalid repository name".to_owned(), "lowercase letters, digits and separators".to_owned()),
            (_, Some(ErrorCode::BlobUnknown)) => ("blob unknown".to_owned(), "the registry does not have this blob".to_owned()),
            (_, Some(ErrorCode::DigestInvalid)) => {
                ("the registry computed a different digest for the upload".to_owned(), "the local blob is corrupt; rebuild the image".to_owned())
            }
            _ => (format!("unexpected HTTP {status}"), "retry later, or check the registry's logs".to_owned()),
        };
        let shown_code = code.as_ref().map(|c| format!(", {c}")).unwrap_or_default();
        let detail = detail.filter(|d| !message.eq_ignore_ascii_case(d)).map(|d| format!(": {d}")).unwrap_or_default();
        Error::Registry {
            reference: reference.to_owned(),
            status: Some(status),
            code,
            message: format!("{step}: {message} (HTTP {status}{shown_code}){detail}"),
            hint: Some(hint),
        }
    }
}

/// One request of the distribution API as a step of a pull or push: what it does (for messages)
/// and the statuses that answer it. Any other status is an error built from the registry's
/// error body ([`Client::expect`]); the caller gives meaning to the expected ones.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step<'a> {
    /// `GET /manifests/<tag or digest>`: 200.
    ReadManifest(&'a str),
    /// `GET /blobs/<digest>`: 200 the whole blob, 206 from the offset a `Range` asked for.
    ReadBlob(&'a Digest),
    /// `HEAD /blobs/<digest>` before an upload: 200 the registry has it, 404 it does not.
    CheckBlob(&'a Digest),
    /// `POST /blobs/uploads/`: 202 an upload session; with `mount`, also 201 mounted.
    StartUpload { digest: &'a Digest, mount: bool },
    /// `PUT` of the whole blob into its session: 201.
    UploadBlob(&'a Digest),
    /// `PUT /manifests/<reference>`: 201.
    PushManifest(&'a Digest),
}

impl Step<'_> {
    /// The statuses this step expects.
    pub(crate) fn answers(&self) -> &'static [u16] {
        match self {
            Step::ReadManifest(_) => &[200],
            Step::ReadBlob(_) => &[200, 206],
            Step::CheckBlob(_) => &[200, 404],
            Step::StartUpload { mount: true, .. } => &[201, 202],
            Step::StartUpload { mount: false, .. } => &[202],
            Step::UploadBlob(_) | Step::PushManifest(_) => &[201],
        }
    }

    /// Whether the request names a manifest: its 404 without a code is "manifest unknown".
    fn names_a_manifest(&self) -> bool {
        matches!(self, Step::ReadManifest(_) | Step::PushManifest(_))
    }
}

impl std::fmt::Display for Step<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::ReadManifest(reference) => write!(f, "reading manifest `{reference}`"),
            Step::ReadBlob(digest) => write!(f, "reading blob {digest}"),
            Step::CheckBlob(digest) => write!(f, "checking blob {digest}"),
            Step::StartUpload { digest, .. } => write!(f, "starting the upload of {digest}"),
            Step::UploadBlob(digest) => write!(f, "uploading blob {digest}"),
            Step::PushManifest(digest) => write!(f, "pushing manifest {digest}"),
        }
    }
}

/// How long the scheme probe and the `/v2/` check wait for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A transport error that is a read or connect timeout (`SO_RCVTIMEO` gives `WouldBlock`).
fn is_timeout(t: &ureq::Transport) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(e) = src {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) {
                return true;
            }
        }
        src = e.source();
    }
    let text = t.to_string();
    text.contains("timed out") || text.contains("temporarily unavailable")
}

/// A timeout after the TCP connection was made (in the TLS handshake or the response), not one
/// of the connect itself (ureq's "Connect error": nothing listens, or packets are dropped).
fn accepted_then_silent(t: &ureq::Transport) -> bool {
    is_timeout(t) && t.message() != Some("Connect error")
}

/// What went wrong on the wire, without the URL (whose query may be an upload's opaque state).
fn transport_detail(t: &ureq::Transport) -> String {
    let mut out = t.kind().to_string();
    if let Some(m) = t.message() {
        out.push_str(&format!(": {m}"));
    }
    if let Some(src) = std::error::Error::source(t) {
        out.push_str(&format!(": {src}"));
    }
    out
}

/// A URL without its query (upload URLs carry opaque state that only clutters messages).
fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_may_use_plain_http() {
        for h in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["10.0.0.1:5000", "registry.example:5000", "nvcr.io"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    /// A client whose `/v2/` cannot be asked (nothing listens on port 1).
    fn offline_client() -> Client {
        Client {
            agent: ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(1)).build(),
            registry: "127.0.0.1:1".into(),
            base: "http://127.0.0.1:1".into(),
            credential: None,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            retry: RetryPolicy::default(),
        }
    }

    #[test]
    fn statuses_and_codes_become_the_same_messages() {
        let client = offline_client();
        let digest = Digest::of(b"x");
        let fail = |step: Step<'_>, status: u16, body: &str| match client.expect("ref", step, ureq::Response::new(status, "X", body).unwrap()) {
            Err(Error::Registry { status, code, message, hint, .. }) => (status, code, message, hint.unwrap_or_default()),
            other => panic!("{other:?}"),
        };
        let unknown = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#;
        let (status, code, message, hint) = fail(Step::ReadManifest("nope"), 404, unknown);
        assert_eq!((status, code), (Some(404), Some(ErrorCode::ManifestUnknown)));
        assert_eq!((message.as_str(), hint.as_str()), ("reading manifest `nope`: manifest unknown (HTTP 404, MANIFEST_UNKNOWN)", "check the tag or digest"));
        // The same code on a blob step is not "manifest unknown".
        let (_, _, message, _) = fail(Step::ReadBlob(&digest), 404, unknown);
        assert_eq!(message, format!("reading blob {digest}: unexpected HTTP 404 (HTTP 404, MANIFEST_UNKNOWN): manifest unknown"));
        let (_, _, message, hint) =
            fail(Step::ReadManifest("v1"), 404, r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#);
        assert_eq!(message, "reading manifest `v1`: repository not found (HTTP 404, NAME_UNKNOWN): repository name not known to registry");
        assert_eq!(hint, "check the repository name");
        let (_, code, message, _) =
            fail(Step::UploadBlob(&digest), 400, r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#);
        assert_eq!(code, Some(ErrorCode::DigestInvalid));
        assert!(
            message.starts_with(&format!("uploading blob {digest}: the registry computed a different digest for the upload (HTTP 400, DIGEST_INVALID): ")),
            "{message}"
        );
        let (_, code, message, _) = fail(Step::PushManifest(&digest), 402, r#"{"errors":[{"code":"PAYMENT_REQUIRED"}]}"#);
        assert_eq!(code, Some(ErrorCode::Other("PAYMENT_REQUIRED".into())));
        assert_eq!(message, format!("pushing manifest {digest}: unexpected HTTP 402 (HTTP 402, PAYMENT_REQUIRED)"));
        // No body, or one that is not the registry's: no code, the status alone.
        let (_, code, message, _) = fail(Step::ReadManifest("v1"), 404, "");
        assert_eq!((code, message.as_str()), (None, "reading manifest `v1`: manifest unknown (HTTP 404)"));
        let (_, code, message, hint) = fail(Step::CheckBlob(&digest), 503, "<html>busy</html>");
        assert_eq!((code, message), (None, format!("checking blob {digest}: unexpected HTTP 503 (HTTP 503)")));
        assert_eq!(hint, "retry later, or check the registry's logs");
        let (_, _, message, _) = fail(Step::ReadManifest("v1"), 401, r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#);
        assert_eq!(message, "reading manifest `v1`: authentication required (HTTP 401, UNAUTHORIZED)");
    }

    #[test]
    fn each_step_expects_its_own_statuses() {
        let client = offline_client();
        let digest = Digest::of(b"x");
        let passes = |step: Step<'_>, status: u16| client.expect("ref", step, ureq::Response::new(status, "X", "").unwrap()).is_ok();
        assert!(passes(Step::CheckBlob(&digest), 200) && passes(Step::CheckBlob(&digest), 404), "present or absent");
        assert!(!passes(Step::ReadBlob(&digest), 404) && passes(Step::ReadBlob(&digest), 206));
        assert!(passes(Step::StartUpload { digest: &digest, mount: true }, 201), "mounted");
        assert!(!passes(Step::StartUpload { digest: &digest, mount: false }, 201), "a 201 without a mount asked is not an upload session");
        assert!(passes(Step::StartUpload { digest: &digest, mount: false }, 202));
        assert!(!passes(Step::UploadBlob(&digest), 202) && passes(Step::PushManifest(&digest), 201));
    }

    #[test]
    fn scopes_join_for_mounts() {
        assert_eq!(Scope::push("a/b").and_pull("c").key(), "repository:a/b:pull,push repository:c:pull");
    }
}
