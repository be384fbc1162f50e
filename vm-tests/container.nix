# Head and worker as `virtualisation.oci-containers` services from an image built by sparkctl's
# own builder: they rendezvous over the rails, the stand-in model becomes ready on the head, and
# stopping the worker makes the head's container exit non-zero so its unit restarts the group.
# The units start after rxe.service (the entrypoint checks the soft-RoCE devices), and a missing
# token stops the unit instead of becoming a directory Docker creates. MTU 1500 (cluster.toml).
{ pkgs, module, sparkctl, entrypoint, epoch ? 1 }:
let
  lib = pkgs.lib;
  platform = { x86_64-linux = "linux/amd64"; aarch64-linux = "linux/arm64"; }.${pkgs.stdenv.hostPlatform.system};

  # A small base with Python for the stand-in `vllm` (`#!/bin/python3`), as an OCI layout.
  baseArchive = pkgs.dockerTools.buildImage {
    name = "vm-test-base";
    tag = "base";
    copyToRoot = pkgs.buildEnv { name = "root"; paths = [ pkgs.busybox pkgs.python3 ]; pathsToLink = [ "/bin" ]; };
  };
  base = pkgs.runCommand "vm-test-base-oci" { nativeBuildInputs = [ pkgs.skopeo ]; } ''
    skopeo --insecure-policy --tmpdir "$TMPDIR" copy docker-archive:${baseArchive} "oci:$out:base"
  '';

  image = pkgs.runCommand "vm-test-image.tar" { nativeBuildInputs = [ sparkctl ]; SOURCE_DATE_EPOCH = toString epoch; } ''
    sparkctl ${lib.escapeShellArgs [
      "image" "build" "${./container/recipe.toml}"
      "--overlays" "${./container/overlays}"
      "--base" "oci:${base}:base"
      "--platform" platform
      "--artifact" "/usr/local/bin/spark-entrypoint@${platform}=${entrypoint}/bin/spark-entrypoint"
      "--store" "store"
      "--output" "docker-archive:${placeholder "out"}:sparkctl/vm-test:latest"
    ]}
  '';

  node = import ./common.nix { inherit module; clusterFile = ./cluster.toml; };
  base' = name: {
    imports = [ (node name) ];
    services.spark-cluster = {
      rdma.softRoce = true;
      container.nvidia = false;
      container.imageFile = image;
      tokenFile = "/etc/spark-cluster/token";
    };
    # A test secret; real nodes get it from a secrets tool, never from the Nix store.
    systemd.tmpfiles.rules = [ "f+ /etc/spark-cluster/token 0600 root root - vm-test-token" ];
    environment.systemPackages = [ pkgs.curl ];
    virtualisation.memorySize = 2048;
    virtualisation.diskSize = 4096;
  };
in
pkgs.testers.runNixOSTest {
  name = "spark-cluster-container";
  nodes."spark-2" = base' "spark-2";
  nodes."spark-3" = base' "spark-3";
  testScript = ''
    start_all()
    for m in [spark_2, spark_3]:
        m.wait_for_unit("docker-spark-cluster.service")
        m.succeed("systemctl show -P After docker-spark-cluster.service | grep -qw rxe.service")

    # Rendezvous done and the stand-in model answering on the head.
    spark_2.wait_until_succeeds("curl -fsS http://127.0.0.1:8000/v1/models | grep -F stand-in/model", timeout=300)
    spark_2.succeed("docker exec spark-cluster spark-entrypoint healthcheck")
    head_args = spark_2.succeed("docker exec spark-cluster cat /tmp/vllm-args.json")
    assert '"--nnodes"' in head_args and '"--master-addr"' in head_args, head_args
    worker_args = spark_3.wait_until_succeeds("docker exec spark-cluster cat /tmp/vllm-args.json", timeout=120)
    assert '"--headless"' in worker_args, worker_args

    # One node dies: the head does not hang, its container exits non-zero and systemd restarts it.
    before = int(spark_2.succeed("systemctl show -P NRestarts docker-spark-cluster.service"))
    spark_3.succeed("docker kill spark-cluster")
    spark_2.wait_until_succeeds(
        f"test $(systemctl show -P NRestarts docker-spark-cluster.service) -gt {before}", timeout=60
    )

    # No token: the unit refuses to start (AssertFileNotEmpty) and nothing creates a directory.
    spark_3.succeed("systemctl stop docker-spark-cluster.service && rm /etc/spark-cluster/token")
    spark_3.fail("systemctl start docker-spark-cluster.service")
    spark_3.fail("test -e /etc/spark-cluster/token")
  '';
}
