//! A container's mounts made real: its mount specs plus anonymous volumes
//! for the image's `VOLUME`s that no mount covers, volumes created and put in
//! use, image content copied up, and the OCI `mounts[]` entries.

use super::mounts::{MountKind, MountSpec};
use super::{copyup, CreateVolume, VolumeUse, Volumes, ANONYMOUS_LABEL};
use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The volumes a container holds while it lives, and its OCI mounts.
#[derive(Debug)]
pub struct AttachedMounts {
    volumes: Volumes,
    uses: Vec<VolumeUse>,
    /// Anonymous volumes made for this container (removed by `run --rm`).
    anonymous: Vec<String>,
    /// `mounts[]` entries, parents before children.
    pub oci: Vec<Value>,
}

impl AttachedMounts {
    /// Lets the volumes go; with `remove_anonymous` (`--rm`, `rm -v`) the
    /// container's anonymous volumes are removed too.
    pub fn release(mut self, remove_anonymous: bool) -> Result<()> {
        if !remove_anonymous {
            self.anonymous.clear();
        }
        self.release_now()
    }

    /// Writes `<container dir>/volumes.json`: the anonymous volumes and
    /// whether `--rm` removes them, for the leftover sweep of a killed run.
    pub fn record(&self, container_dir: &Path, rm: bool) -> Result<()> {
        let p = container_dir.join(RECORD);
        let bytes = serde_json::to_vec(&json!({"rm": rm, "anonymous": self.anonymous}))
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", p.display())))?;
        std::fs::write(&p, bytes).map_err(|e| Error::io(format!("write {}", p.display()), e))
    }

    /// Leaves the volumes in use as they are (the container may still run):
    /// the locks stay held until this process exits, the user entries stay
    /// after it, and the leftover sweep finishes the job.
    pub fn abandon(mut self) {
        self.anonymous.clear();
        for u in self.uses.drain(..) {
            std::mem::forget(u);
        }
    }

    /// The anonymous volumes made for this container, in plan order.
    pub fn anonymous(&self) -> &[String] {
        &self.anonymous
    }

    /// Copies of the in-use locks, for the container's monitor to hold.
    pub fn hand_over(&self) -> Result<Vec<std::os::fd::OwnedFd>> {
        let mut out = Vec::new();
        for u in &self.uses {
            out.extend(u.lock_fds()?);
        }
        Ok(out)
    }

    /// Lets go of this process's copies of the locks once the monitor
    /// holds them: nothing is released or removed.
    pub fn forget(mut self) {
        self.anonymous.clear();
        for u in self.uses.drain(..) {
            u.hand_over();
        }
    }

    fn release_now(&mut self) -> Result<()> {
        self.uses.clear();
        let mut first = Ok(());
        for name in std::mem::take(&mut self.anonymous) {
            if let Err(e) = self.volumes.remove(&name) {
                tracing::warn!("removing anonymous volume {name}: {e}");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

/// Dropped without [`AttachedMounts::release`] (an error path): the
/// container did not run to the end, so its anonymous volumes go too.
impl Drop for AttachedMounts {
    fn drop(&mut self) {
        let _ = self.release_now();
    }
}

/// The record [`AttachedMounts::record`] writes in the container dir.
const RECORD: &str = "volumes.json";

/// The image's `VOLUME` paths.
pub fn image_volumes(img: &wharf_image::Image) -> Vec<String> {
    img.config.config().as_ref().and_then(|c| c.volumes().clone()).unwrap_or_default()
}

/// `specs` plus an anonymous volume for each image `VOLUME` they leave
/// uncovered; refuses two mounts on one target (Docker: "Duplicate mount point").
pub fn plan(specs: &[MountSpec], image_volumes: &[String]) -> Result<Vec<MountSpec>> {
    let mut out: Vec<MountSpec> = Vec::new();
    for s in specs {
        if out.iter().any(|o| o.target == s.target) {
            return Err(Error::InvalidArgument(format!("Duplicate mount point: {}", s.target)));
        }
        out.push(s.clone());
    }
    for v in image_volumes {
        let Some(target) = super::mounts::clean_target(v) else { continue };
        if target == "/" || out.iter().any(|o| o.target == target) {
            continue;
        }
        let kind = MountKind::Volume { name: None, nocopy: false, options: BTreeMap::new(), labels: BTreeMap::new() };
        out.push(MountSpec { kind, target, readonly: false, propagation: None });
    }
    // Parents first, as Docker sorts them, so /a/b lands inside /a's mount.
    out.sort_by_key(|m| m.target.matches('/').count());
    Ok(out)
}

/// Makes `plan`'s mounts real for `container` on `rootfs`: on error,
/// whatever was made is undone.
pub fn attach(vols: &Volumes, plan: &[MountSpec], rootfs: &Path, container: &str) -> Result<AttachedMounts> {
    let mut a = AttachedMounts { volumes: vols.clone(), uses: Vec::new(), anonymous: Vec::new(), oci: Vec::new() };
    let mut created = Vec::new();
    let r = plan.iter().try_for_each(|m| attach_one(&mut a, &mut created, m, rootfs, container));
    if let Err(e) = r {
        let vols = a.volumes.clone();
        drop(a);
        for name in created {
            let _ = vols.remove(&name);
        }
        return Err(e);
    }
    Ok(a)
}

fn attach_one(
    a: &mut AttachedMounts,
    created: &mut Vec<String>,
    m: &MountSpec,
    rootfs: &Path,
    container: &str,
) -> Result<()> {
    let entry = match &m.kind {
        MountKind::Bind { source, create } => {
            if !source.exists() {
                if !*create {
                    return Err(Error::InvalidArgument(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        source.display()
                    )));
                }
                std::fs::create_dir_all(source).map_err(|e| Error::io(format!("create {}", source.display()), e))?;
            }
            bind_entry(&m.target, source, m)
        }
        MountKind::Volume { name, nocopy, options, labels } => {
            let u = volume_in_use(a, created, name.as_deref(), options, labels, container)?;
            let data = u.volume.mountpoint.clone();
            if !nocopy {
                copy_up_if_empty(&a.volumes, &u, rootfs, &m.target)?;
            }
            a.uses.push(u);
            bind_entry(&m.target, &data, m)
        }
        MountKind::Tmpfs { options } => {
            let mut opts: Vec<String> = ["nosuid", "nodev", "noexec"].map(String::from).to_vec();
            opts.extend(options.iter().cloned());
            if m.readonly {
                opts.push("ro".into());
            }
            json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts})
        }
    };
    a.oci.push(entry);
    Ok(())
}

fn bind_entry(target: &str, source: &Path, m: &MountSpec) -> Value {
    let mut opts = vec!["rbind".to_string(), m.propagation.clone().unwrap_or_else(|| "rprivate".into())];
    if m.readonly {
        opts.push("ro".into());
    }
    json!({"destination": target, "type": "bind", "source": source, "options": opts})
}

/// The named volume (created when missing, as `docker run -v name:/p` does)
/// or a new anonymous one, put in use by `container`.
fn volume_in_use(
    a: &mut AttachedMounts,
    created: &mut Vec<String>,
    name: Option<&str>,
    options: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    container: &str,
) -> Result<VolumeUse> {
    let name = match name {
        Some(n) => {
            let req =
                CreateVolume { name: Some(n.into()), options: options.clone(), labels: labels.clone(), driver: None };
            if a.volumes.create_or_get(&req)?.1 {
                created.push(n.to_string());
            }
            n.to_string()
        }
        None => {
            let mut labels = labels.clone();
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
            let req = CreateVolume { name: None, options: options.clone(), labels, driver: None };
            let v = a.volumes.create(&req)?;
            a.anonymous.push(v.name.clone());
            v.name
        }
    };
    a.volumes.acquire(&name, container)
}

/// Copy-up, once: only into an empty volume never populated before (or a
/// driver mount this use just made), from an existing image directory.
fn copy_up_if_empty(vols: &Volumes, u: &VolumeUse, rootfs: &Path, target: &str) -> Result<()> {
    // Under the volume store's lock: two containers starting at once copy once.
    let _lock = vols.lock()?;
    if vols.get(&u.volume.name)?.populated && !u.fresh_mount {
        return Ok(());
    }
    let data = &u.volume.mountpoint;
    let empty = std::fs::read_dir(data).map_err(|e| Error::io(format!("read {}", data.display()), e))?.next().is_none();
    if !empty {
        return Ok(());
    }
    let io = |e| Error::io(format!("copy {target} of the image into volume {}", u.volume.name), e);
    let Some(src) = copyup::open_in_root(rootfs, target).map_err(io)? else { return Ok(()) };
    // Copied beside `_data` and renamed over it, so a copy cut short by
    // kill -9 leaves `_data` empty and the next user copies again. Only for
    // a plain dir nobody else has mounted; otherwise in place, as Docker.
    // (Any `.copyup` seen here is a killed copier's: copies hold the lock.)
    let staging = data.with_file_name(".copyup");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io(format!("remove {}", staging.display()), e))?;
    }
    let alone = u.volume.options.is_empty() && vols.users_locked(&u.volume.name)?.len() == 1;
    let n = if alone {
        std::fs::create_dir(&staging).map_err(io)?;
        let n = copyup::copy_up(&src, &staging).map_err(io)?;
        std::fs::rename(&staging, data).map_err(io)?;
        n
    } else {
        copyup::copy_up(&src, data).map_err(io)?
    };
    if n > 0 {
        vols.set_populated(&u.volume.name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::mounts::parse_volume_flag;

    #[test]
    fn image_volumes_fill_gaps_parents_first() {
        let specs = vec![parse_volume_flag("/tmp:/data/sub").unwrap(), parse_volume_flag("named:/cache/").unwrap()];
        let p = plan(&specs, &["/data".into(), "/cache".into(), "/".into(), "rel".into()]).unwrap();
        let targets: Vec<&str> = p.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(
            targets,
            ["/cache", "/data", "/data/sub"],
            "a mount covers /cache; /data is anonymous; / is never one"
        );
        assert!(matches!(p[1].kind, MountKind::Volume { name: None, .. }));
        let dup = vec![parse_volume_flag("a1:/x").unwrap(), parse_volume_flag("/tmp:/x/").unwrap()];
        assert!(plan(&dup, &[]).unwrap_err().to_string().contains("Duplicate mount point: /x"));
    }
}
