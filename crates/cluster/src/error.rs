//! The one error type of the `cluster` library. Every variant names the file and the key (or
//! node) it is about, and its message ends with the fix, so `sparkctl` can print it as one line.

use crate::model::Ipv4Net;
use std::path::PathBuf;

/// `` `file` line N`` (or `` `file` `` where the line is not known).
fn place(file: &std::path::Path, line: &Option<usize>) -> String {
    match line {
        Some(l) => format!("`{}` line {l}", file.display()),
        None => format!("`{}`", file.display()),
    }
}

/// Renders an optional did-you-mean suggestion as a message suffix.
fn hint(suggestion: &Option<String>) -> String {
    suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
/// A `cluster.toml` (or rules file) that cannot be read or is wrong.
pub enum Error {
    #[error("cannot read `{}`: {source}", file.display())]
    /// The file cannot be read.
    Read {
        /// The file.
        file: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    #[error("`{}` line {line}: {message}", file.display())]
    /// Not TOML.
    Syntax {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What the parser says.
        message: String,
    },

    #[error("{}: unknown key `{key}`{}; remove it or fix its spelling", place(file, line), hint(suggestion))]
    /// A key the schema does not have.
    UnknownKey {
        /// The file.
        file: PathBuf,
        /// The key's line, when known.
        line: Option<usize>,
        /// The key's path.
        key: String,
        /// The allowed key closest to it, if any is near.
        suggestion: Option<String>,
    },

    /// `line` is that of the table the key is missing from.
    #[error("{}: missing key `{key}`; add it ({what})", place(file, line))]
    MissingKey {
        /// The file.
        file: PathBuf,
        /// The line of the table the key is missing from, when known.
        line: Option<usize>,
        /// The key's path.
        key: String,
        /// What the key holds.
        what: &'static str,
    },

    #[error("{}: `{key}` must be {expected}, found {found}", place(file, line))]
    /// A value of the wrong type.
    WrongType {
        /// The file.
        file: PathBuf,
        /// The value's line, when known.
        line: Option<usize>,
        /// The key's path.
        key: String,
        /// The type wanted.
        expected: &'static str,
        /// What was found.
        found: String,
    },

    /// A value that has the right type but is not acceptable; `fix` says what would be.
    #[error("{}: `{key} = {value}` is invalid: {problem}; {fix}", place(file, line))]
    InvalidValue {
        /// The file.
        file: PathBuf,
        /// The value's line, when known.
        line: Option<usize>,
        /// The key's path.
        key: String,
        /// The value.
        value: String,
        /// What is wrong with it.
        problem: String,
        /// What would be right.
        fix: String,
    },

    #[error("{}: `{key} = {value}` is not one of {allowed}{}", place(file, line), hint(suggestion))]
    /// A value that is none of the allowed ones.
    UnknownVariant {
        /// The file.
        file: PathBuf,
        /// The value's line, when known.
        line: Option<usize>,
        /// The key's path.
        key: String,
        /// The value.
        value: String,
        /// The allowed values.
        allowed: &'static str,
        /// The allowed value closest to it, if any is near.
        suggestion: Option<String>,
    },

    #[error("{}: mtu = {mtu} is out of range {min}..={max}; use 9000 on RoCE rails (1500 halves RDMA active_mtu)", place(file, line))]
    /// An MTU out of the range a rail allows.
    MtuOutOfRange {
        /// The file.
        file: PathBuf,
        /// The MTU's line, when known.
        line: Option<usize>,
        /// The MTU given.
        mtu: i64,
        /// The smallest allowed.
        min: u16,
        /// The largest allowed.
        max: u16,
    },

    #[error("`{}`: no node has `role = \"head\"`; mark exactly one node as the head", file.display())]
    /// No node is the head.
    NoHead {
        /// The file.
        file: PathBuf,
    },

    #[error("`{}`: nodes `{first}` and `{second}` both have `role = \"head\"`; keep exactly one head", file.display())]
    /// More than one node is the head.
    SeveralHeads {
        /// The file.
        file: PathBuf,
        /// The first head.
        first: String,
        /// The second head.
        second: String,
    },

    #[error("`{}`: node name `{name}` appears twice; node names must be unique", file.display())]
    /// Two nodes have the same name.
    DuplicateNode {
        /// The file.
        file: PathBuf,
        /// The name.
        name: String,
    },

    #[error("`{}`: address {address} is used by both `{first}` and `{second}`; give each one its own address", file.display())]
    /// Two rails have the same address.
    DuplicateAddress {
        /// The file.
        file: PathBuf,
        /// The address.
        address: String,
        /// The first node with it.
        first: String,
        /// The second node with it.
        second: String,
    },

    #[error("`{}`: node `{node}` has rails `{first}` and `{second}` on the same subnet {subnet}; put each twin on its own subnet", file.display())]
    /// Two rails of one node are on one subnet.
    TwinsShareSubnet {
        /// The file.
        file: PathBuf,
        /// The node.
        node: String,
        /// The first rail.
        first: String,
        /// The second rail.
        second: String,
        /// The subnet both are on.
        subnet: Ipv4Net,
    },

    #[error("`{}`: rail {index} is on {subnet_a} on `{node_a}` but on {subnet_b} on `{node_b}`; rail {index} of every node must share one subnet (cable the same port on both nodes)", file.display())]
    /// Rail `index` is on different subnets on two nodes.
    RailSubnetMismatch {
        /// The file.
        file: PathBuf,
        /// The rail's index.
        index: usize,
        /// One node.
        node_a: String,
        /// Its subnet for the rail.
        subnet_a: Ipv4Net,
        /// Another node.
        node_b: String,
        /// Its subnet for the rail.
        subnet_b: Ipv4Net,
    },

    #[error("`{}`: node `{node}` has {found} rail(s) but `{head}` has {expected}; every node needs the same rails", file.display())]
    /// A node has another number of rails than the head.
    RailCountMismatch {
        /// The file.
        file: PathBuf,
        /// The node.
        node: String,
        /// Its number of rails.
        found: usize,
        /// The head.
        head: String,
        /// The head's number of rails.
        expected: usize,
    },

    #[error("`{}`: no node is named `{name}`{}; nodes are: {known}", file.display(), hint(suggestion))]
    /// A node name that is not in the cluster.
    UnknownNode {
        /// The file.
        file: PathBuf,
        /// The name given.
        name: String,
        /// The node name closest to it, if any is near.
        suggestion: Option<String>,
        /// The cluster's node names.
        known: String,
    },

    #[error("`{}`: {parallel} = {product} does not match the {nodes} node(s) (one GPU per Spark); change `serve.args` or the nodes", file.display())]
    /// Tensor × pipeline parallelism is not the number of nodes.
    ParallelismMismatch {
        /// The file.
        file: PathBuf,
        /// The parallelism flags, as given.
        parallel: String,
        /// Their product.
        product: u64,
        /// The number of nodes.
        nodes: usize,
    },
}

impl Error {
    /// Fills in the line of an error about a key that has none, from the key's path (for checks
    /// made after the walk, on the model).
    pub(crate) fn locate(mut self, line_of: impl Fn(&str) -> Option<usize>) -> Self {
        match &mut self {
            Error::UnknownKey { line, key, .. }
            | Error::MissingKey { line, key, .. }
            | Error::WrongType { line, key, .. }
            | Error::InvalidValue { line, key, .. }
            | Error::UnknownVariant { line, key, .. }
                if line.is_none() =>
            {
                *line = line_of(key);
            }
            _ => {}
        }
        self
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
