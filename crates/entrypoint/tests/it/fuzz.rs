//! Bounded mutation fuzzing of what the entrypoint reads from peers and processes: HTTP
//! responses (PID 1 must never abort on an announced size), rendezvous frames, `ray status`,
//! `/proc/*/stat`, and its own settings. See `crates/test-support/src/fuzz.rs`.

use entrypoint::{http, pid1, proto, settings};
use std::collections::BTreeMap;
use test_support::fuzz::run;

#[test]
fn fuzz_http_responses() {
    let seeds: Vec<Vec<u8>> = [
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n2;x=y\r\n\":\r\n1\r\n1\r\n0\r\n\r\n",
        "HTTP/1.0 503 Service Unavailable\r\nServer: x\r\n\r\nloading",
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 48\r\n\r\n{\"object\":\"list\",\"data\":[{\"id\":\"m\",\"object\":\"model\"}]}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let n = run("http::read_response", &seeds, &["Content-Length: ", "Transfer-Encoding: chunked\r\n", "\r\n", "ffffffffffff\r\n", ";ext=1"], |b| {
        if let Ok(r) = http::read_response(b) {
            assert!(r.body.len() as u64 <= 4 * http::MAX_BODY, "a body past the cap was returned");
        }
    });
    assert!(n > 100);
}

#[test]
fn fuzz_rendezvous_frames() {
    let keys = proto::Keys::new("t", "aa", "bb");
    let fp = proto::Fingerprint {
        image: "sha256:aa".into(),
        serve: vec!["vllm".into(), "serve".into(), "m".into()],
        model: "m".into(),
        entrypoint: "0.1".into(),
        backend: "ray".into(),
    };
    let msgs = [
        proto::Msg::Challenge { nonce: "aa".into() },
        proto::Msg::Hello { node: "b".into(), nonce: "bb".into(), ip: "10.0.0.2".into(), fingerprint: fp },
        proto::Msg::Welcome { joined: 2, expected: 2 },
        proto::Msg::Release { ranks: BTreeMap::from([("a".into(), 0), ("b".into(), 1)]), head_ip: "10.0.0.1".into() },
        proto::Msg::Heartbeat,
        proto::Msg::Refused { reason: "no".into() },
    ];
    let seeds: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| {
            let mut v = Vec::new();
            proto::write(&mut v, m, Some((&keys, proto::Dir::ToHead, 1))).unwrap();
            v
        })
        .collect();
    let n = run("proto::read", &seeds, &["\\u0000", "\"b\":", "\"m\":", "{", "}", "\\\"", "1e999"], |b| {
        let mut r = std::io::BufReader::new(b);
        while let Ok(rec) = proto::read(&mut r) {
            let _ = rec.verified(&keys, proto::Dir::ToHead, 1);
        }
    });
    assert!(n > 100);
}

// `launch::parse_ray_status` is `cluster::tools::ray_status::parse`, fuzzed with the other tool
// parsers in crates/cluster/tests/it/fuzz.rs.
#[test]
fn fuzz_proc_stat() {
    let seeds = vec![b"1234 (python3 (x) y) S 1 1234 1234 0 -1".to_vec(), b"1 (spark-entrypoint) S 0 1 1 0 -1 4194560".to_vec()];
    let n = run("pid1::parse_stat_ppid", &seeds, &[")", "(", " ", "-"], |b| {
        let _ = pid1::parse_stat_ppid(&String::from_utf8_lossy(b));
    });
    assert!(n > 100);
}

#[test]
fn fuzz_settings() {
    let seeds: Vec<Vec<u8>> = [
        "SPARK_ROLE=head\nSPARK_NODE_NAME=a\nSPARK_NODES=a,b\nSPARK_RAILS=r0,r1\nSPARK_TOKEN=t\n--api-port 8000 --mtu 9000 -- vllm serve m --port 8000",
        "SPARK_ROLE=worker\nSPARK_RAILS=r0\nSPARK_TOKEN=t\nSPARK_HEAD_ADDR=10.0.0.1\nSPARK_BACKEND=native\nSPARK_SERVE=[\"vllm\",\"serve\",\"m\"]\n--grace 5 --heartbeat-timeout 1.5",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let n = run("settings::parse", &seeds, &["--rendezvous-port=", "--ray-port", "--serve", "--port=", "SPARK_MTU=", "--", "="], |b| {
        let text = String::from_utf8_lossy(b);
        let mut env = BTreeMap::new();
        let mut args = Vec::new();
        for line in text.lines() {
            match line.split_once('=').filter(|(k, _)| k.starts_with("SPARK_")) {
                Some((k, v)) => {
                    env.insert(k.to_owned(), v.to_owned());
                }
                None => args.extend(line.split_whitespace().map(str::to_owned)),
            }
        }
        // Token files are read from disk: not what this target is about (and /dev/zero would never end).
        env.remove("SPARK_TOKEN_FILE");
        args.retain(|a| !a.starts_with("--token-file"));
        let _ = settings::parse(&args, &|k| env.get(k).cloned());
    });
    assert!(n > 100);
}
