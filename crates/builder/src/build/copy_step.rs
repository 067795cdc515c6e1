//! COPY and ADD: sources from the context (filtered by .dockerignore),
//! another stage, an image, or inline heredocs, written straight into a
//! layer tar (no container); `--chown` names resolved in the stage's rootfs.

use super::error::{BuildError, BuildResult};
use super::run_step::Workspace;
use super::stage::{Built, Stages};
use super::state::ImageState;
use super::NewLayer;
use crate::layer::{CopyPlan, CopySource};
use crate::{Copy, DockerIgnore, Step};
use std::path::PathBuf;

/// Where a COPY reads from, kept alive (mounted) while it is used: made
/// once for the step's cache key and, when the step runs, used for its
/// layer too (a stage is mounted, a URL downloaded, once per step).
pub(crate) struct Sources {
    roots: Vec<CopySource>,
    /// Mounts of other stages or images, and heredoc files: removed on drop.
    _mounts: Vec<Workspace>,
    _heredocs: Option<tempdir::TempDir>,
    from_context: bool,
}

mod tempdir {
    /// A directory removed when dropped.
    pub(crate) struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
}

impl Stages<'_, '_> {
    fn sources(&self, c: &Copy, add: bool) -> BuildResult<Sources> {
        if c.sources.iter().any(|s| is_url(s)) {
            return self.url_sources(c, add);
        }
        if !c.heredocs.is_empty() {
            let dir = self.ctx.work_dir.join(format!("heredoc-{}", super::unique()));
            std::fs::create_dir_all(&dir).map_err(|e| BuildError::io("heredoc dir", e))?;
            let tmp = tempdir::TempDir(dir.clone());
            let mut roots = Vec::new();
            for h in &c.heredocs {
                std::fs::write(dir.join(&h.name), h.body()).map_err(|e| BuildError::io("heredoc file", e))?;
                roots.push(CopySource { root: dir.clone(), path: h.name.clone() });
            }
            return Ok(Sources { roots, _mounts: Vec::new(), _heredocs: Some(tmp), from_context: false });
        }
        let Some(from) = &c.from else {
            let roots =
                c.sources.iter().map(|p| CopySource { root: self.ctx.context.clone(), path: p.clone() }).collect();
            return Ok(Sources { roots, _mounts: Vec::new(), _heredocs: None, from_context: true });
        };
        if let Some(super::NamedContext::Dir(d)) = self.named(from) {
            let roots = c.sources.iter().map(|p| CopySource { root: d.clone(), path: p.clone() }).collect();
            return Ok(Sources { roots, _mounts: Vec::new(), _heredocs: None, from_context: false });
        }
        let state = match self.stage_named(from) {
            Some(i) => self.stage(i)?.state,
            None => self.image_state(from)?,
        };
        let ws = Workspace::mount_view(self.ctx, &state, &format!("from-{}", super::unique()))?;
        let roots = c.sources.iter().map(|p| CopySource { root: ws.merged.clone(), path: p.clone() }).collect();
        Ok(Sources { roots, _mounts: vec![ws], _heredocs: None, from_context: false })
    }

    /// `ADD <url>`: each URL downloaded (checked against `--checksum`) into
    /// a temp dir, named after the URL's last path segment, as Docker does.
    fn url_sources(&self, c: &Copy, add: bool) -> BuildResult<Sources> {
        if !add {
            return Err(BuildError::Invalid("COPY does not take URLs: use ADD".into()));
        }
        let dir = self.ctx.work_dir.join(format!("url-{}", super::unique()));
        std::fs::create_dir_all(&dir).map_err(|e| BuildError::io("download dir", e))?;
        let tmp = tempdir::TempDir(dir.clone());
        let mut roots = Vec::new();
        for u in &c.sources {
            if !is_url(u) {
                return Err(BuildError::Invalid(format!("ADD {u}: URLs and local paths cannot be mixed")));
            }
            if u.starts_with("git@") {
                return Err(BuildError::Invalid(format!("ADD {u}: git sources are not supported")));
            }
            let name = u
                .split(['?', '#'])
                .next()
                .unwrap_or(u)
                .rsplit('/')
                .find(|s| !s.is_empty())
                .unwrap_or("download")
                .to_string();
            let dest = dir.join(&name);
            let got = wharf_registry::block_on(wharf_registry::download(u, &dest, c.checksum.as_deref()))?;
            // Docker: the file's mtime is the server's Last-Modified.
            if let Some(t) = got.modified {
                let f =
                    std::fs::File::options().write(true).open(&dest).map_err(|e| BuildError::io("open download", e))?;
                let _ = f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64));
            }
            roots.push(CopySource { root: dir.clone(), path: name });
        }
        Ok(Sources { roots, _mounts: Vec::new(), _heredocs: Some(tmp), from_context: false })
    }

    fn dockerignore(&self) -> BuildResult<Option<DockerIgnore>> {
        let df_name =
            self.ctx.opts.dockerfile.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let (Some(df), Some(n)) = (&self.ctx.opts.dockerfile, &df_name) {
            candidates.push(df.with_file_name(format!("{n}.dockerignore")));
        }
        candidates.push(self.ctx.context.join(".dockerignore"));
        for p in candidates {
            if let Ok(text) = std::fs::read_to_string(&p) {
                return Ok(Some(DockerIgnore::parse(&text)?));
            }
        }
        Ok(None)
    }

    fn plan<'i>(
        &self,
        srcs: &Sources,
        c: &Copy,
        add: bool,
        ignore: &'i Option<DockerIgnore>,
        dest_rootfs: Option<PathBuf>,
        state: &ImageState,
    ) -> BuildResult<CopyPlan<'i>> {
        let workdir =
            state.get("WorkingDir").and_then(|v| v.as_str()).filter(|w| !w.is_empty()).unwrap_or("/").to_string();
        let chown = match (&c.chown, &dest_rootfs) {
            (Some(spec), Some(root)) => Some(owner(root, spec)?),
            (Some(spec), None) => Some(numeric_owner(spec)?),
            _ => None,
        };
        Ok(CopyPlan {
            sources: srcs.roots.clone(),
            dest: c.dest.clone(),
            workdir,
            chown,
            chmod: c.mode(),
            ignore: if srcs.from_context { ignore.as_ref() } else { None },
            context_root: srcs.from_context.then(|| self.ctx.context.clone()),
            // Docker unpacks local tars only, never downloaded ones.
            extract_archives: add && !c.sources.iter().any(|s| is_url(s)),
            dest_rootfs,
            parents: c.parents,
        })
    }
}

/// `user[:group]` by id or by name in the destination's /etc/passwd and /etc/group.
fn owner(rootfs: &std::path::Path, spec: &str) -> BuildResult<(u32, u32)> {
    if let Ok(ids) = numeric_owner(spec) {
        return Ok(ids);
    }
    let (uid, gid, _) = wharf_runtime::spec::resolve_user(rootfs, spec)?;
    Ok((uid, gid))
}

fn numeric_owner(spec: &str) -> BuildResult<(u32, u32)> {
    let (u, g) = spec.split_once(':').unwrap_or((spec, spec));
    match (u.parse(), g.parse()) {
        (Ok(u), Ok(g)) => Ok((u, g)),
        _ => Err(BuildError::Invalid(format!("--chown={spec}: names need a rootfs with /etc/passwd; use numeric ids"))),
    }
}

/// The content hash of a COPY/ADD's inputs, for its cache key, and the
/// sources, for [`copy_step`] if the step runs.
pub(crate) fn inputs_hash(stages: &Stages, cur: &Built, c: &Copy, add: bool) -> BuildResult<(String, Sources)> {
    let srcs = stages.sources(c, add)?;
    let ignore = stages.dockerignore()?;
    let plan = stages.plan(&srcs, c, add, &ignore, None, &cur.state).or_else(|_| {
        // --chown by name: the names are part of the instruction text already.
        let mut c2 = c.clone();
        c2.chown = None;
        stages.plan(&srcs, &c2, add, &ignore, None, &cur.state)
    })?;
    let hash = crate::layer::hash_sources(&plan)?;
    Ok((hash, srcs))
}

/// Executes a COPY/ADD onto `state`: one new layer. `srcs`: the sources
/// [`inputs_hash`] made, else they are made now.
pub(crate) fn copy_step(
    stages: &Stages,
    state: &ImageState,
    (c, add): (&Copy, bool),
    step: &Step,
    srcs: Option<Sources>,
) -> BuildResult<NewLayer> {
    let srcs = match srcs {
        Some(s) => s,
        None => stages.sources(c, add).map_err(|e| BuildError::step(step, e))?,
    };
    if c.link {
        return link_step(stages, state, (c, add), srcs).map_err(|e| BuildError::step(step, e));
    }
    let ignore = stages.dockerignore()?;
    // Read only: where the destination's links and owners are looked up.
    let dest = Workspace::mount_view(stages.ctx, state, &format!("dest-{}", super::unique()))?;
    let plan =
        stages.plan(&srcs, c, add, &ignore, Some(dest.merged.clone()), state).map_err(|e| BuildError::step(step, e))?;
    let opts = stages.ctx.tar_options();
    stages.ctx.write_layer(&mut |w| crate::layer::copy_to_tar(&plan, w, &opts)).map_err(|e| BuildError::step(step, e))
}

/// `COPY --link`: the layer is made as on an empty base (the destination is
/// not looked up in the stage's rootfs, so its symlinks are not followed
/// and missing directories are 0755 root, as BuildKit documents), and it
/// is cached under a key without the parent: when the base changes, the
/// same layer is put on the new base (rebased) instead of written again.
fn link_step(stages: &Stages, state: &ImageState, (c, add): (&Copy, bool), srcs: Sources) -> BuildResult<NewLayer> {
    let ignore = stages.dockerignore()?;
    let mut c = c.clone();
    if let Some(spec) = c.chown.clone().filter(|s| numeric_owner(s).is_err()) {
        // Names still come from the stage's /etc/passwd; the layer holds ids.
        let ws = Workspace::mount_view(stages.ctx, state, &format!("link-{}", super::unique()))?;
        let (u, g) = owner(&ws.merged, &spec)?;
        c.chown = Some(format!("{u}:{g}"));
    }
    let plan = stages.plan(&srcs, &c, add, &ignore, None, state)?;
    let workdir = state.get("WorkingDir").and_then(|v| v.as_str()).unwrap_or("/").to_string();
    let k = super::cache::key(
        super::cache::GENERATION,
        &["link", &format!("{c:?}"), &workdir, &crate::layer::hash_sources(&plan)?],
    );
    let ctx = stages.ctx;
    if !ctx.opts.no_cache {
        if let Some(cached) = ctx.cache.get(&k, ctx.store) {
            let diff = cached.diff_ids()?;
            if let ([desc], [diff]) = (cached.layers.as_slice(), diff.as_slice()) {
                ctx.say("COPY --link: the layer is reused on this base");
                return Ok(Some((desc.clone(), diff.clone())));
            }
        }
    }
    let opts = ctx.tar_options();
    let layer = ctx.write_layer(&mut |w| crate::layer::copy_to_tar(&plan, w, &opts))?;
    if let Some((desc, diff)) = &layer {
        let entry = ImageState {
            config: serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [diff.to_string()]}}),
            layers: vec![desc.clone()],
        };
        ctx.cache.put(&k, &entry)?;
    }
    Ok(layer)
}
