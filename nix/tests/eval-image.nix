# Evaluates ../packages/image.nix without nixpkgs (crates/cluster/tests/it/module.rs): stand-ins for the
# packages and for `runCommand`, which returns its arguments, so the test reads the command the
# build would run. `$out` is `OUT` here.
{ imageName }:
let
  sparkLib = import ../lib.nix;
  lib = {
    assertMsg = pred: msg: if pred then true else throw msg;
    inherit (sparkLib) escapeShellArgs;
    inherit (builtins) replaceStrings;
  };
  built = import ../packages/image.nix {
    inherit lib imageName;
    runCommand = name: env: script: { inherit name env script; };
    sparkctl = "sparkctl";
    base = "/base";
    entrypoint = "/entrypoint";
    platform = "linux/arm64";
    src = "/src";
    epoch = 1;
  };
in
built // { script = builtins.replaceStrings [ (builtins.placeholder "out") ] [ "OUT" ] built.script; }
