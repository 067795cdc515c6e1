//! fd-relative filesystem operations confined to one root directory.
//!
//! Every path of a layer entry is resolved with `openat2(RESOLVE_IN_ROOT)`:
//! `..` and symlinks (absolute or relative, chained) resolve as they would
//! inside a container whose `/` is the snapshot, so nothing outside it is
//! ever reached. The last component is then acted on with `*at` calls that
//! do not follow it.

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);

/// Path components after lexical cleaning against `/`: `.` and empty parts
/// vanish, `..` pops (and stays at the root), as `filepath.Join("/", p)` does.
pub fn clean(path: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

pub fn join(comps: &[&[u8]]) -> Vec<u8> {
    let mut p = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            p.push(b'/');
        }
        p.extend_from_slice(c);
    }
    if p.is_empty() {
        p.push(b'.');
    }
    p
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// Opens the directory at `comps` inside `root`, following symlinks as the container would.
pub fn open_dir_in(root: impl AsFd, comps: &[&[u8]]) -> Result<OwnedFd, Errno> {
    let path = join(comps);
    loop {
        match rfs::openat2(root.as_fd(), os(&path), DIR_FLAGS, Mode::empty(), RESOLVE) {
            Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

/// Like [`open_dir_in`], creating missing directories (mode 0755) on the way.
pub fn ensure_dir_in(root: impl AsFd, comps: &[&[u8]]) -> Result<OwnedFd, Errno> {
    match open_dir_in(root.as_fd(), comps) {
        Err(Errno::NOENT) => {}
        r => return r,
    }
    let mut cur = open_dir_in(root.as_fd(), &[])?;
    for i in 0..comps.len() {
        match open_dir_in(root.as_fd(), &comps[..=i]) {
            Ok(fd) => cur = fd,
            Err(Errno::NOENT) => {
                match rfs::mkdirat(&cur, os(comps[i]), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
                cur = open_dir_in(root.as_fd(), &comps[..=i])?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cur)
}

/// The type of `name` in `dir`, not following a symlink; `None` if absent.
pub fn lstat_type(dir: impl AsFd, name: &[u8]) -> Result<Option<rfs::FileType>, Errno> {
    match rfs::statat(dir, os(name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(rfs::FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes `name` in `dir` whatever it is; a directory goes with its contents.
/// Never follows a symlink.
pub fn remove_at(dir: impl AsFd, name: &[u8]) -> Result<(), Errno> {
    match lstat_type(dir.as_fd(), name)? {
        None => Ok(()),
        Some(rfs::FileType::Directory) => remove_dir_at(dir.as_fd(), name),
        Some(_) => rfs::unlinkat(dir, os(name), AtFlags::empty()),
    }
}

fn remove_dir_at(parent: impl AsFd, name: &[u8]) -> Result<(), Errno> {
    let fd = rfs::openat(parent.as_fd(), os(name), DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())?;
    let mut children: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut dir = rfs::Dir::read_from(&fd)?;
    while let Some(ent) = dir.read() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        children.push((n.to_vec(), ent.file_type() == rfs::FileType::Directory));
    }
    for (n, is_dir) in children {
        if is_dir {
            remove_dir_at(&fd, &n)?;
        } else {
            rfs::unlinkat(&fd, os(&n), AtFlags::empty())?;
        }
    }
    rfs::unlinkat(parent, os(name), AtFlags::REMOVEDIR)
}

pub fn create_file(dir: impl AsFd, name: &[u8]) -> Result<OwnedFd, Errno> {
    rfs::openat(
        dir,
        os(name),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
}

pub fn mkdir(dir: impl AsFd, name: &[u8], mode: u32) -> Result<(), Errno> {
    rfs::mkdirat(dir, os(name), Mode::from_raw_mode(mode & 0o7777))
}

pub fn open_child_dir(dir: impl AsFd, name: &[u8]) -> Result<OwnedFd, Errno> {
    rfs::openat(dir, os(name), DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
}

pub fn symlink(target: &[u8], dir: impl AsFd, name: &[u8]) -> Result<(), Errno> {
    rfs::symlinkat(os(target), dir, os(name))
}

/// Hard-links `old_name` in `old_dir` (not following it, like tar) to `name` in `dir`.
pub fn hardlink(old_dir: impl AsFd, old_name: &[u8], dir: impl AsFd, name: &[u8]) -> Result<(), Errno> {
    rfs::linkat(old_dir, os(old_name), dir, os(name), AtFlags::empty())
}

pub fn mknod(dir: impl AsFd, name: &[u8], ft: rfs::FileType, mode: u32, dev: u64) -> Result<(), Errno> {
    rfs::mknodat(dir, os(name), ft, Mode::from_raw_mode(mode & 0o7777), dev)
}

pub fn chown_at(dir: impl AsFd, name: &[u8], uid: u32, gid: u32) -> Result<(), Errno> {
    rfs::chownat(dir, os(name), Some(rfs::Uid::from_raw(uid)), Some(rfs::Gid::from_raw(gid)), AtFlags::SYMLINK_NOFOLLOW)
}

pub fn chmod_at(dir: impl AsFd, name: &[u8], mode: u32) -> Result<(), Errno> {
    rfs::chmodat(dir, os(name), Mode::from_raw_mode(mode & 0o7777), AtFlags::empty())
}

pub fn times(secs: i64) -> rfs::Timestamps {
    let t = rfs::Timespec { tv_sec: secs, tv_nsec: 0 };
    rfs::Timestamps { last_access: t, last_modification: t }
}

pub fn set_times_at(dir: impl AsFd, name: &[u8], secs: i64) -> Result<(), Errno> {
    rfs::utimensat(dir, os(name), &times(secs), AtFlags::SYMLINK_NOFOLLOW)
}

pub fn set_xattr(fd: impl AsFd, name: &str, value: &[u8]) -> Result<(), Errno> {
    rfs::fsetxattr(fd, name, value, rfs::XattrFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn clean_stays_at_root() {
        let j = |p: &str| {
            clean(p.as_bytes()).iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("/")
        };
        assert_eq!(j("../../etc/passwd"), "etc/passwd");
        assert_eq!(j("/abs/./x/../y"), "abs/y");
        assert_eq!(j("./"), "");
        assert_eq!(j("a//b/"), "a/b");
    }
}
