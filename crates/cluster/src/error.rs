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
pub enum Error {
    #[error("cannot read `{}`: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },

    #[error("`{}` line {line}: {message}", file.display())]
    Syntax { file: PathBuf, line: usize, message: String },

    #[error("{}: unknown key `{key}`{}; remove it or fix its spelling", place(file, line), hint(suggestion))]
    UnknownKey { file: PathBuf, line: Option<usize>, key: String, suggestion: Option<String> },

    /// `line` is that of the table the key is missing from.
    #[error("{}: missing key `{key}`; add it ({what})", place(file, line))]
    MissingKey { file: PathBuf, line: Option<usize>, key: String, what: &'static str },

    #[error("{}: `{key}` must be {expected}, found {found}", place(file, line))]
    WrongType { file: PathBuf, line: Option<usize>, key: String, expected: &'static str, found: String },

    /// A value that has the right type but is not acceptable; `fix` says what would be.
    #[error("{}: `{key} = {value}` is invalid: {problem}; {fix}", place(file, line))]
    InvalidValue { file: PathBuf, line: Option<usize>, key: String, value: String, problem: String, fix: String },

    #[error("{}: `{key} = {value}` is not one of {allowed}{}", place(file, line), hint(suggestion))]
    UnknownVariant { file: PathBuf, line: Option<usize>, key: String, value: String, allowed: &'static str, suggestion: Option<String> },

    #[error("{}: mtu = {mtu} is out of range {min}..={max}; use 9000 on RoCE rails (1500 halves RDMA active_mtu)", place(file, line))]
    MtuOutOfRange { file: PathBuf, line: Option<usize>, mtu: i64, min: u16, max: u16 },

    #[error("`{}`: no node has `role = \"head\"`; mark exactly one node as the head", file.display())]
    NoHead { file: PathBuf },

    #[error("`{}`: nodes `{first}` and `{second}` both have `role = \"head\"`; keep exactly one head", file.display())]
    SeveralHeads { file: PathBuf, first: String, second: String },

    #[error("`{}`: node name `{name}` appears twice; node names must be unique", file.display())]
    DuplicateNode { file: PathBuf, name: String },

    #[error("`{}`: address {address} is used by both `{first}` and `{second}`; give each one its own address", file.display())]
    DuplicateAddress { file: PathBuf, address: String, first: String, second: String },

    #[error("`{}`: node `{node}` has rails `{first}` and `{second}` on the same subnet {subnet}; put each twin on its own subnet", file.display())]
    TwinsShareSubnet { file: PathBuf, node: String, first: String, second: String, subnet: Ipv4Net },

    #[error("`{}`: rail {index} is on {subnet_a} on `{node_a}` but on {subnet_b} on `{node_b}`; rail {index} of every node must share one subnet (cable the same port on both nodes)", file.display())]
    RailSubnetMismatch { file: PathBuf, index: usize, node_a: String, subnet_a: Ipv4Net, node_b: String, subnet_b: Ipv4Net },

    #[error("`{}`: node `{node}` has {found} rail(s) but `{head}` has {expected}; every node needs the same rails", file.display())]
    RailCountMismatch { file: PathBuf, node: String, found: usize, head: String, expected: usize },

    #[error("`{}`: no node is named `{name}`{}; nodes are: {known}", file.display(), hint(suggestion))]
    UnknownNode { file: PathBuf, name: String, suggestion: Option<String>, known: String },

    #[error("`{}`: {parallel} = {product} does not match the {nodes} node(s) (one GPU per Spark); change `serve.args` or the nodes", file.display())]
    ParallelismMismatch { file: PathBuf, parallel: String, product: u64, nodes: usize },
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

pub type Result<T, E = Error> = std::result::Result<T, E>;
