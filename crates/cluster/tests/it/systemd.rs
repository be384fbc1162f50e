//! The rendered unit passes the real `systemd-analyze verify`, and its `ExecStart=` is the same
//! argument list as the `docker run` renderer's.

use crate::support::{parse, vectors};
use cluster::render::{docker_args, render, Format};
#[cfg(feature = "system-tests")]
use std::process::Command;

#[cfg(feature = "system-tests")]
fn verify(unit: &str) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("spark-cluster.service");
    std::fs::write(&path, unit).unwrap();
    Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze is installed (systemd)")
}

#[cfg(feature = "system-tests")]
#[test]
fn rendered_units_pass_systemd_analyze_verify() {
    for v in vectors() {
        let c = parse(&v);
        for node in &c.nodes {
            let out = verify(&render(&c, node, Format::Systemd));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && !stderr.contains("spark-cluster.service"), "{}/{}: {stderr}", v.name, node.name);
        }
    }
}

/// `systemd-analyze verify` is a real check here: it reports a bad directive, and fails on a
/// command that does not exist.
#[cfg(feature = "system-tests")]
#[test]
fn systemd_analyze_rejects_a_broken_unit() {
    let c = parse(&vectors()[0]);
    let good = render(&c, c.head(), Format::Systemd);
    let out = verify(&good.replace("Restart=on-failure", "Restart=sometimes"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("spark-cluster.service:") && stderr.contains("sometimes"), "a bad Restart= value went unnoticed: {stderr}");
    let out = verify(&good.replace("ExecStart=docker", "ExecStart=dockr"));
    assert!(!out.status.success(), "a missing command went unnoticed");
}

/// `ExecStart=` carries exactly the `docker run` arguments. systemd's quoting (double quotes
/// with backslash escapes, `$$` and `%%` for literal `$` and `%`) unquotes like a POSIX shell's
/// double quotes once `$$`/`%%` are undone, which is how this reads it back.
#[test]
fn exec_start_is_the_docker_run_argument_list() {
    let c = parse(&vectors()[1]);
    let unit = render(&c, c.head(), Format::Systemd);
    let line = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart line");
    let words = cluster::shell::split(&line.replace("$$", "$").replace("%%", "%")).expect("balanced quotes");
    let mut want = vec!["docker".to_owned()];
    want.extend(docker_args(&c));
    assert_eq!(words, want);
}
