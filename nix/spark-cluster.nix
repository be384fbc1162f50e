# services.spark-cluster: one node of a DGX Spark cluster, configured from the shared
# cluster.toml (the same file `sparkctl render` reads for DGX OS nodes).
#
# What it sets, each part switchable: the RoCE rails with systemd-networkd (address, MTU, no
# link-local, no RA) and their per-interface sysctls (IPv6 off, ARP flux); RDMA kernel modules,
# tools (rdma-core, perftest) and DGX OS' RDMA device names, optionally soft-RoCE for VMs;
# unlimited memlock for logins; the container runtime with NVIDIA CDI; the head/worker container
# as an `virtualisation.oci-containers` service; firewall openings. What each value is comes from
# the pure helpers in ./lib.nix, which the shared test vectors hold equal to the Rust renderers.
#
# The GPU driver is the machine's (examples/spark-node.nix shows the Spark's, or use a hardware
# module for the Spark): the module only asserts that one is configured when the container
# needs the GPU.
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
  gpuContainer = cfg.container.enable && cfg.container.nvidia;
  # What nixpkgs' container toolkit accepts as "a driver is configured".
  driverConfigured = config.hardware.nvidia.datacenter.enable
    || lib.elem "nvidia" config.services.xserver.videoDrivers
    || config.hardware.nvidia-container-toolkit.suppressNvidiaDriverAssertion;
  tokenSet = cfg.tokenFile != null;
  softRoce = cfg.rdma.enable && cfg.rdma.softRoce;
  deviceUnits = optional softRoce "rxe.service"
    ++ optional cfg.container.nvidia "nvidia-container-toolkit-cdi-generator.service";
  # The container's stop: `docker stop` waits `--stop-timeout` (60 s) for the entrypoint's
  # graceful stop, then kills; the unit allows 30 s more.
  stopTimeout = 60;
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
        # Not in nixpkgs: this flake's overlay adds it; without the overlay (the module imported
        # into another flake) the module builds the same package file itself.
        default = pkgs.perftest or (pkgs.callPackage ./packages/perftest.nix { });
        defaultText = literalExpression "pkgs.perftest or (pkgs.callPackage ./packages/perftest.nix { })";
        description = "perftest (`ib_write_bw` …).";
      };
      persistentNames = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Name RDMA devices by PCI location as DGX OS does (`rocep1s0f1`, `roceP2p1s0f1` for the
          CX-7 twins) with rdma-core's `rdma_rename`, so `rdma_device` in cluster.toml means the
          same device on both systems. Off: the kernel's names (`mlx5_N`, in probe order); leave
          `rdma_device` out of cluster.toml then (resolved from the netdev at run time).
        '';
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
          (`--device=nvidia.com/gpu=all`). Needs the NVIDIA driver configured on the machine
          (asserted; examples/spark-node.nix shows the Spark's). Turn off on machines without an
          NVIDIA GPU (VMs).
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
      example = literalExpression "config.sops.secrets.spark-cluster-token.path";
      description = ''
        Host file whose first line is the cluster token (the same secret on every node), as a
        secrets tool installs it: sops-nix (`config.sops.secrets.<name>.path`) or agenix
        (`config.age.secrets.<name>.path`), never the Nix store. Required with
        `container.enable` (nothing on NixOS creates cluster.toml's `container.token_file`).
        It is bind-mounted read-only with `--mount`, which refuses a missing file instead of
        creating a directory in its place, and the unit does not start while it is missing or
        empty.
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
        ++ [
          {
            assertion = !cfg.container.enable || tokenSet;
            message = "services.spark-cluster.tokenFile is not set: the container needs the cluster token; set it to the file a secrets tool installs (sops-nix: `config.sops.secrets.spark-cluster-token.path`, agenix: `config.age.secrets.spark-cluster-token.path`), the same secret on every node";
          }
          {
            assertion = !tokenSet || (lib.hasPrefix "/" cfg.tokenFile && !(lib.hasInfix "," cfg.tokenFile));
            message = "services.spark-cluster.tokenFile = \"${toString cfg.tokenFile}\" must be an absolute path without a comma (it is a `--mount` source)";
          }
          {
            assertion = !tokenSet || !(lib.hasPrefix builtins.storeDir cfg.tokenFile);
            message = "services.spark-cluster.tokenFile points into the world-readable Nix store; use a path managed by a secrets tool";
          }
          {
            assertion = !gpuContainer || driverConfigured;
            message = "services.spark-cluster.container.nvidia gives the container the GPU, but no NVIDIA driver is configured: set `services.xserver.videoDrivers = [ \"nvidia\" ]` (the driver only, no X server), `hardware.nvidia.open = true` (the Spark's GB10 runs the open kernel module only) and allow the unfree driver (`nixpkgs.config.allowUnfreePredicate = pkg: lib.hasPrefix \"nvidia\" (lib.getName pkg)`), as examples/spark-node.nix does, or import a DGX Spark hardware module that does; on a machine without an NVIDIA GPU set `services.spark-cluster.container.nvidia = false`";
          }
        ];

      # RDMA pins memory: unlimited memlock for logins (ib_write_bw by hand); the container gets
      # its own with `--ulimit` below.
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

    # rdma-core's own rule file names `rdma_rename` relatively, which NixOS' udev looks up in
    # systemd's directory, where it is not: the same rule, with the program's store path.
    # NAME_FALLBACK renames PCI devices only (soft-RoCE devices keep their `rxe_<netdev>` names).
    (mkIf (cfg.rdma.enable && cfg.rdma.persistentNames) {
      services.udev.extraRules = ''
        ACTION=="add", SUBSYSTEM=="infiniband", KERNEL!="hfi1*", PROGRAM="${pkgs.rdma-core}/lib/udev/rdma_rename %k NAME_FALLBACK"
      '';
    })

    (mkIf softRoce {
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
            # The entrypoint's restart history outlives the container (the restart budget).
            "${sparkLib.defaults.stateDir}:${sparkLib.defaults.stateMount}"
          ];
          # The same flags as `sparkctl render docker-run` (RDMA devices, unlimited
          # memlock, IPC_LOCK, host network and IPC), the token as a `--mount`: unlike `-v`, it
          # fails on a missing source instead of creating a directory there.
          extraOptions = [
            "--network=host"
            "--ipc=host"
            "--device=/dev/infiniband"
            "--ulimit=memlock=-1:-1"
            "--ulimit=stack=67108864"
            "--cap-add=IPC_LOCK"
            "--stop-timeout=${toString stopTimeout}"
          ]
          ++ optional tokenSet "--mount=type=bind,source=${toString cfg.tokenFile},target=${sparkLib.defaults.tokenPath},readonly"
          ++ optionals cfg.container.nvidia [ "--device=nvidia.com/gpu=all" ]
          ++ cfg.container.extraOptions;
          autoStart = true;
        };
        # One node dying makes the entrypoint exit non-zero on every node; the unit's restart
        # brings the group back together instead of hanging.
        systemd.services."${cfg.container.backend}-${containerName}" = {
          # The devices the container is given exist only after their units: soft-RoCE's (VMs;
          # the entrypoint checks them) and the CDI spec the toolkit writes at boot, without
          # which `--device=nvidia.com/gpu=all` fails.
          after = [ "network-online.target" "systemd-networkd-wait-online.service" ] ++ deviceUnits;
          wants = [ "network-online.target" ] ++ deviceUnits;
          unitConfig = mkIf tokenSet { AssertFileNotEmpty = cfg.tokenFile; };
          serviceConfig = {
            RestartSec = lib.mkDefault 10;
            # oci-containers sets 120 at normal priority; ours outranks it (priority 90), and
            # mkForce elsewhere still outranks ours.
            TimeoutStopSec = lib.mkOverride 90 (stopTimeout + 30);
          };
        };
        systemd.tmpfiles.rules = [ "d ${settings.hfCache} 0755 root root - -" ];
      }
      # Docker's CDI feature (for `--device=nvidia.com/gpu=all`) is turned on by the toolkit.
      (mkIf (cfg.container.backend == "docker") {
        virtualisation.docker.enable = true;
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
