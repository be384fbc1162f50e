//! The load generator against the stand-in told known delays: what it measures must be what the
//! server was told, within 2% or 1 ms (whichever is larger).

use servebench::client::{run, Live, Load, Outcome, RunSpec, Target};
use servebench::metrics::{summarize, Slo, Summary};
use servebench::schedule::Arrival;
use servebench::standin::{self, Config, RoleChunk, UsageMode};
use servebench::workload::{Api, Workload};
use std::sync::Arc;
use std::time::Duration;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

#[track_caller]
fn close(what: &str, measured: f64, expected: f64) {
    let tol = (expected.abs() * 0.02).max(1.0);
    assert!((measured - expected).abs() <= tol, "{what}: measured {measured:.3}, expected {expected:.3} ± {tol:.3}");
}

thread_local! {
    /// The running stand-in's own mean first-token lateness (ms): on a loaded machine its timers
    /// fire late, and that is the server's delay, not the client's measuring error.
    static SERVER_LATE: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

/// A TTFT-like value: within 2% (or 1 ms) of what the server was told, allowing on the high side
/// for how late the server says it was itself (it is never early).
#[track_caller]
fn close_ttft(what: &str, measured: f64, told: f64) {
    let late = SERVER_LATE.with(|l| l.get());
    assert!(late < told * 0.1, "{what}: the stand-in itself was {late:.2} ms late on average: machine overloaded");
    let tol = (told * 0.02).max(1.0);
    assert!(
        measured >= told - tol && measured <= told + late + tol,
        "{what}: measured {measured:.3}, told {told:.3} (−{tol:.3}, +{tol:.3} + the server's own {late:.3} ms)"
    );
}

/// A throughput: what the told delays give, down to what they give with the server's own
/// lateness added to every request.
#[track_caller]
fn close_rate(what: &str, measured: f64, work: f64, told_secs: f64, requests_in_series: f64) {
    let late = SERVER_LATE.with(|l| l.get()) / 1000.0;
    let high = work / told_secs * 1.02;
    let low = work / (told_secs + requests_in_series * late) * 0.98;
    assert!(measured >= low && measured <= high, "{what}: measured {measured:.3}, expected {low:.3}..{high:.3}");
}

fn workload(api: Api, max_tokens: u64) -> Workload {
    Workload {
        api,
        model: "standin".into(),
        prompt_tokens: 32,
        prompt_words: None,
        prompt_tokens_exact: false,
        vocabulary: None,
        shared_prefix: 0,
        max_tokens,
        ignore_eos: true,
        seed: 1,
        dataset: None,
        image: None,
    }
}

fn spec(load: Load, requests: u64) -> RunSpec {
    RunSpec { load, duration: None, requests: Some(requests), warmup: Duration::ZERO, ramp_up: Duration::ZERO, stall_timeout: Duration::from_secs(10), seed: 1 }
}

/// Timing tests run one at a time: on a 2-core machine, two of them at once would measure each
/// other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn go(config: Config, w: &Workload, s: &RunSpec) -> (Outcome, Summary) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = standin::spawn(config).unwrap();
    let target = Target::from_url(&server.url()).unwrap();
    let outcome = run(&target, w, s, Arc::new(Live::default())).unwrap();
    SERVER_LATE.with(|l| l.set(server.lateness.first_token_ms()));
    let summary = summarize(&outcome.records, &outcome.itls, outcome.window_s, &Slo::default());
    assert_eq!(summary.errors, Default::default(), "{summary:?}");
    (outcome, summary)
}

#[test]
fn closed_loop_ttft_itl_tpot_e2e_and_throughput() {
    let config = Config { ttft: ms(300), itl: ms(20), ..Config::default() };
    let (tokens, conc, n) = (10u64, 4usize, 12u64);
    let (_, s) = go(config, &workload(Api::Chat, tokens), &spec(Load::Closed { concurrency: conc }, n));
    assert_eq!(s.ok, n);
    close_ttft("ttft mean ms", s.ttft_ms.mean, 300.0);
    close_ttft("ttft p50 ms", s.ttft_ms.p50, 300.0);
    close("itl mean ms", s.itl_ms.mean, 20.0);
    close("tpot mean ms", s.tpot_ms.mean, 20.0);
    let e2e = 300.0 + 9.0 * 20.0;
    close_ttft("e2e mean ms", s.e2e_ms.mean, e2e);
    // The stand-in sends headers at once, the first token after its TTFT.
    assert!(s.ttft_byte_ms.p99 < 20.0, "{:?}", s.ttft_byte_ms);
    assert!(s.queue_ms.max < 1.0, "closed loop has no queue: {:?}", s.queue_ms);
    // Every token counted by the server's continuous usage.
    assert_eq!((s.output_tokens_usage, s.output_tokens_counted), (n * tokens, 0));
    let rounds = n as f64 / conc as f64;
    close_rate("output tok/s", s.output_tok_per_s, (n * tokens) as f64, rounds * e2e / 1000.0, rounds);
    close_rate("req/s", s.req_per_s, n as f64, rounds * e2e / 1000.0, rounds);
}

#[test]
fn reasoning_tokens_move_ttft_content_but_not_ttft() {
    for role in [RoleChunk::WithFirstToken, RoleChunk::Early] {
        let config = Config { ttft: ms(400), itl: ms(20), reasoning_tokens: 6, role_chunk: role, ..Config::default() };
        let (_, s) = go(config, &workload(Api::Chat, 4), &spec(Load::Closed { concurrency: 2 }, 8));
        close_ttft("ttft mean ms", s.ttft_ms.mean, 400.0);
        close_ttft("ttft content mean ms", s.ttft_content_ms.mean, 400.0 + 6.0 * 20.0);
        // Reasoning tokens are output tokens (vLLM counts them in completion_tokens).
        assert_eq!(s.output_tokens_usage, 8 * (4 + 6));
        close("tpot mean ms", s.tpot_ms.mean, 20.0);
    }
}

#[test]
fn completions_without_usage_count_chunks() {
    let config = Config { ttft: ms(200), itl: ms(20), usage: UsageMode::Never, ..Config::default() };
    let (_, s) = go(config, &workload(Api::Completions, 12), &spec(Load::Closed { concurrency: 3 }, 6));
    assert_eq!((s.output_tokens_usage, s.output_tokens_counted), (0, 6 * 12));
    close_ttft("ttft mean ms", s.ttft_ms.mean, 200.0);
    close("itl mean ms", s.itl_ms.mean, 20.0);
}

#[test]
fn open_loop_constant_rate_fast_server() {
    let config = Config { ttft: ms(200), itl: ms(20), ..Config::default() };
    let (rate, n) = (20.0, 30u64);
    let load = Load::Open { rate, arrival: Arrival::Constant, max_concurrency: None };
    let (o, s) = go(config, &workload(Api::Chat, 10), &spec(load, n));
    for (i, r) in o.records.iter().enumerate() {
        close("intended send s×1000", r.intended_s * 1000.0, i as f64 * 50.0);
    }
    // Only the client's own lateness (tokio's timers tick in whole milliseconds; a loaded machine
    // wakes it late): small against the 50 ms between requests, and not growing.
    assert!(s.queue_ms.mean < 20.0, "a fast server leaves nothing queued: {:?}", s.queue_ms);
    let tail: f64 = o.records[20..].iter().map(|r| r.queue()).sum::<f64>() / 10.0 * 1000.0;
    assert!(tail < 20.0, "the queue does not grow: last ten queued {tail:.1} ms on average");
    // Latency counts from the intended send: what the client was late (its queue) is in it.
    close_ttft("ttft − queue mean ms", s.ttft_ms.mean - s.queue_ms.mean, 200.0);
    let e2e = 200.0 + 9.0 * 20.0;
    close_ttft("e2e − queue mean ms", s.e2e_ms.mean - s.queue_ms.mean, e2e);
    let window = (n - 1) as f64 / rate + e2e / 1000.0;
    close_rate("req/s", s.req_per_s, n as f64, window, 1.0);
    close_rate("output tok/s", s.output_tok_per_s, (n * 10) as f64, window, 1.0);
}

#[test]
fn open_loop_slow_server_queue_delay_counts_in_latency() {
    // Capacity: 2 slots × (1 / 0.3 s) ≈ 6.7 requests/s; offered: 20/s. Request i is meant to
    // leave at i × 50 ms and gets a slot when request i − 2 ends: the queue grows by ~100 ms
    // a request.
    let config = Config { ttft: ms(300), itl: ms(0), output_tokens: Some(1), ..Config::default() };
    let load = Load::Open { rate: 20.0, arrival: Arrival::Constant, max_concurrency: Some(2) };
    let (o, s) = go(config, &workload(Api::Chat, 1), &spec(load, 12));
    let service = 300.0 + SERVER_LATE.with(|l| l.get());
    let mut slot_free = [0.0_f64; 2];
    for (i, r) in o.records.iter().enumerate() {
        let intended = i as f64 * 50.0;
        let start = intended.max(slot_free[i % 2]);
        slot_free[i % 2] = start + service;
        let q = r.queue() * 1000.0;
        assert!((q - (start - intended)).abs() < 40.0, "request {i}: queued {q:.1} ms, expected {:.1}", start - intended);
    }
    // TTFT counts from the intended send: the queue plus the server's 300 ms.
    close_ttft("mean ttft − queue ms", s.ttft_ms.mean - s.queue_ms.mean, 300.0);
    close_ttft("mean e2e − queue ms", s.e2e_ms.mean - s.queue_ms.mean, 300.0);
    assert!(s.queue_ms.max > 1000.0 && s.ttft_ms.max > 1300.0, "{:?} {:?}", s.queue_ms, s.ttft_ms);
}

#[test]
fn poisson_and_gamma_schedules_keep_the_mean_rate() {
    use servebench::schedule::Schedule;
    for arrival in [Arrival::Poisson, Arrival::Gamma { burstiness: 0.5 }, Arrival::Gamma { burstiness: 4.0 }] {
        let mut s = Schedule::new(50.0, arrival, 42);
        let gaps: Vec<f64> = (0..20000).map(|_| s.next_gap()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        let cv2 = var / mean / mean;
        assert!((mean - 0.02).abs() < 0.02 * 0.03, "{arrival:?}: mean gap {mean}");
        // Squared coefficient of variation of Gamma(k): 1/k (Poisson: 1).
        let k = match arrival {
            Arrival::Gamma { burstiness } => burstiness,
            _ => 1.0,
        };
        assert!((cv2 - 1.0 / k).abs() < 0.1 / k, "{arrival:?}: cv² {cv2}");
    }
}

#[test]
fn errors_and_stalls_are_counted_by_kind() {
    let config = Config { ttft: ms(5), itl: ms(1), error_every: 4, stall_every: 5, stall: ms(1500), ..Config::default() };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = standin::spawn(config).unwrap();
    let target = Target::from_url(&server.url()).unwrap();
    let mut sp = spec(Load::Closed { concurrency: 1 }, 10);
    sp.stall_timeout = ms(500);
    let o = run(&target, &workload(Api::Chat, 8), &sp, Arc::new(Live::default())).unwrap();
    let s = summarize(&o.records, &o.itls, o.window_s, &Slo::default());
    // Requests 4 and 8 (server count) fail with 500; 5 and 10 stall mid-stream.
    assert_eq!(s.errors.get("http_500"), Some(&2), "{:?}", s.errors);
    assert_eq!(s.errors.get("stall"), Some(&2), "{:?}", s.errors);
    assert_eq!(s.ok, 6);
}

#[test]
fn goodput_against_slos() {
    let config = Config { ttft: ms(40), itl: ms(2), reasoning_tokens: 0, ..Config::default() };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = standin::spawn(config).unwrap();
    let target = Target::from_url(&server.url()).unwrap();
    let o = run(&target, &workload(Api::Chat, 5), &spec(Load::Closed { concurrency: 2 }, 6), Arc::new(Live::default())).unwrap();
    let pass = servebench::metrics::parse_slo("ttft=200ms,tpot=50ms").unwrap();
    let fail = servebench::metrics::parse_slo("ttft=10ms").unwrap();
    assert_eq!(summarize(&o.records, &o.itls, o.window_s, &pass).goodput.unwrap().requests, 6);
    assert_eq!(summarize(&o.records, &o.itls, o.window_s, &fail).goodput.unwrap().requests, 0);
}
