# Pins of the vllm-spark image's base for `nix build .#vllm-spark-image`.
#   ref:     null = `base.ref` of images/vllm-spark.toml (docker://NAME:TAG@sha256:DIGEST), the
#            one place the base is pinned; set a string here only to override it.
#   narHash: the NAR hash of the base's OCI layout as ./base.nix fetches it (both platforms).
# Recording the hash, on a machine that can reach the registry, after the recipe's digest is real:
#   1. put any SRI hash here, e.g. "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
#   2. run `nix build .#vllm-spark-base`; Nix stops with "hash mismatch … got: sha256-…";
#   3. write that value here, build again.
# Until the hash is recorded (and while the recipe's digest is the all-zero placeholder) the
# flake leaves `vllm-spark-base` and `vllm-spark-image` out of `packages`, and using ./base.nix
# directly stops with a message saying so.
{
  ref = null;
  narHash = null;
}
