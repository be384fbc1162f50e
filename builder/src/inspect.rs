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
                    "created": cfg.get("created"),
                });
                v["layers"] = m.layers.iter().map(|l| json!({ "digest": l.digest.as_str(), "mediaType": l.media_type, "size": l.size })).collect();
            }
            v
        })
        .collect();
    json!({ "name": image.name(), "digest": top_digest, "mediaType": top_type, "manifests": manifests })
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
        for e in c["env"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  env         {}", e.as_str().unwrap_or(""));
        }
        if let Some(l) = c["labels"].as_object() {
            for (k, v) in l {
                let _ = writeln!(out, "  label       {k}={}", v.as_str().unwrap_or(""));
            }
        }
        let _ = writeln!(out, "  {:<4} {:<71} {:>12}  media type", "#", "layer", "size");
        for (i, l) in m["layers"].as_array().into_iter().flatten().enumerate() {
            let _ = writeln!(out, "  {i:<4} {:<71} {:>12}  {}", l["digest"].as_str().unwrap_or(""), l["size"], l["mediaType"].as_str().unwrap_or(""));
        }
    }
    out
}
