//! `sparkctl render netplan|sysctl|env|docker-run|systemd --node NAME`: one node's file from
//! `cluster.toml`, on stdout or written atomically with `--output`.
use anyhow::Context;
use cluster::render::{render, Format};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RenderArgs {
    /// What to render
    #[arg(value_parser = ["netplan", "sysctl", "env", "docker-run", "systemd"])]
    what: String,
    /// The node (a `[[node]]` name in cluster.toml)
    #[arg(long)]
    node: String,
    /// The cluster description
    #[arg(long, default_value = "cluster.toml")]
    cluster: PathBuf,
    /// Write here (atomically: temp file, then rename) instead of stdout
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let format = Format::ALL.iter().find(|(name, _)| *name == args.what).map(|(_, f)| *f).expect("clap checked the value");
    let cluster = load_cluster(&args.cluster)?;
    let node = cluster.node(&args.node)?;
    let text = render(&cluster, node, format);
    match args.output {
        None => std::io::stdout().lock().write_all(text.as_bytes()).context("writing to stdout")?,
        // netplan refuses world-readable files; the others are ordinary config files.
        Some(path) => write_atomic(&path, text.as_bytes(), if format == Format::Netplan { 0o600 } else { 0o644 })
            .with_context(|| format!("writing `{}`", path.display()))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads `cluster.toml` (`--cluster`), with the way out when it is not where it was looked for.
pub fn load_cluster(path: &Path) -> anyhow::Result<cluster::model::Cluster> {
    if !path.exists() {
        let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| ".".into());
        anyhow::bail!(
            "no cluster description at `{}` (looked in `{cwd}`) (hint: pass `--cluster PATH`, or start from `examples/cluster.toml`)",
            path.display()
        );
    }
    Ok(cluster::parse_file(path)?)
}

/// Writes `bytes` to a temp file next to `path` and renames it over `path`: readers see the old
/// file or the new one, never half of one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    builder::output::check_output_file(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().context("the output path has no file name")?;
    let tmp = dir.join(format!(".{}.sparkctl-{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster.toml")
    }

    fn args(what: &str, node: &str, cluster: PathBuf, output: Option<PathBuf>) -> RenderArgs {
        RenderArgs { what: what.into(), node: node.into(), cluster, output }
    }

    #[test]
    fn output_is_written_whole_with_netplan_private() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("40-cx7.yaml");
        std::fs::write(&out, "old").unwrap();
        run(args("netplan", "spark-2", example(), Some(out.clone()))).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let c = cluster::parse_file(&example()).unwrap();
        assert_eq!(text, render(&c, c.node("spark-2").unwrap(), Format::Netplan));
        assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["40-cx7.yaml"], "no temp file left behind");
    }

    #[test]
    fn a_failed_write_leaves_nothing_and_names_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("missing-dir/spark.env");
        let err = run(args("env", "spark-2", example(), Some(out))).unwrap_err();
        assert!(format!("{err:#}").contains("missing-dir/spark.env"), "{err:#}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn bad_input_is_one_error_naming_file_and_fix() {
        let err = run(args("env", "spark-9", example(), None)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cluster.toml") && msg.contains("did you mean `spark-3`"), "{msg}");
        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join("cluster.toml");
        std::fs::write(&bad, std::fs::read_to_string(example()).unwrap().replace("mtu = 9000", "mtu = 100000")).unwrap();
        let out = tmp.path().join("out");
        let msg = run(args("sysctl", "spark-2", bad, Some(out.clone()))).unwrap_err().to_string();
        assert!(msg.contains("mtu = 100000") && msg.contains("use 9000"), "{msg}");
        assert!(!out.exists(), "nothing written on bad input");
    }

    #[test]
    fn a_missing_cluster_file_points_to_the_cluster_flag() {
        let msg = format!("{:#}", run(args("env", "spark-2", PathBuf::from("/nonexistent/cluster.toml"), None)).unwrap_err());
        assert!(msg.contains("no cluster description at `/nonexistent/cluster.toml`") && msg.contains("--cluster PATH"), "{msg}");
    }

    /// A system test: making the block device node needs root.
    #[cfg(feature = "system-tests")]
    #[test]
    fn output_refuses_device_nodes_fifos_and_symlinks() {
        use std::os::unix::fs::FileTypeExt;
        // A /dev/null already replaced by a regular file would rightly be replaced again.
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device(), "/dev/null is not a character device on this machine");
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path().join("target"), &link).unwrap();
        // A block device node (loop 7:250; the tests run as root, making the node touches no disk).
        let block = tmp.path().join("block");
        assert!(std::process::Command::new("mknod").arg(&block).args(["b", "7", "250"]).status().unwrap().success(), "mknod needs root");
        for (path, what) in [
            (PathBuf::from("/dev/null"), "a character device"),
            (block.clone(), "a block device"),
            (fifo, "a FIFO"),
            (link, "a symlink"),
            (tmp.path().to_owned(), "a folder"),
        ] {
            let msg = format!("{:#}", run(args("env", "spark-2", example(), Some(path.clone()))).unwrap_err());
            assert!(msg.contains(&format!("is {what}")) && msg.contains("may only replace a regular file"), "{}: {msg}", path.display());
        }
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
        assert!(std::fs::symlink_metadata(&block).unwrap().file_type().is_block_device(), "the block device node was replaced");
        assert!(!tmp.path().join("target").exists());
    }
}
