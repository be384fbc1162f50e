//! Bad input: each mistake gives one error line that names the file, the key or
//! node, and the fix. Each case edits the commented example, so the example stays valid too.

use crate::support::repo_root;
use cluster::Error;
use std::path::Path;

fn example() -> String {
    std::fs::read_to_string(repo_root().join("examples/cluster.toml")).unwrap()
}

/// Replaces the `nth` (0-based) occurrence of `from` in `text`.
fn edit(text: &str, from: &str, to: &str, nth: usize) -> String {
    let (at, _) = text.match_indices(from).nth(nth).unwrap_or_else(|| panic!("`{from}` #{nth} not in the example"));
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

fn error_of(text: &str) -> Error {
    match cluster::parse_str(text, Path::new("conf/cluster.toml")) {
        Ok(_) => panic!("accepted a bad cluster.toml"),
        Err(e) => e,
    }
}

/// One line, naming the file, containing every expected fragment.
fn check(text: &str, fragments: &[&str]) -> Error {
    let err = error_of(text);
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "not one line: {msg}");
    assert!(msg.contains("`conf/cluster.toml`"), "does not name the file: {msg}");
    for f in fragments {
        assert!(msg.contains(f), "`{f}` not in: {msg}");
    }
    err
}

#[test]
fn the_example_is_valid() {
    let c = cluster::parse_str(&example(), Path::new("cluster.toml")).unwrap();
    assert_eq!(c.expected_nodes(), 2);
    assert_eq!(c.head().name, "spark-2");
    assert_eq!(c.node("spark-3").unwrap().rails[1].rdma_device.as_deref(), Some("roceP2p1s0f1"));
}

#[test]
fn unknown_keys_name_their_path_and_suggest_the_right_one() {
    let e = check(
        &edit(&example(), "address = \"192.168.101.11/24\"", "adress = \"192.168.101.11/24\"", 0),
        &["`node[1].rail[1].adress`", "did you mean `address`"],
    );
    assert!(matches!(e, Error::UnknownKey { ref key, .. } if key == "node[1].rail[1].adress"));
    check(&edit(&example(), "[serve]", "[serv]", 0), &["unknown key `serv`", "did you mean `serve`"]);
    check(&edit(&example(), "rdma_device", "rdma_devices", 0), &["`node[0].rail[0].rdma_devices`", "did you mean `rdma_device`"]);
    check(&edit(&example(), "mtu = 9000", "mtu = 9000\nwhatever = 1", 0), &["unknown key `cluster.whatever`", "remove it"]);
    let no_hint = error_of(&edit(&example(), "mtu = 9000", "mtu = 9000\nwhatever = 1", 0));
    assert!(!no_hint.to_string().contains("did you mean"), "no far-fetched suggestion: {no_hint}");
}

#[test]
fn duplicate_addresses_are_refused() {
    let e = check(&edit(&example(), "192.168.100.11/24", "192.168.100.10/24", 0), &["192.168.100.10", "spark-2/enp1s0f1np1", "spark-3/enp1s0f1np1"]);
    assert!(matches!(e, Error::DuplicateAddress { .. }));
    // A management address that collides with a rail of the other node.
    check(&edit(&example(), "192.168.102.11/24", "192.168.101.10/24", 0), &["192.168.101.10", "spark-3/enP7s7"]);
}

#[test]
fn two_twins_on_one_subnet_are_refused() {
    let e =
        check(&edit(&example(), "192.168.101.10/24", "192.168.100.20/24", 0), &["`spark-2`", "enp1s0f1np1", "enP2p1s0f1np1", "192.168.100.0/24", "own subnet"]);
    assert!(matches!(e, Error::TwinsShareSubnet { .. }));
}

#[test]
fn rails_on_different_subnets_between_nodes_are_refused() {
    let e =
        check(&edit(&example(), "192.168.101.11/24", "192.168.105.11/24", 0), &["rail 1", "192.168.101.0/24", "`spark-2`", "192.168.105.0/24", "`spark-3`"]);
    assert!(matches!(e, Error::RailSubnetMismatch { index: 1, .. }));
    // Same network address but another prefix is another subnet.
    check(&edit(&example(), "192.168.100.11/24", "192.168.100.11/23", 0), &["rail 0", "192.168.100.0/23"]);
}

#[test]
fn a_missing_or_second_head_is_refused() {
    let e = check(&edit(&example(), "role = \"head\"", "role = \"worker\"", 0), &["no node has `role = \"head\"`"]);
    assert!(matches!(e, Error::NoHead { .. }));
    let e = check(&edit(&example(), "role = \"worker\"", "role = \"head\"", 0), &["`spark-2`", "`spark-3`", "exactly one head"]);
    assert!(matches!(e, Error::SeveralHeads { .. }));
}

#[test]
fn mtu_out_of_range_is_refused() {
    for bad in ["65000", "1000", "-1"] {
        let e = check(&edit(&example(), "mtu = 9000", &format!("mtu = {bad}"), 0), &[&format!("mtu = {bad}"), "1500..=9978", "9000"]);
        assert!(matches!(e, Error::MtuOutOfRange { .. }));
    }
    cluster::parse_str(&edit(&example(), "mtu = 9000", "mtu = 9978", 0), Path::new("c.toml")).unwrap();
}

#[test]
fn misspelt_values_get_suggestions() {
    check(&edit(&example(), "role = \"worker\"", "role = \"wroker\"", 0), &["`node[1].role = \"wroker\"`", "did you mean `worker`"]);
    check(&edit(&example(), "backend = \"native\"", "backend = \"nativ\"", 0), &["`cluster.backend", "did you mean `native`"]);
}

#[test]
fn wrong_types_and_bad_values_name_the_key() {
    check(&edit(&example(), "mtu = 9000", "mtu = \"9000\"", 0), &["`cluster.mtu` must be an integer", "string"]);
    check(&edit(&example(), "192.168.100.10/24", "192.168.100.300/24", 0), &["`node[0].rail[0].address", "not an IPv4 address"]);
    check(&edit(&example(), "192.168.100.10/24", "192.168.100.0/24", 0), &["network or broadcast address"]);
    check(&edit(&example(), "192.168.100.10/24", "192.168.100.10", 0), &["no `/prefix`"]);
    check(&edit(&example(), "interface = \"enp1s0f1np1\"", "interface = \"enp1s0f1np1.100\"", 0), &["`node[0].rail[0].interface", "not a netdev name"]);
    check(&edit(&example(), "port = 8000", "port = 29450", 0), &["`serve.port = 29450`", "rendezvous"]);
    check(&edit(&example(), "\"--enforce-eager\",", "\"--enforce-eager\", \"--port=9000\",", 0), &["`serve.args = \"--port=9000\"`", "set `serve.port`"]);
    check(&edit(&example(), "transport = \"ib\"", "transport = \"rdma\"", 0), &["`cluster.transport = \"rdma\"`", "`auto`, `ib` or `socket`"]);
    check(&edit(&example(), "rendezvous_port = 29450", "rendezvous_port = 70000", 0), &["`cluster.rendezvous_port = 70000`", "1..=65535"]);
    check(&edit(&example(), "name = \"spark-3\"", "name = \"spark-2\"", 0), &["`spark-2` appears twice"]);
    check(&edit(&example(), "name = \"spark-3\"", "name = \"Spark_3\"", 0), &["`node[1].name", "lowercase"]);
    check(&edit(&example(), "hf_cache = \"/var/lib/spark-cluster/huggingface\"", "hf_cache = \"hf\"", 0), &["`container.hf_cache", "absolute path"]);
}

#[test]
fn missing_pieces_are_named() {
    check(&edit(&example(), "image = \"spark-registry.lan:5000/sparkctl/vllm-spark:25.11\"", "", 0), &["missing key `container.image`"]);
    let text = example();
    let cut = text.find("[[node]]").unwrap();
    check(&text[..cut], &["missing key `node`"]);
    // spark-3 without its second rail.
    let last_rail = text.rfind("  [[node.rail]]").unwrap();
    check(&text[..last_rail], &["`spark-3` has 1 rail(s) but `spark-2` has 2"]);
}

#[test]
fn node_specific_variables_cannot_be_set_by_hand() {
    for var in ["NCCL_IB_HCA", "VLLM_HOST_IP", "SPARK_ROLE"] {
        check(&edit(&example(), "HF_HUB_OFFLINE", var, 0), &[&format!("`container.env.{var}"), "derived per node", "remove it"]);
    }
    // The launch check's mode is the same on every node: it may be set, and reaches every node.
    let c = cluster::parse_str(&edit(&example(), "HF_HUB_OFFLINE = \"1\"", "SPARK_PLAN = \"warn\"", 0), Path::new("c.toml")).unwrap();
    for node in &c.nodes {
        assert_eq!(cluster::plan::container_env(&c, node).get("SPARK_PLAN").map(String::as_str), Some("warn"));
    }
}

#[test]
fn parallelism_must_match_the_node_count() {
    let e = check(&edit(&example(), "\"--tensor-parallel-size\", \"2\"", "\"--tensor-parallel-size\", \"4\"", 0), &["--tensor-parallel-size 4", "2 node(s)"]);
    assert!(matches!(e, Error::ParallelismMismatch { product: 4, nodes: 2, .. }));
    check(
        &edit(&example(), "\"--tensor-parallel-size\", \"2\"", "\"--tensor-parallel-size=1\", \"--pipeline-parallel-size\", \"3\"", 0),
        &["× --pipeline-parallel-size 3"],
    );
    cluster::parse_str(
        &edit(&example(), "\"--tensor-parallel-size\", \"2\"", "\"--tensor-parallel-size=1\", \"--pipeline-parallel-size=2\"", 0),
        Path::new("c.toml"),
    )
    .unwrap();
}

#[test]
fn short_parallelism_flags_count_like_long_ones() {
    for (from, to) in [
        ("\"--tensor-parallel-size\", \"2\"", "\"-tp\", \"4\""),
        ("\"--tensor-parallel-size\", \"2\"", "\"-tp=4\""),
        ("\"--tensor-parallel-size\", \"2\"", "\"-tp\", \"1\", \"-pp\", \"3\""),
        ("\"--tensor-parallel-size\", \"2\"", "\"-pp=4\""),
    ] {
        let e = check(&edit(&example(), from, to, 0), &["2 node(s)"]);
        assert!(matches!(e, Error::ParallelismMismatch { nodes: 2, .. }), "{to}: {e}");
    }
    check(&edit(&example(), "\"--tensor-parallel-size\", \"2\"", "\"-tp\", \"two\"", 0), &["-tp \"two\"", "not a positive integer"]);
    cluster::parse_str(&edit(&example(), "\"--tensor-parallel-size\", \"2\"", "\"-tp\", \"2\"", 0), Path::new("c.toml")).unwrap();
}

#[test]
fn uppercase_image_repositories_are_refused() {
    let image = "spark-registry.lan:5000/sparkctl/vllm-spark:25.11";
    for (bad, fix) in [
        ("spark-registry.lan:5000/SparkCtl/vllm-spark:25.11", "spark-registry.lan:5000/sparkctl/vllm-spark:25.11"),
        ("Vllm-Spark:v1", "vllm-spark:v1"),
        ("localhost/Me/x@sha256:aa", "localhost/me/x@sha256:aa"),
    ] {
        check(&edit(&example(), image, bad, 0), &["`container.image", "uppercase", &format!("write `{fix}`")]);
    }
    // Uppercase in a tag or a registry host is Docker's to accept.
    for ok in ["spark-registry.lan:5000/sparkctl/vllm-spark:V1-RC", "Registry.LAN:5000/sparkctl/vllm-spark:25.11"] {
        cluster::parse_str(&edit(&example(), image, ok, 0), Path::new("c.toml")).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn mounted_paths_that_would_split_a_volume_are_refused() {
    for key in ["hf_cache", "env_file", "token_file"] {
        for bad in ["/var/lib/hf cache", "/var/lib/hf:cache", "/var/lib/hf,cache", "/var/lib/hf\tcache"] {
            let text: String =
                example().lines().map(|l| if l.starts_with(&format!("{key} = ")) { format!("{key} = {bad:?}\n") } else { format!("{l}\n") }).collect();
            check(&text, &[&format!("`container.{key}"), "--volume HOST:CONTAINER"]);
        }
    }
}

#[test]
fn rdma_device_names_that_would_corrupt_nccl_ib_hca_are_refused() {
    let long = "x".repeat(64);
    for bad in ["rocep1s0f1 ", "roce p1", "rocep1s0f1;rm", "rocep1s0f1,mlx5_0", "rocep1s0f1:1", "..", "", long.as_str()] {
        let text = edit(&example(), "rdma_device = \"rocep1s0f1\"", &format!("rdma_device = {bad:?}"), 0);
        let err = error_of(&text).to_string();
        assert!(err.contains("rdma_device") && err.contains("`conf/cluster.toml`"), "{bad:?}: {err}");
    }
    for ok in ["mlx5_0", "roceP2p1s0f1", "ib.dev-1"] {
        cluster::parse_str(&edit(&example(), "rdma_device = \"rocep1s0f1\"", &format!("rdma_device = {ok:?}"), 0), Path::new("c.toml")).unwrap();
    }
}

#[test]
fn syntax_errors_at_column_one_give_their_own_line() {
    let text = example();
    let line = text.lines().position(|l| l.starts_with("[container]")).unwrap() + 1;
    let e = check(&edit(&text, "[container]", "[container", 0), &[&format!("line {line}")]);
    assert!(matches!(e, Error::Syntax { line: l, .. } if l == line), "{e}");
    let e = check(&edit(&text, "[container]\n", "[container]\n= 1\n", 0), &[&format!("line {}", line + 1)]);
    assert!(matches!(e, Error::Syntax { .. }), "{e}");
}

#[test]
fn syntax_errors_give_the_line() {
    let e = check(&edit(&example(), "name = \"spark-duo\"", "name = spark-duo", 0), &["line 9"]);
    assert!(matches!(e, Error::Syntax { line: 9, .. }), "{e}");
}

#[test]
fn unknown_nodes_get_a_suggestion() {
    let c = cluster::parse_str(&example(), Path::new("conf/cluster.toml")).unwrap();
    let msg = c.node("spark3").unwrap_err().to_string();
    assert!(msg.contains("no node is named `spark3`") && msg.contains("did you mean `spark-3`") && msg.contains("spark-2, spark-3"), "{msg}");
}

#[test]
fn unreadable_files_name_the_path() {
    let msg = cluster::parse_file(Path::new("/nonexistent/cluster.toml")).unwrap_err().to_string();
    assert!(msg.contains("cannot read `/nonexistent/cluster.toml`"), "{msg}");
}

/// The 1-based line of the `nth` occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str, nth: usize) -> usize {
    let (at, _) = text.match_indices(needle).nth(nth).unwrap_or_else(|| panic!("`{needle}` #{nth} not in the text"));
    text[..at].matches('\n').count() + 1
}

#[test]
fn key_and_value_errors_name_their_line() {
    let cases: [(&str, &str, &str, &str); 6] = [
        // (from, to, the key the error names, what it says)
        ("address = \"192.168.101.11/24\"", "adress = \"192.168.101.11/24\"", "unknown key `node[1].rail[1].adress`", "did you mean `address`"),
        ("mtu = 9000", "mtu = \"9000\"", "`cluster.mtu` must be an integer", "found string `\"9000\"`"),
        ("role = \"worker\"", "role = \"wroker\"", "`node[1].role = \"wroker\"` is not one of", "did you mean `worker`"),
        ("mtu = 9000", "mtu = 100", "mtu = 100 is out of range", "9000"),
        ("interface = \"enp1s0f1np1\"", "interface = \"enp1s0f1np1.100\"", "`node[0].rail[0].interface", "not a netdev name"),
        // Checked after the walk, on the model: the line comes from the key's path.
        ("name = \"spark-3\"", "name = \"Spark_3\"", "`node[1].name", "lowercase"),
    ];
    for (from, to, key, says) in cases {
        let text = edit(&example(), from, to, 0);
        let at = format!("`conf/cluster.toml` line {}: ", line_of(&text, to, 0));
        let msg = check(&text, &[key, says]).to_string();
        assert!(msg.starts_with(&at), "`{at}` does not start: {msg}");
    }
    // A missing key is named at its table's line.
    let text = edit(&example(), "image = \"spark-registry.lan:5000/sparkctl/vllm-spark:25.11\"", "", 0);
    let msg = check(&text, &["missing key `container.image`"]).to_string();
    assert!(msg.starts_with(&format!("`conf/cluster.toml` line {}: ", line_of(&text, "[container]", 0))), "{msg}");
}
