//! Running a build: the stages the target needs, in order; each step
//! looked up in the build cache by its key, else executed (RUN in a
//! container, COPY/ADD as a layer tar, the rest as config changes); the
//! result committed to the store and tagged. The work dir under
//! `<run-root>/build/` is owner-locked; `leftover` removes those of killed
//! builds.

mod annotations;
mod cache;
mod cache_io;
mod contexts;
mod copy_step;
pub mod emulation;
mod error;
mod leftover;
mod output;
pub mod progress;
mod run_step;
mod scope;
mod ssh;
mod stage;
pub(crate) mod state;

pub use annotations::{parse_annotations, IndexAnnotations};
pub use cache::BuildCache;
pub use cache_io::{CacheLocation, CacheMode, CacheSpec};
pub use contexts::NamedContext;
pub use error::{BuildError, BuildResult};
pub use leftover::{find_leftovers, remove_leftovers};
pub use output::Output;
pub use ssh::SshSpec;

use crate::layer::{LayerCompression, TarOptions};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use wharf_image::spec::Descriptor;
use wharf_image::{Digest, Platform, Reference, Store};

/// What `wharf build` asks for.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// Default: `<context>/Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<Reference>,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    /// Pull base images even when the store has them.
    pub pull: bool,
    /// Runtime state and work dirs (`--run-root`).
    pub run_root: PathBuf,
    pub compression: LayerCompression,
    /// SOURCE_DATE_EPOCH: timestamps of the image and its files.
    pub epoch: Option<i64>,
    /// `--secret id=…,src=…`.
    pub secrets: HashMap<String, PathBuf>,
    /// `--ssh ID=SOCKET|KEY…`: agents for `RUN --mount=type=ssh`.
    pub ssh: Vec<SshSpec>,
    /// Where progress events go (None: quiet, and RUN output is dropped).
    pub progress: Option<progress::Progress>,
    // Multi-platform builds (issue 14 §2).
    /// `--platform a,b,…`: each is built (at the same time) and the result
    /// is an image index; empty: the host's platform, a plain image.
    pub platforms: Vec<Platform>,
    // -- CI and compatibility options (issue 14 §3) --
    /// `--add-host NAME:IP`: lines added to RUN's /etc/hosts.
    pub add_hosts: Vec<(String, std::net::IpAddr)>,
    /// `--ulimit`: RUN's rlimits as (RLIMIT_* name, soft, hard).
    pub ulimits: Vec<(String, u64, u64)>,
    /// `--shm-size`: the size of RUN's /dev/shm, in bytes.
    pub shm_size: Option<u64>,
    /// `--no-cache-filter`: the stages (names or indexes) built without the cache.
    pub no_cache_filter: Vec<String>,
    /// `--annotation`: annotations of the image manifest.
    pub annotations: BTreeMap<String, String>,
    /// `--annotation index:…` and the other types of a multi-platform build.
    pub index_annotations: IndexAnnotations,
    /// `--build-context NAME=…`: used before stages and images of that name.
    pub named_contexts: BTreeMap<String, NamedContext>,
    // -- Build cache outside the store (issue 14 §1) --
    /// `--cache-from`: caches whose records answer steps the local cache does not.
    pub cache_from: Vec<CacheSpec>,
    /// `--cache-to`: where this build's records are written (inline: in the image).
    pub cache_to: Vec<CacheSpec>,
    /// Leave layers only a registry has there (the image is pushed next,
    /// and a push skips or mounts them): no layer is downloaded for nothing.
    pub lazy_layers: bool,
    /// `--provenance`, `--sbom`: attestations attached in an index, as BuildKit.
    pub attest: crate::attest::AttestOptions,
}

/// BuildKit's `--add-host` syntax: `NAME:IP` or `NAME=IP` (IPv6 may be in brackets).
pub fn parse_add_host(s: &str) -> BuildResult<(String, std::net::IpAddr)> {
    let (name, ip) = s.split_once('=').or_else(|| s.split_once(':')).unwrap_or((s, ""));
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    match ip.parse() {
        Ok(ip) if !name.is_empty() && !name.contains(char::is_whitespace) => Ok((name.to_string(), ip)),
        _ => Err(BuildError::Invalid(format!("invalid --add-host {s:?}: use NAME:IP"))),
    }
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image's manifest, or the index of a multi-platform build.
    pub manifest: Descriptor,
    /// The image ID (config digest); an index's own digest for a multi-platform build.
    pub id: Digest,
    /// Notes of the cache import/export (warnings and what was written).
    pub cache_notes: Vec<String>,
    /// Layer bytes fetched lazily from caches and base images' registries.
    pub fetched_bytes: u64,
    /// Layers of the image not in the store (left in a registry: `lazy_layers`).
    pub absent_layers: usize,
}

/// A layer a step wrote.
pub(crate) type NewLayer = Option<(Descriptor, Digest)>;

/// What every step may need.
pub(crate) struct Ctx<'a> {
    pub store: &'a Store,
    pub opts: &'a BuildOptions,
    pub context: PathBuf,
    pub run_root: PathBuf,
    pub work_dir: PathBuf,
    pub secrets: &'a HashMap<String, PathBuf>,
    pub cache: BuildCache,
    pub lexer: crate::Lexer,
    /// The platform being built (TARGETPLATFORM).
    pub platform: Platform,
    /// `linux/arm64 ` in front of stage names when several are built.
    pub label: String,
    /// Steps this build made, by cache key, shared by the platforms.
    pub steps: &'a SharedSteps,
    /// Imported caches, lazy layers, and the records to export.
    pub cache_io: &'a cache_io::CacheIo,
    /// The `--ssh` agents.
    pub ssh: &'a ssh::Agents,
    /// What the provenance records of this platform's build.
    pub attest: &'a crate::attest::Recorder,
}

/// The steps a build has run, by cache key: a step that two platforms share
/// (the same key: before `ARG TARGETARCH` in a `--platform=$BUILDPLATFORM`
/// stage) runs once, the other platform waiting for it, even with --no-cache.
#[derive(Default)]
pub(crate) struct SharedSteps(
    std::sync::Mutex<HashMap<String, std::sync::Arc<std::sync::Mutex<Option<state::ImageState>>>>>,
);

impl SharedSteps {
    /// The slot of key `k`: lock it while running the step, fill it after.
    pub(crate) fn slot(&self, k: &str) -> std::sync::Arc<std::sync::Mutex<Option<state::ImageState>>> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(k.to_string()).or_default().clone()
    }
}

impl Ctx<'_> {
    pub(crate) fn say(&self, line: &str) {
        self.emit(&progress::Event::Note(line));
    }

    pub(crate) fn emit(&self, e: &progress::Event) {
        self.attest.observe(e);
        if let Some(p) = &self.opts.progress {
            p.emit(e);
        }
    }

    pub(crate) fn tar_options(&self) -> TarOptions {
        TarOptions { epoch: self.opts.epoch }
    }

    /// Snapshot dirs of `state`'s layers, top first, unpacked if needed.
    pub(crate) fn lowers(&self, state: &state::ImageState) -> BuildResult<Vec<PathBuf>> {
        let ids = state.diff_ids()?;
        // Layers an imported cache or a lazily resolved base named: fetched now.
        let lazy: Vec<Descriptor> = ids
            .iter()
            .zip(&state.layers)
            .filter(|(id, l)| !self.store.snapshots().exists(id) && !self.store.blobs().exists(l.digest()))
            .map(|(_, l)| l.clone())
            .collect();
        self.cache_io.fetch(self.store, &lazy, &|m| self.say(m))?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, l) in ids.iter().zip(&state.layers) {
            if !self.store.snapshots().exists(id) {
                self.store.snapshots().ensure(id, self.store.blobs().open(l.digest())?)?;
            }
            out.push(self.store.snapshots().path(id));
        }
        out.reverse();
        Ok(out)
    }

    /// Compresses and stores a layer the closure writes as a tar.
    pub(crate) fn write_layer(
        &self,
        produce: &mut dyn FnMut(&mut dyn std::io::Write) -> crate::layer::Result<()>,
    ) -> BuildResult<NewLayer> {
        let l = crate::layer::write_layer(self.store, self.opts.compression, produce)?;
        Ok(Some((l.descriptor, l.diff_id)))
    }

    /// Compresses and stores a RUN's upper dir as a layer; the dir becomes its snapshot.
    pub(crate) fn write_upper_layer(&self, upper: &Path) -> BuildResult<NewLayer> {
        let l = crate::layer::write_upper_layer(self.store, self.opts.compression, upper, &self.tar_options())?;
        Ok(Some((l.descriptor, l.diff_id)))
    }

    /// A timestamp for history and `created`: SOURCE_DATE_EPOCH or now.
    pub(crate) fn now(&self) -> String {
        let t = match self.opts.epoch {
            Some(e) => chrono::DateTime::from_timestamp(e, 0).unwrap_or_default(),
            None => chrono::Utc::now(),
        };
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// A name no other build picks at the same time.
pub(crate) fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{:x}-{}", std::process::id(), t, N.fetch_add(1, Ordering::Relaxed))
}

/// `rel` inside `root`, refusing a path that leaves it (`..` or a symlink).
pub(crate) fn inside(root: &Path, rel: &str) -> BuildResult<PathBuf> {
    let root = root.canonicalize().map_err(|e| BuildError::io(format!("context {}", root.display()), e))?;
    let p = root.join(rel.trim_start_matches('/'));
    let real = p.canonicalize().map_err(|e| BuildError::io(rel.to_string(), e))?;
    if !real.starts_with(&root) {
        return Err(BuildError::Invalid(format!("{rel} is outside the build context")));
    }
    Ok(real)
}

/// Builds the image `opts` describe into `store`.
pub fn build(store: &Store, opts: &BuildOptions) -> BuildResult<Built> {
    let path = opts.dockerfile.clone().unwrap_or_else(|| opts.context.join("Dockerfile"));
    let text = std::fs::read_to_string(&path).map_err(|e| BuildError::io(format!("read {}", path.display()), e))?;
    let df = crate::parse_dockerfile(&text)?;
    for w in &df.warnings {
        if let Some(p) = &opts.progress {
            p.emit(&progress::Event::Note(&format!("warning: dockerfile {}: {w}", w.lines)));
        }
    }
    if let Err(e) = remove_leftovers(store.root(), &opts.run_root) {
        tracing::warn!("removing what killed builds left: {e}");
    }
    // Held until the build ends: a build that finds it free knows we died.
    let owned = wharf_image::OwnedDir::create(&leftover::build_dirs(store.root()), &unique())?;
    let work_dir = owned.path().to_path_buf();
    let _content = store.content_lock()?;
    let notes = std::sync::Mutex::new(Vec::new());
    let warn = |m: &str| {
        notes.lock().unwrap_or_else(|e| e.into_inner()).push(format!("warning: {m}"));
    };
    let io = cache_io::CacheIo::import(store, &opts.cache_from, &warn);
    let attached = crate::attest::Attached::new();
    // The agents (and any ssh-agent run for key files) last as long as the build.
    let res = ssh::Agents::start(&opts.ssh, &work_dir).and_then(|agents| {
        let m = build_platforms(store, opts, &df, (&work_dir, &agents), (&io, &attached))?;
        drop(agents);
        finish_cache(store, opts, &io, &m)?;
        attached.wrap(store, m)
    });
    if let Err(e) = owned.remove() {
        tracing::warn!("removing {}: {e}", work_dir.display());
    }
    let manifest = res?;
    let mut cache_notes = notes.into_inner().unwrap_or_else(|e| e.into_inner());
    cache_notes.extend(export_cache(store, opts, &io)?);
    for t in &opts.tags {
        store.set_tag(t, &manifest)?;
    }
    if opts.tags.is_empty() {
        store.add_untagged(&manifest)?;
    }
    let id =
        if opts.platforms.len() > 1 { manifest.digest().clone() } else { store.load_image(&manifest)?.config_digest };
    let fetched_bytes = io.fetched.load(std::sync::atomic::Ordering::Relaxed);
    let absent_layers = if opts.lazy_layers && opts.platforms.len() <= 1 {
        store.load_image(&manifest)?.manifest.layers().iter().filter(|l| !store.blobs().exists(l.digest())).count()
    } else {
        0
    };
    Ok(Built { manifest, id, cache_notes, fetched_bytes, absent_layers })
}

/// Unless the image is pushed next (`lazy_layers`), its layers that only
/// a registry or cache has are fetched: the store then holds the whole image.
fn finish_cache(store: &Store, opts: &BuildOptions, io: &cache_io::CacheIo, m: &Descriptor) -> BuildResult<()> {
    if opts.lazy_layers || opts.cache_from.is_empty() {
        return Ok(());
    }
    let img = store.load_image(m)?;
    let say = |line: &str| {
        if let Some(p) = &opts.progress {
            p.emit(&progress::Event::Note(line));
        }
    };
    io.fetch(store, img.manifest.layers(), &say)
}

/// Writes the `--cache-to` caches (not inline: that is in the image).
fn export_cache(store: &Store, opts: &BuildOptions, io: &cache_io::CacheIo) -> BuildResult<Vec<String>> {
    if opts.cache_to.is_empty() {
        return Ok(Vec::new());
    }
    let say = |line: &str| {
        if let Some(p) = &opts.progress {
            p.emit(&progress::Event::Note(line));
        }
    };
    let ctx = cache_io::ExportCtx { created_at: created_at(opts.epoch), say: &say };
    io.export(store, &opts.cache_to, &ctx)
}

/// A timestamp for the cache's `createdAt`: SOURCE_DATE_EPOCH or now.
fn created_at(epoch: Option<i64>) -> String {
    let t = match epoch {
        Some(e) => chrono::DateTime::from_timestamp(e, 0).unwrap_or_default(),
        None => chrono::Utc::now(),
    };
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Each platform's image (in a thread of its own when there are several),
/// committed; with several, the index over them.
fn build_platforms(
    store: &Store,
    opts: &BuildOptions,
    df: &crate::Dockerfile,
    (work_dir, agents): (&Path, &ssh::Agents),
    (io, attached): (&cache_io::CacheIo, &crate::attest::Attached),
) -> BuildResult<Descriptor> {
    let platforms = if opts.platforms.is_empty() { vec![Platform::host()] } else { opts.platforms.clone() };
    let multi = platforms.len() > 1;
    let steps = SharedSteps::default();
    let one = |p: &Platform| -> BuildResult<Descriptor> {
        let rec = crate::attest::Recorder::new(&opts.attest);
        let ctx = Ctx {
            store,
            opts,
            context: opts.context.clone(),
            run_root: opts.run_root.clone(),
            work_dir: work_dir.to_path_buf(),
            secrets: &opts.secrets,
            cache: BuildCache::new(store.root()),
            lexer: df.lexer(),
            platform: p.clone(),
            label: if multi { format!("{p} ") } else { String::new() },
            steps: &steps,
            cache_io: io,
            ssh: agents,
            attest: &rec,
        };
        let (mut state, key) = stage::build_target(&ctx, df)?;
        io.set_final(&key);
        if opts.cache_to.iter().any(|c| c.location == CacheLocation::Inline) {
            io.inline_into(&mut state, &ctx.now());
        }
        let d = state.commit(store, &opts.index_annotations.manifest_of(&opts.annotations, p))?;
        attached.attach(&ctx, &rec, &state, &d)?;
        Ok(d)
    };
    if !multi {
        return one(&platforms[0]);
    }
    let results: Vec<BuildResult<Descriptor>> = std::thread::scope(|sc| {
        let handles: Vec<_> = platforms.iter().map(|p| sc.spawn(move || one(p))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(BuildError::Invalid("a platform's thread panicked".into()))))
            .collect()
    });
    let mut entries = Vec::new();
    for (p, r) in platforms.iter().zip(results) {
        let mut e = store.index_entry(&r?)?;
        // As BuildKit: the entry says the platform asked for.
        e["platform"] = p.to_json();
        let ann = opts.index_annotations.descriptor_of(p);
        if !ann.is_empty() {
            e["annotations"] = serde_json::json!(ann);
        }
        entries.push(e);
    }
    let mut index = store.put_index(&entries, &opts.index_annotations.index)?;
    if !opts.index_annotations.index_descriptor.is_empty() {
        index.set_annotations(Some(opts.index_annotations.index_descriptor.clone().into_iter().collect()));
    }
    Ok(index)
}

impl Ctx<'_> {
    /// An image for the platform being built (COPY --from, RUN --mount from=).
    pub(crate) fn image(&self, name: &str) -> BuildResult<wharf_image::Image> {
        self.image_for(name, &self.platform)
    }

    /// A base image for `platform`: from the store (the platform's entry of
    /// an index, or an image of that platform), else (or with --pull) from
    /// its registry.
    pub(crate) fn image_for(&self, name: &str, platform: &Platform) -> BuildResult<wharf_image::Image> {
        let img = self.resolve_image(name, platform)?;
        self.attest.material(name, platform, &img);
        Ok(img)
    }

    fn resolve_image(&self, name: &str, platform: &Platform) -> BuildResult<wharf_image::Image> {
        let mut stored = None;
        if !self.opts.pull {
            match self.store.resolve_for(name, platform) {
                Ok(i) => return Ok(i),
                Err(e) if e.kind() == wharf_image::ErrorKind::NotFound => stored = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        let r = Reference::parse(name)?;
        if self.cache_io.lazy() && stored.is_some() {
            // With a remote cache, a base's layers are fetched only if a step needs them.
            let reg = wharf_registry::Registry::new(r.domain(), wharf_registry::RegistryOptions::default())?;
            let desc = wharf_registry::block_on(reg.pull_metadata(self.store, &r, platform))?;
            let img = self.store.load_image_for(&desc, platform)?;
            self.cache_io.add_source(reg.host(), r.path(), img.manifest.layers());
            return Ok(img);
        }
        self.say(&format!("pulling {r} ({platform})"));
        // A platform build keeps the index under the name, so that the
        // platforms pulled one by one (and the host's image) share it.
        let popts = wharf_registry::PullOptions {
            platform: Some(platform.to_string()),
            keep_index: !self.opts.platforms.is_empty() || !platform.is_host(),
            ..Default::default()
        };
        let pulled = wharf_registry::Registry::new(r.domain(), wharf_registry::RegistryOptions::default())
            .and_then(|reg| wharf_registry::block_on(reg.pull(self.store, &r, &popts)));
        match (pulled, stored) {
            (Ok(_), _) => Ok(self.store.resolve_for(name, platform)?),
            // The name is here, for other platforms only: say that first.
            (Err(e), Some(here)) if self.store.entry(name).is_ok() => Err(BuildError::Invalid(format!(
                "{name} in the store has no {platform} image ({here}); pulling it: {e}"
            ))),
            (Err(e), _) => Err(e.into()),
        }
    }
}
