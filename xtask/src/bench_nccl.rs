//! `cargo xtask bench nccl-log [MB] [PROCESSES]`: `sparkctl nccl check` on a generated
//! `NCCL_DEBUG=INFO` log of ~50 MB from 30,000 processes (the defaults), lines of every process
//! interleaved, behind the launcher prefixes the analyser reads (none, Ray with ANSI colours,
//! `srun -l`, docker timestamps, compose, mpirun), with warnings and non-NCCL noise. The log is
//! read from a file and from stdin; time and peak RSS come from `/usr/bin/time`. Prints a
//! Markdown table (copied into BENCHMARKS.md) also written to target/bench/nccl-log/results.md.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::Instant;
use xshell::{cmd, Shell};

pub fn run(sh: &Shell, args: &[String]) -> Result<()> {
    let mb: f64 = args.first().map(|a| a.parse()).transpose().context("the first argument is the log size in MB")?.unwrap_or(50.0);
    let procs: u32 = args.get(1).map(|a| a.parse()).transpose().context("the second argument is the process count")?.unwrap_or(30_000);
    cmd!(sh, "cargo build --release --locked -p cli").run()?;
    let sparkctl = sh.current_dir().join("target/release/sparkctl");
    let dir = sh.current_dir().join("target/bench/nccl-log");
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("generated.log");
    let (bytes, lines) = generate(&log, (mb * 1e6) as u64, procs)?;
    eprintln!("== {} MB, {lines} lines, {procs} processes: {}", bytes / 1_000_000, log.display());
    let json = dir.join("check.json");
    let mut rows = Vec::new();
    for (how, shell_line) in [
        ("file", format!("{} nccl check {} --json > {}", sparkctl.display(), log.display(), json.display())),
        ("stdin", format!("{} nccl check --json < {} > {}", sparkctl.display(), log.display(), json.display())),
    ] {
        let (secs, cpu, rss_mb) = timed(sh, &dir, &shell_line)?;
        let found = std::fs::read_to_string(&json)?;
        let v: serde_json::Value = serde_json::from_str(&found)?;
        let n = v["analysis"]["processes"].as_array().map_or(0, Vec::len);
        if n != procs as usize {
            bail!("the analyser found {n} processes, the log has {procs}");
        }
        let warned = v["analysis"]["processes"].as_array().map_or(0, |p| p.iter().filter(|p| p["warnings"]["count"].as_u64() > Some(0)).count());
        rows.push(format!(
            "| {how} | {:.1} MB | {lines} | {procs} | {n} ({warned} with warnings) | {secs:.2} s | {cpu:.2} s | {:.0} MB/s | {rss_mb:.0} MB |",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / cpu.max(1e-3)
        ));
    }
    let table = format!(
        "| input | log | lines | processes | processes found | wall | CPU (user+sys) | MB per CPU second | peak RSS |\n|---|---|---|---|---|---|---|---|---|\n{}\n",
        rows.join("\n")
    );
    println!("{table}");
    std::fs::write(dir.join("results.md"), &table)?;
    Ok(())
}

/// Runs `line` under `/usr/bin/time`: (wall seconds, CPU seconds (user + system), peak RSS in
/// MB). On a shared machine the wall time includes waiting for a core; the CPU time does not.
fn timed(sh: &Shell, dir: &Path, line: &str) -> Result<(f64, f64, f64)> {
    let out = dir.join("time.txt");
    let start = Instant::now();
    // Exit 1 is a failed verdict: a result, not an error.
    let o = cmd!(sh, "/usr/bin/time -f %U_%S_%M -o {out} bash -c {line}").quiet().ignore_status().output()?;
    if !matches!(o.status.code(), Some(0 | 1)) {
        bail!("`{line}` failed ({}): {}", o.status, String::from_utf8_lossy(&o.stderr));
    }
    let secs = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&out)?;
    let f: Vec<f64> =
        text.trim().lines().last().unwrap_or("").split('_').map(str::parse).collect::<Result<_, _>>().with_context(|| format!("reading `{text}`"))?;
    match f[..] {
        [user, sys, kb] => Ok((secs, user + sys, kb / 1024.0)),
        _ => bail!("unexpected /usr/bin/time output `{text}`"),
    }
}

/// A deterministic generator (xorshift): the same arguments give the same log.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Writes about `target` bytes: rounds over every process, one line of each per round, each
/// process's lines in the order NCCL prints them. Returns (bytes, lines).
fn generate(path: &Path, target: u64, procs: u32) -> Result<(u64, u64)> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut bytes, mut lines, mut round) = (0u64, 0u64, 0u32);
    let host = |p: u32| format!("spark-{:04x}", p / 8);
    while bytes < target {
        for p in 0..procs {
            let pid = 1000 + p;
            let head = format!("{}:{pid}:{}", host(p), pid + round % 3);
            let msg = match round {
                0 => "NCCL version 2.28.9+cuda13.0".to_owned(),
                1 => "NCCL_IB_GID_INDEX set by environment to 3.".to_owned(),
                2 => "NCCL_SOCKET_IFNAME set by environment to enp1s0f1np1,enP2p1s0f1np1".to_owned(),
                3 => "NET/IB : Using [0]rocep1s0f1:1/RoCE [1]roceP2p1s0f1:1/RoCE [RO]; OOB enp1s0f1np1:10.0.0.1<0>".to_owned(),
                4 => "Using network IB".to_owned(),
                5 => format!(
                    "ncclCommInitRankConfig comm 0x5581{p:08x} rank {p} nranks {procs} cudaDev 0 nvmlDev 0 busId f01000 commId 0x93eb505ec5adffe9 - Init START"
                ),
                6 => "NET/IB : GPU Direct RDMA Disabled for HCA 0 'rocep1s0f1'".to_owned(),
                r => format!("Channel {:02}/0 : {p}[0] -> {}[0] [send] via NET/IB/{}", r % 32, (p + 1) % procs, r % 2),
            };
            // Warnings after the init lines: the log is of a healthy IB run with some noise.
            let level = if round > 6 && rng.next().is_multiple_of(97) { "WARN" } else { "INFO" };
            let msg = if level == "WARN" {
                format!("NET/IB : Got completion from peer 10.0.0.2<54862> with status=12 opcode=0 len=0 vendor err 129 (Recv) round {round}")
            } else {
                msg
            };
            let bare = format!("{head} [0] NCCL {level} {msg}");
            let line = match p % 6 {
                0 => bare,
                1 => format!("\x1b[36m(RayWorkerWrapper pid={pid}, ip=10.0.0.{})\x1b[0m {bare}", p % 250),
                2 => format!("{}: {bare}", p % 64),
                3 => format!("2026-12-01T10:{:02}:{:02}.{:09}Z {bare}", round % 60, p % 60, rng.next() % 1_000_000_000),
                4 => format!("node-{}  | {bare}", p % 16),
                _ => format!("[1,{p}]<stderr>:{bare}"),
            };
            writeln!(w, "{line}")?;
            bytes += line.len() as u64 + 1;
            lines += 1;
            if rng.next().is_multiple_of(50) {
                let noise = "(EngineCore_DP0 pid=2301) INFO 12-01 10:00:00 [gpu_model_runner.py:2345] Model loading took 58.2 GiB and 212.4 seconds";
                writeln!(w, "{noise}")?;
                bytes += noise.len() as u64 + 1;
                lines += 1;
            }
        }
        round += 1;
    }
    w.flush()?;
    Ok((bytes, lines))
}
