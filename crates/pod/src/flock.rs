//! Exclusive try-locks that tell an owner from a passing reader.
//!
//! Readers (`ps`, `pod ls`, the CRI daemon's stats sampler every second)
//! ask whether a lock is held with a shared try-lock they drop at once. A
//! command's exclusive try-lock in that instant got EWOULDBLOCK and took
//! the reader for an owner: `start` saw a running container, `pod start` a
//! live infra that never came, a sweep a live attachment. So on
//! EWOULDBLOCK [`try_exclusive`] asks again with a shared try-lock on a
//! second open file: granted means no exclusive owner holds it, only
//! readers, and the exclusive try is made again after a pause (for
//! [`READERS_MAX`] at most); refused means an owner holds it: `false` at once.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long readers alone may keep a lock from a command before it gives up.
const READERS_MAX: Duration = Duration::from_secs(2);

/// `fd` (an open file of `path`) locked exclusively; `false` if an
/// exclusive owner holds it. Readers' shared locks are waited out.
pub(crate) fn try_exclusive(fd: impl AsFd, path: &Path) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    let deadline = Instant::now() + READERS_MAX;
    loop {
        match flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK) => {}
            Err(e) => return Err(e.into()),
        }
        if shared_granted(path) != Some(true) || Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Whether a shared lock of `path` is granted now (dropped at once): no
/// exclusive owner holds it. `None`: no such file.
fn shared_granted(path: &Path) -> Option<bool> {
    use rustix::fs::{flock, FlockOperation, Mode, OFlags};
    let probe = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    Some(flock(&probe, FlockOperation::NonBlockingLockShared).is_ok())
}

/// Whether an exclusive owner holds `path` (a shared try-lock, released
/// at once): what readers ask. A missing file is not held.
pub(crate) fn held(path: &Path) -> bool {
    shared_granted(path) == Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_is_refused_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("lock");
        let f = std::fs::File::create(&p).unwrap();
        assert!(try_exclusive(&f, &p).unwrap());
        let other = std::fs::File::open(&p).unwrap();
        let start = Instant::now();
        assert!(!try_exclusive(&other, &p).unwrap());
        assert!(start.elapsed() < READERS_MAX / 4, "no wait for an owner");
        assert!(held(&p));
        drop(f);
        assert!(!held(&p));
        assert!(!held(&tmp.path().join("none")));
    }
}
