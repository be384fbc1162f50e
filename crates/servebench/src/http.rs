//! The slice of HTTP/1.1 a streaming benchmark needs, sans IO: a response head, a body framed by
//! `Content-Length`, `chunked` or the connection closing, and (for the stand-in server) a request
//! head. Written by hand so that the hot path (bytes in → SSE events out) is one buffer walk
//! with no copy we do not choose, and so the entrypoint-sized crates never see an HTTP stack.

/// Why bytes are not the HTTP we expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed HTTP: {0}")]
pub struct HttpError(pub String);

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A `Content-Length` body of this many bytes.
    Length(u64),
    /// A `Transfer-Encoding: chunked` body.
    Chunked,
    /// The body ends when the server closes the connection.
    Close,
}

/// A response status line and the headers that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// How the body ends.
    pub framing: Framing,
    /// The server keeps the connection open after this response.
    pub(crate) keep_alive: bool,
}

/// A request line and the headers the stand-in server reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestHead {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) content_length: u64,
    pub(crate) authorization: Option<String>,
    pub(crate) keep_alive: bool,
}

const MAX_HEAD: usize = 64 * 1024;

fn head_end(buf: &[u8]) -> Result<Option<usize>, HttpError> {
    match buf.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => Ok(Some(p + 4)),
        None if buf.len() > MAX_HEAD => Err(HttpError(format!("no end of headers within {MAX_HEAD} bytes"))),
        None => Ok(None),
    }
}

fn headers(text: &str) -> impl Iterator<Item = (String, &str)> {
    text.split("\r\n").skip(1).filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
}

/// Parses a response head at the start of `buf`: `None` until the blank line has arrived, else
/// the head and how many bytes it took.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HttpError> {
    let Some(end) = head_end(buf)? else { return Ok(None) };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| HttpError("response head is not UTF-8".into()))?;
    let status_line = text.lines().next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError(format!("status line `{}` is not HTTP/1.x", status_line.chars().take(60).collect::<String>())));
    }
    let status = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| HttpError(format!("no status code in `{status_line}`")))?;
    let mut framing = Framing::Close;
    let mut keep_alive = version == "HTTP/1.1";
    for (k, v) in headers(text) {
        match k.as_str() {
            "transfer-encoding" if v.to_ascii_lowercase().contains("chunked") => framing = Framing::Chunked,
            "content-length" if framing != Framing::Chunked => {
                framing = Framing::Length(v.parse().map_err(|_| HttpError(format!("content-length `{v}` is not a number")))?)
            }
            "connection" => keep_alive = v.eq_ignore_ascii_case("keep-alive"),
            _ => {}
        }
    }
    if framing == Framing::Close {
        keep_alive = false;
    }
    Ok(Some((ResponseHead { status, framing, keep_alive }, end)))
}

/// Parses a request head at the start of `buf` (the stand-in server's side).
pub(crate) fn parse_request_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HttpError> {
    let Some(end) = head_end(buf)? else { return Ok(None) };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| HttpError("request head is not UTF-8".into()))?;
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(HttpError(format!("request line `{}` is not `METHOD PATH HTTP/1.x`", line.chars().take(60).collect::<String>())));
    };
    let mut head = RequestHead { method: method.to_owned(), path: path.to_owned(), content_length: 0, authorization: None, keep_alive: version == "HTTP/1.1" };
    for (k, v) in headers(text) {
        match k.as_str() {
            "content-length" => head.content_length = v.parse().map_err(|_| HttpError(format!("content-length `{v}` is not a number")))?,
            "authorization" => head.authorization = Some(v.to_owned()),
            "connection" => head.keep_alive = v.eq_ignore_ascii_case("keep-alive"),
            "transfer-encoding" => return Err(HttpError("chunked request bodies are not supported".into())),
            _ => {}
        }
    }
    Ok(Some((head, end)))
}

/// Decodes a body as it arrives, handing out the payload bytes.
#[derive(Debug)]
pub struct BodyDecoder {
    framing: Framing,
    state: Chunked,
    /// Bytes of payload left: the whole body (`Length`) or the current chunk (`Chunked`).
    left: u64,
    line: Vec<u8>,
    done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    Size,
    Data,
    DataEnd,
    Trailer,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: Framing) -> Self {
        let left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Self { framing, state: Chunked::Size, left, line: Vec::new(), done: framing == Framing::Length(0) }
    }

    /// The body is complete (never true for a body that ends when the connection closes).
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Consumes `input`, calling `out` with each run of payload bytes.
    pub fn decode(&mut self, mut input: &[u8], out: &mut impl FnMut(&[u8])) -> Result<(), HttpError> {
        match self.framing {
            Framing::Close => {
                out(input);
                return Ok(());
            }
            Framing::Length(_) => {
                let n = (input.len() as u64).min(self.left) as usize;
                out(&input[..n]);
                self.left -= n as u64;
                self.done = self.left == 0;
                return Ok(());
            }
            Framing::Chunked => {}
        }
        while !input.is_empty() && !self.done {
            match self.state {
                Chunked::Size | Chunked::DataEnd | Chunked::Trailer => {
                    let Some(nl) = input.iter().position(|&b| b == b'\n') else {
                        self.line.extend_from_slice(input);
                        if self.line.len() > 4096 {
                            return Err(HttpError("chunk-size line longer than 4096 bytes".into()));
                        }
                        return Ok(());
                    };
                    self.line.extend_from_slice(&input[..nl]);
                    input = &input[nl + 1..];
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    match self.state {
                        Chunked::Size => {
                            let hex = std::str::from_utf8(line).unwrap_or("").split(';').next().unwrap_or("").trim();
                            self.left =
                                u64::from_str_radix(hex, 16).map_err(|_| HttpError(format!("chunk size `{}` is not hex", String::from_utf8_lossy(line))))?;
                            self.state = if self.left == 0 { Chunked::Trailer } else { Chunked::Data };
                        }
                        Chunked::DataEnd => {
                            if !line.is_empty() {
                                return Err(HttpError("chunk data longer than its size".into()));
                            }
                            self.state = Chunked::Size;
                        }
                        _ => self.done = line.is_empty(),
                    }
                }
                Chunked::Data => {
                    let n = (input.len() as u64).min(self.left) as usize;
                    out(&input[..n]);
                    input = &input[n..];
                    self.left -= n as u64;
                    if self.left == 0 {
                        self.state = Chunked::DataEnd;
                    }
                }
            }
        }
        Ok(())
    }
}
