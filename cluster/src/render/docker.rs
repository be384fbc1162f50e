//! The `docker run` command of a node's container (BRIEF "NCCL": RDMA devices, unlimited memlock,
//! `IPC_LOCK`, host network and IPC), shared by the `docker-run` and `systemd` renderers.

use crate::model::{defaults, Cluster};
use crate::shell;

/// The arguments after `docker`, in a fixed order.
pub fn docker_args(c: &Cluster) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        "--rm",
        "--name",
        defaults::CONTAINER_NAME,
        "--network",
        "host",
        "--ipc",
        "host",
        "--device",
        "/dev/infiniband",
        "--ulimit",
        "memlock=-1",
        "--ulimit",
        // NVIDIA's containers ask for a 64 MiB stack.
        "stack=67108864",
        "--cap-add",
        "IPC_LOCK",
        "--gpus",
        "all",
        // The entrypoint's graceful stop (SIGTERM, wait, SIGKILL) needs more than Docker's 10 s.
        "--stop-timeout",
        "60",
    ]
    .map(str::to_owned)
    .into();
    args.push("--volume".into());
    args.push(format!("{}:{}", c.container.hf_cache.display(), defaults::HF_HOME));
    args.push("--env-file".into());
    args.push(c.container.env_file.display().to_string());
    args.push("--env-file".into());
    args.push(c.container.token_file.display().to_string());
    args.push(c.container.image.clone());
    args
}

pub fn render(header: &[String], c: &Cluster) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str(&format!("# {line}\n"));
    }
    out.push_str("docker");
    // One option (with its value) per line, for people reading the command.
    let args = docker_args(c);
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let takes_value = arg.starts_with("--") && arg != "--rm" && i + 1 < args.len();
        if i == 0 || !arg.starts_with("--") {
            out.push(' ');
            out.push_str(&shell::quote(arg));
            i += 1;
        } else {
            out.push_str(" \\\n    ");
            out.push_str(&shell::quote(arg));
            if takes_value {
                out.push(' ');
                out.push_str(&shell::quote(&args[i + 1]));
                i += 1;
            }
            i += 1;
        }
    }
    out.push('\n');
    out
}
