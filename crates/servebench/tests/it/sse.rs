use crate::fixture_body;
use servebench::schedule::Rng;
use servebench::sse::{parse_data, Chunk, Event, Framer, Usage};

fn events(bytes: &[u8], step: usize) -> Vec<String> {
    let mut f = Framer::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        f.feed(piece);
        while let Some(e) = f.next_event() {
            out.push(e.0);
        }
    }
    out.extend(f.finish().map(|e| e.0));
    out
}

fn chunks(name: &str) -> Vec<Chunk> {
    events(fixture_body(name).as_bytes(), 4096)
        .iter()
        .map(|d| match parse_data(d) {
            Ok(Event::Chunk(c)) => c,
            other => panic!("{name}: {other:?}"),
        })
        .collect()
}

#[test]
fn role_only_first_chunk_is_no_output_and_no_done_needed() {
    let c = chunks("vllm-chat-stream-v0.5-no-usage-cmpl-id.txt");
    assert_eq!(c.len(), 6);
    assert!(!c[0].has_output(), "role-only chunk: {:?}", c[0]);
    assert!(c[1..].iter().all(|c| c.content && !c.reasoning && c.usage.is_none() && c.token_ids.is_none()));
}

#[test]
fn continuous_usage_and_token_ids() {
    let c = chunks("vllm-chat-stream-continuous-usage-stats-token-ids.txt");
    let completion: Vec<u64> = c.iter().map(|c| c.usage.unwrap().completion_tokens).collect();
    assert_eq!(completion, [20, 21, 22, 23]);
    assert!(c.iter().all(|c| c.token_ids == Some(1) && c.usage.unwrap().prompt_tokens == 16 && c.content));
}

#[test]
fn final_usage_only_chunk_finish_chunk_and_done() {
    // Not SSE-framed: each line is one event's data (the `data: ` prefix was stripped at capture).
    let body = fixture_body("openai-chat-stream-json-lines-final-usage-chunk-empty-choices.txt");
    let parsed: Vec<Event> = body.lines().map(|l| parse_data(l).unwrap()).collect();
    let Event::Chunk(finish) = &parsed[2] else { panic!() };
    assert_eq!(finish.finish_reason.as_deref(), Some("stop"));
    assert!(!finish.has_output());
    let Event::Chunk(usage) = &parsed[3] else { panic!() };
    assert_eq!(usage.usage, Some(Usage { prompt_tokens: 14, completion_tokens: 3 }));
    assert!(!usage.has_output() && usage.finish_reason.is_none());
    assert_eq!(parsed[4], Event::Done);
}

#[test]
fn any_split_of_the_bytes_gives_the_same_events() {
    for name in ["vllm-chat-stream-v0.5-no-usage-cmpl-id.txt", "vllm-chat-stream-continuous-usage-stats-token-ids.txt"] {
        let body = fixture_body(name);
        let whole = events(body.as_bytes(), usize::MAX);
        for step in [1, 2, 3, 7, 64] {
            assert_eq!(events(body.as_bytes(), step), whole, "{name} fed {step} bytes at a time");
        }
        let crlf = body.replace('\n', "\r\n");
        assert_eq!(events(crlf.as_bytes(), 1), whole, "{name} with CRLF line ends, byte by byte");
        let cr = body.replace('\n', "\r");
        assert_eq!(events(cr.as_bytes(), 5), whole, "{name} with CR line ends");
    }
}

#[test]
fn comments_multiline_data_and_unterminated_last_event() {
    let got = events(b": keep-alive\n\nevent: x\ndata: a\ndata: b\nid: 3\n\ndata: [DONE]", 3);
    assert_eq!(got, ["a\nb", "[DONE]"]);
}

#[test]
fn reasoning_fields_and_in_stream_errors() {
    let r = r#"{"choices":[{"index":0,"delta":{"reasoning":"hmm"},"finish_reason":null}],"extra":{"nested":[1,2]}}"#;
    let Ok(Event::Chunk(c)) = parse_data(r) else { panic!() };
    assert!(c.reasoning && !c.content);
    let r = r#"{"choices":[{"delta":{"reasoning_content":"x","content":""}}]}"#;
    let Ok(Event::Chunk(c)) = parse_data(r) else { panic!() };
    assert!(c.reasoning && !c.content);
    let e = r#"{"error":{"object":"error","message":"EngineCore encountered an issue","code":500}}"#;
    let Ok(Event::Chunk(c)) = parse_data(e) else { panic!() };
    assert_eq!(c.error.as_deref(), Some("EngineCore encountered an issue"));
}

#[test]
fn garbage_is_an_error_never_a_panic() {
    for bad in ["", "{", "nope", "[1,2]", r#"{"choices":"x"}"#, r#"{"choices":[{"delta":{"content":5}}]}"#, "\u{0}\u{ffff}"] {
        assert!(parse_data(bad).is_err(), "{bad:?}");
    }
    // Mutated fixture bytes: every outcome is fine except a panic.
    let body = fixture_body("vllm-chat-stream-continuous-usage-stats-token-ids.txt").into_bytes();
    let mut rng = Rng::new(7);
    for _ in 0..300 {
        let mut b = body.clone();
        for _ in 0..(rng.next_u64() % 8 + 1) {
            let i = (rng.next_u64() % b.len() as u64) as usize;
            b[i] = rng.next_u64() as u8;
        }
        b.truncate((rng.next_u64() % b.len() as u64) as usize);
        for e in events(&b, (rng.next_u64() % 50 + 1) as usize) {
            let _ = parse_data(&e);
        }
    }
}

const REAL_CHAT: &str = "sparkctl-vllm-0.32-cpu-chat-stream-continuous-usage.txt";
const REAL_COMPLETION: &str = "sparkctl-vllm-0.32-cpu-completion-stream-continuous-usage.txt";

/// Every event of a recording, `[DONE]` included.
fn all_events(name: &str) -> Vec<Event> {
    events(fixture_body(name).as_bytes(), 4096).iter().map(|d| parse_data(d).unwrap_or_else(|e| panic!("{name}: {e}"))).collect()
}

fn chunk(e: &Event) -> &Chunk {
    match e {
        Event::Chunk(c) => c,
        Event::Done => panic!("[DONE] where a chunk was expected"),
    }
}

#[test]
fn real_vllm_chat_stream_role_chunk_continuous_usage_final_usage_chunk_and_done() {
    let ev = all_events(REAL_CHAT);
    assert_eq!(ev.len(), 7, "role, 4 tokens, usage-only, [DONE]");
    assert_eq!(ev[6], Event::Done);
    let c: Vec<&Chunk> = ev[..6].iter().map(chunk).collect();
    // The role chunk (`content: ""`) is no output, but it already carries usage (0 generated).
    assert!(!c[0].has_output() && c[0].has_choice, "{:?}", c[0]);
    assert_eq!(c[0].usage, Some(Usage { prompt_tokens: 8, completion_tokens: 0 }));
    // Running usage on every token chunk, one more each; two of the four tokens have empty text
    // (byte fallback: the bytes come with the next one), so only the usage shows them.
    let running: Vec<u64> = c[1..5].iter().map(|c| c.usage.unwrap().completion_tokens).collect();
    assert_eq!(running, [1, 2, 3, 4]);
    assert_eq!(c[1..5].iter().map(|c| c.content).collect::<Vec<_>>(), [true, false, true, false]);
    assert!(c[1..5].iter().all(|c| c.has_choice && c.token_ids.is_none() && !c.reasoning && c.usage.unwrap().prompt_tokens == 8));
    assert_eq!(c[4].finish_reason.as_deref(), Some("length"));
    assert!(c[..4].iter().all(|c| c.finish_reason.is_none()));
    // The last chunk: `choices: []`, the totals, vLLM's `system_fingerprint` (ignored).
    assert!(!c[5].has_choice && !c[5].has_output() && c[5].finish_reason.is_none());
    assert_eq!(c[5].usage, Some(Usage { prompt_tokens: 8, completion_tokens: 4 }));
}

#[test]
fn real_vllm_completion_stream_continuous_usage_final_usage_chunk_and_done() {
    let ev = all_events(REAL_COMPLETION);
    assert_eq!(ev.len(), 5, "3 tokens, usage-only, [DONE]");
    assert_eq!(ev[4], Event::Done);
    let c: Vec<&Chunk> = ev[..4].iter().map(chunk).collect();
    // No role chunk on completions: the first chunk is the first token.
    assert_eq!(c[..3].iter().map(|c| (c.content, c.usage.unwrap().completion_tokens)).collect::<Vec<_>>(), [(true, 1), (false, 2), (false, 3)]);
    assert_eq!(c[2].finish_reason.as_deref(), Some("length"));
    assert!(!c[3].has_choice && !c[3].has_output());
    assert_eq!(c[3].usage, Some(Usage { prompt_tokens: 1, completion_tokens: 3 }));
}

#[test]
fn an_event_of_one_megabyte_passes_the_framer_whole() {
    // 1 MB of text in one chunk (a long answer flushed at once, or a long `logprobs` list): no
    // line limit, any split of the bytes.
    let text = "x".repeat(1 << 20);
    let data = format!(r#"{{"choices":[{{"index":0,"delta":{{"content":"{text}"}},"finish_reason":null}}]}}"#);
    let stream = format!("data: {data}\n\ndata: [DONE]\n\n");
    for step in [1 << 20, 65_536, 4096, 1000] {
        let got = events(stream.as_bytes(), step);
        assert_eq!(got.len(), 2, "fed {step} bytes at a time");
        assert_eq!(got[0].len(), data.len(), "fed {step} bytes at a time");
        let Ok(Event::Chunk(c)) = parse_data(&got[0]) else { panic!("not a chunk") };
        assert!(c.content);
        assert_eq!(got[1], "[DONE]");
    }
}
