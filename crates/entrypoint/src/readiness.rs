//! "Ready" means the model answers: `/health` is 200, `/v1/models` names a model, and a 1-token
//! completion comes back (vLLM listens long before the model is loaded). The state is written
//! to a status file for people and for `spark-entrypoint healthcheck` (Docker `HEALTHCHECK`).

use crate::http;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// One pass of the three probes: `Ok(model)` when all answer, else the first failing step.
pub(crate) fn probe_once(addr: SocketAddr) -> Result<String, String> {
    let t = Duration::from_secs(10);
    let h = http::get(addr, "/health", t).map_err(|e| format!("/health: {e}"))?;
    if h.status != 200 {
        return Err(format!("/health: HTTP {}", h.status));
    }
    let m = http::get(addr, "/v1/models", t).map_err(|e| format!("/v1/models: {e}"))?;
    if m.status != 200 {
        return Err(format!("/v1/models: HTTP {}", m.status));
    }
    let model = first_model(&m.body).ok_or_else(|| format!("/v1/models lists no model: {}", m.body.chars().take(200).collect::<String>()))?;
    one_token(addr, &model, Duration::from_secs(120))?;
    Ok(model)
}

/// A 1-token completion for `model` that must answer within `timeout` (readiness and liveness).
pub(crate) fn one_token(addr: SocketAddr, model: &str, timeout: Duration) -> Result<(), String> {
    let req = serde_json::json!({ "model": model, "prompt": "ping", "max_tokens": 1 }).to_string();
    let c = http::post_json(addr, "/v1/completions", &req, timeout).map_err(|e| format!("/v1/completions: {e}"))?;
    if c.status != 200 {
        return Err(format!("/v1/completions: HTTP {}: {}", c.status, c.body.chars().take(200).collect::<String>()));
    }
    let v: serde_json::Value = serde_json::from_str(&c.body).map_err(|e| format!("/v1/completions: not JSON ({e})"))?;
    if v["choices"].as_array().is_none_or(|a| a.is_empty()) {
        return Err("/v1/completions: no choices in the answer".into());
    }
    Ok(())
}

fn first_model(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["data"].as_array()?.first()?["id"].as_str().map(str::to_owned)
}

/// Probes every second until ready or `timeout`; the error names the step that never passed.
pub(crate) fn wait(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match probe_once(addr) {
            Ok(m) => return Ok(m),
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            return Err(format!("the model did not answer within {:.0?}; last probe: {last}", timeout));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Status {
    pub node: String,
    pub role: String,
    /// preflight, rendezvous, cluster, starting, ready, stopping
    pub state: String,
    pub detail: String,
    /// API address to re-probe in `healthcheck` (head only).
    pub api: Option<String>,
    /// Consecutive failed liveness looks after ready (head only); `healthcheck` is unhealthy
    /// from the first, the group stops at the configured count.
    #[serde(default)]
    pub liveness_failures: u32,
    /// Group restarts used in the budget's window, and the budget.
    #[serde(default)]
    pub restarts_used: u32,
    #[serde(default)]
    pub restart_budget: u32,
}

/// Writes the status file atomically (temp file + rename).
pub(crate) fn write_status(path: &Path, st: &Status) -> std::io::Result<()> {
    crate::fsutil::write_atomic(path, &(serde_json::to_string(st).map_err(std::io::Error::other)? + "\n"))
}

/// `spark-entrypoint healthcheck`: 0 when the status file says ready, the last liveness look
/// passed and, on the head, the API still answers `/health`; 1 otherwise, with one line saying
/// why. (`/health` alone stays 200 while a hung engine answers nothing.)
pub(crate) fn healthcheck(path: &Path) -> i32 {
    let st: Status = match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string())) {
        Ok(s) => s,
        Err(e) => {
            println!("unhealthy: cannot read `{}`: {e}", path.display());
            return 1;
        }
    };
    if st.state != "ready" {
        println!("unhealthy: {} is in state `{}` ({})", st.node, st.state, st.detail);
        return 1;
    }
    if st.liveness_failures > 0 {
        println!("unhealthy: {} engine did not answer its last {} liveness look(s) ({})", st.node, st.liveness_failures, st.detail);
        return 1;
    }
    if let Some(api) = st.api.as_deref().and_then(|a| a.parse::<SocketAddr>().ok()) {
        match http::get(api, "/health", Duration::from_secs(5)) {
            Ok(r) if r.status == 200 => {}
            Ok(r) => {
                println!("unhealthy: {api}/health answers HTTP {}", r.status);
                return 1;
            }
            Err(e) => {
                println!("unhealthy: {api}/health: {e}");
                return 1;
            }
        }
    }
    println!("healthy: {} ready ({})", st.node, st.detail);
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_id_from_a_models_listing() {
        assert_eq!(first_model(r#"{"object":"list","data":[{"id":"Qwen/Qwen3-VL-235B","object":"model"}]}"#).as_deref(), Some("Qwen/Qwen3-VL-235B"));
        assert_eq!(first_model(r#"{"data":[]}"#), None);
    }

    #[test]
    fn healthcheck_follows_the_status_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s/status.json");
        assert_eq!(healthcheck(&p), 1, "no file yet");
        let mut st = Status { node: "a".into(), role: "worker".into(), state: "rendezvous".into(), detail: "waiting".into(), ..Status::default() };
        write_status(&p, &st).unwrap();
        assert_eq!(healthcheck(&p), 1);
        st.state = "ready".into();
        write_status(&p, &st).unwrap();
        assert_eq!(healthcheck(&p), 0);
        // Ready, but the engine stopped answering liveness looks: unhealthy at once.
        st.liveness_failures = 1;
        write_status(&p, &st).unwrap();
        assert_eq!(healthcheck(&p), 1);
        st.liveness_failures = 0;
        // Ready in the file but the API is gone: unhealthy.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        st.api = Some(l.local_addr().unwrap().to_string());
        drop(l);
        write_status(&p, &st).unwrap();
        assert_eq!(healthcheck(&p), 1);
    }
}
