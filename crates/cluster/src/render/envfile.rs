//! The container's env file, in the format `docker run --env-file` reads: `KEY=VALUE` per line,
//! taken literally (no quotes are removed), `#` comments. Values never span lines (validated).

use crate::plan::NodePlan;
use std::fmt::Write;

pub(super) fn render(header: &[String], plan: &NodePlan) -> String {
    let mut out = String::new();
    for line in header {
        let _ = writeln!(out, "# {line}");
    }
    out.push_str("# The cluster token is not here: the token file is mounted at SPARK_TOKEN_FILE (docs/cluster.md).\n");
    for (key, value) in &plan.env {
        let _ = writeln!(out, "{key}={value}");
    }
    out
}
