//! The `docker run` command and the env file, read back by the real consumers: `sh` parses the
//! rendered command, and the Docker engine reads the rendered env file.

use crate::support::{parse, run, vectors};
use cluster::render::{docker_args, render, Format};
use std::process::Command;

/// The argv `sh` gets from the rendered command (with `docker` defined as a function that prints
/// its arguments, one per line).
fn argv_from_sh(script: &str) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("run.sh");
    std::fs::write(&file, script).unwrap();
    let out = run(Command::new("sh").arg("-c").arg(r#"docker() { printf '%s\n' "$@"; }; . "$0""#).arg(&file));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn sh_parses_the_rendered_command_into_the_docker_arguments() {
    for v in vectors() {
        let c = parse(&v);
        for node in &c.nodes {
            assert_eq!(argv_from_sh(&render(&c, node, Format::DockerRun)), docker_args(&c), "{}/{}", v.name, node.name);
        }
    }
}

/// What NCCL needs: RDMA devices, unlimited memlock, IPC_LOCK, host network and IPC; plus GPUs,
/// the HF cache volume, the env file, the token file (read-only) and the restart history.
#[test]
fn docker_run_has_what_roce_in_a_container_needs() {
    let c = parse(&vectors()[0]);
    let args = docker_args(&c);
    let pairs: Vec<(String, String)> = args.windows(2).map(|w| (w[0].clone(), w[1].clone())).collect();
    for (flag, value) in [
        ("--network", "host"),
        ("--ipc", "host"),
        ("--device", "/dev/infiniband"),
        ("--ulimit", "memlock=-1"),
        ("--cap-add", "IPC_LOCK"),
        ("--gpus", "all"),
        ("--volume", "/var/lib/spark-cluster/huggingface:/root/.cache/huggingface"),
        ("--env-file", "/etc/spark-cluster/spark.env"),
        // A bind `--mount`: Docker refuses a missing token file instead of creating a directory.
        ("--mount", "type=bind,source=/etc/spark-cluster/token,target=/run/secrets/spark-cluster-token,readonly"),
        // The restart budget's history outlives the `--rm` container.
        ("--volume", "/var/lib/spark-cluster/state:/var/lib/spark-entrypoint"),
    ] {
        assert!(pairs.contains(&(flag.to_owned(), value.to_owned())), "missing `{flag} {value}` in {args:?}");
    }
    assert_eq!(args.last().unwrap(), &c.container.image, "the image comes last");
    let text = render(&c, c.head(), Format::DockerRun);
    for literal in ["--network host", "--ipc host", "--device /dev/infiniband", "--ulimit memlock=-1", "--cap-add IPC_LOCK"] {
        assert!(text.contains(literal), "`{literal}` not written as such in:\n{text}");
    }
}

/// The Docker engine reads the rendered env file into exactly the plan's environment (values
/// with spaces, quotes and `=` included): a container is created, never started, from an image
/// imported from an empty tarball.
#[cfg(feature = "system-tests")]
#[test]
fn docker_reads_the_env_file_as_the_plan_says() {
    let image = "sparkctl-test/envfile:1";
    let tmp = tempfile::tempdir().unwrap();
    let tar_path = tmp.path().join("empty.tar");
    {
        let mut tar = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "keep", std::io::empty()).unwrap();
        tar.finish().unwrap();
    }
    run(Command::new("docker").arg("import").arg(&tar_path).arg(image));
    for v in vectors() {
        let c = parse(&v);
        for node in &c.nodes {
            let env_file = tmp.path().join(format!("{}-{}.env", v.name, node.name));
            std::fs::write(&env_file, render(&c, node, Format::Env)).unwrap();
            let name = format!("sparkctl-envfile-{}-{}-{}", std::process::id(), v.name, node.name);
            run(Command::new("docker").args(["create", "--name", &name, "--env-file"]).arg(&env_file).args([image, "/none"]));
            let out = Command::new("docker").args(["inspect", "--format", "{{json .Config.Env}}", &name]).output().unwrap();
            run(Command::new("docker").args(["rm", &name]));
            assert!(out.status.success(), "docker inspect: {}", String::from_utf8_lossy(&out.stderr));
            let env: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
            let got: std::collections::BTreeMap<String, String> =
                env.iter().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            let want = cluster::plan::node_plan(&c, node).env;
            assert_eq!(got, want, "{}/{}: Docker's view of the env file", v.name, node.name);
        }
    }
}
