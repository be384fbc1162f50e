//! The DGX OS path and the NixOS path cannot drift: the networkd files that the real
//! `netplan generate` makes from our rendered YAML agree, key for key, with the networkd settings
//! the NixOS module takes from `lib.nix`.

use crate::support::{nix_plans, parse, run, vectors};
use cluster::render::{render, Format};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// `section.Key` → values, in file order per key, of a systemd INI file.
fn ini(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((k, v)) = line.split_once('=') {
            map.entry(format!("{section}.{k}")).or_default().push(v.to_owned());
        }
    }
    map
}

/// The same keys, from one `systemd.network.networks.<name>` value of the Nix plan.
fn from_nix(net: &serde_json::Value) -> BTreeMap<String, Vec<String>> {
    let s = |v: &serde_json::Value| v.as_str().expect("string").to_owned();
    let yes_no = |v: &serde_json::Value| if v.as_bool().expect("bool") { "yes" } else { "no" }.to_owned();
    BTreeMap::from([
        ("Match.Name".to_owned(), vec![s(&net["matchConfig"]["Name"])]),
        ("Link.MTUBytes".to_owned(), vec![s(&net["linkConfig"]["MTUBytes"])]),
        ("Network.Address".to_owned(), net["address"].as_array().expect("list").iter().map(s).collect()),
        ("Network.LinkLocalAddressing".to_owned(), vec![s(&net["networkConfig"]["LinkLocalAddressing"])]),
        ("Network.IPv6AcceptRA".to_owned(), vec![yes_no(&net["networkConfig"]["IPv6AcceptRA"])]),
    ])
}

fn generate(yaml: &str, root: &Path) {
    let dir = root.join("etc/netplan");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("40-cx7.yaml");
    std::fs::write(&file, yaml).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    run(Command::new("netplan").arg("generate").arg("--root-dir").arg(root));
}

#[test]
fn netplan_generate_agrees_with_the_nixos_networks_key_for_key() {
    for v in vectors() {
        let c = parse(&v);
        let nix = nix_plans(&v.toml);
        for node in &c.nodes {
            let tmp = tempfile::tempdir().unwrap();
            generate(&render(&c, node, Format::Netplan), tmp.path());
            let out = tmp.path().join("run/systemd/network");
            let mut files: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            files.sort();
            let mut want: Vec<String> =
                node.rails.iter().flat_map(|r| [format!("10-netplan-{}.link", r.interface), format!("10-netplan-{}.network", r.interface)]).collect();
            want.sort();
            assert_eq!(files, want, "{}/{}: netplan made other files than one .link and .network per rail", v.name, node.name);

            let networks = &nix[&node.name]["networks"];
            assert_eq!(networks.as_object().unwrap().len(), node.rails.len());
            for rail in &node.rails {
                let netplan = ini(&std::fs::read_to_string(out.join(format!("10-netplan-{}.network", rail.interface))).unwrap());
                let nixos = from_nix(&networks[cluster::plan::network_name(&rail.interface)]);
                assert_eq!(netplan, nixos, "{}/{}/{}: netplan's networkd file and the NixOS networks differ", v.name, node.name, rail.interface);
                // The .link file sets the MTU on the device itself too.
                let link = ini(&std::fs::read_to_string(out.join(format!("10-netplan-{}.link", rail.interface))).unwrap());
                assert_eq!(link["Link.MTUBytes"], vec![c.mtu.to_string()]);
                assert_eq!(link["Match.OriginalName"], vec![rail.interface.clone()]);
            }
        }
    }
}

/// The comparison above is not vacuous: netplan does report a different MTU and addresses when
/// the YAML says so, and rejects YAML that is not netplan.
#[test]
fn netplan_generate_sees_what_the_yaml_says() {
    let v = &vectors()[0];
    let c = parse(v);
    let node = c.node("spark-2").unwrap();
    let yaml = render(&c, node, Format::Netplan).replace("mtu: 9000", "mtu: 1500");
    let tmp = tempfile::tempdir().unwrap();
    generate(&yaml, tmp.path());
    let net = ini(&std::fs::read_to_string(tmp.path().join("run/systemd/network/10-netplan-enp1s0f1np1.network")).unwrap());
    assert_eq!(net["Link.MTUBytes"], vec!["1500"]);
    assert_eq!(net["Network.Address"], vec!["192.168.100.10/24"]);

    let bad = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(bad.path().join("etc/netplan")).unwrap();
    std::fs::write(bad.path().join("etc/netplan/40-cx7.yaml"), "network:\n  version: 2\n  ethernets:\n    eth0:\n      mtu: lots\n").unwrap();
    let status = Command::new("netplan").arg("generate").arg("--root-dir").arg(bad.path()).output().unwrap();
    assert!(!status.status.success(), "netplan must reject an invalid MTU");
}
