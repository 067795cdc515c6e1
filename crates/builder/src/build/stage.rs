//! Stages: the base (scratch, an image, or an earlier stage), ONBUILD
//! triggers of the base, then each step — from the cache when its key is
//! known, else executed. Stages are built on demand, so those the target
//! does not need are never built.

use super::cache::key;
use super::error::{BuildError, BuildResult};
use super::progress::Event;
use super::scope::Scope;
use super::state::ImageState;
use super::{copy_step, run_step, Ctx, NamedContext, NewLayer};
use crate::{Command, Dockerfile, Healthcheck, Instruction, Stage, Step};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use wharf_image::Platform;

/// A built stage: its image state and the cache key of its last step.
#[derive(Clone)]
pub(crate) struct Built {
    pub state: ImageState,
    pub key: String,
}

pub(crate) struct Stages<'a, 'c> {
    pub ctx: &'a Ctx<'c>,
    pub df: &'a Dockerfile,
    pub scope: Scope,
    /// Each stage's result, built once; the lock makes a second caller wait.
    done: Vec<(Mutex<()>, OnceLock<Built>)>,
}

/// BuildKit's automatic platform ARGs: TARGET* is the platform being built,
/// BUILD* the host's.
fn platform_args(target: &Platform) -> BTreeMap<String, String> {
    target.args("TARGET").into_iter().chain(Platform::host().args("BUILD")).collect()
}

/// Builds the target stage (and whatever it needs).
pub(crate) fn build_target(ctx: &Ctx, df: &Dockerfile) -> BuildResult<(ImageState, String)> {
    let target = df
        .target(ctx.opts.target.as_deref())
        .ok_or_else(|| BuildError::Invalid(format!("no stage named {:?}", ctx.opts.target.as_deref().unwrap_or(""))))?;
    let mut scope = Scope::new(ctx.opts.build_args.clone(), platform_args(&ctx.platform));
    let mut declared = Vec::new();
    for g in &df.global_args {
        let step = g.expand(&ctx.lexer, &scope.global_view())?;
        if let Instruction::Arg(decls) = &step.instruction {
            for d in decls {
                scope.declare_global(d);
                declared.push(d.name.clone());
            }
        }
    }
    for s in df.stages.iter().flat_map(|s| &s.steps) {
        if let Instruction::Arg(decls) = &s.instruction {
            declared.extend(decls.iter().map(|d| d.name.clone()));
        }
    }
    for u in scope.unused(&declared) {
        ctx.say(&format!("warning: --build-arg {u} was not used by any ARG"));
    }
    let done = df.stages.iter().map(|_| (Mutex::new(()), OnceLock::new())).collect();
    let stages = Stages { ctx, df, scope, done };
    let mut built = stages.stage(target.index)?;
    if !ctx.opts.labels.is_empty() {
        let labels = built.state.cfg().entry("Labels").or_insert_with(|| json!({}));
        for (k, v) in &ctx.opts.labels {
            labels[k] = json!(v);
        }
    }
    Ok((built.state, built.key))
}

impl Stages<'_, '_> {
    /// Stage `idx`, built now unless it was already. The stages it needs
    /// are built first, independent ones at the same time.
    pub(crate) fn stage(&self, idx: usize) -> BuildResult<Built> {
        let (lock, slot) = &self.done[idx];
        if let Some(b) = slot.get() {
            return Ok(b.clone());
        }
        let _building = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = slot.get() {
            return Ok(b.clone());
        }
        self.prebuild(&self.deps(idx))?;
        let built = self.build_stage(&self.df.stages[idx])?;
        Ok(slot.get_or_init(|| built).clone())
    }

    /// The stages stage `idx` names (FROM, COPY --from, RUN --mount from=)
    /// without variables in the name; the others are found as they come.
    fn deps(&self, idx: usize) -> Vec<usize> {
        let stage = &self.df.stages[idx];
        let mut names: Vec<&str> = Vec::new();
        if self.df.stages.iter().take(idx).any(|s| s.name.as_deref() == Some(stage.from.image.as_str())) {
            names.push(stage.from.image.as_str());
        }
        for step in &stage.steps {
            match &step.instruction {
                Instruction::Copy(c) | Instruction::Add(c) => names.extend(c.from.as_deref()),
                Instruction::Run(r) => names.extend(r.mounts.iter().filter_map(|m| m.from.as_deref())),
                _ => {}
            }
        }
        let mut out: Vec<usize> = names
            .into_iter()
            .filter(|n| !n.contains('$') && self.named(n).is_none())
            .filter_map(|n| self.df.stage_ref(n).map(|s| s.index))
            .filter(|&i| i != idx && self.done[i].1.get().is_none())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Builds independent stages concurrently (each in a thread of its own).
    fn prebuild(&self, deps: &[usize]) -> BuildResult<()> {
        if deps.len() < 2 {
            return deps.iter().try_for_each(|&d| self.stage(d).map(|_| ()));
        }
        std::thread::scope(|sc| {
            let handles: Vec<_> = deps.iter().map(|&d| sc.spawn(move || self.stage(d).map(|_| ()))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(BuildError::Invalid("a stage's thread panicked".into()))))
                .collect::<BuildResult<Vec<()>>>()
        })?;
        Ok(())
    }

    /// The stage a `--from` names, if it names one (else it is an image).
    pub(crate) fn stage_named(&self, name: &str) -> Option<usize> {
        if self.named(name).is_some() {
            return None;
        }
        self.df.stage_ref(name).map(|s| s.index)
    }

    /// The `--build-context` of that name, which wins over stages and images.
    pub(crate) fn named(&self, name: &str) -> Option<&NamedContext> {
        self.ctx.opts.named_contexts.get(name)
    }

    /// An image's state for `--from`/`from=`: a named context's image or the one named.
    pub(crate) fn image_state(&self, name: &str) -> BuildResult<ImageState> {
        let name = match self.named(name) {
            Some(NamedContext::Image(r)) => r.as_str(),
            Some(NamedContext::OciLayout { dir, reference }) => {
                return Ok(super::contexts::oci_layout_image(self.ctx.store, dir, reference.as_deref())?.0)
            }
            Some(NamedContext::Dir(_)) | None => name,
        };
        ImageState::from_image(self.ctx.store, &self.ctx.image(name)?)
    }

    fn base(&self, stage: &Stage) -> BuildResult<Built> {
        // FROM --platform=$BUILDPLATFORM: a stage of another platform than
        // the target's (cross-compilation).
        let platform = match &stage.from.platform {
            Some(p) => {
                let p = self.ctx.lexer.expand_word(p, &self.scope.global_view())?;
                Platform::parse(&p).map_err(|e| BuildError::Invalid(format!("FROM --platform={p}: {e}")))?
            }
            None => self.ctx.platform.clone(),
        };
        let image = self.ctx.lexer.expand_word(&stage.from.image, &self.scope.global_view())?;
        match self.named(&image) {
            Some(NamedContext::Image(r)) => {
                let img = self.ctx.image(r)?;
                let mut state = ImageState::from_image(self.ctx.store, &img)?;
                state.ensure_path();
                return Ok(self.root(state, key(super::cache::GENERATION, &["image", img.manifest_digest.as_ref()])));
            }
            Some(NamedContext::OciLayout { dir, reference }) => {
                let (mut state, digest) = super::contexts::oci_layout_image(self.ctx.store, dir, reference.as_deref())?;
                state.ensure_path();
                return Ok(self.root(state, key(super::cache::GENERATION, &["image", digest.as_ref()])));
            }
            Some(NamedContext::Dir(d)) => {
                return Err(BuildError::Invalid(format!(
                    "FROM {image}: the build context {image} is a directory ({}); FROM needs docker-image://REF",
                    d.display()
                )))
            }
            None => {}
        }
        // The latest earlier stage of that name (a name may be given twice).
        if let Some(prev) = self.df.stages[..stage.index]
            .iter()
            .rfind(|s| s.name.as_deref() == Some(image.to_ascii_lowercase().as_str()))
        {
            return self.stage(prev.index);
        }
        if image == "scratch" {
            let k = key(super::cache::GENERATION, &["scratch", &platform.to_string()]);
            return Ok(self.root(ImageState::scratch(&platform), k));
        }
        let img = self.ctx.image_for(&image, &platform)?;
        let mut state = ImageState::from_image(self.ctx.store, &img)?;
        state.ensure_path();
        Ok(self.root(state, key(super::cache::GENERATION, &["image", img.manifest_digest.as_ref()])))
    }

    /// A stage's base (an image or scratch): the root of a chain of records.
    fn root(&self, state: ImageState, key: String) -> Built {
        self.ctx.cache_io.record(&key, None, &state);
        Built { state, key }
    }

    fn build_stage(&self, stage: &Stage) -> BuildResult<Built> {
        // As BuildKit shows them: the stage's name, `stage-N` when it has
        // none, nothing when the Dockerfile has one stage.
        let name = match &stage.name {
            Some(n) => n.clone(),
            None if self.df.stages.len() == 1 => String::new(),
            None => format!("stage-{}", stage.index),
        };
        let name = format!("{}{name}", self.ctx.label).trim_end().to_string();
        let prefix = if name.is_empty() { String::new() } else { format!("[{name}] ") };
        self.ctx.say(&format!("{prefix}FROM {}", stage.from.image));
        let mut cur = self.base(stage).map_err(|e| match e {
            BuildError::Dockerfile(_) | BuildError::Step { .. } => e,
            e => BuildError::Step {
                lines: stage.lines,
                instruction: format!("FROM {}", stage.from.image),
                reason: e.to_string(),
            },
        })?;
        let mut scope = self.scope.for_stage(&cur.state.env());
        let triggers = self.onbuild_steps(&mut cur)?;
        let mut shell = shell_of(&cur.state);
        let mut cmd_set = false;
        let total = stage.steps.len();
        let o = &self.ctx.opts;
        let no_cache = o.no_cache
            || o.no_cache_filter.iter().any(|f| {
                stage.name.as_deref() == Some(f.to_ascii_lowercase().as_str()) || *f == stage.index.to_string()
            });
        for (i, step) in triggers.iter().chain(&stage.steps).enumerate() {
            let id = super::progress::next_id();
            let text = step.original.lines().next().unwrap_or_default();
            self.ctx.emit(&Event::Step { id, stage: &name, index: i + 1, total, text });
            self.ctx.attest.step(id, &name, &self.ctx.platform, step);
            cur = self
                .step(cur, step, &mut scope, &mut shell, &mut cmd_set, (id, no_cache))
                .map_err(|e| locate(e, step))?;
        }
        Ok(cur)
    }

    /// The base image's ONBUILD triggers, parsed; they run first and are not inherited.
    fn onbuild_steps(&self, cur: &mut Built) -> BuildResult<Vec<Step>> {
        let triggers: Vec<String> = cur
            .state
            .get("OnBuild")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if triggers.is_empty() {
            return Ok(Vec::new());
        }
        cur.state.cfg().remove("OnBuild");
        let text = format!("FROM scratch\n{}\n", triggers.join("\n"));
        let df = crate::parse_dockerfile(&text)?;
        Ok(df.stages.into_iter().flat_map(|s| s.steps).collect())
    }

    /// One step: from the cache, or executed and then cached.
    fn step(
        &self,
        cur: Built,
        step: &Step,
        scope: &mut Scope,
        shell: &mut Vec<String>,
        cmd_set: &mut bool,
        (id, no_cache): (usize, bool),
    ) -> BuildResult<Built> {
        let expanded =
            if step.instruction.expands() { step.expand(&self.ctx.lexer, &scope.view())? } else { step.clone() };
        if let Instruction::Arg(decls) = &expanded.instruction {
            decls.iter().for_each(|d| scope.declare(d));
            self.ctx.emit(&Event::Done { id, secs: 0.0 });
            return Ok(cur);
        }
        let mut parts = vec![format!("{:?}", expanded.instruction)];
        if matches!(expanded.instruction, Instruction::Run(_)) {
            parts.push(scope.arg_fingerprint());
        }
        let mut sources = None;
        if let Instruction::Copy(c) | Instruction::Add(c) = &expanded.instruction {
            let (hash, srcs) =
                copy_step::inputs_hash(self, &cur, c, matches!(expanded.instruction, Instruction::Add(_)))?;
            parts.push(hash);
            sources = Some(srcs);
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let k = key(&cur.key, &refs);
        apply_scope(&expanded.instruction, scope, shell, cmd_set);
        let slot = self.ctx.steps.slot(&k);
        let mut made = slot.lock().unwrap_or_else(|e| e.into_inner());
        let io = self.ctx.cache_io;
        if let Some(state) = made.clone() {
            self.ctx.emit(&Event::Cached { id });
            io.record(&k, Some(&cur.key), &state);
            return Ok(Built { state, key: k });
        }
        if !no_cache {
            // The local cache, then the imported ones (their layers fetched when needed).
            if let Some(state) = self.ctx.cache.get(&k, self.ctx.store).or_else(|| io.lookup(&k)) {
                self.ctx.emit(&Event::Cached { id });
                io.record(&k, Some(&cur.key), &state);
                return Ok(Built { state, key: k });
            }
        }
        let t0 = std::time::Instant::now();
        let mut state = cur.state.clone();
        let layer = self.execute(&mut state, &expanded, (scope, shell, *cmd_set), id, sources)?;
        state.record(&self.ctx.now(), &history_text(step), layer);
        self.ctx.cache.put(&k, &state)?;
        *made = Some(state.clone());
        self.ctx.emit(&Event::Done { id, secs: t0.elapsed().as_secs_f64() });
        // A step run despite the cache (--no-cache-filter) may give a new
        // result: what builds on it is keyed by that result, so it reruns
        // only if the result changed (content-addressed, as in BuildKit).
        io.record(&k, Some(&cur.key), &state);
        let k = if no_cache && !self.ctx.opts.no_cache {
            let k2 = key(&k, &[&result_fingerprint(&state)]);
            io.record(&k2, Some(&k), &state);
            k2
        } else {
            k
        };
        Ok(Built { state, key: k })
    }

    fn execute(
        &self,
        state: &mut ImageState,
        step: &Step,
        (scope, shell, cmd_set): (&Scope, &[String], bool),
        id: usize,
        sources: Option<copy_step::Sources>,
    ) -> BuildResult<NewLayer> {
        match &step.instruction {
            Instruction::Run(r) => {
                let (roots, _mounted) = self.mount_sources(r)?;
                run_step::run_step(self.ctx, state, scope.run_env(), r, (step, id), shell, &roots)
            }
            Instruction::Copy(c) => copy_step::copy_step(self, state, (c, false), step, sources),
            Instruction::Add(c) => copy_step::copy_step(self, state, (c, true), step, sources),
            other => {
                apply_config(state, other, shell, cmd_set).map_err(|e| BuildError::step(step, e))?;
                Ok(None)
            }
        }
    }
}

/// Gives an error that does not say where it happened the step's lines.
fn locate(e: BuildError, step: &Step) -> BuildError {
    match e {
        BuildError::Dockerfile(_) | BuildError::Step { .. } => e,
        e => BuildError::step(step, e),
    }
}

impl Stages<'_, '_> {
    /// Mounts the stages and images `RUN --mount=...,from=` names, read-only
    /// views kept alive while the RUN uses them.
    fn mount_sources(
        &self,
        r: &crate::Run,
    ) -> BuildResult<(HashMap<String, std::path::PathBuf>, Vec<run_step::Workspace>)> {
        let mut roots = HashMap::new();
        let mut mounted = Vec::new();
        for f in r.mounts.iter().filter_map(|m| m.from.as_ref()) {
            if roots.contains_key(f) {
                continue;
            }
            if let Some(NamedContext::Dir(d)) = self.named(f) {
                roots.insert(f.clone(), d.clone());
                continue;
            }
            let state = match self.stage_named(f) {
                Some(i) => self.stage(i)?.state,
                None => self.image_state(f)?,
            };
            let ws = run_step::Workspace::mount_view(self.ctx, &state, &format!("from-{}", super::unique()))?;
            roots.insert(f.clone(), ws.merged.clone());
            mounted.push(ws);
        }
        Ok((roots, mounted))
    }
}

/// What a later step sees of a state: its layers and its config (not the times).
fn result_fingerprint(state: &ImageState) -> String {
    let layers: Vec<String> = state.layers.iter().map(|l| l.digest().to_string()).collect();
    format!("{}\n{}", layers.join(","), state.config["config"])
}

fn history_text(step: &Step) -> String {
    let mut s = step.original.clone();
    if let Instruction::Run(_) = step.instruction {
        s.push_str(" # wharf");
    }
    s
}

fn shell_of(state: &ImageState) -> Vec<String> {
    state
        .get("Shell")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

/// What a step changes in the stage's scope (cached or not).
fn apply_scope(i: &Instruction, scope: &mut Scope, shell: &mut Vec<String>, cmd_set: &mut bool) {
    match i {
        Instruction::Env(kvs) => kvs.iter().for_each(|kv| scope.set_env(&kv.key, &kv.value)),
        Instruction::Shell(s) => *shell = s.clone(),
        Instruction::Cmd(_) => *cmd_set = true,
        _ => {}
    }
}

fn command_json(c: &Command, shell: &[String]) -> Value {
    match c {
        Command::Exec(v) => json!(v),
        Command::Shell(s) => json!(shell.iter().cloned().chain([s.clone()]).collect::<Vec<_>>()),
    }
}

/// The config change of a metadata instruction.
fn apply_config(state: &mut ImageState, i: &Instruction, shell: &[String], cmd_set: bool) -> Result<(), String> {
    let cfg = state.cfg();
    match i {
        Instruction::Env(kvs) => {
            let mut env: Vec<String> = cfg
                .get("Env")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            wharf_runtime::spec::merge_env(
                &mut env,
                &kvs.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect::<Vec<_>>(),
            );
            cfg.insert("Env".into(), json!(env));
        }
        Instruction::Label(kvs) => {
            let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            kvs.iter().for_each(|kv| labels[kv.key.as_str()] = json!(kv.value));
        }
        Instruction::Workdir(w) => {
            let base = cfg.get("WorkingDir").and_then(Value::as_str).unwrap_or("/").to_string();
            let p = if w.starts_with('/') { w.clone() } else { format!("{}/{w}", base.trim_end_matches('/')) };
            cfg.insert("WorkingDir".into(), json!(p));
        }
        Instruction::User(u) => _ = cfg.insert("User".into(), json!(u)),
        Instruction::Expose(ports) => {
            let e = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
            for p in ports {
                let p = if p.contains('/') { p.clone() } else { format!("{p}/tcp") };
                e[p] = json!({});
            }
        }
        Instruction::Volume(vols) => {
            let v = cfg.entry("Volumes").or_insert_with(|| json!({}));
            vols.iter().for_each(|p| v[p.as_str()] = json!({}));
        }
        Instruction::StopSignal(s) => _ = cfg.insert("StopSignal".into(), json!(s)),
        Instruction::Cmd(c) => _ = cfg.insert("Cmd".into(), command_json(c, shell)),
        Instruction::Entrypoint(c) => {
            cfg.insert("Entrypoint".into(), command_json(c, shell));
            // Docker: a new ENTRYPOINT drops a CMD inherited from the base image.
            if !cmd_set {
                cfg.insert("Cmd".into(), Value::Null);
            }
        }
        Instruction::Shell(s) => _ = cfg.insert("Shell".into(), json!(s)),
        Instruction::Healthcheck(h) => _ = cfg.insert("Healthcheck".into(), healthcheck_json(h, shell)),
        Instruction::Onbuild(o) => {
            let list = cfg.entry("OnBuild").or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(json!(o.config_text()));
            }
        }
        Instruction::Maintainer(m) => state.config["author"] = json!(m),
        other => return Err(format!("{} cannot be applied here", other.keyword())),
    }
    Ok(())
}

fn healthcheck_json(h: &Healthcheck, _shell: &[String]) -> Value {
    match h {
        Healthcheck::Disable => json!({"Test": ["NONE"]}),
        Healthcheck::Check(c) => {
            let test = match &c.test {
                Command::Exec(v) => {
                    json!(std::iter::once("CMD".to_string()).chain(v.iter().cloned()).collect::<Vec<_>>())
                }
                Command::Shell(s) => json!(["CMD-SHELL", s]),
            };
            let mut v = json!({"Test": test});
            let ns = |d: &std::time::Duration| json!(d.as_nanos() as u64);
            if let Some(d) = &c.interval {
                v["Interval"] = ns(d);
            }
            if let Some(d) = &c.timeout {
                v["Timeout"] = ns(d);
            }
            if let Some(d) = &c.start_period {
                v["StartPeriod"] = ns(d);
            }
            if let Some(d) = &c.start_interval {
                v["StartInterval"] = ns(d);
            }
            if let Some(r) = c.retries {
                v["Retries"] = json!(r);
            }
            v
        }
    }
}
