//! The stand-in streams what real vLLM 0.32 streams: the same events with the same keys (values
//! aside), compared with the recorded streams, in the usage modes the benchmark meets.

use crate::fixture_body;
use serde_json::Value;
use servebench::http::{parse_response_head, BodyDecoder};
use servebench::standin::{self, Config, UsageMode};
use std::io::{Read, Write};

/// What a client meets in an event: the keys at each level, sorted (`[DONE]` as itself).
fn shape(data: &str) -> String {
    if data == "[DONE]" {
        return data.into();
    }
    let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("not JSON ({e}): {data}"));
    let keys = |v: &Value| {
        let mut k: Vec<&str> = v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        k.sort_unstable();
        k.join(",")
    };
    let choices: Vec<String> = v["choices"].as_array().unwrap().iter().map(|c| format!("choice{{{}}} delta{{{}}}", keys(c), keys(&c["delta"]))).collect();
    format!("top{{{}}} [{}] usage{{{}}}", keys(&v), choices.join(" "), keys(&v["usage"]))
}

/// The shapes of a stream's events, consecutive repeats folded (the lengths differ).
fn shapes(events: &[String]) -> Vec<String> {
    let mut v: Vec<String> = events.iter().map(|e| shape(e)).collect();
    v.dedup();
    v
}

fn data_lines(body: &str) -> Vec<String> {
    body.lines().filter_map(|l| l.strip_prefix("data: ")).map(str::to_owned).collect()
}

/// The recording's events; for `final_only`, as vLLM sends them without continuous usage: no
/// `usage` but on the last, usage-only chunk.
fn recorded(name: &str, final_only: bool) -> Vec<String> {
    let events = data_lines(&fixture_body(name));
    if !final_only {
        return events;
    }
    events
        .into_iter()
        .map(|e| {
            let Ok(mut v) = serde_json::from_str::<Value>(&e) else { return e };
            if v["choices"].as_array().is_some_and(|c| !c.is_empty()) {
                v.as_object_mut().unwrap().remove("usage");
            }
            v.to_string()
        })
        .collect()
}

/// One streamed request to the stand-in over a plain socket; the events it sent.
fn standin_stream(usage: UsageMode, path: &str, body: &Value) -> Vec<String> {
    let server = standin::spawn(Config { model: "tiny".into(), usage, ..Config::default() }).unwrap();
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    let body = body.to_string();
    write!(s, "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let (head, used) = parse_response_head(&raw).unwrap().unwrap();
    assert_eq!(head.status, 200);
    let mut out = Vec::new();
    BodyDecoder::new(head.framing).decode(&raw[used..], &mut |b| out.extend_from_slice(b)).unwrap();
    data_lines(&String::from_utf8(out).unwrap())
}

#[test]
fn standin_streams_have_the_shapes_real_vllm_streams_have() {
    let chat = serde_json::json!({"model": "tiny", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 4, "stream": true});
    let cmpl = serde_json::json!({"model": "tiny", "prompt": "ping", "max_tokens": 3, "stream": true});
    for (mode, final_only) in [(UsageMode::Continuous, false), (UsageMode::Final, true)] {
        for (path, body, name) in [
            ("/v1/chat/completions", &chat, "sparkctl-vllm-0.32-cpu-chat-stream-continuous-usage.txt"),
            ("/v1/completions", &cmpl, "sparkctl-vllm-0.32-cpu-completion-stream-continuous-usage.txt"),
        ] {
            let real = recorded(name, final_only);
            let ours = standin_stream(mode, path, body);
            assert_eq!(ours.len(), real.len(), "{mode:?} {path}: as many events\nours: {ours:#?}\nreal: {real:#?}");
            assert_eq!(shapes(&ours), shapes(&real), "{mode:?} {path}");
        }
    }
}

#[test]
fn standin_takes_image_parts_and_refuses_a_data_url_that_is_not_its_image() {
    let server = standin::spawn(Config::default()).unwrap();
    let status = |url: &str| {
        let body = serde_json::json!({"model": "standin", "max_tokens": 2, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": url}}]}]})
        .to_string();
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        write!(s, "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        (parse_response_head(raw.as_bytes()).unwrap().unwrap().0.status, raw)
    };
    let png = servebench::image::synthetic(4, 4).data_url;
    assert_eq!(status(&png).0, 200);
    assert_eq!(status("https://example.invalid/cat.png").0, 200, "remote URLs are taken unfetched");
    let jpeg_named_png = png.replace("image/png", "image/jpeg");
    for bad in [jpeg_named_png.as_str(), "data:image/png;base64,!!!", "data:text/plain;base64,aGk=", "file:///etc/passwd"] {
        let (code, raw) = status(bad);
        assert_eq!(code, 400, "{bad}: {raw}");
        assert!(raw.contains("image_url"), "{raw}");
    }
}
