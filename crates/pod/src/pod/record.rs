//! A pod's record and the truth about its state.
//!
//! `<root>/pods/<id>/`:
//! - `pod.json` — what `pod create` was asked and made (options, hostname,
//!   pinned namespaces, /etc files, IP), written once the pod exists whole.
//! - `lock` — flocked by whoever changes the pod (create, start, stop, rm).
//! - `infra.lock` — flocked by the live infra process (inherited fd): free
//!   means no infra runs, whatever `infra.pid` says.
//! - `infra.pid` — the infra's host pid, written by the infra itself.
//! - `infra.paused` — `pod pause` froze the infra (removed when thawed or restarted).
//! - `removing` — an rm began: the sweep finishes it if its maker died.
//! - `hosts`, `hostname`, `resolv.conf` — bind-mounted into every member.
//!
//! `<root>/pod-names/<name>` → ID, claimed with symlink(2).

use super::PodOptions;
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const RECORD: &str = "pod.json";
pub(crate) const REMOVING: &str = "removing";
pub(crate) const INFRA_LOCK: &str = "infra.lock";
pub(crate) const INFRA_PID: &str = "infra.pid";
/// `pod pause` froze the infra's cgroup.
pub(crate) const INFRA_PAUSED: &str = "infra.paused";
pub(crate) const LOCK: &str = "lock";

/// `pod.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    pub options: PodOptions,
    pub hostname: String,
    /// The parent cgroup of the members (`/wharf/pod-<id>`, or the
    /// `cgroup_parent` of the options).
    pub cgroup_parent: String,
    /// The options' `cgroup_parent` did not exist: the pod made it (and
    /// writes its limits there, and removes it with the pod).
    #[serde(default)]
    pub cgroup_made: bool,
    /// Pinned namespaces the members join: (OCI type, path).
    pub namespaces: Vec<(String, PathBuf)>,
    /// (path in the container, host file): hosts, hostname, resolv.conf.
    pub files: Vec<(String, PathBuf)>,
    /// The pod's address on its network (bridge pods).
    pub ip: Option<String>,
    /// The tmpfs every member gets as /dev/shm (with shared ipc).
    #[serde(default)]
    pub shm: Option<PathBuf>,
}

/// The pod's state, derived from its members (containers and infra).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodStatus {
    /// Nothing started yet (or no members).
    Created,
    /// Every member runs.
    Running,
    /// Some members run, some do not.
    Degraded,
    /// Every container is paused.
    Paused,
    /// Members ran and none runs now.
    Exited,
}

impl std::fmt::Display for PodStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PodStatus::Created => "Created",
            PodStatus::Running => "Running",
            PodStatus::Degraded => "Degraded",
            PodStatus::Paused => "Paused",
            PodStatus::Exited => "Exited",
        })
    }
}

/// The infra process as found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Infra {
    /// Enabled for the pod (`--infra`).
    pub enabled: bool,
    /// It holds `infra.lock` now.
    pub running: bool,
    /// It was started at least once.
    pub started: bool,
    /// Its host pid (0 if unknown); meaningful while `running`.
    pub pid: i32,
    /// Frozen by `pod pause` (while `running`).
    pub paused: bool,
}

/// A pod as commands see it.
#[derive(Debug, Clone)]
pub struct Pod {
    pub id: String,
    pub name: String,
    pub created: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub ip: Option<String>,
    pub record: PodRecord,
    pub infra: Infra,
    /// Members in creation (start) order.
    pub containers: Vec<Container>,
    pub dir: PathBuf,
    status: PodStatus,
}

impl Pod {
    pub fn status(&self) -> PodStatus {
        self.status
    }

    /// Any member (container or infra) runs.
    pub fn is_running(&self) -> bool {
        self.infra.running || self.containers.iter().any(|c| c.is_running())
    }

    /// `pod pause` froze the infra.
    pub fn infra_paused(&self) -> bool {
        self.infra.paused
    }
}

pub(crate) fn pods_dir(root: &Path) -> PathBuf {
    root.join("pods")
}

pub(crate) fn io(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::io(format!("{what} {}", p.display()), e)
}

pub(crate) fn save(dir: &Path, r: &PodRecord) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(r).map_err(|e| Error::InvalidArgument(format!("pod record: {e}")))?;
    crate::container::write_atomic(&dir.join(RECORD), &bytes)
}

pub(crate) fn load_record(dir: &Path) -> Result<PodRecord> {
    let p = dir.join(RECORD);
    let bytes = std::fs::read(&p).map_err(|e| io("read", &p, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::InvalidArgument(format!("{}: {e}", p.display())))
}

/// Whether someone holds `dir/name` (a shared try-lock, released at once).
pub(crate) fn held(dir: &Path, name: &str) -> bool {
    crate::flock::held(&dir.join(name))
}

pub(crate) fn infra_state(dir: &Path, enabled: bool) -> Infra {
    let pid = std::fs::read_to_string(dir.join(INFRA_PID)).ok().and_then(|s| s.trim().parse().ok());
    let running = enabled && held(dir, INFRA_LOCK);
    let paused = running && dir.join(INFRA_PAUSED).exists();
    Infra { enabled, running, started: pid.is_some(), pid: if running { pid.unwrap_or(0) } else { 0 }, paused }
}

/// The pod in `dir`, its members found among `all`.
pub(crate) fn load(dir: &Path, all: &[Container]) -> Result<Pod> {
    let record = load_record(dir)?;
    let infra = infra_state(dir, record.options.infra);
    let containers = super::members(all, &record.id);
    let status = status(&infra, &containers);
    Ok(Pod {
        id: record.id.clone(),
        name: record.name.clone(),
        created: record.created.clone(),
        labels: record.options.labels.clone(),
        annotations: record.options.annotations.clone(),
        ip: record.ip.clone(),
        record,
        infra,
        containers,
        dir: dir.to_path_buf(),
        status,
    })
}

fn status(infra: &Infra, containers: &[Container]) -> PodStatus {
    let (mut total, mut running, mut paused, mut exited) = (0, 0, 0, 0);
    for c in containers {
        total += 1;
        match c.status {
            Status::Running | Status::Restarting => running += 1,
            Status::Paused => paused += 1,
            Status::Exited => exited += 1,
            Status::Created => {}
        }
    }
    if infra.enabled {
        total += 1;
        if infra.paused {
            paused += 1;
        } else if infra.running {
            running += 1;
        } else if infra.started {
            exited += 1;
        }
    }
    match () {
        _ if total == 0 => PodStatus::Created,
        // Podman's: Paused when every member, the infra too, is.
        _ if paused > 0 && paused == total => PodStatus::Paused,
        _ if running + paused == total => PodStatus::Running,
        _ if running + paused > 0 => PodStatus::Degraded,
        _ if exited > 0 => PodStatus::Exited,
        _ => PodStatus::Created,
    }
}

pub(crate) fn name_link(root: &Path, name: &str) -> PathBuf {
    crate::names::PODS.link(root, name)
}

pub(crate) fn release_name(root: &Path, name: &str, id: &str) {
    crate::names::PODS.release(root, name, id)
}

/// Names whose pod dir is gone.
pub(crate) fn sweep_names(root: &Path) {
    crate::names::PODS.sweep(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_of_members() {
        let none: Vec<Container> = Vec::new();
        let idle = Infra { enabled: true, ..Default::default() };
        assert_eq!(status(&idle, &none), PodStatus::Created);
        let up = Infra { enabled: true, running: true, started: true, pid: 1, paused: false };
        assert_eq!(status(&up, &none), PodStatus::Running);
        let killed = Infra { enabled: true, running: false, started: true, pid: 0, paused: false };
        let frozen = Infra { paused: true, ..up };
        assert_eq!(status(&frozen, &none), PodStatus::Paused);
        assert_eq!(status(&killed, &none), PodStatus::Exited);
        assert_eq!(status(&Infra::default(), &none), PodStatus::Created);
    }
}
