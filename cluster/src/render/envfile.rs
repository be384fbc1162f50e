//! The container's env file, in the format `docker run --env-file` reads: `KEY=VALUE` per line,
//! taken literally (no quotes are removed), `#` comments. Values never span lines (validated).

use crate::plan::NodePlan;
use std::fmt::Write;

pub fn render(header: &[String], plan: &NodePlan) -> String {
    let mut out = String::new();
    for line in header {
        let _ = writeln!(out, "# {line}");
    }
    out.push_str("# SPARK_CLUSTER_TOKEN is not here: it comes from the token file (see docs/cluster.md).\n");
    for (key, value) in &plan.env {
        let _ = writeln!(out, "{key}={value}");
    }
    out
}
