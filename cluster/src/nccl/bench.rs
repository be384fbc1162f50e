//! The bus-bandwidth run inside the serving image: names shared by spark-entrypoint (which runs
//! the script instead of `vllm serve` in this mode), the image overlay (`overlays/nccl-bench`)
//! and `sparkctl bench nccl` (the per-node `docker run`, and the report of the results).

use crate::model::{Cluster, Transport};
use crate::render::docker::docker_args;

/// `SPARK_MODE` value that runs the benchmark.
pub const MODE: &str = "nccl-bench";
/// The benchmark in the image (`overlays/nccl-bench`).
pub const SCRIPT: &str = "/usr/local/lib/sparkctl/nccl_bench.py";
/// Its command when none is given: vLLM's native multi-node arguments are appended to it.
pub const COMMAND: &[&str] = &["python3", SCRIPT];
/// Files rank 0 writes into the results folder.
pub const TABLE_FILE: &str = "table.txt";
pub const DEBUG_FILE: &str = "nccl-debug.log";
pub const RESULT_FILE: &str = "result.json";
/// Where the results folder is mounted in the container.
pub const RESULTS_IN_CONTAINER: &str = "/results";
/// Name of the benchmark container (the serving one must be stopped: same ports, same GPU).
pub const CONTAINER_NAME: &str = "spark-nccl-bench";

/// `docker run` arguments (after `docker`) of the benchmark on any node: the serving container's
/// (same image, devices, env file, token), renamed, with the mode, the transport to test (the
/// seed's comparison: `ib` against `socket`) and a host folder for the results. The node-specific
/// part comes from the node's env file, as for serving.
pub fn docker_args_for(c: &Cluster, transport: Option<Transport>, results_dir: &str, max_bytes: Option<&str>) -> Vec<String> {
    let mut args = docker_args(c);
    let image = args.pop().expect("docker_args ends with the image");
    if let Some(i) = args.iter().position(|a| a == crate::model::defaults::CONTAINER_NAME) {
        args[i] = CONTAINER_NAME.to_owned();
    }
    // `-e` wins over `--env-file`.
    args.extend(["--env".into(), format!("SPARK_MODE={MODE}")]);
    if let Some(t) = transport {
        args.extend(["--env".into(), format!("SPARK_TRANSPORT={}", t.as_str())]);
    }
    args.extend(["--env".into(), format!("SPARK_BENCH_OUT={RESULTS_IN_CONTAINER}")]);
    if let Some(m) = max_bytes {
        args.extend(["--env".into(), format!("SPARK_BENCH_MAX_BYTES={m}")]);
    }
    args.extend(["--volume".into(), format!("{results_dir}:{RESULTS_IN_CONTAINER}")]);
    args.push(image);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_container_is_the_serving_one_renamed_with_the_mode() {
        let c = crate::parse_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cluster.toml")).unwrap();
        let a = docker_args_for(&c, Some(Transport::Socket), "/var/tmp/nccl-bench", Some("256M"));
        let s = a.join(" ");
        assert!(s.starts_with("run --rm --name spark-nccl-bench --network host --ipc host --device /dev/infiniband"), "{s}");
        assert!(s.contains("--env-file /etc/spark-cluster/spark.env"), "{s}");
        assert!(
            s.ends_with(
                "--env SPARK_MODE=nccl-bench --env SPARK_TRANSPORT=socket --env SPARK_BENCH_OUT=/results --env SPARK_BENCH_MAX_BYTES=256M --volume /var/tmp/nccl-bench:/results spark-registry.lan:5000/sparkctl/vllm-spark:25.11"
            ),
            "{s}"
        );
    }
}
