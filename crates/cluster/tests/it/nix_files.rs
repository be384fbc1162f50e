//! Every `.nix` file of the repository parses with the real `nix-instantiate --parse`.

use crate::support::{repo_root, run};
use std::path::{Path, PathBuf};
use std::process::Command;

fn nix_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type().unwrap().is_dir() {
            if name != "target" && name != ".git" && name != "node_modules" {
                nix_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "nix") {
            out.push(path);
        }
    }
}

#[test]
fn every_nix_file_parses() {
    let root = repo_root();
    let mut files = Vec::new();
    nix_files(&root, &mut files);
    files.sort();
    for must in ["flake.nix", "nix/lib.nix", "nix/default.nix"] {
        assert!(files.contains(&root.join(must)), "{must} is missing");
    }
    assert!(files.iter().any(|f| f.starts_with(root.join("vm-tests"))), "no VM test found");
    for f in &files {
        run(Command::new("nix-instantiate").arg("--parse").arg(f));
    }
}

/// The parse check is a real one: `nix-instantiate --parse` rejects broken Nix.
#[test]
fn nix_instantiate_rejects_a_syntax_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.nix");
    std::fs::write(&bad, "{ a = 1; b = ; }").unwrap();
    let out = Command::new("nix-instantiate").arg("--parse").arg(&bad).output().expect("nix-instantiate is installed (nix-bin)");
    assert!(!out.status.success());
}
