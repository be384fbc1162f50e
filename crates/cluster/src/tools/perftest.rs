//! perftest's `ib_write_bw` / `ib_write_lat` (client or server side): the header (device, QPs,
//! MTU, link type, GID index, rdma_cm), the result table (bandwidth or latency rows), warnings
//! printed between header and table, and the error lines of a failed run.

use super::leading_number;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) enum BwUnit {
    /// `--report_gbits`: `BW average[Gb/sec]`.
    GbitPerSec,
    /// The default: `BW average[MB/sec]`, perftest's MB being 2^20 bytes.
    MebibytePerSec,
}

impl BwUnit {
    /// A value of this unit in Gb/s (10^9 bits per second).
    pub(crate) fn to_gbps(self, v: f64) -> f64 {
        match self {
            BwUnit::GbitPerSec => v,
            BwUnit::MebibytePerSec => v * 1_048_576.0 * 8.0 / 1e9,
        }
    }
}

/// One bandwidth row: `65536  20000  111.72  111.71  0.213070`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct BwRow {
    pub(crate) bytes: u64,
    pub(crate) iterations: u64,
    pub(crate) peak: f64,
    pub(crate) average: f64,
    pub(crate) msg_rate_mpps: f64,
}

/// One latency row, in microseconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct LatRow {
    pub(crate) bytes: u64,
    pub(crate) iterations: u64,
    pub(crate) t_min: f64,
    pub(crate) t_max: f64,
    pub(crate) t_typical: f64,
    pub(crate) t_avg: Option<f64>,
    pub(crate) t_stdev: Option<f64>,
    pub(crate) p99: Option<f64>,
    pub(crate) p99_9: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
/// What a perftest tool (`ib_write_bw`, `ib_write_lat`) printed.
pub struct Perftest {
    /// `RDMA_Write BW Test`, `RDMA_Write Bidirectional BW Test`, `RDMA_Write Latency Test`.
    pub(crate) test: Option<String>,
    pub(crate) server: bool,
    pub(crate) device: Option<String>,
    pub(crate) qps: Option<u32>,
    pub(crate) transport_type: Option<String>,
    pub(crate) connection_type: Option<String>,
    /// `Mtu : 4096[B]` → 4096.
    pub(crate) mtu: Option<u32>,
    /// `IB` or `Ethernet` (RoCE); `--force-link IB` prints `IB` on RoCE too.
    pub(crate) link_type: Option<String>,
    pub(crate) gid_index: Option<u32>,
    pub(crate) rdma_cm: Option<bool>,
    pub(crate) data_exchange: Option<String>,
    pub(crate) unit: Option<BwUnit>,
    pub(crate) bw_rows: Vec<BwRow>,
    pub(crate) lat_rows: Vec<LatRow>,
    /// `BW peak won't be measured` (`--run_infinitely`, `-D`): peaks are not meaningful.
    pub(crate) peak_not_measured: bool,
    /// Lines saying the run failed (`Couldn't connect to …`, `Failed to modify QP …`).
    pub errors: Vec<String>,
    /// Other lines: warnings between header and table, unknown noise.
    pub(crate) warnings: Vec<String>,
    /// A header or table that stops before its closing separator and no error says why.
    pub(crate) truncated: bool,
}

impl Perftest {
    /// The average bandwidth of the largest message size, in Gb/s.
    pub fn bw_average_gbps(&self) -> Option<f64> {
        let row = self.bw_rows.iter().max_by_key(|r| r.bytes)?;
        Some(self.unit?.to_gbps(row.average))
    }

    /// The peak bandwidth of the largest message size, in Gb/s; `None` when not measured.
    pub fn bw_peak_gbps(&self) -> Option<f64> {
        if self.peak_not_measured {
            return None;
        }
        let row = self.bw_rows.iter().max_by_key(|r| r.bytes)?;
        Some(self.unit?.to_gbps(row.peak))
    }

    /// The typical latency of the smallest message size, in µs.
    pub fn lat_typical_us(&self) -> Option<f64> {
        self.lat_rows.iter().min_by_key(|r| r.bytes).map(|r| r.t_typical)
    }

    /// A run that printed results and no error.
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && (!self.bw_rows.is_empty() || !self.lat_rows.is_empty())
    }
}

const ERROR_MARKS: &[&str] = &["Couldn't", "Unable to", "Failed to", "not found", "error", "Error", "ERROR", "failed"];

#[derive(PartialEq)]
enum Table {
    None,
    Bw,
    Lat,
}

/// Reads a perftest tool's output.
pub fn parse(text: &str) -> Perftest {
    let mut p = Perftest::default();
    let mut table = Table::None;
    // Whether the result rows were closed by perftest's final separator.
    let mut closed = false;
    for raw in text.lines() {
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        if t.chars().all(|c| c == '-') {
            closed = !p.bw_rows.is_empty() || !p.lat_rows.is_empty();
            continue;
        }
        if t.starts_with('#') && !t.starts_with("#bytes") || t.starts_with('*') || t.starts_with('[') || t.contains("$ ") {
            if t.contains("Waiting for client") {
                p.server = true;
            }
            continue;
        }
        if t.contains("BW peak won't be measured") {
            p.peak_not_measured = true;
            continue;
        }
        if t.ends_with(" Test") && !t.contains(':') {
            p.test = Some(t.to_owned());
            continue;
        }
        if t.starts_with("#bytes") {
            table = if t.contains("t_min") || t.contains("t_typical") {
                Table::Lat
            } else {
                p.unit = if t.contains("Gb/sec") { Some(BwUnit::GbitPerSec) } else { Some(BwUnit::MebibytePerSec) };
                Table::Bw
            };
            continue;
        }
        if table != Table::None && t.as_bytes()[0].is_ascii_digit() {
            let nums: Vec<f64> = t.split_whitespace().map_while(|w| w.parse::<f64>().ok()).collect();
            let int = |i: usize| nums.get(i).filter(|v| v.is_finite() && **v >= 0.0 && v.fract() == 0.0).map(|v| *v as u64);
            match (&table, int(0), int(1)) {
                (Table::Bw, Some(bytes), Some(iterations)) if nums.len() >= 5 => {
                    p.bw_rows.push(BwRow { bytes, iterations, peak: nums[2], average: nums[3], msg_rate_mpps: nums[4] });
                    closed = false;
                    continue;
                }
                (Table::Lat, Some(bytes), Some(iterations)) if nums.len() >= 5 => {
                    p.lat_rows.push(LatRow {
                        bytes,
                        iterations,
                        t_min: nums[2],
                        t_max: nums[3],
                        t_typical: nums[4],
                        t_avg: nums.get(5).copied(),
                        t_stdev: nums.get(6).copied(),
                        p99: nums.get(7).copied(),
                        p99_9: nums.get(8).copied(),
                    });
                    closed = false;
                    continue;
                }
                _ => {}
            }
        }
        if t.starts_with("local address") || t.starts_with("remote address") || t.starts_with("GID:") {
            continue;
        }
        if ERROR_MARKS.iter().any(|m| t.contains(m)) {
            p.errors.push(t.to_owned());
            continue;
        }
        if header_pairs(&mut p, t) {
            continue;
        }
        p.warnings.push(t.to_owned());
    }
    let results = !p.bw_rows.is_empty() || !p.lat_rows.is_empty();
    let started = p.test.is_some() || table != Table::None;
    p.truncated = p.errors.is_empty() && started && (!results || !closed);
    p
}

/// Reads ` Dual-port : OFF    Device : rocep1s0f1` (one or two `key : value` pairs per line,
/// separated by a run of spaces or a tab). `false` when the line has no known key.
fn header_pairs(p: &mut Perftest, line: &str) -> bool {
    // Header values never hold a colon (the GID and address lines are read before this).
    let parts: Vec<&str> = line.split(':').collect();
    if parts.len() < 2 {
        return false;
    }
    let mut key = parts[0].trim().to_owned();
    let mut known = false;
    for (i, part) in parts.iter().enumerate().skip(1) {
        let part = part.trim();
        let (value, next_key) = if i + 1 < parts.len() { split_value_key(part) } else { (part, "") };
        known |= apply(p, &key, value);
        key = next_key.to_owned();
    }
    known
}

/// `OFF          Device` → (`OFF`, `Device`): the value ends at the first run of 2+ blanks or a tab.
fn split_value_key(s: &str) -> (&str, &str) {
    let b = s.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'\t' || b[i] == b' ' && b.get(i + 1) == Some(&b' ') {
            return (s[..i].trim(), s[i..].trim());
        }
    }
    (s, "")
}

fn apply(p: &mut Perftest, key: &str, value: &str) -> bool {
    let num = |v: &str| leading_number::<u32>(v.split('[').next().unwrap_or(v));
    match key {
        "Device" => p.device = Some(value.to_owned()),
        "Number of qps" => p.qps = value.parse().ok(),
        "Transport type" => p.transport_type = Some(value.to_owned()),
        "Connection type" => p.connection_type = Some(value.to_owned()),
        "Mtu" => p.mtu = num(value),
        "Link type" => p.link_type = Some(value.to_owned()),
        "GID index" => p.gid_index = value.parse().ok(),
        "rdma_cm QPs" => p.rdma_cm = Some(value == "ON"),
        "Data ex. method" => p.data_exchange = Some(value.to_owned()),
        "Dual-port" | "Using SRQ" | "PCIe relax order" | "ibv_wr* API" | "TX depth" | "CQ Moderation" | "Max inline data" | "Lock-free" | "Using DDP"
        | "CQE Poll Batch" | "CPU freq" => {}
        _ => return false,
    }
    true
}
