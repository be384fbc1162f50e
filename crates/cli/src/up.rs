//! `sparkctl up`: from the control machine, make every node what `cluster.toml` says and start
//! the group. Per node: log in (root or `sudo -n`), look (one probe), plan (`cluster::ops`),
//! show the plan, then install changed files all-or-nothing, the token, the image, the model,
//! and (re)start the group; wait for readiness with a line per node and print the API URL.

use crate::fleet::{self, FleetArgs, Target, LONG, SHORT};
use anyhow::{anyhow, bail, Context};
use cluster::ops::files::{self, Action, Apply, Wanted};
use cluster::ops::model::{self as msync, LocalFile};
use cluster::ops::node::{self, b64, Facts};
use cluster::ops::{sha256_hex, MANIFEST, RESTARTS_FILE, UNIT};
use cluster::{Cluster, Node};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    /// Show every action and diff, change nothing
    #[arg(long)]
    dry_run: bool,
    /// Replace files edited on a node (a backup is kept as `FILE.sparkctl-bak`)
    #[arg(long)]
    force: bool,
    /// The model's files on this machine (a folder, e.g. a hub cache snapshot); default: the
    /// snapshot `refs/main` names in the local Hugging Face cache
    #[arg(long, env = "SPARKCTL_MODEL_DIR", value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// This machine's Hugging Face cache, searched for `serve.model`
    #[arg(long, env = "HF_HOME", value_name = "DIR", hide_env_values = true)]
    hf_home: Option<PathBuf>,
    /// Seconds to wait for every node to be ready (0: do not wait)
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// Clear each node's restart history (a spent restart budget) and restart the group; for
    /// after the cause of the failures is fixed
    #[arg(long)]
    reset_budget: bool,
}

/// What `up` will do on one node.
struct NodePlan {
    node: Node,
    target: Target,
    facts: Facts,
    files: Vec<(Wanted, Action)>,
    image: ImageStep,
    model: Option<ModelStep>,
}

enum ImageStep {
    Present(String),
    Pull,
    Load,
}

struct ModelStep {
    via: String,
    copies: Vec<msync::Copy>,
    free_kib: Option<u64>,
}

/// The model on this machine.
struct LocalModel {
    dir: PathBuf,
    rev: String,
    files: Vec<LocalFile>,
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let (c, nodes) = args.fleet.load()?;
    let ssh = args.fleet.ssh.ssh();
    let local_model = local_model(&c, &args)?;
    let local_image = local_image_id(&c.container.image);
    // Look at every node at once; a node that cannot be reached stops `up` before any change.
    let plans = fleet::all(fleet::each(&nodes, |n| look(&c, n, &ssh, local_model.as_ref(), local_image.as_deref())))?;
    // `--node` chose some nodes: the others may already hold the group's token.
    let others: Vec<&Node> = c.nodes.iter().filter(|n| !nodes.iter().any(|m| m.name == n.name)).collect();
    let token = token_plan(&c, &plans, &others, &ssh, args.force)?;
    // A node whose budget is spent stays `down` with its unit running: clearing the history
    // restarts the group, or it would wait in `down` until a signal.
    let mut changed_any = token.is_some() || args.reset_budget;
    let mut refused = Vec::new();
    for p in &plans {
        changed_any |= show(&c, p, token.as_ref(), local_model.as_ref());
        if args.reset_budget {
            println!("{}: restart history `{RESTARTS_FILE}`: clear", p.node.name);
        }
        for (w, a) in &p.files {
            if matches!(a, Action::HandEdited { .. }) && !args.force {
                refused.push(format!("`{}` on `{}`", w.path, p.node.name));
            }
        }
        if let Some(m) = &p.model {
            let need = msync::bytes_to_send(&m.copies) / 1024;
            if let Some(free) = m.free_kib.filter(|f| *f < need) {
                bail!(
                    "node `{}`: disk full: the model needs {} MiB more but {} has {} MiB free; free space or move `container.hf_cache`",
                    p.node.name,
                    need / 1024,
                    c.container.hf_cache.display(),
                    free / 1024
                );
            }
        }
    }
    if !refused.is_empty() {
        bail!("{} changed on the node since sparkctl installed it (diff above); put the change into cluster.toml, or run `up --force` to replace it (the old file is kept as `.sparkctl-bak`)", refused.join(", "));
    }
    // The model is on every node from here: without HF_HUB_OFFLINE=1 vLLM still asks the hub
    // for it at each start (slow, and on a node without internet a failed start). Said, not
    // set: the rendered files stay exactly what `cluster.toml` says (as `sparkctl render` shows).
    if local_model.is_some() && c.container.env.get("HF_HUB_OFFLINE").map(String::as_str) != Some("1") {
        eprintln!(
            "warning: `{}`: `container.env` has no `HF_HUB_OFFLINE = \"1\"`: the model is copied to every node, but vLLM there will still contact the Hugging Face hub at each start (and fail on a node without internet); add it to `[container] env`",
            args.fleet.cluster.display()
        );
    }
    let running = plans.iter().all(|p| p.facts.unit == "active");
    if args.dry_run {
        println!("dry run: nothing was changed");
        return Ok(ExitCode::SUCCESS);
    }
    if !changed_any && running {
        println!("nothing to change on {} node(s); the group is running", plans.len());
    } else {
        for p in &plans {
            apply(&c, p, token.as_ref(), local_model.as_ref(), args.force)?;
            if args.reset_budget {
                p.target.must("clearing the restart history", node::CLEAR_RESTARTS, &[RESTARTS_FILE.to_owned()], SHORT)?;
                println!("{}: restart history cleared", p.node.name);
            }
        }
        // One group: a change on any node restarts every node together (the rendezvous
        // fingerprint covers the serve command, the image and the node list).
        let verb = if changed_any { "restart" } else { "start" };
        fleet::all(fleet::each(&nodes, |n| {
            let t = &plans.iter().find(|p| p.node.name == n.name).expect("planned").target;
            t.must(&format!("`systemctl {verb} {UNIT}`"), node::START, &[UNIT.to_owned(), verb.to_owned()], SHORT).map(|_| ())
        }))?;
        println!("group {verb}ed on {} node(s)", plans.len());
    }
    if args.timeout == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    wait_ready(&c, &plans, start, Duration::from_secs(args.timeout))?;
    Ok(ExitCode::SUCCESS)
}

/// Logs in, probes, and plans one node.
fn look(c: &Cluster, n: &Node, ssh: &crate::remote::Ssh, model: Option<&LocalModel>, local_image: Option<&str>) -> anyhow::Result<NodePlan> {
    let target = Target::connect(ssh, &n.name)?;
    let wanted = files::wanted(c, n);
    let mut probe_args = vec![
        c.container.image.clone(),
        c.container.token_file.display().to_string(),
        c.container.hf_cache.display().to_string(),
        MANIFEST.to_owned(),
        UNIT.to_owned(),
    ];
    probe_args.extend(wanted.iter().map(|w| w.path.clone()));
    let out = target.must("the probe", node::PROBE, &probe_args, SHORT)?;
    let facts = node::parse_probe(&out.stdout, wanted.len()).map_err(|e| anyhow!("node `{}`: {e}", n.name))?;
    match facts.docker {
        node::Docker::Ready => {}
        node::Docker::Missing => bail!("node `{}`: Docker is missing (`docker` is not on root's PATH); install Docker on the node (DGX OS ships it)", n.name),
        node::Docker::Down => bail!("node `{}`: the Docker daemon does not answer (`docker version`); start it: `systemctl start docker`", n.name),
    }
    let files = wanted.into_iter().zip(&facts.files).map(|(w, cur)| {
        let a = files::action(&w, cur.as_deref(), &facts.manifest);
        (w, a)
    });
    let files = files.collect();
    let image = match (&facts.image, local_image) {
        (Some(have), Some(want)) if have == want => ImageStep::Present(have.clone()),
        (Some(have), None) => ImageStep::Present(have.clone()),
        _ if cluster::ops::is_registry_ref(&c.container.image) => ImageStep::Pull,
        _ => ImageStep::Load,
    };
    let model = match model {
        None => None,
        Some(m) => {
            let snap = msync::snapshot_dir(&c.container.hf_cache.display().to_string(), &c.serve.model, &m.rev);
            let mut list_args = vec![snap];
            for f in &m.files {
                list_args.extend([f.rel.clone(), f.size.to_string()]);
            }
            let out = target.must("listing the model", msync::LIST, &list_args, LONG)?;
            let listing = msync::parse_list(&out.stdout).map_err(|e| anyhow!("node `{}`: {e}", n.name))?;
            Some(ModelStep { via: n.rail_addr().to_string(), copies: msync::plan(&m.files, &listing), free_kib: listing.free_kib })
        }
    };
    Ok(NodePlan { node: n.clone(), target, facts, files, image, model })
}

fn local_image_id(image: &str) -> Option<String> {
    let out = Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", image]).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|s| !s.is_empty())
}

/// The token: kept where every node has the same one; copied from a node that has it to those
/// that lack it; made once when no node has one. Nodes that disagree are an error unless forced
/// (then the head's wins). `Some((token, nodes to write))` when something is written.
///
/// `others` are the nodes `--node` left out: when no chosen node has a token, one of them may
/// (the group's, from an earlier `up`), so it is read from there; a new one would split the
/// group. One that cannot be asked stops `up` before any change.
fn token_plan(c: &Cluster, plans: &[NodePlan], others: &[&Node], ssh: &crate::remote::Ssh, force: bool) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let have: Vec<&NodePlan> = plans.iter().filter(|p| p.facts.token.is_some()).collect();
    let mut hashes: Vec<&str> = have.iter().filter_map(|p| p.facts.token.as_deref()).collect();
    hashes.sort_unstable();
    hashes.dedup();
    let elsewhere = if have.is_empty() { token_elsewhere(c, others, ssh)? } else { None };
    let token = match have.first() {
        None if elsewhere.is_some() => elsewhere.expect("checked"),
        None => {
            let mut bytes = [0u8; 32];
            std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).context("reading `/dev/urandom` for the cluster token")?;
            format!("{}\n", hex::encode(bytes))
        }
        Some(_) if hashes.len() > 1 && !force => bail!(
            "the cluster token differs between {}; remove the wrong token files, or run `up --force` to give every node the head's",
            have.iter().map(|p| format!("`{}`", p.node.name)).collect::<Vec<_>>().join(" and ")
        ),
        Some(first) => {
            let from = have.iter().find(|p| p.node.role == cluster::Role::Head).unwrap_or(first);
            from.target.must("reading the token", node::READ_TOKEN, &[c.container.token_file.display().to_string()], SHORT)?.stdout
        }
    };
    let hash = sha256_hex(token.as_bytes());
    let to: Vec<String> = plans.iter().filter(|p| p.facts.token.as_deref() != Some(hash.as_str())).map(|p| p.node.name.clone()).collect();
    Ok((!to.is_empty()).then_some((token, to)))
}

/// The token of the first node in `others` that has one (`None`: none has).
fn token_elsewhere(c: &Cluster, others: &[&Node], ssh: &crate::remote::Ssh) -> anyhow::Result<Option<String>> {
    let path = c.container.token_file.display().to_string();
    for n in others {
        let read = Target::connect(ssh, &n.name).and_then(|t| t.must("reading the token", node::READ_TOKEN_IF_ANY, std::slice::from_ref(&path), SHORT));
        match read {
            Ok(out) if !out.stdout.trim().is_empty() => return Ok(Some(out.stdout)),
            Ok(_) => {}
            Err(e) => bail!(
                "no chosen node has the cluster token `{path}` and `{}`, left out by `--node`, cannot be asked for its own ({}); reach it, or run `up` with every node so one token is made for all",
                n.name,
                crate::one_line(&e)
            ),
        }
    }
    Ok(None)
}

/// Prints what will happen on one node; `true` when something changes there.
fn show(c: &Cluster, p: &NodePlan, token: Option<&(String, Vec<String>)>, model: Option<&LocalModel>) -> bool {
    let name = &p.node.name;
    let mut changed = false;
    for (w, a) in &p.files {
        println!("{name}: {}: {}", w.path, a.verb());
        match a {
            Action::Unchanged => {}
            Action::Create => changed = true,
            Action::Update { current } | Action::HandEdited { current } => {
                changed = true;
                print!("{}", files::diff(&w.path, current, &w.text));
            }
        }
    }
    let apply = Apply::for_formats(p.files.iter().filter(|(_, a)| *a != Action::Unchanged).map(|(w, _)| w.format));
    if !apply.commands().is_empty() {
        println!("{name}: then: {}", apply.commands().join(", "));
    }
    match token {
        Some((_, to)) if to.contains(name) => println!("{name}: token `{}`: write (mode 0600, the same on every node)", c.container.token_file.display()),
        _ => println!("{name}: token `{}`: unchanged", c.container.token_file.display()),
    }
    match &p.image {
        ImageStep::Present(id) => println!("{name}: image `{}`: present ({})", c.container.image, short(id)),
        ImageStep::Pull => {
            changed = true;
            println!("{name}: image `{}`: docker pull on the node", c.container.image);
        }
        ImageStep::Load => {
            changed = true;
            println!("{name}: image `{}`: docker save here | ssh {name} docker load", c.container.image);
        }
    }
    match (&p.model, model) {
        (Some(m), Some(lm)) if m.copies.is_empty() => println!("{name}: model `{}`: {} file(s) up to date", c.serve.model, lm.files.len()),
        (Some(m), Some(lm)) => {
            changed = true;
            println!(
                "{name}: model `{}`: copy {} of {} file(s), {} MiB, over the rail {}",
                c.serve.model,
                m.copies.len(),
                lm.files.len(),
                msync::bytes_to_send(&m.copies) / (1 << 20),
                m.via
            );
            for cp in &m.copies {
                let from = if cp.offset > 0 { format!(" (continuing at byte {})", cp.offset) } else { String::new() };
                println!("{name}:   {}{from}", cp.rel);
            }
        }
        _ => println!("{name}: model `{}`: no copy on this machine (`--model-dir`); the node must have it", c.serve.model),
    }
    println!("{name}: unit {UNIT}: {}", p.facts.unit);
    changed
}

fn short(id: &str) -> &str {
    id.get(..19).unwrap_or(id)
}

/// Makes one node what the plan says; a failed file install leaves the node's files as they were.
fn apply(c: &Cluster, p: &NodePlan, token: Option<&(String, Vec<String>)>, model: Option<&LocalModel>, force: bool) -> anyhow::Result<()> {
    let name = &p.node.name;
    let install: Vec<&Wanted> = p
        .files
        .iter()
        .filter(|(_, a)| matches!(a, Action::Create | Action::Update { .. }) || force && matches!(a, Action::HandEdited { .. }))
        .map(|(w, _)| w)
        .collect();
    if !install.is_empty() {
        let apply = Apply::for_formats(install.iter().map(|w| w.format));
        let manifest = files::format_manifest(&files::updated_manifest(&p.facts.manifest, &install));
        let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
        let mut args = vec![MANIFEST.to_owned(), b64(manifest.as_bytes()), flag(apply.netplan), flag(apply.sysctl), flag(apply.daemon_reload)];
        for w in &install {
            args.extend([w.path.clone(), format!("{:o}", w.mode), b64(w.text.as_bytes())]);
        }
        p.target.must("installing the files", node::INSTALL, &args, SHORT)?;
        println!(
            "{name}: installed {} file(s){}",
            install.len(),
            if apply.commands().is_empty() { String::new() } else { format!(", ran {}", apply.commands().join(", ")) }
        );
    }
    if let Some((tok, _)) = token.filter(|(_, to)| to.contains(name)) {
        let out = p.target.script_input(
            node::TOKEN,
            &[c.container.token_file.display().to_string()],
            Box::new(std::io::Cursor::new(tok.clone().into_bytes())),
            SHORT,
        )?;
        fleet::check(name, "writing the token", out)?;
        println!("{name}: token written");
    }
    match &p.image {
        ImageStep::Present(_) => {}
        ImageStep::Pull => {
            println!("{name}: pulling `{}`", c.container.image);
            p.target.must(&format!("`docker pull {}`", c.container.image), "docker pull \"$1\" >/dev/null", std::slice::from_ref(&c.container.image), LONG)?;
        }
        ImageStep::Load => {
            println!("{name}: sending `{}` from this machine", c.container.image);
            let mut save = Command::new("docker")
                .args(["save", &c.container.image])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("running `docker save` on this machine; install Docker here, or push the image to a registry the nodes can pull from")?;
            let stream = save.stdout.take().expect("piped");
            let out = p.target.script_input("docker load >/dev/null", &[], Box::new(stream), LONG)?;
            let saved = save.wait_with_output().context("waiting for `docker save`")?;
            if !saved.status.success() {
                bail!(
                    "`docker save {}` failed on this machine: {}; build or load the image here first",
                    c.container.image,
                    String::from_utf8_lossy(&saved.stderr).trim()
                );
            }
            fleet::check(name, "`docker load`", out)?;
        }
    }
    if let (Some(m), Some(lm)) = (&p.model, model) {
        copy_model(c, p, m, lm)?;
    }
    Ok(())
}

/// Copies the planned model files over the node's rail, each continued where a previous run
/// stopped and renamed into place once its hash matches; then points `refs/main` at it.
fn copy_model(c: &Cluster, p: &NodePlan, m: &ModelStep, lm: &LocalModel) -> anyhow::Result<()> {
    let name = &p.node.name;
    let cache = c.container.hf_cache.display().to_string();
    let snap = msync::snapshot_dir(&cache, &c.serve.model, &lm.rev);
    let total = msync::bytes_to_send(&m.copies);
    let mut sent = 0u64;
    for cp in &m.copies {
        let path = lm.dir.join(&cp.rel);
        let mut f = std::fs::File::open(&path).with_context(|| format!("opening `{}`", path.display()))?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(cp.offset)).with_context(|| format!("reading `{}`", path.display()))?;
        let args = [snap.clone(), cp.rel.clone(), cp.size.to_string(), cp.sha256.clone(), cp.offset.to_string()];
        let out = p
            .target
            .script_input_via(&m.via, msync::RECEIVE, &args, Box::new(f), LONG)
            .map_err(|e| anyhow!("{e}; the model goes over the rail address: `~/.ssh/config` needs an entry (`Host {}`) like the one for `{name}`", m.via))?;
        fleet::check(name, &format!("copying `{}`", cp.rel), out)?;
        sent += cp.size - cp.offset;
        println!("{name}: model {} MiB of {} MiB ({})", sent >> 20, total >> 20, cp.rel);
    }
    p.target.must("writing `refs/main`", msync::REF, &[cache, c.serve.model.clone(), lm.rev.clone()], SHORT)?;
    Ok(())
}

/// Finds `serve.model` on this machine, hashes it, and checks its safetensors files.
fn local_model(c: &Cluster, args: &UpArgs) -> anyhow::Result<Option<LocalModel>> {
    if !msync::is_hub_id(&c.serve.model) {
        return Ok(None);
    }
    let dir = match &args.model_dir {
        Some(d) => d.clone(),
        None => {
            let home = args.hf_home.clone().or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/huggingface")));
            let Some(repo) = home.map(|h| h.join("hub").join(msync::repo_folder(&c.serve.model))) else { return Ok(None) };
            let Ok(rev) = std::fs::read_to_string(repo.join("refs/main")) else { return Ok(None) };
            repo.join("snapshots").join(rev.trim())
        }
    };
    if !dir.is_dir() {
        bail!("the model folder `{}` does not exist; point `--model-dir` at a folder holding `{}`", dir.display(), c.serve.model);
    }
    let rev = match (dir.parent().and_then(Path::file_name), dir.file_name()) {
        (Some(p), Some(r)) if p == "snapshots" => r.to_string_lossy().into_owned(),
        _ => "sparkctl".to_owned(),
    };
    let mut rels = Vec::new();
    walk(&dir, &dir, &mut rels).with_context(|| format!("reading the model folder `{}`", dir.display()))?;
    rels.sort();
    let mut files = Vec::new();
    for rel in rels {
        let path = dir.join(&rel);
        let (size, sha256, head) = hash_file(&path).with_context(|| format!("reading `{}`", path.display()))?;
        if rel.ends_with(".safetensors") {
            msync::check_safetensors(&head, size).map_err(|e| anyhow!("the model file `{}` is damaged: {e}; download it again", path.display()))?;
        }
        files.push(LocalFile { rel, size, sha256 });
    }
    if let Ok(index) = std::fs::read_to_string(dir.join("model.safetensors.index.json")) {
        let missing = msync::missing_from_index(&index, &files).map_err(|e| anyhow!("`{}/model.safetensors.index.json`: {e}", dir.display()))?;
        if !missing.is_empty() {
            bail!("the model in `{}` is incomplete: its index names {} which are not there; finish the download first", dir.display(), missing.join(", "));
        }
    }
    Ok(Some(LocalModel { dir, rev, files }))
}

/// Regular files under `dir` (symlinks followed: hub snapshots link into `blobs/`), relative.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let meta = std::fs::metadata(&p)?;
        if meta.is_dir() {
            walk(root, &p, out)?;
        } else if meta.is_file() && !p.to_string_lossy().ends_with(".sparkctl-partial") {
            out.push(p.strip_prefix(root).expect("under root").to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// Size, SHA-256, and the first bytes (up to a safetensors header's worth).
fn hash_file(path: &Path) -> std::io::Result<(u64, String, Vec<u8>)> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < (16 << 20) {
            head.extend_from_slice(&buf[..n.min((16 << 20) - head.len())]);
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(h.finalize()), head))
}

/// Polls every node's entrypoint status each second, printing a node's line when it changes,
/// until all are ready; a node that is `down` (restart budget spent) ends the wait.
fn wait_ready(c: &Cluster, plans: &[NodePlan], start: Instant, timeout: Duration) -> anyhow::Result<()> {
    let mut last: Vec<String> = vec![String::new(); plans.len()];
    loop {
        let states: Vec<_> = std::thread::scope(|s| {
            let h: Vec<_> = plans.iter().map(|p| s.spawn(|| crate::status::node_status(c, &p.target))).collect();
            h.into_iter().map(|h| h.join().expect("status thread")).collect()
        });
        let mut ready = 0;
        for (i, (p, st)) in plans.iter().zip(&states).enumerate() {
            let line = match st {
                Ok(s) => {
                    let state = s.state.clone().unwrap_or_else(|| format!("no container (unit {})", s.unit));
                    if state == "ready" {
                        ready += 1;
                    }
                    if state == "down" {
                        bail!("node `{}` is down: {}; see `sparkctl status` and `sparkctl logs --node {}`", p.node.name, s.detail, p.node.name);
                    }
                    if s.detail.is_empty() {
                        state
                    } else {
                        format!("{state}: {}", s.detail)
                    }
                }
                Err(e) => format!("unknown: {e}"),
            };
            if line != last[i] {
                println!("{}: {line} ({:.0?})", p.node.name, start.elapsed());
                last[i] = line;
            }
        }
        if ready == plans.len() {
            let head = c.head();
            let addr = head.management.as_ref().map_or(head.rail_addr(), |m| m.address.addr);
            println!("ready in {:.1} s: http://{addr}:{}/v1", start.elapsed().as_secs_f64(), c.serve.port);
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("the group was not ready within {} s; see `sparkctl status` and `sparkctl logs`", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
