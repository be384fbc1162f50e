//! The `docker run` command of a node's container (what NCCL needs: RDMA devices, unlimited memlock,
//! `IPC_LOCK`, host network and IPC), shared by the `docker-run` and `systemd` renderers.

use crate::model::{defaults, Cluster};
use crate::shell;

/// Shell-quotes one word; `=` needs no quotes after the command word (`--ulimit memlock=-1`).
fn word(arg: &str) -> String {
    if !arg.is_empty() && arg.split('=').all(|part| part.is_empty() || shell::quote(part) == part) {
        arg.to_owned()
    } else {
        shell::quote(arg)
    }
}

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
    // `--mount` refuses a missing token file; `--volume` would create a directory in its place.
    args.push("--mount".into());
    args.push(format!("type=bind,source={},target={},readonly", c.container.token_file.display(), crate::plan::TOKEN_PATH));
    // The restart budget counts failures across containers: its history lives on the host.
    args.push("--volume".into());
    args.push(format!("{}:{}", defaults::STATE_DIR, defaults::STATE_MOUNT));
    args.push(c.container.image.clone());
    args
}

pub(crate) fn render(header: &[String], c: &Cluster) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str(&format!("# {line}\n"));
    }
    // `docker run`, then one option (with its value) per line, the image last, for people.
    let args = docker_args(c);
    let (image, options) = args[1..].split_last().expect("docker_args ends with the image");
    out.push_str("docker run");
    let mut i = 0;
    while i < options.len() {
        out.push_str(" \\\n    ");
        out.push_str(&word(&options[i]));
        if let Some(value) = options.get(i + 1).filter(|v| !v.starts_with("--")) {
            out.push(' ');
            out.push_str(&word(value));
            i += 1;
        }
        i += 1;
    }
    out.push_str(" \\\n    ");
    out.push_str(&word(image));
    out.push('\n');
    out
}
