//! The head's launch check: the same plan as `sparkctl plan` (`cluster::fit`, memory per node and
//! structure; `cluster::known_bad`, flags known to fail on GB10), run after every node joined and
//! before anything is launched, so a configuration that cannot work stops in a second instead of
//! after a 15-minute load. The table goes to the log once; with `SPARK_PLAN=enforce` an error
//! stops the group, with `warn` it is logged and the launch goes on.

use crate::log;
use crate::settings::{Config, PlanMode};
use crate::supervisor::Stop;
use cluster::fit::{self, NodeMemory, Request, ServeArgs};
use cluster::known_bad::Facts;
use cluster::known_bad::Rules;
use cluster::sysfs::Root;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the container's Hugging Face cache is when `HF_HOME` is unset.
const DEFAULT_HF_HOME: &str = "/root/.cache/huggingface";

/// Runs the plan for the serve command; `env` is what the serve command will get on top of this
/// process's environment.
pub(crate) fn check(cfg: &Config, env: &BTreeMap<String, String>) -> Result<(), Stop> {
    if cfg.plan == PlanMode::Off {
        log::info("plan: skipped (SPARK_PLAN=off)");
        return Ok(());
    }
    let fail = |what: String| -> Result<(), Stop> {
        match cfg.plan {
            PlanMode::Enforce => Err(Stop::Fatal(format!("plan: {what}; fix it, or set SPARK_PLAN=warn to launch anyway"))),
            _ => {
                log::loud(&format!("plan: {what}; launching anyway (SPARK_PLAN=warn)"));
                Ok(())
            }
        }
    };
    // The arguments after `… serve MODEL`.
    let args: Vec<String> = match cfg.serve.iter().position(|a| a == "serve") {
        Some(i) => cfg.serve.iter().skip(i + 2).cloned().collect(),
        None => Vec::new(),
    };
    let serve = match ServeArgs::parse(&args, Path::new("SPARK_SERVE"), "serve command") {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let mut all_env: BTreeMap<String, String> = std::env::vars().collect();
    all_env.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let hf_home = PathBuf::from(all_env.get("HF_HOME").map_or(DEFAULT_HF_HOME, String::as_str));
    let model = match fit::find_model_dir(&hf_home, &cfg.model).map(|d| fit::read_model_dir(&d)) {
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            log::info(&format!("plan: cannot read the model: {e}"));
            None
        }
        None => {
            log::info(&format!("plan: no `config.json` for `{}` under `{}` (not downloaded yet?): memory not sized", cfg.model, hf_home.display()));
            None
        }
    };
    let root = Root::new(&cfg.root);
    let plan = fit::plan(
        &Request {
            facts: Facts {
                model_name: &cfg.model,
                nodes: cfg.nodes.len(),
                backend: cfg.backend,
                args: &serve,
                env: &all_env,
                model: model.as_ref().map(|m| &m.shape),
                vllm: fit::installed_vllm(&root),
                arch: fit::spark::ARCH,
            },
            weights: model.as_ref().and_then(|m| m.weights.clone()),
            memory: NodeMemory::read(&root, None),
        },
        &Rules::builtin(),
    );
    for line in plan.table().lines() {
        log::info(&format!("plan | {line}"));
    }
    let first = plan.errors().next().map(|f| format!("{} error(s); first: {}: {} (fix: {})", plan.errors().count(), f.id, f.message, f.fix));
    match first {
        None => Ok(()),
        Some(what) => fail(what),
    }
}
