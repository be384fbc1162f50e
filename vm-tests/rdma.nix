# Soft-RoCE (rxe) on both rails of both nodes, perftest from our overlay over each rail, then
# both rails at once: `ib_write_bw` per rail and both together, as one measures real Sparks.
{ pkgs, module }:
let
  node = import ./common.nix { inherit module; clusterFile = ./cluster.toml; };
  base = name: {
    imports = [ (node name) ];
    services.spark-cluster.container.enable = false;
    services.spark-cluster.rdma.softRoce = true;
    virtualisation.memorySize = 2048;
  };
in
pkgs.testers.runNixOSTest {
  name = "spark-cluster-rdma";
  nodes."spark-2" = base "spark-2";
  nodes."spark-3" = base "spark-3";
  testScript = ''
    rails = {"enp1s0f1np1": "192.168.100", "enP2p1s0f1np1": "192.168.101"}
    start_all()
    for m in [spark_2, spark_3]:
        m.wait_for_unit("rxe.service")
        m.succeed("test -d /dev/infiniband")
        # memlock through PAM, as for a person running ib_write_bw by hand.
        m.succeed("su - root -c 'ulimit -l' | grep -x unlimited")
        for rail in rails:
            m.wait_until_succeeds(f"rdma link show | grep -F 'netdev {rail}'")

    def device(m, rail):
        # The RDMA device behind a netdev, as the entrypoint resolves it on a node.
        return m.succeed(f"rdma link show | awk '/netdev {rail}( |$)/ {{split($2, a, \"/\"); print a[1]}}'").strip()

    for port, (rail, net) in enumerate(rails.items(), start=18515):
        server = spark_2.execute(f"ib_write_bw -R -d {device(spark_2, rail)} -p {port} --report_gbits -D 3 >/tmp/srv-{port}.log 2>&1 &")
        spark_2.wait_until_succeeds(f"ss -ltn | grep -q ':{port} '")
        out = spark_3.succeed(f"ib_write_bw -R -d {device(spark_3, rail)} -p {port} --report_gbits -D 3 {net}.10")
        assert "BW average" in out or "#bytes" in out, out
        print(out)

    # Both rails together, as a 200G Spark port needs.
    for port, (rail, net) in enumerate(rails.items(), start=18615):
        spark_2.execute(f"ib_write_bw -R -d {device(spark_2, rail)} -p {port} --report_gbits -D 3 >/tmp/both-{port}.log 2>&1 &")
    for port in (18615, 18616):
        spark_2.wait_until_succeeds(f"ss -ltn | grep -q ':{port} '")
    spark_3.succeed(
        " & ".join(
            f"ib_write_bw -R -d {device(spark_3, rail)} -p {port} --report_gbits -D 3 {net}.10 >/tmp/c-{port}.log 2>&1"
            for port, (rail, net) in enumerate(rails.items(), start=18615)
        )
        + "; wait"
    )
    for port in (18615, 18616):
        spark_3.succeed(f"grep -q '#bytes' /tmp/c-{port}.log")
  '';
}
