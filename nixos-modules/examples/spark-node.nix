# The machine-specific part of an example Spark for `nixosConfigurations` (flake.nix): boot and
# file systems. On real hardware add a hardware module for the Spark (kernel, NVIDIA driver,
# e.g. graham33/nixos-dgx-spark) and your own disks; services.spark-cluster composes with it and
# sets nothing of that kind.
{ lib, ... }:
{
  boot.loader.systemd-boot.enable = lib.mkDefault true;
  boot.loader.efi.canTouchEfiVariables = lib.mkDefault true;
  fileSystems."/" = lib.mkDefault { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };
  fileSystems."/boot" = lib.mkDefault { device = "/dev/disk/by-label/ESP"; fsType = "vfat"; };
  networking.useNetworkd = lib.mkDefault true;
  services.openssh.enable = lib.mkDefault true;
  system.stateVersion = "25.11";
}
