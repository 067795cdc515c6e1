//! cgroup drivers behind one trait: v1 (also used on hybrid hosts), v2, and
//! systemd (`--systemd-cgroup`: a transient scope whose directories the v1/v2
//! code then fills in).
//!
//! Detection happens at run time from the filesystem type of /sys/fs/cgroup
//! and /proc/self/mountinfo; nothing about the host is assumed.

mod dbus;
mod devfilter;
pub mod runc_stats;
mod systemd;
mod v1;
mod v2;

pub use systemd::SystemdUnit;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only v1 hierarchies.
    V1,
    /// One unified v2 hierarchy.
    V2,
    /// v1 hierarchies plus a v2 mount (usually /sys/fs/cgroup/unified).
    Hybrid,
}

/// Detects the host's cgroup layout.
pub fn detect() -> Mode {
    let root = Path::new(CGROUP_ROOT);
    if crate::sys::fs_magic(root).ok() == Some(CGROUP2_SUPER_MAGIC) {
        return Mode::V2;
    }
    if crate::sys::fs_magic(&root.join("unified")).ok() == Some(CGROUP2_SUPER_MAGIC) {
        return Mode::Hybrid;
    }
    Mode::V1
}

/// Usage figures for one container, for `events --stats` and the CRI.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub memory_usage: u64,
    /// `None` when unlimited.
    pub memory_limit: Option<u64>,
    pub memory_max_usage: u64,
    /// How many times the kernel OOM killer fired in this cgroup.
    pub oom_kills: u64,
    /// Total CPU time in nanoseconds.
    pub cpu_usage_ns: u64,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
}

/// What a container's cgroup driver must do; one implementation per cgroup version.
pub trait CgroupManager {
    /// Moves `pid` into the container's cgroup(s). Slow (an RCU grace period
    /// per call, see [`Placement`]); container processes join via `placement`.
    fn add_task(&self, pid: i32) -> Result<()>;
    /// Writes the resource limits; also used by `update`.
    fn apply(&self, resources: &LinuxResources) -> Result<()>;
    /// Freezes (`true`) or thaws every process of the container.
    fn set_frozen(&self, frozen: bool) -> Result<()>;
    fn is_frozen(&self) -> bool;
    /// Every pid in the container's cgroup.
    fn pids(&self) -> Result<Vec<i32>>;
    fn stats(&self) -> Result<Stats>;
    /// Kills what is left and removes every directory this container created.
    fn destroy(&self) -> Result<()>;
    /// The persistent description stored in state.json.
    fn record(&self) -> &CgroupRecord;
    /// How a forked process puts itself and its children into the cgroup.
    fn placement(&self) -> Result<Placement>;
    /// Called once the container's first process exists: a driver that had
    /// to put the runtime itself into the cgroup (systemd) takes it out.
    fn leave(&self) -> Result<()> {
        Ok(())
    }
}

/// Joining a cgroup cheaply. Moving *another* process into a cgroup takes the
/// kernel's global threadgroup lock, which waits for an RCU grace period
/// (~10 ms here). A single-threaded process moving *itself* through v1
/// `tasks` skips that lock, and clone3(CLONE_INTO_CGROUP) on v2 never takes
/// it; so the forked process joins by itself.
#[derive(Debug)]
pub struct Placement {
    /// v1 `tasks` files to write "0" (= the calling thread) into.
    pub(crate) v1_tasks: Vec<PathBuf>,
    /// The v2 cgroup directory for CLONE_INTO_CGROUP.
    pub(crate) v2_dir: Option<std::os::fd::OwnedFd>,
}

impl Placement {
    fn new(v1_dirs: Vec<&Path>, v2: Option<&Path>) -> Result<Placement> {
        let v2_dir = match v2 {
            Some(d) => Some(fs::File::open(d).map(std::os::fd::OwnedFd::from).map_err(|e| Error::cgroup(d, e))?),
            None => None,
        };
        Ok(Placement { v1_tasks: v1_dirs.into_iter().map(|d| d.join("tasks")).collect(), v2_dir })
    }

    /// Joins v1 and v2 by moving ourselves; for when CLONE_INTO_CGROUP cannot
    /// be used later (inside the container's cgroup or user namespace).
    pub(crate) fn join_all_self(&self) -> Result<()> {
        self.join_v1_self()?;
        if let Some(d) = &self.v2_dir {
            let p = crate::sys::fd_path(d).join("cgroup.procs");
            fs::write(&p, "0").map_err(|e| Error::cgroup(p, e))?;
        }
        Ok(())
    }

    /// Run in the forked single-threaded process: join every v1 hierarchy.
    pub(crate) fn join_v1_self(&self) -> Result<()> {
        for t in &self.v1_tasks {
            fs::write(t, "0").map_err(|e| Error::cgroup(t, e))?;
        }
        Ok(())
    }
}

/// Where a container's cgroups live; stored in state.json so later verbs
/// find them without re-deriving anything from the spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupRecord {
    pub mode: Mode,
    /// (controller, directory) for v1; ("", directory) for the v2 hierarchy.
    pub paths: Vec<(String, PathBuf)>,
    /// Directories created by us, parents first; removed in reverse on delete.
    pub created: Vec<PathBuf>,
    /// Set when the systemd driver made the cgroup (a scope unit); absent
    /// in records of the cgroupfs drivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<SystemdUnit>,
}

/// Opens the manager for a stored record.
pub fn from_record(rec: CgroupRecord) -> Box<dyn CgroupManager> {
    if rec.systemd.is_some() {
        return Box::new(systemd::Systemd::from_record(rec));
    }
    match rec.mode {
        Mode::V2 => Box::new(v2::V2::from_record(rec)),
        Mode::V1 | Mode::Hybrid => Box::new(v1::V1::from_record(rec)),
    }
}

/// Creates the cgroup directories for a new container; with `systemd`, as a
/// transient scope unit of the running systemd.
pub fn create(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<Box<dyn CgroupManager>> {
    if systemd {
        return Ok(Box::new(systemd::Systemd::create(cgroups_path, id)?));
    }
    let mode = detect();
    let rel = relative_path(cgroups_path, id, mode)?;
    match mode {
        Mode::V2 => Ok(Box::new(v2::V2::create(Path::new(CGROUP_ROOT), &rel)?)),
        Mode::V1 | Mode::Hybrid => Ok(Box::new(v1::V1::create(mode, &rel)?)),
    }
}

/// The record of a cgroup that already exists at `cgroups_path` (an
/// absolute path, as a pod's parent cgroup), for reading its figures;
/// nothing is created. `None` when no hierarchy has the directory.
pub fn existing(cgroups_path: &Path) -> Option<CgroupRecord> {
    let mode = detect();
    let rel = relative_path(Some(cgroups_path), "", mode).ok()?;
    let mut paths: Vec<(String, PathBuf)> = match mode {
        Mode::V2 => vec![(String::new(), Path::new(CGROUP_ROOT).join(&rel))],
        Mode::V1 | Mode::Hybrid => v1::hierarchies().ok()?.into_iter().map(|(c, m)| (c, m.join(&rel))).collect(),
    };
    if mode == Mode::Hybrid {
        paths.push((String::new(), Path::new(CGROUP_ROOT).join("unified").join(&rel)));
    }
    paths.retain(|(_, d)| d.is_dir());
    (!paths.is_empty()).then_some(CgroupRecord { mode, paths, created: Vec::new(), systemd: None })
}

/// The container's cgroup path relative to each hierarchy root.
/// Absolute `cgroupsPath` is taken from the root; a relative one is placed
/// under the runtime's own cgroup (runc does the same); none means `/<id>`.
fn relative_path(cgroups_path: Option<&Path>, id: &str, mode: Mode) -> Result<PathBuf> {
    let p = match cgroups_path {
        None => return Ok(PathBuf::from(id)),
        Some(p) => p,
    };
    if p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(Error::InvalidArgument(format!("cgroupsPath {} must not contain '..'", p.display())));
    }
    if p.is_absolute() {
        return Ok(p.strip_prefix("/").unwrap_or(p).to_path_buf());
    }
    // Relative: under our own cgroup. On v1 hierarchies differ per controller,
    // but using the v2 / first entry keeps one path for all.
    let own = own_cgroup(mode).unwrap_or_default();
    Ok(Path::new(own.trim_start_matches('/')).join(p))
}

fn own_cgroup(mode: Mode) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    let want_v2 = mode == Mode::V2;
    text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        let is_v2 = ctrls.is_empty();
        (is_v2 == want_v2 && !ctrls.starts_with("name=")).then(|| path.to_string())
    })
}

pub(crate) fn write_file(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    fs::write(&p, value).map_err(|e| Error::cgroup(p, e))
}

pub(crate) fn read_file(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    fs::read_to_string(&p).map_err(|e| Error::cgroup(p, e))
}

fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
}

fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    Ok(read_file(dir, "cgroup.procs")?.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Kills what is left in a container's cgroups and removes them (and their
/// parents, when empty), knowing only its `cgroupsPath`: for a container
/// whose creator was killed before its state was written.
pub fn remove_leftover(cgroups_path: Option<&Path>, id: &str) -> Result<()> {
    let mode = detect();
    let rel = relative_path(cgroups_path, id, mode)?;
    let mut bases: Vec<PathBuf> = match mode {
        Mode::V2 => vec![PathBuf::from(CGROUP_ROOT)],
        Mode::V1 | Mode::Hybrid => v1::hierarchies()?.into_iter().map(|(_, m)| m).collect(),
    };
    if mode == Mode::Hybrid {
        bases.push(Path::new(CGROUP_ROOT).join("unified"));
    }
    let leaves: Vec<PathBuf> = bases.iter().map(|b| b.join(&rel)).filter(|d| d.is_dir()).collect();
    let dirs: Vec<&Path> = leaves.iter().map(PathBuf::as_path).collect();
    kill_and_remove(&dirs, &leaves)?;
    // Parents may be shared with live containers (EBUSY on v2, ENOTEMPTY on v1).
    for leaf in &leaves {
        for parent in leaf.ancestors().skip(1).take(rel.components().count().saturating_sub(1)) {
            if fs::remove_dir(parent).is_err() {
                break;
            }
        }
    }
    Ok(())
}

/// mkdir -p that records which directories it made.
fn mkdir_recorded(base: &Path, rel: &Path, created: &mut Vec<PathBuf>) -> Result<PathBuf> {
    let mut cur = base.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match fs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::cgroup(cur, e)),
        }
    }
    Ok(cur)
}

/// Kills every process in `dirs` and removes `created` in reverse order.
fn kill_and_remove(procs_dirs: &[&Path], created: &[PathBuf]) -> Result<()> {
    for attempt in 0..200 {
        let mut any = false;
        for d in procs_dirs {
            for pid in read_procs(d).unwrap_or_default() {
                any = true;
                // SAFETY: signalling a pid from our own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if !any {
            break;
        }
        if attempt == 199 {
            return Err(Error::cgroup(procs_dirs[0], io::Error::other("processes did not exit after SIGKILL")));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for d in created.iter().rev() {
        // A parent (not one of the container's own directories) may be
        // shared with another container.
        rmdir_retry(d, !procs_dirs.contains(&d.as_path()))?;
    }
    Ok(())
}

fn rmdir_retry(d: &Path, shared: bool) -> Result<()> {
    // Exiting tasks can keep a cgroup busy for a moment after they are reaped.
    for _ in 0..100 {
        match fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // cgroupfs says EBUSY, not ENOTEMPTY, for a parent that still
            // has children (another container's, in a shared slice).
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && shared && has_child_dir(d) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(5)),
            // A parent shared with another container.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => return Ok(()),
            Err(e) => return Err(Error::cgroup(d, e)),
        }
    }
    Err(Error::cgroup(d, io::Error::from_raw_os_error(libc::EBUSY)))
}

fn has_child_dir(d: &Path) -> bool {
    fs::read_dir(d).is_ok_and(|rd| rd.flatten().any(|e| e.file_type().is_ok_and(|t| t.is_dir())))
}

/// Device rules every container needs, as runc's default allow list.
pub(crate) fn default_device_rules() -> Vec<(char, i64, i64, &'static str)> {
    vec![
        // mknod of any node is allowed (as runc and Docker do); reading and
        // writing it is what the rules control.
        ('c', -1, -1, "m"),
        ('b', -1, -1, "m"),
        ('c', 1, 3, "rwm"),    // null
        ('c', 1, 5, "rwm"),    // zero
        ('c', 1, 7, "rwm"),    // full
        ('c', 5, 0, "rwm"),    // tty
        ('c', 1, 9, "rwm"),    // urandom
        ('c', 1, 8, "rwm"),    // random
        ('c', 136, -1, "rwm"), // pts/*
        ('c', 5, 2, "rwm"),    // ptmx
        ('c', 10, 200, "rwm"), // net/tun
    ]
}

/// cpu.shares (v1) → cpu.weight (v2), the conversion runc and crun use.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// blkio.weight (10..1000) → io.weight (1..10000).
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w).clamp(10, 1000) - 10) * 9999 / 990
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_shares_like_runc() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    #[test]
    fn rejects_parent_dir_in_path() {
        assert!(relative_path(Some(Path::new("/a/../b")), "x", Mode::V1).is_err());
        assert_eq!(relative_path(Some(Path::new("/a/b")), "x", Mode::V1).unwrap(), PathBuf::from("a/b"));
        assert_eq!(relative_path(None, "x", Mode::V1).unwrap(), PathBuf::from("x"));
    }
}
