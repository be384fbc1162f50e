# The image's base as a fixed-output derivation: an OCI layout copied from the registry with
# skopeo, both platforms of the index, digests preserved (so the built image references the same
# base blobs the registry has). Fixed-output: the network is allowed, the result is checked
# against `narHash` (./image-pins.nix).
{ lib, runCommand, skopeo, cacert, pins }:

let
  missing = lib.filter (k: pins.${k} == null) [ "ref" "narHash" ];
in
if missing != [ ] then
  throw "vllm-spark-base: ${lib.concatStringsSep " and " missing} not pinned in nix/packages/image-pins.nix; see the steps at the top of that file"
else
  runCommand "vllm-spark-base-oci"
    {
      nativeBuildInputs = [ skopeo ];
      outputHashMode = "recursive";
      outputHashAlgo = "sha256";
      outputHash = pins.narHash;
      SSL_CERT_FILE = "${cacert}/etc/ssl/certs/ca-bundle.crt";
      # The reference is a skopeo transport reference without its `docker://`.
      ref = lib.removePrefix "docker://" pins.ref;
    }
    ''
      skopeo --insecure-policy copy --all --preserve-digests "docker://$ref" "oci:$out:base"
    ''
