//! A minimal HTTP/1.1 client over `std::net::TcpStream` for the readiness probe (no TLS, no
//! crate: the binary stays small and `cluster` keeps no network stack). One request per
//! connection (`Connection: close`); `Content-Length`, chunked and read-to-EOF bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An HTTP response: its status and body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, decoded (chunked or by length).
    pub body: String,
}

pub(crate) fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<Response> {
    request(addr, "GET", path, None, timeout)
}

pub(crate) fn post_json(addr: SocketAddr, path: &str, json: &str, timeout: Duration) -> std::io::Result<Response> {
    request(addr, "POST", path, Some(json), timeout)
}

fn request(addr: SocketAddr, method: &str, path: &str, json: Option<&str>, timeout: Duration) -> std::io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n");
    if let Some(b) = json {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    if let Some(b) = json {
        req.push_str(b);
    }
    s.write_all(req.as_bytes())?;
    read_response(BufReader::new(s))
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_owned())
}

/// The largest body the probe accepts. Its answers (`/health`, `/v1/models`, a 1-token
/// completion) are a few KiB; a peer announcing more is broken or hostile, and PID 1 must never
/// allocate what a response merely announces.
pub const MAX_BODY: u64 = 4 << 20;
/// Longest status or header line, and most header lines.
const MAX_LINE: u64 = 16 << 10;
const MAX_HEADERS: usize = 128;

/// One line (with its `\n`), refusing to buffer more than `MAX_LINE` bytes of it.
fn read_line(r: &mut impl BufRead, line: &mut String) -> std::io::Result<usize> {
    line.clear();
    let n = r.by_ref().take(MAX_LINE).read_line(line)?;
    if n as u64 == MAX_LINE && !line.ends_with('\n') {
        return Err(bad("response line longer than 16 KiB"));
    }
    Ok(n)
}

/// Reads exactly `n` more body bytes (n already checked against the cap), incrementally: memory
/// grows with what arrives, not with what was announced.
fn read_body(r: &mut impl BufRead, n: u64, body: &mut Vec<u8>) -> std::io::Result<()> {
    let got = r.by_ref().take(n).read_to_end(body)?;
    if (got as u64) < n {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("body ended after {got} of {n} announced bytes")));
    }
    Ok(())
}

fn too_large(n: impl std::fmt::Display) -> std::io::Error {
    bad(&format!("response body of {n} bytes is over the {} MiB the probe accepts", MAX_BODY >> 20))
}

/// Parses a response from any reader (tested on captured bytes). Never allocates more than
/// `MAX_BODY` for the body, whatever the headers or chunk sizes announce.
pub fn read_response(mut r: impl BufRead) -> std::io::Result<Response> {
    let mut line = String::new();
    read_line(&mut r, &mut line)?;
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("not an HTTP response"))?;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut headers = 0;
    loop {
        if read_line(&mut r, &mut line)? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(bad("more than 128 header lines"));
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = Some(v.parse::<u64>().map_err(|_| bad(&format!("bad Content-Length `{v}`")))?);
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            read_line(&mut r, &mut line)?;
            let hex = line.trim().split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(hex, 16).map_err(|_| bad(&format!("bad chunk size `{hex}`")))?;
            if size == 0 {
                break;
            }
            if size > MAX_BODY - body.len() as u64 {
                return Err(too_large(format!("more than {}", body.len() as u64 + size.min(MAX_BODY))));
            }
            read_body(&mut r, size, &mut body)?;
            read_line(&mut r, &mut line)?;
        }
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(too_large(n));
        }
        read_body(&mut r, n, &mut body)?;
    } else {
        r.take(MAX_BODY + 1).read_to_end(&mut body)?;
        if body.len() as u64 > MAX_BODY {
            return Err(too_large(format!("more than {MAX_BODY}")));
        }
    }
    Ok(Response { status, body: String::from_utf8_lossy(&body).into_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_chunked_and_eof_bodies() {
        let r = read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"[..]).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "ok"));
        let r = read_response(&b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n2;x=y\r\n\":\r\n1\r\n1\r\n0\r\n\r\n"[..]).unwrap();
        assert_eq!(r.body, "{\"a\":1");
        let r = read_response(&b"HTTP/1.0 503 Service Unavailable\r\nServer: x\r\n\r\nloading"[..]).unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "loading"));
        assert!(read_response(&b"SSH-2.0-OpenSSH\r\n"[..]).is_err());
    }

    /// Announced sizes must never become allocations (PID 1 would abort) or panics.
    #[test]
    fn huge_announced_bodies_are_refused_without_allocating() {
        for head in ["Content-Length: 99999999999999", "Content-Length: 18446744073709551615", "Content-Length: 4194305"] {
            let e = read_response(format!("HTTP/1.1 200 OK\r\n{head}\r\n\r\nok").as_bytes()).unwrap_err();
            assert!(e.to_string().contains("over the 4 MiB"), "{head}: {e}");
        }
        let e = read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n"[..]).unwrap_err();
        assert!(e.to_string().contains("bad Content-Length"), "{e}");
        let e = read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"[..]).unwrap_err();
        assert!(e.to_string().contains("bad Content-Length"), "{e}");
        for size in ["ffffffffffff", "ffffffffffffffff", "400001", "fffffffffffffffff", "-1", "", "zz"] {
            let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nab\r\n0\r\n\r\n");
            assert!(read_response(raw.as_bytes()).is_err(), "chunk size `{size}` accepted");
        }
        // Chunks that add up past the cap: refused at the chunk that crosses it.
        let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..5 {
            raw.extend_from_slice(b"100000\r\n");
            raw.extend_from_slice(&chunk);
            raw.extend_from_slice(b"\r\n");
        }
        assert!(read_response(&raw[..]).unwrap_err().to_string().contains("over the 4 MiB"));
        // A body without a length, longer than the cap; a header line without end.
        let mut raw = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        raw.resize(raw.len() + (MAX_BODY + 1) as usize, b'x');
        assert!(read_response(&raw[..]).unwrap_err().to_string().contains("over the 4 MiB"));
        let mut raw = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        raw.resize(raw.len() + (1 << 20), b'x');
        assert!(read_response(&raw[..]).unwrap_err().to_string().contains("longer than 16 KiB"));
        let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", "X: y\r\n".repeat(200));
        assert!(read_response(many.as_bytes()).unwrap_err().to_string().contains("header lines"));
        // A body shorter than announced is an error, not a short answer.
        assert!(read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"[..]).is_err());
        // Exactly the cap is fine.
        let mut raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {MAX_BODY}\r\n\r\n").into_bytes();
        raw.resize(raw.len() + MAX_BODY as usize, b'x');
        assert_eq!(read_response(&raw[..]).unwrap().body.len() as u64, MAX_BODY);
    }

    #[test]
    fn talks_to_a_real_local_server() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0; 7];
            r.read_exact(&mut body).unwrap();
            (&s).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone").unwrap();
            (head, String::from_utf8(body).unwrap())
        });
        let resp = post_json(addr, "/v1/completions", "{\"a\":1}", Duration::from_secs(5)).unwrap();
        assert_eq!(resp.body, "done");
        let (head, body) = t.join().unwrap();
        assert!(head.starts_with("POST /v1/completions HTTP/1.1\r\n"));
        assert!(head.contains("Content-Length: 7"));
        assert_eq!(body, "{\"a\":1}");
    }
}
