# Declarations of every NixOS option that services.spark-cluster, the example machine
# (../../examples/spark-node.nix) and the modelled nixpkgs side (../nixpkgs-model.nix) set or
# read, written in this project's words with the types (and submodule fields) nixpkgs 25.11
# gives them, so nixpkgs' real `lib.evalModules` can check option paths and value types without
# the rest of NixOS (`cargo xtask nixos-real-lib`, docs/cluster.md).
#
# Where nixpkgs uses a type of its own, it is restated here with its check and merge behaviour:
# systemd's unit option (lists concatenate, scalars must agree), the sysctl value (bool, string,
# int or null), unit names, the JSON settings of Docker's daemon.json, the host name pattern.
# networkd's sections restate the value checks nixpkgs makes on the keys we write (`MTUBytes` in
# byte format, `LinkLocalAddressing` and `IPv6AcceptRA` from their allowed values); not restated:
# its lists of allowed keys per section (our keys are checked against `netplan generate`'s
# networkd files and in the VM tests instead).
{ lib, ... }:
let
  inherit (lib) mkOption types;
  opt = type: default: mkOption { inherit type default; };
  req = type: mkOption { inherit type; };
  bool = opt types.bool false;

  # nixpkgs' systemd unit option: any value; definitions that are lists are concatenated, others
  # must all be equal.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge = loc: defs:
      let defs' = lib.filterOverrides defs;
      in if lib.any (d: lib.isList d.value) defs'
        then lib.concatMap (d: lib.toList d.value) defs'
        else lib.mergeEqualOption loc defs';
  };
  section = opt (types.attrsOf unitOption) { };
  # A section whose values nixpkgs checks: each check takes the section's attributes.
  checkedSection = checks: opt (types.addCheck (types.attrsOf unitOption) (attrs: lib.all (c: c attrs) checks)) { };
  boolValues = [ true false "yes" "no" ];
  # Checks see each definition as written, priorities (`mkForce`) not yet taken off.
  valueOf = v: if lib.isAttrs v && v ? content then valueOf v.content else v;
  oneOf = name: values: attrs: !(attrs ? ${name}) || lib.elem (valueOf attrs.${name}) values;
  byteFormat = name: attrs: !(attrs ? ${name}) || (let v = valueOf attrs.${name}; in (lib.isString v || lib.isInt v) && builtins.match "[0-9]+[KMG]?" (toString v) != null);
  unitName = types.strMatching "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)";

  # A sysctl value: bool, string, int or null; one definition wins by priority.
  sysctlValue = lib.mkOptionType {
    name = "sysctl option value";
    check = v: lib.isBool v || lib.isString v || lib.isInt v || v == null;
    merge = loc: defs: lib.mergeOneOption loc (lib.filterOverrides defs);
  };

  # pkgs.formats.json's value type (virtualisation.docker.daemon.settings).
  jsonValue = types.nullOr (types.oneOf [ types.bool types.int types.float types.str types.path (types.attrsOf jsonValue) (types.listOf jsonValue) ]) // { description = "JSON value"; };

  limit = types.submodule {
    options = {
      domain = req types.str;
      type = opt (types.enum [ "-" "hard" "soft" ]) "-";
      item = req (types.enum [ "core" "data" "fsize" "memlock" "nofile" "rss" "stack" "cpu" "nproc" "as" "maxlogins" "maxsyslogins" "priority" "locks" "sigpending" "msgqueue" "nice" "rtprio" ]);
      value = req (types.oneOf [ types.str types.int ]);
    };
  };

  network = types.submodule {
    options = {
      matchConfig = section;
      linkConfig = checkedSection [ (byteFormat "MTUBytes") ];
      networkConfig = checkedSection [
        (oneOf "LinkLocalAddressing" (boolValues ++ [ "ipv4" "ipv6" "fallback" "ipv4-fallback" ]))
        (oneOf "IPv6AcceptRA" boolValues)
      ];
      address = opt (types.listOf types.str) [ ];
    };
  };

  service = types.submodule {
    options = {
      after = opt (types.listOf unitName) [ ];
      wants = opt (types.listOf unitName) [ ];
      unitConfig = section;
      serviceConfig = section;
    };
  };

  container = types.submodule {
    options = {
      image = req types.str;
      imageFile = opt (types.nullOr types.package) null;
      environment = opt (types.attrsOf types.str) { };
      volumes = opt (types.listOf types.str) [ ];
      extraOptions = opt (types.listOf types.str) [ ];
      cmd = opt (types.listOf types.str) [ ];
      autoStart = opt types.bool true;
    };
  };

  fileSystem = types.submodule {
    options = {
      device = opt (types.nullOr types.str) null;
      fsType = opt types.str "auto";
      options = opt (types.nonEmptyListOf types.str) [ "defaults" ];
    };
  };
in
{
  options = {
    # nixos/modules/misc/assertions.nix
    assertions = opt (types.listOf types.unspecified) [ ];
    warnings = opt (types.listOf types.str) [ ];

    security.pam.loginLimits = opt (types.listOf limit) [ ];
    environment.systemPackages = opt (types.listOf types.package) [ ];

    boot.kernelModules = opt (types.listOf types.str) [ ];
    boot.kernel.sysctl = opt (types.submodule { freeformType = types.attrsOf (types.nullOr sysctlValue); }) { };
    boot.loader.systemd-boot.enable = bool;
    boot.loader.efi.canTouchEfiVariables = bool;
    fileSystems = opt (types.attrsOf fileSystem) { };

    systemd.network.enable = bool;
    systemd.network.networks = opt (types.attrsOf network) { };
    systemd.services = opt (types.attrsOf service) { };
    systemd.tmpfiles.rules = opt (types.listOf types.str) [ ];

    networking.hostName = opt (types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$") "nixos";
    networking.useNetworkd = bool;
    networking.rxe.enable = bool;
    networking.rxe.interfaces = opt (types.listOf types.str) [ ];
    networking.firewall.trustedInterfaces = opt (types.listOf types.str) [ ];
    networking.firewall.allowedTCPPorts = opt (types.listOf types.port) [ ];

    services.udev.extraRules = opt types.lines "";
    services.openssh.enable = bool;
    services.xserver.videoDrivers = opt (types.listOf types.str) [ "modesetting" "fbdev" ];

    hardware.nvidia.datacenter.enable = bool;
    # Null by default for drivers >= 560, which nixpkgs then refuses (../nixpkgs-model.nix).
    hardware.nvidia.open = opt (types.nullOr types.bool) null;
    hardware.nvidia.nvidiaSettings = opt types.bool true;
    hardware.nvidia-container-toolkit.enable = bool;
    hardware.nvidia-container-toolkit.suppressNvidiaDriverAssertion = bool;

    virtualisation.docker.enable = bool;
    virtualisation.docker.daemon.settings = opt (types.submodule { freeformType = types.attrsOf jsonValue; }) { };
    virtualisation.podman.enable = bool;
    # The default follows system.stateVersion: podman from 22.05 on.
    virtualisation.oci-containers.backend = opt (types.enum [ "podman" "docker" ]) "podman";
    virtualisation.oci-containers.containers = opt (types.attrsOf container) { };

    nixpkgs.hostPlatform = opt (types.either types.str types.attrs) "aarch64-linux";
    nixpkgs.config = opt (types.attrsOf types.anything) { };
    system.stateVersion = opt types.str "25.11";
  };
}
