//! Advisory file locks (flock) that order concurrent `wharf` processes.
//!
//! `index.lock` serialises read-modify-write of `index.json`. `gc.lock` is
//! held shared by anything that adds content (so prune never deletes a blob
//! that a running import has written but not yet referenced) and exclusive by
//! prune. Temp files and temp snapshot dirs are flocked by their writer, so a
//! cleaner can tell a crashed writer's leftovers from live ones.

use crate::error::{IoContext, Result};
use rustix::fs::{flock, FlockOperation};
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// A held flock; released when dropped (the fd closes).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    pub fn exclusive(path: &Path) -> Result<Self> {
        Self::take(path, FlockOperation::LockExclusive)
    }
    pub fn shared(path: &Path) -> Result<Self> {
        Self::take(path, FlockOperation::LockShared)
    }
    /// The exclusive lock if it is free right now.
    pub fn try_exclusive(path: &Path) -> Result<Option<Self>> {
        match Self::take(path, FlockOperation::NonBlockingLockExclusive) {
            Ok(l) => Ok(Some(l)),
            Err(crate::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn take(path: &Path, op: FlockOperation) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .ctx("open lock file", path)?;
        flock(file.as_fd(), op).ctx("lock", path)?;
        Ok(FileLock { _file: file })
    }
}

/// A writer's lock on its temp file or dir: waits (a moment) if a cleaner
/// is looking at it, so the writer always ends up holding it.
pub(crate) fn hold(fd: impl AsFd) {
    let _ = flock(fd.as_fd(), FlockOperation::LockExclusive);
}

/// True when nobody holds a lock on the file or dir; takes none.
pub(crate) fn is_free(fd: impl AsFd) -> bool {
    let free = flock(fd.as_fd(), FlockOperation::NonBlockingLockShared).is_ok();
    if free {
        let _ = flock(fd.as_fd(), FlockOperation::Unlock);
    }
    free
}

/// Locks an already-open file or directory exclusively, without waiting.
pub(crate) fn try_lock(fd: impl AsFd) -> bool {
    flock(fd.as_fd(), FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// The lock file inside an [`OwnedDir`].
pub const OWNER_LOCK: &str = "lock";
/// Prefix of an [`OwnedDir`] being made or removed (renamed out of place):
/// `.tmp-<pid>-<name>`, left alone while that pid lives.
const TMP_PREFIX: &str = ".tmp-";
/// How old a `.tmp-<pid>-` dir with a free lock must be to be dead when its
/// pid names a live process (a reused pid): its maker died between `mkdir`
/// and `flock` (a few syscalls), or while removing it.
const TMP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A directory whose owner holds `<dir>/lock` for as long as it works in it
/// (a build's work dir, a foreground container's dir). The lock dies with
/// its holder, so a later process that can take it knows the owner is dead
/// (unlike a pid in the name, which the kernel reuses).
#[derive(Debug)]
pub struct OwnedDir {
    path: PathBuf,
    _lock: File,
}

impl OwnedDir {
    /// Makes `<parent>/<name>/` with its lock already held: it is made as
    /// `.tmp-<pid>-<name>`, locked, then renamed, so a dir under its own name has
    /// a free lock only when its owner is dead. The fd is O_CLOEXEC, so
    /// container processes forked and exec'd from the owner do not hold it.
    pub fn create(parent: &Path, name: &str) -> Result<Self> {
        std::fs::create_dir_all(parent).ctx("create", parent)?;
        let tmp = parent.join(format!("{TMP_PREFIX}{}-{name}", std::process::id()));
        let path = parent.join(name);
        std::fs::create_dir(&tmp).ctx("create", &tmp)?;
        let made = (|| {
            let lock = tmp.join(OWNER_LOCK);
            let file = OpenOptions::new().create_new(true).write(true).open(&lock).ctx("create", &lock)?;
            flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive).ctx("lock", &lock)?;
            std::fs::rename(&tmp, &path).ctx("rename into", &path)?;
            Ok(file)
        })();
        match made {
            Ok(file) => Ok(OwnedDir { path, _lock: file }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmounts `<dir>/merged` if mounted and removes the dir, still locked.
    pub fn remove(self) -> Result<()> {
        retire(&self.path)
    }
}

/// Renames `path` out of sight (`.tmp-<our pid>-<name>`), so that no
/// sweeper takes it for dead while its files (the lock among them) go,
/// then unmounts its `merged` and removes it.
fn retire(path: &Path) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.strip_prefix(TMP_PREFIX).and_then(|r| r.split_once('-')).map_or(name.as_str(), |(_, n)| n);
    let gone = path.with_file_name(format!("{TMP_PREFIX}{}-{name}", std::process::id()));
    match std::fs::rename(path, &gone) {
        Ok(()) => crate::Rootfs::remove(&gone),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        // Renamed already (a `.tmp-` dir): remove it where it is.
        Err(_) => crate::Rootfs::remove(path),
    }
}

/// A directory under a parent of [`OwnedDir`]s whose owner is dead, locked
/// by us while we clean it up.
#[derive(Debug)]
pub struct Leftover {
    pub path: PathBuf,
    /// The dir's name (for a `.tmp-` dir, without the prefix).
    pub name: String,
    _lock: File,
}

impl Leftover {
    /// Unmounts `<dir>/merged` if mounted and removes the dir (the caller
    /// has undone any other mount in it).
    pub fn remove(&self) -> Result<()> {
        retire(&self.path)
    }
}

/// The directories directly under `parent`; none if it does not exist.
fn subdirs(parent: &Path) -> Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(parent) {
        Ok(rd) => Ok(rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(crate::Error::io("list", parent, e)),
    }
}

/// Every dir under `parent` whose owner died, each locked by us (a
/// concurrent sweeper skips it). With nothing to find this is one readdir
/// plus one `flock` per live dir.
pub fn leftovers(parent: &Path) -> Result<Vec<Leftover>> {
    let mut out = Vec::new();
    for ent in subdirs(parent)? {
        let file_name = ent.file_name().to_string_lossy().into_owned();
        let path = ent.path();
        let fresh = file_name.starts_with(TMP_PREFIX);
        let name = match file_name.strip_prefix(TMP_PREFIX) {
            Some(rest) => rest.split_once('-').map_or(rest, |(_, n)| n).to_string(),
            None => file_name.clone(),
        };
        if fresh && !maker_gone(&path) {
            continue; // being made or removed by a live process
        }
        // Created if missing (a dir made before locks), so that two
        // sweepers still take turns.
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(path.join(OWNER_LOCK));
        let lock = match lock {
            Ok(f) if try_lock(&f) => f,
            _ => continue, // its owner lives (or the dir is not ours to judge)
        };
        if !path.join(OWNER_LOCK).exists() {
            continue; // removed meanwhile, by its owner or another sweeper
        }
        out.push(Leftover { path, name, _lock: lock });
    }
    Ok(out)
}

/// The dirs [`leftovers`] would return, without locking or changing
/// anything (for `system check`).
pub fn dead_dirs(parent: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for ent in subdirs(parent)? {
        let path = ent.path();
        if ent.file_name().to_string_lossy().starts_with(TMP_PREFIX) && !maker_gone(&path) {
            continue;
        }
        let free = match File::open(path.join(OWNER_LOCK)) {
            // A shared lock, only to test: released as `f` closes.
            Ok(f) => flock(f.as_fd(), FlockOperation::NonBlockingLockShared).is_ok(),
            Err(_) => true,
        };
        if free {
            out.push(path);
        }
    }
    Ok(out)
}

/// Whether the maker of the `.tmp-<pid>-…` dir `path` (being made, or
/// being removed) is dead: its pid is gone, or (the pid reused by another
/// process) its lock file is there and it is older than [`TMP_GRACE`]. A
/// live remover may have unlinked the lock file already: then the pid decides.
fn maker_gone(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let pid = name.strip_prefix(TMP_PREFIX).and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok());
    if pid.is_none_or(|p| !Path::new(&format!("/proc/{p}")).exists()) {
        return true;
    }
    let young = std::time::SystemTime::now() - TMP_GRACE;
    path.join(OWNER_LOCK).exists()
        && std::fs::symlink_metadata(path).and_then(|m| m.modified()).is_ok_and(|t| t < young)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owned_dir_is_a_leftover_only_once_its_lock_is_free() {
        let t = tempfile::tempdir().unwrap();
        let owned = OwnedDir::create(t.path(), "a").unwrap();
        assert_eq!(owned.path(), t.path().join("a"));
        assert!(leftovers(t.path()).unwrap().is_empty());
        assert!(dead_dirs(t.path()).unwrap().is_empty());
        drop(owned); // as if its owner died: the dir stays, the lock goes
        assert_eq!(dead_dirs(t.path()).unwrap(), vec![t.path().join("a")]);
        let found = leftovers(t.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "a");
        // A second sweeper skips what the first is cleaning.
        assert!(leftovers(t.path()).unwrap().is_empty());
        found[0].remove().unwrap();
        assert!(!t.path().join("a").exists());
    }

    #[test]
    fn a_half_made_dir_of_a_dead_maker_is_a_leftover() {
        let t = tempfile::tempdir().unwrap();
        // pid 0 never names a live process: /proc/0 does not exist.
        std::fs::create_dir(t.path().join(".tmp-0-x")).unwrap();
        let live = t.path().join(format!(".tmp-{}-y", std::process::id()));
        std::fs::create_dir(&live).unwrap();
        let found = leftovers(t.path()).unwrap();
        assert_eq!(found.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["x"]);
    }
}
