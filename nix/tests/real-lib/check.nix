# The module with nixpkgs' real `lib.evalModules` (`cargo xtask nixos-real-lib PATH`, PATH a
# checkout of nixpkgs or of nix-community's nixpkgs.lib): for every node of every cluster file
# the repository ships, and every combination of the module's switches, it evaluates
#
#   ./declarations.nix (the NixOS options involved, in our words, with nixpkgs' types)
#   + ../../spark-cluster.nix + the example machine (../../examples/spark-node.nix)
#   + ../nixpkgs-model.nix (nixpkgs' assertions and unit settings that interact with ours)
#
# forces every option's value (so every definition is type-checked and every option path must
# exist) and requires: no failed assertion, and the same values as the shim evaluation the CI
# tests use (../eval-module.nix). Negative controls show that wrong types, unknown paths,
# conflicting unit values, a missing driver, token or `open` are refused, and that a
# disagreement with the shim is seen. The result is JSON; the xtask prints and judges it.
# `nixpkgsLib`: the absolute path of the `lib` directory (the one holding default.nix).
{ nixpkgsLib }:
let
  lib = import nixpkgsLib;
  inherit (builtins) tryEval deepSeq toJSON genList elemAt length filter map concatMap sort bitAnd div attrNames;

  model = import ../nixpkgs-model.nix;
  example = ../../examples/spark-node.nix;
  sparkLib = import ../../lib.nix;

  # Packages: only their identity matters; they print as the shim's stand-ins do.
  standIn = name: { type = "derivation"; inherit name; outPath = name; };
  pkgsFor = overlay: {
    rdma-core = standIn "pkgs.rdma-core";
    callPackage = path: _args: standIn "callPackage ${baseNameOf path}";
  } // lib.optionalAttrs overlay { perftest = standIn "pkgs.perftest"; sparkctl = standIn "pkgs.sparkctl"; };
  image = standIn "image.tar";

  clusters = [
    ../../../examples/cluster.toml
    ../../../crates/cluster/tests/vectors/two-sparks-ray.toml
    ../../../crates/cluster/tests/vectors/three-nodes-native.toml
    ../../../vm-tests/cluster.toml
  ];

  # Every combination of the ten switches: container, GPU, engine, RDMA, soft-RoCE, overlay,
  # image file, naming rule, networkd, firewall (bit k of the index is switch k).
  bit = i: k: bitAnd (div i (pow2 k)) 1 == 1;
  pow2 = k: if k == 0 then 1 else 2 * pow2 (k - 1);
  combos = genList (i: {
    overlay = bit i 5;
    settings = {
      container = { enable = bit i 0; nvidia = bit i 1; backend = if bit i 2 then "podman" else "docker"; imageFile = if bit i 6 then image else null; };
      rdma = { enable = bit i 3; softRoce = bit i 4; persistentNames = bit i 7; };
      network.enable = bit i 8;
      openFirewall = bit i 9;
    };
  }) 1024;

  configurations = concatMap (file:
    concatMap (node: genList (i: { inherit file node; index = i; } // elemAt combos i) (length combos))
      (sparkLib.nodeNames (sparkLib.readCluster file)))
    clusters;

  real = { file, node, settings, overlay, extra ? [ ], ... }: (lib.evalModules {
    modules = [
      ./declarations.nix
      ../../spark-cluster.nix
      example
      ({ config, ... }: { config = model.definitions { inherit lib config; }; })
      {
        _module.args.pkgs = pkgsFor overlay;
        networking.hostName = node;
        services.spark-cluster = { enable = true; clusterFile = file; inherit node; } // settings;
      }
    ] ++ extra;
  }).config;

  shim = { file, node, settings, overlay, ... }:
    import ../eval-module.nix { clusterFile = file; inherit node settings overlay; modules = [ example ]; };

  failedOf = c: sort (a: b: a < b) (map (a: a.message) (filter (a: !a.assertion) c.assertions));

  # What the two evaluations must agree on: every value our module sets, and the assertions.
  view = c:
    let
      backend = c.virtualisation.oci-containers.backend or "podman";
      ctr = c.virtualisation.oci-containers.containers.spark-cluster or null;
      unit = c.systemd.services."${backend}-spark-cluster" or null;
    in toJSON {
      networks = c.systemd.network.networks or { };
      networkd = c.systemd.network.enable or false;
      sysctl = c.boot.kernel.sysctl or { };
      kernelModules = c.boot.kernelModules or [ ];
      packages = c.environment.systemPackages or [ ];
      limits = map (l: { inherit (l) domain type item value; }) (c.security.pam.loginLimits or [ ]);
      udev = c.services.udev.extraRules or "";
      tmpfiles = c.systemd.tmpfiles.rules or [ ];
      rxe = { enable = c.networking.rxe.enable or false; interfaces = c.networking.rxe.interfaces or [ ]; };
      firewall = { trusted = c.networking.firewall.trustedInterfaces or [ ]; tcp = c.networking.firewall.allowedTCPPorts or [ ]; };
      engines = { docker = c.virtualisation.docker.enable or false; podman = c.virtualisation.podman.enable or false; inherit backend; };
      cdi = c.virtualisation.docker.daemon.settings.features.cdi or null;
      toolkit = c.hardware.nvidia-container-toolkit.enable or false;
      container = if ctr == null then null else { inherit (ctr) image imageFile environment volumes extraOptions autoStart; };
      unit = if unit == null then null else {
        after = unit.after or [ ];
        wants = unit.wants or [ ];
        unitConfig = unit.unitConfig or { };
        serviceConfig = unit.serviceConfig or { };
      };
      failed = failedOf c;
    };

  relative = f: lib.removePrefix (toString ../../.. + "/") (toString f);
  label = c: "${relative c.file} ${c.node} #${toString c.index}";

  check = c:
    let
      r = real c;
      forced = tryEval (deepSeq r true);
      failed = tryEval (deepSeq (failedOf r) (failedOf r));
      agree = tryEval (view r == view (shim c));
    in
    if !forced.success then [ "${label c}: an option path or value type is refused (evaluate it alone to see which)" ]
    else if !failed.success then [ "${label c}: the assertions do not evaluate" ]
    else if failed.value != [ ] then map (m: "${label c}: assertion failed: ${m}") failed.value
    else if !agree.success then [ "${label c}: the shim evaluation fails" ]
    else if !agree.value then [ "${label c}: the shim and the real evaluation disagree" ]
    else [ ];

  failures = concatMap check configurations;

  # Negative controls: each must be refused (an evaluation error, or a failed assertion).
  # spark-2 of the example with the module's defaults: everything on except soft-RoCE, Docker,
  # no image file (bits 0, 1, 3, 5, 7, 8, 9).
  defaults = 1 + 2 + 8 + 32 + 128 + 256 + 512;
  base = { file = ../../../examples/cluster.toml; node = "spark-2"; index = defaults; } // elemAt combos defaults;
  refused = extra:
    let
      r = real (base // { inherit extra; });
      forced = tryEval (deepSeq r (failedOf r));
    in !forced.success || forced.value != [ ];
  controls = {
    extra-option-not-a-string = refused [{ virtualisation.oci-containers.containers.spark-cluster.extraOptions = [ 1 ]; }];
    port-out-of-range = refused [{ networking.firewall.allowedTCPPorts = [ 70000 ]; }];
    sysctl-value-a-set = refused [{ boot.kernel.sysctl."net.ipv4.conf.enp1s0f1np1.arp_ignore" = lib.mkForce { }; }];
    nvidia-open-a-string = refused [{ hardware.nvidia.open = lib.mkForce "yes"; }];
    unknown-container-field = refused [{ virtualisation.oci-containers.containers.spark-cluster.imagee = "x"; }];
    unknown-option = refused [{ services.spark-clustr.enable = true; }];
    login-limit-item-misspelt = refused [{ security.pam.loginLimits = [{ domain = "*"; item = "memlok"; value = 1; }]; }];
    unit-name-without-suffix = refused [{ systemd.services.docker-spark-cluster.after = [ "rxe" ]; }];
    unknown-backend = refused [{ virtualisation.oci-containers.backend = lib.mkForce "lxc"; }];
    mtu-not-in-byte-format = refused [{ systemd.network.networks."30-rail-enp1s0f1np1".linkConfig.MTUBytes = lib.mkForce "9 KB"; }];
    link-local-misspelt = refused [{ systemd.network.networks."30-rail-enp1s0f1np1".networkConfig.LinkLocalAddressing = lib.mkForce "none"; }];
    address-not-a-list = refused [{ systemd.network.networks."30-rail-enp1s0f1np1".address = lib.mkForce "192.168.100.10/24"; }];
    unit-value-defined-twice = refused [{ systemd.services.docker-spark-cluster.serviceConfig.TimeoutStopSec = lib.mkOverride 90 30; }];
    gpu-without-driver = refused [{ services.xserver.videoDrivers = lib.mkForce [ "modesetting" ]; }];
    nvidia-open-unset = refused [{ hardware.nvidia.open = lib.mkForce null; }];
    no-token = refused [{ services.spark-cluster.tokenFile = lib.mkForce null; }];
    token-in-the-store = refused [{ services.spark-cluster.tokenFile = lib.mkForce "${builtins.storeDir}/abc-token"; }];
    shim-disagreement-seen = let d = tryEval (view (real base) != view (shim (base // { node = "spark-3"; }))); in d.success && d.value;
  };
in
{
  lib = lib.version;
  configurations = length configurations;
  clusters = map relative clusters;
  options = length (filter (o: lib.head o.loc != "_module") (lib.collect lib.isOption (lib.evalModules { modules = [ ./declarations.nix ]; }).options));
  inherit failures controls;
}
