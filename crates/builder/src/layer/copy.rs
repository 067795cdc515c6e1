//! COPY and ADD as a layer tar, with Docker's rules:
//!
//! - a source directory copies its contents, not itself;
//! - with several sources, a glob matching several files, a directory
//!   source, an archive to unpack, or a destination ending in '/' (or '.'),
//!   the destination is a directory; a single file to a destination without
//!   '/' becomes that file, unless it exists as a directory in the rootfs;
//!   several literal sources need a destination ending in '/' (Docker's
//!   error), unless it already is a directory;
//! - a source never leaves its root: a `..` climbing above it is an error,
//!   symlinks on the way resolve inside it (RESOLVE_IN_ROOT), and symlinks
//!   met while copying a directory are copied as symlinks;
//! - context files are owned by 0:0 unless `--chown`, other roots keep their
//!   owners; `--chmod` sets files and directories (not symlinks);
//! - missing destination directories are created 0755, owned as `--chown`
//!   says (Docker's `MkdirAllAndChownNew`), else root; existing ones keep
//!   their metadata; the destination, and directories copied onto rootfs
//!   symlinks, are resolved through those symlinks (inside the rootfs), so
//!   a symlinked `/bin` stays a symlink.

use super::archive;
use super::entry::{Content, Kind, Meta, TarWriter};
use super::glob;
use super::resolve::{clean_absolute, clean_relative, join, split, Comps, Root};
use super::walk::{sorted_children, walk};
use super::{LayerError, Result, TarOptions};
use crate::DockerIgnore;
use std::collections::BTreeMap;
use std::fs::Metadata;
use std::io::{Read, Write};
use std::path::PathBuf;

/// One COPY/ADD source: a path or glob relative to `root` (the build
/// context, or another stage's or image's rootfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub root: PathBuf,
    pub path: String,
}

/// Everything one COPY/ADD needs to write its layer.
#[derive(Debug, Clone, Default)]
pub struct CopyPlan<'a> {
    pub sources: Vec<CopySource>,
    /// As written in the Dockerfile; may be relative to `workdir`.
    pub dest: String,
    /// Absolute; the base of a relative `dest`.
    pub workdir: String,
    pub chown: Option<(u32, u32)>,
    pub chmod: Option<u32>,
    /// Applies only to sources whose root is `context_root`.
    pub ignore: Option<&'a DockerIgnore>,
    pub context_root: Option<PathBuf>,
    /// ADD: a local tar (plain, gzip, zstd, xz, bzip2) is unpacked.
    pub extract_archives: bool,
    /// The stage's current rootfs (read only): which destinations exist.
    pub dest_rootfs: Option<PathBuf>,
    /// `COPY --parents`: each source keeps its parent directories (those
    /// after a `/./` in the source, when it has one) under the destination.
    pub parents: bool,
}

/// Where a planned entry's content comes from.
pub(crate) enum Origin {
    None,
    Path(PathBuf),
    /// An archive left packed (cache keys hash its bytes).
    Archive(PathBuf),
}

pub(crate) struct Planned {
    pub meta: Meta,
    pub origin: Origin,
}

/// The entries of a COPY layer, in tar order (depth first, siblings sorted).
pub(crate) struct Layout {
    pub entries: BTreeMap<Comps, Planned>,
    /// Unpacked archives, removed on drop.
    _temps: Vec<tempfile::TempDir>,
}

/// A source file or directory after glob expansion and in-root resolution.
struct Match<'p> {
    root: Root<'p>,
    from_context: bool,
    /// The name as matched (before following a symlink): the copy's name.
    name: Vec<u8>,
    comps: Comps,
    md: Metadata,
    archive: Option<Box<dyn Read>>,
    packed_archive: bool,
}

struct Dest {
    comps: Comps,
    wants_dir: bool,
    exists_dir: bool,
}

/// Writes the layer of a COPY/ADD: the sources laid out at the destination.
pub fn copy_to_tar(plan: &CopyPlan, out: &mut dyn Write, opts: &TarOptions) -> Result<()> {
    let layout = plan_layout(plan, true, opts.epoch.unwrap_or(0))?;
    let mut tar = TarWriter::new(out, opts);
    for (key, p) in &layout.entries {
        let content = match &p.origin {
            Origin::Path(path) => Content::Path(path),
            Origin::None | Origin::Archive(_) => Content::None,
        };
        tar.entry(&join(key), &p.meta, content)?;
    }
    tar.finish()
}

/// Lays out every entry the COPY produces. With `extract` false, archives
/// stay packed as single entries (enough for a cache key).
pub(crate) fn plan_layout(plan: &CopyPlan, extract: bool, created_mtime: i64) -> Result<Layout> {
    if plan.sources.is_empty() {
        return Err(LayerError::bad_source("", "no source files were specified"));
    }
    let dest = resolve_dest(plan)?;
    let mut matches = Vec::new();
    let mut skips = Vec::new();
    for src in &plan.sources {
        let found = expand(plan, src, extract)?;
        skips.extend(std::iter::repeat_n(pivot(&src.path), found.len()));
        matches.extend(found);
    }
    if plan.sources.len() > 1 && !dest.wants_dir && !dest.exists_dir {
        return Err(LayerError::Dest {
            dest: plan.dest.clone(),
            reason: "when copying more than one source, the destination must be a directory and end with a '/'".into(),
        });
    }
    let any_dir = matches.iter().any(|m| m.md.is_dir() || m.archive.is_some() || m.packed_archive);
    let dest_is_dir = dest.wants_dir || dest.exists_dir || matches.len() > 1 || any_dir || plan.parents;
    let mut lay = Layout { entries: BTreeMap::new(), _temps: Vec::new() };
    let created = |plan: &CopyPlan| {
        let (uid, gid) = plan.chown.unwrap_or((0, 0));
        Meta::dir(0o755, uid, gid, created_mtime)
    };
    let parents = if dest_is_dir { dest.comps.len() } else { dest.comps.len().saturating_sub(1) };
    for i in 1..=parents {
        let key = dest.comps[..i].to_vec();
        let meta = match existing_dir(plan, &key)? {
            Some(m) => m,
            // A directory source creates the destination in its own image (fsutil's copyDirectory).
            None if i == dest.comps.len() && matches[0].md.is_dir() => source_meta(plan, &matches[0])?,
            None => created(plan),
        };
        lay.entries.insert(key, Planned { meta, origin: Origin::None });
    }
    for (mut m, skip) in matches.into_iter().zip(skips) {
        if plan.parents {
            copy_with_parents(plan, &mut lay, &m, skip, &dest.comps)?;
            continue;
        }
        let target = if dest_is_dir { dest_child(&dest.comps, &m) } else { dest.comps.clone() };
        if let Some(r) = m.archive.take() {
            unpack_archive(plan, &mut lay, &m, r, &dest.comps)?;
        } else if m.md.is_dir() {
            copy_dir(plan, &mut lay, &m, &dest.comps)?;
        } else {
            let mut meta = source_meta(plan, &m)?;
            let path = m.root.path(&m.comps);
            let origin = if m.packed_archive { Origin::Archive(path) } else { Origin::Path(path) };
            if m.packed_archive {
                meta.kind = Kind::File;
            }
            lay.insert(target, Planned { meta, origin });
        }
    }
    if let Some(rootfs) = &plan.dest_rootfs {
        lay.entries = follow_rootfs_links(std::mem::take(&mut lay.entries), Root { dir: rootfs, ignore: None })?;
    }
    Ok(lay)
}

/// Moves copied directories that land on a symlink to a directory in the
/// rootfs (`/bin` → `usr/bin` on merged-/usr systems) to where it points.
/// Written as is, the directory would replace the symlink and hide
/// everything the target held.
fn follow_rootfs_links(entries: BTreeMap<Comps, Planned>, root: Root<'_>) -> Result<BTreeMap<Comps, Planned>> {
    let mut redirects: Vec<(Comps, Comps)> = Vec::new();
    let mut out = BTreeMap::new();
    for (key, p) in entries {
        let mapped = match redirects.iter().filter(|(from, _)| key.starts_with(from)).max_by_key(|(from, _)| from.len())
        {
            Some((from, to)) => to.iter().chain(&key[from.len()..]).cloned().collect(),
            None => key.clone(),
        };
        if p.meta.kind == Kind::Dir {
            let md = root.lstat(&mapped).map_err(LayerError::io("stat", root.path(&mapped)))?;
            if md.is_some_and(|m| m.file_type().is_symlink()) {
                let refs: Vec<&[u8]> = mapped.iter().map(Vec::as_slice).collect();
                let r = root.resolve(Vec::new(), &refs, true).map_err(|reason| LayerError::Dest {
                    dest: String::from_utf8_lossy(&join(&mapped)).into_owned(),
                    reason,
                })?;
                if let Some(m) = r.md.as_ref().filter(|m| m.is_dir()) {
                    let existing = Meta::from_metadata(&root.path(&r.comps), m)?;
                    if let Some(meta) = existing.filter(|_| !r.comps.is_empty()) {
                        out.entry(r.comps.clone()).or_insert(Planned { meta, origin: Origin::None });
                    }
                    redirects.push((key, r.comps));
                    continue;
                }
            }
        }
        out.insert(mapped, p);
    }
    Ok(out)
}

impl Layout {
    /// Adds an entry; a non-directory replaces whatever subtree was at its place.
    fn insert(&mut self, key: Comps, p: Planned) {
        if p.meta.kind != Kind::Dir {
            let doomed: Vec<Comps> = self
                .entries
                .range(key.clone()..)
                .take_while(|(k, _)| k.starts_with(&key))
                .filter(|(k, _)| k.len() > key.len())
                .map(|(k, _)| k.clone())
                .collect();
            for k in doomed {
                self.entries.remove(&k);
            }
        }
        self.entries.insert(key, p);
    }
}

/// How many leading directories of a `--parents` source are dropped: those
/// before a `.` component (`src/./pkg/a.go` keeps `pkg/`), else none.
fn pivot(path: &str) -> usize {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).skip_while(|c| *c == ".").collect();
    match comps.iter().position(|c| *c == ".") {
        Some(p) => comps[..p].iter().filter(|c| **c != ".").count(),
        None => 0,
    }
}

/// `COPY --parents`: the match at dest/<its parents after the pivot>/<name>,
/// the parent directories with the metadata they have in the source.
fn copy_with_parents(plan: &CopyPlan, lay: &mut Layout, m: &Match, skip: usize, dest: &Comps) -> Result<()> {
    let parents = &m.comps[..m.comps.len().saturating_sub(1)];
    let mut target = dest.clone();
    for i in skip..parents.len() {
        target.push(parents[i].clone());
        let path = m.root.path(&parents[..=i]);
        let md = std::fs::symlink_metadata(&path).map_err(LayerError::io("stat", &path))?;
        if let Some(meta) = Meta::from_metadata(&path, &md)? {
            let meta = adjust(plan, meta, m.from_context);
            lay.entries.entry(target.clone()).or_insert(Planned { meta, origin: Origin::None });
        }
    }
    let target = dest_child(&target, m);
    let meta = source_meta(plan, m)?;
    if m.md.is_dir() {
        lay.entries.insert(target.clone(), Planned { meta, origin: Origin::None });
        return copy_dir(plan, lay, m, &target);
    }
    let path = m.root.path(&m.comps);
    lay.insert(target, Planned { meta, origin: Origin::Path(path) });
    Ok(())
}

fn dest_child(dest: &Comps, m: &Match) -> Comps {
    let mut t = dest.clone();
    if !m.name.is_empty() {
        t.push(m.name.clone());
    }
    t
}

/// The metadata a copied file gets: ownership and mode rules applied.
fn source_meta(plan: &CopyPlan, m: &Match) -> Result<Meta> {
    let path = m.root.path(&m.comps);
    let meta = Meta::from_metadata(&path, &m.md)?.ok_or_else(|| LayerError::Unsupported {
        path: path.clone(),
        reason: "a socket cannot be copied into a layer".into(),
    })?;
    Ok(adjust(plan, meta, m.from_context))
}

fn adjust(plan: &CopyPlan, mut meta: Meta, from_context: bool) -> Meta {
    if let Some((uid, gid)) = plan.chown {
        (meta.uid, meta.gid) = (uid, gid);
    } else if from_context {
        (meta.uid, meta.gid) = (0, 0);
    }
    if let Some(mode) = plan.chmod {
        if matches!(meta.kind, Kind::File | Kind::Dir) {
            meta.mode = mode & 0o7777;
        }
    }
    meta
}

/// The metadata of `comps` in the rootfs when it is a directory there.
fn existing_dir(plan: &CopyPlan, comps: &Comps) -> Result<Option<Meta>> {
    let Some(rootfs) = &plan.dest_rootfs else { return Ok(None) };
    let path = Root { dir: rootfs, ignore: None }.path(comps);
    match std::fs::symlink_metadata(&path) {
        Ok(md) if md.is_dir() => Meta::from_metadata(&path, &md),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LayerError::io("stat", path)(e)),
    }
}

fn copy_dir(plan: &CopyPlan, lay: &mut Layout, m: &Match, dest: &Comps) -> Result<()> {
    let base = join(&m.comps);
    walk(&m.root.path(&m.comps), b"", None, &mut |path, rel, meta| {
        let ctx_rel = super::walk::join_rel(&base, rel);
        if !m.root.visible(&ctx_rel, meta.kind == Kind::Dir) {
            return Ok(false);
        }
        let mut key = dest.clone();
        key.extend(split(rel).into_iter().map(<[u8]>::to_vec));
        lay.insert(
            key,
            Planned { meta: adjust(plan, meta.clone(), m.from_context), origin: Origin::Path(path.into()) },
        );
        Ok(true)
    })
}

fn unpack_archive(plan: &CopyPlan, lay: &mut Layout, m: &Match, r: Box<dyn Read>, dest: &Comps) -> Result<()> {
    let what = m.root.path(&m.comps);
    let tmp = tempfile::Builder::new()
        .prefix("wharf-add-")
        .tempdir()
        .map_err(LayerError::io("create temp dir for", &what))?;
    archive::unpack_into(r, tmp.path(), &what)?;
    walk(tmp.path(), b"", None, &mut |path, rel, meta| {
        let mut key = dest.clone();
        key.extend(split(rel).into_iter().map(<[u8]>::to_vec));
        lay.insert(key, Planned { meta: adjust(plan, meta.clone(), false), origin: Origin::Path(path.into()) });
        Ok(true)
    })?;
    lay._temps.push(tmp);
    Ok(())
}

fn resolve_dest(plan: &CopyPlan) -> Result<Dest> {
    let d = plan.dest.as_str();
    let bad = |reason: String| LayerError::Dest { dest: d.to_string(), reason };
    if d.is_empty() {
        return Err(bad("empty destination".into()));
    }
    let last = d.rsplit('/').next().unwrap_or("");
    let wants_dir = matches!(last, "" | "." | "..");
    let full = if d.starts_with('/') { d.to_string() } else { format!("{}/{d}", plan.workdir) };
    let comps = clean_absolute(full.as_bytes());
    let Some(rootfs) = &plan.dest_rootfs else {
        return Ok(Dest { comps, wants_dir, exists_dir: false });
    };
    let refs: Vec<&[u8]> = comps.iter().map(Vec::as_slice).collect();
    let r = Root { dir: rootfs, ignore: None }.resolve(Vec::new(), &refs, true).map_err(bad)?;
    Ok(Dest { exists_dir: r.md.as_ref().is_some_and(Metadata::is_dir), comps: r.comps, wants_dir })
}

/// Expands one source pattern, level by level, inside its root.
fn expand<'p>(plan: &'p CopyPlan, src: &'p CopySource, extract: bool) -> Result<Vec<Match<'p>>> {
    let pattern = src.path.as_str();
    let from_context = plan.context_root.as_deref() == Some(src.root.as_path());
    let root = Root { dir: &src.root, ignore: if from_context { plan.ignore } else { None } };
    let comps = clean_relative(pattern.as_bytes()).ok_or_else(|| {
        LayerError::bad_source(pattern, format!("leaves its root {} through '..'", src.root.display()))
    })?;
    let err = |reason: String| LayerError::bad_source(pattern, reason);
    let io = |e: std::io::Error| LayerError::bad_source(pattern, e.to_string());
    let mut cands: Vec<(Vec<u8>, Comps, Option<Metadata>)> =
        vec![(Vec::new(), Vec::new(), root.lstat(&[]).map_err(io)?)];
    for c in &comps {
        let mut next = Vec::new();
        for (_, base, md) in cands {
            if !glob::has_meta(c) {
                let r = root.resolve(base, &[c.as_slice()], true).map_err(err)?;
                next.push((c.clone(), r.comps, r.md));
                continue;
            }
            if !md.as_ref().is_some_and(Metadata::is_dir) {
                continue;
            }
            for (name, _) in sorted_children(&root.path(&base))? {
                if glob::matches(c, &name).map_err(err)? {
                    if let Ok(r) = root.resolve(base.clone(), &[name.as_slice()], true) {
                        next.push((name, r.comps, r.md));
                    }
                }
            }
        }
        cands = next.into_iter().filter(|c| c.2.is_some()).collect();
    }
    let mut out = Vec::new();
    for (name, comps, md) in cands {
        let Some(md) = md else { continue };
        let path = root.path(&comps);
        let (archive, packed_archive) = match (plan.extract_archives && md.is_file(), extract) {
            (true, true) => (archive::open_tar(&path)?, false),
            (true, false) => (None, archive::looks_like_archive(&path)?),
            _ => (None, false),
        };
        out.push(Match { root, from_context, name, comps, md, archive, packed_archive });
    }
    if out.is_empty() {
        let where_ = if from_context {
            "in the build context (or it is excluded by .dockerignore)".to_string()
        } else {
            format!("in {}", src.root.display())
        };
        return Err(err(format!("no such file or directory {where_}: no source files were specified")));
    }
    Ok(out)
}
