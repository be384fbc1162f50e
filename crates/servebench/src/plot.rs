//! SVG plots of a sweep: output throughput, TTFT and TPOT (p50 solid, p99 dashed) against the
//! swept dimension (concurrency, rate or prompt length), one colour per value of the others,
//! legends under the panels. A sweep over 8× or more (concurrency 1…256) gets a log x axis.
//! Plain SVG 1.1 with no scripts or fonts beyond `sans-serif`, so any renderer draws it the same.

use crate::client::Load;
use crate::report::{Point, RunFile};
use std::fmt::Write as _;

const W: f64 = 420.0;
const H: f64 = 300.0;
const ML: f64 = 64.0;
const MR: f64 = 16.0;
const MT: f64 = 36.0;
const MB: f64 = 48.0;
const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

fn concurrency(p: &Point) -> Option<f64> {
    match p.spec.load {
        Load::Closed { concurrency } => Some(concurrency as f64),
        Load::Open { max_concurrency, .. } => max_concurrency.map(|c| c as f64),
    }
}

fn rate(p: &Point) -> Option<f64> {
    match p.spec.load {
        Load::Open { rate, .. } => Some(rate),
        Load::Closed { .. } => None,
    }
}

/// Reads one dimension of a point.
type Dim = fn(&Point) -> Option<f64>;

/// The x dimension: the one with the most distinct values.
fn axis(points: &[Point]) -> (&'static str, Dim) {
    let distinct = |f: Dim| {
        let mut v: Vec<u64> = points.iter().filter_map(f).map(f64::to_bits).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    let prompt: Dim = |p| Some(p.workload.prompt_tokens as f64);
    let options: [(&'static str, Dim); 3] = [("concurrency", concurrency), ("request rate (req/s)", rate), ("prompt length (tokens)", prompt)];
    options.into_iter().max_by_key(|(_, f)| distinct(*f)).unwrap_or(("concurrency", concurrency))
}

/// A "nice" step (1, 2 or 5 × 10ⁿ) for about five ticks up to `max`.
fn nice_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn fmt_tick(v: f64) -> String {
    if v >= 10000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}").trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

struct Series {
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// How x values map to the plot's width: concurrency and rate sweeps double (1, 2, 4 … 256),
/// and on a linear axis their first half would crowd into a corner, so a sweep spanning 8× or
/// more is drawn on a log axis with a tick at each swept value.
enum XScale {
    Linear { top: f64, step: f64 },
    Log { lo: f64, hi: f64, ticks: Vec<f64> },
}

impl XScale {
    fn new(xs: &[f64]) -> XScale {
        let mut distinct: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let (min, max) = (distinct.first().copied().unwrap_or(0.0), distinct.last().copied().unwrap_or(0.0));
        if min > 0.0 && max / min >= 8.0 {
            // Half a doubling of room on each side, so the end points are not on the frame.
            let ticks = if distinct.len() <= 12 { distinct } else { (0..).map(|k| 2f64.powi(k)).skip_while(|t| *t < min).take_while(|t| *t <= max).collect() };
            return XScale::Log { lo: min.log2() - 0.5, hi: max.log2() + 0.5, ticks };
        }
        let step = nice_step(max);
        XScale::Linear { top: (max / step).ceil().max(1.0) * step, step }
    }

    /// Where `x` lies, from 0 (left) to 1 (right).
    fn frac(&self, x: f64) -> f64 {
        match self {
            XScale::Linear { top, .. } => x / top,
            XScale::Log { lo, hi, .. } => (x.max(f64::MIN_POSITIVE).log2() - lo) / (hi - lo),
        }
    }

    fn ticks(&self) -> Vec<f64> {
        match self {
            XScale::Linear { top, step } => (0..).map(|k| k as f64 * step).take_while(|x| *x <= top + step / 2.0).collect(),
            XScale::Log { ticks, .. } => ticks.clone(),
        }
    }

    fn is_log(&self) -> bool {
        matches!(self, XScale::Log { .. })
    }
}

/// A legend row: colour, label.
type Key = (&'static str, String);

/// One panel at horizontal offset `ox`; its legend goes under it (never over the lines):
/// one row per colour, then `styles` (what solid and dashed mean) when given.
#[allow(clippy::too_many_arguments)]
fn panel(out: &mut String, ox: f64, title: &str, x_label: &str, y_label: &str, series: &[Series], keys: &[Key], styles: Option<&str>) {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let xscale = XScale::new(&all.iter().map(|p| p.0).collect::<Vec<_>>());
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max);
    let ys = nice_step(y_max);
    let y_top = (y_max / ys).ceil().max(1.0) * ys;
    let pw = W - ML - MR;
    let ph = H - MT - MB;
    let px = |x: f64| ox + ML + xscale.frac(x) * pw;
    let py = |y: f64| MT + ph - y / y_top * ph;
    let (left, right) = (ox + ML, ox + ML + pw);
    let _ = writeln!(out, r#"<text x="{:.1}" y="22" font-size="14" font-weight="bold" text-anchor="middle">{}</text>"#, ox + ML + pw / 2.0, esc(title));
    // Grid and ticks.
    let mut y = 0.0;
    while y <= y_top + ys / 2.0 {
        let _ = writeln!(out, r##"<line x1="{left:.1}" y1="{:.1}" x2="{right:.1}" y2="{:.1}" stroke="#ddd"/>"##, py(y), py(y));
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#, left - 6.0, py(y) + 4.0, fmt_tick(y));
        y += ys;
    }
    for x in xscale.ticks() {
        let _ = writeln!(out, r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#eee"/>"##, px(x), py(0.0), px(x), py(y_top));
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#, px(x), py(0.0) + 16.0, fmt_tick(x));
    }
    let _ = writeln!(out, r##"<rect x="{left:.1}" y="{MT}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#444"/>"##);
    let x_label = if xscale.is_log() { format!("{x_label}, log scale") } else { x_label.to_owned() };
    let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#, ox + ML + pw / 2.0, H - 14.0, esc(&x_label));
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
        ox + 16.0,
        MT + ph / 2.0,
        ox + 16.0,
        MT + ph / 2.0,
        esc(y_label)
    );
    for s in series {
        let mut pts = s.points.clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(out, r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#, path.join(" "), s.color);
        for &(x, y) in &pts {
            let _ = writeln!(out, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#, px(x), py(y), s.color);
        }
    }
    // Legend under the panel.
    for (i, (color, label)) in keys.iter().enumerate() {
        let ly = H + 4.0 + i as f64 * LEGEND_ROW;
        let _ = writeln!(out, r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/>"#, left, left + 22.0);
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#, left + 28.0, ly + 4.0, esc(label));
    }
    if let Some(text) = styles {
        let ly = H + 4.0 + keys.len() as f64 * LEGEND_ROW;
        let _ = writeln!(out, r##"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="#444" stroke-width="2"/>"##, left, left + 22.0);
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="#444" stroke-width="2" stroke-dasharray="6 4"/>"##,
            left + 90.0,
            left + 112.0
        );
        let (solid, dashed) = text.split_once('|').unwrap_or((text, ""));
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#, left + 28.0, ly + 4.0, esc(solid));
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#, left + 118.0, ly + 4.0, esc(dashed));
    }
}

const LEGEND_ROW: f64 = 15.0;

/// The sweep of `run` as one SVG with three panels.
pub fn sweep_svg(run: &RunFile) -> String {
    let (x_label, x_of) = axis(&run.points);
    // Lines: one per setting of everything but the x dimension.
    let mut groups: Vec<(String, Vec<&Point>)> = Vec::new();
    for p in &run.points {
        let mut key = Vec::new();
        if x_label != "prompt length (tokens)" {
            key.push(format!("prompt {}", p.workload.prompt_tokens));
        }
        if x_label != "concurrency" {
            if let Some(c) = concurrency(p) {
                key.push(format!("c {c}"));
            }
        }
        if x_label != "request rate (req/s)" {
            if let Some(r) = rate(p) {
                key.push(format!("{r}/s"));
            }
        }
        let key = key.join(", ");
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(p),
            None => groups.push((key, vec![p])),
        }
    }
    let line = |g: &[&Point], f: &dyn Fn(&Point) -> f64| g.iter().filter_map(|p| x_of(p).map(|x| (x, f(p)))).collect::<Vec<_>>();
    let (mut thr, mut ttft, mut tpot, mut keys) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, (name, g)) in groups.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        keys.push((color, if name.is_empty() { "all points".to_owned() } else { name.clone() }));
        thr.push(Series { color, dashed: false, points: line(g, &|p| p.summary.output_tok_per_s) });
        ttft.push(Series { color, dashed: false, points: line(g, &|p| p.summary.ttft_ms.p50) });
        ttft.push(Series { color, dashed: true, points: line(g, &|p| p.summary.ttft_ms.p99) });
        tpot.push(Series { color, dashed: false, points: line(g, &|p| p.summary.tpot_ms.p50) });
        tpot.push(Series { color, dashed: true, points: line(g, &|p| p.summary.tpot_ms.p99) });
    }
    let height = H + keys.len() as f64 * LEGEND_ROW + LEGEND_ROW + 24.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{height:.0}" viewBox="0 0 {:.0} {height:.0}" font-family="sans-serif">"#,
        W * 3.0,
        W * 3.0,
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    panel(&mut out, 0.0, "Output throughput", x_label, "tokens/s", &thr, &keys, None);
    panel(&mut out, W, "Time to first token", x_label, "ms", &ttft, &keys, Some("p50|p99"));
    panel(&mut out, 2.0 * W, "Time per output token", x_label, "ms", &tpot, &keys, Some("p50|p99"));
    let _ = writeln!(
        out,
        r##"<text x="8" y="{:.0}" font-size="10" fill="#666">{} · {} · {}</text>"##,
        height - 8.0,
        esc(&run.model),
        esc(&run.server_url),
        esc(&run.client)
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_doubling_sweep_is_evenly_spaced_on_a_log_axis_and_a_narrow_one_is_linear() {
        let x = XScale::new(&[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]);
        assert!(x.is_log());
        let step = x.frac(2.0) - x.frac(1.0);
        assert!((x.frac(128.0) - x.frac(64.0) - step).abs() < 1e-9);
        assert!(x.frac(1.0) > 0.0 && x.frac(128.0) < 1.0, "end points off the frame");
        assert_eq!(x.ticks(), [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]);
        let lin = XScale::new(&[1.0, 4.0]);
        assert!(!lin.is_log());
        assert_eq!(lin.frac(0.0), 0.0);
    }
}
