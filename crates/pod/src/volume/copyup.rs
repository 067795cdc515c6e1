//! Docker's copy-up: an empty volume mounted where the image has content
//! gets a copy of it (owners, modes, xattrs, times, symlinks, hardlinks and
//! special files kept) before the container starts. The source directory is
//! resolved inside the container's rootfs with `openat2(RESOLVE_IN_ROOT)`,
//! so an image symlink cannot point the copy at the host.

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timestamps, CWD};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The directory `target` of `rootfs`, opened inside it; None when it does
/// not exist or is not a directory.
pub(super) fn open_in_root(rootfs: &Path, target: &str) -> io::Result<Option<OwnedFd>> {
    let root = rustix::fs::open(rootfs, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let rel = target.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(&root, rel, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), how) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Copies the contents of the directory `src` into the empty `dst` and gives
/// `dst` the owner and mode of `src`. Returns the number of entries copied.
pub(super) fn copy_up(src: &OwnedFd, dst: &Path) -> io::Result<usize> {
    // "/." so that l*-calls on it reach the directory, not the fd's magic link.
    let src = PathBuf::from(format!("/proc/self/fd/{}/.", src.as_raw_fd()));
    let mut links = HashMap::new();
    let n = copy_dir(&src, dst, &mut links)?;
    let md = fs::symlink_metadata(&src)?;
    copy_meta(&src, dst, &md)?;
    Ok(n)
}

fn copy_dir(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<usize> {
    let mut n = 0;
    for e in fs::read_dir(src)? {
        let e = e?;
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let md = fs::symlink_metadata(&s)?;
        let ft = md.file_type();
        n += 1;
        if !ft.is_dir() && md.nlink() > 1 {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                fs::hard_link(first, &d)?;
                continue;
            }
            links.insert((md.dev(), md.ino()), d.clone());
        }
        if ft.is_dir() {
            fs::create_dir(&d)?;
            n += copy_dir(&s, &d, links)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&s)?, &d)?;
        } else if ft.is_file() {
            fs::copy(&s, &d)?;
        } else {
            let kind = FileType::from_raw_mode(md.mode());
            rustix::fs::mknodat(CWD, &d, kind, Mode::from_raw_mode(md.mode() & 0o7777), md.rdev())?;
        }
        copy_meta(&s, &d, &md)?;
    }
    Ok(n)
}

/// Owner, then mode (chown clears set-id bits), xattrs, then times.
fn copy_meta(src: &Path, dst: &Path, md: &fs::Metadata) -> io::Result<()> {
    rustix::fs::chownat(
        CWD,
        dst,
        Some(rustix::fs::Uid::from_raw(md.uid())),
        Some(rustix::fs::Gid::from_raw(md.gid())),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    let symlink = md.file_type().is_symlink();
    if !symlink {
        rustix::fs::chmod(dst, Mode::from_raw_mode(md.mode() & 0o7777))?;
    }
    copy_xattrs(src, dst)?;
    let ts = |s: i64, ns: i64| rustix::fs::Timespec { tv_sec: s, tv_nsec: ns as _ };
    let times =
        Timestamps { last_access: ts(md.atime(), md.atime_nsec()), last_modification: ts(md.mtime(), md.mtime_nsec()) };
    rustix::fs::utimensat(CWD, dst, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    let mut names = vec![0u8; 4096];
    let len = match rustix::fs::llistxattr(src, &mut names) {
        Ok(l) => l,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(rustix::io::Errno::RANGE) => {
            names.resize(65536, 0);
            rustix::fs::llistxattr(src, &mut names)?
        }
        Err(e) => return Err(e.into()),
    };
    let mut value = vec![0u8; 65536];
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
        let vlen = match rustix::fs::lgetxattr(src, name, &mut value) {
            Ok(l) => l,
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        match rustix::fs::lsetxattr(dst, name, &value[..vlen], rustix::fs::XattrFlags::empty()) {
            // A filesystem without that namespace (e.g. trusted.* on tmpfs as non-root): skip, as cp -a does.
            Ok(()) | Err(rustix::io::Errno::NOTSUP) | Err(rustix::io::Errno::PERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Bytes of the regular files under `dir` (each inode once); 0 if unreadable.
pub(super) fn tree_size(dir: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        let Ok(rd) = fs::read_dir(p) else { return 0 };
        let mut total = 0;
        for e in rd.flatten() {
            let Ok(md) = fs::symlink_metadata(e.path()) else { continue };
            if md.is_dir() {
                total += walk(&e.path(), seen);
            } else if md.is_file() && seen.insert((md.dev(), md.ino())) {
                total += md.len();
            }
        }
        total
    }
    walk(dir, &mut Default::default())
}
