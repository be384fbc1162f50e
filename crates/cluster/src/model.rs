//! The validated cluster description: what `crate::parse` returns and every renderer, the NixOS
//! vectors and the entrypoint read. Holding a [`Cluster`] means every check of `validate` passed.

use crate::derive::Rail;
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Defaults, shared with `nix/lib.nix` (the vectors hold both to them).
pub mod defaults {
    pub(crate) const MTU: u16 = 9000;
    pub(crate) const DISABLE_IPV6: bool = true;
    /// The entrypoint's default too.
    pub(crate) const RENDEZVOUS_PORT: u16 = 29450;
    pub(crate) const API_PORT: u16 = 8000;
    pub(crate) const HF_CACHE: &str = "/var/lib/spark-cluster/huggingface";
    pub(crate) const ENV_FILE: &str = "/etc/spark-cluster/spark.env";
    pub(crate) const TOKEN_FILE: &str = "/etc/spark-cluster/token";
    /// The name of the container on every node.
    pub const CONTAINER_NAME: &str = "spark-cluster";
    /// Where the HF cache is mounted inside the container (`HF_HOME`).
    pub(crate) const HF_HOME: &str = "/root/.cache/huggingface";
    /// Host folder that keeps the entrypoint's restart history across `--rm` containers.
    pub(crate) const STATE_DIR: &str = "/var/lib/spark-cluster/state";
    /// Where it is mounted inside the container (the folder of the entrypoint's `--state-file`).
    pub(crate) const STATE_MOUNT: &str = "/var/lib/spark-entrypoint";
}

/// The accepted MTU range: 1500 is the Ethernet floor, 9978 the CX-7's largest.
pub const MTU_RANGE: (u16, u16) = (1500, 9978);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
/// A node's part in the cluster.
pub enum Role {
    /// Runs the rendezvous and the API server.
    Head,
    /// Joins the head.
    Worker,
}

impl Role {
    /// The role as written in `cluster.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Head => "head",
            Role::Worker => "worker",
        }
    }
}

/// How the nodes form one vLLM instance: Ray cluster or vLLM's native multi-node mode. Native is
/// the default (`cluster.backend` unset): NGC vLLM bases ship without Ray since 26.05, and Ray
/// comes only with the image that adds it as a Python layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A Ray cluster.
    Ray,
    /// vLLM's native multi-node mode.
    Native,
}

impl Backend {
    /// The backend as written in `cluster.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Ray => "ray",
            Backend::Native => "native",
        }
    }
}

/// Which NCCL transport the entrypoint accepts (its `SPARK_TRANSPORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// IB when the RDMA checks pass, else Socket with a loud warning.
    Auto,
    /// Refuse to start without RDMA.
    Ib,
    /// TCP sockets on purpose.
    Socket,
}

impl Transport {
    /// The values `parse` accepts, for messages.
    pub const ALLOWED: &'static str = "`auto`, `ib` or `socket`";

    /// Reads `auto`, `ib` or `socket`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "ib" => Some(Self::Ib),
            "socket" => Some(Self::Socket),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::Auto => "auto",
            Transport::Ib => "ib",
            Transport::Socket => "socket",
        }
    }
}

/// An IPv4 address with its prefix length, as written in `cluster.toml` (`192.168.100.10/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
}

impl Ipv4Net {
    /// Parses `a.b.c.d/p`; the error says what is wrong, for an [`Error::InvalidValue`].
    pub(crate) fn parse(s: &str) -> std::result::Result<Self, String> {
        let (addr, prefix) = s.split_once('/').ok_or("it has no `/prefix`")?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| format!("`{prefix}` is not a prefix length"))?;
        if !(8..=31).contains(&prefix) {
            return Err(format!("prefix /{prefix} is outside /8../31"));
        }
        let net = Ipv4Net { addr, prefix };
        if prefix < 31 && (addr == net.network() || addr == net.broadcast()) {
            return Err(format!("{addr} is the network or broadcast address of {}", net.subnet()));
        }
        Ok(net)
    }

    fn mask(self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }

    pub(crate) fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// The subnet (`192.168.100.0/24` for `192.168.100.10/24`): what rails are compared by.
    pub(crate) fn subnet(self) -> Ipv4Net {
        Ipv4Net { addr: self.network(), prefix: self.prefix }
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The management (API) interface of a node: not configured by sparkctl, only described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Management {
    pub(crate) interface: String,
    /// Its address.
    pub address: Ipv4Net,
}

/// One rail as declared: a CX-7 twin netdev, optionally its RDMA device, and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RailSpec {
    /// The netdev.
    pub interface: String,
    /// `None`: resolved from the netdev on the node at run time (names differ per OS).
    pub rdma_device: Option<String>,
    /// Its address.
    pub address: Ipv4Net,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// A node of the cluster.
pub struct Node {
    /// Its name (unique in the cluster).
    pub name: String,
    /// Head or worker.
    pub role: Role,
    /// Its management interface, when described.
    pub management: Option<Management>,
    /// Its rails, in order.
    pub rails: Vec<RailSpec>,
}

impl Node {
    /// The rails in the form [`crate::derive::node_env`] takes.
    pub(crate) fn derive_rails(&self) -> Vec<Rail> {
        self.rails.iter().map(|r| Rail { netdev: r.interface.clone(), rdma_device: r.rdma_device.clone(), ipv4: r.address.addr, port: 1 }).collect()
    }

    /// The address other nodes reach this node on: its first rail.
    pub fn rail_addr(&self) -> Ipv4Addr {
        self.rails[0].address.addr
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// The container the nodes run.
pub struct Container {
    /// Image reference (`name:tag` or `name@sha256:…`) the nodes run.
    pub image: String,
    /// Host directory mounted as the container's Hugging Face cache.
    pub hf_cache: PathBuf,
    /// Where the rendered env file lives on the node.
    pub(crate) env_file: PathBuf,
    /// Host file whose first line is the cluster token (same on every node); mounted read-only
    /// into the container, never copied into `cluster.toml` or a rendered file.
    pub token_file: PathBuf,
    /// Extra node-independent variables (e.g. `HF_HUB_OFFLINE=1`).
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// What vLLM serves.
pub struct Serve {
    /// The model (a Hugging Face name or a path in the container).
    pub model: String,
    /// The OpenAI-compatible API port (`vllm serve --port`).
    pub port: u16,
    /// Arguments after `vllm serve <model>`, verbatim.
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// A validated `cluster.toml`.
pub struct Cluster {
    /// The file it came from: every later error names it.
    pub source: PathBuf,
    pub(crate) name: String,
    /// How the nodes form one vLLM instance.
    pub backend: Backend,
    /// The NCCL transport accepted.
    pub transport: Transport,
    pub(crate) rendezvous_port: u16,
    /// The MTU of the rails.
    pub mtu: u16,
    /// Whether IPv6 is disabled on the rails.
    pub disable_ipv6: bool,
    /// The container.
    pub container: Container,
    /// What vLLM serves.
    pub serve: Serve,
    /// In file order; exactly one has [`Role::Head`].
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// The node called `name`, or an error listing the nodes with a did-you-mean suggestion.
    pub fn node(&self, name: &str) -> Result<&Node> {
        if let Some(node) = self.nodes.iter().find(|n| n.name == name) {
            return Ok(node);
        }
        let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        Err(Error::UnknownNode {
            file: self.source.clone(),
            name: name.to_owned(),
            suggestion: toml_schema::closest(name, names.iter().copied()).map(str::to_owned),
            known: names.join(", "),
        })
    }

    /// The head node.
    pub fn head(&self) -> &Node {
        self.nodes.iter().find(|n| n.role == Role::Head).expect("validate guarantees exactly one head")
    }

    /// How many nodes the head waits for at rendezvous (itself included).
    pub fn expected_nodes(&self) -> usize {
        self.nodes.len()
    }
}
