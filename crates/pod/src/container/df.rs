//! `system df`: the space images, containers, volumes and the build cache
//! take, and how much of it nothing uses (Docker's RECLAIMABLE).
//!
//! Images share layers: the total counts each layer blob once, and the
//! reclaimable part is the blobs no image of a container uses. A
//! container's size is its writable layer (`upper/`). A volume is active
//! when a container (running or not) names it. The build cache's size is
//! the layers its entries keep that no image uses.

use super::Containers;
use crate::error::Result;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use wharf_image::Store;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImageUsage {
    pub names: Vec<String>,
    pub id: String,
    pub created: Option<String>,
    /// Every layer and the config.
    pub size: u64,
    /// Layers other images hold too.
    pub shared_size: u64,
    /// Containers made from it.
    pub containers: usize,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ContainerUsage {
    pub id: String,
    pub name: String,
    pub image: String,
    pub command: String,
    pub created: String,
    pub status: String,
    pub running: bool,
    /// The writable layer.
    pub size: u64,
    /// How many volumes it names.
    pub volumes: usize,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VolumeUsage {
    pub name: String,
    /// Containers naming it.
    pub links: usize,
    pub size: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    /// Distinct layer and config blobs of every image.
    pub images_size: u64,
    /// Of `images_size`, what no container's image holds.
    pub images_reclaimable: u64,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
    pub build_cache_entries: usize,
    pub build_cache_size: u64,
}

/// Bytes of the regular files under `p` (hard links once), not crossing mounts.
pub fn dir_size(p: &Path) -> u64 {
    fn walk(p: &Path, dev: u64, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let Ok(rd) = std::fs::read_dir(p) else { return 0 };
        let mut n = 0;
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            if m.is_dir() {
                n += walk(&e.path(), dev, seen);
            } else if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                n += m.len();
            }
        }
        n
    }
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => walk(p, m.dev(), &mut HashSet::new()),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

impl Containers {
    /// What `system df` reports.
    pub fn disk_usage(&self, store: &Store) -> Result<DiskUsage> {
        let mut du = DiskUsage::default();
        let containers = self.list()?;
        // Images, with each blob's owners.
        let mut blob_owners: HashMap<String, (u64, usize)> = HashMap::new();
        let mut image_blobs: Vec<Vec<(String, u64)>> = Vec::new();
        let mut in_use_blobs: HashSet<String> = HashSet::new();
        let mut seen_ids = HashSet::new();
        for s in store.images()? {
            if !seen_ids.insert(s.id.clone()) {
                continue;
            }
            let Ok(img) = store.resolve(&s.digest) else { continue };
            let mut blobs: Vec<(String, u64)> =
                img.manifest.layers().iter().map(|l| (l.digest().to_string(), l.size())).collect();
            blobs.push((img.config_digest.to_string(), img.manifest.config().size()));
            for (d, size) in &blobs {
                blob_owners.entry(d.clone()).or_insert((*size, 0)).1 += 1;
            }
            let users = containers.iter().filter(|c| c.record.image_id == s.id).count();
            if users > 0 {
                in_use_blobs.extend(blobs.iter().map(|(d, _)| d.clone()));
            }
            du.images.push(ImageUsage {
                names: s.names,
                id: s.id,
                created: s.created,
                size: s.size,
                shared_size: 0,
                containers: users,
            });
            image_blobs.push(blobs);
        }
        for (i, blobs) in du.images.iter_mut().zip(&image_blobs) {
            i.shared_size = blobs.iter().filter(|(d, _)| blob_owners[d].1 > 1).map(|(_, s)| s).sum();
        }
        du.images_size = blob_owners.values().map(|(s, _)| s).sum();
        du.images_reclaimable =
            blob_owners.iter().filter(|(d, _)| !in_use_blobs.contains(*d)).map(|(_, (s, _))| s).sum();
        // Containers and the volumes they name.
        let mut links: HashMap<String, usize> = HashMap::new();
        for c in &containers {
            let names = volume_names(c);
            for n in &names {
                *links.entry(n.clone()).or_default() += 1;
            }
            du.containers.push(ContainerUsage {
                id: c.id().to_string(),
                name: c.name().to_string(),
                image: c.record.image.clone(),
                command: c.record.command.join(" "),
                created: c.record.created.clone(),
                status: c.status.to_string(),
                running: c.is_running(),
                size: dir_size(&c.dir.join("upper")),
                volumes: names.len(),
            });
        }
        for v in crate::volume::Volumes::new(&self.root).list()? {
            du.volumes.push(VolumeUsage {
                links: links.get(&v.name).copied().unwrap_or(0),
                size: dir_size(&v.mountpoint),
                name: v.name,
            });
        }
        let (n, size) = build_cache(&self.root, &blob_owners);
        du.build_cache_entries = n;
        du.build_cache_size = size;
        Ok(du)
    }
}

/// The volumes a container's record names (named and anonymous).
fn volume_names(c: &super::Container) -> Vec<String> {
    use crate::volume::mounts::MountKind;
    let o = &c.record.options;
    let specs = crate::volume::mounts::parse_run_flags(&o.volumes, &o.mounts, &o.tmpfs).unwrap_or_default();
    let mut names: Vec<String> = specs
        .into_iter()
        .filter_map(|m| match m.kind {
            MountKind::Volume { name: Some(n), .. } => Some(n),
            _ => None,
        })
        .collect();
    names.extend(c.record.anonymous_volumes.iter().map(|(_, n)| n.clone()));
    names.sort();
    names.dedup();
    names
}

/// Entries of `<root>/build-cache` and the size of the layers they keep
/// that no image holds.
fn build_cache(root: &Path, image_blobs: &HashMap<String, (u64, usize)>) -> (usize, u64) {
    let Ok(rd) = std::fs::read_dir(root.join("build-cache")) else { return (0, 0) };
    let mut n = 0;
    let mut own: HashMap<String, u64> = HashMap::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        n += 1;
        let Ok(bytes) = std::fs::read(e.path()) else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
        for l in v["layers"].as_array().into_iter().flatten() {
            if let (Some(d), Some(s)) = (l["digest"].as_str(), l["size"].as_u64()) {
                if !image_blobs.contains_key(d) {
                    own.insert(d.to_string(), s);
                }
            }
        }
    }
    (n, own.values().sum())
}
