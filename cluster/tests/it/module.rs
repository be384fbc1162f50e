//! The NixOS module's wiring, evaluated with the real `nix-instantiate` through
//! `nixos-modules/tests/eval-module.nix` (a `lib` shim; nixpkgs is not available here): the
//! module puts the shared plan into the right options, and its container gets the same flags,
//! volumes and environment as `sparkctl render docker-run` / `env`.

use crate::support::{parse, repo_root, run, vectors};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// The resolved config of the module for `node` of `toml`, `settings` (a Nix attrset
/// expression) on top; `select` picks a part (`""` for all of it).
fn module_config(toml: &Path, node: &str, settings: &str, select: &str) -> Value {
    let eval = repo_root().join("nixos-modules/tests/eval-module.nix");
    let out = run(Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--argstr", "eval"])
        .arg(&eval)
        .arg("--argstr")
        .arg("file")
        .arg(toml)
        .args(["--argstr", "node", node, "-E"])
        .arg(format!("{{ eval, file, node }}: (import eval {{ clusterFile = file; inherit node; settings = {settings}; }}){select}")));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `docker run` options of the renderer as the `--flag=value` list the module passes to
/// oci-containers (which adds the name, `--rm`, env, volumes and image itself).
fn renderer_extra_options(c: &cluster::Cluster) -> (Vec<String>, Vec<String>) {
    let args = cluster::render::docker_args(c);
    let (mut options, mut volumes) = (Vec::new(), Vec::new());
    let mut i = 1;
    while i + 1 < args.len() {
        let (flag, value) = (&args[i], &args[i + 1]);
        match flag.as_str() {
            "--rm" => i += 1,
            "--name" | "--env-file" | "--gpus" => i += 2,
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

#[test]
fn module_sets_the_plan_and_the_renderers_container() {
    for v in vectors() {
        let c = parse(&v);
        for node in &c.nodes {
            let cfg = module_config(&v.toml, &node.name, "{ }", "");
            let plan = serde_json::to_value(cluster::plan::node_plan(&c, node)).unwrap();
            let at = format!("{}/{}", v.name, node.name);
            assert_eq!(cfg["systemd"]["network"]["networks"], plan["networks"], "{at}: networks");
            assert_eq!(cfg["systemd"]["network"]["enable"], json!(true));
            assert_eq!(cfg["boot"]["kernel"]["sysctl"], plan["sysctl"], "{at}: sysctl");
            assert_eq!(cfg["networking"]["firewall"]["trustedInterfaces"], plan["firewall"]["trustedInterfaces"]);
            assert_eq!(cfg["networking"]["firewall"]["allowedTCPPorts"], plan["firewall"]["allowedTCPPorts"]);
            assert!(cfg["assertions"].as_array().unwrap().iter().all(|a| a["assertion"] == json!(true)), "{at}: {}", cfg["assertions"]);

            let container = &cfg["virtualisation"]["oci-containers"]["containers"]["spark-cluster"];
            assert_eq!(container["environment"], plan["env"], "{at}: container env = rendered env file");
            assert_eq!(container["image"], json!(c.container.image));
            let (options, volumes) = renderer_extra_options(&c);
            let mut want = options;
            want.push("--device=nvidia.com/gpu=all".to_owned());
            assert_eq!(container["extraOptions"], json!(want), "{at}: container flags");
            assert_eq!(container["volumes"], json!(volumes), "{at}: volumes");
            assert_eq!(cfg["systemd"]["services"]["docker-spark-cluster"]["serviceConfig"]["LimitMEMLOCK"], json!("infinity"));
            assert_eq!(cfg["security"]["pam"]["loginLimits"][0]["value"], json!("unlimited"));
            assert_eq!(cfg["boot"]["kernelModules"], json!(["mlx5_ib", "ib_uverbs", "rdma_ucm"]));
            assert_eq!(cfg["environment"]["systemPackages"], json!(["pkgs.rdma-core", "pkgs.perftest"]));
        }
    }
}

#[test]
fn module_switches_turn_their_parts_off() {
    let v = &vectors()[0];
    let vm =
        module_config(&v.toml, "spark-3", r#"{ container.nvidia = false; container.backend = "podman"; rdma.softRoce = true; openFirewall = false; }"#, "");
    let container = &vm["virtualisation"]["oci-containers"]["containers"]["spark-cluster"];
    assert!(!container["extraOptions"].as_array().unwrap().contains(&json!("--device=nvidia.com/gpu=all")));
    assert!(vm["hardware"].get("nvidia-container-toolkit").is_none());
    assert_eq!(vm["virtualisation"]["podman"]["enable"], json!(true));
    assert!(vm["virtualisation"].get("docker").is_none());
    assert_eq!(vm["systemd"]["services"]["podman-spark-cluster"]["serviceConfig"]["LimitMEMLOCK"], json!("infinity"));
    assert_eq!(vm["networking"]["rxe"]["interfaces"], json!(["enp1s0f1np1", "enP2p1s0f1np1"]));
    assert!(vm["networking"].get("firewall").is_none());

    let bare = module_config(&v.toml, "spark-3", "{ network.enable = false; rdma.enable = false; container.enable = false; }", "");
    assert!(bare["systemd"].get("network").is_none() && bare["boot"].get("kernel").is_none());
    assert!(bare.get("virtualisation").is_none());
    assert!(bare["boot"].get("kernelModules").is_none());
}

#[test]
fn module_assertions_refuse_an_unknown_node_and_a_token_in_the_store() {
    let v = &vectors()[0];
    let assertions = module_config(&v.toml, "spark-9", "{ }", ".assertions");
    let failed: Vec<&str> = assertions.as_array().unwrap().iter().filter(|a| a["assertion"] == json!(false)).map(|a| a["message"].as_str().unwrap()).collect();
    assert!(failed.iter().any(|m| m.contains("spark-9") && m.contains("spark-2, spark-3")), "{failed:?}");
    let store = module_config(&v.toml, "spark-2", r#"{ tokenFile = "/nix/store/abc-token"; }"#, ".assertions");
    assert!(store.as_array().unwrap().iter().any(|a| a["assertion"] == json!(false) && a["message"].as_str().unwrap().contains("Nix store")));
}
