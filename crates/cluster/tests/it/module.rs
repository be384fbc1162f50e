//! The NixOS module's wiring, evaluated with the real `nix-instantiate` through
//! `nix/tests/eval-module.nix` (a `lib` shim plus a model of what nixpkgs' own modules
//! do with our options; nixpkgs itself is not available here): the module puts the shared plan
//! into the right options, its container gets the same flags and environment as `sparkctl render
//! docker-run` / `env`, and the example machines pass nixpkgs' assertions as well as ours.

// The helpers serve the `nix-instantiate` and Docker tests (system tests): unused when those are
// compiled out.
#![cfg_attr(not(feature = "system-tests"), allow(dead_code, unused_imports))]

use crate::support::{nix_instantiate, parse, repo_root, run, vectors};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// Where the example machines' secrets tool installs the token (nix/examples/spark-node.nix).
const TOKEN: &str = "/run/secrets/spark-cluster-token";

/// The evaluation of `eval-module.nix` for `node` of `toml`, `args` (a Nix attrset expression
/// with `settings`, `modules`, `overlay`, `withModel`) on top; `select` picks a part (`""` for
/// all of it). In `args`, `example` is the example machine's module (spark-node.nix) and `repo`
/// the repository root.
fn eval(toml: &Path, node: &str, args: &str, select: &str) -> Value {
    let root = repo_root();
    let expr = format!(
        "{{ repo, file, node }}: let repo' = /. + repo; example = repo' + \"/nix/examples/spark-node.nix\"; in \
         (import (repo' + \"/nix/tests/eval-module.nix\") ({{ clusterFile = file; inherit node; }} // {args})){select}"
    );
    let out = run(&mut nix_instantiate(&[("repo", root.as_os_str()), ("file", toml.as_os_str()), ("node", OsStr::new(node))], &expr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The example machine (its hardware part included) with `settings` for services.spark-cluster.
fn machine(toml: &Path, node: &str, settings: &str) -> Value {
    eval(toml, node, &format!("{{ modules = [ example ]; settings = {settings}; }}"), "")
}

/// The messages of the assertions that fail (ours and the modelled nixpkgs ones).
fn failed(cfg: &Value) -> Vec<String> {
    failed_of(&cfg["assertions"])
}

/// The same from a list of assertions alone: NixOS checks them before it evaluates the rest,
/// which may not evaluate when one fails (an unknown node has no plan).
fn failed_of(assertions: &Value) -> Vec<String> {
    assertions.as_array().unwrap().iter().filter(|a| a["assertion"] == json!(false)).map(|a| a["message"].as_str().unwrap().to_owned()).collect()
}

/// `docker run` options of the renderer as the `--flag=value` list the module passes to
/// oci-containers (which adds the name, `--rm`, env, volumes and image itself). The renderer's
/// token `--volume SRC:DST:ro` is the module's `--mount` (which never creates a missing source).
fn renderer_extra_options(c: &cluster::Cluster) -> (Vec<String>, Vec<String>) {
    let args = cluster::render::docker_args(c);
    let (mut options, mut volumes) = (Vec::new(), Vec::new());
    let mut i = 1;
    while i + 1 < args.len() {
        let (flag, value) = (&args[i], &args[i + 1]);
        match flag.as_str() {
            "--rm" => i += 1,
            "--name" | "--env-file" | "--gpus" => i += 2,
            "--volume" if value.ends_with(":ro") => {
                let (source, target) = value.trim_end_matches(":ro").split_once(':').unwrap();
                options.push(format!("--mount=type=bind,source={source},target={target},readonly"));
                i += 2
            }
            "--volume" => {
                volumes.push(value.clone());
                i += 2
            }
            "--ulimit" if value == "memlock=-1" => {
                // Docker reads `memlock=-1` as soft and hard -1; the module spells both out.
                options.push("--ulimit=memlock=-1:-1".to_owned());
                i += 2
            }
            _ => {
                options.push(format!("{flag}={value}"));
                i += 2
            }
        }
    }
    (options, volumes)
}

#[cfg(feature = "system-tests")]
#[test]
fn module_sets_the_plan_and_the_renderers_container() {
    for v in vectors() {
        let c = parse(&v);
        let token = c.container.token_file.display().to_string();
        for node in &c.nodes {
            let cfg = machine(&v.toml, &node.name, &format!("{{ tokenFile = \"{token}\"; }}"));
            let plan = serde_json::to_value(cluster::plan::node_plan(&c, node)).unwrap();
            let at = format!("{}/{}", v.name, node.name);
            assert_eq!(cfg["systemd"]["network"]["networks"], plan["networks"], "{at}: networks");
            assert_eq!(cfg["systemd"]["network"]["enable"], json!(true));
            assert_eq!(cfg["boot"]["kernel"]["sysctl"], plan["sysctl"], "{at}: sysctl");
            assert_eq!(cfg["networking"]["firewall"]["trustedInterfaces"], plan["firewall"]["trustedInterfaces"]);
            assert_eq!(cfg["networking"]["firewall"]["allowedTCPPorts"], plan["firewall"]["allowedTCPPorts"]);
            assert_eq!(failed(&cfg), Vec::<String>::new(), "{at}");

            let container = &cfg["virtualisation"]["oci-containers"]["containers"]["spark-cluster"];
            assert_eq!(container["environment"], plan["env"], "{at}: container env = rendered env file");
            assert_eq!(container["image"], json!(c.container.image));
            let (options, volumes) = renderer_extra_options(&c);
            let mut want = options;
            want.push("--device=nvidia.com/gpu=all".to_owned());
            assert_eq!(container["extraOptions"], json!(want), "{at}: container flags");
            assert_eq!(container["volumes"], json!(volumes), "{at}: volumes");
            assert_eq!(cfg["security"]["pam"]["loginLimits"][0]["value"], json!("unlimited"));
            assert_eq!(cfg["boot"]["kernelModules"], json!(["mlx5_ib", "ib_uverbs", "rdma_ucm"]));
            assert_eq!(cfg["environment"]["systemPackages"], json!(["pkgs.sparkctl", "pkgs.rdma-core", "pkgs.perftest"]));
        }
    }
}

#[cfg(feature = "system-tests")]
#[test]
fn module_switches_turn_their_parts_off() {
    let v = &vectors()[0];
    let vm = eval(
        &v.toml,
        "spark-3",
        &format!(
            r#"{{ settings = {{ container.nvidia = false; container.backend = "podman"; rdma.softRoce = true; openFirewall = false; tokenFile = "{TOKEN}"; }}; }}"#
        ),
        "",
    );
    assert_eq!(failed(&vm), Vec::<String>::new(), "a VM needs no GPU driver");
    let container = &vm["virtualisation"]["oci-containers"]["containers"]["spark-cluster"];
    assert!(!container["extraOptions"].as_array().unwrap().contains(&json!("--device=nvidia.com/gpu=all")));
    assert!(vm["hardware"].get("nvidia-container-toolkit").is_none());
    assert_eq!(vm["virtualisation"]["podman"]["enable"], json!(true));
    assert!(vm["virtualisation"].get("docker").is_none());
    assert_eq!(vm["systemd"]["services"]["podman-spark-cluster"]["serviceConfig"]["Restart"], json!("always"));
    assert_eq!(vm["networking"]["rxe"]["interfaces"], json!(["enp1s0f1np1", "enP2p1s0f1np1"]));
    assert!(vm["networking"].get("firewall").is_none());

    let bare = eval(&v.toml, "spark-3", "{ settings = { network.enable = false; rdma.enable = false; container.enable = false; }; }", "");
    assert_eq!(failed(&bare), Vec::<String>::new(), "no container: no token and no driver needed");
    assert!(bare["systemd"].get("network").is_none() && bare["boot"].get("kernel").is_none());
    assert!(bare.get("virtualisation").is_none());
    assert!(bare["boot"].get("kernelModules").is_none());
    assert!(bare.get("services").and_then(|s| s.get("udev")).is_none(), "no RDMA: no naming rule");
}

#[cfg(feature = "system-tests")]
#[test]
fn module_assertions_refuse_an_unknown_node_and_a_token_in_the_store() {
    let v = &vectors()[0];
    let unknown = failed_of(&eval(&v.toml, "spark-9", &format!("{{ modules = [ example ]; settings = {{ tokenFile = \"{TOKEN}\"; }}; }}"), ".assertions"));
    assert!(unknown.iter().any(|m| m.contains("spark-9") && m.contains("spark-2, spark-3")), "{unknown:?}");
    let store = failed(&machine(&v.toml, "spark-2", r#"{ tokenFile = "/nix/store/abc-token"; }"#));
    assert!(store.iter().any(|m| m.contains("Nix store")), "{store:?}");
}

/// nixpkgs asserts that the container toolkit has a driver: the example machines, evaluated with
/// their hardware part, satisfy it and nixpkgs' `hardware.nvidia.open` assertion, with the open
/// kernel module and the unfree driver allowed.
#[cfg(feature = "system-tests")]
#[test]
fn example_machines_pass_nixpkgs_driver_assertions() {
    let v = &vectors()[0];
    for node in ["spark-2", "spark-3"] {
        let cfg = machine(&v.toml, node, "{ }");
        assert_eq!(failed(&cfg), Vec::<String>::new(), "{node}");
        assert_eq!(cfg["hardware"]["nvidia-container-toolkit"]["enable"], json!(true));
        assert_eq!(cfg["hardware"]["nvidia"]["open"], json!(true), "GB10 runs the open kernel module only");
        assert!(cfg["services"]["xserver"]["videoDrivers"].as_array().unwrap().contains(&json!("nvidia")));
    }
    let allowed = |pkg: &str| eval(&v.toml, "spark-2", "{ modules = [ example ]; functions = true; }", &format!(".nixpkgs.config.allowUnfreePredicate {pkg}"));
    assert_eq!(allowed(r#"{ pname = "nvidia-x11"; }"#), json!(true));
    assert_eq!(allowed(r#"{ name = "nvidia-settings-580.95.05"; }"#), json!(true));
    assert_eq!(allowed(r#"{ pname = "hello-unfree"; }"#), json!(false), "unfree allowed by name, nothing else");
}

/// Without the example's hardware part, the GPU container and no driver: our own assertion says
/// exactly what to set, beside nixpkgs' (which only names the driver switch).
#[cfg(feature = "system-tests")]
#[test]
fn gpu_container_without_a_driver_is_refused_with_the_options_to_set() {
    let v = &vectors()[0];
    let cfg = eval(&v.toml, "spark-2", &format!("{{ settings = {{ tokenFile = \"{TOKEN}\"; }}; }}"), "");
    let failed = failed(&cfg);
    let ours = failed.iter().find(|m| m.starts_with("services.spark-cluster.container.nvidia")).unwrap_or_else(|| panic!("{failed:?}"));
    for must in [
        "services.xserver.videoDrivers = [ \"nvidia\" ]",
        "hardware.nvidia.open = true",
        "allowUnfreePredicate",
        "services.spark-cluster.container.nvidia = false",
    ] {
        assert!(ours.contains(must), "{must} missing from: {ours}");
    }
    assert!(failed.iter().any(|m| m.contains("nixpkgs (hardware.nvidia-container-toolkit)")), "the model of nixpkgs' assertion: {failed:?}");
    // A driver from elsewhere (the toolkit's own escape hatch) satisfies ours too.
    let other = eval(
        &v.toml,
        "spark-2",
        &format!(
            "{{ settings = {{ tokenFile = \"{TOKEN}\"; }}; modules = [ {{ hardware.nvidia-container-toolkit.suppressNvidiaDriverAssertion = true; }} ]; }}"
        ),
        "",
    );
    assert_eq!(self::failed(&other), Vec::<String>::new());
}

/// oci-containers sets `TimeoutStopSec = 120` at normal priority: the module's 90 s (the
/// container's 60 s `--stop-timeout` plus a margin) must outrank it, not lose to it as a default.
#[cfg(feature = "system-tests")]
#[test]
fn stop_timeout_outranks_oci_containers() {
    let v = &vectors()[0];
    let cfg = machine(&v.toml, "spark-2", &format!("{{ tokenFile = \"{TOKEN}\"; }}"));
    let service = &cfg["systemd"]["services"]["docker-spark-cluster"]["serviceConfig"];
    assert_eq!(service["TimeoutStopSec"], json!(90), "{service}");
    assert_eq!(service["Restart"], json!("always"));
    assert_eq!(service["RestartSec"], json!(10));
    // Memlock is the container's (`--ulimit`), not the `docker run` client's unit.
    assert!(service.get("LimitMEMLOCK").is_none(), "{service}");
    let options = &cfg["virtualisation"]["oci-containers"]["containers"]["spark-cluster"]["extraOptions"];
    assert!(options.as_array().unwrap().contains(&json!("--ulimit=memlock=-1:-1")));
}

/// The container toolkit turns on Docker's CDI feature itself; the module does not set it again.
#[cfg(feature = "system-tests")]
#[test]
fn docker_cdi_is_left_to_the_toolkit() {
    let v = &vectors()[0];
    let ours = eval(&v.toml, "spark-2", &format!("{{ modules = [ example ]; settings = {{ tokenFile = \"{TOKEN}\"; }}; withModel = false; }}"), "");
    assert_eq!(ours["virtualisation"]["docker"], json!({ "enable": true }));
    let all = machine(&v.toml, "spark-2", &format!("{{ tokenFile = \"{TOKEN}\"; }}"));
    assert_eq!(all["virtualisation"]["docker"]["daemon"]["settings"]["features"]["cdi"], json!(true));
}

/// `nixosModules.default` imported into another flake, without our overlay: perftest comes from
/// the module's own package file, not from a `pkgs.perftest` that is not there.
#[cfg(feature = "system-tests")]
#[test]
fn module_works_without_the_overlay() {
    let v = &vectors()[0];
    let cfg = eval(&v.toml, "spark-2", &format!("{{ modules = [ example ]; settings = {{ tokenFile = \"{TOKEN}\"; }}; overlay = false; }}"), "");
    assert_eq!(failed(&cfg), Vec::<String>::new());
    assert_eq!(cfg["environment"]["systemPackages"], json!(["pkgs.rdma-core", "callPackage perftest.nix"]));
}

/// The token: one required host file (a secrets tool's), mounted with `--mount` (which refuses a
/// missing source instead of creating a directory there), and the unit refuses to start on a
/// missing or empty file.
#[cfg(feature = "system-tests")]
#[test]
fn token_file_is_required_and_never_created() {
    let v = &vectors()[0];
    // Without the example machine, which names its secrets tool's path.
    let missing = failed(&eval(&v.toml, "spark-2", "{ }", ""));
    assert!(missing.iter().any(|m| m.starts_with("services.spark-cluster.tokenFile") && m.contains("sops-nix") && m.contains("agenix")), "{missing:?}");
    let relative = failed(&machine(&v.toml, "spark-2", r#"{ tokenFile = "secrets/token"; }"#));
    assert!(relative.iter().any(|m| m.contains("absolute")), "{relative:?}");

    let cfg = machine(&v.toml, "spark-2", &format!("{{ tokenFile = \"{TOKEN}\"; }}"));
    let container = &cfg["virtualisation"]["oci-containers"]["containers"]["spark-cluster"];
    let mount = format!("--mount=type=bind,source={TOKEN},target=/run/secrets/spark-cluster-token,readonly");
    assert!(container["extraOptions"].as_array().unwrap().contains(&json!(mount)), "{}", container["extraOptions"]);
    assert!(!container["volumes"].to_string().contains("spark-cluster-token"), "never a `-v` of the token: {}", container["volumes"]);
    let unit = &cfg["systemd"]["services"]["docker-spark-cluster"];
    assert_eq!(unit["unitConfig"]["AssertFileNotEmpty"], json!(TOKEN));
}

/// RDMA devices get DGX OS' names on NixOS too: rdma-core's `rdma_rename` (by PCI location), from
/// an absolute store path since NixOS' udev looks relative programs up in systemd's own directory.
#[cfg(feature = "system-tests")]
#[test]
fn rdma_devices_are_named_as_on_dgx_os() {
    let v = &vectors()[0];
    let cfg = machine(&v.toml, "spark-2", &format!("{{ tokenFile = \"{TOKEN}\"; }}"));
    let rules = cfg["services"]["udev"]["extraRules"].as_str().unwrap();
    assert!(
        rules.contains(r#"ACTION=="add", SUBSYSTEM=="infiniband", KERNEL!="hfi1*", PROGRAM="pkgs.rdma-core/lib/udev/rdma_rename %k NAME_FALLBACK""#),
        "{rules}"
    );
    let kernel = machine(&v.toml, "spark-2", &format!("{{ tokenFile = \"{TOKEN}\"; rdma.persistentNames = false; }}"));
    assert!(kernel.get("services").and_then(|s| s.get("udev")).is_none());

    // The example's names are what that rule gives: `roce` + the PCI part of the netdev's
    // systemd name (`enP2p1s0f1np1` -> `roceP2p1s0f1`).
    let c = parse(v);
    for node in &c.nodes {
        for rail in &node.rails {
            let pci = rail.interface.strip_prefix("en").and_then(|s| s.rsplit_once("np")).map(|(pci, _)| pci).unwrap();
            assert_eq!(rail.rdma_device.as_deref(), Some(format!("roce{pci}").as_str()), "{}", rail.interface);
        }
    }
}

/// The container's unit starts after the units that make its devices: soft-RoCE (the VM
/// container test) and the CDI spec of the GPU (real nodes).
#[cfg(feature = "system-tests")]
#[test]
fn container_starts_after_its_devices() {
    let v = &vectors()[0];
    let vm = eval(&v.toml, "spark-3", &format!("{{ settings = {{ container.nvidia = false; rdma.softRoce = true; tokenFile = \"{TOKEN}\"; }}; }}"), "");
    let unit = &vm["systemd"]["services"]["docker-spark-cluster"];
    for list in ["after", "wants"] {
        assert!(unit[list].as_array().unwrap().contains(&json!("rxe.service")), "{unit}");
        assert!(!unit[list].to_string().contains("cdi-generator"), "{unit}");
    }
    let node = machine(&v.toml, "spark-3", "{ }");
    let unit = &node["systemd"]["services"]["docker-spark-cluster"];
    for list in ["after", "wants"] {
        assert!(unit[list].as_array().unwrap().contains(&json!("nvidia-container-toolkit-cdi-generator.service")), "{unit}");
        assert!(!unit[list].to_string().contains("rxe"), "{unit}");
    }
}

/// `packages/image.nix` names the archive's image after `container.image`: a registry with a port
/// (the example's own image) is a name, not a tag; a digest cannot name an archive.
#[cfg(feature = "system-tests")]
#[test]
fn image_package_accepts_a_registry_with_a_port() {
    let root = repo_root();
    let image = |name: &str| -> Command {
        let expr = "{ name, repo }: (import (/. + repo + \"/nix/tests/eval-image.nix\") { imageName = name; }).script";
        nix_instantiate(&[("name", OsStr::new(name)), ("repo", root.as_os_str())], expr)
    };
    let c = parse(&vectors()[0]);
    for name in [c.container.image.as_str(), "sparkctl/vllm-spark:latest", "vllm:1"] {
        let script: String = serde_json::from_slice(&run(&mut image(name)).stdout).unwrap();
        assert!(script.contains(&format!("docker-archive:OUT:{name}")), "{script}");
    }
    for bad in ["spark-registry.lan:5000/sparkctl/vllm-spark", "localhost:5000/vllm@sha256:0f1e"] {
        let out = image(bad).output().unwrap();
        assert!(!out.status.success(), "{bad} accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("NAME:TAG"), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// The module's token option, given to the real Docker engine: a missing token file is refused
/// and nothing is created in its place (where `-v` makes a directory), a present one is mounted
/// read-only at the path the entrypoint reads.
#[cfg(feature = "system-tests")]
#[test]
fn docker_refuses_a_missing_token_instead_of_creating_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    let v = &vectors()[0];
    let cfg = machine(&v.toml, "spark-2", &format!("{{ tokenFile = \"{}\"; }}", token.display()));
    let options = cfg["virtualisation"]["oci-containers"]["containers"]["spark-cluster"]["extraOptions"].as_array().unwrap().clone();
    let mount = options.iter().filter_map(Value::as_str).find(|o| o.starts_with("--mount=")).unwrap().to_owned();

    let id = std::process::id();
    let image = format!("sparkctl-test/nix-token:{id}");
    run(Command::new("tar").arg("-cf").arg(tmp.path().join("empty.tar")).args(["-T", "/dev/null"]));
    run(Command::new("docker").arg("import").arg(tmp.path().join("empty.tar")).arg(&image));
    let create = |name: &str, option: &str| Command::new("docker").args(["create", "--name", name, option, &image, "/none"]).output().unwrap();
    let remove = |name: &str| {
        let _ = Command::new("docker").args(["rm", name]).output();
    };

    let missing = create(&format!("sparkctl-nix-token-{id}-missing"), &mount);
    assert!(!missing.status.success(), "Docker accepted a missing token file");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"), "{}", String::from_utf8_lossy(&missing.stderr));
    assert!(!token.exists(), "a missing token file became {:?}", std::fs::metadata(&token).map(|m| m.file_type()));

    std::fs::write(&token, "t0ken\n").unwrap();
    let present = format!("sparkctl-nix-token-{id}-present");
    let created = create(&present, &mount);
    let mounts = Command::new("docker").args(["inspect", "--format", "{{json .Mounts}}", &present]).output().unwrap();
    remove(&present);

    // The contrast that makes the check meaningful: `-v` of a missing file creates a directory.
    let dir = tmp.path().join("missing-by-v");
    let with_v = format!("sparkctl-nix-token-{id}-v");
    create(&with_v, &format!("--volume={}:/run/secrets/spark-cluster-token:ro", dir.display()));
    let _ = Command::new("docker").args(["start", &with_v]).output();
    remove(&with_v);
    let _ = Command::new("docker").args(["rmi", &image]).output();

    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let mounts: Value = serde_json::from_slice(&mounts.stdout).unwrap();
    assert_eq!(mounts[0]["Source"], json!(token.display().to_string()));
    assert_eq!(mounts[0]["Destination"], json!("/run/secrets/spark-cluster-token"));
    assert_eq!(mounts[0]["RW"], json!(false));
    assert!(dir.is_dir(), "`-v` no longer creates a directory: the contrast above tests nothing");
}

/// The VM tests' traffic crosses the NixOS test driver's vde_switch, whose packets hold one
/// 1518-byte Ethernet frame (14-byte header + 1504): the cluster file of the RDMA and container
/// VM tests is valid and its MTU fits, while the rail test's (the example's) is jumbo and is
/// checked on the links instead.
#[test]
fn vm_test_clusters_fit_the_test_switch() {
    const VDE_FRAME: u32 = 1518;
    let vm = cluster::parse_file(&repo_root().join("vm-tests/cluster.toml")).unwrap_or_else(|e| panic!("vm-tests/cluster.toml: {e}"));
    assert!(u32::from(vm.mtu) + 14 <= VDE_FRAME, "vm-tests/cluster.toml mtu = {} does not cross vde_switch", vm.mtu);
    let example = parse(&vectors()[0]);
    assert_eq!(example.mtu, 9000, "the rail VM test checks the example's jumbo MTU");
    for node in &vm.nodes {
        let ex = example.nodes.iter().find(|n| n.name == node.name).unwrap();
        let names = |n: &cluster::model::Node| n.rails.iter().map(|r| (r.interface.clone(), r.address)).collect::<Vec<_>>();
        assert_eq!(names(node), names(ex), "the VM tests use the example's rails");
    }
}
