//! Removing images and collecting what no image references any more.

use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::images::ref_name;
use crate::layout::{Store, MAX_METADATA_BLOB};
use crate::reference::Reference;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use std::collections::HashSet;

/// What `rmi` did, line by line, as Docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(String),
}

#[derive(Debug, Default, Clone)]
pub struct GcReport {
    pub images: usize,
    pub blobs: usize,
    pub snapshots: usize,
    pub bytes: u64,
    pub temp_files: usize,
}

/// Which images a garbage collection drops before collecting.
enum Images<'a> {
    Keep,
    DropDangling,
    DropAllBut(&'a HashSet<Digest>),
}

/// What the store's index keeps alive.
#[derive(Debug, Default)]
pub(crate) struct Reachable {
    pub blobs: HashSet<Digest>,
    pub diff_ids: HashSet<Digest>,
}

impl Store {
    /// `wharf rmi [-f] NAME…`: a tag is untagged; an image losing its last
    /// tag (or named by ID) is deleted with every blob only it used.
    pub fn remove_images(&self, names: &[String], force: bool) -> Result<Vec<Removed>> {
        let mut out = Vec::new();
        for name in names {
            out.extend(self.remove_one(name, force)?);
        }
        self.collect_garbage(Images::Keep)?;
        Ok(out)
    }

    fn remove_one(&self, name: &str, force: bool) -> Result<Vec<Removed>> {
        let _content = self.content_lock()?;
        let img = self.resolve(name)?;
        let target = img.target.digest().clone();
        let canonical = Reference::parse(name).ok().map(|r| r.to_string());
        self.update_index(|idx| {
            let mut list = idx.manifests().clone();
            let by_name = list.iter().position(|d| {
                d.digest() == &target
                    && (ref_name(d) == Some(name) || ref_name(d).is_some() && ref_name(d) == canonical.as_deref())
            });
            let mut out = Vec::new();
            if let Some(i) = by_name {
                let d = list.remove(i);
                out.push(Removed::Untagged(ref_name(&d).unwrap_or_default().to_string()));
            } else {
                let tags: Vec<&str> = list.iter().filter(|d| d.digest() == &target).filter_map(ref_name).collect();
                if tags.len() > 1 && !force {
                    return Err(Error::Conflict(format!(
                        "image {name} is referenced in multiple repositories ({}); remove the tags or use -f",
                        tags.join(", ")
                    )));
                }
                for t in tags {
                    out.push(Removed::Untagged(t.to_string()));
                }
                list.retain(|d| d.digest() != &target);
            }
            if !list.iter().any(|d| d.digest() == &target) {
                list.retain(|d| d.digest() != &target);
                out.push(Removed::Deleted(img.config_digest.to_string()));
            }
            idx.set_manifests(list);
            Ok(out)
        })
    }

    /// `wharf image prune`: drops dangling images, then every blob and
    /// snapshot no image references, and temp files of dead writers.
    pub fn prune(&self) -> Result<GcReport> {
        self.collect_garbage(Images::DropDangling)
    }

    /// `wharf image prune -a`: drops every image but those in `in_use`
    /// (manifest digests of containers), then collects as [`Store::prune`].
    pub fn prune_unused(&self, in_use: &HashSet<Digest>) -> Result<GcReport> {
        self.collect_garbage(Images::DropAllBut(in_use))
    }

    /// [`Store::prune_unused`] with the in-use set computed under the gc
    /// lock, so that no container that started before it is missed (a
    /// starting container holds [`Store::content_lock`] until it is visible).
    pub fn prune_unused_by(&self, in_use: impl FnOnce() -> HashSet<Digest>) -> Result<GcReport> {
        let gc = self.gc_lock()?;
        let keep = in_use();
        self.collect_garbage_locked(Images::DropAllBut(&keep), &gc)
    }

    fn collect_garbage(&self, images: Images) -> Result<GcReport> {
        let gc = self.gc_lock()?;
        self.collect_garbage_locked(images, &gc)
    }

    fn collect_garbage_locked(&self, images: Images, _gc: &crate::lock::FileLock) -> Result<GcReport> {
        let mut report = GcReport::default();
        if !matches!(images, Images::Keep) {
            report.images = self.update_index(|idx| {
                let before: HashSet<Digest> = idx.manifests().iter().map(|d| d.digest().clone()).collect();
                let tagged: HashSet<Digest> =
                    idx.manifests().iter().filter(|d| ref_name(d).is_some()).map(|d| d.digest().clone()).collect();
                let mut list = idx.manifests().clone();
                match images {
                    Images::DropAllBut(keep) => list.retain(|d| keep.contains(d.digest())),
                    _ => list.retain(|d| ref_name(d).is_some() || tagged.contains(d.digest())),
                }
                let after: HashSet<Digest> = list.iter().map(|d| d.digest().clone()).collect();
                idx.set_manifests(list);
                Ok(before.difference(&after).count())
            })?;
        }
        let live = self.reachable()?;
        let (blobs, _) = self.blobs().list()?;
        for b in blobs.into_iter().filter(|b| !live.blobs.contains(b)) {
            report.bytes += self.blobs().size(&b).unwrap_or(0);
            self.blobs().remove(&b)?;
            report.blobs += 1;
        }
        let (snaps, _) = self.snapshots().list()?;
        for s in snaps.into_iter().filter(|s| !live.diff_ids.contains(s)) {
            self.snapshots().remove(&s)?;
            report.snapshots += 1;
        }
        report.temp_files = self.clean_abandoned()?;
        Ok(report)
    }

    /// After a failed pull or load: removes those of `blobs` and of the
    /// snapshots `diff_ids` that no image references. When another process
    /// (or this one: a build pulling its base) is adding content, it does
    /// not wait — that could deadlock — and leaves them to `image prune`.
    pub fn discard(&self, blobs: &HashSet<Digest>, diff_ids: &HashSet<Digest>) -> Result<()> {
        if blobs.is_empty() && diff_ids.is_empty() {
            return Ok(());
        }
        let Some(_gc) = self.gc_lock_now()? else {
            tracing::debug!("store busy: unreferenced blobs stay until image prune");
            return Ok(());
        };
        let live = self.reachable()?;
        for d in blobs.iter().filter(|d| !live.blobs.contains(d)) {
            self.blobs().remove(d)?;
        }
        for d in diff_ids.iter().filter(|d| !live.diff_ids.contains(d)) {
            self.snapshots().remove(d)?;
        }
        Ok(())
    }

    /// Every blob and diffID reachable from index.json. Missing or broken
    /// blobs are skipped here; `system check` reports them.
    pub(crate) fn reachable(&self) -> Result<Reachable> {
        let mut r = Reachable::default();
        let index = self.index()?;
        let mut stack: Vec<Descriptor> = index.manifests().clone();
        while let Some(d) = stack.pop() {
            if !r.blobs.insert(d.digest().clone()) {
                continue;
            }
            let Ok(bytes) = self.blobs().read(d.digest(), MAX_METADATA_BLOB) else { continue };
            walk_children(&bytes, &mut stack, &mut r, self);
        }
        Ok(r)
    }
}

/// Pushes what a manifest or index references; records a config's diffIDs.
fn walk_children(bytes: &[u8], stack: &mut Vec<Descriptor>, r: &mut Reachable, store: &Store) {
    let v: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => return,
    };
    if v.get("manifests").is_some() {
        if let Ok(idx) = serde_json::from_value::<ImageIndex>(v) {
            stack.extend(idx.manifests().iter().cloned());
        }
    } else if v.get("config").is_some() && v.get("layers").is_some() {
        if let Ok(m) = serde_json::from_value::<ImageManifest>(v) {
            r.blobs.insert(m.config().digest().clone());
            for l in m.layers() {
                r.blobs.insert(l.digest().clone());
            }
            if let Ok(cb) = store.blobs().read(m.config().digest(), MAX_METADATA_BLOB) {
                if let Ok(c) = serde_json::from_slice::<ImageConfiguration>(&cb) {
                    r.diff_ids.extend(c.rootfs().diff_ids().iter().filter_map(|s| digest::parse(s).ok()));
                }
            }
        }
    }
}
