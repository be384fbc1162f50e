# The machine-specific part of an example Spark for `nixosConfigurations` (flake.nix): boot, file
# systems, the GPU driver and where the cluster token comes from. On real hardware replace the
# disks with yours; a hardware module for the Spark (kernel, driver) may replace the driver part.
{ lib, ... }:
{
  boot.loader.systemd-boot.enable = lib.mkDefault true;
  boot.loader.efi.canTouchEfiVariables = lib.mkDefault true;
  fileSystems."/" = lib.mkDefault { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };
  fileSystems."/boot" = lib.mkDefault { device = "/dev/disk/by-label/ESP"; fsType = "vfat"; };
  networking.useNetworkd = lib.mkDefault true;
  services.openssh.enable = lib.mkDefault true;
  system.stateVersion = "25.11";

  # The GPU driver the container toolkit needs (nixpkgs asserts one is configured). "nvidia" in
  # videoDrivers selects the driver; it starts no X server. The Spark's GB10 (Blackwell) runs
  # only the open kernel module, and nixpkgs requires `open` to be set for drivers >= 560. The
  # driver's user-space part is unfree: allowed by name, nothing else.
  services.xserver.videoDrivers = [ "nvidia" ];
  hardware.nvidia.open = true;
  hardware.nvidia.nvidiaSettings = false;
  nixpkgs.config.allowUnfreePredicate = pkg: lib.hasPrefix "nvidia" (lib.getName pkg);

  # The cluster token, installed by a secrets tool before services start: with sops-nix,
  # `sops.secrets.spark-cluster-token = { };` puts it here (agenix: `age.secrets.…path`).
  services.spark-cluster.tokenFile = lib.mkDefault "/run/secrets/spark-cluster-token";
}
