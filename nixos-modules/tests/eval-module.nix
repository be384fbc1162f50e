# Evaluates ./spark-cluster.nix without nixpkgs, for `nix-instantiate --eval` in the Rust tests
# (cluster/tests/it/module.rs): a shim of the few `lib` functions the module uses, option
# defaults taken from its own declarations, and `mkIf`/`mkMerge`/`mkDefault` resolved into one
# attribute set (lists concatenated, attribute sets merged, a scalar set twice is an error).
#
# What this proves: the module puts the plan of lib.nix into the option paths it means to, with
# the flags, volumes and switches it documents. What it cannot prove here: that those option
# paths exist in nixpkgs (needs nixpkgs' lib and NixOS; see docs/cluster.md).
{ clusterFile, node, settings ? { }, hostName ? node }:
let
  inherit (builtins) isAttrs isList all attrNames foldl' mapAttrs filter substring stringLength;

  shim = rec {
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkDefault = content: { _type = "override"; inherit content; };
    mkForce = mkDefault;
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = name: mkOption { default = false; description = "Whether to enable ${name}."; };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
    types = {
      bool = "bool"; str = "str"; path = "path"; package = "package";
      enum = values: { enum = values; };
      nullOr = t: { nullOr = t; };
      listOf = t: { listOf = t; };
    };
  };

  # Stand-ins for the packages the module names; only their identity matters here.
  pkgs = { perftest = "pkgs.perftest"; rdma-core = "pkgs.rdma-core"; };

  module = import ../spark-cluster.nix;

  # Option defaults from the module's own declarations (evaluated with a config of defaults only
  # where a default depends on config: `node` defaults to networking.hostName).
  declared = (module { lib = shim; inherit pkgs; config = { networking.hostName = hostName; services.spark-cluster = { }; }; }).options.services.spark-cluster;
  defaults = opts: mapAttrs (_: o: if (o._type or null) == "option" then o.default or null else defaults o) opts;
  update = a: b: a // mapAttrs (k: v: if isAttrs v && isAttrs (a.${k} or null) && !(v ? _type) then update a.${k} v else v) b;
  cfg = update (defaults declared) ({ enable = true; inherit clusterFile node; } // settings);

  evaluated = module { lib = shim; inherit pkgs; config = { networking.hostName = hostName; services.spark-cluster = cfg; }; };

  resolve = v:
    if isAttrs v && (v._type or null) == "if" then (if v.condition then resolve v.content else { })
    else if isAttrs v && (v._type or null) == "merge" then foldl' merge { } (map resolve v.contents)
    else if isAttrs v && (v._type or null) == "override" then resolve v.content
    else if isAttrs v && !(v ? _type) then mapAttrs (_: resolve) v
    else v;
  merge = a: b: a // mapAttrs (k: v:
    if !(a ? ${k}) then v
    else if isAttrs v && isAttrs a.${k} then merge a.${k} v
    else if isList v && isList a.${k} then a.${k} ++ v
    else if v == a.${k} then v
    else throw "spark-cluster module sets `${k}` twice with different values") b;
in
resolve evaluated.config
