# The NixOS module of sparkctl, exported by the flake as `nixosModules.default`.
# Usage: imports = [ sparkctl.nixosModules.default ]; services.spark-cluster = { … };
{
  imports = [ ./spark-cluster.nix ];
}
