//! Named network namespaces: an nsfs file bind-mounted on
//! `<run-root>/netns/<id>` (as podman and `ip netns` do), made before the
//! container so CNI can configure it before `start`, and passed to the
//! runtime as the spec's network namespace path.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub(crate) fn path(run_root: &Path, id: &str) -> PathBuf {
    run_root.join("netns").join(id)
}

/// A new network namespace, `lo` up, pinned at `path`.
pub(crate) fn create(path: &Path) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io(format!("create {}", d.display()), e))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
    let target = path.to_path_buf();
    // unshare changes only the calling thread: do it in a thread of its own,
    // which ends with the namespace held by the bind mount alone.
    let res = std::thread::spawn(move || -> std::io::Result<()> {
        // SAFETY: NEWNET touches no state this process shares between threads.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }?;
        crate::net::lo_up_here()?;
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &target)?;
        Ok(())
    })
    .join()
    .map_err(|_| Error::io("create a network namespace", std::io::Error::other("thread panicked")))?;
    if let Err(e) = res {
        let _ = std::fs::remove_file(path);
        return Err(Error::io(format!("create network namespace {}", path.display()), e));
    }
    Ok(())
}

/// Unpins and removes `path`; one that is already gone is fine.
pub(crate) fn remove(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(()); // never made (or gone): nothing to unmount
    }
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(Error::io(format!("unmount {}", path.display()), e.into())),
    }
    crate::network::remove_file(path)
}
