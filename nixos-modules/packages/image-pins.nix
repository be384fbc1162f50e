# Pins of the vllm-spark image's base for `nix build .#vllm-spark-image`: the base reference (the
# same `ref@sha256:…` as `base.ref` in images/vllm-spark.toml) and the NAR hash of its OCI layout
# as fetched by ./base.nix. Both are null until someone records them on a machine that can reach
# the registry:
#   1. copy base.ref from images/vllm-spark.toml into `ref`;
#   2. run `nix build .#vllm-spark-base`; Nix stops with "hash mismatch … got: sha256-…";
#   3. write that value into `narHash`, build again.
# Until then the flake leaves `vllm-spark-base` and `vllm-spark-image` out of `packages`, and
# using ./base.nix directly stops with a message saying so.
{
  ref = null;
  narHash = null;
}
