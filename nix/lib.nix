# Pure helpers: cluster.toml (as `builtins.fromTOML` reads it) -> what one node needs.
#
# No nixpkgs here: only builtins, so `nix-instantiate --eval --strict --json` can evaluate it on
# the shared test vectors (crates/cluster/tests/vectors/, examples/cluster.toml) and the Rust test
# compares the result with `cluster::plan::node_plan` (ARCHITECTURE.md invariant 7: one answer, two
# languages). Keep this file and crates/cluster/src/{plan,derive,model}.rs in step; the vectors fail
# when they drift.
let
  inherit (builtins)
    all any attrNames concatStringsSep elemAt filter foldl' fromJSON head
    length listToAttrs map match replaceStrings toString;

  # The few bits of nixpkgs' lib these helpers need, written out so no nixpkgs is required.
  optionalAttrs = cond: attrs: if cond then attrs else { };
  nameValuePair = name: value: { inherit name value; };
  concatMapAttrs = f: list: foldl' (acc: x: acc // f x) { } list;
  # Exactly nixpkgs' `lib.escapeShellArg` (crates/cluster/src/shell.rs `quote` mirrors it).
  escapeShellArg = arg:
    let s = toString arg;
    in if match "[[:alnum:],._+:@%/-]+" s != null then s
       else "'${replaceStrings [ "'" ] [ "'\\''" ] s}'";
  escapeShellArgs = args: concatStringsSep " " (map escapeShellArg args);

  # crates/cluster/src/model.rs `defaults`.
  defaults = {
    mtu = 9000;
    disable_ipv6 = true;
    rendezvous_port = 29450;
    backend = "native";
    port = 8000;
    hf_cache = "/var/lib/spark-cluster/huggingface";
    env_file = "/etc/spark-cluster/spark.env";
    token_file = "/etc/spark-cluster/token";
    tokenPath = "/run/secrets/spark-cluster-token";
    transport = "auto";
    hf_home = "/root/.cache/huggingface";
    containerName = "spark-cluster";
    stateDir = "/var/lib/spark-cluster/state";
    stateMount = "/var/lib/spark-entrypoint";
  };

  # "192.168.100.10/24" -> { address = "192.168.100.10"; prefixLength = 24; }
  splitCidr = cidr:
    let m = match "([0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+)/([0-9]+)" cidr;
    in if m == null then throw "spark-cluster: `${cidr}` is not an IPv4 address with prefix"
       else { address = elemAt m 0; prefixLength = fromJSON (elemAt m 1); };

  # The cluster.toml sections with defaults filled in.
  settings = cfg: {
    name = cfg.cluster.name;
    backend = cfg.cluster.backend or defaults.backend;
    transport = cfg.cluster.transport or defaults.transport;
    rendezvousPort = cfg.cluster.rendezvous_port or defaults.rendezvous_port;
    mtu = cfg.cluster.mtu or defaults.mtu;
    disableIpv6 = cfg.cluster.disable_ipv6 or defaults.disable_ipv6;
    image = cfg.container.image;
    hfCache = cfg.container.hf_cache or defaults.hf_cache;
    envFile = cfg.container.env_file or defaults.env_file;
    tokenFile = cfg.container.token_file or defaults.token_file;
    extraEnv = cfg.container.env or { };
    model = cfg.serve.model;
    apiPort = cfg.serve.port or defaults.port;
    serveArgs = cfg.serve.args or [ ];
  };

  nodes = cfg: cfg.node;
  heads = cfg: filter (n: n.role == "head") (nodes cfg);
  findNode = cfg: name:
    let found = filter (n: n.name == name) (nodes cfg);
    in if found == [ ] then throw "spark-cluster: no node is named `${name}` in cluster.toml; nodes are: ${concatStringsSep ", " (nodeNames cfg)}"
       else head found;
  nodeNames = cfg: map (n: n.name) (nodes cfg);

  rails = node: map (r: (splitCidr r.address) // {
    interface = r.interface;
    rdmaDevice = r.rdma_device or null;
  }) node.rail;

  # crates/cluster/src/derive.rs `node_env`, then `declared_env`.
  nodeEnv = rs:
    let
      ifnames = concatStringsSep "," (map (r: r.interface) rs);
      withDev = filter (r: r.rdmaDevice != null) rs;
      hcas = concatStringsSep "," (map (r: "${r.rdmaDevice}:1") withDev);
    in
    if rs == [ ] then { } else {
      NCCL_SOCKET_IFNAME = ifnames;
      GLOO_SOCKET_IFNAME = (head rs).interface;
      VLLM_HOST_IP = (head rs).address;
    } // (if withDev == [ ] then {
      NCCL_IB_DISABLE = "1";
      UCX_NET_DEVICES = ifnames;
    } else {
      NCCL_IB_HCA = hcas;
      UCX_NET_DEVICES = hcas;
    });
  rdmaDerivedVars = [ "NCCL_IB_HCA" "UCX_NET_DEVICES" "NCCL_IB_DISABLE" ];
  declaredEnv = rs:
    let env = nodeEnv rs;
    in if any (r: r.rdmaDevice == null) rs
       then removeAttrsList env rdmaDerivedVars
       else env;
  removeAttrsList = attrs: names: builtins.removeAttrs attrs names;

  # crates/cluster/src/plan.rs `container_env`.
  containerEnv = cfg: node:
    let
      s = settings cfg;
      h = head (heads cfg);
      ordered = [ h.name ] ++ map (n: n.name) (filter (n: n.role != "head") (nodes cfg));
    in
    s.extraEnv
    // { HF_HOME = defaults.hf_home; }
    // declaredEnv (rails node)
    // {
      SPARK_ROLE = node.role;
      SPARK_NODE_NAME = node.name;
      SPARK_NODES = concatStringsSep "," ordered;
      SPARK_HEAD_ADDR = (head (rails h)).address;
      SPARK_RENDEZVOUS_PORT = toString s.rendezvousPort;
      SPARK_RAILS = concatStringsSep "," (map (r: r.interface) (rails node));
      SPARK_MTU = toString s.mtu;
      SPARK_TRANSPORT = s.transport;
      SPARK_BACKEND = s.backend;
      SPARK_TOKEN_FILE = defaults.tokenPath;
      SPARK_MODEL = s.model;
      SPARK_SERVE = builtins.toJSON (serveCommand cfg);
      SPARK_API_PORT = toString s.apiPort;
    }
    // optionalAttrs (digestOf s.image != null) { SPARK_IMAGE_DIGEST = digestOf s.image; };

  # "name@sha256:…" -> "sha256:…"; a tag gives null.
  digestOf = image: let m = match "[^@]*@(.*)" image; in if m == null then null else head m;

  # "registry:5000/ns/name:tag" -> { name = "registry:5000/ns/name"; tag = "tag"; }: the tag is
  # after the last `:` that follows the last `/` (a registry's port is part of the name). A
  # reference without a tag, or with a digest, gives null.
  imageNameTag = ref:
    let m = match "(([^@]*/)?[^/:@]+):([A-Za-z0-9_][A-Za-z0-9_.-]*)" ref;
    in if m == null then null else { name = elemAt m 0; tag = elemAt m 2; };

  # crates/cluster/src/plan.rs `serve_command`.
  serveCommand = cfg: let s = settings cfg; in
    [ "vllm" "serve" s.model ] ++ s.serveArgs ++ [ "--port" (toString s.apiPort) ];

  networkName = interface: "30-rail-${interface}";

  # crates/cluster/src/plan.rs `node_plan`: field names follow the NixOS options they feed.
  nodePlan = cfg: name:
    let
      s = settings cfg;
      node = findNode cfg name;
      rs = rails node;
    in {
      inherit name;
      role = node.role;
      rails = rs;
      networks = listToAttrs (map (r: nameValuePair (networkName r.interface) {
        matchConfig.Name = r.interface;
        address = [ "${r.address}/${toString r.prefixLength}" ];
        linkConfig.MTUBytes = toString s.mtu;
        networkConfig = {
          LinkLocalAddressing = if s.disableIpv6 then "no" else "ipv6";
          IPv6AcceptRA = false;
        };
      }) rs);
      sysctl = concatMapAttrs (r: {
        "net.ipv4.conf.${r.interface}.arp_ignore" = 1;
        "net.ipv4.conf.${r.interface}.arp_announce" = 2;
      } // optionalAttrs s.disableIpv6 {
        "net.ipv6.conf.${r.interface}.disable_ipv6" = 1;
      }) rs;
      env = containerEnv cfg node;
      firewall = {
        trustedInterfaces = map (r: r.interface) rs;
        allowedTCPPorts = if node.role == "head" then [ s.apiPort ] else [ ];
      };
    };

  # What the module asserts before using the file (the full validation is `sparkctl`'s; these
  # are the ones whose absence would make the helpers above throw or mislead).
  problems = cfg: name:
    let
      hs = heads cfg;
      known = any (n: n.name == name) (nodes cfg);
    in
    (if length hs != 1 then [ "cluster.toml must mark exactly one node `role = \"head\"` (found ${toString (length hs)}); run `sparkctl render env --node ${name}` for the full check" ] else [ ])
    ++ (if known then [ ] else [ "services.spark-cluster.node = \"${name}\" is not a node of cluster.toml; nodes are: ${concatStringsSep ", " (nodeNames cfg)}" ])
    ++ (if all (n: n ? rail && n.rail != [ ]) (nodes cfg) then [ ] else [ "every node of cluster.toml needs at least one [[node.rail]]" ]);
in
{
  inherit defaults escapeShellArg escapeShellArgs splitCidr settings rails nodeEnv declaredEnv
    containerEnv nodePlan networkName problems nodeNames serveCommand digestOf imageNameTag;

  # Reads a cluster.toml file.
  readCluster = path: builtins.fromTOML (builtins.readFile path);

  # Every node's plan keyed by node name: the shape of a test vector's expected JSON.
  clusterPlans = cfg: listToAttrs (map (n: nameValuePair n.name (nodePlan cfg n.name)) (nodes cfg));
}
