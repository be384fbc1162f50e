//! A minimal HTTP/1.1 client over `std::net::TcpStream` for the readiness probe (no TLS, no
//! crate: the binary stays small and `cluster` keeps no network stack). One request per
//! connection (`Connection: close`); `Content-Length`, chunked and read-to-EOF bodies.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<Response> {
    request(addr, "GET", path, None, timeout)
}

pub fn post_json(addr: SocketAddr, path: &str, json: &str, timeout: Duration) -> std::io::Result<Response> {
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

/// Parses a response from any reader (tested on captured bytes).
pub fn read_response(mut r: impl BufRead) -> std::io::Result<Response> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("not an HTTP response"))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(Response { status, body: String::from_utf8_lossy(&body).into_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

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
