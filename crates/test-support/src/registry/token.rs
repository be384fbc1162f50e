//! A token service for the registry's `auth: token` mode, so the Bearer flow (challenge →
//! realm → token per scope) runs against the real registry. Tokens are ES256 JWTs signed with
//! `openssl` and carry the signing certificate in `x5c`; the registry trusts that certificate
//! (`rootcertbundle`). Anonymous requests get pull access only; push needs the test's user.

use super::run;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

pub const SERVICE: &str = "sparkctl-test-registry";
pub const ISSUER: &str = "sparkctl-test-tokens";

/// One request the token service answered: whether it carried the right basic credentials, and its scopes.
#[derive(Debug, Clone)]
pub struct Issued {
    pub authenticated: bool,
    /// Asked with the OAuth2 refresh-token POST (an identity token) rather than a GET.
    pub refresh: bool,
    pub scopes: Vec<String>,
}

/// The identity (refresh) token the service accepts for the user: `idt-<password>`.
pub fn identity_token(password: &str) -> String {
    format!("idt-{password}")
}

pub struct TokenServer {
    pub port: u16,
    pub cert: PathBuf,
    pub issued: Arc<Mutex<Vec<Issued>>>,
}

impl TokenServer {
    /// Tokens say they live `expires_in` seconds.
    pub fn start(dir: &Path, user: &str, password: &str, expires_in: u64) -> TokenServer {
        let key = dir.join("token.key");
        let cert = dir.join("token.pem");
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=sparkctl test tokens"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = run_bytes(Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(&cert));
        let x5c = b64(&der, false);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issued: Arc<Mutex<Vec<Issued>>> = Arc::default();
        let log = Arc::clone(&issued);
        let expected = format!("Basic {}", b64(format!("{user}:{password}").as_bytes(), false));
        let refresh = identity_token(password);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = answer(conn, &key, &x5c, (&expected, &refresh), &log, expires_in);
            }
        });
        TokenServer { port, cert, issued }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

fn run_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("openssl is installed (cargo xtask deps)");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn answer(
    conn: TcpStream,
    key: &Path,
    x5c: &str,
    (expected_auth, expected_refresh): (&str, &str),
    log: &Mutex<Vec<Issued>>,
    expires_in: u64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut authenticated = false;
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authenticated = v.trim() == expected_auth;
            }
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let refresh = line.starts_with("POST ");
    let scopes: Vec<String> = if refresh {
        // OAuth2 form: grant_type=refresh_token&refresh_token=…&scope=<space-separated>
        let mut body = vec![0u8; length];
        std::io::Read::read_exact(&mut reader, &mut body)?;
        let form: Vec<(String, String)> =
            String::from_utf8_lossy(&body).split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), percent_decode(v))).collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        authenticated = get("grant_type") == "refresh_token" && get("refresh_token") == expected_refresh;
        get("scope").split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()
    } else {
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        query.split('&').filter_map(|kv| kv.strip_prefix("scope=")).map(percent_decode).collect()
    };
    log.lock().unwrap().push(Issued { authenticated, refresh, scopes: scopes.clone() });
    // Grant what was asked, but push only to the authenticated user (like Docker Hub).
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let actions: Vec<&str> = actions.split(',').filter(|a| *a == "pull" || authenticated).collect();
            Some(serde_json::json!({ "type": kind, "name": name, "actions": actions }))
        })
        .collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({ "typ": "JWT", "alg": "ES256", "x5c": [x5c] });
    let claims = serde_json::json!({ "iss": ISSUER, "sub": if authenticated { "ci-user" } else { "" }, "aud": SERVICE, "exp": now + expires_in, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", scopes.len()), "access": access });
    let signing_input = format!("{}.{}", b64(header.to_string().as_bytes(), true), b64(claims.to_string().as_bytes(), true));
    let signature = der_to_raw(&sign(key, signing_input.as_bytes()));
    let token = format!("{signing_input}.{}", b64(&signature, true));
    let body = serde_json::json!({ "token": token, "access_token": token, "expires_in": expires_in }).to_string();
    let mut conn = conn;
    write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    Ok(())
}

/// ECDSA P-256 / SHA-256 signature (DER) by `openssl dgst`.
fn sign(key: &Path, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl is installed (cargo xtask deps)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl dgst -sign failed");
    out.stdout
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` → JWS's fixed 64 bytes `r || s`.
fn der_to_raw(der: &[u8]) -> Vec<u8> {
    let mut i = 2; // SEQUENCE tag and (short) length
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[i], 0x02, "INTEGER expected");
        let len = der[i + 1] as usize;
        let int = &der[i + 2..i + 2 + len];
        let int = if int.len() > 32 { &int[int.len() - 32..] } else { int };
        out.extend(vec![0u8; 32 - int.len()]);
        out.extend_from_slice(int);
        i += 2 + len;
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Base64 (standard, padded) or base64url without padding (JWS).
pub fn b64(data: &[u8], url: bool) -> String {
    let table: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                out.push(table[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else if !url {
                out.push('=');
            }
        }
    }
    out
}
