//! `cargo xtask nixos-real-lib PATH`: the NixOS module evaluated with nixpkgs' real
//! `lib.evalModules` (`nix/tests/real-lib/check.nix`), against declarations of the
//! NixOS options it touches written in this project's words. PATH is a checkout of nixpkgs or of
//! nix-community's nixpkgs.lib (nixpkgs' `lib` on its own). CI has no nixpkgs, so this is a
//! developer command; its result is recorded in docs/cluster.md.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use xshell::{cmd, Shell};

/// The `lib` directory under PATH: `PATH/lib` for a checkout, or PATH itself.
fn lib_dir(path: &Path) -> Result<PathBuf> {
    let path = std::fs::canonicalize(path)
        .with_context(|| format!("nixpkgs lib path `{}` does not exist; pass a checkout of nixpkgs or nixpkgs.lib", path.display()))?;
    for dir in [path.join("lib"), path.clone()] {
        if dir.join("default.nix").is_file() && dir.join("modules.nix").is_file() {
            return Ok(dir);
        }
    }
    bail!("`{}` holds no nixpkgs lib (no lib/modules.nix); pass a checkout of nixpkgs or nixpkgs.lib", path.display())
}

pub fn run(sh: &Shell, args: &[String]) -> Result<()> {
    let [path] = args else { bail!("usage: cargo xtask nixos-real-lib PATH (a checkout of nixpkgs or nixpkgs.lib)") };
    let lib = lib_dir(Path::new(path))?;
    let json = cmd!(sh, "nix-instantiate --eval --strict --json nix/tests/real-lib/check.nix --argstr nixpkgsLib {lib}").read()?;
    let result: Value = serde_json::from_str(&json).context("nix-instantiate printed no JSON")?;
    let failures: Vec<&str> = result["failures"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let controls = result["controls"].as_object().context("no negative controls in the result")?;
    let accepted: Vec<&String> = controls.iter().filter(|(_, refused)| **refused != Value::Bool(true)).map(|(name, _)| name).collect();
    println!(
        "nixpkgs lib {}: {} configurations evaluated ({}), {} option declarations; failures: {}; negative controls refused: {}/{}",
        result["lib"].as_str().unwrap_or("?"),
        result["configurations"],
        result["clusters"].as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(", "),
        result["options"],
        failures.len(),
        controls.len() - accepted.len(),
        controls.len(),
    );
    for f in &failures {
        println!("  failure: {f}");
    }
    for name in &accepted {
        println!("  negative control accepted: {name}");
    }
    if !failures.is_empty() || !accepted.is_empty() {
        bail!("the module does not evaluate cleanly with the real nixpkgs lib");
    }
    Ok(())
}
