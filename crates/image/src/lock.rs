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
use std::path::Path;

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

/// Locks an already-open file or directory exclusively, without waiting.
pub(crate) fn try_lock(fd: impl AsFd) -> bool {
    flock(fd.as_fd(), FlockOperation::NonBlockingLockExclusive).is_ok()
}
