//! Reading `cluster.toml`: TOML syntax, then a walk over the document (through `toml-schema`)
//! that knows every key and its line, so an unknown or misspelt key is reported with its line,
//! its full path (`node[1].rail[0].adress`) and a suggestion, and a wrong type or a bad value
//! names the key and the line. The result goes through [`crate::validate`], whose errors get the
//! line of the key they name.

use crate::error::{Error, Result};
use crate::model::{defaults, Backend, Cluster, Container, Management, Node, RailSpec, Role, Serve, Transport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml_schema::{closest, Table, Value};

/// Reads, parses and validates a `cluster.toml`.
pub fn parse_file(path: &Path) -> Result<Cluster> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { file: path.to_owned(), source })?;
    parse_str(&text, path)
}

/// Parses and validates `text`; `file` is only used to name the source in errors.
pub fn parse_str(text: &str, file: &Path) -> Result<Cluster> {
    let walker = Walker { file: file.to_owned() };
    let doc = toml_schema::parse(text).map_err(|e| walker.schema(e))?;
    let cluster = walker.cluster(&doc.root())?;
    // The checks on the model name keys, not places: the line is that of the key, else of the
    // nearest table above it that the file has.
    crate::validate::validate(&cluster).map_err(|e| {
        e.locate(|key| {
            let mut key = key;
            loop {
                if let Some(line) = doc.line_of(key) {
                    return Some(line);
                }
                key = &key[..key.rfind('.')?];
            }
        })
    })?;
    Ok(cluster)
}

const TOP_KEYS: &[&str] = &["cluster", "container", "serve", "node"];
const CLUSTER_KEYS: &[&str] = &["name", "backend", "transport", "rendezvous_port", "mtu", "disable_ipv6"];
const CONTAINER_KEYS: &[&str] = &["image", "hf_cache", "env_file", "token_file", "env"];
const SERVE_KEYS: &[&str] = &["model", "port", "args"];
const NODE_KEYS: &[&str] = &["name", "role", "management", "rail"];
const MANAGEMENT_KEYS: &[&str] = &["interface", "address"];
const RAIL_KEYS: &[&str] = &["interface", "rdma_device", "address"];

/// Walks the TOML document; carries the file name for errors.
struct Walker {
    file: PathBuf,
}

impl Walker {
    fn cluster(&self, doc: &Table<'_>) -> Result<Cluster> {
        self.known_keys(doc, TOP_KEYS)?;
        let c = self.table(doc, "cluster", true)?.expect("required");
        self.known_keys(&c, CLUSTER_KEYS)?;
        let k = self.table(doc, "container", true)?.expect("required");
        self.known_keys(&k, CONTAINER_KEYS)?;
        let s = self.table(doc, "serve", true)?.expect("required");
        self.known_keys(&s, SERVE_KEYS)?;

        let backend = match self.opt_str(&c, "backend")? {
            None => Backend::Native,
            Some(v) => self.variant(&v, &[("ray", Backend::Ray), ("native", Backend::Native)], "`ray` or `native`")?,
        };
        let transport = match self.opt_str(&c, "transport")? {
            None => Transport::Auto,
            Some(v) => self.variant(&v, &[("auto", Transport::Auto), ("ib", Transport::Ib), ("socket", Transport::Socket)], "`auto`, `ib` or `socket`")?,
        };
        let mtu = match self.opt_int(&c, "mtu")? {
            None => defaults::MTU,
            Some((m, v)) => {
                let (min, max) = crate::model::MTU_RANGE;
                if m < i64::from(min) || m > i64::from(max) {
                    return Err(Error::MtuOutOfRange { file: self.file.clone(), line: Some(v.line()), mtu: m, min, max });
                }
                m as u16
            }
        };
        let nodes = self.nodes(doc)?;
        Ok(Cluster {
            source: self.file.clone(),
            name: self.req_str(&c, "name", "the cluster's name, e.g. \"spark-duo\"")?.to_owned(),
            backend,
            transport,
            rendezvous_port: self.opt_port(&c, "rendezvous_port")?.unwrap_or(defaults::RENDEZVOUS_PORT),
            mtu,
            disable_ipv6: self.opt_bool(&c, "disable_ipv6")?.unwrap_or(defaults::DISABLE_IPV6),
            container: Container {
                image: self.req_str(&k, "image", "the image reference the nodes run")?.to_owned(),
                hf_cache: self.opt_str(&k, "hf_cache")?.map_or(defaults::HF_CACHE, |v| v.as_str().expect("checked")).into(),
                env_file: self.opt_str(&k, "env_file")?.map_or(defaults::ENV_FILE, |v| v.as_str().expect("checked")).into(),
                token_file: self.opt_str(&k, "token_file")?.map_or(defaults::TOKEN_FILE, |v| v.as_str().expect("checked")).into(),
                env: self.string_map(&k, "env")?,
            },
            serve: Serve {
                model: self.req_str(&s, "model", "the model `vllm serve` loads")?.to_owned(),
                port: self.opt_port(&s, "port")?.unwrap_or(defaults::API_PORT),
                args: self.string_list(&s, "args")?,
            },
            nodes,
        })
    }

    fn nodes(&self, doc: &Table<'_>) -> Result<Vec<Node>> {
        let Some(list) = doc.get("node") else {
            return Err(self.missing(doc, "node", "one `[[node]]` table per Spark"));
        };
        let list = list.as_array().ok_or_else(|| self.wrong_type(&list, "an array of tables (`[[node]]`)"))?;
        let mut nodes = Vec::new();
        for v in list {
            let n = v.as_table().ok_or_else(|| self.wrong_type(&v, "a table"))?;
            self.known_keys(&n, NODE_KEYS)?;
            let role = self.opt_str(&n, "role")?.ok_or_else(|| self.missing(&n, "role", "\"head\" or \"worker\""))?;
            let role = self.variant(&role, &[("head", Role::Head), ("worker", Role::Worker)], "`head` or `worker`")?;
            let management = match self.table(&n, "management", false)? {
                None => None,
                Some(m) => {
                    self.known_keys(&m, MANAGEMENT_KEYS)?;
                    Some(Management { interface: self.interface(&m)?, address: self.net(&m, "address")? })
                }
            };
            nodes.push(Node { name: self.req_str(&n, "name", "the node's host name")?.to_owned(), role, management, rails: self.rails(&n)? });
        }
        Ok(nodes)
    }

    fn rails(&self, n: &Table<'_>) -> Result<Vec<RailSpec>> {
        let what = "one `[[node.rail]]` per CX-7 twin";
        let Some(list) = n.get("rail") else {
            return Err(self.missing(n, "rail", what));
        };
        let items = list.as_array().ok_or_else(|| self.wrong_type(&list, "an array of tables (`[[node.rail]]`)"))?;
        if items.is_empty() {
            return Err(self.missing(n, "rail", what));
        }
        let mut rails = Vec::new();
        for v in items {
            let r = v.as_table().ok_or_else(|| self.wrong_type(&v, "a table"))?;
            self.known_keys(&r, RAIL_KEYS)?;
            rails.push(RailSpec {
                interface: self.interface(&r)?,
                rdma_device: self.opt_str(&r, "rdma_device")?.map(|v| v.as_str().expect("checked").to_owned()),
                address: self.net(&r, "address")?,
            });
        }
        Ok(rails)
    }

    /// A schema error (syntax, unknown key, wrong type) as this crate's error.
    fn schema(&self, e: toml_schema::Error) -> Error {
        let file = self.file.clone();
        match e {
            toml_schema::Error::Syntax { line, message, .. } => Error::Syntax { file, line, message },
            toml_schema::Error::UnknownKey { path, line, suggestion, .. } => Error::UnknownKey { file, line: Some(line), key: path, suggestion },
            // The walker asks only for strings, integers, booleans, tables and arrays, whose
            // expectations it words itself (`wrong_type`); anything else reads as a syntax error.
            other => Error::Syntax { file, line: other.line(), message: other.to_string() },
        }
    }

    fn known_keys(&self, t: &Table<'_>, allowed: &[&str]) -> Result<()> {
        t.check_keys(allowed).map_err(|e| self.schema(e))
    }

    fn variant<T: Copy>(&self, v: &Value<'_>, options: &[(&str, T)], allowed: &'static str) -> Result<T> {
        let value = v.as_str().expect("checked");
        options.iter().find(|(name, _)| *name == value).map(|(_, v)| *v).ok_or_else(|| Error::UnknownVariant {
            file: self.file.clone(),
            line: Some(v.line()),
            key: v.path().to_owned(),
            value: format!("{value:?}"),
            allowed,
            suggestion: closest(value, options.iter().map(|(n, _)| *n)).map(str::to_owned),
        })
    }

    fn table<'a>(&self, t: &Table<'a>, k: &str, required: bool) -> Result<Option<Table<'a>>> {
        match t.get(k) {
            None if required => Err(self.missing(t, k, "a table")),
            None => Ok(None),
            Some(v) => v.as_table().map(Some).ok_or_else(|| self.wrong_type(&v, "a table")),
        }
    }

    /// A one-line, non-empty string (the value, for its path and line).
    fn opt_str<'a>(&self, t: &Table<'a>, k: &str) -> Result<Option<Value<'a>>> {
        let Some(v) = t.get(k) else { return Ok(None) };
        match v.as_str() {
            Some(s) if s.trim().is_empty() || s.contains('\n') => {
                Err(self.invalid(&v, format!("{s:?}"), "it is empty or spans lines", "write a one-line value or remove the key"))
            }
            Some(_) => Ok(Some(v)),
            None => Err(self.wrong_type(&v, "a string")),
        }
    }

    fn req_str<'a>(&self, t: &Table<'a>, k: &str, what: &'static str) -> Result<&'a str> {
        let v = self.opt_str(t, k)?.ok_or_else(|| self.missing(t, k, what))?;
        Ok(v.as_str().expect("checked"))
    }

    fn opt_int<'a>(&self, t: &Table<'a>, k: &str) -> Result<Option<(i64, Value<'a>)>> {
        let Some(v) = t.get(k) else { return Ok(None) };
        let i = v.as_integer().ok_or_else(|| self.wrong_type(&v, "an integer"))?;
        Ok(Some((i, v)))
    }

    fn opt_port(&self, t: &Table<'_>, k: &str) -> Result<Option<u16>> {
        match self.opt_int(t, k)? {
            None => Ok(None),
            Some((p, _)) if (1..=65535).contains(&p) => Ok(Some(p as u16)),
            Some((p, v)) => Err(self.invalid(&v, p.to_string(), "it is not a TCP port", "use a port in 1..=65535")),
        }
    }

    fn opt_bool(&self, t: &Table<'_>, k: &str) -> Result<Option<bool>> {
        t.get(k).map(|v| v.as_bool().ok_or_else(|| self.wrong_type(&v, "`true` or `false`"))).transpose()
    }

    fn string_list(&self, t: &Table<'_>, k: &str) -> Result<Vec<String>> {
        let Some(v) = t.get(k) else { return Ok(Vec::new()) };
        let list = v.as_array().ok_or_else(|| self.wrong_type(&v, "an array of strings"))?;
        list.iter().map(|item| self.one_line(item)).collect()
    }

    fn string_map(&self, t: &Table<'_>, k: &str) -> Result<BTreeMap<String, String>> {
        let Some(inner) = self.table(t, k, false)? else { return Ok(BTreeMap::new()) };
        inner.entries().into_iter().map(|(name, v)| Ok((name.to_owned(), self.one_line(&v)?))).collect()
    }

    fn one_line(&self, v: &Value<'_>) -> Result<String> {
        match v.as_str() {
            Some(s) if !s.contains('\n') => Ok(s.to_owned()),
            _ => Err(self.wrong_type(v, "a one-line string")),
        }
    }

    fn interface(&self, t: &Table<'_>) -> Result<String> {
        let what = "the Linux netdev name, e.g. \"enp1s0f1np1\"";
        let v = self.opt_str(t, "interface")?.ok_or_else(|| self.missing(t, "interface", what))?;
        let name = v.as_str().expect("checked");
        // IFNAMSIZ is 16 with the NUL; dots would need the `/` form in sysctl keys.
        let ok = name.len() <= 15 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(self.invalid(
                &v,
                format!("{name:?}"),
                "it is not a netdev name",
                "use the name `ip link` shows (at most 15 letters, digits, `-`, `_`)",
            ));
        }
        Ok(name.to_owned())
    }

    fn net(&self, t: &Table<'_>, k: &str) -> Result<crate::model::Ipv4Net> {
        let what = "an IPv4 address with prefix, e.g. \"192.168.100.10/24\"";
        let v = self.opt_str(t, k)?.ok_or_else(|| self.missing(t, k, what))?;
        let s = v.as_str().expect("checked");
        crate::model::Ipv4Net::parse(s)
            .map_err(|problem| self.invalid(&v, format!("{s:?}"), problem, "write a host address with its prefix, e.g. \"192.168.100.10/24\""))
    }

    fn invalid(&self, v: &Value<'_>, value: String, problem: impl Into<String>, fix: &str) -> Error {
        Error::InvalidValue { file: self.file.clone(), line: Some(v.line()), key: v.path().to_owned(), value, problem: problem.into(), fix: fix.into() }
    }

    /// `k` is missing from `t`: the line is the table's (none for the top level).
    fn missing(&self, t: &Table<'_>, k: &str, what: &'static str) -> Error {
        let key = if t.path().is_empty() { k.to_owned() } else { format!("{}.{k}", t.path()) };
        Error::MissingKey { file: self.file.clone(), line: (!t.path().is_empty()).then(|| t.line()), key, what }
    }

    fn wrong_type(&self, v: &Value<'_>, expected: &'static str) -> Error {
        Error::WrongType { file: self.file.clone(), line: Some(v.line()), key: v.path().to_owned(), expected, found: v.describe() }
    }
}
