//! SVG plots of a sweep: output throughput, TTFT and TPOT (p50 solid, p99 dashed) against the
//! swept dimension (concurrency, rate or prompt length), one line per value of the others.
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
    label: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// One panel at horizontal offset `ox`.
fn panel(out: &mut String, ox: f64, title: &str, x_label: &str, y_label: &str, series: &[Series]) {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let x_max = all.iter().map(|p| p.0).fold(0.0, f64::max);
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max);
    let (xs, ys) = (nice_step(x_max), nice_step(y_max));
    let (x_top, y_top) = ((x_max / xs).ceil().max(1.0) * xs, (y_max / ys).ceil().max(1.0) * ys);
    let pw = W - ML - MR;
    let ph = H - MT - MB;
    let px = |x: f64| ox + ML + x / x_top * pw;
    let py = |y: f64| MT + ph - y / y_top * ph;
    let _ = writeln!(out, r#"<text x="{:.1}" y="22" font-size="14" font-weight="bold" text-anchor="middle">{}</text>"#, ox + ML + pw / 2.0, esc(title));
    // Grid and ticks.
    let mut y = 0.0;
    while y <= y_top + ys / 2.0 {
        let _ = writeln!(out, r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/>"##, px(0.0), py(y), px(x_top), py(y));
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#, px(0.0) - 6.0, py(y) + 4.0, fmt_tick(y));
        y += ys;
    }
    let mut x = 0.0;
    while x <= x_top + xs / 2.0 {
        let _ = writeln!(out, r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#eee"/>"##, px(x), py(0.0), px(x), py(y_top));
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#, px(x), py(0.0) + 16.0, fmt_tick(x));
        x += xs;
    }
    let _ = writeln!(out, r##"<rect x="{:.1}" y="{MT}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#444"/>"##, ox + ML);
    let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#, ox + ML + pw / 2.0, H - 10.0, esc(x_label));
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
        ox + 16.0,
        MT + ph / 2.0,
        ox + 16.0,
        MT + ph / 2.0,
        esc(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let mut pts = s.points.clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(out, r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#, path.join(" "), s.color);
        for &(x, y) in &pts {
            let _ = writeln!(out, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#, px(x), py(y), s.color);
        }
        // Legend, top-left inside the plot.
        let ly = MT + 14.0 + i as f64 * 15.0;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/>"#,
            ox + ML + 8.0,
            ox + ML + 30.0,
            s.color
        );
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#, ox + ML + 34.0, ly + 4.0, esc(&s.label));
    }
}

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
    let (mut thr, mut ttft, mut tpot) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (name, g)) in groups.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let tag = |what: &str| if name.is_empty() { what.to_owned() } else { format!("{what} ({name})") };
        thr.push(Series { label: tag("output tok/s"), color, dashed: false, points: line(g, &|p| p.summary.output_tok_per_s) });
        ttft.push(Series { label: tag("p50"), color, dashed: false, points: line(g, &|p| p.summary.ttft_ms.p50) });
        ttft.push(Series { label: tag("p99"), color, dashed: true, points: line(g, &|p| p.summary.ttft_ms.p99) });
        tpot.push(Series { label: tag("p50"), color, dashed: false, points: line(g, &|p| p.summary.tpot_ms.p50) });
        tpot.push(Series { label: tag("p99"), color, dashed: true, points: line(g, &|p| p.summary.tpot_ms.p99) });
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{:.0}" viewBox="0 0 {:.0} {:.0}" font-family="sans-serif">"#,
        W * 3.0,
        H + 20.0,
        W * 3.0,
        H + 20.0
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    panel(&mut out, 0.0, "Output throughput", x_label, "tokens/s", &thr);
    panel(&mut out, W, "Time to first token", x_label, "ms", &ttft);
    panel(&mut out, 2.0 * W, "Time per output token", x_label, "ms", &tpot);
    let _ = writeln!(
        out,
        r##"<text x="8" y="{:.0}" font-size="10" fill="#666">{} · {} · {}</text>"##,
        H + 14.0,
        esc(&run.model),
        esc(&run.server_url),
        esc(&run.client)
    );
    out.push_str("</svg>\n");
    out
}
