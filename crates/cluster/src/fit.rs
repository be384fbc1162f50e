//! Will this model fit on these Sparks? A pure estimate of one node's memory for a `vllm serve`
//! command: weights per rank, the KV cache as the model really keeps it (full attention, MLA
//! latents, sliding windows, linear-attention state), activations, CUDA graphs and the runtime,
//! against what vLLM will take (`--gpu-memory-utilization` × the node's memory) and what the node
//! can give (128 GB unified minus an OS reserve, or MemAvailable on a live node). Plus the
//! structural checks (heads divisible by the tensor-parallel size, tp × pp = nodes) and the
//! known-bad rules ([`crate::known_bad`]). `sparkctl plan` prints a [`Plan`]; spark-entrypoint
//! computes the same before it launches vLLM on the head.
//!
//! Every estimate is an allowance, not a measurement: the table shows each term and how it was
//! computed so the reader can check it (docs/plan.md).

use crate::error::{Error, Result};
use crate::known_bad::{Facts, Finding, Rules, Severity, Version};
use crate::sysfs::Root;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub(crate) const GIB: u64 = 1 << 30;

/// Bytes of `gib` GiB.
pub fn gib(gib: f64) -> u64 {
    (gib * GIB as f64) as u64
}

fn in_gib(bytes: u64) -> f64 {
    bytes as f64 / GIB as f64
}

/// DGX Spark facts the nominal estimate uses.
pub mod spark {
    /// The GPU architecture of GB10.
    pub const ARCH: &str = "sm_121";
    /// What CUDA (and vLLM) report as GB10's total memory: "Free memory on device
    /// (102.45/121.63 GiB) on startup" (vllm-project/vllm#49079).
    pub(crate) const TOTAL_GIB: f64 = 121.63;
    /// What CUDA can actually take: it tops out near 102 GiB (kernel 6.17.0-1031, driver
    /// 580.173) to 110 GiB (driver 580.159) of 121.7 GiB; the lower end is the safe assumption
    /// (MiaAI-Lab/GLM-5.3-Flash-EXL3-2x-DGX-Sparks#47: "CUDA free caps at ~102/121.69 GiB").
    pub(crate) const USABLE_GIB: f64 = 102.0;
}

/// vLLM's defaults where a flag is absent: the API server on a GPU with at least 70 GiB that is
/// not an A100 (`EngineArgs.get_batch_defaults` in vLLM's `engine/arg_utils.py`), as GB10 is.
pub(crate) mod vllm_defaults {
    pub(crate) const GPU_MEMORY_UTILIZATION: f64 = 0.9;
    pub(crate) const MAX_NUM_BATCHED_TOKENS: u64 = 8192;
    pub(crate) const MAX_NUM_SEQS: u64 = 1024;
    /// The largest CUDA graph batch size captured.
    pub(crate) const MAX_CAPTURE_SIZE: u64 = 512;
    /// KV cache block size in tokens.
    pub(crate) const BLOCK_SIZE: u64 = 16;
}

/// The CUDA context, NCCL and cuBLAS workspaces and allocator slack that vLLM's budget does not
/// see as torch memory.
pub(crate) const RUNTIME_ALLOWANCE_GIB: f64 = 2.0;
/// Headroom below which the verdict is "tight" rather than "fits".
pub(crate) const TIGHT_GIB: f64 = 4.0;

/// How one decoder layer keeps its past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Keys and values for every token.
    Full,
    /// Keys and values for the last `window` tokens only.
    Sliding {
        /// The window, in tokens.
        window: u64,
    },
    /// A fixed-size recurrent state per sequence (Gated DeltaNet, Mamba-like).
    Linear,
}

/// Multi-head latent attention (DeepSeek-V2/V3): one compressed latent per token and layer,
/// the same on every tensor-parallel rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Mla {
    pub(crate) kv_lora_rank: u64,
    pub(crate) rope_head_dim: u64,
}

/// The linear-attention layers' per-sequence state (Qwen3-Next's Gated DeltaNet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct LinearAttention {
    pub(crate) conv_kernel: u64,
    pub(crate) key_heads: u64,
    pub(crate) value_heads: u64,
    pub(crate) key_dim: u64,
    pub(crate) value_dim: u64,
}

/// What `config.json` says that matters for memory. Vision-language configs nest the language
/// model in `text_config`; it is read from there.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelShape {
    pub(crate) model_type: String,
    /// Each decoder layer's attention, in order.
    pub layers: Vec<Layer>,
    /// Hidden size.
    pub hidden: u64,
    /// Attention heads.
    pub heads: u64,
    /// Key/value heads.
    pub kv_heads: u64,
    /// Dimension of one head.
    pub head_dim: u64,
    pub(crate) dtype: String,
    /// Bytes per value of the config's dtype.
    pub dtype_bytes: u64,
    /// Vocabulary size.
    pub vocab: u64,
    /// The longest context the model supports, when the config says.
    pub max_positions: Option<u64>,
    /// Intermediate width one token passes through: top-k × expert width, or the dense FFN.
    pub(crate) ffn_per_token: u64,
    /// `(experts, experts per token)` for mixture-of-experts models.
    pub experts: Option<(u64, u64)>,
    pub(crate) mla: Option<Mla>,
    pub(crate) linear: Option<LinearAttention>,
    /// `awq`, `fp8`, `nvfp4`, `gptq`, … (`quantization_config.quant_method`, NVFP4 recognised).
    pub quant: Option<String>,
    /// Hidden size of the vision encoder, for vision-language models.
    pub vision_hidden: Option<u64>,
}

/// The largest integer accepted from `config.json` or a token/sequence flag.
const MAX_CONFIG_VALUE: u64 = 1 << 24;

/// Reads typed fields of a JSON object, naming the key path in errors.
struct Json<'a> {
    file: &'a Path,
}

impl Json<'_> {
    fn get<'v>(&self, obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
        obj.get(key).filter(|v| !v.is_null())
    }

    fn uint(&self, obj: &Map<String, Value>, at: &str, key: &str) -> Result<Option<u64>> {
        match self.get(obj, key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64)) {
                // No real model has a dimension or count near 2^24 (16 M); larger values would
                // only overflow the arithmetic.
                Some(u) if u > MAX_CONFIG_VALUE => Err(Error::InvalidValue {
                    file: self.file.to_owned(),
                    line: None,
                    key: path(at, key),
                    value: u.to_string(),
                    problem: "it is implausibly large".into(),
                    fix: "give the model's real config.json".into(),
                }),
                Some(u) => Ok(Some(u)),
                None => Err(self.wrong(at, key, "a non-negative integer", &n.to_string())),
            },
            Some(other) => Err(self.wrong(at, key, "a non-negative integer", &other.to_string())),
        }
    }

    fn req(&self, obj: &Map<String, Value>, at: &str, key: &str, what: &'static str) -> Result<u64> {
        match self.uint(obj, at, key)? {
            Some(0) => Err(Error::InvalidValue {
                file: self.file.to_owned(),
                line: None,
                key: path(at, key),
                value: "0".into(),
                problem: "it is zero".into(),
                fix: "give the model's real config.json".into(),
            }),
            Some(v) => Ok(v),
            None => Err(Error::MissingKey { file: self.file.to_owned(), line: None, key: path(at, key), what }),
        }
    }

    fn str<'v>(&self, obj: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
        self.get(obj, key).and_then(Value::as_str)
    }

    fn wrong(&self, at: &str, key: &str, expected: &'static str, found: &str) -> Error {
        Error::WrongType { file: self.file.to_owned(), line: None, key: path(at, key), expected, found: found.chars().take(60).collect() }
    }
}

fn path(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

fn dtype_bytes(dtype: &str) -> Option<u64> {
    match dtype {
        "bfloat16" | "float16" | "half" | "bf16" | "fp16" => Some(2),
        "float32" | "float" | "fp32" => Some(4),
        _ if dtype.starts_with("fp8") || dtype.starts_with("float8") => Some(1),
        _ => None,
    }
}

impl ModelShape {
    /// Parses a Hugging Face `config.json`; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<ModelShape> {
        let doc: Value = serde_json::from_str(text).map_err(|e| Error::Syntax { file: file.to_owned(), line: e.line().max(1), message: e.to_string() })?;
        let j = Json { file };
        let Some(top) = doc.as_object() else {
            return Err(j.wrong("", "(document)", "a JSON object", &doc.to_string()));
        };
        let (text_cfg, at) = match j.get(top, "text_config") {
            Some(Value::Object(t)) => (t, "text_config"),
            Some(other) => return Err(j.wrong("", "text_config", "an object", &other.to_string())),
            None => (top, ""),
        };
        // A key of the language model, else of the top level (VL configs keep dtype and the
        // quantisation there).
        let either = |key: &str| j.get(text_cfg, key).or_else(|| j.get(top, key));
        let hidden = j.req(text_cfg, at, "hidden_size", "the model width")?;
        let heads = j.req(text_cfg, at, "num_attention_heads", "the number of attention heads")?;
        let kv_heads = j.uint(text_cfg, at, "num_key_value_heads")?.unwrap_or(heads);
        let head_dim = match j.uint(text_cfg, at, "head_dim")? {
            Some(d) if d > 0 => d,
            _ => hidden / heads,
        };
        let n_layers = j.req(text_cfg, at, "num_hidden_layers", "the number of decoder layers")?;
        if n_layers > 10_000 || kv_heads == 0 {
            return Err(Error::InvalidValue {
                file: file.to_owned(),
                line: None,
                key: path(at, "num_hidden_layers"),
                value: n_layers.to_string(),
                problem: "the layer or head counts are implausible".into(),
                fix: "give the model's real config.json".into(),
            });
        }
        let dtype = either("torch_dtype").or_else(|| either("dtype")).and_then(Value::as_str).unwrap_or("bfloat16").to_owned();
        let dtype_bytes = dtype_bytes(&dtype).ok_or_else(|| Error::InvalidValue {
            file: file.to_owned(),
            line: None,
            key: "torch_dtype".into(),
            value: dtype.clone(),
            problem: "it is not a dtype sparkctl knows".into(),
            fix: "use bfloat16, float16 or float32".into(),
        })?;

        let mla = match j.uint(text_cfg, at, "kv_lora_rank")? {
            Some(rank) if rank > 0 => Some(Mla { kv_lora_rank: rank, rope_head_dim: j.uint(text_cfg, at, "qk_rope_head_dim")?.unwrap_or(64) }),
            _ => None,
        };
        let linear = match j.uint(text_cfg, at, "linear_num_value_heads")? {
            Some(vh) => Some(LinearAttention {
                conv_kernel: j.uint(text_cfg, at, "linear_conv_kernel_dim")?.unwrap_or(4),
                key_heads: j.req(text_cfg, at, "linear_num_key_heads", "the linear-attention key heads")?,
                value_heads: vh,
                key_dim: j.req(text_cfg, at, "linear_key_head_dim", "the linear-attention key head size")?,
                value_dim: j.req(text_cfg, at, "linear_value_head_dim", "the linear-attention value head size")?,
            }),
            None => None,
        };
        let window = j.uint(text_cfg, at, "sliding_window")?;
        let layers = match j.get(text_cfg, "layer_types") {
            Some(Value::Array(types)) => {
                if types.len() as u64 != n_layers {
                    return Err(Error::InvalidValue {
                        file: file.to_owned(),
                        line: None,
                        key: path(at, "layer_types"),
                        value: format!("{} entries", types.len()),
                        problem: format!("it does not list the {n_layers} layers"),
                        fix: "give the model's real config.json".into(),
                    });
                }
                let mut v = Vec::new();
                for (i, t) in types.iter().enumerate() {
                    v.push(match t.as_str() {
                        Some("full_attention" | "attention") => Layer::Full,
                        Some("sliding_attention") => match window {
                            Some(w) if w > 0 => Layer::Sliding { window: w },
                            _ => {
                                return Err(Error::MissingKey {
                                    file: file.to_owned(),
                                    line: None,
                                    key: path(at, "sliding_window"),
                                    what: "the window of the sliding layers",
                                })
                            }
                        },
                        Some("linear_attention") if linear.is_some() => Layer::Linear,
                        _ => {
                            return Err(Error::InvalidValue {
                                file: file.to_owned(),
                                line: None,
                                key: format!("{}[{i}]", path(at, "layer_types")),
                                value: t.to_string(),
                                problem: "it is not a layer type sparkctl can size".into(),
                                fix: "use full_attention, sliding_attention or linear_attention (with the linear_* keys)".into(),
                            })
                        }
                    });
                }
                v
            }
            Some(other) => return Err(j.wrong(at, "layer_types", "a list of layer types", &other.to_string())),
            None => match (j.uint(text_cfg, at, "full_attention_interval")?, linear) {
                (Some(n), Some(_)) if n > 0 => (0..n_layers).map(|i| if (i + 1) % n == 0 { Layer::Full } else { Layer::Linear }).collect(),
                _ => {
                    // Qwen2-style configs carry a window but switch it off with `use_sliding_window`.
                    let on = either("use_sliding_window").and_then(Value::as_bool).unwrap_or(true);
                    let layer = match window {
                        Some(w) if w > 0 && on => Layer::Sliding { window: w },
                        _ => Layer::Full,
                    };
                    vec![layer; n_layers as usize]
                }
            },
        };

        let experts = j.uint(text_cfg, at, "num_experts")?.or(j.uint(text_cfg, at, "n_routed_experts")?).or(j.uint(text_cfg, at, "num_local_experts")?);
        let experts = match experts {
            Some(e) if e > 0 => Some((e, j.uint(text_cfg, at, "num_experts_per_tok")?.unwrap_or(1))),
            _ => None,
        };
        let ffn_per_token = match experts {
            Some((_, k)) => k
                .saturating_mul(j.uint(text_cfg, at, "moe_intermediate_size")?.unwrap_or(0))
                .saturating_add(j.uint(text_cfg, at, "shared_expert_intermediate_size")?.unwrap_or(0)),
            None => j.uint(text_cfg, at, "intermediate_size")?.unwrap_or(4 * hidden),
        };
        let quant = either("quantization_config").and_then(Value::as_object).map(|q| {
            let method = q.get("quant_method").and_then(Value::as_str).unwrap_or("unknown").to_ascii_lowercase();
            let algo = q.get("quant_algo").and_then(Value::as_str).unwrap_or("").to_ascii_uppercase();
            let nvfp4 = method == "modelopt_fp4" || algo.contains("NVFP4") || Value::Object(q.clone()).to_string().contains("nvfp4");
            if nvfp4 {
                "nvfp4".to_owned()
            } else {
                method
            }
        });
        let vision_hidden = match j.get(top, "vision_config") {
            Some(Value::Object(v)) => j.uint(v, "vision_config", "hidden_size")?,
            _ => None,
        };
        Ok(ModelShape {
            model_type: j.str(top, "model_type").unwrap_or("unknown").to_owned(),
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            dtype,
            dtype_bytes,
            vocab: j.uint(text_cfg, at, "vocab_size")?.or(j.uint(top, "", "vocab_size")?).unwrap_or(0),
            max_positions: j.uint(text_cfg, at, "max_position_embeddings")?,
            ffn_per_token,
            experts,
            mla,
            linear,
            quant,
            vision_hidden,
        })
    }

    fn count(&self, pred: impl Fn(&Layer) -> bool) -> u64 {
        self.layers.iter().filter(|l| pred(l)).count() as u64
    }

    /// "94 full-attention layers", "12 full + 36 linear-attention layers", …
    pub(crate) fn describe_layers(&self) -> String {
        let full = self.count(|l| *l == Layer::Full);
        let sliding = self.count(|l| matches!(l, Layer::Sliding { .. }));
        let linear = self.count(|l| *l == Layer::Linear);
        let mut parts = Vec::new();
        if full > 0 {
            parts.push(format!("{full} {}", if self.mla.is_some() { "MLA" } else { "full-attention" }));
        }
        if sliding > 0 {
            let w = self.layers.iter().find_map(|l| if let Layer::Sliding { window } = l { Some(*window) } else { None }).unwrap_or(0);
            parts.push(format!("{sliding} sliding-window ({w})"));
        }
        if linear > 0 {
            parts.push(format!("{linear} linear-attention"));
        }
        format!("{} layers", parts.join(" + "))
    }
}

/// `model.safetensors.index.json`'s `metadata.total_size`: the bytes of every tensor, as stored
/// (already quantised).
pub(crate) fn index_total_size(text: &str, file: &Path) -> Result<u64> {
    let doc: Value = serde_json::from_str(text).map_err(|e| Error::Syntax { file: file.to_owned(), line: e.line().max(1), message: e.to_string() })?;
    match doc.pointer("/metadata/total_size") {
        Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)).ok_or_else(|| Error::WrongType {
            file: file.to_owned(),
            line: None,
            key: "metadata.total_size".into(),
            expected: "a byte count",
            found: n.to_string(),
        }),
        // Some exporters write it as a string.
        Some(Value::String(s)) => s.parse().map_err(|_| Error::WrongType {
            file: file.to_owned(),
            line: None,
            key: "metadata.total_size".into(),
            expected: "a byte count",
            found: s.clone(),
        }),
        _ => Err(Error::MissingKey { file: file.to_owned(), line: None, key: "metadata.total_size".into(), what: "the weights' byte count" }),
    }
}

/// A model folder: its shape and, when an index or shards are there, the weights' bytes.
#[derive(Debug, Clone)]
pub struct ModelDir {
    /// The model's shape, from `config.json`.
    pub shape: ModelShape,
    /// Bytes and how they were found.
    pub weights: Option<(u64, String)>,
}

/// Reads `config.json` and the weights' size (the index's `total_size`, else the sum of the
/// `*.safetensors` files) from `dir`.
pub fn read_model_dir(dir: &Path) -> Result<ModelDir> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).map(|t| (t, p.clone())).map_err(|source| Error::Read { file: p, source })
    };
    let (text, cfg) = read("config.json")?;
    let shape = ModelShape::parse(&text, &cfg)?;
    let index = dir.join("model.safetensors.index.json");
    let weights = if index.exists() {
        let (text, p) = read("model.safetensors.index.json")?;
        Some((index_total_size(&text, &p)?, "safetensors index `total_size`".to_owned()))
    } else {
        let shards: Vec<u64> = std::fs::read_dir(dir)
            .map_err(|source| Error::Read { file: dir.to_owned(), source })?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
            .filter_map(|e| e.metadata().ok().map(|m| m.len()))
            .collect();
        (!shards.is_empty()).then(|| (shards.iter().sum(), format!("{} safetensors shard(s)", shards.len())))
    };
    Ok(ModelDir { shape, weights })
}

/// The snapshot folder of `model` (`org/name`) in a Hugging Face cache (`HF_HOME`, whose `hub/`
/// holds `models--org--name/snapshots/<rev>/`): the revision `refs/main` names, else the only
/// one. A `model` that is itself a folder with a `config.json` is returned as it is.
pub fn find_model_dir(hf_home: &Path, model: &str) -> Option<PathBuf> {
    let direct = Path::new(model);
    if direct.is_absolute() && direct.join("config.json").is_file() {
        return Some(direct.to_owned());
    }
    let repo = hf_home.join("hub").join(format!("models--{}", model.replace('/', "--")));
    let snapshots = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs/main")) {
        let dir = snapshots.join(rev.trim());
        if dir.join("config.json").is_file() {
            return Some(dir);
        }
    }
    let revs: Vec<PathBuf> = std::fs::read_dir(&snapshots).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("config.json").is_file()).collect();
    match revs.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// The `vllm serve` flags the plan reads, from the arguments after `vllm serve MODEL`. Flags are
/// normalised as vLLM's parser does (`--max_model_len` = `--max-model-len`, `-tp` =
/// `--tensor-parallel-size`); every other flag is kept for the rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServeArgs {
    flags: Vec<(String, Option<String>)>,
    pub(crate) tp: u64,
    pub(crate) pp: u64,
    /// `None`: the model's limit (also for `auto`).
    pub(crate) max_model_len: Option<u64>,
    pub(crate) max_num_seqs: Option<u64>,
    pub(crate) max_num_batched_tokens: Option<u64>,
    pub(crate) gpu_memory_utilization: Option<f64>,
    /// `auto` when absent.
    pub(crate) kv_cache_dtype: String,
    pub(crate) enforce_eager: bool,
}

fn normalise_flag(f: &str) -> String {
    match f {
        "-tp" => "--tensor-parallel-size".into(),
        "-pp" => "--pipeline-parallel-size".into(),
        "-q" => "--quantization".into(),
        _ => match f.strip_prefix("--") {
            // Only the name before a `.` sub-key: `--limit-mm-per-prompt.video` stays as it is.
            Some(rest) => {
                let (name, sub) = rest.split_once('.').map_or((rest, None), |(n, s)| (n, Some(s)));
                let mut s = format!("--{}", name.replace('_', "-"));
                if let Some(sub) = sub {
                    s.push('.');
                    s.push_str(sub);
                }
                s
            }
            None => f.to_owned(),
        },
    }
}

/// `4096`, `32k` (×1000), `32K` (×1024), `1m`, `1M`.
fn parse_len(v: &str) -> Option<u64> {
    let (digits, mult) = match v.chars().last()? {
        'k' => (&v[..v.len() - 1], 1000),
        'K' => (&v[..v.len() - 1], 1024),
        'm' => (&v[..v.len() - 1], 1_000_000),
        'M' => (&v[..v.len() - 1], 1 << 20),
        _ => (v, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

impl ServeArgs {
    /// Reads `args`; `file` and `key` say where they came from in errors (`cluster.toml`,
    /// `serve.args`).
    pub fn parse(args: &[String], file: &Path, key: &str) -> Result<ServeArgs> {
        let mut flags = Vec::new();
        // How each flag was written, so an error quotes the user's own spelling (`-tp`).
        let mut spelled: Vec<(String, String)> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a.starts_with('-') && a.len() > 1 {
                let (name, inline) = a.split_once('=').map_or((a.as_str(), None), |(n, v)| (n, Some(v.to_owned())));
                let value = inline.or_else(|| {
                    let next = args.get(i + 1).filter(|n| !n.starts_with('-') || n.parse::<f64>().is_ok())?;
                    i += 1;
                    Some(next.clone())
                });
                let flag = normalise_flag(name);
                spelled.push((flag.clone(), name.to_owned()));
                flags.push((flag, value));
            }
            i += 1;
        }
        let mut s = ServeArgs { flags, tp: 1, pp: 1, kv_cache_dtype: "auto".into(), ..ServeArgs::default() };
        let bad = |flag: &str, value: &str, problem: &str, fix: &str| Error::InvalidValue {
            file: file.to_owned(),
            line: None,
            key: key.to_owned(),
            value: format!("{} {value:?}", spelled.iter().rev().find(|(n, _)| n == flag).map_or(flag, |(_, w)| w.as_str())),
            problem: problem.to_owned(),
            fix: fix.to_owned(),
        };
        let count = |flag: &str| -> Result<Option<u64>> {
            match s.value(flag) {
                None if s.has(flag) => Err(bad(flag, "", "it has no value", "give a positive integer")),
                None => Ok(None),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 && n <= MAX_CONFIG_VALUE => Ok(Some(n)),
                    _ => Err(bad(flag, v, "it is not a positive integer", "give a positive integer")),
                },
            }
        };
        let tp = count("--tensor-parallel-size")?.unwrap_or(1);
        let pp = count("--pipeline-parallel-size")?.unwrap_or(1);
        let max_num_seqs = count("--max-num-seqs")?;
        let max_num_batched_tokens = count("--max-num-batched-tokens")?;
        let max_model_len = match s.value("--max-model-len") {
            None | Some("auto" | "-1") => None,
            Some(v) => Some(
                parse_len(v)
                    .filter(|n| *n > 0 && *n <= MAX_CONFIG_VALUE)
                    .ok_or_else(|| bad("--max-model-len", v, "it is not a token count", "give e.g. 4096 or 32k"))?,
            ),
        };
        let util = match s.value("--gpu-memory-utilization") {
            None => None,
            Some(v) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|u| *u > 0.0 && *u <= 1.0)
                    .ok_or_else(|| bad("--gpu-memory-utilization", v, "it is not a fraction in (0, 1]", "give e.g. 0.75"))?,
            ),
        };
        let kv = s.value("--kv-cache-dtype").unwrap_or("auto").to_owned();
        if kv != "auto" && dtype_bytes(&kv).is_none() {
            return Err(bad("--kv-cache-dtype", &kv, "it is not a KV cache dtype", "use auto, fp8, fp8_e4m3, fp8_e5m2 or bfloat16"));
        }
        s.enforce_eager = s.has("--enforce-eager");
        s.tp = tp;
        s.pp = pp;
        s.max_num_seqs = max_num_seqs;
        s.max_num_batched_tokens = max_num_batched_tokens;
        s.max_model_len = max_model_len;
        s.gpu_memory_utilization = util;
        s.kv_cache_dtype = kv;
        Ok(s)
    }

    /// The value of `flag` (`--flag v` or `--flag=v`), the last one when repeated.
    pub(crate) fn value(&self, flag: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(f, _)| f == flag).and_then(|(_, v)| v.as_deref())
    }

    pub(crate) fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|(f, _)| f == flag)
    }
}

/// `/proc/meminfo`'s totals, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemInfo {
    pub(crate) total: u64,
    pub(crate) available: u64,
}

/// Parses `/proc/meminfo` (`MemTotal:  127523560 kB`); `None` without both lines.
pub(crate) fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let mut it = rest.split_whitespace();
            let n: u64 = it.next()?.parse().ok()?;
            Some(if it.next() == Some("kB") { n * 1024 } else { n })
        })
    };
    Some(MemInfo { total: field("MemTotal")?, available: field("MemAvailable")? })
}

/// What one node has: the total vLLM computes its budget from, and what it can really give.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeMemory {
    /// The memory vLLM computes its budget from.
    pub total: u64,
    /// What CUDA can really take.
    pub usable: u64,
    /// How `usable` was found, for the table.
    pub source: String,
}

impl NodeMemory {
    /// A DGX Spark as specified: 121.63 GiB, of which `usable_gib` (default
    /// `spark::USABLE_GIB`) is what CUDA can take; the rest is the OS reserve.
    pub fn nominal(usable_gib: Option<f64>) -> NodeMemory {
        let total = gib(spark::TOTAL_GIB);
        let usable = gib(usable_gib.unwrap_or(spark::USABLE_GIB)).min(total);
        NodeMemory { total, usable, source: format!("DGX Spark {:.2} GiB − {:.2} GiB OS reserve", in_gib(total), in_gib(total - usable)) }
    }

    /// A live node: MemAvailable is the reliable free figure on unified memory (`cudaMemGetInfo`
    /// can say 2.8 GiB while MemAvailable says 52), capped by the nominal usable memory.
    pub(crate) fn live(info: MemInfo, usable_gib: Option<f64>) -> NodeMemory {
        let cap = gib(usable_gib.unwrap_or(spark::USABLE_GIB));
        NodeMemory {
            total: info.total,
            usable: info.available.min(cap),
            source: format!("MemAvailable {:.2} GiB of MemTotal {:.2} GiB (at most {:.2} GiB)", in_gib(info.available), in_gib(info.total), in_gib(cap)),
        }
    }

    /// The live figures under `root` (`/proc/meminfo`), else the nominal ones with a note.
    pub fn read(root: &Root, usable_gib: Option<f64>) -> NodeMemory {
        match root.read("/proc/meminfo").as_deref().and_then(parse_meminfo) {
            Some(info) => NodeMemory::live(info, usable_gib),
            None => {
                let mut m = NodeMemory::nominal(usable_gib);
                m.source.push_str(&format!(" (no `{}`)", root.join("/proc/meminfo").display()));
                m
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
/// Whether the model fits a node.
pub enum Verdict {
    /// Fits with room to spare.
    Fits,
    /// Fits, with little headroom.
    Tight,
    /// Does not fit.
    DoesNotFit,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Fits => "fits",
            Verdict::Tight => "tight",
            Verdict::DoesNotFit => "does not fit",
        }
    }
}

/// One row of the table: a term in bytes and how it was computed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Term {
    /// The term's name.
    pub name: &'static str,
    /// Its size in bytes.
    pub bytes: u64,
    pub(crate) how: String,
}

/// The memory of one node (one rank: one GPU per Spark).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Weights, KV cache, linear-attention state, activations, CUDA graphs, runtime.
    pub terms: Vec<Term>,
    /// The sum of the terms.
    pub required: u64,
    /// `--gpu-memory-utilization` × total: what vLLM takes (it fills the rest with KV cache).
    pub budget: u64,
    pub(crate) utilization: f64,
    pub(crate) memory: NodeMemory,
    /// min(budget, usable) − required; negative when it does not fit.
    pub headroom: i64,
    /// The context the KV cache is sized for; `None` when it is the model's limit and there is
    /// no `config.json` to read it from.
    pub(crate) context: Option<u64>,
    pub(crate) sequences: u64,
    /// The longest `--max-model-len` that fits with these sequences; `None` when not even the
    /// weights fit, or when the KV cache is not sized.
    pub longest_context: Option<u64>,
    /// Whether `longest_context` is the model's own limit rather than memory's.
    pub longest_is_model_limit: bool,
    /// Whether the verdict is for the sized terms only; `not_sized` says which are missing.
    pub verdict: Verdict,
    /// What would make it fit (or leave more room).
    pub fixes: Vec<String>,
    /// Terms that could not be sized (no `config.json`): `required` is then a lower bound, a
    /// "does not fit" is certain and a "fits" is not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_sized: Vec<NotSized>,
}

/// A term the estimate could not size, and what it needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotSized {
    /// The term's name.
    pub name: &'static str,
    pub(crate) needs: &'static str,
}

/// What the KV cache, the activations and the CUDA graphs need from `config.json`.
const NEEDS_CONFIG: [NotSized; 3] = [
    NotSized { name: "KV cache", needs: "config.json: layers, KV heads, head dim (and MLA, window, linear-attention keys)" },
    NotSized { name: "activations", needs: "config.json: hidden size, heads, FFN width, vocabulary" },
    NotSized { name: "CUDA graphs", needs: "config.json: layers and hidden size" },
];

/// Per-rank KV cache and state sizes, as functions of the context.
struct Kv<'a> {
    m: &'a ModelShape,
    tp: u64,
    pp: u64,
    kv_bytes: u64,
    state_bytes: u64,
}

/// The verdict from the headroom and whether vLLM's budget asks for more than the node can give,
/// with the fix for the second (one rule for the estimate with and without the model's config).
fn verdict_and_utilization_fix(headroom: i64, budget: u64, utilization: f64, memory: &NodeMemory) -> (Verdict, Vec<String>) {
    let over_ask = budget > memory.usable;
    let verdict = if headroom < 0 || over_ask {
        Verdict::DoesNotFit
    } else if headroom < gib(TIGHT_GIB) as i64 {
        Verdict::Tight
    } else {
        Verdict::Fits
    };
    let mut fixes = Vec::new();
    if over_ask {
        let max_util = (memory.usable as f64 / memory.total as f64 * 100.0).floor() / 100.0;
        fixes.push(format!(
            "lower `--gpu-memory-utilization` to {max_util:.2} or less: {utilization} × {:.2} GiB = {:.2} GiB is more than the {:.2} GiB the node can give",
            in_gib(memory.total),
            in_gib(budget),
            in_gib(memory.usable)
        ));
    }
    (verdict, fixes)
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}

fn round_block(tokens: u64) -> u64 {
    ceil_div(tokens, vllm_defaults::BLOCK_SIZE) * vllm_defaults::BLOCK_SIZE
}

impl Kv<'_> {
    /// KV heads one rank holds: split by tp, or one replicated head when tp exceeds them.
    fn kv_heads_rank(&self) -> u64 {
        ceil_div(self.m.kv_heads, self.tp)
    }

    /// Bytes per token of one full-attention layer on one rank.
    fn per_token_layer(&self) -> u64 {
        match self.m.mla {
            // The latent and the rope key, once per token: not split by tensor parallelism.
            Some(mla) => (mla.kv_lora_rank + mla.rope_head_dim).saturating_mul(self.kv_bytes),
            None => (2 * self.kv_heads_rank()).saturating_mul(self.m.head_dim).saturating_mul(self.kv_bytes),
        }
    }

    /// KV cache and linear-attention state of one sequence of `context` tokens on one rank: the
    /// heaviest pipeline stage's layers (vLLM's split, [`pp_stages`]).
    fn stage(&self, context: u64) -> (u64, u64) {
        let per = self.per_token_layer();
        let state = self.state_per_layer();
        let cost = |l: &Layer| match l {
            Layer::Full => (round_block(context).saturating_mul(per), 0),
            Layer::Sliding { window } => (round_block(context.min(*window)).saturating_mul(per), 0),
            Layer::Linear => (0, state),
        };
        let mut start = 0;
        let mut heaviest = (0u64, 0u64);
        for n in pp_stages(self.m.layers.len(), self.pp as usize) {
            let (kv, st) = self.m.layers[start..start + n].iter().map(cost).fold((0u64, 0u64), |(a, b), (c, d)| (a.saturating_add(c), b.saturating_add(d)));
            if kv.saturating_add(st) > heaviest.0.saturating_add(heaviest.1) {
                heaviest = (kv, st);
            }
            start += n;
        }
        heaviest
    }

    /// [`Kv::stage`]'s sum.
    fn per_seq(&self, context: u64) -> u64 {
        let (kv, state) = self.stage(context);
        kv.saturating_add(state)
    }

    /// Linear-attention state of one sequence in one linear layer on one rank: the causal-conv
    /// window over q, k, v and the recurrent key × value matrix per value head.
    fn state_per_layer(&self) -> u64 {
        let Some(la) = self.m.linear else { return 0 };
        // Config values are below 2^24, so the products of two fit; the rest saturates.
        let conv =
            (la.conv_kernel.saturating_sub(1)).saturating_mul(2 * la.key_heads * la.key_dim + la.value_heads * la.value_dim) / self.tp * self.m.dtype_bytes;
        let ssm = (la.value_heads / self.tp).saturating_mul(la.key_dim * la.value_dim).saturating_mul(self.state_bytes);
        conv.saturating_add(ssm)
    }
}

/// The layers of each pipeline stage as vLLM splits them (`get_pp_indices` in
/// `vllm/distributed/utils.py`): an even share, the remainder one each to the stages before the
/// last (which also runs the final norm and the LM head): 94 layers over 4 stages are 23, 24, 24,
/// 23.
pub fn pp_stages(layers: usize, pp: usize) -> Vec<usize> {
    let pp = pp.max(1);
    let mut stages = vec![layers / pp; pp];
    for i in 2..layers % pp + 2 {
        stages[pp - i] += 1;
    }
    stages
}

/// What the estimate needs.
pub struct Inputs<'a> {
    /// The model's shape.
    pub model: &'a ModelShape,
    /// All weights, as stored (already quantised).
    pub weights: u64,
    /// How the weights' size was found.
    pub weights_how: &'a str,
    /// vLLM's flags.
    pub args: &'a ServeArgs,
    /// The node's memory.
    pub memory: NodeMemory,
}

/// Estimates one node's memory.
pub fn estimate(i: &Inputs) -> Estimate {
    let m = i.model;
    let a = i.args;
    let ranks = a.tp * a.pp;
    let kv_dtype = if a.kv_cache_dtype == "auto" { m.dtype.as_str() } else { a.kv_cache_dtype.as_str() };
    let kv_bytes = dtype_bytes(kv_dtype).unwrap_or(m.dtype_bytes);
    let state_bytes = match a.value("--mamba-ssm-cache-dtype") {
        Some("float32") => 4,
        _ => m.dtype_bytes,
    };
    let kv = Kv { m, tp: a.tp, pp: a.pp, kv_bytes, state_bytes };
    let context = a.max_model_len.or(m.max_positions).unwrap_or(4096);
    let seqs = a.max_num_seqs.unwrap_or(1);
    // The heaviest stage's layers (the CUDA graphs are per layer).
    let layers_rank = pp_stages(m.layers.len(), a.pp as usize).into_iter().max().unwrap_or(0) as u64;

    let weights = ceil_div(i.weights, ranks);
    let batched = a.max_num_batched_tokens.unwrap_or(vllm_defaults::MAX_NUM_BATCHED_TOKENS);
    let seq_limit = a.max_num_seqs.unwrap_or(vllm_defaults::MAX_NUM_SEQS);
    // Live tensors of one layer per batched token (hidden states and norms ×8, q/k/v, the FFN's
    // gate, up and down), the sampler's float32 logits, and the vision encoder's activations.
    // In u128: config values are below 2^24, so these products cannot overflow it.
    let w = |x: u64| u128::from(x);
    let clamp = |x: u128| u64::try_from(x).unwrap_or(u64::MAX);
    let per_token = clamp(2 * (8 * w(m.hidden) + (w(m.heads / a.tp) + 2 * w(kv.kv_heads_rank())) * w(m.head_dim) + 3 * w(m.ffn_per_token) / w(a.tp)));
    let logits = w(seq_limit) * w(m.vocab) * 4;
    let vision = m.vision_hidden.map_or(0, |v| w(batched) * 2 * 16 * w(v));
    let b12x = a.value("--moe-backend") == Some("flashinfer_b12x");
    let activation = clamp((w(batched) * w(per_token) + logits + vision) * if b12x { 2 } else { 1 });
    let capture = (2 * seq_limit).min(vllm_defaults::MAX_CAPTURE_SIZE);
    let graphs = if a.enforce_eager { 0 } else { clamp(w(layers_rank) * w(capture) * w(m.hidden) * 2 * 5) };
    let runtime = gib(RUNTIME_ALLOWANCE_GIB);
    let (kv_seq, state) = kv.stage(context);
    let fixed = weights.saturating_add(activation).saturating_add(graphs).saturating_add(runtime);
    let required = fixed.saturating_add(seqs.saturating_mul(kv_seq.saturating_add(state)));

    let utilization = a.gpu_memory_utilization.unwrap_or(vllm_defaults::GPU_MEMORY_UTILIZATION);
    let budget = (utilization * i.memory.total as f64) as u64;
    let limit = budget.min(i.memory.usable);
    let headroom = (i128::from(limit) - i128::from(required)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;

    // The longest context that fits: the KV cache grows with it (piecewise, with windows).
    let fits_at = |ctx: u64| fixed.saturating_add(seqs.saturating_mul(kv.per_seq(ctx))) <= limit;
    let cap = m.max_positions.unwrap_or(1 << 24).max(1);
    let (longest_context, longest_is_model_limit) = if fits_at(cap) {
        (Some(cap), true)
    } else if !fits_at(1) {
        (None, false)
    } else {
        let (mut lo, mut hi) = (1u64, cap);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits_at(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (Some(lo), false)
    };

    let (verdict, mut fixes) = verdict_and_utilization_fix(headroom, budget, utilization, &i.memory);
    if headroom < gib(TIGHT_GIB) as i64 {
        if fixed.saturating_add(seqs.saturating_mul(state)) > limit {
            // The weights (and fixed allowances) alone do not fit: fewer bytes or more ranks.
            let others = activation.saturating_add(graphs).saturating_add(runtime).saturating_add(seqs.saturating_mul(kv_seq.saturating_add(state)));
            // The fewest nodes whose tensor-parallel split the heads allow and the weights fit.
            let divides = |n: u64| m.heads.is_multiple_of(n) && (m.mla.is_some() || m.kv_heads.is_multiple_of(n) || n.is_multiple_of(m.kv_heads));
            let nodes = (ranks + 1..=64).find(|n| divides(*n) && ceil_div(i.weights, *n).saturating_add(others) <= limit);
            fixes.push("use quantised weights (AWQ or NVFP4 take about a quarter of the BF16 bytes)".into());
            if let Some(n) = nodes {
                fixes.push(format!("or spread the weights over {n} nodes (`--tensor-parallel-size {n}`)"));
            }
        } else {
            if let Some(l) = longest_context.filter(|l| *l < context) {
                fixes.push(format!("shorter context: `--max-model-len {}` or less", l / vllm_defaults::BLOCK_SIZE * vllm_defaults::BLOCK_SIZE));
            }
            let per_seq = kv_seq.saturating_add(state);
            let max_seqs = limit.saturating_sub(fixed).checked_div(per_seq).unwrap_or(0);
            if max_seqs >= 1 && max_seqs < seqs {
                fixes.push(format!("fewer sequences: `--max-num-seqs {max_seqs}` or less"));
            }
            if !a.enforce_eager && graphs > 0 {
                fixes.push(format!("`--enforce-eager` saves the {:.2} GiB of CUDA graphs (at a decode-speed cost)", in_gib(graphs)));
            }
            fixes.push(format!("one more node ({} in all) splits the weights further", ranks + 1));
        }
    }

    let kvh = kv.kv_heads_rank();
    let stage = if a.pp > 1 { format!("; pp {}: the heaviest stage's {layers_rank} layers", a.pp) } else { String::new() };
    let kv_how = match m.mla {
        Some(mla) => format!(
            "{context} tokens × {seqs} seq × {} B/token ({}; latent {} + rope {} × {kv_bytes} B, not split by tp{stage})",
            kv_seq / round_block(context).max(1),
            m.describe_layers(),
            mla.kv_lora_rank,
            mla.rope_head_dim
        ),
        None => format!(
            "{context} tokens × {seqs} seq ({}; {kvh} KV head(s)/rank × {} × 2 (K, V) × {kv_bytes} B ({kv_dtype}){stage})",
            m.describe_layers(),
            m.head_dim,
        ),
    };
    let mut terms = vec![
        Term { name: "weights per rank", bytes: weights, how: format!("{:.2} GB ({}) / {ranks} rank(s)", i.weights as f64 / 1e9, i.weights_how) },
        Term { name: "KV cache", bytes: seqs.saturating_mul(kv_seq), how: kv_how },
    ];
    if let Some(la) = m.linear {
        terms.push(Term {
            name: "linear-attention state",
            bytes: seqs.saturating_mul(state),
            how: format!(
                "{seqs} seq × {} layers × (conv {} + recurrent {}×{}×{} per rank)",
                state.checked_div(kv.state_per_layer()).unwrap_or(0),
                la.conv_kernel.saturating_sub(1),
                la.value_heads / a.tp,
                la.key_dim,
                la.value_dim
            ),
        });
    }
    terms.push(Term {
        name: "activations",
        bytes: activation,
        how: format!(
            "{batched} batched tokens × {per_token} B + logits {seq_limit} seqs × {} vocab × 4 B{}{}",
            m.vocab,
            if vision > 0 { " + vision encoder" } else { "" },
            if b12x { " (×2: flashinfer_b12x)" } else { "" }
        ),
    });
    terms.push(Term {
        name: "CUDA graphs",
        bytes: graphs,
        how: if a.enforce_eager {
            "none (`--enforce-eager`)".into()
        } else {
            format!("{layers_rank} layers × {capture} capture sizes × {} hidden × 2 B × 5", m.hidden)
        },
    });
    terms.push(Term { name: "runtime", bytes: runtime, how: "CUDA context, NCCL and cuBLAS workspaces (allowance)".into() });
    Estimate {
        terms,
        required,
        budget,
        utilization,
        memory: i.memory.clone(),
        headroom,
        context: Some(context),
        sequences: seqs,
        longest_context,
        longest_is_model_limit,
        verdict,
        fixes,
        not_sized: Vec::new(),
    }
}

/// What can be estimated from a weights figure alone (`sparkctl plan --weights-bytes N` with no
/// `config.json`): the weights per rank and the runtime allowance (and no CUDA graphs with
/// `--enforce-eager`) against the same budget. The KV cache and activations stay unsized, so
/// `required` is a lower bound: a "does not fit" is certain, a "fits" only says the weights leave
/// room for them.
pub(crate) fn estimate_weights_only(weights: u64, weights_how: &str, a: &ServeArgs, memory: NodeMemory) -> Estimate {
    let ranks = a.tp * a.pp;
    let per_rank = ceil_div(weights, ranks);
    let runtime = gib(RUNTIME_ALLOWANCE_GIB);
    let mut terms = vec![Term { name: "weights per rank", bytes: per_rank, how: format!("{:.2} GB ({weights_how}) / {ranks} rank(s)", weights as f64 / 1e9) }];
    let mut not_sized: Vec<NotSized> = NEEDS_CONFIG.to_vec();
    if a.enforce_eager {
        not_sized.retain(|n| n.name != "CUDA graphs");
        terms.push(Term { name: "CUDA graphs", bytes: 0, how: "none (`--enforce-eager`)".into() });
    }
    terms.push(Term { name: "runtime", bytes: runtime, how: "CUDA context, NCCL and cuBLAS workspaces (allowance)".into() });
    let required = per_rank.saturating_add(runtime);
    let utilization = a.gpu_memory_utilization.unwrap_or(vllm_defaults::GPU_MEMORY_UTILIZATION);
    let budget = (utilization * memory.total as f64) as u64;
    let limit = budget.min(memory.usable);
    let headroom = (i128::from(limit) - i128::from(required)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    let (verdict, mut fixes) = verdict_and_utilization_fix(headroom, budget, utilization, &memory);
    if headroom < 0 {
        fixes.push("use quantised weights (AWQ or NVFP4 take about a quarter of the BF16 bytes)".into());
        // Without the config the heads are unknown: the node count is the weights' answer only.
        if let Some(n) = (ranks + 1..=64).find(|n| ceil_div(weights, *n).saturating_add(runtime) <= limit) {
            fixes.push(format!("or spread the weights over {n} or more nodes, a tensor-parallel size the model's heads divide by"));
        }
    } else if headroom < gib(TIGHT_GIB) as i64 {
        fixes.push(format!("one more node ({} in all) splits the weights further", ranks + 1));
    }
    Estimate {
        terms,
        required,
        budget,
        utilization,
        memory,
        headroom,
        context: a.max_model_len,
        sequences: a.max_num_seqs.unwrap_or(1),
        longest_context: None,
        longest_is_model_limit: false,
        verdict,
        fixes,
        not_sized,
    }
}

/// Heads divisible by the tensor-parallel size, tp × pp = nodes (one GPU per Spark).
pub(crate) fn structure(m: Option<&ModelShape>, a: &ServeArgs, nodes: usize) -> Vec<Finding> {
    let mut out = Vec::new();
    let err = |id: &str, message: String, fix: String| Finding { id: id.into(), severity: Severity::Error, message, fix, source: None };
    if a.tp * a.pp != nodes as u64 {
        out.push(err(
            "parallel-size",
            format!("tensor-parallel size {} × pipeline-parallel size {} = {} but there are {nodes} nodes (one GPU per Spark)", a.tp, a.pp, a.tp * a.pp),
            format!("set `--tensor-parallel-size {nodes}` (or tp × pp = {nodes})"),
        ));
    }
    let Some(m) = m else { return out };
    let tp = a.tp;
    let divisors = |n: u64| (1..=n).filter(|d| n.is_multiple_of(*d)).map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    if m.heads % tp != 0 {
        out.push(err(
            "heads-divisible",
            format!("{} attention heads do not divide by tensor-parallel size {tp}", m.heads),
            format!("use a tensor-parallel size of {}", divisors(m.heads)),
        ));
    }
    if m.mla.is_none() && m.kv_heads % tp != 0 {
        if tp.is_multiple_of(m.kv_heads) {
            out.push(Finding {
                id: "kv-heads-replicated".into(),
                severity: Severity::Info,
                message: format!("{} KV heads on tensor-parallel size {tp}: each rank keeps a copy of one KV head", m.kv_heads),
                fix: "none needed; the KV cache counts the replicas".into(),
                source: None,
            });
        } else {
            out.push(err(
                "kv-heads-divisible",
                format!("{} KV heads do not divide by tensor-parallel size {tp}, nor it by them", m.kv_heads),
                format!("use a tensor-parallel size of {}", divisors(m.kv_heads)),
            ));
        }
    }
    if let Some(la) = m.linear {
        if la.key_heads % tp != 0 || la.value_heads % tp != 0 {
            out.push(err(
                "linear-heads-divisible",
                format!("linear-attention heads ({} key, {} value) do not divide by tensor-parallel size {tp}", la.key_heads, la.value_heads),
                format!("use a tensor-parallel size of {}", divisors(la.key_heads)),
            ));
        }
    }
    if !(m.layers.len() as u64).is_multiple_of(a.pp) && a.pp > 1 {
        out.push(Finding {
            id: "layers-uneven".into(),
            severity: Severity::Info,
            message: format!("{} layers over pipeline-parallel size {}: the stages are uneven", m.layers.len(), a.pp),
            fix: "none needed; the estimate takes the heaviest stage".into(),
            source: None,
        });
    }
    out
}

/// Everything the plan looks at: what the rules see, plus the weights and the node's memory.
pub struct Request<'a> {
    /// What the rules see.
    pub facts: Facts<'a>,
    /// Bytes and how they were found.
    pub weights: Option<(u64, String)>,
    /// The node's memory.
    pub memory: NodeMemory,
}

/// The answer: the memory estimate (when the model's shape and weights are known) and every
/// finding, errors first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub(crate) model: String,
    pub(crate) nodes: usize,
    pub(crate) tensor_parallel: u64,
    pub(crate) pipeline_parallel: u64,
    pub(crate) vllm: Option<Version>,
    pub(crate) arch: String,
    /// The memory estimate, when the model's shape and weights are known.
    pub memory: Option<Estimate>,
    /// Why there is no memory estimate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) not_sized: Option<String>,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
}

impl Plan {
    /// The findings that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Error)
    }

    /// Whether no finding is an error.
    pub fn ok(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The table: every term, the totals, the verdict with its fixes, the longest context, then
    /// the findings.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "plan for `{}`: tp {} × pp {} on {} node(s), {}, vLLM {}",
            self.model,
            self.tensor_parallel,
            self.pipeline_parallel,
            self.nodes,
            self.arch,
            self.vllm.map_or("unknown (version-bound rules assumed to apply)".into(), |v| v.to_string())
        );
        match (&self.memory, &self.not_sized) {
            (Some(e), _) => {
                let _ = writeln!(o, "{:<24} {:>9}  HOW", "PER NODE", "GiB");
                for t in &e.terms {
                    let _ = writeln!(o, "{:<24} {:>9.2}  {}", t.name, in_gib(t.bytes), t.how);
                }
                for n in &e.not_sized {
                    let _ = writeln!(o, "{:<24} {:>9}  not sized: needs {}", n.name, "?", n.needs);
                }
                let sum = if e.not_sized.is_empty() { "sum of the above" } else { "sum of the sized terms (a lower bound)" };
                let _ = writeln!(o, "{:<24} {:>9.2}  {sum}", "required", in_gib(e.required));
                let _ = writeln!(
                    o,
                    "{:<24} {:>9.2}  --gpu-memory-utilization {} × {:.2} GiB",
                    "vLLM budget",
                    in_gib(e.budget),
                    e.utilization,
                    in_gib(e.memory.total)
                );
                let _ = writeln!(o, "{:<24} {:>9.2}  {}", "usable", in_gib(e.memory.usable), e.memory.source);
                let _ = writeln!(o, "{:<24} {:>9.2}  min(budget, usable) − required", "headroom", e.headroom as f64 / GIB as f64);
                let names: Vec<&str> = e.not_sized.iter().map(|n| n.name).collect();
                let _ = match (names.is_empty(), e.verdict) {
                    (true, v) => writeln!(o, "verdict: {}", v.as_str()),
                    (false, Verdict::DoesNotFit) => writeln!(o, "verdict: does not fit (the sized terms alone; {} not sized)", names.join(", ")),
                    (false, v) => {
                        writeln!(o, "verdict: {} as far as sized ({} not sized: give `--model-dir` for the full estimate)", v.as_str(), names.join(", "))
                    }
                };
                for f in &e.fixes {
                    let _ = writeln!(o, "  fix: {f}");
                }
                match e.longest_context {
                    _ if names.contains(&"KV cache") => {
                        let _ = writeln!(o, "longest context that fits: not sized (the KV cache needs the model's config.json)");
                    }
                    Some(l) if e.longest_is_model_limit => {
                        let _ = writeln!(o, "longest context that fits with {} seq: {l} tokens (the model's limit)", e.sequences);
                    }
                    Some(l) => {
                        let _ = writeln!(o, "longest context that fits with {} seq: {l} tokens", e.sequences);
                    }
                    None => {
                        let _ = writeln!(o, "longest context that fits with {} seq: none (the weights alone do not fit)", e.sequences);
                    }
                }
            }
            (None, why) => {
                let _ = writeln!(o, "memory: not sized: {}", why.as_deref().unwrap_or("no model config"));
            }
        }
        if self.findings.is_empty() {
            let _ = writeln!(o, "no known-bad flags");
        }
        for f in &self.findings {
            let _ = writeln!(o, "{:<7} {}: {}", f.severity.as_str(), f.id, f.message);
            let _ = writeln!(o, "        fix: {}", f.fix);
        }
        o
    }
}

/// The memory verdict as a finding: "does not fit" an error, "tight" a warning.
fn memory_finding(e: &Estimate) -> Option<Finding> {
    // Without config.json the required figure is the weights and runtime alone.
    let partial = if e.not_sized.is_empty() { "" } else { " (the weights and runtime alone)" };
    let (severity, message) = match e.verdict {
        Verdict::Fits => return None,
        Verdict::DoesNotFit if e.required > e.budget.min(e.memory.usable) => (
            Severity::Error,
            format!(
                "does not fit: {:.2} GiB required per node{partial}, {:.2} GiB available (budget {:.2}, usable {:.2})",
                in_gib(e.required),
                in_gib(e.budget.min(e.memory.usable)),
                in_gib(e.budget),
                in_gib(e.memory.usable)
            ),
        ),
        Verdict::DoesNotFit => (
            Severity::Error,
            format!(
                "does not fit: `--gpu-memory-utilization` {} lets vLLM take {:.2} GiB per node (it fills the budget with KV cache) but the node can give {:.2} GiB",
                e.utilization,
                in_gib(e.budget),
                in_gib(e.memory.usable)
            ),
        ),
        Verdict::Tight => (Severity::Warning, format!("tight: {:.2} GiB headroom per node{partial}", e.headroom as f64 / GIB as f64)),
    };
    Some(Finding { id: "memory".into(), severity, message, fix: e.fixes.join("; "), source: None })
}

/// Runs the memory estimate, the structural checks and the rules.
pub fn plan(req: &Request, rules: &Rules) -> Plan {
    let f = &req.facts;
    let mut findings = structure(f.model, f.args, f.nodes);
    let (memory, not_sized) = match (f.model, &req.weights) {
        (Some(model), Some((bytes, how))) => {
            (Some(estimate(&Inputs { model, weights: *bytes, weights_how: how, args: f.args, memory: req.memory.clone() })), None)
        }
        (None, Some((bytes, how))) => (
            Some(estimate_weights_only(*bytes, how, f.args, req.memory.clone())),
            Some("no `config.json` for the model: the KV cache and activations are not sized".to_owned()),
        ),
        (None, None) => (None, Some("no `config.json` for the model".to_owned())),
        (Some(_), None) => (None, Some("the weights' size is unknown (no safetensors index or shards; give `--weights-bytes`)".to_owned())),
    };
    findings.extend(memory.as_ref().and_then(memory_finding));
    findings.extend(rules.evaluate(f));
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Plan {
        model: f.model_name.to_owned(),
        nodes: f.nodes,
        tensor_parallel: f.args.tp,
        pipeline_parallel: f.args.pp,
        vllm: f.vllm,
        arch: f.arch.to_owned(),
        memory,
        not_sized,
        findings,
    }
}

/// The vLLM installed in an image root: a `vllm-<version>.dist-info` folder in a Python's
/// `dist-packages` or `site-packages` under `/usr/local/lib` or `/usr/lib`.
pub fn installed_vllm(root: &Root) -> Option<Version> {
    for base in ["/usr/local/lib", "/usr/lib"] {
        for py in root.list(base).into_iter().filter(|p| p.starts_with("python3")) {
            for sub in ["dist-packages", "site-packages"] {
                if let Some(v) = root.list(&format!("{base}/{py}/{sub}")).iter().find_map(|n| crate::known_bad::vllm_of_dist_info(n)) {
                    return Some(v);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> ServeArgs {
        ServeArgs::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>(), Path::new("t"), "serve.args").unwrap()
    }

    #[test]
    fn serve_args_are_normalised_like_vllm() {
        let a = args(&["-tp", "2", "--max_model_len=32k", "--enforce-eager", "--limit-mm-per-prompt.video", "0", "--gpu-memory-utilization", "0.75"]);
        assert_eq!((a.tp, a.pp, a.max_model_len, a.enforce_eager), (2, 1, Some(32000), true));
        assert_eq!(a.value("--limit-mm-per-prompt.video"), Some("0"));
        assert_eq!(a.gpu_memory_utilization, Some(0.75));
        assert_eq!(args(&["--max-model-len", "32K"]).max_model_len, Some(32768));
        assert_eq!(args(&["--max-model-len", "auto"]).max_model_len, None);
        let bad =
            |a: &[&str]| ServeArgs::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>(), Path::new("c.toml"), "serve.args").unwrap_err().to_string();
        assert!(bad(&["--tensor-parallel-size", "two"]).contains("`c.toml`: `serve.args = --tensor-parallel-size \"two\"`"));
        assert!(bad(&["--gpu-memory-utilization", "1.5"]).contains("(0, 1]"));
        assert!(bad(&["--kv-cache-dtype", "int3"]).contains("fp8"));
    }

    #[test]
    fn extreme_inputs_give_errors_or_answers_never_a_panic() {
        let big = r#"{"hidden_size": 16777216, "num_attention_heads": 16777216, "num_key_value_heads": 1, "head_dim": 16777216,
            "num_hidden_layers": 10000, "vocab_size": 16777216, "max_position_embeddings": 16777216, "linear_num_value_heads": 16777216,
            "linear_num_key_heads": 16777216, "linear_key_head_dim": 16777216, "linear_value_head_dim": 16777216, "full_attention_interval": 2}"#;
        let m = ModelShape::parse(big, Path::new("c")).unwrap();
        let a = args(&["--max-model-len", "16M", "--max-num-seqs", "16777216", "--max-num-batched-tokens", "16777216"]);
        let e = estimate(&Inputs { model: &m, weights: u64::MAX, weights_how: "t", args: &a, memory: NodeMemory::nominal(None) });
        assert_eq!(e.verdict, Verdict::DoesNotFit);
        assert!(ModelShape::parse(&big.replace("16777216,", "16777217,"), Path::new("c")).unwrap_err().to_string().contains("implausibly large"));
        for bad in ["[]", "{\"text_config\": 3}", "{\"hidden_size\": -1}", "{\"hidden_size\": 1.5}", "{\"layer_types\": 1}"] {
            assert!(ModelShape::parse(bad, Path::new("c")).is_err(), "{bad}");
        }
    }

    #[test]
    fn meminfo_parses_in_bytes() {
        let m = parse_meminfo("MemTotal:       127523560 kB\nMemFree:  1 kB\nMemAvailable:   54525952 kB\n").unwrap();
        assert_eq!(m, MemInfo { total: 127_523_560 * 1024, available: 54_525_952 * 1024 });
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_meminfo(""), None);
    }
}
