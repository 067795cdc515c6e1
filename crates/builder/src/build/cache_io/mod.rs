//! `--cache-to` / `--cache-from`: the build cache outside the store, in
//! BuildKit's format (`format`), in a registry, an OCI layout directory,
//! or inline in the image config (`transport`).
//!
//! Imported records answer a step's cache key when the local cache does
//! not; their layers are not downloaded then, only when a later step (a
//! RUN or COPY that needs the filesystem) or the end of the build needs
//! them — a fully cached build that is pushed moves no layer at all. Each
//! step this build saw is recorded (key, parent key, result) for export.

mod format;
mod transport;

use super::error::{BuildError, BuildResult};
use super::state::ImageState;
use crate::layer::LayerCompression;
use format::Recorded;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use wharf_image::spec::Descriptor;
use wharf_image::{Reference, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// The records of the final image's chain only.
    Min,
    /// Every step of every stage the build ran or found.
    Max,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    Registry(Reference),
    /// An OCI layout directory and the tag of the cache in its index.json.
    Local {
        dir: PathBuf,
        tag: String,
    },
    /// In the image config (`--cache-to` only; read back with type=registry).
    Inline,
}

/// One `--cache-to` or `--cache-from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    pub location: CacheLocation,
    pub mode: CacheMode,
    /// `compression=`: layers of another compression are converted for the cache.
    pub compression: Option<LayerCompression>,
    /// `oci-mediatypes=false`: a Docker schema 2 manifest instead of an OCI one.
    pub oci_mediatypes: bool,
    /// `ignore-error=true`: an export that fails does not fail the build.
    pub ignore_error: bool,
}

fn bad(flag: &str, s: &str, why: &str) -> BuildError {
    BuildError::Invalid(format!("--{flag} {s:?}: {why}"))
}

fn parse_bool(flag: &str, s: &str, v: &str) -> BuildResult<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(flag, s, "takes true or false")),
    }
}

impl CacheSpec {
    /// `--cache-to type=registry,ref=R[,mode=min|max][,compression=…][,oci-mediatypes=…]`,
    /// `type=local,dest=DIR`, `type=inline`.
    pub fn parse_to(s: &str) -> BuildResult<Self> {
        Self::parse(s, "cache-to")
    }

    /// `--cache-from type=registry,ref=R`, `type=local,src=DIR`, or a bare REF.
    pub fn parse_from(s: &str) -> BuildResult<Self> {
        if !s.contains('=') {
            let r = Reference::parse(s).map_err(|e| bad("cache-from", s, &e.to_string()))?;
            return Ok(CacheSpec::new(CacheLocation::Registry(r)));
        }
        Self::parse(s, "cache-from")
    }

    fn new(location: CacheLocation) -> Self {
        CacheSpec { location, mode: CacheMode::Min, compression: None, oci_mediatypes: true, ignore_error: false }
    }

    fn parse(s: &str, flag: &str) -> BuildResult<Self> {
        let mut kv = BTreeMap::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| bad(flag, s, &format!("{part:?} is not KEY=VALUE")))?;
            kv.insert(k.trim(), v.trim());
        }
        let to = flag == "cache-to";
        let location = match kv.remove("type").unwrap_or("registry") {
            "registry" => {
                let r = kv.remove("ref").ok_or_else(|| bad(flag, s, "type=registry needs ref=REPO:TAG"))?;
                CacheLocation::Registry(Reference::parse(r).map_err(|e| bad(flag, s, &e.to_string()))?)
            }
            "local" => {
                let key = if to { "dest" } else { "src" };
                let dir = kv.remove(key).ok_or_else(|| bad(flag, s, &format!("type=local needs {key}=DIR")))?;
                CacheLocation::Local { dir: PathBuf::from(dir), tag: kv.remove("tag").unwrap_or("latest").into() }
            }
            "inline" if to => CacheLocation::Inline,
            "inline" => {
                return Err(bad(
                    flag,
                    s,
                    "an inline cache is read with type=registry,ref=IMAGE (the image carrying it)",
                ))
            }
            t => return Err(bad(flag, s, &format!("unknown type {t:?} (registry, local or inline)"))),
        };
        let mut spec = CacheSpec::new(location);
        for (k, v) in kv {
            match k {
                "mode" if to => {
                    spec.mode = match v {
                        "min" => CacheMode::Min,
                        "max" => CacheMode::Max,
                        _ => return Err(bad(flag, s, "mode= takes min or max")),
                    }
                }
                "compression" if to => {
                    spec.compression = Some(match v {
                        "gzip" => LayerCompression::Gzip,
                        "zstd" => LayerCompression::Zstd,
                        _ => return Err(bad(flag, s, "compression= takes gzip or zstd")),
                    })
                }
                "oci-mediatypes" if to => spec.oci_mediatypes = parse_bool(flag, s, v)?,
                "ignore-error" => spec.ignore_error = parse_bool(flag, s, v)?,
                // BuildKit's options with no effect here: wharf always writes
                // an image manifest (which registries accept) and one level.
                "image-manifest" | "compression-level" | "force-compression" if to => {}
                _ => return Err(bad(flag, s, &format!("unknown option {k:?}"))),
            }
        }
        Ok(spec)
    }
}

/// Where a layer not in the store can be fetched from.
#[derive(Debug, Clone)]
enum BlobSource {
    Registry { host: String, repo: String },
    Local(PathBuf),
}

/// The caches of one build: what was imported, where lazy layers come
/// from, and what the build saw (for export).
#[derive(Default)]
pub(crate) struct CacheIo {
    imported: HashMap<String, ImageState>,
    sources: Mutex<HashMap<String, BlobSource>>,
    lazy: bool,
    recorded: Mutex<BTreeMap<String, Recorded>>,
    finals: Mutex<Vec<String>>,
    /// Layer bytes fetched from caches and base images' registries.
    pub fetched: AtomicU64,
}

impl CacheIo {
    /// Imports every `--cache-from`; one that cannot be read is reported
    /// through `warn` and skipped, as BuildKit does.
    pub(crate) fn import(store: &Store, specs: &[CacheSpec], warn: &dyn Fn(&str)) -> Self {
        let mut io = CacheIo { lazy: !specs.is_empty(), ..Default::default() };
        for s in specs {
            match transport::import(store, &s.location) {
                Ok(got) => {
                    let what = transport::describe(&s.location);
                    if got.foreign > 0 {
                        warn(&format!(
                            "cache from {what}: {} of {} records are not wharf's (BuildKit's LLB keys) and cannot be used",
                            got.foreign,
                            got.foreign + got.entries.len()
                        ));
                    }
                    let src = got.source;
                    let mut sources = io.sources.lock().unwrap_or_else(|e| e.into_inner());
                    for st in got.entries.values() {
                        for l in &st.layers {
                            sources.entry(l.digest().to_string()).or_insert_with(|| src.clone());
                        }
                    }
                    drop(sources);
                    for (k, v) in got.entries {
                        io.imported.entry(k).or_insert(v);
                    }
                }
                Err(e) => warn(&format!(
                    "importing cache from {}: {e} (building without it)",
                    transport::describe(&s.location)
                )),
            }
        }
        io
    }

    /// Whether base images are resolved without their layers (a remote cache is in use).
    pub(crate) fn lazy(&self) -> bool {
        self.lazy
    }

    /// The imported result of step `key`.
    pub(crate) fn lookup(&self, key: &str) -> Option<ImageState> {
        self.imported.get(key).cloned()
    }

    /// Notes that `registry/repo` holds `layers` (a base resolved lazily).
    pub(crate) fn add_source(&self, host: &str, repo: &str, layers: &[Descriptor]) {
        let mut s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        for l in layers {
            s.entry(l.digest().to_string())
                .or_insert_with(|| BlobSource::Registry { host: host.into(), repo: repo.into() });
        }
    }

    /// Whether a registry of `host` is where `l` was seen (a push there can skip or mount it).
    fn on_host(&self, l: &Descriptor, host: &str) -> bool {
        let s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        matches!(s.get(&l.digest().to_string()), Some(BlobSource::Registry { host: h, .. }) if h == host)
    }

    /// Records a step's result for export.
    pub(crate) fn record(&self, key: &str, parent: Option<&str>, state: &ImageState) {
        let mut r = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        r.entry(key.to_string())
            .or_insert_with(|| Recorded { parent: parent.map(str::to_string), state: state.clone() });
    }

    /// Marks `key` as a final image's (the chain mode=min exports).
    pub(crate) fn set_final(&self, key: &str) {
        self.finals.lock().unwrap_or_else(|e| e.into_inner()).push(key.to_string());
    }

    /// The records to export in `mode`.
    fn selected(&self, mode: CacheMode) -> BTreeMap<String, Recorded> {
        let all = self.recorded.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if mode == CacheMode::Max {
            return all;
        }
        let mut out = BTreeMap::new();
        for f in self.finals.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let mut cur = Some(f.clone());
            while let Some(k) = cur.take() {
                if out.contains_key(&k) {
                    break;
                }
                if let Some(r) = all.get(&k) {
                    cur = r.parent.clone();
                    out.insert(k, r.clone());
                }
            }
        }
        out
    }

    /// Fetches the blobs of `layers` the store lacks from where they were
    /// seen; an unknown one is an error naming it.
    pub(crate) fn fetch(&self, store: &Store, layers: &[Descriptor], say: &dyn Fn(&str)) -> BuildResult<()> {
        let missing: Vec<&Descriptor> = layers.iter().filter(|l| !store.blobs().exists(l.digest())).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut by_repo: BTreeMap<(String, String), Vec<Descriptor>> = BTreeMap::new();
        for l in missing {
            match sources.get(&l.digest().to_string()) {
                Some(BlobSource::Registry { host, repo }) => {
                    by_repo.entry((host.clone(), repo.clone())).or_default().push(l.clone())
                }
                Some(BlobSource::Local(dir)) => {
                    let n = transport::copy_local_blob(store, dir, l)?;
                    self.fetched.fetch_add(n, Ordering::Relaxed);
                }
                None => {
                    return Err(BuildError::Invalid(format!(
                        "layer {} is not in the store and no cache or registry is known to hold it",
                        l.digest()
                    )))
                }
            }
        }
        for ((host, repo), descs) in by_repo {
            say(&format!("fetching {} layer(s) from {host}/{repo}", descs.len()));
            let reg = wharf_registry::Registry::new(&host, wharf_registry::RegistryOptions::default())?;
            let n = wharf_registry::block_on(reg.fetch_blobs(store, &repo, &descs))?;
            self.fetched.fetch_add(n, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The inline cache of the final image `state` (key `key`), put in its config.
    pub(crate) fn inline_into(&self, state: &mut ImageState, created_at: &str) {
        let records = self.selected(CacheMode::Min);
        transport::inline_into(state, &records, created_at);
    }

    /// Writes every non-inline `--cache-to`; returns notes for the user.
    pub(crate) fn export(&self, store: &Store, specs: &[CacheSpec], ctx: &ExportCtx) -> BuildResult<Vec<String>> {
        let mut notes = Vec::new();
        for s in specs.iter().filter(|s| s.location != CacheLocation::Inline) {
            let records = self.selected(s.mode);
            let res = match s.compression {
                Some(c) => self.recompressed(store, &records, c, ctx.say),
                None => Ok(records),
            }
            .and_then(|records| transport::export(store, self, s, &records, ctx));
            match res {
                Ok(n) => notes.push(n),
                Err(e) if s.ignore_error => notes.push(format!("warning: exporting cache: {e}")),
                Err(e) => return Err(e),
            }
        }
        Ok(notes)
    }
}

impl CacheIo {
    /// `compression=`: the records with every layer of another compression
    /// written again in `c` (same diffID, a new blob), as BuildKit converts.
    fn recompressed(
        &self,
        store: &Store,
        records: &BTreeMap<String, Recorded>,
        c: LayerCompression,
        say: &dyn Fn(&str),
    ) -> BuildResult<BTreeMap<String, Recorded>> {
        let want = match c {
            LayerCompression::Gzip => wharf_image::compression::Compression::Gzip,
            LayerCompression::Zstd => wharf_image::compression::Compression::Zstd,
        };
        let mut done: HashMap<String, Descriptor> = HashMap::new();
        let mut out = records.clone();
        for r in out.values_mut() {
            for l in r.state.layers.iter_mut() {
                let key = l.digest().to_string();
                if let Some(d) = done.get(&key) {
                    *l = d.clone();
                    continue;
                }
                if wharf_image::compression::Compression::from_media_type(l.media_type().as_ref())? == Some(want) {
                    continue;
                }
                self.fetch(store, std::slice::from_ref(l), say)?;
                let blob = store.blobs().open(l.digest())?;
                let (_, mut tar) = wharf_image::compression::decompress(blob)?;
                let written = crate::layer::write_layer(store, c, &mut |w| {
                    std::io::copy(&mut tar, w).map(|_| ()).map_err(crate::layer::LayerError::Write)
                })?;
                done.insert(key, written.descriptor.clone());
                *l = written.descriptor;
            }
        }
        Ok(out)
    }
}

/// What an export needs to know of the build.
pub(crate) struct ExportCtx<'a> {
    pub created_at: String,
    pub say: &'a dyn Fn(&str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildx_syntax() {
        let s = CacheSpec::parse_to("type=registry,ref=localhost:5000/c:b,mode=max,oci-mediatypes=false").unwrap();
        assert_eq!(s.mode, CacheMode::Max);
        assert!(!s.oci_mediatypes);
        let s = CacheSpec::parse_from("localhost:5000/c:b").unwrap();
        assert!(matches!(s.location, CacheLocation::Registry(_)));
        let s = CacheSpec::parse_from("type=local,src=/tmp/c").unwrap();
        assert_eq!(s.location, CacheLocation::Local { dir: "/tmp/c".into(), tag: "latest".into() });
        assert_eq!(CacheSpec::parse_to("type=inline").unwrap().location, CacheLocation::Inline);
        for bad in ["type=registry", "type=local,src=/x", "type=s3,ref=a", "type=registry,ref=a,mode=all", "x"] {
            assert!(CacheSpec::parse_to(bad).is_err(), "{bad}");
        }
        assert!(CacheSpec::parse_from("type=inline").is_err());
    }
}
