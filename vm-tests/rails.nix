# Two nodes, two rails, from the example's own cluster.toml: addresses, MTU 9000, IPv6 off (no
# link-local, disable_ipv6 = 1), ARP settings, and pings that may not fragment on both rails.
#
# The test driver's vde_switch carries frames of at most 1518 bytes (1500-byte MTU), so the
# pings across it use the largest payload that fits (1472 bytes); MTU 9000 is checked on each
# node's links, and by the kernel refusing a don't-fragment ping one byte over it (8973 bytes).
# The 9000-byte ping across a real cable is in docs/cluster.md's runbook.
{ pkgs, module }:
let
  node = import ./common.nix { inherit module; clusterFile = ../examples/cluster.toml; };
  base = name: {
    imports = [ (node name) ];
    services.spark-cluster.container.enable = false;
    services.spark-cluster.rdma.enable = false;
  };
in
pkgs.testers.runNixOSTest {
  name = "spark-cluster-rails";
  nodes."spark-2" = base "spark-2";
  nodes."spark-3" = base "spark-3";
  testScript = ''
    rails = {"enp1s0f1np1": "192.168.100", "enP2p1s0f1np1": "192.168.101"}
    nodes = {spark_2: "10", spark_3: "11"}
    start_all()
    for m, host in nodes.items():
        m.wait_for_unit("systemd-networkd.service")
        for rail, net in rails.items():
            m.wait_until_succeeds(f"ip -4 -o addr show dev {rail} | grep -F ' {net}.{host}/24 '")
            m.succeed(f"ip -o link show dev {rail} | grep -F ' mtu 9000 '")
            m.succeed(f"test $(cat /proc/sys/net/ipv6/conf/{rail}/disable_ipv6) = 1")
            m.fail(f"ip -6 -o addr show dev {rail} | grep -q inet6")
            m.succeed(f"test $(cat /proc/sys/net/ipv4/conf/{rail}/arp_ignore) = 1")
            m.succeed(f"test $(cat /proc/sys/net/ipv4/conf/{rail}/arp_announce) = 2")
            m.succeed(f"networkctl status {rail} | grep -q 'Network File: /etc/systemd/network/30-rail-{rail}.network'")
    for rail, net in rails.items():
        # 1500 - 20 (IPv4) - 8 (ICMP) = 1472 bytes: the largest unfragmented ping the switch carries.
        spark_2.succeed(f"ping -c 3 -W 2 -M do -s 1472 -I {rail} {net}.11")
        spark_3.succeed(f"ping -c 3 -W 2 -M do -s 1472 -I {rail} {net}.10")
        # 9000 - 28 = 8972 fits the link; one byte more is refused by the sender's kernel.
        status, out = spark_2.execute(f"ping -c 1 -W 2 -M do -s 8973 -I {rail} {net}.11 2>&1")
        assert status != 0 and "mtu=9000" in out, out
  '';
}
