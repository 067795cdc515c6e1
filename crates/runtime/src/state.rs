//! The state directory: one `<root>/<id>/state.json` per container, written
//! with write-temp-and-rename so a crash never leaves half a file.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, Process};
use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupRecord;
use crate::error::{Context, Error, Result};

/// Default state root, like runc's /run/runc.
pub const DEFAULT_ROOT: &str = "/run/wharf-runtime";
pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const FIFO_FILE: &str = "exec.fifo";

/// A container's status as the OCI spec (plus runc's `paused`) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// Where the container is in its life, as far as the runtime wrote it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    Creating,
    Created,
    Started,
}

/// What state.json holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid`, to detect pid reuse after the container died.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub phase: Phase,
    pub cgroup: Option<CgroupRecord>,
    #[serde(default)]
    pub poststart: Vec<Hook>,
    #[serde(default)]
    pub poststop: Vec<Hook>,
    /// Namespace types the container has (by name), for `exec`.
    #[serde(default)]
    pub namespaces: Vec<String>,
    pub own_pid_ns: bool,
    pub no_pivot: bool,
    /// The spec's process, the base `exec` builds on (as runc does).
    pub process: Option<Process>,
    /// The spec's seccomp profile, applied to `exec` processes too (as runc).
    #[serde(default)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// Host paths of `/proc` etc. are not needed later; config kept minimal.
    #[serde(default)]
    pub use_fifo: bool,
}

/// The OCI state JSON printed by `state` and fed to hooks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

/// Container ids become directory names: keep them to runc's alphabet.
pub(crate) fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidId { id: id.to_string(), reason });
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > 1024 {
        return bad("too long");
    }
    if id == "." || id == ".." {
        return bad("not a name");
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.')) {
        return bad("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

/// The state directory of all containers.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

impl StateStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Creates `<root>/<id>`; fails if the id is taken.
    pub(crate) fn claim(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        fs::create_dir_all(&self.root).ctx(|| format!("create state root {}", self.root.display()))?;
        let dir = self.dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::AlreadyExists { id: id.to_string() }),
            Err(e) => Err(Error::io(format!("create state dir {}", dir.display()), e)),
        }
    }

    pub(crate) fn save(&self, rec: &Record) -> Result<()> {
        let dir = self.dir(&rec.id);
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(rec).map_err(|e| Error::io("encode state", e.into()))?;
        fs::write(&tmp, data).ctx(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, dir.join(STATE_FILE)).ctx(|| format!("rename {}", tmp.display()))
    }

    pub(crate) fn load(&self, id: &str) -> Result<Record> {
        validate_id(id)?;
        let p = self.dir(id).join(STATE_FILE);
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound { id: id.to_string() }),
            Err(e) => return Err(Error::io(format!("read {}", p.display()), e)),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Spec { path: p, reason: e.to_string() })
    }

    pub(crate) fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(format!("remove {}", dir.display()), e)),
            _ => Ok(()),
        }
    }

    /// Ids of every container in the store, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::io(format!("read {}", self.root.display()), e)),
        };
        let mut ids: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_ids() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", "..", "a/b", "a b", "ä"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}
