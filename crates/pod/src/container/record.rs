//! A container's record and the truth about its state.
//!
//! `<root>/containers/<id>/`:
//! - `container.json` — what `create` was asked (the run options, image,
//!   name, restart policy), written by the CLI (write + rename).
//! - `monitor.json` — what the monitor saw (status, pid, exit code, times,
//!   restarts), written only by the monitor (write + rename).
//! - `lock` — the owner lock: held by whoever sets the container up and
//!   then by its monitor, for as long as the container has resources
//!   (mounts, netns, processes). Free means nobody looks after it.
//! - `active` — present from setup until cleanup: with a free lock it marks
//!   a container whose monitor (or setup) was killed, or whose host
//!   rebooted; the next command cleans it up and records the truth.
//! - `stopped` — the user stopped it (`stop`/`kill`): no restart.
//! - `ctr.log[.N]` — its output, in the CRI log format.
//! - `health.json` — the health check's state and last results, written
//!   only by the monitor (write + rename).
//!
//! `<root>/names/<name>` is a symlink to the ID: `symlink(2)` fails if the
//! name is taken, so claiming a name is atomic without any global lock.
//!
//! Why files and flocks rather than SQLite: every container is independent
//! (no cross-container transaction exists), so per-container files need no
//! global write lock and two `wharf` processes never wait for each other
//! unless they touch the same container; `kill -9` at any instant leaves
//! either the old or the new file (rename is atomic) and a lock the kernel
//! releases; and the monitor, which must stay tiny, writes its one file
//! without a database library. `ps -a` with 100 containers reads 200 small
//! files (see `bench/engine.sh`).

use crate::error::{Error, Result};
use crate::run::RunOptions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const RECORD: &str = "container.json";
pub const MONITOR: &str = "monitor.json";
pub const ACTIVE: &str = "active";
pub const STOPPED: &str = "stopped";
pub const LOG: &str = "ctr.log";

/// `container.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The store's index entry (manifest) digest: what `start` mounts again.
    pub image_digest: String,
    /// The image ID (config digest).
    pub image_id: String,
    pub options: RunOptions,
    /// The process the container runs (entrypoint + cmd), for `ps`/`inspect`.
    #[serde(default)]
    pub command: Vec<String>,
    /// Anonymous volumes made at the first start: (target, volume name).
    #[serde(default)]
    pub anonymous_volumes: Vec<(String, String)>,
    /// The health check the monitor runs (image's merged with the flags).
    #[serde(default)]
    pub healthcheck: Option<crate::health::Healthcheck>,
}

/// `monitor.json`, as the monitor writes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MonitorState {
    pub status: String,
    pub pid: i32,
    pub monitor_pid: i32,
    pub started_at: String,
    pub finished_at: String,
    pub exit_code: i32,
    pub restart_count: u32,
    /// While restarting: the back-off delay of this restart, in ms.
    #[serde(default)]
    pub back_off_ms: u64,
    #[serde(default)]
    pub error: String,
    #[serde(default, rename = "OOMKilled")]
    pub oom_killed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        })
    }
}

/// A container as commands see it: the record and its state, derived from
/// the monitor's file and whether anyone holds the owner lock.
#[derive(Debug, Clone)]
pub struct Container {
    pub record: Record,
    pub state: MonitorState,
    pub status: Status,
    /// Its resources are held by a live monitor or setup.
    pub owned: bool,
    pub dir: PathBuf,
}

impl Container {
    pub fn id(&self) -> &str {
        &self.record.id
    }
    pub fn name(&self) -> &str {
        &self.record.name
    }
    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused | Status::Restarting)
    }
    /// The CRI-format log: the kubelet's path, else `ctr.log` here.
    pub fn log_path(&self) -> PathBuf {
        match self.record.options.kubelet.as_ref().and_then(|k| k.log_path.clone()) {
            Some(p) => p,
            None => self.dir.join(LOG),
        }
    }
}

pub(crate) fn io(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::io(format!("{what} {}", p.display()), e)
}

/// Writes `bytes` to `path` through a temp file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(".{}.tmp", path.file_name().unwrap_or_default().to_string_lossy()));
    std::fs::write(&tmp, bytes).map_err(|e| io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("rename", path, e))
}

pub(crate) fn save_record(dir: &Path, r: &Record) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(r).map_err(|e| Error::InvalidArgument(format!("record: {e}")))?;
    write_atomic(&dir.join(RECORD), &bytes)
}

pub(crate) fn load_record(dir: &Path) -> Result<Record> {
    let p = dir.join(RECORD);
    let bytes = std::fs::read(&p).map_err(|e| io("read", &p, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::InvalidArgument(format!("{}: {e}", p.display())))
}

pub(crate) fn load_monitor_state(dir: &Path) -> Option<MonitorState> {
    std::fs::read(dir.join(MONITOR)).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

pub(crate) fn save_monitor_state(dir: &Path, s: &MonitorState) -> Result<()> {
    let bytes = serde_json::to_vec(s).map_err(|e| Error::InvalidArgument(format!("state: {e}")))?;
    write_atomic(&dir.join(MONITOR), &bytes)
}

/// `<dir>/lock` (made if missing) locked exclusively, without waiting;
/// None if someone holds it.
pub(crate) fn try_owner_lock(dir: &Path) -> Result<Option<std::fs::File>> {
    let p = dir.join("lock");
    let f =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&p).map_err(|e| io("open", &p, e))?;
    // A reader's passing shared lock (`ps`, the CRI stats) is waited out.
    match crate::flock::try_exclusive(&f, &p) {
        Ok(true) => Ok(Some(f)),
        Ok(false) => Ok(None),
        Err(e) => Err(io("lock", &p, e)),
    }
}

/// Whether someone holds `<dir>/lock` (a shared try-lock, released at once).
pub(crate) fn lock_held(dir: &Path) -> bool {
    crate::flock::held(&dir.join("lock"))
}

/// The record and the true state of the container in `dir`.
pub(crate) fn load(dir: &Path) -> Result<Container> {
    let record = load_record(dir)?;
    let owned = lock_held(dir);
    let state = load_monitor_state(dir).unwrap_or_default();
    let status = match state.status.as_str() {
        _ if !owned && dir.join(ACTIVE).exists() && state.status != "exited" => {
            // Its monitor died (or the host rebooted): nothing runs it any more.
            Status::Exited
        }
        "" | "created" => Status::Created,
        "running" if owned && dir.join("paused").exists() => Status::Paused,
        "running" if owned => Status::Running,
        "restarting" if owned => Status::Restarting,
        "exited" => Status::Exited,
        _ => Status::Exited,
    };
    Ok(Container { record, state, status, owned, dir: dir.to_path_buf() })
}

/// The name of `<root>/names/<name>`.
pub(crate) fn name_link(root: &Path, name: &str) -> PathBuf {
    crate::names::CONTAINERS.link(root, name)
}

/// Claims `name` for `id`; Docker's conflict message when it is taken.
pub(crate) fn claim_name(root: &Path, name: &str, id: &str) -> Result<()> {
    crate::names::CONTAINERS.claim(root, name, id)
}

/// Removes the names whose container dir is gone (a `create` or `rm`
/// killed between the name and the dir).
pub(crate) fn sweep_names(root: &Path) {
    crate::names::CONTAINERS.sweep(root)
}

/// Releases `name` if it is still `id`'s.
pub(crate) fn release_name(root: &Path, name: &str, id: &str) {
    crate::names::CONTAINERS.release(root, name, id)
}

/// Docker's characters, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; one character is
/// enough, as podman's rule has it (Docker wants two).
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

const ADJECTIVES: [&str; 24] = [
    "admiring",
    "brave",
    "calm",
    "clever",
    "dazzling",
    "eager",
    "fervent",
    "gallant",
    "happy",
    "jolly",
    "keen",
    "lucid",
    "modest",
    "nifty",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "tender",
    "upbeat",
    "vibrant",
    "wizardly",
    "zealous",
];
const NAMES: [&str; 24] = [
    "albattani",
    "babbage",
    "curie",
    "darwin",
    "euclid",
    "fermi",
    "galileo",
    "hopper",
    "johnson",
    "kepler",
    "lovelace",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "tesla",
    "turing",
    "villani",
    "wozniak",
    "yalow",
    "zhukovsky",
    "hypatia",
];

/// Docker-style `adjective_name`, with a number once those run short.
pub(crate) fn random_name(attempt: u32) -> String {
    let mut b = [0u8; 4];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    let n = u32::from_le_bytes(b);
    let base = format!("{}_{}", ADJECTIVES[n as usize % 24], NAMES[(n >> 8) as usize % 24]);
    if attempt < 5 {
        base
    } else {
        format!("{base}{}", n % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // Broke: the CRI stats sampler's (or `ps`'s) passing shared try-lock
    // made `start`'s owner try-lock fail (EWOULDBLOCK): a stopped container
    // taken for a running one.
    #[test]
    fn a_readers_passing_lock_does_not_fail_the_owner_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("lock");
        std::fs::write(&p, b"").unwrap();
        let reader = std::fs::File::open(&p).unwrap();
        rustix::fs::flock(&reader, rustix::fs::FlockOperation::NonBlockingLockShared).unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(reader);
        });
        let owner = try_owner_lock(tmp.path()).unwrap();
        t.join().unwrap();
        assert!(owner.is_some(), "a reader's shared lock was taken for an owner");
        assert!(lock_held(tmp.path()));
        assert!(try_owner_lock(tmp.path()).unwrap().is_none(), "the owner's lock is refused");
        let nets = tmp.path().join("net.lock");
        std::fs::write(&nets, b"").unwrap();
        let _reader = std::fs::File::open(&nets).unwrap();
        rustix::fs::flock(&_reader, rustix::fs::FlockOperation::NonBlockingLockShared).unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(_reader);
        });
        assert!(crate::network::lock_file(&nets, false).is_ok(), "the same for a network lock");
        t.join().unwrap();
    }
}
