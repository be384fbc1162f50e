//! The bus-bandwidth run inside the serving image: names shared by spark-entrypoint (which runs
//! the script instead of `vllm serve` in this mode), the image overlay (`overlays/nccl-bench`)
//! and `sparkctl bench nccl` (the per-node `docker run`, the run over ssh, and the report of
//! the results). The shell scripts `bench nccl run` runs on a node follow `ops::node`'s rules:
//! values only as positional arguments, every path under `$SPARKCTL_ROOT` (unset on a node).

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
/// NCCL's debug log.
pub const DEBUG_FILE: &str = "nccl-debug.log";
/// The benchmark's verdict as JSON.
pub const RESULT_FILE: &str = "result.json";
/// Where the results folder is mounted in the container.
pub(crate) const RESULTS_IN_CONTAINER: &str = "/results";
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

/// The benchmark for one node of a group made of `members` (node names, any order): the
/// [`docker_args_for`] of every node, plus on the head the members as `SPARK_NODES` (head
/// first, in `cluster.toml` order: the rendezvous waits for exactly these) and the busbw bar of
/// the verdict the head prints.
pub fn run_args(
    c: &Cluster,
    node: &str,
    members: &[String],
    transport: Option<Transport>,
    results_dir: &str,
    max_bytes: Option<&str>,
    min_busbw: f64,
) -> Vec<String> {
    let mut args = docker_args_for(c, transport, results_dir, max_bytes);
    let image = args.pop().expect("docker_args_for ends with the image");
    if node == c.head().name {
        let mut names: Vec<&str> = vec![&c.head().name];
        names.extend(c.nodes.iter().filter(|n| n.name != c.head().name && members.contains(&n.name)).map(|n| n.name.as_str()));
        args.extend(["--env".into(), format!("{}={}", crate::plan::vars::NODES, names.join(","))]);
        args.extend(["--env".into(), format!("SPARK_BENCH_MIN_BUSBW={min_busbw}")]);
    }
    args.push(image);
    args
}

/// Largest sweep size the script accepts without `--allow-large`: on GB10's shared memory
/// NVIDIA's 16 GB all_gather froze a node.
pub(crate) const LARGE: u64 = 4 << 30;

/// A size as the script reads it (`nccl_bench.py`'s `parse_size`): bytes, or a number with
/// `K`/`M`/`G` (binary; `KiB`, `MB` alike). `Err` says what is wrong, for one error line.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.strip_suffix('B').unwrap_or(&t);
    let t = t.strip_suffix('I').unwrap_or(t);
    let (num, unit) = match t.char_indices().last() {
        Some((i, 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'M')) => (&t[..i], 1 << 20),
        Some((i, 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let v: f64 = num.parse().map_err(|_| format!("`{s}` is not a size (bytes, or a number with K, M or G: `256M`, `1G`)"))?;
    if !v.is_finite() || v < 4.0 / unit as f64 {
        return Err(format!("`{s}` is below 4 bytes"));
    }
    let bytes = (v * unit as f64) as u64;
    if bytes > LARGE {
        return Err(format!("`{s}` is over 4 GiB: on GB10's shared memory NVIDIA's 16 GB all_gather froze a node; use at most `4G`"));
    }
    Ok(bytes)
}

/// Before a run: no benchmark container left from an earlier one (`$2`), the results folder
/// `$1` made and emptied of the files a run writes (an old table must never pass for a new one).
pub const PREPARE: &str = r#"R="${SPARKCTL_ROOT:-}"
docker rm -f "$2" >/dev/null 2>&1
mkdir -p "$R$1" && rm -f "$R$1/table.txt" "$R$1/nccl-debug.log" "$R$1/result.json"
"#;

/// Runs `docker ARGS…` in the foreground: the ssh session lasts as long as the container, and
/// its exit status is the container's.
pub const RUN: &str = r#"exec docker "$@""#;

/// Prints the file `$2` of the results folder `$1`.
pub const READ: &str = r#"cat "${SPARKCTL_ROOT:-}$1/$2""#;

/// Removes the benchmark container `$1` whatever its state (after the run, after a failure).
pub const REMOVE: &str = r#"docker rm -f "$1" >/dev/null 2>&1; exit 0"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_the_script_and_the_gb10_bound_holds() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("4G"), Ok(LARGE));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("16G").unwrap_err().contains("over 4 GiB"));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert!(parse_size("1").unwrap_err().contains("below 4 bytes"));
    }

    #[test]
    fn the_head_waits_for_the_chosen_members_only() {
        let c = crate::parse_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster.toml")).unwrap();
        let all: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
        let head = run_args(&c, &c.head().name, &all, None, "/r", None, 0.5).join(" ");
        assert!(head.ends_with(&format!("--env SPARK_NODES={} --env SPARK_BENCH_MIN_BUSBW=0.5 {}", all.join(","), c.container.image)), "{head}");
        let worker = run_args(&c, &c.nodes[1].name, &all, None, "/r", None, 0.5).join(" ");
        assert!(!worker.contains("SPARK_NODES") && !worker.contains("MIN_BUSBW"), "{worker}");
        assert_eq!(worker, docker_args_for(&c, None, "/r", None).join(" "));
    }

    #[test]
    fn bench_container_is_the_serving_one_renamed_with_the_mode() {
        let c = crate::parse_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster.toml")).unwrap();
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
