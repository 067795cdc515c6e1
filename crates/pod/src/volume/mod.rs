//! Named and anonymous volumes, in Docker's layout: `<root>/volumes/<name>/_data`
//! holds the data and `<root>/volumes/<name>/volume.json` the record (driver
//! `local`, options, labels, creation time, whether it was populated).
//!
//! Volumes are created and removed under an flock on `<root>/volumes/.lock`;
//! a new volume is assembled in a temp dir and renamed into place, a removed
//! one is renamed away first, so a `kill -9` at any instant leaves either a
//! whole volume or none (the `.tmp-*`/`.removing-*` leftovers are swept).
//!
//! - [`usage`]: who uses a volume (flocks that die with their holder) and
//!   the local driver's `type=tmpfs|bind` mounts made at use time.
//! - [`mounts`]: `-v`, `--mount` and `--tmpfs` parsed into [`MountSpec`]s.
//! - [`attach`]: a container's mount specs (and its image's `VOLUME`s) →
//!   volumes in use, copy-up, OCI mounts.
//! - [`copyup`]: an image directory copied into an empty volume.

pub(crate) mod attach;
mod copyup;
pub mod mounts;
mod usage;

pub use attach::AttachedMounts;
pub use mounts::{MountKind, MountSpec};
pub use usage::VolumeUse;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The label Docker puts on anonymous volumes (those `docker volume prune` removes).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume's record, `volume.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub mountpoint: PathBuf,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Set once image content was copied in (copy-up never happens twice).
    #[serde(default)]
    pub populated: bool,
}

impl Volume {
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// Docker's `volume inspect` object.
    pub fn inspect_json(&self) -> serde_json::Value {
        serde_json::json!({
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": self.labels,
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": self.options,
            "Scope": "local",
        })
    }
}

/// What `volume create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateVolume {
    /// None: a random 64-hex name.
    pub name: Option<String>,
    pub driver: Option<String>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// What `volume prune` removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    pub removed: Vec<String>,
    pub bytes: u64,
}

/// `volume ls --filter`: `dangling=true|false`, `name=SUBSTRING` and
/// `driver=NAME` (any of them), `label=KEY` or `label=KEY=VALUE` (all of them).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub dangling: Option<bool>,
    pub names: Vec<String>,
    pub drivers: Vec<String>,
    pub labels: Vec<(String, Option<String>)>,
}

impl ListFilter {
    pub fn parse(filters: &[String]) -> Result<Self> {
        let mut f = ListFilter::default();
        for x in filters {
            let (k, v) = x
                .split_once('=')
                .ok_or_else(|| Error::InvalidArgument(format!("bad format of filter (expected name=value): {x}")))?;
            match k {
                "dangling" => {
                    f.dangling = Some(match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(Error::InvalidArgument(format!("invalid filter 'dangling={v}'"))),
                    })
                }
                "name" => f.names.push(v.to_string()),
                "driver" => f.drivers.push(v.to_string()),
                "label" => f.labels.push(match v.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (v.to_string(), None),
                }),
                _ => return Err(Error::InvalidArgument(format!("invalid filter '{k}'"))),
            }
        }
        Ok(f)
    }

    fn matches(&self, v: &Volume, in_use: impl FnOnce() -> bool) -> bool {
        (self.names.is_empty() || self.names.iter().any(|n| v.name.contains(n.as_str())))
            && (self.drivers.is_empty() || self.drivers.contains(&v.driver))
            && self.labels.iter().all(|(k, val)| match (v.labels.get(k), val) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                (None, _) => false,
            })
            && self.dangling.is_none_or(|d| d != in_use())
    }
}

/// The volumes under `<root>/volumes`.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn name_error(name: &str) -> Error {
    Error::InvalidArgument(format!(
        "create {name}: {name:?} includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    ))
}

impl Volumes {
    pub fn new(store_root: &Path) -> Self {
        Volumes { dir: store_root.join("volumes") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The store-wide lock under which volumes appear and disappear.
    fn lock(&self) -> Result<wharf_image::FileLock> {
        if !self.dir.exists() {
            // 0701 as Docker's: other users may reach a volume they know, not list them.
            use std::os::unix::fs::DirBuilderExt;
            let made = fs::DirBuilder::new().recursive(true).mode(0o701).create(&self.dir);
            made.map_err(|e| Error::io(format!("create {}", self.dir.display()), e))?;
        }
        Ok(wharf_image::FileLock::exclusive(&self.dir.join(".lock"))?)
    }

    /// Creates a volume; an existing one with the same name is returned as it
    /// is when the request does not contradict it (Docker's behaviour).
    pub fn create(&self, req: &CreateVolume) -> Result<Volume> {
        self.create_or_get(req).map(|(v, _)| v)
    }

    /// [`Volumes::create`], and whether this call made the volume.
    pub(crate) fn create_or_get(&self, req: &CreateVolume) -> Result<(Volume, bool)> {
        let name = match &req.name {
            Some(n) if !valid_name(n) => return Err(name_error(n)),
            Some(n) => n.clone(),
            None => crate::run::new_id(),
        };
        let driver = req.driver.clone().unwrap_or_else(|| "local".into());
        if driver != "local" {
            return Err(Error::InvalidArgument(format!(
                "create {name}: volume driver {driver:?} is not available: only local"
            )));
        }
        usage::check_options(&name, &req.options)?;
        let _lock = self.lock()?;
        if let Some(v) = self.read(&name)? {
            if !req.options.is_empty() && v.options != req.options {
                return Err(Error::InvalidArgument(format!(
                    "create {name}: a volume with this name already exists with other options"
                )));
            }
            return Ok((v, false));
        }
        let v = Volume {
            mountpoint: self.path(&name).join("_data"),
            name,
            driver,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels: req.labels.clone(),
            options: req.options.clone(),
            populated: false,
        };
        let tmp = self.dir.join(format!(".tmp-{}", crate::run::new_id()));
        let made = (|| {
            fs::create_dir_all(tmp.join("_data")).map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
            write_record(&tmp, &v)?;
            fs::rename(&tmp, self.path(&v.name)).map_err(|e| Error::io(format!("create volume {}", v.name), e))?;
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io(format!("sync {}", self.dir.display()), e))
        })();
        if made.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        made.map(|()| (v, true))
    }

    /// The volume's record, or None.
    fn read(&self, name: &str) -> Result<Option<Volume>> {
        if !valid_name(name) {
            return Ok(None);
        }
        let p = self.path(name).join("volume.json");
        match fs::read(&p) {
            Ok(b) => {
                let mut v: Volume =
                    serde_json::from_slice(&b).map_err(|e| Error::InvalidArgument(format!("{}: {e}", p.display())))?;
                // Where the volume is, not where the record says (a moved store, an edited file).
                v.name = name.to_string();
                v.mountpoint = self.path(name).join("_data");
                Ok(Some(v))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("read {}", p.display()), e)),
        }
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        self.read(name)?.ok_or_else(|| Error::NoSuchVolume(name.to_string()))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("read {}", self.dir.display()), e)),
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            if let Some(v) = self.read(&e.file_name().to_string_lossy())? {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The volumes `filter` selects, by name.
    pub fn list_filtered(&self, filter: &ListFilter) -> Result<Vec<Volume>> {
        let all = self.list()?;
        let mut out = Vec::new();
        for v in all {
            if filter.matches(&v, || self.users(&v.name).map(|u| !u.is_empty()).unwrap_or(true)) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// The containers using `name` right now (empty: unused).
    pub fn users(&self, name: &str) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        usage::users(&self.path(name), &self.containers_dir())
    }

    /// [`Volumes::users`] for a caller holding the store lock.
    fn users_locked(&self, name: &str) -> Result<Vec<String>> {
        usage::users(&self.path(name), &self.containers_dir())
    }

    /// `<root>/containers`: a user whose container dir remains is not gone.
    pub(super) fn containers_dir(&self) -> PathBuf {
        self.dir.with_file_name("containers")
    }

    /// The one in-use check (`rm`, `prune`): nobody may use the volume until
    /// the returned guard is dropped; `VolumeInUse` naming the users otherwise.
    /// The engine will add its stopped containers that reference the volume here.
    fn claim_unused(&self, name: &str, _lock: &wharf_image::FileLock) -> Result<File> {
        let dir = self.path(name);
        let excl = usage::try_exclusive(&dir)?;
        let containers = usage::users(&dir, &self.containers_dir())?;
        match excl {
            Some(guard) if containers.is_empty() => Ok(guard),
            _ => Err(Error::VolumeInUse { name: name.to_string(), containers }),
        }
    }

    /// Removes a volume nobody uses; `volume is in use - [ID…]` otherwise.
    pub fn remove(&self, name: &str) -> Result<()> {
        let lock = self.lock()?;
        self.get(name)?;
        self.remove_locked(name, &lock)?;
        Ok(())
    }

    /// Under the store lock: refuse when in use, unmount the driver's mount,
    /// rename away, delete. Returns the bytes freed.
    fn remove_locked(&self, name: &str, lock: &wharf_image::FileLock) -> Result<u64> {
        let dir = self.path(name);
        let _unused = self.claim_unused(name, lock)?;
        usage::unmount_data(&dir)?;
        let bytes = copyup::tree_size(&dir.join("_data"));
        let gone = self.dir.join(format!(".removing-{}", crate::run::new_id()));
        fs::rename(&dir, &gone).map_err(|e| Error::io(format!("remove volume {name}"), e))?;
        fs::remove_dir_all(&gone).map_err(|e| Error::io(format!("remove {}", gone.display()), e))?;
        Ok(bytes)
    }

    /// Removes unused anonymous volumes (every unused one with `all`), and
    /// what a killed writer left.
    pub fn prune(&self, all: bool) -> Result<PruneReport> {
        let lock = self.lock()?;
        self.sweep_leftovers();
        let mut report = PruneReport::default();
        for v in self.list()? {
            if !(all || v.anonymous()) {
                continue;
            }
            match self.remove_locked(&v.name, &lock) {
                Ok(bytes) => {
                    report.bytes += bytes;
                    report.removed.push(v.name);
                }
                Err(Error::VolumeInUse { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// `.tmp-*` and `.removing-*` dirs of killed processes (under the lock, so
    /// no live writer owns them).
    fn sweep_leftovers(&self) {
        let Ok(rd) = fs::read_dir(&self.dir) else { return };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".tmp-") || n.starts_with(".removing-") {
                let _ = usage::unmount_data(&e.path());
                if let Err(err) = fs::remove_dir_all(e.path()) {
                    tracing::warn!("removing {}: {err}", e.path().display());
                }
            }
        }
    }

    /// Marks the volume populated (after copy-up).
    fn set_populated(&self, name: &str) -> Result<()> {
        let mut v = self.get(name)?;
        v.populated = true;
        write_record(&self.path(name), &v)
    }
}

/// Writes `dir/volume.json` by temp file, fsync and rename.
fn write_record(dir: &Path, v: &Volume) -> Result<()> {
    let tmp = dir.join(".volume.json.tmp");
    let path = dir.join("volume.json");
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| Error::InvalidArgument(format!("volume record: {e}")))?;
    let io = |e| Error::io(format!("write {}", path.display()), e);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        for ok in ["ab", "a1", "my_vol.2-x", "0abc"] {
            assert!(super::valid_name(ok), "{ok}");
        }
        for bad in ["", "a", "_ab", ".ab", "a/b", "a b", "a:b", "..", "-x"] {
            assert!(!super::valid_name(bad), "{bad}");
        }
    }
}
