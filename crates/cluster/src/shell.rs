//! Quoting argument lists for the places they are written to: a POSIX shell command line (the
//! same rule as nixpkgs' `lib.escapeShellArg`, which the NixOS module uses for its command lines),
//! a systemd `ExecStart=` line, and the reverse split (POSIX words) tests read them back with.

/// Quotes one argument for `sh`: left alone when it only has `[[:alnum:],._+:@%/-]`, otherwise
/// single-quoted with `'` written as `'\''` (exactly nixpkgs' `escapeShellArg`).
pub fn quote(arg: &str) -> String {
    let safe = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || ",._+:@%/-".contains(c));
    if safe {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Quotes and joins a list, like nixpkgs' `escapeShellArgs`.
pub fn join<S: AsRef<str>>(args: &[S]) -> String {
    args.iter().map(|a| quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}

/// Splits a string written by [`join`] (or by a person, POSIX style: single and double quotes,
/// backslash escapes) back into words. `None` when a quote is left open.
pub fn split(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        ch => word.push(ch),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            ch @ ('"' | '\\' | '$' | '`') => word.push(ch),
                            ch => {
                                word.push('\\');
                                word.push(ch);
                            }
                        },
                        ch => word.push(ch),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            ch => {
                in_word = true;
                word.push(ch);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// Quotes one argument for a systemd `ExecStart=` line: `%` and `$` are doubled (systemd would
/// expand specifiers and variables), and anything with spaces, quotes, backslashes or `;` is put
/// in double quotes with C-style escapes.
pub(crate) fn systemd_quote(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty() && escaped != ";" && !escaped.chars().any(|c| c.is_whitespace() || "\"'\\".contains(c));
    if plain {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('\\', r"\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_leaves_safe_words_and_wraps_the_rest_like_nixpkgs() {
        assert_eq!(quote("--tensor-parallel-size"), "--tensor-parallel-size");
        assert_eq!(quote("QuantTrio/Qwen3-VL-235B-A22B-Instruct-AWQ"), "QuantTrio/Qwen3-VL-235B-A22B-Instruct-AWQ");
        assert_eq!(quote(r#"{"video":0}"#), r#"'{"video":0}'"#);
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn split_inverts_join() {
        let args = ["--limit-mm-per-prompt", r#"{"video": 0}"#, "it's", "", "a\\b", "$HOME"];
        assert_eq!(split(&join(&args)).unwrap(), args);
        assert_eq!(split(r#"a "b c" d\ e"#).unwrap(), ["a", "b c", "d e"]);
        assert_eq!(split("'open"), None);
    }

    #[test]
    fn systemd_quote_escapes_specifiers_and_variables() {
        assert_eq!(systemd_quote("--ulimit"), "--ulimit");
        assert_eq!(systemd_quote("50%"), "50%%");
        assert_eq!(systemd_quote("$HOME"), "$$HOME");
        assert_eq!(systemd_quote("a b"), "\"a b\"");
        assert_eq!(systemd_quote(r#"{"x":1}"#), r#""{\"x\":1}""#);
        assert_eq!(systemd_quote(";"), "\";\"");
    }
}
