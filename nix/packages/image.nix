# The vllm-spark image built by sparkctl's own builder (not dockerTools): the recipe
# images/vllm-spark.toml, the base from ./base.nix instead of the registry (`--base`), and the
# static spark-entrypoint as the entrypoint overlay's artifact. The epoch comes from the flake's
# last commit, so the digest is the one `sparkctl image build` gives elsewhere with that epoch.
#
# The result is a docker-archive of one platform, the file `docker load` (and therefore
# `services.spark-cluster.container.imageFile`) takes; `imageName` must then equal
# `container.image` of cluster.toml.
{ lib, runCommand, sparkctl, base, entrypoint, platform, src, epoch, imageName ? "sparkctl/vllm-spark:latest" }:

let
  # A registry with a port (`spark-registry.lan:5000/…:25.11`) is part of the name.
  nameTag = (import ../lib.nix).imageNameTag imageName;
  args = [
    "image" "build" "${src}/images/vllm-spark.toml"
    "--base" "oci:${base}:base"
    "--platform" platform
    "--artifact" "/usr/local/bin/spark-entrypoint@${platform}=${entrypoint}/bin/spark-entrypoint"
    "--store" "store"
    "--output" "docker-archive:${placeholder "out"}:${imageName}"
  ];
in
assert lib.assertMsg (nameTag != null) "vllm-spark-image: imageName `${imageName}` must be NAME:TAG (a registry port may be part of NAME; a digest cannot name an archive)";
runCommand "vllm-spark-image-${lib.replaceStrings [ "/" ] [ "-" ] platform}.tar"
  {
    nativeBuildInputs = [ sparkctl ];
    SOURCE_DATE_EPOCH = toString epoch;
  }
  ''
    sparkctl ${lib.escapeShellArgs args}
  ''
