//! Image recipes (`images/<name>.toml`): which base, which platforms, which overlays, and the
//! config edits. The format is documented in `docs/recipes.md`.

use crate::error::{Error, IoContext, Result};
use crate::platform::Platform;
use crate::reference::ImageRef;
use std::path::{Path, PathBuf};
use toml_schema::{Table, Value};

#[derive(Debug, Clone)]
/// An image recipe (`images/X.toml`): the base, the platforms, the overlays and the config edits.
pub struct Recipe {
    pub(crate) file: PathBuf,
    /// The base image reference, as written.
    pub base: String,
    /// The platforms kept.
    pub platforms: Vec<Platform>,
    /// Keep index entries of other platforms verbatim instead of dropping them.
    pub keep_other_platforms: bool,
    /// The overlays, by name, in the order they are applied.
    pub overlays: Vec<String>,
    /// The config edits.
    pub config: ConfigEdits,
    /// `base.python`: the `X.Y` of the base's Python, for bases that do not say it in their config
    /// (NGC's set no `PYTHON_VERSION`); `[python]` overlays must target it.
    pub(crate) base_python: Option<String>,
}

/// Edits to the image config, applied after the overlays' env.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigEdits {
    /// Environment variables set, in order.
    pub env: Vec<(String, String)>,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) cmd: Option<Vec<String>>,
    pub(crate) working_dir: Option<String>,
    pub(crate) user: Option<String>,
    /// Labels set, in order.
    pub labels: Vec<(String, String)>,
    pub(crate) stop_signal: Option<String>,
    /// Docker's `Healthcheck` (OCI has none; Docker and Podman read it from the config).
    pub(crate) healthcheck: Option<Healthcheck>,
}

/// `[config.healthcheck]`: what `HEALTHCHECK CMD …` writes, with durations in seconds.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Healthcheck {
    /// Exec form, without the leading `CMD`.
    pub(crate) cmd: Vec<String>,
    pub(crate) interval_s: Option<u64>,
    pub(crate) timeout_s: Option<u64>,
    pub(crate) start_period_s: Option<u64>,
    pub(crate) retries: Option<u64>,
}

const TOP_KEYS: &[&str] = &["overlays", "base", "config"];
const BASE_KEYS: &[&str] = &["ref", "platforms", "keep_other_platforms", "python"];
const CONFIG_KEYS: &[&str] = &["env", "entrypoint", "cmd", "working_dir", "user", "labels", "stop_signal", "healthcheck"];
const HEALTHCHECK_KEYS: &[&str] = &["cmd", "interval_s", "timeout_s", "start_period_s", "retries"];

impl Recipe {
    /// Reads and parses the recipe at `path`.
    pub fn load(path: &Path) -> Result<Recipe> {
        let text = std::fs::read_to_string(path).io_ctx("reading recipe", path)?;
        Recipe::parse(&text, path)
    }

    /// Parses the text of the recipe at `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Recipe> {
        let file = path.display().to_string();
        let toml = |e| Error::toml(&file, e);
        let doc = toml_schema::parse(text).map_err(toml)?;
        let table = doc.root();
        table.check_keys(TOP_KEYS).map_err(toml)?;

        let mut overlays: Vec<String> = Vec::new();
        if let Some(v) = table.get("overlays") {
            let names: Vec<String> = Error::typed(&file, "`overlays` must be a list of overlay names", &v)?;
            let items = v.as_array().unwrap_or_default();
            for (o, item) in names.into_iter().zip(items) {
                if o.is_empty() || o.contains('/') || o.starts_with('.') {
                    return Err(Error::input_at(&file, item.line(), format!("overlay name `{o}` is not a folder name under overlays/"), None));
                }
                if overlays.contains(&o) {
                    return Err(Error::input_at(
                        &file,
                        item.line(),
                        format!("overlay `{o}` is listed twice"),
                        Some("each overlay is one layer; list it once".into()),
                    ));
                }
                overlays.push(o);
            }
        }

        let base = table.get("base").and_then(|b| b.as_table()).ok_or_else(|| {
            Error::input(&file, "missing [base] table", Some("add `[base]` with `ref = \"oci:DIR:TAG\"` and `platforms = [\"linux/arm64\"]`".into()))
        })?;
        base.check_keys(BASE_KEYS).map_err(toml)?;
        let base_ref: String = match base.get("ref") {
            Some(v) => {
                let r: String = Error::typed(&file, "base.ref must be a string", &v)?;
                check_base_ref(&file, v.line(), &r)?;
                r
            }
            None => {
                return Err(Error::input_at(
                    &file,
                    base.line(),
                    "missing base.ref",
                    Some("e.g. `ref = \"docker://nvcr.io/nvidia/vllm:25.11-py3@sha256:…\"`".into()),
                ))
            }
        };
        let platforms = match base.get("platforms") {
            Some(v) => parse_platforms_at(&file, "base.platforms", &v)?,
            None => {
                return Err(Error::input_at(&file, base.line(), "missing base.platforms", Some("e.g. `platforms = [\"linux/arm64\", \"linux/amd64\"]`".into())))
            }
        };
        let keep_other_platforms = match base.get("keep_other_platforms") {
            Some(v) => Error::typed(&file, "base.keep_other_platforms must be true or false", &v)?,
            None => false,
        };

        let base_python = match base.get("python") {
            None => None,
            Some(v) => {
                let p: String = Error::typed(&file, "base.python must be a string like \"3.12\"", &v)?;
                if !crate::python::is_x_y(&p) {
                    return Err(Error::input_at(
                        &file,
                        v.line(),
                        format!("base.python `{p}` is not X.Y"),
                        Some("the base's Python as major.minor, e.g. `python = \"3.12\"`".into()),
                    ));
                }
                Some(p)
            }
        };

        let config = match table.get("config") {
            None => ConfigEdits::default(),
            Some(v) => {
                let t = v.as_table().ok_or_else(|| Error::input_at(&file, v.line(), "`config` must be a table", None))?;
                t.check_keys(CONFIG_KEYS).map_err(toml)?;
                parse_config(&file, &t)?
            }
        };
        Ok(Recipe { file: path.to_owned(), base: base_ref, platforms, keep_other_platforms, overlays, config, base_python })
    }

    /// `overlays/` next to the recipe's `images/` folder.
    pub fn default_overlay_dir(&self) -> PathBuf {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        dir.join("..").join("overlays")
    }
}

fn check_base_ref(file: &str, line: usize, r: &str) -> Result<()> {
    // A malformed reference or digest is named as such, not as "not pinned".
    let parsed = ImageRef::parse_explicit(r).map_err(|e| Error::input_at(file, line, format!("base.ref: {e}"), None))?;
    if let ImageRef::Registry(parsed) = parsed {
        if parsed.digest.is_none() {
            return Err(Error::input_at(
                file,
                line,
                format!("base.ref `{r}` is not pinned by digest"),
                Some("append `@sha256:<digest>` (see docs/image.md, refreshing the base pin)".into()),
            ));
        }
    }
    Ok(())
}

/// Reads a list of platforms such as `["linux/arm64"]` (`key` names it in errors).
pub(crate) fn parse_platforms_at(file: &str, key: &str, v: &Value<'_>) -> Result<Vec<Platform>> {
    let list: Vec<String> = Error::typed(file, &format!("{key} must be a list like [\"linux/arm64\"]"), v)?;
    let items = v.as_array().unwrap_or_default();
    platform_list(file, key, Some(v.line()), list.iter().zip(items).map(|(p, item)| (p.as_str(), Some(item.line()))))
}

/// Reads platforms given outside a file (`--platform`); `file` and `key` name them in errors.
pub fn parse_platforms(file: &str, key: &str, list: &[String]) -> Result<Vec<Platform>> {
    platform_list(file, key, None, list.iter().map(|p| (p.as_str(), None)))
}

/// Platforms with the line each is written on; `line` is that of the list.
fn platform_list<'a>(file: &str, key: &str, line: Option<usize>, list: impl Iterator<Item = (&'a str, Option<usize>)>) -> Result<Vec<Platform>> {
    let mut out: Vec<Platform> = Vec::new();
    for (p, line) in list {
        let platform = parse_platform(file, key, p, line)?;
        if out.contains(&platform) {
            return Err(Error::input_at(file, line, format!("{key}: `{p}` is listed twice"), None));
        }
        out.push(platform);
    }
    if out.is_empty() {
        return Err(Error::input_at(file, line, format!("{key} is empty"), Some("keep at least one platform, e.g. \"linux/arm64\"".into())));
    }
    Ok(out)
}

/// One platform `os/arch[/variant]`, written at `line` of `file`.
pub(crate) fn parse_platform(file: &str, key: &str, p: &str, line: Option<usize>) -> Result<Platform> {
    Platform::parse(p)
        .ok_or_else(|| Error::input_at(file, line, format!("{key}: `{p}` is not a platform"), Some("write `os/arch[/variant]`, e.g. `linux/arm64`".into())))
}

/// A valid environment variable name (POSIX portable set).
pub(crate) fn valid_env_name(k: &str) -> bool {
    !k.is_empty() && !k.starts_with(|c: char| c.is_ascii_digit()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads an `env` table of strings, checking names.
pub(crate) fn parse_env(file: &str, key: &str, v: &Value<'_>) -> Result<Vec<(String, String)>> {
    let t = v.as_table().ok_or_else(|| Error::input_at(file, v.line(), format!("`{key}` must be a table of NAME = \"value\""), None))?;
    let mut out = Vec::new();
    for (k, val) in t.entries() {
        if !valid_env_name(k) {
            return Err(Error::input_at(
                file,
                val.line(),
                format!("{key}: `{k}` is not a valid variable name"),
                Some("use letters, digits and `_`, not starting with a digit".into()),
            ));
        }
        let s = val
            .as_str()
            .ok_or_else(|| Error::input_at(file, val.line(), format!("{key}.{k} must be a string"), Some(format!("quote it: {k} = \"{}\"", val.text()))))?;
        out.push((k.to_owned(), s.to_owned()));
    }
    // By name, whatever order the file writes them in: the config's `Env` (and so the image's
    // digest) must not change when someone reorders the table.
    out.sort();
    Ok(out)
}

fn parse_config(file: &str, t: &Table<'_>) -> Result<ConfigEdits> {
    let strings = |key: &str| -> Result<Option<Vec<String>>> {
        t.get(key).map(|v| Error::typed(file, &format!("config.{key} must be a list of strings (exec form)"), &v)).transpose()
    };
    let string = |key: &str| -> Result<Option<String>> { t.get(key).map(|v| Error::typed(file, &format!("config.{key} must be a string"), &v)).transpose() };
    let env = t.get("env").map(|v| parse_env(file, "config.env", &v)).transpose()?.unwrap_or_default();
    let labels = match t.get("labels") {
        None => Vec::new(),
        Some(v) => {
            let lt = v.as_table().ok_or_else(|| Error::input_at(file, v.line(), "config.labels must be a table of \"key\" = \"value\"", None))?;
            lt.entries()
                .into_iter()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|s| (k.to_owned(), s.to_owned()))
                        .ok_or_else(|| Error::input_at(file, v.line(), format!("config.labels.\"{k}\" must be a string"), None))
                })
                .collect::<Result<_>>()?
        }
    };
    let working_dir = string("working_dir")?;
    if let (Some(w), Some(v)) = (&working_dir, t.get("working_dir")) {
        if !w.starts_with('/') {
            return Err(Error::input_at(
                file,
                v.line(),
                format!("config.working_dir `{w}` is not absolute"),
                Some("write an absolute path such as `/workspace`".into()),
            ));
        }
    }
    let healthcheck = match t.get("healthcheck") {
        None => None,
        Some(v) => {
            let ht = v.as_table().ok_or_else(|| {
                Error::input_at(
                    file,
                    v.line(),
                    "config.healthcheck must be a table",
                    Some("e.g. `[config.healthcheck]` with `cmd = [\"/usr/local/bin/spark-entrypoint\", \"healthcheck\"]`".into()),
                )
            })?;
            ht.check_keys(HEALTHCHECK_KEYS).map_err(|e| Error::toml(file, e))?;
            let h: Healthcheck = Error::typed(file, "config.healthcheck: cmd is a list of strings, the durations whole seconds", &v)?;
            if h.cmd.is_empty() {
                let line = ht.get("cmd").map_or(ht.line(), |c| c.line());
                return Err(Error::input_at(file, line, "config.healthcheck.cmd is empty", Some("give the command in exec form".into())));
            }
            Some(h)
        }
    };
    Ok(ConfigEdits {
        env,
        entrypoint: strings("entrypoint")?,
        cmd: strings("cmd")?,
        working_dir,
        user: string("user")?,
        labels,
        stop_signal: string("stop_signal")?,
        healthcheck,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Recipe::parse(text, Path::new("images/x.toml")).unwrap_err().to_string()
    }

    const OK: &str = "overlays = [\"a\"]\n[base]\nref = \"oci:base:v1\"\nplatforms = [\"linux/arm64\"]\n";

    #[test]
    fn parses_a_minimal_recipe() {
        let r = Recipe::parse(OK, Path::new("images/x.toml")).unwrap();
        assert_eq!(r.overlays, vec!["a"]);
        assert_eq!(r.platforms[0].to_string(), "linux/arm64");
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/recipes.md")).unwrap();
        let block = doc.split("```toml\n").nth(1).unwrap().split("```").next().unwrap();
        let r = Recipe::parse(&block.replace("<64 hex>", &"0".repeat(64)), Path::new("docs/recipes.md")).unwrap();
        assert_eq!(r.overlays.len(), 3);
        assert_eq!(r.config.healthcheck.as_ref().unwrap().start_period_s, Some(1200));
        assert_eq!(r.config.labels.len(), 1);
    }

    #[test]
    fn errors_name_file_key_and_fix() {
        let e = err("[base]\nref = \"oci:b\"\nplaforms = [\"linux/arm64\"]\n");
        assert!(e.starts_with("images/x.toml line 3: unknown key `plaforms` in [base]") && e.contains("did you mean `platforms`?"), "{e}");
        let e = err(&format!("{OK}[config]\nentrypiont = [\"/x\"]\n"));
        assert!(e.contains("`entrypiont`") && e.contains("`entrypoint`"), "{e}");
        assert!(err("[base]\nref = \"docker://nvcr.io/nvidia/vllm:25.11-py3\"\nplatforms = [\"linux/arm64\"]\n").contains("not pinned by digest"));
        assert!(err("[base]\nref = \"oci:b:b\"\nplatforms = [\"linux/arm64\"]\npython = \"3\"\n").contains("base.python `3` is not X.Y"));
        assert!(err("[base]\nref = \"oci:b:b\"\nplatforms = [\"linux/arm64\"]\npython = 3.12\n").contains("base.python must be a string"));
        assert!(err("[base]\nref = \"oci:b\"\nplatforms = [\"linux-arm64\"]\n").contains("`linux-arm64` is not a platform"));
        assert!(err("[base]\nref = \"oci:b\"\nplatforms = []\n").contains("base.platforms is empty"));
        assert!(err(&format!("{OK}[config]\nenv = {{ \"1X\" = \"a\" }}\n")).contains("`1X` is not a valid variable name"));
        assert!(err(&format!("{OK}[config]\nenv = {{ X = 1 }}\n")).contains("config.env.X must be a string"));
        assert!(err(&format!("{OK}[config]\nentrypoint = \"/bin/sh -c x\"\n")).contains("exec form"));
        assert!(err(&format!("{OK}[config]\nworking_dir = \"app\"\n")).contains("not absolute"));
        assert!(err("overlays = [\"a\", \"a\"]\n[base]\nref = \"oci:b\"\nplatforms = [\"linux/arm64\"]\n").contains("listed twice"));
        assert!(err("[base\n").contains("not valid TOML"));
        let e = err("overlays = []\n[base]\nref = oci:x\n");
        assert!(e.starts_with("images/x.toml line 3: not valid TOML at column 7: "), "{e}");
        let bad_digest = err("[base]\nref = \"docker://nvcr.io/nvidia/vllm:25.11-py3@sha256:abc\"\nplatforms = [\"linux/arm64\"]\n");
        assert!(bad_digest.contains("invalid digest `sha256:abc`") && !bad_digest.contains("not pinned"), "{bad_digest}");
        let e = err("[base]\nref = \"oci-archve:base.tar\"\nplatforms = [\"linux/arm64\"]\n");
        assert!(e.contains("did you mean `oci-archive:base.tar`?"), "{e}");
        assert!(err(&format!("{OK}[config.healthcheck]\ncmd = [\"x\"]\ninterval = 3\n")).contains("did you mean `interval_s`?"));
        assert!(err(&format!("{OK}[config.healthcheck]\ncmd = []\n")).contains("healthcheck.cmd is empty"));
        assert!(err("overlays = []\n").contains("missing [base]"));
    }

    #[test]
    fn errors_name_the_line() {
        for (text, want) in [
            // An unknown key, a wrong type, a bad value, each on line 4 (or in the list from line 3).
            ("overlays = []\n[base]\nref = \"oci:b\"\nplaforms = [\"linux/arm64\"]\n", "images/x.toml line 4: unknown key `plaforms` in [base]"),
            (
                "[base]\nref = \"oci:b\"\nplatforms = [\"linux/arm64\"]\nkeep_other_platforms = \"yes\"\n",
                "images/x.toml line 4: base.keep_other_platforms must be true or false",
            ),
            (
                "[base]\nref = \"oci:b\"\nplatforms = [\n  \"linux/arm64\",\n  \"linux-amd64\",\n]\n",
                "images/x.toml line 5: base.platforms: `linux-amd64` is not a platform",
            ),
            (&format!("{OK}[config.healthcheck]\ncmd = [\"x\"]\nretries = \"3\"\n"), "images/x.toml line 7: config.healthcheck: cmd is a list"),
            (&format!("{OK}[config]\nenv = {{ A = \"1\", B = 2 }}\n"), "images/x.toml line 6: config.env.B must be a string"),
            ("overlays = [\"a\",\n \"a\"]\n[base]\nref = \"oci:b\"\nplatforms = [\"linux/arm64\"]\n", "images/x.toml line 2: overlay `a` is listed twice"),
        ] {
            let e = err(text);
            assert!(e.starts_with(want), "{text}: {e}");
        }
    }
}
