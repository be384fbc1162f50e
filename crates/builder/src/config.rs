//! Edits an image config as raw JSON: fields we do not know (Healthcheck, ArgsEscaped, …)
//! survive; base history is never rewritten; `rootfs.diff_ids` and `history` are appended.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::json::rfc3339;
use crate::recipe::ConfigEdits;
use serde_json::{json, Map, Value};

/// One new layer's contribution to the config.
pub(crate) struct LayerRecord<'a> {
    pub(crate) diff_id: &'a Digest,
    pub(crate) created_by: String,
    pub(crate) comment: String,
}

pub(crate) struct Edit<'a> {
    pub(crate) layers: Vec<LayerRecord<'a>>,
    /// Env from the overlays (in overlay order), then the recipe's.
    pub(crate) env: Vec<(String, String)>,
    pub(crate) recipe: &'a ConfigEdits,
    pub(crate) extra_labels: &'a [(String, String)],
    pub(crate) epoch: u64,
    pub(crate) recipe_name: String,
}

pub(crate) fn apply(raw: &[u8], edit: &Edit<'_>, source_name: &str) -> Result<Value> {
    let mut config: Value = serde_json::from_slice(raw).map_err(|e| Error::malformed(source_name, format!("config is not valid JSON: {e}")))?;
    let root = config.as_object_mut().ok_or_else(|| Error::malformed(source_name, "config is not a JSON object"))?;
    let created = rfc3339(edit.epoch);

    let rootfs = root.entry("rootfs").or_insert_with(|| json!({ "type": "layers", "diff_ids": [] }));
    let diff_ids = rootfs
        .as_object_mut()
        .and_then(|r| r.entry("diff_ids").or_insert_with(|| json!([])).as_array_mut())
        .ok_or_else(|| Error::malformed(source_name, "config rootfs.diff_ids is not a list"))?;
    diff_ids.extend(edit.layers.iter().map(|l| Value::String(l.diff_id.to_string())));

    let history = root.entry("history").or_insert_with(|| json!([]));
    let history = history.as_array_mut().ok_or_else(|| Error::malformed(source_name, "config history is not a list"))?;
    for l in &edit.layers {
        let mut h = json!({ "created": created, "created_by": l.created_by });
        if !l.comment.is_empty() {
            h["comment"] = Value::String(l.comment.clone());
        }
        history.push(h);
    }
    history.push(json!({ "created": created, "created_by": format!("sparkctl: config of {}", edit.recipe_name), "empty_layer": true }));

    root.insert("created".into(), Value::String(created));
    let c = root.entry("config").or_insert_with(|| Value::Object(Map::new()));
    if c.is_null() {
        *c = Value::Object(Map::new());
    }
    let c = c.as_object_mut().ok_or_else(|| Error::malformed(source_name, "config.config is not an object"))?;

    let mut env: Vec<String> =
        c.get("Env").and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default();
    for (k, v) in edit.env.iter().chain(&edit.recipe.env) {
        set_env(&mut env, k, v);
    }
    if !env.is_empty() {
        c.insert("Env".into(), json!(env));
    }
    let r = edit.recipe;
    if let Some(ep) = &r.entrypoint {
        c.insert("Entrypoint".into(), json!(ep));
        // As in a Dockerfile: a new ENTRYPOINT drops the CMD inherited from the base.
        if r.cmd.is_none() {
            c.insert("Cmd".into(), Value::Null);
        }
    }
    if let Some(cmd) = &r.cmd {
        c.insert("Cmd".into(), json!(cmd));
    }
    if let Some(w) = &r.working_dir {
        c.insert("WorkingDir".into(), json!(w));
    }
    if let Some(u) = &r.user {
        c.insert("User".into(), json!(u));
    }
    if let Some(s) = &r.stop_signal {
        c.insert("StopSignal".into(), json!(s));
    }
    if let Some(h) = &r.healthcheck {
        // Docker's fields, durations in nanoseconds; unset ones are left out (Docker's defaults).
        let mut test = vec![json!("CMD")];
        test.extend(h.cmd.iter().map(|a| json!(a)));
        let mut hc = json!({ "Test": test });
        for (key, secs) in [("Interval", h.interval_s), ("Timeout", h.timeout_s), ("StartPeriod", h.start_period_s)] {
            if let Some(s) = secs {
                hc[key] = json!(s * 1_000_000_000);
            }
        }
        if let Some(n) = h.retries {
            hc["Retries"] = json!(n);
        }
        c.insert("Healthcheck".into(), hc);
    }
    if !r.labels.is_empty() || !edit.extra_labels.is_empty() {
        let labels = c.entry("Labels").or_insert_with(|| Value::Object(Map::new()));
        if labels.is_null() {
            *labels = Value::Object(Map::new());
        }
        let labels = labels.as_object_mut().ok_or_else(|| Error::malformed(source_name, "config Labels is not an object"))?;
        for (k, v) in r.labels.iter().chain(edit.extra_labels) {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
    }
    Ok(config)
}

/// Replaces `K=…` in place (keeping the base's order), or appends.
fn set_env(env: &mut Vec<String>, k: &str, v: &str) {
    let item = format!("{k}={v}");
    match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == k) {
        Some(slot) => *slot = item,
        None => env.push(item),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_and_history_is_appended() {
        let base = br#"{"architecture":"arm64","os":"linux","config":{"Env":["PATH=/usr/bin","A=old"],"Cmd":["bash"],"Healthcheck":{"Test":["CMD","true"]},"ArgsEscaped":true},"rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"history":[{"created_by":"base step"}],"moby.buildkit.buildinfo.v1":"x"}"#;
        let d = Digest::of(b"layer");
        let recipe = ConfigEdits {
            env: vec![("B".into(), "2".into())],
            entrypoint: Some(vec!["/e".into()]),
            labels: vec![("l".into(), "v".into())],
            ..Default::default()
        };
        let edit = Edit {
            layers: vec![LayerRecord { diff_id: &d, created_by: "sparkctl: overlay x".into(), comment: String::new() }],
            env: vec![("A".into(), "new".into())],
            recipe: &recipe,
            extra_labels: &[],
            epoch: 0,
            recipe_name: "r".into(),
        };
        let c = apply(base, &edit, "t").unwrap();
        assert_eq!(c["config"]["Healthcheck"]["Test"][1], "true");
        assert_eq!(c["config"]["ArgsEscaped"], true);
        assert_eq!(c["moby.buildkit.buildinfo.v1"], "x");
        assert_eq!(c["config"]["Env"], json!(["PATH=/usr/bin", "A=new", "B=2"]));
        assert_eq!(c["config"]["Cmd"], Value::Null);
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:aa", d.as_str()]));
        assert_eq!(c["history"][0]["created_by"], "base step");
        assert_eq!(c["history"].as_array().unwrap().len(), 3);
        assert_eq!(c["created"], "1970-01-01T00:00:00Z");
        assert_eq!(c["config"]["Labels"]["l"], "v");
    }

    #[test]
    fn healthcheck_is_written_in_docker_form() {
        let recipe = ConfigEdits {
            healthcheck: Some(crate::recipe::Healthcheck {
                cmd: vec!["/e".into(), "healthcheck".into()],
                interval_s: Some(10),
                timeout_s: None,
                start_period_s: Some(600),
                retries: Some(3),
            }),
            ..Default::default()
        };
        let edit = Edit { layers: vec![], env: vec![], recipe: &recipe, extra_labels: &[], epoch: 0, recipe_name: "r".into() };
        let c = apply(br#"{"config":{}}"#, &edit, "t").unwrap();
        assert_eq!(
            c["config"]["Healthcheck"],
            json!({ "Test": ["CMD", "/e", "healthcheck"], "Interval": 10_000_000_000u64, "StartPeriod": 600_000_000_000u64, "Retries": 3 })
        );
    }
}
