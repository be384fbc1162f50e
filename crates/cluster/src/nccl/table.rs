//! nccl-tests output (`all_gather_perf`, `all_reduce_perf`, …, and the project's own benchmark,
//! which prints the same table): the header (versions, ranks and their devices), one row per size
//! with out-of-place and in-place time, algbw, busbw and `#wrong`, the footer (`Avg bus
//! bandwidth`), and the failure lines. Anything else (xauth, MPI banners, loader warnings, shell
//! prompts, `NCCL WARN` lines) is skipped. The columns are read from the table's own header, so
//! the old format (no `redop`, an `error` column with `N/A`) parses too.

use super::check::{Finding, Verdict};
use crate::preflight::Status;
use serde::Serialize;

/// NVIDIA's bar for two DGX Sparks: all_gather busbw at least this many GB/s.
pub const SPARK_PAIR_MIN_BUSBW: f64 = 21.875;

/// One device line of `# Using devices`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RankDevice {
    pub(crate) rank: u32,
    /// Cut from some outputs (`P on      spark`).
    pub(crate) pid: Option<u32>,
    pub(crate) host: String,
    pub(crate) device: Option<u32>,
    pub(crate) name: String,
}

/// Time and bandwidths of one placement (out-of-place or in-place).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Measure {
    pub(crate) time_us: f64,
    /// GB/s.
    pub(crate) algbw: f64,
    /// GB/s.
    pub(crate) busbw: f64,
    /// Wrong elements; `None` where the column says `N/A` (validation off).
    pub(crate) wrong: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
/// One row of an nccl-tests table: one message size.
pub struct Row {
    /// Bytes.
    pub(crate) size: u64,
    pub(crate) count: u64,
    pub(crate) dtype: String,
    pub(crate) redop: Option<String>,
    pub(crate) root: Option<i64>,
    pub(crate) out_of_place: Measure,
    pub(crate) in_place: Measure,
}

/// One test run (a log may hold several, one after the other).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Run {
    /// `all_gather_perf`, from `# Collective test starting:` (or the command line).
    pub(crate) collective: Option<String>,
    /// `2.18.5` from `# nccl-tests version 2.18.5 …`.
    pub(crate) tests_version: Option<String>,
    /// From a `NCCL version 2.29.3+cuda13.1` line.
    pub(crate) nccl_version: Option<String>,
    pub(crate) ranks: Vec<RankDevice>,
    /// The table's rows.
    pub rows: Vec<Row>,
    /// `# Avg bus bandwidth    : 22.9611`.
    pub(crate) avg_busbw: Option<f64>,
    /// `# Out of bounds values : 0 OK`.
    pub(crate) out_of_bounds: Option<String>,
    /// `Test CUDA failure …`, ` .. host pid N: Test failure …`.
    pub(crate) failures: Vec<String>,
}

impl Run {
    fn is_empty(&self) -> bool {
        // A collective named by a command line alone does not make a run.
        self.tests_version.is_none() && self.rows.is_empty() && self.ranks.is_empty() && self.failures.is_empty()
    }

    /// The row of the largest size: where bandwidth peaks.
    pub(crate) fn largest(&self) -> Option<&Row> {
        self.rows.iter().max_by_key(|r| r.size)
    }

    /// `all_gather_perf` → `all_gather`.
    pub(crate) fn collective_name(&self) -> &str {
        self.collective.as_deref().map_or("nccl-tests", |c| c.strip_suffix("_perf").unwrap_or(c))
    }
}

/// The columns of the modern format, used until a header line is seen (fragments).
const DEFAULT_COLUMNS: &str = "size count type redop root time algbw busbw #wrong time algbw busbw #wrong";

/// Parses every run in `text`.
pub fn parse(text: &str) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut cur = Run::default();
    let mut columns: Vec<String> = DEFAULT_COLUMNS.split(' ').map(str::to_owned).collect();
    for raw in text.lines() {
        let line = raw.trim();
        // Behind a launcher's prefix (`[node bench] `, `name  | `, `[1,0]<stdout>:`), the
        // comment lines start at their `#`.
        let line = match line.find('#') {
            Some(i) if i > 0 && matches!(line[..i].trim_end().chars().last(), Some(']' | '|' | ':' | ')')) => &line[i..],
            _ => line,
        };
        if let Some(h) = line.strip_prefix('#') {
            let h = h.trim();
            if let Some(v) = h.strip_prefix("nccl-tests version ") {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
                cur.tests_version = v.split_whitespace().next().map(str::to_owned);
            } else if let Some(c) = h.strip_prefix("Collective test starting:") {
                if !cur.rows.is_empty() || !cur.failures.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
                cur.collective = Some(c.trim().to_owned());
            } else if h.starts_with("nThread ") && !cur.rows.is_empty() {
                runs.push(std::mem::take(&mut cur));
            } else if let Some(r) = h.strip_prefix("Rank ") {
                if let Some(d) = rank_device(r) {
                    cur.ranks.push(d);
                }
            } else if let Some(v) = h.strip_prefix("Avg bus bandwidth") {
                cur.avg_busbw = v.trim_start().strip_prefix(':').and_then(|v| v.trim().parse().ok());
            } else if let Some(v) = h.strip_prefix("Out of bounds values") {
                cur.out_of_bounds = v.trim_start().strip_prefix(':').map(|v| v.trim().to_owned());
            } else if h.starts_with("size ") && h.contains("busbw") {
                columns = h.split_whitespace().map(str::to_owned).collect();
            }
            continue;
        }
        if line.contains("Test failure") || line.contains("Test CUDA failure") || line.contains("Test NCCL failure") {
            cur.failures.push(line.to_owned());
            continue;
        }
        if let Some(v) = line.strip_prefix("NCCL version ") {
            cur.nccl_version = v.split_whitespace().next().map(str::to_owned);
            continue;
        }
        if cur.collective.is_none() {
            if let Some(name) = line.split_whitespace().find_map(|t| t.rsplit('/').next().filter(|n| n.ends_with("_perf"))) {
                cur.collective = Some(name.to_owned());
            }
        }
        if let Some(r) = row(line, &columns) {
            cur.rows.push(r);
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// `0 Group  0 Pid  37755 on host device  0 [000f:01:00] NVIDIA GB10` (after `Rank `).
fn rank_device(r: &str) -> Option<RankDevice> {
    let t: Vec<&str> = r.split_whitespace().collect();
    let rank = t.first()?.parse().ok()?;
    let at = |w: &str| t.iter().position(|x| *x == w);
    let on = at("on")?;
    let host = t.get(on + 1)?.to_string();
    let pid = at("Pid").and_then(|i| t.get(i + 1)?.parse().ok());
    let dev = at("device");
    let device = dev.and_then(|i| t.get(i + 1)?.parse().ok());
    // After the bus id `[…]`: the GPU's name.
    let name_at = dev.map_or(on + 2, |i| i + 3);
    Some(RankDevice { rank, pid, host, device, name: t.get(name_at..).unwrap_or_default().join(" ") })
}

/// A data row, read by the header's columns; `None` for anything else.
fn row(line: &str, columns: &[String]) -> Option<Row> {
    let all: Vec<&str> = line.split_whitespace().collect();
    // Extra words in front are a launcher's prefix when the row proper starts with a number.
    let t = match all.len().checked_sub(columns.len())? {
        0 => &all[..],
        extra if all[extra].parse::<u64>().is_ok() && all[extra - 1].parse::<u64>().is_err() => &all[extra..],
        _ => return None,
    };
    let col = |name: &str, nth: usize| columns.iter().enumerate().filter(|(_, c)| c.as_str() == name).nth(nth).map(|(i, _)| t[i]);
    let f = |name: &str, nth: usize| col(name, nth)?.parse::<f64>().ok().filter(|v| v.is_finite());
    let measure = |nth: usize| -> Option<Measure> {
        let wrong = match col("#wrong", nth).or_else(|| col("error", nth))? {
            "N/A" => None,
            w => Some(w.parse().ok()?),
        };
        Some(Measure { time_us: f("time", nth)?, algbw: f("algbw", nth)?, busbw: f("busbw", nth)?, wrong })
    };
    Some(Row {
        size: col("size", 0)?.parse().ok()?,
        count: col("count", 0)?.parse().ok()?,
        dtype: col("type", 0)?.to_owned(),
        redop: col("redop", 0).map(str::to_owned),
        root: match col("root", 0) {
            Some(r) => Some(r.parse().ok()?),
            None => None,
        },
        out_of_place: measure(0)?,
        in_place: measure(1)?,
    })
}

/// The verdict on each run: no failure line, no wrong element, and the out-of-place busbw at
/// the largest size at least `min_busbw` GB/s.
pub fn verdict(runs: &[Run], min_busbw: f64) -> Verdict {
    let mut v = Verdict::default();
    if runs.is_empty() {
        v.findings.push(Finding { status: Status::Fail, subject: "all".into(), detail: "no nccl-tests output found".into() });
    }
    for (i, r) in runs.iter().enumerate() {
        let subject = format!("{} (run {})", r.collective_name(), i + 1);
        let mut push = |status, detail: String| v.findings.push(Finding { status, subject: subject.clone(), detail });
        if let Some(f) = r.failures.first() {
            push(Status::Fail, format!("{} failure line(s); first: {f}", r.failures.len()));
        }
        let wrong: u64 = r.rows.iter().map(|x| x.out_of_place.wrong.unwrap_or(0) + x.in_place.wrong.unwrap_or(0)).sum();
        if wrong > 0 {
            push(Status::Fail, format!("{wrong} wrong element(s): results are corrupt"));
        }
        let Some(big) = r.largest() else {
            push(Status::Fail, "no result rows (the test stopped before its first size)".into());
            continue;
        };
        let avg = r.avg_busbw.map(|a| format!("; avg busbw {a} GB/s")).unwrap_or_default();
        let detail = format!("busbw {:.2} GB/s at {} (out-of-place; in-place {:.2}){avg}", big.out_of_place.busbw, human_bytes(big.size), big.in_place.busbw);
        if big.out_of_place.busbw >= min_busbw {
            push(Status::Pass, format!("{detail} ≥ {min_busbw} GB/s"));
        } else {
            push(Status::Fail, format!("{detail} < {min_busbw} GB/s"));
        }
    }
    v
}

/// `17179869184` → `16 GiB`; sizes that are not a whole unit stay in bytes.
pub(crate) fn human_bytes(b: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if b >= 1 << shift && b.is_multiple_of(1 << shift) {
            return format!("{} {unit}", b >> shift);
        }
    }
    format!("{b} B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn runs(name: &str) -> Vec<Run> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/nccl_tests").join(name);
        parse(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())))
    }

    fn m(time_us: f64, algbw: f64, busbw: f64, wrong: Option<u64>) -> Measure {
        Measure { time_us, algbw, busbw, wrong }
    }

    #[test]
    fn every_fixture_file_is_covered() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/nccl_tests");
        let src = include_str!("table.rs");
        for e in std::fs::read_dir(&dir).unwrap() {
            let f = e.unwrap().file_name().to_string_lossy().into_owned();
            if f.ends_with(".txt") {
                assert!(src.contains(&format!("\"{f}\"")), "fixture {f} has no test in nccl/table.rs");
            }
        }
    }

    #[test]
    fn dell_gb10_pair_all_gather_16g_passes_nvidias_bar() {
        let r = runs("all_gather_perf-dell-gb10-2node-16G-nccl-tests-2.18.5.txt");
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!((r.collective.as_deref(), r.tests_version.as_deref()), (Some("all_gather_perf"), Some("2.18.5")));
        assert_eq!(
            r.ranks,
            [
                RankDevice { rank: 0, pid: Some(37755), host: "promaxgb10-4c75".into(), device: Some(0), name: "NVIDIA GB10".into() },
                RankDevice { rank: 1, pid: Some(30808), host: "promaxgb10-4c99".into(), device: Some(0), name: "NVIDIA GB10".into() },
            ]
        );
        assert_eq!(
            r.rows,
            [Row {
                size: 17179869184,
                count: 2147483648,
                dtype: "float".into(),
                redop: Some("none".into()),
                root: Some(-1),
                out_of_place: m(374425.0, 45.88, 22.94, Some(0)),
                in_place: m(373792.0, 45.96, 22.98, Some(0)),
            }]
        );
        assert_eq!((r.avg_busbw, r.out_of_bounds.as_deref()), (Some(22.9611), Some("0 OK")));
        let v = verdict(&runs("all_gather_perf-dell-gb10-2node-16G-nccl-tests-2.18.5.txt"), SPARK_PAIR_MIN_BUSBW);
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.findings[0].detail, "busbw 22.94 GB/s at 16 GiB (out-of-place; in-place 22.98); avg busbw 22.9611 GB/s ≥ 21.875 GB/s");
    }

    /// What `mpirun` over `ssh -X` prints around the Dell pair's table: ssh's xauth warning
    /// (once per node) and an Open MPI help banner with its aggregation lines.
    const XAUTH: &str = "Warning: No xauth data; using fake authentication data for X11 forwarding.";
    const MPI_BANNER: &str = "--------------------------------------------------------------------------
WARNING: There was an error initializing an OpenFabrics device.

  Local host:   promaxgb10-4c75
  Local device: rocep1s0f1
--------------------------------------------------------------------------
[promaxgb10-4c75:37750] 1 more process has sent help message help-mpi-btl-openib.txt / error in device init
[promaxgb10-4c75:37750] Set MCA parameter \"orte_base_help_aggregate\" to 0 to see all help / error messages";

    #[test]
    fn dell_table_with_xauth_and_mpi_banner_noise_parses_like_the_clean_file() {
        let name = "all_gather_perf-dell-gb10-2node-16G-nccl-tests-2.18.5.txt";
        let clean_text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/nccl_tests").join(name)).unwrap();
        let clean = parse(&clean_text);
        assert_eq!(clean[0].rows.len(), 1, "the clean file has its row");
        let lines: Vec<&str> = clean_text.lines().collect();
        // The noise between every two lines of the file, one position at a time…
        for i in 0..=lines.len() {
            let mut noisy: Vec<&str> = lines[..i].to_vec();
            noisy.extend([XAUTH, MPI_BANNER, XAUTH]);
            noisy.extend(&lines[i..]);
            assert_eq!(parse(&noisy.join("\n")), clean, "noise after line {i}");
        }
        // …and everywhere at once.
        let everywhere: String = lines.iter().map(|l| format!("{XAUTH}\n{MPI_BANNER}\n{l}\n")).collect();
        let noisy = parse(&everywhere);
        assert_eq!(noisy, clean);
        assert_eq!(verdict(&noisy, SPARK_PAIR_MIN_BUSBW), verdict(&clean, SPARK_PAIR_MIN_BUSBW));
    }

    /// Every row of every fixture, against the file's own data lines read a second way: a line
    /// without `#` whose words are size, count (integers), a type (a name), then anything, and
    /// last the eight measures (`time algbw busbw #wrong` out-of-place, then in-place; `N/A`
    /// where validation was off). Numbers are compared exactly, row for row, in file order.
    #[test]
    fn every_fixture_row_is_its_data_line_exactly() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/nccl_tests");
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "txt")).collect();
        files.sort();
        let mut total = 0;
        for p in files {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let want: Vec<Vec<&str>> = text
                .lines()
                .filter(|l| !l.contains('#'))
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .filter(|t| {
                    t.len() >= 11
                        && t[0].bytes().all(|b| b.is_ascii_digit())
                        && t[1].bytes().all(|b| b.is_ascii_digit())
                        && t[2].bytes().all(|b| b.is_ascii_alphanumeric())
                        && t[2].bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                        && t[t.len() - 8..].iter().all(|w| *w == "N/A" || w.parse::<f64>().is_ok())
                })
                .collect();
            let got: Vec<Row> = parse(&text).into_iter().flat_map(|r| r.rows).collect();
            assert_eq!(got.len(), want.len(), "{name}: rows parsed vs data lines");
            for (r, t) in got.iter().zip(&want) {
                let n = t.len();
                let f = |i: usize| t[i].parse::<f64>().unwrap();
                let w = |i: usize| (t[i] != "N/A").then(|| t[i].parse::<u64>().unwrap());
                let line = t.join(" ");
                assert_eq!((r.size, r.count, r.dtype.as_str()), (t[0].parse().unwrap(), t[1].parse().unwrap(), t[2]), "{name}: {line}");
                assert_eq!(r.out_of_place, m(f(n - 8), f(n - 7), f(n - 6), w(n - 5)), "{name}: {line}");
                assert_eq!(r.in_place, m(f(n - 4), f(n - 3), f(n - 2), w(n - 1)), "{name}: {line}");
                total += 1;
            }
        }
        assert!(total >= 90, "only {total} rows in all fixtures: the second reading lost some");
    }

    #[test]
    fn gb10_before_mtu_9000_fails_the_bar() {
        let r = runs("all_gather_perf-gb10-2node-before-mtu9000-FRAGMENT.txt");
        assert_eq!(r[0].ranks[0].host, "spark");
        assert_eq!(r[0].ranks[0].pid, None);
        assert_eq!(r[0].ranks[1].host, "spark-3995");
        assert_eq!((r[0].rows[0].out_of_place, r[0].rows[0].in_place), (m(453650.0, 37.87, 18.94, Some(0)), m(410049.0, 41.90, 20.95, Some(0))));
        assert_eq!(r[0].avg_busbw, None);
        let v = verdict(&r, SPARK_PAIR_MIN_BUSBW);
        assert!(!v.ok());
        assert!(v.findings[0].detail.starts_with("busbw 18.94 GB/s at 16 GiB") && v.findings[0].detail.ends_with("< 21.875 GB/s"), "{v:?}");
        assert!(verdict(&r, 18.0).ok(), "the threshold is a parameter");
    }

    #[test]
    fn gb10_all_reduce_small_sizes() {
        let r = runs("all_reduce_perf-gb10-2node-nccl-tests-2.20-FRAGMENT.txt");
        assert_eq!(r[0].tests_version.as_deref(), Some("2.20.0"));
        let sizes: Vec<u64> = r[0].rows.iter().map(|x| x.size).collect();
        assert_eq!(sizes, [8192, 16384, 32768, 65536]);
        assert_eq!(r[0].rows[3].out_of_place, m(67.93, 0.96, 0.96, Some(0)));
        assert_eq!(r[0].rows[0].in_place, m(30.33, 0.27, 0.27, Some(0)));
        assert_eq!(r[0].collective_name(), "all_reduce");
        assert!(!verdict(&r, SPARK_PAIR_MIN_BUSBW).ok());
    }

    #[test]
    fn oci_16_ranks_with_slurm_noise_and_nccl_version_inside_the_devices() {
        let r = runs("all_reduce_perf-oci-2node-16rank-a100-roce.txt");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].nccl_version.as_deref(), Some("2.29.3+cuda13.1"));
        assert_eq!(r[0].ranks.iter().map(|d| d.rank).collect::<Vec<_>>(), [0, 7, 8, 15]);
        assert_eq!(r[0].rows.len(), 3);
        assert_eq!(r[0].rows[2].out_of_place, m(42721.7, 100.53, 188.50, Some(0)));
        assert_eq!(r[0].avg_busbw, Some(185.594));
    }

    #[test]
    fn gh200_indented_irregular_rows_and_loader_noise() {
        let r = runs("all_reduce_perf-gh200-aarch64-2node-with-net-plugin.txt");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].ranks.len(), 8);
        assert_eq!(r[0].ranks[7].name, "NVIDIA GH200 120GB");
        assert_eq!(r[0].rows.len(), 25);
        assert_eq!(r[0].rows[0].size, 8);
        assert_eq!(r[0].rows[24].out_of_place, m(1916.4, 70.04, 122.57, Some(0)));
        assert_eq!(r[0].rows[24].in_place, m(1907.8, 70.35, 123.11, Some(0)));
        assert_eq!(r[0].avg_busbw, Some(19.7866));
    }

    #[test]
    fn h200_failure_and_truncated_runs() {
        let fail = runs("all_reduce_perf-FAIL-cuda-illegal-memory-access-h200.txt");
        assert_eq!(fail[0].rows.len(), 0);
        assert_eq!(fail[0].failures.len(), 7);
        assert_eq!(fail[0].failures[0], "nccltest08192: Test CUDA failure common.cu:502 'an illegal memory access was encountered'");
        let v = verdict(&fail, SPARK_PAIR_MIN_BUSBW);
        assert_eq!(v.findings.iter().filter(|f| f.status == Status::Fail).count(), 2, "{v:?}");

        let cut = runs("all_reduce_perf-h200-4gpu-truncated-no-footer.txt");
        assert_eq!(cut[0].rows.iter().map(|x| x.size).collect::<Vec<_>>(), [1073741824, 1074790400]);
        assert_eq!(cut[0].rows[1].out_of_place, m(4562.52, 235.57, 353.35, Some(0)));
        assert_eq!(cut[0].avg_busbw, None);
        assert_eq!(cut[0].ranks.len(), 4);
    }

    #[test]
    fn old_format_without_redop_and_error_na() {
        let r = runs("broadcast_perf-socket-2node-old-format-error-column-NA.txt");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].collective.as_deref(), Some("broadcast_perf"), "from the command line");
        assert_eq!(r[0].nccl_version.as_deref(), Some("2.9.6+cuda11.2"));
        assert_eq!(r[0].ranks[1], RankDevice { rank: 1, pid: Some(9210), host: "v100-gpu-5".into(), device: Some(0), name: "Tesla V100-PCIE-16GB".into() });
        let row = &r[0].rows[0];
        assert_eq!((row.size, row.redop.as_deref(), row.root), (8, None, Some(0)));
        assert_eq!(row.out_of_place, m(45.82, 0.00, 0.00, None));
        assert_eq!(row.in_place, m(38.17, 0.00, 0.00, None));
    }

    /// Our benchmark's own tables (`fixtures/nccl_bench/h200-2026-12-01`).
    #[test]
    fn own_h200_benchmark_tables() {
        let r = runs("own-h200-nccl-bench-ws1-nccl-2.28.9.txt");
        assert_eq!(r.iter().map(|r| (r.collective_name(), r.rows.len())).collect::<Vec<_>>(), [("all_gather", 11), ("all_reduce", 11)]);
        let big = r[0].largest().unwrap();
        assert_eq!((big.size, big.count), (1073741824, 268435456));
        assert_eq!((big.out_of_place, big.in_place), (m(517.9, 2073.16, 0.00, Some(0)), m(12.0, 89453.51, 0.00, Some(0))));
        assert_eq!((r[0].avg_busbw, r[1].avg_busbw), (Some(0.0), Some(0.0)));
        let v = verdict(&r, SPARK_PAIR_MIN_BUSBW);
        assert_eq!(v.findings.iter().filter(|f| f.status == Status::Fail).count(), 2, "one rank moves nothing between ranks: {v:?}");
        assert_eq!(runs("own-h200-nccl-bench-ws1-nccl-2.28.9-spark-env-ib-disabled.txt")[1].rows.len(), 7);

        let g = runs("own-h200-nccl-bench-ws4-gloo.txt");
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].rows[7].out_of_place, m(3683.7, 2.28, 1.71, Some(0)));
        assert_eq!(g[0].rows[10].out_of_place, m(74854.2, 0.90, 0.67, Some(0)));
        assert_eq!(g[1].rows[8].out_of_place, m(8352.1, 2.01, 3.01, Some(0)));
        assert_eq!((g[0].avg_busbw, g[1].avg_busbw), (Some(0.8076), Some(1.6718)));
        assert!(verdict(&g, 0.5).ok());
    }

    /// The same table read from spark-entrypoint's log, behind its `[node bench] ` prefix.
    #[test]
    fn own_table_behind_the_entrypoint_prefix() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/nccl_bench/h200-2026-12-01/entrypoint-nccl-bench-ws1.log");
        let r = parse(&std::fs::read_to_string(p).unwrap());
        assert_eq!(r.iter().map(|r| (r.collective_name(), r.rows.len())).collect::<Vec<_>>(), [("all_gather", 9), ("all_reduce", 9)]);
        assert_eq!(r[0].rows[8].out_of_place, m(130.6, 2054.95, 0.00, Some(0)));
        assert_eq!(r[1].rows[0].out_of_place, m(256.0, 4.10, 0.00, Some(0)));
        assert_eq!(r[1].avg_busbw, Some(0.0));
    }

    /// busbw = algbw × (n-1)/n for all_gather and × 2(n-1)/n for all_reduce, in nccl-tests' own
    /// output and in ours, to the printed precision.
    #[test]
    fn busbw_follows_nccl_tests_formula() {
        let cases = [
            ("all_gather_perf-dell-gb10-2node-16G-nccl-tests-2.18.5.txt", 2.0),
            ("all_reduce_perf-oci-2node-16rank-a100-roce.txt", 16.0),
            ("own-h200-nccl-bench-ws4-gloo.txt", 4.0),
            ("own-h200-nccl-bench-ws1-nccl-2.28.9.txt", 1.0),
        ];
        for (file, n) in cases {
            for r in runs(file) {
                let factor = if r.collective_name() == "all_gather" { (n - 1.0) / n } else { 2.0 * (n - 1.0) / n };
                for row in &r.rows {
                    let got = row.out_of_place.busbw;
                    let want = row.out_of_place.algbw * factor;
                    assert!((got - want).abs() <= 0.005 * factor + 0.006, "{file} {}: busbw {got} vs algbw×{factor} = {want}", row.size);
                    let algbw = row.size as f64 / row.out_of_place.time_us / 1e3;
                    assert!(
                        (row.out_of_place.algbw - algbw).abs() <= 0.006 + 0.01 * algbw,
                        "{file} {}: algbw {} vs size/time {algbw}",
                        row.size,
                        row.out_of_place.algbw
                    );
                }
            }
        }
    }

    #[test]
    fn garbage_never_panics_and_finds_nothing() {
        for s in ["", "#", "# Rank", "# Avg bus bandwidth", " 1 2 3", "#  Rank x on", "\u{0}\u{ffff}"] {
            let r = parse(s);
            assert!(r.iter().all(|r| r.rows.is_empty()), "{s:?}");
        }
        assert!(!verdict(&[], 1.0).ok());
        assert_eq!(human_bytes(17179869184), "16 GiB");
        assert_eq!(human_bytes(1074790400), "1025 MiB");
        assert_eq!(human_bytes(1000), "1000 B");
    }
}
