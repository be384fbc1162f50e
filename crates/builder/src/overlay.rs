//! Overlays (`overlays/<name>/overlay.toml` + `rootfs/`): one overlay is one layer. The format is
//! documented in `docs/recipes.md`.

use crate::error::{Error, IoContext, Result};
use crate::platform::Platform;
use crate::recipe::{parse_env, parse_platform, parse_platforms_at};
use crate::tree;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use toml_schema::Value;

#[derive(Debug, Clone)]
/// An overlay: a folder with `overlay.toml` and the `rootfs/` tree it adds to the image.
pub struct Overlay {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) description: String,
    /// `None`: every kept platform.
    pub(crate) platforms: Option<Vec<Platform>>,
    /// Image paths (relative, normalised) to delete with whiteouts.
    pub(crate) delete: Vec<String>,
    pub(crate) parents: bool,
    /// Environment variables the overlay sets, in order.
    pub env: Vec<(String, String)>,
    /// Image path (relative, normalised) → mode bits.
    pub(crate) modes: BTreeMap<String, u32>,
    pub(crate) artifacts: Vec<Artifact>,
    /// `[python]`: the layer is the locked Python packages, one per platform (`python`).
    pub(crate) python: Option<crate::python::PythonSpec>,
}

/// A file supplied at build time per platform (the entrypoint binary), not kept in the tree.
#[derive(Debug, Clone)]
pub(crate) struct Artifact {
    pub(crate) path: String,
    pub(crate) mode: u32,
    pub(crate) elf: bool,
    /// Platform string → source file (absolute, or relative to the overlay dir).
    pub(crate) sources: BTreeMap<String, PathBuf>,
}

const KEYS: &[&str] = &["description", "platforms", "delete", "parents", "env", "modes", "artifact", "python"];
const ARTIFACT_KEYS: &[&str] = &["path", "mode", "elf", "sources"];

impl Overlay {
    /// Loads `overlays_dir/<name>`; an unknown name lists the overlays that exist.
    pub fn load(overlays_dir: &Path, name: &str, recipe_file: &str) -> Result<Overlay> {
        let dir = overlays_dir.join(name);
        let toml_path = dir.join("overlay.toml");
        if !toml_path.is_file() {
            let mut names: Vec<String> = std::fs::read_dir(overlays_dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter(|e| e.path().join("overlay.toml").is_file())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let hint = match toml_schema::closest(name, refs.iter().copied()) {
                Some(c) => format!("did you mean `{c}`?"),
                None if !overlays_dir.is_dir() => format!(
                    "the overlays folder `{}` does not exist; pass `--overlays DIR` naming the folder that holds `{name}/overlay.toml` (default: overlays/ beside the recipe's folder)",
                    overlays_dir.display()
                ),
                None if names.is_empty() => format!("`{}` holds no overlays (no `*/overlay.toml`); pass `--overlays DIR` naming the folder that does", overlays_dir.display()),
                None => format!("available: {}", names.join(", ")),
            };
            return Err(Error::input(recipe_file, format!("unknown overlay `{name}` (no `{}`)", toml_path.display()), Some(hint)));
        }
        let text = std::fs::read_to_string(&toml_path).io_ctx("reading overlay", &toml_path)?;
        Overlay::parse(name, &dir, &text)
    }

    /// Reads overlay `name` in `dir` from the text of its `overlay.toml`.
    pub fn parse(name: &str, dir: &Path, text: &str) -> Result<Overlay> {
        let file = dir.join("overlay.toml").display().to_string();
        let toml = |e| Error::toml(&file, e);
        let doc = toml_schema::parse(text).map_err(toml)?;
        let t = doc.root();
        t.check_keys(KEYS).map_err(toml)?;
        let description = t.get("description").map(|v| Error::typed(&file, "description must be a string", &v)).transpose()?.unwrap_or_default();
        let platforms = t.get("platforms").map(|v| parse_platforms_at(&file, "platforms", &v)).transpose()?;
        let mut delete = Vec::new();
        if let Some(v) = t.get("delete") {
            let list: Vec<String> = Error::typed(&file, "delete must be a list of absolute image paths", &v)?;
            for (p, item) in list.iter().zip(v.as_array().unwrap_or_default()) {
                delete.push(image_path(&file, "delete", p).map_err(|e| e.at(item.line()))?);
            }
        }
        let parents = t.get("parents").map(|v| Error::typed(&file, "parents must be true or false", &v)).transpose()?.unwrap_or(false);
        let env = t.get("env").map(|v| parse_env(&file, "env", &v)).transpose()?.unwrap_or_default();
        let mut modes = BTreeMap::new();
        if let Some(v) = t.get("modes") {
            let mt = v.as_table().ok_or_else(|| Error::input_at(&file, v.line(), "modes must be a table of \"/image/path\" = 0o755", None))?;
            for (p, m) in mt.entries() {
                modes.insert(image_path(&file, "modes", p).map_err(|e| e.at(m.line()))?, mode(&file, &format!("modes.\"{p}\""), &m)?);
            }
        }
        let mut artifacts = Vec::new();
        if let Some(v) = t.get("artifact") {
            let list = v.as_array().ok_or_else(|| Error::input_at(&file, v.line(), "use [[artifact]] tables for artifacts", None))?;
            for a in list {
                let at = a.as_table().ok_or_else(|| Error::input_at(&file, a.line(), "use [[artifact]] tables for artifacts", None))?;
                at.check_keys(ARTIFACT_KEYS).map_err(toml)?;
                let path = at
                    .get("path")
                    .ok_or_else(|| Error::input_at(&file, at.line(), "artifact without `path`", Some("add `path = \"/usr/local/bin/NAME\"`".into())))?;
                let path = image_path(&file, "artifact.path", &Error::typed::<String>(&file, "artifact.path must be a string", &path)?)
                    .map_err(|e| e.at(path.line()))?;
                let mode = at.get("mode").map(|m| mode(&file, "artifact.mode", &m)).transpose()?.unwrap_or(0o755);
                let elf = at.get("elf").map(|v| Error::typed(&file, "artifact.elf must be true or false", &v)).transpose()?.unwrap_or(false);
                let mut sources = BTreeMap::new();
                if let Some(s) = at.get("sources") {
                    let st =
                        s.as_table().ok_or_else(|| Error::input_at(&file, s.line(), "artifact.sources must be a table of \"linux/amd64\" = \"path\"", None))?;
                    for (p, src) in st.entries() {
                        parse_platform(&file, "artifact.sources", p, Some(src.line()))?;
                        let src =
                            src.as_str().ok_or_else(|| Error::input_at(&file, src.line(), format!("artifact.sources.\"{p}\" must be a path string"), None))?;
                        sources.insert(p.to_owned(), dir.join(src));
                    }
                }
                artifacts.push(Artifact { path, mode, elf, sources });
            }
        }
        let python = t.get("python").map(|v| crate::python::PythonSpec::parse(&file, dir, &v)).transpose()?;
        if python.is_some() && (!artifacts.is_empty() || !delete.is_empty() || dir.join("rootfs").exists()) {
            return Err(Error::input_at(
                &file,
                t.get("python").map(|v| v.line()),
                "a [python] overlay holds only the locked packages",
                Some("put files, deletions and artifacts in another overlay".into()),
            ));
        }
        Ok(Overlay { name: name.to_owned(), dir: dir.to_owned(), description, platforms, delete, parents, env, modes, artifacts, python })
    }

    pub(crate) fn applies_to(&self, p: &Platform) -> bool {
        self.platforms.as_ref().is_none_or(|list| list.iter().any(|want| want.satisfied_by(p)))
    }

    pub(crate) fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

/// A mode written in octal: `"/etc/x" = 755` is a TOML decimal (mode 0o1363, with the sticky
/// bit), which the parsed integer cannot tell from 0o1363 but the text can.
fn mode(file: &str, key: &str, v: &Value<'_>) -> Result<u32> {
    let written = v.text();
    let digits = written.trim_start_matches(['+', '-']);
    match v.as_integer() {
        Some(m) if m > 7 && !digits.starts_with("0o") && !digits.starts_with("0x") && !digits.starts_with("0b") => Err(Error::input_at(
            file,
            v.line(),
            format!("{key} = {written} is a decimal number (mode {m:#o}); modes are octal"),
            Some(format!("write `0o{}`", digits.replace('_', ""))),
        )),
        Some(m) if (0..=0o7777).contains(&m) => Ok(m as u32),
        _ => Err(Error::input_at(file, v.line(), format!("{key} must be a mode like 0o755"), Some("TOML octal integers start with 0o".into()))),
    }
}

/// Normalises an absolute image path to its relative form (`/etc/nccl.conf` → `etc/nccl.conf`),
/// refusing `..`, `.` and the root itself.
pub fn image_path(file: &str, key: &str, p: &str) -> Result<String> {
    let path = Path::new(p);
    if !path.is_absolute() {
        return Err(Error::input(file, format!("{key}: `{p}` is not an absolute image path"), Some(format!("write `/{}`", p.trim_start_matches("./")))));
    }
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(s) => parts.push(s.to_str().ok_or_else(|| Error::input(file, format!("{key}: `{p}` is not UTF-8"), None))?),
            _ => return Err(Error::input(file, format!("{key}: `{p}` contains `.` or `..`"), Some("write the plain absolute path".into()))),
        }
    }
    if parts.is_empty() {
        return Err(Error::input(file, format!("{key}: `{p}` names the image root"), None));
    }
    // In a layer, `.wh.NAME` deletes NAME and `.wh..wh..opq` empties its folder: such a path
    // would be written as a deletion (an artifact), or name what no image can hold (a delete).
    if let Some(i) = parts.iter().position(|s| tree::is_whiteout_name(s)) {
        let hint = match parts[i].strip_prefix(".wh.").filter(|rest| !rest.is_empty() && !rest.starts_with(".wh.")) {
            Some(rest) if key == "delete" => format!("to delete `/{0}`, write `delete = [\"/{0}\"]`", [&parts[..i], &[rest]].concat().join("/")),
            _ if key == "delete" => "list the path itself, e.g. `delete = [\"/etc/nccl.conf\"]`".to_owned(),
            _ => "to delete a path of the base, list it in an overlay's `delete = [\"/path\"]`; otherwise choose another name".to_owned(),
        };
        return Err(Error::input(
            file,
            format!("{key}: `{p}` has a part starting with `.wh.`, an OCI whiteout name (it deletes a path in a layer)"),
            Some(hint),
        ));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Overlay::parse("x", Path::new("overlays/x"), text).unwrap_err().to_string()
    }

    #[test]
    fn env_is_in_name_order_whatever_the_file_order() {
        let parse = |text: &str| Overlay::parse("x", Path::new("overlays/x"), text).unwrap().env;
        let written = parse("description = \"d\"\n[env]\nNCCL_NET_PLUGIN = \"none\"\nB = \"2\"\nA = \"1\"\n");
        let sorted = parse("description = \"d\"\n[env]\nA = \"1\"\nB = \"2\"\nNCCL_NET_PLUGIN = \"none\"\n");
        let names: Vec<&str> = written.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["A", "B", "NCCL_NET_PLUGIN"]);
        assert_eq!(written, sorted);
    }

    #[test]
    fn parses_everything() {
        let o = Overlay::parse(
            "x",
            Path::new("overlays/x"),
            "description = \"d\"\nplatforms = [\"linux/arm64\"]\ndelete = [\"/etc/nccl.conf\"]\n[env]\nA = \"1\"\n[modes]\n\"/usr/bin/t\" = 0o700\n[[artifact]]\npath = \"/usr/local/bin/e\"\nelf = true\n[artifact.sources]\n\"linux/arm64\" = \"bin/e\"\n",
        )
        .unwrap();
        assert_eq!(o.delete, vec!["etc/nccl.conf"]);
        assert_eq!(o.modes["usr/bin/t"], 0o700);
        assert_eq!(o.artifacts[0].path, "usr/local/bin/e");
        assert_eq!(o.artifacts[0].mode, 0o755);
        assert!(o.applies_to(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(!o.applies_to(&Platform::parse("linux/amd64").unwrap()));
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/recipes.md")).unwrap();
        let block = doc.split("```toml\n").nth(2).unwrap().split("```").next().unwrap();
        let o = Overlay::parse("x", Path::new("overlays/x"), block).unwrap();
        assert_eq!(o.delete, vec!["etc/nccl.conf"]);
        assert_eq!(o.artifacts[0].sources.len(), 1);
    }

    #[test]
    fn decimal_modes_are_refused_with_the_octal_spelling() {
        let e = err("[modes]\n\"/etc/x\" = 755");
        assert!(e.contains("modes.\"/etc/x\" = 755 is a decimal number (mode 0o1363)") && e.contains("write `0o755`"), "{e}");
        for (text, key) in [
            ("[modes]\n\"/a\" = 644", "modes.\"/a\" = 644"),
            ("[modes]\n\"/a\" = +700", "modes.\"/a\" = +700"),
            ("[modes]\n\"/a\" = 4_755", "modes.\"/a\" = 4_755"),
            ("[[artifact]]\npath = \"/x\"\nmode = 755", "artifact.mode = 755"),
        ] {
            assert!(err(text).contains(key), "{text}: {}", err(text));
        }
        // Octal, hex and binary spellings are what they say; 0..=7 mean the same either way.
        for ok in ["0o755", "0x1ed", "0b111101101", "0", "7"] {
            Overlay::parse("x", Path::new("overlays/x"), &format!("[modes]\n\"/a\" = {ok}")).unwrap();
        }
    }

    #[test]
    fn bad_values_are_named() {
        assert!(err("delet = []").contains("did you mean `delete`?"));
        assert!(
            err("description = \"x\"\n[env]\nA = 1 2\n").contains("overlay.toml line 3: not valid TOML at column 7"),
            "{}",
            err("description = \"x\"\n[env]\nA = 1 2\n")
        );
        assert!(err("delete = [\"etc/nccl.conf\"]").contains("not an absolute image path"));
        assert!(err("delete = [\"/etc/../x\"]").contains("`.` or `..`"));
        assert!(err("delete = [\"/\"]").contains("image root"));
        let e = err("delete = [\"/etc/.wh.nccl.conf\"]");
        assert!(e.contains("delete: `/etc/.wh.nccl.conf` has a part starting with `.wh.`") && e.contains("write `delete = [\"/etc/nccl.conf\"]`"), "{e}");
        let e = err("delete = [\"/usr/.wh..wh..opq\"]");
        assert!(e.contains("`.wh.`") && e.contains("list the path itself"), "{e}");
        let e = err("[[artifact]]\npath = \"/usr/.wh.bin/tool\"");
        assert!(e.contains("artifact.path: `/usr/.wh.bin/tool`") && e.contains("`delete = [\"/path\"]`"), "{e}");
        assert!(err("[modes]\n\"/.wh.x\" = 0o600").contains("modes: `/.wh.x` has a part starting with `.wh.`"));
        // `.wh` without the dot after it is an ordinary name.
        Overlay::parse("x", Path::new("overlays/x"), "delete = [\"/etc/.whatever\", \"/etc/x.wh.y\"]").unwrap();
        assert!(err("[modes]\n\"/x\" = 0o77777").contains("mode like 0o755"));
        assert!(err("[[artifact]]\nmode = 0o755").contains("artifact without `path`"));
        assert!(err("[[artifact]]\npath = \"/x\"\n[artifact.sources]\n\"arm64\" = \"y\"").contains("not a platform"));
    }

    #[test]
    fn errors_name_the_line() {
        for (text, want) in [
            ("description = \"d\"\n\ndelet = []\n", "overlay.toml line 3: unknown key `delet` (hint: did you mean `delete`?)"),
            ("description = \"d\"\nparents = 1\n", "overlay.toml line 2: parents must be true or false"),
            ("[modes]\n\"/a\" = 0o644\n\"/b\" = 755\n", "overlay.toml line 3: modes.\"/b\" = 755 is a decimal number"),
            ("delete = [\n  \"/a\",\n  \"b\",\n]\n", "overlay.toml line 3: delete: `b` is not an absolute image path"),
            ("[[artifact]]\npath = \"/x\"\n[[artifact]]\npath = \"/y\"\nelf = \"no\"\n", "overlay.toml line 5: artifact.elf must be true or false"),
            ("[[artifact]]\npath = \"/x\"\n[[artifact]]\npth = \"/y\"\n", "overlay.toml line 4: unknown key `pth` in [artifact]"),
        ] {
            let e = err(text);
            assert!(e.starts_with("overlays/x/") && e.contains(want), "{text}: {e}");
        }
    }
}
