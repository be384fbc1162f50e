//! Unknown-key checks for TOML files, with a did-you-mean hint: serde's `deny_unknown_fields`
//! names the key but not the closest valid one, and users mostly mistype.

use crate::error::{Error, Result};

/// Fails on the first key of `table` not in `allowed`, naming the file, the table and the closest key.
pub fn check(file: &str, table_name: &str, table: &toml::Table, allowed: &[&str]) -> Result<()> {
    for key in table.keys() {
        if !allowed.contains(&key.as_str()) {
            let place = if table_name.is_empty() { format!("unknown key `{key}`") } else { format!("unknown key `{key}` in [{table_name}]") };
            let hint = match closest(key, allowed) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("valid keys: {}", allowed.join(", ")),
            };
            return Err(Error::input(file, place, Some(hint)));
        }
    }
    Ok(())
}

/// The allowed name nearest to `key`, if it is near enough to be a typo.
pub fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    // Edit distance catches typos (`plaforms`); Jaro-Winkler catches abbreviations (`workdir`).
    allowed
        .iter()
        .filter(|a| strsim::damerau_levenshtein(key, a) <= 2.max(a.len() / 3) || strsim::jaro_winkler(key, a) >= 0.85)
        .max_by(|a, b| strsim::jaro_winkler(key, a).total_cmp(&strsim::jaro_winkler(key, b)))
        .copied()
}

/// A TOML syntax error as one line with its line and column (1-based), counted from the
/// error's byte offset: toml's own message spans several lines with a caret picture.
pub fn syntax_error(file: &str, text: &str, e: &toml::de::Error) -> Error {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    let place = e
        .span()
        .map(|s| {
            let before = text.get(..s.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!(" at line {line}, column {column}")
        })
        .unwrap_or_default();
    Error::input(file, format!("not valid TOML{place}: {message}"), None)
}

/// Deserialises a checked TOML value into `T`, turning serde's type errors into input errors.
pub fn typed<T: serde::de::DeserializeOwned>(file: &str, what: &str, value: toml::Value) -> Result<T> {
    value.try_into().map_err(|e: toml::de::Error| Error::input(file, format!("{what}: {}", e.message().trim()), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key() {
        assert_eq!(closest("plaforms", &["ref", "platforms"]), Some("platforms"));
        assert_eq!(closest("entrypiont", &["entrypoint", "cmd", "env"]), Some("entrypoint"));
        assert_eq!(closest("workdir", &["env", "working_dir", "user"]), Some("working_dir"));
        assert_eq!(closest("zzzzzz", &["ref", "platforms"]), None);
    }
}
