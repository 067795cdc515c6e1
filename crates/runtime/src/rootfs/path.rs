//! Paths inside the container's rootfs, resolved by the kernel with the
//! rootfs as `/` (openat2 RESOLVE_IN_ROOT): a symlink in the image can only
//! ever point somewhere else inside the image, never at the host.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::sys::open_in_root;

/// An open rootfs directory.
pub(crate) struct RootDir {
    fd: OwnedFd,
    dev_ino: (u64, u64),
}

/// Lexically cleans `p` as if it were absolute: `..` cannot climb above `/`.
pub(crate) fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn dev_ino(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd).map_err(io::Error::from)?;
    Ok((st.st_dev, st.st_ino))
}

impl RootDir {
    pub(crate) fn open(path: &Path) -> io::Result<RootDir> {
        let fd: OwnedFd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
        let dev_ino = dev_ino(&fd)?;
        Ok(RootDir { fd, dev_ino })
    }

    /// O_PATH descriptor of an existing path inside the root.
    pub(crate) fn resolve(&self, p: &Path) -> io::Result<OwnedFd> {
        open_in_root(self.fd.as_raw_fd(), &clean(p), libc::O_PATH)
    }

    /// True if `fd` is the root directory itself.
    pub(crate) fn is_root(&self, fd: &OwnedFd) -> bool {
        dev_ino(fd).ok() == Some(self.dev_ino)
    }

    /// mkdir -p inside the root; returns an O_PATH fd of the last directory.
    pub(crate) fn mkdir_all(&self, p: &Path, mode: u32) -> io::Result<OwnedFd> {
        let p = clean(p);
        let mut parent = self.resolve(Path::new("/"))?;
        let mut prefix = PathBuf::from("/");
        for c in p.components().skip(1) {
            let name = c.as_os_str();
            prefix.push(name);
            parent = match self.resolve(&prefix) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    mkdirat(&parent, name, mode)?;
                    self.resolve(&prefix)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(parent)
    }

    /// Creates an empty file (a bind mount target) and its parents.
    pub(crate) fn create_file(&self, p: &Path) -> io::Result<OwnedFd> {
        let p = clean(p);
        if let Ok(fd) = self.resolve(&p) {
            return Ok(fd);
        }
        let parent = self.mkdir_all(p.parent().unwrap_or(Path::new("/")), 0o755)?;
        let name = p.file_name().unwrap_or(OsStr::new("."));
        let dir = reopen_dir(&parent)?;
        let f: OwnedFd = nix::fcntl::openat(
            &dir,
            name,
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )?;
        drop(f);
        self.resolve(&p)
    }
}

/// Turns an O_PATH directory fd into one usable with *at() syscalls that write.
pub(crate) fn reopen_dir(fd: &OwnedFd) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(
        &crate::sys::fd_path(fd),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

fn mkdirat(parent: &OwnedFd, name: &OsStr, mode: u32) -> io::Result<()> {
    let dir = reopen_dir(parent)?;
    match nix::sys::stat::mkdirat(&dir, name, Mode::from_bits_truncate(mode)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether a host path is a directory; bind sources decide the target kind.
pub(crate) fn host_is_dir(p: &Path) -> io::Result<bool> {
    Ok(std::fs::metadata(p)?.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_never_climbs_above_root() {
        assert_eq!(clean(Path::new("../../etc")), PathBuf::from("/etc"));
        assert_eq!(clean(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
