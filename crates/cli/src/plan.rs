//! `sparkctl plan`: will the configured model fit on these Sparks, and are the serve flags known
//! to fail on GB10? A thin shell over `cluster::fit` (memory, structure) and
//! `cluster::known_bad` (rules): it finds the model's `config.json` and weights, the image's env
//! and vLLM version (from the recipe), and the node's memory, then prints the table or JSON.
//! Exit 0 when nothing is an error, 1 when something is (does not fit, a known-bad flag), 2 on
//! bad input.
use anyhow::{bail, Context};
use builder::overlay::Overlay;
use builder::recipe::Recipe;
use cluster::fit::{self, NodeMemory, Plan, Request, ServeArgs};
use cluster::known_bad::Facts;
use cluster::known_bad::{self, Rules, Version};
use cluster::sysfs::Root;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// An image label naming the vLLM version, when the base's tag does not tell it.
pub const VLLM_VERSION_LABEL: &str = "dev.sparkctl.vllm-version";

#[derive(clap::Args)]
pub struct PlanArgs {
    /// The cluster description (nodes, serve.model, serve.args, container.env, container.hf_cache)
    #[arg(long, default_value = "cluster.toml")]
    cluster: PathBuf,
    /// The model folder (config.json and model.safetensors.index.json or *.safetensors); default:
    /// the model's snapshot in container.hf_cache
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// The weights' total bytes as stored (overrides the index); without `--model-dir` or a
    /// downloaded config.json, only the weights and runtime are sized
    #[arg(long)]
    weights_bytes: Option<u64>,
    /// The image recipe: its base tag (or a `dev.sparkctl.vllm-version` label) gives the vLLM
    /// version, its overlays' env what the serve command sees
    #[arg(long)]
    recipe: Option<PathBuf>,
    /// The recipe's overlay folder (default: `overlays/` next to the recipe's folder)
    #[arg(long, requires = "recipe")]
    overlays: Option<PathBuf>,
    /// The vLLM version in the image (overrides the recipe)
    #[arg(long)]
    vllm_version: Option<String>,
    /// Root of a live node: usable memory from ROOT/proc/meminfo's MemAvailable instead of the
    /// nominal DGX Spark
    #[arg(long)]
    root: Option<PathBuf>,
    /// GiB per node CUDA can take at most (default 102: the low end seen on GB10)
    #[arg(long)]
    usable_gib: Option<f64>,
    /// Print the plan as JSON
    #[arg(long)]
    json: bool,
}

/// The env an image built from the recipe gives the serve command (its overlays' then its
/// config's) and its vLLM version (the `dev.sparkctl.vllm-version` label, else the NGC base tag).
fn from_recipe(path: &Path, overlays: Option<&Path>) -> anyhow::Result<(BTreeMap<String, String>, Option<Version>)> {
    let recipe = Recipe::load(path)?;
    let file = path.display().to_string();
    let dir = overlays.map_or_else(|| recipe.default_overlay_dir(), Path::to_owned);
    let mut env = BTreeMap::new();
    for name in &recipe.overlays {
        env.extend(Overlay::load(&dir, name, &file)?.env);
    }
    env.extend(recipe.config.env.iter().cloned());
    let vllm = match recipe.config.labels.iter().find(|(k, _)| k == VLLM_VERSION_LABEL) {
        Some((_, v)) => Some(Version::parse(v).with_context(|| format!("`{file}`: label `{VLLM_VERSION_LABEL} = {v}` is not a version; write e.g. 0.11.1"))?),
        None => known_bad::vllm_of_image_ref(&recipe.base),
    };
    Ok((env, vllm))
}

pub fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let plan = build(&args)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&plan).context("serialising the plan")?).context("writing to stdout")?;
    } else {
        write!(out, "{}", plan.table()).context("writing to stdout")?;
    }
    Ok(if plan.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Gathers the inputs and computes the plan.
fn build(args: &PlanArgs) -> anyhow::Result<Plan> {
    let cluster = crate::render::load_cluster(&args.cluster)?;
    let serve = ServeArgs::parse(&cluster.serve.args, &cluster.source, "serve.args")?;
    if let Some(u) = args.usable_gib.filter(|u| !(1.0..=1024.0).contains(u)) {
        bail!("`--usable-gib {u}` is out of range; give the GiB a node's GPU can take, e.g. 102");
    }

    if args.weights_bytes == Some(0) {
        bail!("`--weights-bytes 0` is not a size; give the weights' total bytes as stored, e.g. 125208090080");
    }
    // The model folder: `--model-dir`, else the snapshot in the HF cache. Without either, a
    // weights figure alone still sizes the weights (the KV cache and activations need the config).
    let dir = match &args.model_dir {
        Some(d) => Some(d.clone()),
        None => match fit::find_model_dir(&cluster.container.hf_cache, &cluster.serve.model) {
            Some(d) => Some(d),
            None if args.weights_bytes.is_some() => None,
            None => bail!(
                "no `config.json` for `{}` in `{}`; give `--model-dir DIR` (a folder with the model's config.json), or `--weights-bytes N` for a weights-only estimate",
                cluster.serve.model,
                cluster.container.hf_cache.join("hub").join(format!("models--{}", cluster.serve.model.replace('/', "--"))).display()
            ),
        },
    };
    let model = dir.as_deref().map(fit::read_model_dir).transpose()?;
    let weights = match (args.weights_bytes, model.as_ref().and_then(|m| m.weights.clone())) {
        (Some(b), _) => Some((b, "`--weights-bytes`".to_owned())),
        (None, w) => w,
    };

    // What the serve command sees: the image's env, then cluster.toml's, then what
    // spark-entrypoint adds when it is unset (Ray's memory monitor off on every node).
    let (mut env, mut vllm) = match &args.recipe {
        Some(path) => from_recipe(path, args.overlays.as_deref())?,
        None => (BTreeMap::new(), None),
    };
    env.extend(cluster.container.env.clone());
    env.entry("RAY_memory_monitor_refresh_ms".into()).or_insert_with(|| "0".into());
    if let Some(v) = &args.vllm_version {
        vllm = Some(Version::parse(v).with_context(|| format!("`--vllm-version {v}` is not a version; write e.g. 0.11.1"))?);
    }
    let vllm = vllm.or_else(|| known_bad::vllm_of_image_ref(&cluster.container.image));

    let memory = match &args.root {
        Some(root) => {
            let m = NodeMemory::read(&Root::new(root), args.usable_gib);
            if !m.source.starts_with("MemAvailable") {
                bail!("`{}` has no readable `proc/meminfo`; give the root of a live node with `--root` (or leave it out for a nominal Spark)", root.display());
            }
            m
        }
        None => NodeMemory::nominal(args.usable_gib),
    };
    let plan = fit::plan(
        &Request {
            facts: Facts {
                model_name: &cluster.serve.model,
                nodes: cluster.expected_nodes(),
                backend: cluster.backend,
                args: &serve,
                env: &env,
                model: model.as_ref().map(|m| &m.shape),
                vllm,
                arch: fit::spark::ARCH,
            },
            weights,
            memory,
        },
        &Rules::builtin(),
    );
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn repo(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
    }

    fn args(cluster: PathBuf, model: &str) -> PlanArgs {
        PlanArgs {
            cluster,
            model_dir: Some(repo(&format!("fixtures/plan/{model}"))),
            weights_bytes: None,
            recipe: Some(repo("images/vllm-spark.toml")),
            overlays: None,
            vllm_version: None,
            root: None,
            usable_gib: None,
            json: false,
        }
    }

    #[test]
    fn the_example_cluster_fits_with_awq_and_not_with_bf16() {
        assert_eq!(run(args(repo("examples/cluster.toml"), "qwen3-vl-235b-a22b-awq")).unwrap(), ExitCode::SUCCESS);
        assert_eq!(run(args(repo("examples/cluster.toml"), "qwen3-vl-235b-a22b-bf16")).unwrap(), ExitCode::from(1));
        // A weights figure overrides the index: 100 GB per rank does not fit either.
        let a = PlanArgs { weights_bytes: Some(200_000_000_000), json: true, ..args(repo("examples/cluster.toml"), "qwen3-vl-235b-a22b-awq") };
        assert_eq!(run(a).unwrap(), ExitCode::from(1));
    }

    /// examples/cluster.toml with its HF cache in `dir` (empty: the model is not downloaded).
    fn cluster_with_cache(dir: &Path) -> PathBuf {
        let text = std::fs::read_to_string(repo("examples/cluster.toml")).unwrap();
        let path = dir.join("cluster.toml");
        std::fs::write(&path, text.replace("/var/lib/spark-cluster/huggingface", &dir.join("hf").display().to_string())).unwrap();
        path
    }

    #[test]
    fn weights_bytes_alone_sizes_the_weights_without_a_model_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let c = cluster_with_cache(tmp.path());
        let only = |bytes: u64| PlanArgs { model_dir: None, weights_bytes: Some(bytes), ..args(c.clone(), "x") };
        // The AWQ bytes fit as far as sized; the table says what is not.
        let p = build(&only(125_208_090_080)).unwrap();
        let t = p.table();
        assert!(t.contains("weights per rank             58.30  125.21 GB (`--weights-bytes`) / 2 rank(s)"), "{t}");
        assert!(t.contains("KV cache                         ?  not sized") && t.contains("verdict: fits as far as sized"), "{t}");
        assert_eq!(run(only(125_208_090_080)).unwrap(), ExitCode::SUCCESS);
        // The BF16 bytes do not fit whatever the rest: exit 1.
        assert_eq!(run(PlanArgs { json: true, ..only(471_340_045_792) }).unwrap(), ExitCode::from(1));
        // A downloaded model in the cache is used when there: then every term is sized.
        let snap = tmp.path().join("hf/hub/models--QuantTrio--Qwen3-VL-235B-A22B-Instruct-AWQ/snapshots/abc");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::copy(repo("fixtures/plan/qwen3-vl-235b-a22b-awq/config.json"), snap.join("config.json")).unwrap();
        let p = build(&only(125_208_090_080)).unwrap();
        assert!(p.memory.as_ref().unwrap().not_sized.is_empty() && p.table().contains("KV cache                      0.37"), "{}", p.table());
        // Zero is not a size.
        let e = run(only(0)).unwrap_err().to_string();
        assert!(e.contains("`--weights-bytes 0` is not a size"), "{e}");
    }

    #[test]
    fn the_example_in_docs_plan_md_is_what_sparkctl_prints() {
        let doc = std::fs::read_to_string(repo("docs/plan.md")).unwrap();
        let cmd = "$ sparkctl plan --cluster examples/cluster.toml --model-dir fixtures/plan/qwen3-vl-235b-a22b-awq --recipe images/vllm-spark.toml\n";
        let start = doc.find(cmd).expect("docs/plan.md shows the example command") + cmd.len();
        let shown = &doc[start..start + doc[start..].find("```").unwrap()];
        assert_eq!(shown, build(&args(repo("examples/cluster.toml"), "qwen3-vl-235b-a22b-awq")).unwrap().table());
    }

    #[test]
    fn the_image_env_and_vllm_version_come_from_the_recipe() {
        // The shipped recipe: NGC 26.09 → vLLM 0.29.0; the spark-env overlay's variables.
        let (env, vllm) = from_recipe(&repo("images/vllm-spark.toml"), None).unwrap();
        assert_eq!(vllm, Some(Version(0, 29, 0)));
        assert_eq!(env.get("VLLM_ATTENTION_BACKEND").map(String::as_str), Some("TRITON_ATTN"));
        assert_eq!(env.get("RAY_memory_monitor_refresh_ms").map(String::as_str), Some("0"));
        // A label wins over the base tag; an NGC tag the table knows gives its version.
        let tmp = tempfile::tempdir().unwrap();
        let recipe = tmp.path().join("r.toml");
        let labelled = "[base]\nref = \"oci:base:base\"\nplatforms = [\"linux/arm64\"]\n[config.labels]\n\"dev.sparkctl.vllm-version\" = \"0.11.1\"\n";
        std::fs::write(&recipe, labelled).unwrap();
        assert_eq!(from_recipe(&recipe, None).unwrap().1, Some(Version(0, 11, 1)));
        let digest = "0".repeat(64);
        std::fs::write(&recipe, format!("[base]\nref = \"docker://nvcr.io/nvidia/vllm:26.09-py3@sha256:{digest}\"\nplatforms = [\"linux/arm64\"]\n")).unwrap();
        assert_eq!(from_recipe(&recipe, None).unwrap().1, Some(Version(0, 29, 0)));
        std::fs::write(&recipe, labelled.replace("0.11.1", "latest")).unwrap();
        let e = from_recipe(&recipe, None).unwrap_err().to_string();
        assert!(e.contains("label `dev.sparkctl.vllm-version = latest` is not a version"), "{e}");
    }

    #[test]
    fn bad_input_is_one_error_naming_the_operand() {
        let tmp = tempfile::tempdir().unwrap();
        // No cluster.toml: the one loader's hint names `--cluster`.
        let e = run(args(tmp.path().join("cluster.toml"), "qwen3-vl-235b-a22b-awq")).unwrap_err().to_string();
        assert!(e.contains("no cluster description at") && e.contains("cluster.toml") && e.contains("pass `--cluster PATH`"), "{e}");
        let e = run(PlanArgs { model_dir: Some(tmp.path().into()), ..args(repo("examples/cluster.toml"), "x") }).unwrap_err();
        assert!(format!("{e:#}").contains("config.json"), "{e:#}");
        let e = run(PlanArgs { model_dir: None, ..args(repo("examples/cluster.toml"), "x") }).unwrap_err().to_string();
        assert!(
            e.contains("no `config.json` for `QuantTrio/Qwen3-VL-235B-A22B-Instruct-AWQ`") && e.contains("--model-dir") && e.contains("--weights-bytes"),
            "{e}"
        );
        let e = run(PlanArgs { vllm_version: Some("new".into()), ..args(repo("examples/cluster.toml"), "qwen3-vl-235b-a22b-awq") }).unwrap_err().to_string();
        assert!(e.contains("`--vllm-version new` is not a version"), "{e}");
        let e = run(PlanArgs { root: Some(tmp.path().into()), ..args(repo("examples/cluster.toml"), "qwen3-vl-235b-a22b-awq") }).unwrap_err().to_string();
        assert!(e.contains("has no readable `proc/meminfo`"), "{e}");
        let bad = tmp.path().join("cluster.toml");
        std::fs::write(&bad, std::fs::read_to_string(repo("examples/cluster.toml")).unwrap().replace("\"0.75\"", "\"lots\"")).unwrap();
        let e = run(args(bad, "qwen3-vl-235b-a22b-awq")).unwrap_err().to_string();
        assert!(e.contains("serve.args = --gpu-memory-utilization \"lots\"") && e.contains("0.75"), "{e}");
    }
}
