//! Driving the nodes of a cluster from the control machine over the user's own `ssh`: one ssh
//! layer ([`remote`]), every node as root ([`node`]), and the operations over them: [`up`],
//! [`down`], [`status`], [`logs`], the NCCL benchmark run ([`bench_nccl`]) and the RDMA one
//! ([`bench_rdma`]), and `doctor --peers`' pings ([`doctor`]).
//!
//! What each node gets is planned by `cluster::ops` (sans-IO); this crate carries it out. It
//! reads no environment variable and prints nothing: values are handed in, results returned,
//! and progress goes to the caller's [`Report`].

#![warn(missing_docs, unreachable_pub)]

pub mod bench_nccl;
pub mod bench_rdma;
pub mod doctor;
pub mod down;
pub mod logs;
pub mod node;
pub mod remote;
pub mod status;
pub mod up;

pub use node::{Failures, Target};
pub use remote::{RemoteError, Ssh};

/// Where an operation's progress goes: the cli prints it.
pub trait Report: Sync {
    /// One line for the person (plans, progress, results), without its newline.
    fn line(&self, line: &str);
    /// Something that went wrong without stopping the operation, without the `warning: ` prefix.
    fn warning(&self, text: &str);
}

/// An error chain as one line: the outermost context first, each cause after it. A cause the
/// line already ends with (a library error that prints its source) is not added again.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain().map(ToString::to_string) {
        if line.is_empty() {
            line = cause;
        } else if !line.ends_with(&cause) {
            line = format!("{line}: {cause}");
        }
    }
    line
}
