# Soft-RoCE (rxe) on both rails of both nodes, perftest from our overlay over each rail, then
# both rails at once: `ib_write_bw` per rail and both together, as one measures real Sparks.
#
# `-R` connects through the RDMA connection manager: the server opens no TCP listener but an
# RDMA CM id in state LISTEN on its port, which `rdma resource show cm_id` lists; the client is
# started once that exists. The rails run MTU 1500 (what the test switch carries), so rxe's
# active MTU is 1024.
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
        # DGX OS' naming rule is installed; it renames PCI devices only, so rxe keeps its names.
        m.succeed("grep -F 'rdma_rename %k NAME_FALLBACK' /etc/udev/rules.d/99-local.rules")
        for rail in rails:
            m.wait_until_succeeds(f"rdma link show | grep -F 'rxe_{rail}/1' | grep -F 'netdev {rail}'")
            m.succeed(f"ibv_devinfo -d rxe_{rail} | grep -E 'active_mtu:\\s+1024'")

    def device(m, rail):
        # The RDMA device behind a netdev, as the entrypoint resolves it on a node.
        return m.succeed(f"rdma link show | awk '/netdev {rail}( |$)/ {{split($2, a, \"/\"); print a[1]}}'").strip()

    def listening(port):
        # perftest -R's server: an RDMA CM id in state LISTEN on the port (no TCP socket).
        return f"rdma resource show cm_id | grep -E 'state LISTEN .*:{port}( |$)'"

    for port, (rail, net) in enumerate(rails.items(), start=18515):
        spark_2.execute(f"ib_write_bw -R -d {device(spark_2, rail)} -p {port} --report_gbits -D 3 >/tmp/srv-{port}.log 2>&1 &")
        spark_2.wait_until_succeeds(listening(port), timeout=60)
        out = spark_3.succeed(f"ib_write_bw -R -d {device(spark_3, rail)} -p {port} --report_gbits -D 3 {net}.10")
        assert "#bytes" in out, out
        print(out)

    # Both rails together, as a 200G Spark port needs.
    for port, (rail, net) in enumerate(rails.items(), start=18615):
        spark_2.execute(f"ib_write_bw -R -d {device(spark_2, rail)} -p {port} --report_gbits -D 3 >/tmp/both-{port}.log 2>&1 &")
    for port in (18615, 18616):
        spark_2.wait_until_succeeds(listening(port), timeout=60)
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
