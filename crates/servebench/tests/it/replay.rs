//! The client against recorded streams replayed byte for byte by a raw TCP server: real vLLM's
//! streams, streams without `[DONE]`, close-delimited and chunked bodies, garbage.

use crate::fixture_body;
use servebench::client::{run, Live, Load, RunSpec, Target};
use servebench::metrics::{summarize, ErrorKind, Slo};
use servebench::workload::{Api, Workload};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

/// Serves `body` once per connection after `head`, then closes.
fn replay(head: &'static str, body: Vec<u8>, chunked: bool) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut b = [0u8; 4096];
        // The request: head, then its content-length of body.
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") || {
            let text = String::from_utf8_lossy(&buf);
            let end = text.find("\r\n\r\n").unwrap() + 4;
            let len: usize = text.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())).unwrap();
            buf.len() < end + len
        } {
            let n = s.read(&mut b).unwrap();
            buf.extend_from_slice(&b[..n]);
        }
        s.write_all(head.as_bytes()).unwrap();
        if chunked {
            for piece in body.chunks(100) {
                s.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).unwrap();
                s.write_all(piece).unwrap();
                s.write_all(b"\r\n").unwrap();
            }
            s.write_all(b"0\r\n\r\n").unwrap();
        } else {
            s.write_all(&body).unwrap();
        }
    });
    (url, t)
}

const CLOSE: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
const CHUNKED: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";

fn one_request(url: &str) -> servebench::metrics::Record {
    one_request_to(url, Api::Chat).0
}

/// One request; its record and its inter-token gaps.
fn one_request_to(url: &str, api: Api) -> (servebench::metrics::Record, Vec<f32>) {
    let w = Workload {
        api,
        model: "m".into(),
        prompt_tokens: 4,
        prompt_words: None,
        prompt_tokens_exact: false,
        vocabulary: None,
        shared_prefix: 0,
        max_tokens: 3,
        ignore_eos: false,
        seed: 0,
        dataset: None,
        image: None,
    };
    let spec = RunSpec {
        load: Load::Closed { concurrency: 1 },
        duration: None,
        requests: Some(1),
        warmup: Duration::ZERO,
        ramp_up: Duration::ZERO,
        stall_timeout: Duration::from_secs(5),
        seed: 0,
    };
    let o = run(&Target::from_url(url).unwrap(), &w, &spec, Arc::new(Live::default())).unwrap();
    let s = summarize(&o.records, &o.itls, o.window_s, &Slo::default());
    assert_eq!(s.requests, 1);
    (o.records.into_iter().next().unwrap(), o.itls)
}

/// The captured OpenAI stream (JSON lines) framed as SSE, without its `[DONE]`: the finish
/// reason and the usage-only chunk end it properly.
fn openai_sse_without_done() -> Vec<u8> {
    let body = fixture_body("openai-chat-stream-json-lines-final-usage-chunk-empty-choices.txt");
    body.lines().filter(|l| *l != "[DONE]").map(|l| format!("data: {l}\n\n")).collect::<String>().into_bytes()
}

#[test]
fn stream_without_done_ends_at_close_with_usage_tokens() {
    for (head, chunked) in [(CLOSE, false), (CHUNKED, true)] {
        let (url, t) = replay(head, openai_sse_without_done(), chunked);
        let r = one_request(&url);
        t.join().unwrap();
        assert_eq!(r.error, None, "chunked {chunked}");
        // Two content chunks, then usage says 3 completion tokens (the fixture is the stream's tail).
        assert_eq!((r.output_tokens, r.output_tokens_from_usage, r.prompt_tokens), (3, true, Some(14)));
        assert!(r.first_token_s.is_some() && r.first_content_s.is_some());
    }
}

#[test]
fn vllm_stream_cut_without_finish_or_done_is_truncated() {
    let (url, t) = replay(CLOSE, fixture_body("vllm-chat-stream-v0.5-no-usage-cmpl-id.txt").into_bytes(), false);
    let r = one_request(&url);
    t.join().unwrap();
    // Five content chunks arrived (the role chunk is not one), but the stream never finished.
    assert_eq!((r.output_tokens, r.chunks), (5, 6));
    assert_eq!(r.error, Some(ErrorKind::Truncated));
}

#[test]
fn garbage_body_is_a_protocol_error() {
    let (url, t) = replay(CLOSE, b"data: {\"choices\": [oops\n\n".to_vec(), false);
    assert_eq!(one_request(&url).error, Some(ErrorKind::Protocol));
    t.join().unwrap();
    let (url, t) = replay("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", b"zz\r\n".to_vec(), false);
    assert_eq!(one_request(&url).error, Some(ErrorKind::Protocol));
    t.join().unwrap();
    let (url, t) = replay("SSH-2.0-OpenSSH\r\n\r\n", Vec::new(), false);
    assert_eq!(one_request(&url).error, Some(ErrorKind::Protocol));
    t.join().unwrap();
}

#[test]
fn real_vllm_streams_replayed_give_usage_tokens_prompt_tokens_and_every_token() {
    for (name, api, tokens, prompt, chunks) in [
        // role chunk, 4 token chunks, the usage-only chunk
        ("sparkctl-vllm-0.32-cpu-chat-stream-continuous-usage.txt", Api::Chat, 4, 8, 6),
        // 3 token chunks, the usage-only chunk
        ("sparkctl-vllm-0.32-cpu-completion-stream-continuous-usage.txt", Api::Completions, 3, 1, 4),
    ] {
        for (head, chunked) in [(CHUNKED, true), (CLOSE, false)] {
            let (url, t) = replay(head, fixture_body(name).into_bytes(), chunked);
            let (r, itls) = one_request_to(&url, api);
            t.join().unwrap();
            assert_eq!(r.error, None, "{name} chunked {chunked}");
            assert_eq!((r.output_tokens, r.output_tokens_from_usage, r.prompt_tokens, r.chunks), (tokens, true, Some(prompt), chunks), "{name}");
            assert!(r.first_token_s.is_some() && r.first_content_s.is_some() && r.last_token_s.is_some(), "{name}");
            // A token with empty text (its running usage grew) is still a token: one gap
            // between each two of them.
            assert_eq!(itls.len() as u64, tokens - 1, "{name}");
        }
    }
}
