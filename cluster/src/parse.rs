//! Reading `cluster.toml`: TOML syntax, then a walk over the document that knows every key, so an
//! unknown or misspelt key is reported with its full path (`node[1].rail[0].adress`) and a
//! suggestion, and a wrong type names the key. The result goes through [`crate::validate`].

use crate::error::{Error, Result};
use crate::model::{defaults, Backend, Cluster, Container, Management, Node, RailSpec, Role, Serve, Transport};
use crate::suggest::closest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// Reads, parses and validates a `cluster.toml`.
pub fn parse_file(path: &Path) -> Result<Cluster> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { file: path.to_owned(), source })?;
    parse_str(&text, path)
}

/// Parses and validates `text`; `file` is only used to name the source in errors.
pub fn parse_str(text: &str, file: &Path) -> Result<Cluster> {
    let doc: Table = text.parse().map_err(|e: toml::de::Error| {
        // Newlines before the error, plus one: `lines()` would miss the line of an error at column 1.
        let line = e.span().map(|s| text.get(..s.start).unwrap_or(text).matches('\n').count() + 1).unwrap_or(1);
        Error::Syntax { file: file.to_owned(), line, message: e.message().trim().replace('\n', "; ") }
    })?;
    let cluster = Walker { file: file.to_owned() }.cluster(&doc)?;
    crate::validate::validate(&cluster)?;
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
    fn cluster(&self, doc: &Table) -> Result<Cluster> {
        self.known_keys(doc, "", TOP_KEYS)?;
        let c = self.table(doc, "", "cluster", true)?.expect("required");
        self.known_keys(c, "cluster", CLUSTER_KEYS)?;
        let k = self.table(doc, "", "container", true)?.expect("required");
        self.known_keys(k, "container", CONTAINER_KEYS)?;
        let s = self.table(doc, "", "serve", true)?.expect("required");
        self.known_keys(s, "serve", SERVE_KEYS)?;

        let backend = match self.opt_str(c, "cluster", "backend")? {
            None => Backend::Native,
            Some(v) => self.variant(&key("cluster", "backend"), v, &[("ray", Backend::Ray), ("native", Backend::Native)], "`ray` or `native`")?,
        };
        let transport = match self.opt_str(c, "cluster", "transport")? {
            None => Transport::Auto,
            Some(v) => self.variant(
                &key("cluster", "transport"),
                v,
                &[("auto", Transport::Auto), ("ib", Transport::Ib), ("socket", Transport::Socket)],
                "`auto`, `ib` or `socket`",
            )?,
        };
        let mtu = match self.opt_int(c, "cluster", "mtu")? {
            None => defaults::MTU,
            Some(m) => {
                let (min, max) = crate::model::MTU_RANGE;
                if m < i64::from(min) || m > i64::from(max) {
                    return Err(Error::MtuOutOfRange { file: self.file.clone(), mtu: m, min, max });
                }
                m as u16
            }
        };
        let nodes = self.nodes(doc)?;
        Ok(Cluster {
            source: self.file.clone(),
            name: self.req_str(c, "cluster", "name", "the cluster's name, e.g. \"spark-duo\"")?.to_owned(),
            backend,
            transport,
            rendezvous_port: self.opt_port(c, "cluster", "rendezvous_port")?.unwrap_or(defaults::RENDEZVOUS_PORT),
            mtu,
            disable_ipv6: self.opt_bool(c, "cluster", "disable_ipv6")?.unwrap_or(defaults::DISABLE_IPV6),
            container: Container {
                image: self.req_str(k, "container", "image", "the image reference the nodes run")?.to_owned(),
                hf_cache: self.opt_str(k, "container", "hf_cache")?.unwrap_or(defaults::HF_CACHE).into(),
                env_file: self.opt_str(k, "container", "env_file")?.unwrap_or(defaults::ENV_FILE).into(),
                token_file: self.opt_str(k, "container", "token_file")?.unwrap_or(defaults::TOKEN_FILE).into(),
                env: self.string_map(k, "container", "env")?,
            },
            serve: Serve {
                model: self.req_str(s, "serve", "model", "the model `vllm serve` loads")?.to_owned(),
                port: self.opt_port(s, "serve", "port")?.unwrap_or(defaults::API_PORT),
                args: self.string_list(s, "serve", "args")?,
            },
            nodes,
        })
    }

    fn nodes(&self, doc: &Table) -> Result<Vec<Node>> {
        let Some(list) = doc.get("node") else {
            return Err(self.missing("node", "one `[[node]]` table per Spark"));
        };
        let Some(list) = list.as_array() else {
            return Err(self.wrong_type("node", "an array of tables (`[[node]]`)", list));
        };
        let mut nodes = Vec::new();
        for (i, v) in list.iter().enumerate() {
            let at = format!("node[{i}]");
            let n = v.as_table().ok_or_else(|| self.wrong_type(&at, "a table", v))?;
            self.known_keys(n, &at, NODE_KEYS)?;
            let role = self.req_str(n, &at, "role", "\"head\" or \"worker\"")?;
            let role = self.variant(&key(&at, "role"), role, &[("head", Role::Head), ("worker", Role::Worker)], "`head` or `worker`")?;
            let management = match self.table(n, &at, "management", false)? {
                None => None,
                Some(m) => {
                    let mat = key(&at, "management");
                    self.known_keys(m, &mat, MANAGEMENT_KEYS)?;
                    Some(Management { interface: self.interface(m, &mat)?, address: self.net(m, &mat, "address")? })
                }
            };
            nodes.push(Node { name: self.req_str(n, &at, "name", "the node's host name")?.to_owned(), role, management, rails: self.rails(n, &at)? });
        }
        Ok(nodes)
    }

    fn rails(&self, n: &Table, at: &str) -> Result<Vec<RailSpec>> {
        let rat = key(at, "rail");
        let Some(list) = n.get("rail") else {
            return Err(self.missing(&rat, "one `[[node.rail]]` per CX-7 twin"));
        };
        let list = list.as_array().ok_or_else(|| self.wrong_type(&rat, "an array of tables (`[[node.rail]]`)", list))?;
        if list.is_empty() {
            return Err(self.missing(&rat, "one `[[node.rail]]` per CX-7 twin"));
        }
        let mut rails = Vec::new();
        for (i, v) in list.iter().enumerate() {
            let at = format!("{rat}[{i}]");
            let r = v.as_table().ok_or_else(|| self.wrong_type(&at, "a table", v))?;
            self.known_keys(r, &at, RAIL_KEYS)?;
            rails.push(RailSpec {
                interface: self.interface(r, &at)?,
                rdma_device: self.opt_str(r, &at, "rdma_device")?.map(str::to_owned),
                address: self.net(r, &at, "address")?,
            });
        }
        Ok(rails)
    }

    fn known_keys(&self, t: &Table, at: &str, allowed: &[&str]) -> Result<()> {
        for k in t.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(Error::UnknownKey { file: self.file.clone(), key: key(at, k), suggestion: closest(k, allowed.iter().copied()) });
            }
        }
        Ok(())
    }

    fn variant<T: Copy>(&self, key: &str, value: &str, options: &[(&str, T)], allowed: &'static str) -> Result<T> {
        options.iter().find(|(name, _)| *name == value).map(|(_, v)| *v).ok_or_else(|| Error::UnknownVariant {
            file: self.file.clone(),
            key: key.to_owned(),
            value: format!("{value:?}"),
            allowed,
            suggestion: closest(value, options.iter().map(|(n, _)| *n)),
        })
    }

    fn table<'a>(&self, t: &'a Table, at: &str, k: &str, required: bool) -> Result<Option<&'a Table>> {
        match t.get(k) {
            None if required => Err(self.missing(&key(at, k), "a table")),
            None => Ok(None),
            Some(Value::Table(inner)) => Ok(Some(inner)),
            Some(v) => Err(self.wrong_type(&key(at, k), "a table", v)),
        }
    }

    fn opt_str<'a>(&self, t: &'a Table, at: &str, k: &str) -> Result<Option<&'a str>> {
        match t.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() || s.contains('\n') => Err(Error::InvalidValue {
                file: self.file.clone(),
                key: key(at, k),
                value: format!("{s:?}"),
                problem: "it is empty or spans lines".into(),
                fix: "write a one-line value or remove the key".into(),
            }),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong_type(&key(at, k), "a string", v)),
        }
    }

    fn req_str<'a>(&self, t: &'a Table, at: &str, k: &str, what: &'static str) -> Result<&'a str> {
        self.opt_str(t, at, k)?.ok_or_else(|| self.missing(&key(at, k), what))
    }

    fn opt_int(&self, t: &Table, at: &str, k: &str) -> Result<Option<i64>> {
        match t.get(k) {
            None => Ok(None),
            Some(Value::Integer(i)) => Ok(Some(*i)),
            Some(v) => Err(self.wrong_type(&key(at, k), "an integer", v)),
        }
    }

    fn opt_port(&self, t: &Table, at: &str, k: &str) -> Result<Option<u16>> {
        match self.opt_int(t, at, k)? {
            None => Ok(None),
            Some(p) if (1..=65535).contains(&p) => Ok(Some(p as u16)),
            Some(p) => Err(Error::InvalidValue {
                file: self.file.clone(),
                key: key(at, k),
                value: p.to_string(),
                problem: "it is not a TCP port".into(),
                fix: "use a port in 1..=65535".into(),
            }),
        }
    }

    fn opt_bool(&self, t: &Table, at: &str, k: &str) -> Result<Option<bool>> {
        match t.get(k) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong_type(&key(at, k), "`true` or `false`", v)),
        }
    }

    fn string_list(&self, t: &Table, at: &str, k: &str) -> Result<Vec<String>> {
        let Some(v) = t.get(k) else { return Ok(Vec::new()) };
        let list = v.as_array().ok_or_else(|| self.wrong_type(&key(at, k), "an array of strings", v))?;
        list.iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) if !s.contains('\n') => Ok(s.clone()),
                other => Err(self.wrong_type(&format!("{}[{i}]", key(at, k)), "a one-line string", other)),
            })
            .collect()
    }

    fn string_map(&self, t: &Table, at: &str, k: &str) -> Result<BTreeMap<String, String>> {
        let Some(inner) = self.table(t, at, k, false)? else { return Ok(BTreeMap::new()) };
        let mut map = BTreeMap::new();
        for (name, v) in inner {
            let at = key(&key(at, k), name);
            match v {
                Value::String(s) if !s.contains('\n') => {
                    map.insert(name.clone(), s.clone());
                }
                other => return Err(self.wrong_type(&at, "a one-line string", other)),
            }
        }
        Ok(map)
    }

    fn interface(&self, t: &Table, at: &str) -> Result<String> {
        let name = self.req_str(t, at, "interface", "the Linux netdev name, e.g. \"enp1s0f1np1\"")?;
        // IFNAMSIZ is 16 with the NUL; dots would need the `/` form in sysctl keys.
        let ok = name.len() <= 15 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(Error::InvalidValue {
                file: self.file.clone(),
                key: key(at, "interface"),
                value: format!("{name:?}"),
                problem: "it is not a netdev name".into(),
                fix: "use the name `ip link` shows (at most 15 letters, digits, `-`, `_`)".into(),
            });
        }
        Ok(name.to_owned())
    }

    fn net(&self, t: &Table, at: &str, k: &str) -> Result<crate::model::Ipv4Net> {
        let s = self.req_str(t, at, k, "an IPv4 address with prefix, e.g. \"192.168.100.10/24\"")?;
        crate::model::Ipv4Net::parse(s).map_err(|problem| Error::InvalidValue {
            file: self.file.clone(),
            key: key(at, k),
            value: format!("{s:?}"),
            problem,
            fix: "write a host address with its prefix, e.g. \"192.168.100.10/24\"".into(),
        })
    }

    fn missing(&self, k: &str, what: &'static str) -> Error {
        Error::MissingKey { file: self.file.clone(), key: k.to_owned(), what }
    }

    fn wrong_type(&self, k: &str, expected: &'static str, found: &Value) -> Error {
        Error::WrongType { file: self.file.clone(), key: k.to_owned(), expected, found: describe(found) }
    }
}

fn key(at: &str, k: &str) -> String {
    if at.is_empty() {
        k.to_owned()
    } else {
        format!("{at}.{k}")
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Table(_) => "a table".into(),
        Value::Array(_) => "an array".into(),
        other => format!("{} `{other}`", other.type_str()),
    }
}
