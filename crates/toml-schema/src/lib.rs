//! Reading TOML files written by people (recipes, overlays, `cluster.toml`): [`parse`] keeps the
//! spans, and [`Table`] / [`Value`] walk the document knowing the key path
//! (`node[1].rail[0].address`) and the line of every key and value. An unknown key, a wrong type
//! or a value that does not convert is a structured [`Error`] naming both; each caller maps it
//! into its own error type and wording. [`closest`] is the one did-you-mean of the workspace.
//! No I/O, no environment, no printing.

#![warn(missing_docs, unreachable_pub)]

use serde::de::{DeserializeOwned, IntoDeserializer};
use std::ops::Range;
use toml_edit::{Item, TableLike};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
/// A problem with a document: its syntax, a key, a type or a value.
pub enum Error {
    /// Not TOML; `message` is one line, line and column are 1-based (the column in characters).
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// The 1-based line.
        line: usize,
        /// The 1-based column, in characters.
        column: usize,
        /// What the parser says, on one line.
        message: String,
    },

    /// `key` is not one of `allowed` in the table at `table` (empty for the top level).
    #[error("line {line}: unknown key `{path}`")]
    UnknownKey {
        /// The key's full path.
        path: String,
        /// The key.
        key: String,
        /// The path of the table it is in (empty for the top level).
        table: String,
        /// The 1-based line.
        line: usize,
        /// The allowed key closest to `key`, if any is near.
        suggestion: Option<String>,
        /// The keys the table allows.
        allowed: Box<[String]>,
    },

    /// The value at `path` has another type; `found` describes it (`string "9000"`, `a table`).
    #[error("line {line}: `{path}` must be {expected}, found {found}")]
    WrongType {
        /// The value's path.
        path: String,
        /// The 1-based line.
        line: usize,
        /// The type wanted (`a string`, `an integer`…).
        expected: String,
        /// What was found (`string "9000"`, `a table`).
        found: String,
    },

    /// The value at `path` does not deserialise into the wanted type; `message` is serde's.
    #[error("line {line}: `{path}`: {message}")]
    Deserialize {
        /// The value's path.
        path: String,
        /// The 1-based line of the offending part.
        line: usize,
        /// What serde says.
        message: String,
    },
}

impl Error {
    /// The 1-based line the error is about.
    pub fn line(&self) -> usize {
        match self {
            Error::Syntax { line, .. } | Error::UnknownKey { line, .. } | Error::WrongType { line, .. } | Error::Deserialize { line, .. } => *line,
        }
    }
}

/// The candidate closest to `input`, if it is near enough to be a typo: within an edit distance
/// of `max(2, len/3)` (`plaforms`, `ocii`) or at a Jaro-Winkler similarity of 0.8 or more
/// (`workdir`, `rdma_dev`); the most similar by Jaro-Winkler wins.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|&(similarity, c)| similarity >= 0.8 || strsim::damerau_levenshtein(input, c) <= 2.max(c.len() / 3))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A parsed document with its spans.
pub struct Document {
    doc: toml_edit::ImDocument<String>,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

/// Parses `text`, keeping the position of every key and value.
pub fn parse(text: &str) -> Result<Document, Error> {
    let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    match toml_edit::ImDocument::parse(text.to_owned()) {
        Ok(doc) => Ok(Document { doc, line_starts }),
        Err(e) => {
            let at = e.span().map_or(0, |s| s.start);
            let line = line_of_offset(&line_starts, at);
            let column = text.get(line_starts[line - 1]..at).map_or(1, |s| s.chars().count() + 1);
            let message = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
            Err(Error::Syntax { line, column, message })
        }
    }
}

fn line_of_offset(line_starts: &[usize], offset: usize) -> usize {
    line_starts.partition_point(|&start| start <= offset).max(1)
}

impl Document {
    /// The top-level table.
    pub fn root(&self) -> Table<'_> {
        Table { doc: self, path: String::new(), inner: self.doc.as_table(), line: 1 }
    }

    /// The line of the key at `path` (as the walker spells paths), for errors found after the walk.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        fn find(v: &Value<'_>, path: &str) -> Option<usize> {
            if v.path == path {
                return Some(v.line);
            }
            if !path.starts_with(v.path.as_str()) {
                return None;
            }
            let children = v.as_table().map(|t| t.entries().into_iter().map(|(_, v)| v).collect()).or_else(|| v.as_array()).unwrap_or_default();
            children.iter().find_map(|c| find(c, path))
        }
        self.root().entries().iter().find_map(|(_, v)| find(v, path))
    }

    /// The 1-based line of a byte offset of the text (for spans from other parsers of it).
    pub fn line_at(&self, offset: usize) -> usize {
        line_of_offset(&self.line_starts, offset)
    }

    fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        span.map(|s| line_of_offset(&self.line_starts, s.start))
    }

    fn text(&self, span: Option<Range<usize>>) -> Option<&str> {
        span.and_then(|s| self.doc.raw().get(s))
    }
}

/// `path.key`, quoting a key that is not bare (`modes."/etc/x"`).
fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare { key.to_owned() } else { format!("{key:?}") };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// A table of the document (a `[header]` table, an inline table, or one of `[[array]]`).
#[derive(Clone)]
pub struct Table<'a> {
    doc: &'a Document,
    path: String,
    inner: &'a dyn TableLike,
    line: usize,
}

impl<'a> Table<'a> {
    /// The key path, empty for the top level.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The line of the table's header or first key.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Fails on the first key (in file order) not in `allowed`.
    pub fn check_keys(&self, allowed: &[&str]) -> Result<(), Error> {
        for (key, value) in self.entries() {
            if !allowed.contains(&key) {
                return Err(Error::UnknownKey {
                    path: value.path,
                    key: key.to_owned(),
                    table: self.path.clone(),
                    line: value.key_line,
                    suggestion: closest(key, allowed.iter().copied()).map(str::to_owned),
                    allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
                });
            }
        }
        Ok(())
    }

    /// The value of `key`, if the table has it.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        let (k, item) = self.inner.get_key_value(key)?;
        Some(self.value(k, item))
    }

    /// The keys and values, in file order.
    pub fn entries(&self) -> Vec<(&'a str, Value<'a>)> {
        let inner: &'a dyn TableLike = self.inner;
        inner
            .iter()
            .filter(|(_, item)| !item.is_none())
            .filter_map(|(k, _)| inner.get_key_value(k))
            .map(|(key, item)| (key.get(), self.value(key, item)))
            .collect()
    }

    fn value(&self, key: &'a toml_edit::Key, item: &'a Item) -> Value<'a> {
        let key_line = self.doc.line(key.span()).unwrap_or(self.line);
        let node = Node::Item(item);
        let line = node.line(self.doc).unwrap_or(key_line);
        Value { doc: self.doc, path: join(&self.path, key.get()), node, line, key_line }
    }
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Value(&'a toml_edit::Value),
    Table(&'a toml_edit::Table),
}

impl<'a> Node<'a> {
    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
            Node::Table(t) => t.span(),
        }
    }

    /// The node's own line; an implicit table (`a` of `[a.b]`) has none, so the line of its first key.
    fn line(self, doc: &Document) -> Option<usize> {
        doc.line(self.span()).or_else(|| {
            let t = self.table_like()?;
            t.iter().find_map(|(k, _)| t.get_key_value(k)).and_then(|(k, i)| doc.line(k.span()).or_else(|| Node::Item(i).line(doc)))
        })
    }

    fn table_like(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(Item::Table(t)) | Node::Table(t) => Some(t),
            Node::Item(Item::Value(toml_edit::Value::InlineTable(t))) | Node::Value(toml_edit::Value::InlineTable(t)) => Some(t),
            _ => None,
        }
    }

    fn value(self) -> Option<&'a toml_edit::Value> {
        match self {
            Node::Item(Item::Value(v)) | Node::Value(v) => Some(v),
            _ => None,
        }
    }

    /// An owned copy as a plain value, for serde.
    fn to_value(self) -> Option<toml_edit::Value> {
        match self {
            Node::Item(Item::Value(v)) | Node::Value(v) => Some(v.clone()),
            Node::Item(Item::Table(t)) | Node::Table(t) => Some(toml_edit::Value::InlineTable(t.clone().into_inline_table())),
            Node::Item(Item::ArrayOfTables(a)) => Some(toml_edit::Value::Array(a.clone().into_array())),
            Node::Item(Item::None) => None,
        }
    }
}

/// A value of the document with its key path and line.
#[derive(Clone)]
pub struct Value<'a> {
    doc: &'a Document,
    path: String,
    node: Node<'a>,
    /// The line of the value (its first line).
    line: usize,
    /// The line of its key (the value's line for array items).
    key_line: usize,
}

impl<'a> Value<'a> {
    /// The value's key path (`node[1].rail[0].address`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The 1-based line of the value.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&'a str> {
        self.node.value().and_then(toml_edit::Value::as_str)
    }

    /// The value as an integer, if it is one.
    pub fn as_integer(&self) -> Option<i64> {
        self.node.value().and_then(toml_edit::Value::as_integer)
    }

    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        self.node.value().and_then(toml_edit::Value::as_bool)
    }

    /// The value as a table (a `[header]` or inline table), if it is one.
    pub fn as_table(&self) -> Option<Table<'a>> {
        Some(Table { doc: self.doc, path: self.path.clone(), inner: self.node.table_like()?, line: self.line })
    }

    /// The items of an array or an array of tables (`path[i]`).
    pub fn as_array(&self) -> Option<Vec<Value<'a>>> {
        let item = |i: usize, node: Node<'a>| {
            let line = node.line(self.doc).unwrap_or(self.line);
            Value { doc: self.doc, path: format!("{}[{i}]", self.path), node, line, key_line: line }
        };
        match self.node {
            Node::Item(Item::ArrayOfTables(a)) => Some(a.iter().enumerate().map(|(i, t)| item(i, Node::Table(t))).collect()),
            _ => match self.node.value()? {
                toml_edit::Value::Array(a) => Some(a.iter().enumerate().map(|(i, v)| item(i, Node::Value(v))).collect()),
                _ => None,
            },
        }
    }

    /// The value as written in the file (`0o755`, `"x"`), for checks the parsed value cannot make.
    pub fn text(&self) -> &'a str {
        self.doc.text(self.node.span()).unwrap_or("").trim()
    }

    /// What the value is, for "found …": `a table`, `an array`, or its type and text (`string "9000"`).
    pub fn describe(&self) -> String {
        match self.node {
            Node::Item(Item::Table(_))
            | Node::Table(_)
            | Node::Item(Item::Value(toml_edit::Value::InlineTable(_)))
            | Node::Value(toml_edit::Value::InlineTable(_)) => "a table".into(),
            Node::Item(Item::ArrayOfTables(_)) | Node::Item(Item::Value(toml_edit::Value::Array(_))) | Node::Value(toml_edit::Value::Array(_)) => {
                "an array".into()
            }
            _ => match self.node.value() {
                Some(v) => format!("{} `{}`", v.type_name(), self.text()),
                None => "nothing".into(),
            },
        }
    }

    /// A [`Error::WrongType`] for this value.
    pub(crate) fn wrong_type(&self, expected: impl Into<String>) -> Error {
        Error::WrongType { path: self.path.clone(), line: self.line, expected: expected.into(), found: self.describe() }
    }

    #[cfg(test)]
    fn str(&self) -> Result<&'a str, Error> {
        self.as_str().ok_or_else(|| self.wrong_type("a string"))
    }

    #[cfg(test)]
    fn integer(&self) -> Result<i64, Error> {
        self.as_integer().ok_or_else(|| self.wrong_type("an integer"))
    }

    #[cfg(test)]
    fn table(&self) -> Result<Table<'a>, Error> {
        self.as_table().ok_or_else(|| self.wrong_type("a table"))
    }

    #[cfg(test)]
    fn array(&self) -> Result<Vec<Value<'a>>, Error> {
        self.as_array().ok_or_else(|| self.wrong_type("an array"))
    }

    /// Deserialises the value into `T`; the error's line is that of the offending part.
    pub fn typed<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let value = self.node.to_value().ok_or_else(|| self.wrong_type("a value"))?;
        T::deserialize(value.into_deserializer()).map_err(|e: toml_edit::de::Error| Error::Deserialize {
            path: self.path.clone(),
            line: self.doc.line(e.span()).unwrap_or(self.line),
            message: e.message().trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "top = 1\n[a]\nname = \"x\"\nlist = [\n  1,\n  \"two\",\n]\n[[a.item]]\nk = true\n[[a.item]]\nk = 3\n[b.c]\nd = { e = 1 }\n";

    #[test]
    fn paths_and_lines_of_keys_values_and_items() {
        let doc = parse(DOC).unwrap();
        let root = doc.root();
        let a = root.get("a").unwrap().table().unwrap();
        assert_eq!((a.path(), a.line()), ("a", 2));
        let name = a.get("name").unwrap();
        assert_eq!((name.path(), name.line(), name.str().unwrap()), ("a.name", 3, "x"));
        let list = a.get("list").unwrap().array().unwrap();
        assert_eq!((list[1].path(), list[1].line()), ("a.list[1]", 6));
        let items = a.get("item").unwrap().array().unwrap();
        let k = items[1].table().unwrap().get("k").unwrap();
        assert_eq!((k.path(), k.line()), ("a.item[1].k", 11));
        // `b` is implicit (only `[b.c]` names it): its line is that of its first key.
        assert_eq!(root.get("b").unwrap().line(), 12);
        let e = root.get("b").unwrap().table().unwrap().get("c").unwrap().table().unwrap().get("d").unwrap().table().unwrap().get("e").unwrap();
        assert_eq!((e.path(), e.line()), ("b.c.d.e", 13));
        assert_eq!(doc.line_of("a.item[1].k"), Some(11));
        assert_eq!(doc.line_of("a.list[1]"), Some(6));
        assert_eq!(doc.line_of("b.c.d.e"), Some(13));
        assert_eq!(doc.line_of("a.nothing"), None);
    }

    #[test]
    fn unknown_keys_name_path_line_and_the_closest_key() {
        let doc = parse("[node]\nname = \"a\"\nadress = \"b\"\n").unwrap();
        let node = doc.root().get("node").unwrap().table().unwrap();
        let e = node.check_keys(&["name", "address"]).unwrap_err();
        assert!(
            matches!(&e, Error::UnknownKey { path, key, table, line: 3, suggestion: Some(s), .. } if path == "node.adress" && key == "adress" && table == "node" && s == "address"),
            "{e:?}"
        );
        let quoted = parse("[modes]\n\"/etc/x\" = 1\n").unwrap();
        let v = quoted.root().get("modes").unwrap().table().unwrap().entries()[0].1.clone();
        assert_eq!(v.path(), "modes.\"/etc/x\"");
    }

    #[test]
    fn wrong_types_and_failed_conversions_name_path_and_line() {
        let doc = parse("a = 1\nb = \"9000\"\nc = [1,\n \"x\"]\n").unwrap();
        let e = doc.root().get("b").unwrap().integer().unwrap_err();
        assert_eq!(e, Error::WrongType { path: "b".into(), line: 2, expected: "an integer".into(), found: "string `\"9000\"`".into() });
        assert_eq!(e.to_string(), "line 2: `b` must be an integer, found string `\"9000\"`");
        let e = doc.root().get("c").unwrap().typed::<Vec<i64>>().unwrap_err();
        assert!(matches!(&e, Error::Deserialize { path, line: 4, .. } if path == "c"), "{e:?}");
        assert_eq!(doc.root().get("c").unwrap().describe(), "an array");
    }

    #[test]
    fn syntax_errors_are_one_line_with_line_and_column() {
        let Err(Error::Syntax { line, column, message }) = parse("a = 1\n[b\n") else { panic!() };
        assert_eq!((line, column), (2, 3));
        assert!(!message.contains('\n'), "{message}");
        let Err(e) = parse("a = 1\nb = c\n") else { panic!() };
        assert_eq!(e.line(), 2);
    }

    #[test]
    fn suggestions_catch_typos_and_abbreviations_not_nonsense() {
        for (typo, candidates, want) in [
            ("plaforms", &["ref", "platforms"][..], Some("platforms")),
            ("entrypiont", &["entrypoint", "cmd", "env"], Some("entrypoint")),
            ("workdir", &["env", "working_dir", "user"], Some("working_dir")),
            ("adress", &["interface", "address", "rdma_device"], Some("address")),
            ("rdma_dev", &["interface", "address", "rdma_device"], Some("rdma_device")),
            ("ocii", &["oci", "oci-archive", "docker-archive", "docker"], Some("oci")),
            ("spark3", &["spark-2", "spark-3"], Some("spark-3")),
            ("zzzzzz", &["ref", "platforms"], None),
            ("zzz", &["interface", "address"], None),
            ("whatever", &["name", "backend", "transport", "rendezvous_port", "mtu", "disable_ipv6"], None),
        ] {
            assert_eq!(closest(typo, candidates.iter().copied()), want, "{typo}");
        }
    }
}
