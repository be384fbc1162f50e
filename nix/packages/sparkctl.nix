# The workspace's binaries from one Cargo build: `sparkctl` (default) or `spark-entrypoint`
# (`crate = "entrypoint"`). Build it static with `pkgsStatic` / a musl cross package set.
{ lib, rustPlatform, src, crate ? "cli", binary ? "sparkctl" }:

let
  cargo = builtins.fromTOML (builtins.readFile (src + "/Cargo.toml"));
in
rustPlatform.buildRustPackage {
  pname = binary;
  version = cargo.workspace.package.version;

  inherit src;
  cargoLock.lockFile = src + "/Cargo.lock";

  cargoBuildFlags = [ "--package" crate "--bin" binary ];
  # The tests need Docker, network namespaces and the other real tools: `cargo xtask test` runs
  # them outside the sandbox.
  doCheck = false;

  meta = {
    description = "Reproducible multi-node vLLM on DGX Spark over RoCE";
    license = lib.licenses.asl20;
    mainProgram = binary;
    platforms = lib.platforms.linux;
  };
}
