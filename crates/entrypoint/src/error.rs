//! The one error type of the `entrypoint` library: bad configuration, reported as one line that
//! names the variable (and its flag), the value and the fix. What happens after configuration
//! (preflight failures, refusals, lost peers) is a [`crate::supervisor::Stop`]: it decides how the
//! node stops and with which exit code, not just what to print.

/// Bad configuration: the settings (environment and flags) cannot start a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required setting is not given.
    #[error("missing `{env}` (`{flag}`): {fix}")]
    Missing {
        /// The environment variable.
        env: &'static str,
        /// Its flag.
        flag: &'static str,
        /// How to give it.
        fix: String,
    },

    /// A setting's value does not parse or is out of range.
    #[error("`{env}` (`{flag}`) = `{value}` is not {expected}")]
    Invalid {
        /// The environment variable.
        env: &'static str,
        /// Its flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What the value must be.
        expected: String,
    },

    /// A command-line argument that is no flag.
    #[error("unknown argument `{arg}`; see `spark-entrypoint --help` (the serve command goes after `--`)")]
    UnknownArgument {
        /// The argument.
        arg: String,
    },

    /// A flag given last, without its value.
    #[error("`{flag}` needs a value")]
    MissingValue {
        /// The flag.
        flag: String,
    },

    /// The head is not the first name of `SPARK_NODES`.
    #[error("`SPARK_NODES` = `{nodes}` must start with the head's own name `{head}`; put the head first or set `SPARK_NODE_NAME`")]
    HeadNotFirst {
        /// `SPARK_NODES` as given.
        nodes: String,
        /// This node's name.
        head: String,
    },

    /// A node name appears twice in `SPARK_NODES`.
    #[error("`SPARK_NODES` names `{name}` twice; node names must be unique")]
    DuplicateNode {
        /// The repeated name.
        name: String,
    },

    /// The token file cannot be read.
    #[error("cannot read `SPARK_TOKEN_FILE` `{path}`: {source}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why it cannot be read.
        source: std::io::Error,
    },

    /// The token file holds no token.
    #[error("`SPARK_TOKEN_FILE` `{path}` is empty: its first line must hold the cluster token; write the same secret there on every node, e.g. `openssl rand -hex 32 > {path}`")]
    EmptyTokenFile {
        /// The file.
        path: String,
    },

    /// Two settings name the same port.
    #[error("`{first}` (`{first_flag}`) and `{second}` (`{second_flag}`) are both {port}; give each its own port")]
    PortClash {
        /// The first setting.
        first: &'static str,
        /// Its flag.
        first_flag: &'static str,
        /// The second setting.
        second: &'static str,
        /// Its flag.
        second_flag: &'static str,
        /// The port both name.
        port: u16,
    },

    /// The readiness probe's port is not the port the serve command listens on.
    #[error("{}", api_port_message(*api_port, serve_port, *given))]
    ApiPort {
        /// `SPARK_API_PORT`.
        api_port: u16,
        /// The serve command's port (vLLM's default if not given).
        serve_port: String,
        /// Whether the serve command gives `--port`.
        given: bool,
    },

    /// No serve command is given.
    #[error("missing serve command: give it after `--` (e.g. `-- vllm serve MODEL --tensor-parallel-size 2`) or as `SPARK_SERVE`")]
    MissingServe,
}

fn api_port_message(api_port: u16, serve_port: &str, given: bool) -> String {
    if given {
        format!("the serve command's `--port {serve_port}` differs from `SPARK_API_PORT` (`--api-port`) = {api_port}, the port the readiness probe asks; make them the same")
    } else {
        format!("the serve command has no `--port`, so vLLM listens on {serve_port}, but `SPARK_API_PORT` (`--api-port`) = {api_port}: add `--port {api_port}` to the serve command, or set `SPARK_API_PORT` to {serve_port}")
    }
}
