# services.spark-cluster: one node of a DGX Spark cluster, configured from the shared
# cluster.toml (the same file `sparkctl render` reads for DGX OS nodes).
#
# What it sets, each part switchable: the RoCE rails with systemd-networkd (address, MTU, no
# link-local, no RA) and their per-interface sysctls (IPv6 off, ARP flux); RDMA kernel modules and
# tools (rdma-core, perftest from our overlay), optionally soft-RoCE for VMs; unlimited memlock for
# logins and units; the container runtime with NVIDIA CDI; the head/worker container as an
# `virtualisation.oci-containers` service; firewall openings. What each value is comes from the
# pure helpers in ./lib.nix, which the shared test vectors hold equal to the Rust renderers.
#
# It composes with a hardware module for the Spark (kernel, GPU driver), e.g.
# graham33/nixos-dgx-spark, and sets nothing of that kind itself.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.spark-cluster;
  sparkLib = import ./lib.nix;
  inherit (lib) mkIf mkMerge mkOption mkEnableOption types optional optionals literalExpression;

  cluster = sparkLib.readCluster cfg.clusterFile;
  problems = sparkLib.problems cluster cfg.node;
  # Only evaluated once the assertions passed (NixOS checks them first).
  plan = sparkLib.nodePlan cluster cfg.node;
  settings = sparkLib.settings cluster;
  railNames = map (r: r.interface) plan.rails;
  containerName = sparkLib.defaults.containerName;
  tokenFile = if cfg.tokenFile != null then cfg.tokenFile else settings.tokenFile;
in
{
  options.services.spark-cluster = {
    enable = mkEnableOption "this machine as a node of a DGX Spark cluster described by cluster.toml";

    clusterFile = mkOption {
      type = types.path;
      example = literalExpression "./cluster.toml";
      description = ''
        The cluster description shared by every node (see docs/cluster.md). Validate it with
        `sparkctl render env --node NAME --cluster FILE`, which runs the full checks.
      '';
    };

    node = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      example = "spark-2";
      description = "Which `[[node]]` of the cluster file this machine is.";
    };

    network.enable = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Configure the rails with systemd-networkd (networks named `30-rail-<interface>`, sorting
        before NixOS' `99-ethernet-default-dhcp`) and set their per-interface sysctls.
      '';
    };

    rdma = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Load the RoCE kernel modules and install rdma-core and perftest.";
      };
      softRoce = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Put a soft-RoCE (rxe) device on every rail, for machines without a RoCE NIC (VM tests).
          Never on real Sparks: the CX-7 is the RDMA device there.
        '';
      };
      perftestPackage = mkOption {
        type = types.package;
        default = pkgs.perftest;
        defaultText = literalExpression "pkgs.perftest";
        description = "perftest (`ib_write_bw` …); not in nixpkgs, provided by this flake's overlay.";
      };
    };

    container = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Run this node's head or worker container (spark-entrypoint inside) as a service.";
      };
      backend = mkOption {
        type = types.enum [ "docker" "podman" ];
        default = "docker";
        description = "The container engine of `virtualisation.oci-containers`.";
      };
      nvidia = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Give the container the GPUs through the NVIDIA container toolkit's CDI devices
          (`--device=nvidia.com/gpu=all`). Turn off on machines without an NVIDIA GPU (VMs).
        '';
      };
      imageFile = mkOption {
        type = types.nullOr types.package;
        default = null;
        example = literalExpression "sparkctl.packages.aarch64-linux.vllm-spark-image";
        description = ''
          An image archive to load instead of pulling `container.image` of the cluster file
          (e.g. the flake's `vllm-spark-image`, built by sparkctl's own builder).
        '';
      };
      extraOptions = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "--shm-size=16g" ];
        description = "More options for the container engine's `run`, after the ones this module sets.";
      };
    };

    tokenFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/spark-cluster-token";
      description = ''
        Host file whose first line is the cluster token (the same on every node; keep it out of
        the Nix store, e.g. with sops-nix or agenix). `null`: `container.token_file` of the
        cluster file. It is mounted read-only into the container.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Trust the rails (point-to-point cluster links carrying Ray, NCCL and the rendezvous) and
        open the API port on the head.
      '';
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = map (message: { assertion = false; inherit message; }) problems
        ++ [{
          assertion = cfg.tokenFile == null || !(lib.hasPrefix builtins.storeDir cfg.tokenFile);
          message = "services.spark-cluster.tokenFile points into the world-readable Nix store; use a path managed by a secrets tool";
        }];

      # RDMA pins memory: unlimited memlock for logins (ib_write_bw by hand); the container unit
      # sets its own LimitMEMLOCK below.
      security.pam.loginLimits = [
        { domain = "*"; type = "-"; item = "memlock"; value = "unlimited"; }
      ];

      environment.systemPackages = optional (pkgs ? sparkctl) pkgs.sparkctl;
    }

    (mkIf cfg.network.enable {
      systemd.network.enable = true;
      systemd.network.networks = plan.networks;
      # udev re-applies per-interface sysctls when the NIC appears.
      boot.kernel.sysctl = plan.sysctl;
    })

    (mkIf cfg.rdma.enable {
      boot.kernelModules = [ "mlx5_ib" "ib_uverbs" "rdma_ucm" ];
      environment.systemPackages = [ pkgs.rdma-core cfg.rdma.perftestPackage ];
    })

    (mkIf (cfg.rdma.enable && cfg.rdma.softRoce) {
      networking.rxe = {
        enable = true;
        interfaces = railNames;
      };
    })

    (mkIf cfg.openFirewall {
      networking.firewall.trustedInterfaces = plan.firewall.trustedInterfaces;
      networking.firewall.allowedTCPPorts = plan.firewall.allowedTCPPorts;
    })

    (mkIf cfg.container.enable (mkMerge [
      {
        virtualisation.oci-containers.backend = cfg.container.backend;
        virtualisation.oci-containers.containers.${containerName} = {
          image = settings.image;
          imageFile = cfg.container.imageFile;
          environment = plan.env;
          volumes = [
            "${settings.hfCache}:${sparkLib.defaults.hf_home}"
            "${tokenFile}:${sparkLib.defaults.tokenPath}:ro"
            # The entrypoint's restart history outlives the container (the restart budget).
            "${sparkLib.defaults.stateDir}:${sparkLib.defaults.stateMount}"
          ];
          # The same flags as `sparkctl render docker-run` (BRIEF: RDMA devices, unlimited
          # memlock, IPC_LOCK, host network and IPC).
          extraOptions = [
            "--network=host"
            "--ipc=host"
            "--device=/dev/infiniband"
            "--ulimit=memlock=-1:-1"
            "--ulimit=stack=67108864"
            "--cap-add=IPC_LOCK"
            "--stop-timeout=60"
          ]
          ++ optionals cfg.container.nvidia [ "--device=nvidia.com/gpu=all" ]
          ++ cfg.container.extraOptions;
          autoStart = true;
        };
        # One node dying makes the entrypoint exit non-zero on every node; the unit's restart
        # brings the group back together instead of hanging.
        systemd.services."${cfg.container.backend}-${containerName}" = {
          after = [ "network-online.target" "systemd-networkd-wait-online.service" ];
          wants = [ "network-online.target" ];
          serviceConfig = {
            LimitMEMLOCK = "infinity";
            RestartSec = lib.mkDefault 10;
            TimeoutStopSec = lib.mkDefault 90;
          };
        };
        systemd.tmpfiles.rules = [ "d ${settings.hfCache} 0755 root root - -" ];
      }
      (mkIf (cfg.container.backend == "docker") {
        virtualisation.docker.enable = true;
        virtualisation.docker.daemon.settings.features.cdi = lib.mkIf cfg.container.nvidia true;
      })
      (mkIf (cfg.container.backend == "podman") {
        virtualisation.podman.enable = true;
      })
      (mkIf cfg.container.nvidia {
        hardware.nvidia-container-toolkit.enable = true;
      })
    ]))
  ]);
}
