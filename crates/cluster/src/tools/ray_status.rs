//! `ray status`: how many nodes are alive and which resources the cluster has. Reads the old
//! (`Healthy:`/`Usage:`), the ≥2.10 (`Active:`/`Idle:`/`Total Usage:`) and whitespace-flattened
//! pastes. Memory figures keep their own names (`memory`, `object_store_memory`) and are read
//! in bytes whether Ray glues the unit (`21.16GiB`) or not (`44.873 GiB`).

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
/// What `ray status` printed.
pub struct RayStatus {
    /// Live nodes (`Active:`, `Idle:`, `Healthy:`), saturating: absurd counts never wrap.
    pub nodes: u32,
    /// Resource totals by name; memory resources in bytes.
    pub(crate) totals: BTreeMap<String, f64>,
    /// Resource usage by name (same units as `totals`).
    pub(crate) used: BTreeMap<String, f64>,
    pub(crate) notes: Vec<String>,
}

impl RayStatus {
    /// The total of resource `res` (0 when absent).
    pub fn total(&self, res: &str) -> f64 {
        self.totals.get(res).copied().unwrap_or(0.0)
    }

    /// Every node joined and brought its GPUs (CPUs where Ray sees no GPU at all).
    pub fn complete(&self, nodes: usize, gpus_per_node: u32) -> bool {
        let gpu_ok = if self.total("GPU") > 0.0 { self.total("GPU") >= (nodes as f64) * f64::from(gpus_per_node) } else { self.total("CPU") >= nodes as f64 };
        self.nodes as usize >= nodes && gpu_ok
    }
}

#[derive(PartialEq)]
enum Section {
    Other,
    Live,
    Resources,
    Done,
}

/// Reads `ray status` output.
pub fn parse(text: &str) -> RayStatus {
    let toks: Vec<&str> = text.split_whitespace().collect();
    let mut st = RayStatus::default();
    let mut section = Section::Other;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        match t {
            "Active:" | "Idle:" | "Healthy:" if section != Section::Resources => section = Section::Live,
            "Pending:" | "Recent" if section == Section::Live => section = Section::Other,
            "Resources" => section = Section::Resources,
            _ if section == Section::Resources && t.ends_with(':') && (t.contains("Constraints") || t.contains("Demands") || t == "request_resources:") => {
                section = Section::Done
            }
            _ if section == Section::Live && toks.get(i + 1).is_some_and(|n| n.starts_with("node_")) => {
                match t.parse::<u64>() {
                    Ok(n) => {
                        let n32 = u32::try_from(n).unwrap_or_else(|_| {
                            st.notes.push(format!("node count `{t}` is absurd; counted as {}", u32::MAX));
                            u32::MAX
                        });
                        st.nodes = st.nodes.saturating_add(n32);
                    }
                    Err(_) if t.bytes().all(|b| b.is_ascii_digit()) => {
                        st.notes.push(format!("node count `{t}` is absurd; counted as {}", u32::MAX));
                        st.nodes = u32::MAX;
                    }
                    Err(_) => {}
                }
                i += 1;
            }
            _ if section == Section::Resources && t.contains('/') => {
                let (used, total) = t.split_once('/').expect("contains a slash");
                // `0.00/44.873 GiB memory`: the unit is its own word.
                let (unit, name_at) = match toks.get(i + 1) {
                    Some(u) if unit_factor(u).is_some() => (Some(*u), i + 2),
                    _ => (None, i + 1),
                };
                match (amount(used, unit), amount(total, unit), toks.get(name_at)) {
                    (Some(u), Some(tot), Some(name)) if !name.contains('/') && !name.ends_with(':') => {
                        if st.totals.insert((*name).to_owned(), tot).is_some() {
                            st.notes.push(format!("resource `{name}` listed twice; the last total kept"));
                        }
                        st.used.insert((*name).to_owned(), u);
                        i = name_at;
                    }
                    _ => st.notes.push(format!("unreadable resource `{t}`")),
                }
            }
            _ => {}
        }
        i += 1;
    }
    if !toks.contains(&"Resources") && !toks.is_empty() {
        st.notes.push("no `Resources` section: output truncated?".to_owned());
    }
    st
}

/// `37.70GiB` → bytes; `8.0` → 8.0; `unit` is a separate unit word when Ray printed one.
fn amount(s: &str, unit: Option<&str>) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, glued) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let factor = match (glued, unit) {
        ("", None) => 1.0,
        ("", Some(u)) => unit_factor(u)?,
        (g, _) => unit_factor(g)?,
    };
    let v = v * factor;
    v.is_finite().then_some(v)
}

fn unit_factor(u: &str) -> Option<f64> {
    Some(match u {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return None,
    })
}
