//! The rendezvous wire format: one JSON frame per line, `{"b": BODY, "m": MAC}`, where BODY is
//! the message as a JSON string and MAC = HMAC-SHA256(token, direction | head nonce | worker
//! nonce | sequence | BODY). The head opens with an unauthenticated challenge (its nonce); every
//! later frame is bound to both nonces and numbered, so frames can be neither forged without the
//! token nor replayed into another session or out of order.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

/// What must be equal on every node: same image, same serve command, same model, same
/// entrypoint, same backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The image digest.
    pub image: String,
    /// The serve command.
    pub serve: Vec<String>,
    /// The model.
    pub model: String,
    /// The entrypoint version.
    pub entrypoint: String,
    /// The backend (Ray or native).
    pub backend: String,
}

impl Fingerprint {
    /// The first field that differs, with both values: (field, ours, theirs).
    pub(crate) fn mismatch(&self, other: &Fingerprint) -> Option<(&'static str, String, String)> {
        let fields: [(&str, String, String); 5] = [
            ("image digest", self.image.clone(), other.image.clone()),
            ("serve command", self.serve.join(" "), other.serve.join(" ")),
            ("model", self.model.clone(), other.model.clone()),
            ("entrypoint version", self.entrypoint.clone(), other.entrypoint.clone()),
            ("backend", self.backend.clone(), other.backend.clone()),
        ];
        fields.into_iter().find(|(_, a, b)| a != b)
    }
}

/// One message of the rendezvous protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// The head's first frame to a worker: the head's nonce.
    Challenge {
        /// The head's nonce.
        nonce: String,
    },
    /// A worker's answer to the challenge: who it is and what it runs.
    Hello {
        /// The worker's node name.
        node: String,
        /// The worker's nonce.
        nonce: String,
        /// The worker's address on the rails.
        ip: String,
        /// What the worker runs.
        fingerprint: Fingerprint,
    },
    /// The worker is admitted: how many nodes have joined out of how many.
    Welcome {
        /// Nodes joined so far.
        joined: usize,
        /// Nodes expected.
        expected: usize,
    },
    /// The worker is not admitted.
    Refused {
        /// Why.
        reason: String,
    },
    /// Everyone joined: go. `ranks` orders the nodes (head 0) for the native backend.
    Release {
        /// Each node's rank.
        ranks: BTreeMap<String, u32>,
        /// The head's address.
        head_ip: String,
    },
    /// The sender is alive.
    Heartbeat,
    /// The sender is stopping (why), so the receiver stops too. `requested`: the stop was asked
    /// for (a signal: `systemctl stop`, `sparkctl down`, a group restart by `sparkctl up`) or
    /// passed on from one that was, so no node counts it against its restart budget. Absent in
    /// frames of older entrypoints: a failure.
    Shutdown {
        /// Why.
        reason: String,
        /// Whether the stop was asked for.
        #[serde(default)]
        requested: bool,
    },
}

#[derive(Serialize, Deserialize)]
struct Frame {
    b: String,
    m: String,
}

/// Which side wrote a frame; part of the MAC so a frame cannot be reflected back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Written by a worker.
    ToHead,
    /// Written by the head.
    ToWorker,
}

/// The keyed, numbered state of one direction of one session.
#[derive(Debug, Clone)]
pub struct Keys {
    token: Vec<u8>,
    pub(crate) head_nonce: String,
    pub(crate) worker_nonce: String,
}

impl Keys {
    /// The keys of the session between the head's and the worker's nonces, under the cluster token.
    pub fn new(token: &str, head_nonce: &str, worker_nonce: &str) -> Keys {
        Keys { token: token.as_bytes().to_vec(), head_nonce: head_nonce.to_owned(), worker_nonce: worker_nonce.to_owned() }
    }

    /// The MAC state over one message: direction, both nonces and the sequence number are bound
    /// in, so a frame cannot be replayed, reordered or reflected.
    fn hmac(&self, dir: Dir, seq: u64, body: &str) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.token).expect("HMAC takes any key length");
        let d = match dir {
            Dir::ToHead => "to-head",
            Dir::ToWorker => "to-worker",
        };
        m.update(format!("spark-rendezvous-v1|{d}|{}|{}|{seq}|", self.head_nonce, self.worker_nonce).as_bytes());
        m.update(body.as_bytes());
        m
    }

    pub(crate) fn mac(&self, dir: Dir, seq: u64, body: &str) -> String {
        hex::encode(self.hmac(dir, seq, body).finalize().into_bytes())
    }

    /// Constant-time comparison (`verify_slice`).
    pub(crate) fn verify(&self, dir: Dir, seq: u64, body: &str, mac: &str) -> bool {
        let Ok(tag) = hex::decode(mac) else { return false };
        self.hmac(dir, seq, body).verify_slice(&tag).is_ok()
    }
}

/// Writes one frame; `keys = None` for the opening challenge.
pub fn write(w: &mut impl Write, msg: &Msg, keys: Option<(&Keys, Dir, u64)>) -> std::io::Result<()> {
    let b = serde_json::to_string(msg).map_err(std::io::Error::other)?;
    let m = keys.map(|(k, d, s)| k.mac(d, s, &b)).unwrap_or_default();
    let mut line = serde_json::to_string(&Frame { b, m }).map_err(std::io::Error::other)?;
    line.push('\n');
    w.write_all(line.as_bytes())?;
    w.flush()
}

/// A frame as read: the message, its body and MAC (for verification by the caller, who may need
/// the message's own nonce to build the keys).
pub struct Received {
    pub(crate) msg: Msg,
    pub(crate) body: String,
    pub(crate) mac: String,
}

/// Reads one frame. EOF is `UnexpectedEof`; garbage is `InvalidData`.
pub fn read(r: &mut impl BufRead) -> std::io::Result<Received> {
    let mut line = String::new();
    // Frames are small; a peer that sends an endless line is not a rendezvous peer.
    let n = std::io::Read::take(&mut *r, 64 * 1024).read_line(&mut line)?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let frame: Frame = serde_json::from_str(line.trim_end()).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let msg: Msg = serde_json::from_str(&frame.b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(Received { msg, body: frame.b, mac: frame.m })
}

impl Received {
    /// Whether the frame's MAC is right for this direction and sequence number.
    pub fn verified(&self, keys: &Keys, dir: Dir, seq: u64) -> bool {
        keys.verify(dir, seq, &self.body, &self.mac)
    }
}

/// A secret for another purpose derived from the cluster token (HMAC-SHA256 keyed by the token
/// over a purpose label), hex: every node computes the same value and none is ever sent, and
/// the derived value does not reveal the cluster token.
pub(crate) fn derived_secret(token: &str, purpose: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
    m.update(format!("spark-derived-v1|{purpose}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// 128 random bits from the OS RNG, hex. Fails closed: without randomness there is no
/// handshake (a guessable nonce would let recorded frames be replayed).
pub(crate) fn nonce() -> std::io::Result<String> {
    nonce_from(|b| getrandom::getrandom(b).map_err(|e| std::io::Error::other(format!("the OS random number generator failed: {e}"))))
}

fn nonce_from(fill: impl FnOnce(&mut [u8]) -> std::io::Result<()>) -> std::io::Result<String> {
    let mut b = [0u8; 16];
    fill(&mut b)?;
    Ok(hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> Fingerprint {
        Fingerprint {
            image: "sha256:aa".into(),
            serve: vec!["vllm".into(), "serve".into(), "m".into()],
            model: "m".into(),
            entrypoint: "0.1.0".into(),
            backend: "ray".into(),
        }
    }

    #[test]
    fn frames_round_trip_and_tampering_is_detected() {
        let keys = Keys::new("secret", "hn", "wn");
        let mut buf = Vec::new();
        write(&mut buf, &Msg::Heartbeat, Some((&keys, Dir::ToHead, 7))).unwrap();
        let rec = read(&mut std::io::Cursor::new(buf.clone())).unwrap();
        assert_eq!(rec.msg, Msg::Heartbeat);
        assert!(rec.verified(&keys, Dir::ToHead, 7));
        assert!(!rec.verified(&keys, Dir::ToHead, 8), "replayed out of order");
        assert!(!rec.verified(&keys, Dir::ToWorker, 7), "reflected");
        assert!(!rec.verified(&Keys::new("other", "hn", "wn"), Dir::ToHead, 7), "wrong token");
        assert!(!rec.verified(&Keys::new("secret", "hn2", "wn"), Dir::ToHead, 7), "other session");
        let body = serde_json::to_string(&Msg::Shutdown { reason: "x".into(), requested: false }).unwrap();
        let forged = format!("{}\n", serde_json::json!({ "b": body, "m": rec.mac }));
        let f = read(&mut std::io::Cursor::new(forged)).unwrap();
        assert!(!f.verified(&keys, Dir::ToHead, 7), "a body swapped under a valid MAC");
    }

    #[test]
    fn mismatch_names_the_field_and_both_values() {
        let mut other = fp();
        other.serve.push("--enforce-eager".into());
        assert_eq!(fp().mismatch(&other), Some(("serve command", "vllm serve m".into(), "vllm serve m --enforce-eager".into())));
        assert_eq!(fp().mismatch(&fp()), None);
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce().unwrap(), nonce().unwrap());
        assert_eq!(nonce().unwrap().len(), 32);
    }

    #[test]
    fn nonce_fails_closed_when_the_rng_fails() {
        let e = nonce_from(|_| Err(std::io::Error::other("no entropy"))).unwrap_err();
        assert_eq!(e.to_string(), "no entropy");
    }
}
