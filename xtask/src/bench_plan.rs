//! `cargo xtask bench plan [RUNS]`: `sparkctl plan` (release build) on the example cluster with
//! the 235B model's fixtures, RUNS times each (default 20): BF16 (does not fit: the largest
//! index), AWQ (fits) and a weights figure without a config. Each run is a fresh process, as a
//! user or a script runs it: wall time from spawn to exit (median), CPU from this process's
//! children's ticks (mean), peak RSS from one more run under `/usr/bin/time`; `/bin/true` run
//! the same way is the process-start floor. Every run's JSON must carry the fixture's verdict,
//! and the bench fails if a median reaches the 1 s bound. Results print as a Markdown table
//! (copied into BENCHMARKS.md) and land in target/bench/plan/.

use anyhow::{bail, Context, Result};
use std::process::Command;
use std::time::Instant;
use xshell::{cmd, Shell};

/// The bound the plan must stay well under.
const BOUND_S: f64 = 1.0;

pub fn run(sh: &Shell, args: &[String]) -> Result<()> {
    let runs: usize = args.first().map(|a| a.parse()).transpose().context("the first argument is the number of runs")?.unwrap_or(20);
    if runs == 0 {
        bail!("give at least one run");
    }
    cmd!(sh, "cargo build --release --locked -p cli").run()?;
    let repo = sh.current_dir();
    let sparkctl = repo.join("target/release/sparkctl");
    let dir = repo.join("target/bench/plan");
    std::fs::create_dir_all(&dir)?;
    let r = |p: &str| repo.join(p).display().to_string();
    let common = ["plan", "--cluster", &r("examples/cluster.toml"), "--recipe", &r("images/vllm-spark.toml"), "--json"].map(str::to_owned);
    let with = |extra: [String; 2]| -> Vec<String> { common.iter().cloned().chain(extra).collect() };
    let s = sparkctl.display().to_string();
    let cases: [(&str, String, Vec<String>, Option<&str>); 4] = [
        ("BF16 fixture (does not fit)", s.clone(), with(["--model-dir".into(), r("fixtures/plan/qwen3-vl-235b-a22b-bf16")]), Some("does_not_fit")),
        ("AWQ fixture (fits)", s.clone(), with(["--model-dir".into(), r("fixtures/plan/qwen3-vl-235b-a22b-awq")]), Some("fits")),
        ("`--weights-bytes` only", s.clone(), with(["--weights-bytes".into(), "125208090080".into()]), Some("fits")),
        ("`/bin/true` (process start)", "/bin/true".into(), Vec::new(), None),
    ];
    let out = dir.join("plan.json");
    let mut rows = Vec::new();
    let mut floor = f64::NAN;
    for (name, program, argv, verdict) in &cases {
        let mut walls = Vec::new();
        let ticks = children_cpu_ticks()?;
        for _ in 0..runs {
            let start = Instant::now();
            let status = Command::new(program).args(argv).stdout(std::fs::File::create(&out)?).status().with_context(|| format!("running {program}"))?;
            walls.push(start.elapsed().as_secs_f64());
            // Exit 1 is a "does not fit" verdict: a result, not an error.
            if !matches!(status.code(), Some(0 | 1)) {
                bail!("`{program} {}` failed: {status}", argv.join(" "));
            }
            // Each run must have answered, with the verdict the fixture gives.
            if let Some(want) = verdict {
                let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out)?).with_context(|| format!("`{name}` printed no JSON"))?;
                if v["memory"]["verdict"] != *want {
                    bail!("{name}: verdict {} where {want} was expected", v["memory"]["verdict"]);
                }
            }
        }
        // CPU in clock ticks (1/100 s), summed over the runs: the mean is good to 10 ms / runs.
        let cpu = (children_cpu_ticks()? - ticks) as f64 / 100.0 / runs as f64;
        let rss = peak_rss_mb(sh, program, argv)?;
        let wall = median(&mut walls);
        if verdict.is_none() {
            floor = wall;
        }
        rows.push((name, wall, cpu, rss));
    }
    let mut table = format!(
        "| `sparkctl plan …` ({runs} runs each) | median wall | mean CPU (user+sys) | ÷ the 1 s bound | ÷ process start | peak RSS |\n|---|---|---|---|---|---|\n"
    );
    for (name, wall, cpu, rss) in &rows {
        table += &format!("| {name} | {:.1} ms | {:.1} ms | {:.3} | {:.1}× | {rss:.0} MB |\n", wall * 1e3, cpu * 1e3, wall / BOUND_S, wall / floor);
    }
    println!("{table}");
    std::fs::write(dir.join("results.md"), &table)?;
    if let Some((name, wall, ..)) = rows.iter().find(|(_, wall, ..)| *wall >= BOUND_S) {
        bail!("{name}: {wall:.2} s is not under the {BOUND_S} s bound");
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// User + system CPU of this process's waited-for children so far, in clock ticks
/// (`/proc/self/stat` fields 16 and 17).
fn children_cpu_ticks() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the `(comm)`, which may contain spaces: state is field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("reading /proc/self/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> { f.get(n - 3).context("short /proc/self/stat")?.parse().context("a tick count") };
    Ok(field(16)? + field(17)?)
}

/// Peak RSS of one more run, from `/usr/bin/time -f %M`.
fn peak_rss_mb(sh: &Shell, program: &str, argv: &[String]) -> Result<f64> {
    let o = cmd!(sh, "/usr/bin/time -f %M {program} {argv...}").quiet().ignore_status().output()?;
    let err = String::from_utf8_lossy(&o.stderr);
    let kb: f64 = err.trim().lines().last().unwrap_or("").parse().with_context(|| format!("reading `{err}`"))?;
    Ok(kb / 1024.0)
}
