# What every VM test node shares: our module, the rails as QEMU NICs with the real CX-7 names on
# two VLANs (rail 0 on VLAN 1, rail 1 on VLAN 2), and nothing else configuring them.
{ module, clusterFile }:
name: { lib, ... }: {
  imports = [ module ];
  virtualisation.interfaces = {
    enp1s0f1np1.vlan = 1;
    enP2p1s0f1np1.vlan = 2;
  };
  # The test framework would put its own 192.168.<vlan>.x addresses on these NICs; the rails
  # are ours.
  networking.interfaces = lib.mkForce { };
  networking.useDHCP = false;
  networking.hostName = name;
  services.spark-cluster = {
    enable = true;
    inherit clusterFile;
    node = name;
  };
}
