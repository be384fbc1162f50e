# What nixpkgs' own NixOS modules (nixos-25.11) do with the options services.spark-cluster sets,
# restated in this project's words for the shim evaluation (./eval-module.nix; CI has no
# nixpkgs). Only the parts that interact with ours:
#
# - hardware/video/nvidia.nix: with the driver enabled (`"nvidia"` in
#   `services.xserver.videoDrivers`, or the data-center driver) `hardware.nvidia.open` must be
#   set: it defaults to null for drivers >= 560 and null is refused.
# - services/hardware/nvidia-container-toolkit: enabling it asserts that a driver is configured
#   (or that the assertion is suppressed), and it turns on Docker's CDI feature itself.
# - virtualisation/oci-containers.nix: each container becomes the unit `<backend>-<name>` with
#   `TimeoutStopSec = 120` and `Restart = "always"` at normal priority, after the network only
#   when the image is pulled.
#
# `defaults` are nixpkgs' defaults of the options read here (oci-containers' backend is podman
# for stateVersion >= 22.05).
{
  defaults = {
    networking.hostName = "nixos";
    services.xserver.videoDrivers = [ "modesetting" "fbdev" ];
    hardware.nvidia = { datacenter.enable = false; open = null; };
    hardware.nvidia-container-toolkit = { enable = false; suppressNvidiaDriverAssertion = false; };
    virtualisation.oci-containers = { backend = "podman"; containers = { }; };
    services.spark-cluster = { };
  };

  definitions = { lib, config }:
    let
      nvidia = config.hardware.nvidia;
      toolkit = config.hardware.nvidia-container-toolkit;
      driverEnabled = builtins.elem "nvidia" config.services.xserver.videoDrivers || nvidia.datacenter.enable;
      oci = config.virtualisation.oci-containers;
    in
    lib.mkMerge [
      (lib.mkIf driverEnabled {
        assertions = [{
          assertion = nvidia.open != null || nvidia.datacenter.enable;
          message = "nixpkgs (hardware.nvidia): `hardware.nvidia.open` must be set on NVIDIA driver versions >= 560";
        }];
      })
      (lib.mkIf toolkit.enable {
        assertions = [{
          assertion = driverEnabled || toolkit.suppressNvidiaDriverAssertion;
          message = "nixpkgs (hardware.nvidia-container-toolkit): `nvidia-container-toolkit` requires nvidia drivers: set `hardware.nvidia.datacenter.enable`, add \"nvidia\" to `services.xserver.videoDrivers`, or set `hardware.nvidia-container-toolkit.suppressNvidiaDriverAssertion`";
        }];
        virtualisation.docker.daemon.settings.features.cdi = true;
      })
      {
        systemd.services = builtins.listToAttrs (map (name: {
          name = "${oci.backend}-${name}";
          value = {
            after = lib.optionals (oci.backend == "docker") [ "docker.service" "docker.socket" ]
              ++ lib.optionals (oci.containers.${name}.imageFile or null == null) [ "network-online.target" ];
            serviceConfig = { TimeoutStopSec = 120; Restart = "always"; };
          };
        }) (builtins.attrNames oci.containers));
      }
    ];
}
