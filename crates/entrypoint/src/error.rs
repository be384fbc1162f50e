//! The one error type of the `entrypoint` library: bad configuration, reported as one line that
//! names the variable (and its flag), the value and the fix. What happens after configuration
//! (preflight failures, refusals, lost peers) is a [`crate::supervisor::Stop`]: it decides how the
//! node stops and with which exit code, not just what to print.

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("missing `{env}` (`{flag}`): {fix}")]
    Missing { env: &'static str, flag: &'static str, fix: String },

    #[error("`{env}` (`{flag}`) = `{value}` is not {expected}")]
    Invalid { env: &'static str, flag: &'static str, value: String, expected: String },

    #[error("unknown argument `{arg}`; see `spark-entrypoint --help` (the serve command goes after `--`)")]
    UnknownArgument { arg: String },

    #[error("`{flag}` needs a value")]
    MissingValue { flag: String },

    #[error("`SPARK_NODES` = `{nodes}` must start with the head's own name `{head}`; put the head first or set `SPARK_NODE_NAME`")]
    HeadNotFirst { nodes: String, head: String },

    #[error("`SPARK_NODES` names `{name}` twice; node names must be unique")]
    DuplicateNode { name: String },

    #[error("cannot read `SPARK_TOKEN_FILE` `{path}`: {source}")]
    TokenFile { path: String, source: std::io::Error },

    #[error("`SPARK_TOKEN_FILE` `{path}` is empty: its first line must hold the cluster token; write the same secret there on every node, e.g. `openssl rand -hex 32 > {path}`")]
    EmptyTokenFile { path: String },

    #[error("`{first}` (`{first_flag}`) and `{second}` (`{second_flag}`) are both {port}; give each its own port")]
    PortClash { first: &'static str, first_flag: &'static str, second: &'static str, second_flag: &'static str, port: u16 },

    #[error("{}", api_port_message(*api_port, serve_port, *given))]
    ApiPort { api_port: u16, serve_port: String, given: bool },

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
