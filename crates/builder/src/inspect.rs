//! `sparkctl image inspect`: what an image is made of (index → manifests → config → layers), as
//! a value that prints as a table or as JSON.

use crate::source::{BaseImage, BaseTop};
use serde_json::{json, Value};
use std::fmt::Write;

/// A JSON summary: top digest and media type, and per platform image its manifest, config
/// (env, entrypoint, cmd, labels, user, working dir) and layers.
pub fn summary(image: &BaseImage) -> Value {
    let (top_digest, top_type) = match &image.top {
        BaseTop::Index { desc, .. } => (desc.digest.to_string(), desc.media_type.clone()),
        BaseTop::Manifest => (image.entries[0].0.digest.to_string(), image.entries[0].0.media_type.clone()),
    };
    let manifests: Vec<Value> = image
        .entries
        .iter()
        .map(|(d, m)| {
            let mut v = json!({
                "digest": d.digest.as_str(),
                "mediaType": d.media_type,
                "size": d.size,
                "platform": d.platform.as_ref().map(ToString::to_string),
                "attestation": d.is_attestation(),
            });
            if let Some(m) = m {
                let cfg: Value = serde_json::from_slice(&m.config_raw).unwrap_or_default();
                let c = &cfg["config"];
                if v["platform"].is_null() {
                    v["platform"] = json!(format!("{}/{}", cfg["os"].as_str().unwrap_or("?"), cfg["architecture"].as_str().unwrap_or("?")));
                }
                v["config"] = json!({
                    "digest": m.config_desc.digest.as_str(),
                    "env": c.get("Env"),
                    "entrypoint": c.get("Entrypoint"),
                    "cmd": c.get("Cmd"),
                    "labels": c.get("Labels"),
                    "user": c.get("User"),
                    "workingDir": c.get("WorkingDir"),
                    "healthcheck": c.get("Healthcheck"),
                    "created": cfg.get("created"),
                });
                let made_by = layer_origins(&cfg, m.layers.len());
                v["layers"] = m
                    .layers
                    .iter()
                    .zip(made_by)
                    .map(|(l, by)| {
                        // The OCI annotation names the overlay; Docker-format layers have only the history.
                        let overlay = l.annotation("dev.sparkctl.overlay").map(str::to_owned).or(by);
                        json!({ "digest": l.digest.as_str(), "mediaType": l.media_type, "size": l.size, "overlay": overlay })
                    })
                    .collect();
            }
            v
        })
        .collect();
    json!({ "name": image.name(), "digest": top_digest, "mediaType": top_type, "manifests": manifests })
}

/// Per layer, the overlay that made it, from the config's history (`sparkctl: overlay NAME`;
/// entries with `empty_layer` made no layer). `None` for layers from elsewhere.
fn layer_origins(cfg: &Value, layers: usize) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = cfg["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["empty_layer"] != true)
        .map(|h| h["created_by"].as_str().and_then(|c| c.strip_prefix("sparkctl: overlay ")).map(str::to_owned))
        .collect();
    out.resize(layers, None);
    out
}

/// A healthcheck as Docker shows it: the command, then interval and retries when set.
fn healthcheck_line(h: &Value) -> String {
    let test: Vec<&str> = h["Test"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let cmd = match test.split_first() {
        Some((&"CMD", rest)) => rest.join(" "),
        Some((&"CMD-SHELL", rest)) => format!("sh -c {:?}", rest.join(" ")),
        Some((&"NONE", _)) => "none".to_owned(),
        _ => test.join(" "),
    };
    let mut parts = vec![cmd];
    for (key, label) in [("Interval", "every"), ("Timeout", "timeout"), ("StartPeriod", "start period")] {
        if let Some(ns) = h[key].as_u64().filter(|n| *n > 0) {
            parts.push(format!("{label} {}s", ns / 1_000_000_000));
        }
    }
    if let Some(r) = h["Retries"].as_u64().filter(|n| *n > 0) {
        parts.push(format!("{r} retries"));
    }
    parts.join(", ")
}

/// The same summary as a human table.
pub fn table(s: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}  {}  {}", s["name"].as_str().unwrap_or(""), s["digest"].as_str().unwrap_or(""), s["mediaType"].as_str().unwrap_or(""));
    for m in s["manifests"].as_array().into_iter().flatten() {
        let kind = if m["attestation"] == true { "attestation" } else { "manifest" };
        let _ = writeln!(out, "\n{kind} {}  {}  {} bytes", m["platform"].as_str().unwrap_or("-"), m["digest"].as_str().unwrap_or(""), m["size"]);
        let c = &m["config"];
        if c.is_null() {
            continue;
        }
        let _ = writeln!(out, "  config      {}", c["digest"].as_str().unwrap_or(""));
        for (k, label) in [("entrypoint", "entrypoint"), ("cmd", "cmd"), ("user", "user"), ("workingDir", "workdir"), ("created", "created")] {
            if !c[k].is_null() {
                let _ = writeln!(out, "  {label:<11} {}", c[k]);
            }
        }
        if c["healthcheck"].is_object() {
            let _ = writeln!(out, "  healthcheck {}", healthcheck_line(&c["healthcheck"]));
        }
        for e in c["env"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  env         {}", e.as_str().unwrap_or(""));
        }
        if let Some(l) = c["labels"].as_object() {
            for (k, v) in l {
                let _ = writeln!(out, "  label       {k}={}", v.as_str().unwrap_or(""));
            }
        }
        // Sizes as strings: `serde_json::Value`'s Display ignores width and alignment.
        let layers: Vec<&Value> = m["layers"].as_array().into_iter().flatten().collect();
        let from = |l: &Value| l["overlay"].as_str().map_or_else(|| "-".to_owned(), |o| format!("overlay {o}"));
        let from_w = layers.iter().map(|l| from(l).len()).max().unwrap_or(0).max("from".len());
        let _ = writeln!(out, "  {:<4} {:<71} {:>12}  {:<from_w$}  media type", "#", "layer", "size", "from");
        for (i, l) in layers.iter().enumerate() {
            let size = l["size"].as_u64().map(|n| n.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {i:<4} {:<71} {size:>12}  {:<from_w$}  {}",
                l["digest"].as_str().unwrap_or(""),
                from(l),
                l["mediaType"].as_str().unwrap_or("")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_with(layers: Value, history: Value, healthcheck: Value) -> Value {
        json!({ "name": "n", "digest": "d", "mediaType": "t", "manifests": [{
            "digest": "m", "size": 1, "platform": "linux/arm64", "attestation": false,
            "config": { "digest": "c", "healthcheck": healthcheck, "history": history },
            "layers": layers,
        }]})
    }

    #[test]
    fn layer_table_columns_line_up_and_name_the_overlay() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let layers = json!([
            { "digest": d('a'), "size": 7, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "overlay": null },
            { "digest": d('b'), "size": 123456789, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "overlay": "spark-env" },
        ]);
        let t = table(&summary_with(
            layers,
            json!(null),
            json!({ "Test": ["CMD", "/usr/local/bin/spark-entrypoint", "healthcheck"], "Interval": 10_000_000_000u64, "Retries": 3 }),
        ));
        let rows: Vec<&str> = t.lines().filter(|l| l.trim_start().starts_with(['#', '0', '1'])).collect();
        assert_eq!(rows.len(), 3, "{t}");
        let col = |needle: &str, row: &str| row.find(needle).unwrap_or_else(|| panic!("`{needle}` not in `{row}`"));
        // Right-aligned sizes end in one column; the `from` column starts in one column.
        assert_eq!(col("size", rows[0]) + 4, col("7", rows[1]) + 1, "{t}");
        assert_eq!(col("size", rows[0]) + 4, col("123456789", rows[2]) + 9, "{t}");
        assert_eq!(col("from", rows[0]), col("-", rows[1]));
        assert_eq!(col("from", rows[0]), col("overlay spark-env", rows[2]));
        assert_eq!(col("media type", rows[0]), col("application", rows[1]));
        assert!(t.contains("  healthcheck /usr/local/bin/spark-entrypoint healthcheck, every 10s, 3 retries"), "{t}");
    }

    #[test]
    fn history_names_the_overlays_of_docker_format_layers() {
        let cfg = json!({ "history": [
            { "created_by": "base step" },
            { "created_by": "ENV A=1", "empty_layer": true },
            { "created_by": "sparkctl: overlay cudnn-switch" },
        ]});
        assert_eq!(layer_origins(&cfg, 2), [None, Some("cudnn-switch".to_owned())]);
        assert_eq!(layer_origins(&json!({}), 1), [None]);
    }
}
