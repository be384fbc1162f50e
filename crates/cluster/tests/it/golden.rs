//! Golden files of every renderer for every node of every vector (`crates/cluster/tests/golden/`).
//! `SPARKCTL_BLESS=1 cargo test -p cluster --test it golden` rewrites them; review the diff.

use crate::support::{bless, parse, repo_root, vectors};
use cluster::render::{render, Format};

#[test]
fn renders_match_the_golden_files() {
    let dir = repo_root().join("crates/cluster/tests/golden");
    let mut mismatches = Vec::new();
    for v in vectors() {
        let c = parse(&v);
        for node in &c.nodes {
            for (name, format) in Format::ALL {
                let text = render(&c, node, *format);
                let path = dir.join(v.name).join(format!("{}.{name}", node.name));
                if bless() {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, &text).unwrap();
                }
                let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (bless to create)", path.display()));
                if text != want {
                    mismatches.push(path.display().to_string());
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "renders differ from: {mismatches:#?}");
}

/// Same input, same bytes: a second parse and render of the same file gives identical output,
/// and nothing of the machine (absolute source path, time) leaks into it.
#[test]
fn renders_are_deterministic_and_machine_independent() {
    let v = &vectors()[0];
    let text = std::fs::read_to_string(&v.toml).unwrap();
    let a = cluster::parse_str(&text, std::path::Path::new("/one/place/cluster.toml")).unwrap();
    let b = cluster::parse_str(&text, std::path::Path::new("/elsewhere/cluster.toml")).unwrap();
    for (_, format) in Format::ALL {
        for node in &a.nodes {
            let first = render(&a, node, *format);
            assert_eq!(first, render(&b, b.node(&node.name).unwrap(), *format));
            assert!(!first.contains("/one/place"));
        }
    }
}
