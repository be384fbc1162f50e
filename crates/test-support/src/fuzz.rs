//! A plain mutation fuzzer for the sans-IO parsers, run by each crate's integration tests for a
//! bounded time (cargo-fuzz needs a nightly toolchain; this runs on stable, offline, in CI).
//!
//! Inputs start from real seeds (fixtures, examples) and get 1-4 random edits: bit flips,
//! interesting bytes, deletions, duplications, dictionary tokens, splices with another seed,
//! truncation, and numbers swapped for overflow points. A target must neither panic nor take
//! long on any input. `SPARKCTL_FUZZ_SECONDS` sets the time per target (default 2),
//! `SPARKCTL_FUZZ_SEED` replays a run (the seed is printed when a target fails).
//!
//! Also the deterministic noise the fixtures pad images with ([`noise`], [`XorShift`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Numbers at the edges parsers overflow on.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "255",
    "256",
    "65535",
    "65536",
    "2147483648",
    "4294967296",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "ffffffffffffffff",
];

const BYTES: &[u8] = b"\0\xff\n\r\t :;,=\"'[]{}()/\\@#.-_0123456789";

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], dict: &[&str]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let len = v.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = BYTES[rng.below(BYTES.len())];
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                v.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let chunk = v[a..b].to_vec();
                let at = rng.below(len + 1);
                for _ in 0..=rng.below(3) {
                    v.splice(at..at, chunk.iter().copied());
                }
            }
            4 if !dict.is_empty() => {
                let at = rng.below(len + 1);
                let tok = dict[rng.below(dict.len())].as_bytes();
                v.splice(at..at, tok.iter().copied());
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let a = rng.below(len + 1);
                let b = rng.below(other.len() + 1);
                v.truncate(a);
                v.extend_from_slice(&other[b..]);
            }
            6 if len > 0 => v.truncate(rng.below(len)),
            7 => {
                // A run of digits becomes an overflow point.
                let starts: Vec<usize> = (0..len).filter(|&i| v[i].is_ascii_digit() && (i == 0 || !v[i - 1].is_ascii_digit())).collect();
                let num = NUMBERS[rng.below(NUMBERS.len())].as_bytes();
                if starts.is_empty() {
                    let at = rng.below(len + 1);
                    v.splice(at..at, num.iter().copied());
                } else {
                    let a = starts[rng.below(starts.len())];
                    let b = (a..len).find(|&i| !v[i].is_ascii_digit()).unwrap_or(len);
                    v.splice(a..b, num.iter().copied());
                }
            }
            _ => {
                let at = rng.below(len + 1);
                v.insert(at, rng.next() as u8);
            }
        }
    }
    v
}

fn budget() -> Duration {
    let secs = std::env::var("SPARKCTL_FUZZ_SECONDS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(secs.max(0.0))
}

/// Runs `target` on the seeds, then on mutations of them until the time budget is spent.
/// Fails on a panic or on an input that takes more than 5 s, printing the input and the seed.
/// Returns how many inputs ran (each target asserts it ran some).
pub fn run(name: &str, seeds: &[Vec<u8>], dict: &[&str], target: impl Fn(&[u8])) -> u64 {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    let seed = std::env::var("SPARKCTL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1);
    let mut rng = Rng(seed);
    let deadline = Instant::now() + budget();
    let mut n = 0u64;
    let check = |input: &[u8]| {
        let start = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| target(input)));
        let took = start.elapsed();
        let shown = String::from_utf8_lossy(&input[..input.len().min(2000)]).into_owned();
        assert!(outcome.is_ok(), "fuzz target `{name}` panicked (SPARKCTL_FUZZ_SEED={seed}) on input {shown:?}");
        assert!(took < Duration::from_secs(5), "fuzz target `{name}` took {took:?} (SPARKCTL_FUZZ_SEED={seed}) on input {shown:?}");
    };
    for s in seeds {
        check(s);
        n += 1;
    }
    while Instant::now() < deadline {
        let input = mutate(&mut rng, seeds, dict);
        check(&input);
        n += 1;
    }
    eprintln!("fuzz `{name}`: {n} inputs (seed {seed})");
    n
}

/// Every file under `dir` (recursively), as seeds.
pub fn seeds_from(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("reading seeds in {}: {e}", d.display())).flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push(b);
            }
        }
    }
    out.sort();
    out
}

/// xorshift64: deterministic, fast, not random enough for anything but test bytes.
pub struct XorShift(u64);

impl XorShift {
    /// Starts from `seed` (made odd: zero would stay zero).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }
}

impl Iterator for XorShift {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        let x = &mut self.0;
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        Some(*x)
    }
}

/// `len` incompressible bytes, the same for the same `seed`, so padding layers cost real I/O.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut v: Vec<u8> = XorShift::new(seed).take(len.div_ceil(8)).flat_map(u64::to_le_bytes).collect();
    v.truncate(len);
    v
}
