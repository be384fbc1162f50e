# Evaluates ./spark-cluster.nix without nixpkgs, for `nix-instantiate --eval` in the Rust tests
# (crates/cluster/tests/it/module.rs): a shim of the few `lib` functions the module uses, option
# defaults taken from its own declarations, and the definitions resolved the way the NixOS module
# system does for the cases that occur here: `mkIf`/`mkMerge`, priorities (`mkDefault` 1000,
# plain 100, `mkOverride N`, `mkForce` 50: the lowest number wins), lists of one priority
# concatenated, attribute sets merged, a scalar defined twice at one priority with two values an
# error.
#
# Besides our module it evaluates `modules` (e.g. ../examples/spark-node.nix, the example
# machine's hardware part) and ./nixpkgs-model.nix: what nixpkgs' own modules do with the options
# ours sets (the container toolkit's driver assertion, the unit oci-containers writes), so a
# configuration that nixpkgs would refuse fails here too (`withModel = false`: our module and
# `modules` only). Functions in the result read `"<function>"` unless `functions = true`.
#
# What this proves: the module puts the plan of lib.nix into the option paths it means to, with
# the flags, volumes and switches it documents, and its values win or lose against nixpkgs' as
# intended. What it cannot prove: that those option paths and types exist in nixpkgs (that is
# `cargo xtask nixos-real-lib`, see docs/cluster.md).
{ clusterFile, node, settings ? { }, hostName ? node, modules ? [ ], overlay ? true, withModel ? true, functions ? false }:
let
  inherit (builtins) isAttrs isList isFunction mapAttrs foldl' substring stringLength elem attrNames
    concatStringsSep listToAttrs parseDrvName;

  shim = rec {
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkOverride = priority: content: { _type = "override"; inherit priority content; };
    mkDefault = mkOverride 1000;
    mkForce = mkOverride 50;
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = name: mkOption { default = false; description = "Whether to enable ${name}."; };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalString = cond: s: if cond then s else "";
    hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
    hasInfix = infix: s: builtins.match ".*${infix}.*" s != null;
    getName = pkg: if isAttrs pkg then pkg.pname or (parseDrvName pkg.name).name else (parseDrvName pkg).name;
    inherit elem concatStringsSep;
    types = {
      bool = "bool"; str = "str"; path = "path"; package = "package";
      enum = values: { enum = values; };
      nullOr = t: { nullOr = t; };
      listOf = t: { listOf = t; };
    };
  };

  # Stand-ins for packages: only their identity matters here. Without the overlay, `perftest`
  # and `sparkctl` are absent, as in a flake that imports our module but not our overlay.
  pkgs = {
    rdma-core = "pkgs.rdma-core";
    callPackage = path: _args: "callPackage ${baseNameOf path}";
  } // (if overlay then { perftest = "pkgs.perftest"; sparkctl = "pkgs.sparkctl"; } else { });

  module = import ../spark-cluster.nix;
  model = import ./nixpkgs-model.nix;

  # Options nixpkgs declares and our module or the model reads, with nixpkgs' defaults.
  nixosDefaults = model.defaults // { networking = model.defaults.networking // { inherit hostName; }; };

  # Option defaults from the module's own declarations (evaluated with a config of defaults only
  # where a default depends on config: `node` defaults to networking.hostName).
  declared = (module { lib = shim; inherit pkgs; config = nixosDefaults // { services = nixosDefaults.services // { spark-cluster = { }; }; }; }).options.services.spark-cluster;
  defaultsOf = opts: mapAttrs (_: o: if (o._type or null) == "option" then o.default or null else defaultsOf o) opts;
  update = a: b: a // mapAttrs (k: v: if isAttrs v && isAttrs (a.${k} or null) && !(v ? _type) && !(v ? outPath) then update a.${k} v else v) b;

  # Definitions -> a tree whose leaves carry their priority.
  leaf = priority: value: { _leaf = true; inherit priority value; };
  resolveAt = priority: v:
    if isAttrs v && (v._type or null) == "if" then (if v.condition then resolveAt priority v.content else { })
    else if isAttrs v && (v._type or null) == "merge" then foldl' merge { } (map (resolveAt priority) v.contents)
    else if isAttrs v && (v._type or null) == "override" then resolveAt v.priority v.content
    else if isAttrs v && !(v ? _type) && !(v ? outPath) then mapAttrs (_: resolveAt priority) v
    else leaf priority v;
  resolve = resolveAt 100;
  merge = a: b: a // mapAttrs (k: v:
    if !(a ? ${k}) then v
    else if (v._leaf or false) && (a.${k}._leaf or false) then mergeLeaf k a.${k} v
    else if !(v._leaf or false) && !(a.${k}._leaf or false) then merge a.${k} v
    else throw "`${k}` is defined both as an attribute set and as a value") b;
  mergeLeaf = k: a: b:
    if a.priority < b.priority then a
    else if b.priority < a.priority then b
    else if isList a.value && isList b.value then leaf a.priority (a.value ++ b.value)
    else if a.value == b.value then a
    else throw "`${k}` has conflicting definitions at priority ${toString a.priority}";
  # JSON has no functions (`nixpkgs.config.allowUnfreePredicate`): `functions = true` keeps them.
  jsonable = v: if isFunction v then "<function>" else if isAttrs v then mapAttrs (_: jsonable) v else if isList v then map jsonable v else v;
  unwrap = t: if t._leaf or false then t.value else mapAttrs (_: unwrap) t;

  # Other modules of the machine (no dependency on our module's output).
  callModule = m: args: let f = if isFunction m || isAttrs m then m else import m; in if isFunction f then f args else f;
  configOf = m: if m ? config || m ? options || m ? imports then m.config or { } else m;
  others = foldl' merge { } (map (m: resolve (configOf (callModule m { lib = shim; inherit pkgs; config = nixosDefaults; }))) modules);
  seen = update nixosDefaults (unwrap others);
  # Our options: their defaults, then what `modules` and `settings` define (merged by priority).
  cfg = update (defaultsOf declared) (unwrap (merge ((others.services or { }).spark-cluster or { }) (resolve ({ enable = true; inherit clusterFile node; } // settings))));

  ours = resolve (module { lib = shim; inherit pkgs; config = seen // { services = seen.services // { spark-cluster = cfg; }; }; }).config;

  machine = merge others ours;
  nixpkgs = resolve (model.definitions { lib = shim; config = update nixosDefaults (unwrap machine); });
in
let result = unwrap (if withModel then merge machine nixpkgs else machine);
in if functions then result else jsonable result
