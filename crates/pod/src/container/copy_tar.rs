//! `cp`'s tar streams: a tree written from directory descriptors, and an
//! archive extracted under a root descriptor, never following a symlink
//! out of that root (see the parent module).

use super::resolve;
use crate::error::{Error, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// Who owns what an extraction makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The archive's uid/gid (when running as root).
    Keep,
    /// This uid/gid.
    Set(u32, u32),
    /// Whoever runs the copy.
    Caller,
}

fn err(what: &str, p: &str, e: rustix::io::Errno) -> Error {
    Error::io(format!("{what} {p}"), e.into())
}

fn tar_err(what: &str, e: std::io::Error) -> Error {
    Error::io(what.to_string(), e)
}

fn header_for(st: &Stat, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(size);
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        let _ = h.set_device_major(rustix::fs::major(st.st_rdev));
        let _ = h.set_device_minor(rustix::fs::minor(st.st_rdev));
    }
    h
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Writes the tree at `src` (an `O_PATH` descriptor) as a tar stream whose
/// top entry is named `top` ("" = a directory's contents only).
pub(super) fn write_tree(src: &OwnedFd, top: &str, w: &mut dyn Write) -> Result<()> {
    let mut b = tar::Builder::new(w);
    let st = rustix::fs::fstat(src).map_err(|e| err("stat", top, e))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            let dir = rustix::fs::openat(src, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| err("open", top, e))?;
            if !top.is_empty() {
                let mut h = header_for(&st, tar::EntryType::Directory, 0);
                b.append_data(&mut h, format!("{top}/"), std::io::empty()).map_err(|e| tar_err("write archive", e))?;
            }
            write_dir(&mut b, &dir, top)?;
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(src, "", Vec::new()).map_err(|e| err("readlink", top, e))?;
            let mut h = header_for(&st, tar::EntryType::Symlink, 0);
            b.append_link(&mut h, top, OsStr::from_bytes(target.as_bytes()))
                .map_err(|e| tar_err("write archive", e))?;
        }
        FileType::RegularFile => {
            // Our own O_PATH descriptor, reopened for reading through procfs.
            let f = std::fs::File::open(format!("/proc/self/fd/{}", src.as_raw_fd()))
                .map_err(|e| Error::io(format!("open {top}"), e))?;
            append_file(&mut b, f, top)?;
        }
        _ => append_special(&mut b, &st, top)?,
    }
    b.finish().map_err(|e| tar_err("write archive", e))
}

fn append_file(b: &mut tar::Builder<&mut dyn Write>, f: std::fs::File, name: &str) -> Result<()> {
    let st = rustix::fs::fstat(&f).map_err(|e| err("stat", name, e))?;
    let size = st.st_size.max(0) as u64;
    let mut h = header_for(&st, tar::EntryType::Regular, size);
    // A file that shrinks meanwhile is padded: the header promised `size`.
    let data = f.take(size).chain(std::io::repeat(0)).take(size);
    b.append_data(&mut h, name, data).map_err(|e| tar_err("write archive", e))
}

fn append_special(b: &mut tar::Builder<&mut dyn Write>, st: &Stat, name: &str) -> Result<()> {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::CharacterDevice => tar::EntryType::Char,
        FileType::BlockDevice => tar::EntryType::Block,
        FileType::Fifo => tar::EntryType::Fifo,
        _ => return Ok(()), // sockets and the like: Docker skips them too
    };
    let mut h = header_for(st, kind, 0);
    b.append_data(&mut h, name, std::io::empty()).map_err(|e| tar_err("write archive", e))
}

fn write_dir(b: &mut tar::Builder<&mut dyn Write>, dir: &OwnedFd, prefix: &str) -> Result<()> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    for e in rustix::fs::Dir::read_from(dir).map_err(|e| err("read dir", prefix, e))? {
        let e = e.map_err(|e| err("read dir", prefix, e))?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    for n in names {
        let name = OsStr::from_bytes(&n);
        let path = join(prefix, &name.to_string_lossy());
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => continue, // removed meanwhile
            Err(e) => return Err(err("stat", &path, e)),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let child = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| err("open", &path, e))?;
                let mut h = header_for(&st, tar::EntryType::Directory, 0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty()).map_err(|e| tar_err("write archive", e))?;
                write_dir(b, &child, &path)?;
            }
            FileType::RegularFile => {
                let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
                let f = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| err("open", &path, e))?;
                append_file(b, std::fs::File::from(f), &path)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new()).map_err(|e| err("readlink", &path, e))?;
                let mut h = header_for(&st, tar::EntryType::Symlink, 0);
                b.append_link(&mut h, &path, OsStr::from_bytes(target.as_bytes()))
                    .map_err(|e| tar_err("write archive", e))?;
            }
            _ => append_special(b, &st, &path)?,
        }
    }
    Ok(())
}

/// The archive path `p` as clean relative components; `..` is refused.
fn clean(p: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::InvalidArgument(format!(
                    "invalid archive path {}: it leaves the destination",
                    p.display()
                )))
            }
        }
    }
    Ok(out)
}

/// `dir` under `root`, made (0755) where missing; an `O_PATH` descriptor.
pub(super) fn mkdir_all(root: &OwnedFd, dir: &str) -> Result<OwnedFd> {
    match resolve(root, dir, true) {
        Ok(fd) => return Ok(fd),
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(err("resolve", dir, e)),
    }
    let (parent, name) = dir.trim_end_matches('/').rsplit_once('/').unwrap_or(("", dir));
    let pfd = mkdir_all(root, if parent.is_empty() { "/" } else { parent })?;
    match rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(err("mkdir", dir, e)),
    }
    resolve(root, dir, true).map_err(|e| err("resolve", dir, e))
}

/// Removes what is at `name` in `dir` unless it is a directory; Err if it
/// is one and `dir_ok` is false. Ok(true) when a directory stays.
fn clear(dir: &OwnedFd, name: &str, dir_ok: bool, path: &str) -> Result<bool> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => Ok(false),
        Err(e) => Err(err("stat", path, e)),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            if dir_ok {
                Ok(true)
            } else {
                Err(Error::InvalidArgument(format!("cannot overwrite directory {path} with non-directory")))
            }
        }
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map(|()| false).map_err(|e| err("remove", path, e)),
    }
}

/// Extracts the archive `r` into `dest` under `root`.
pub(super) fn extract(root: &OwnedFd, dest: &str, r: &mut dyn Read, owner: Owner) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries().map_err(|e| tar_err("read archive", e))? {
        let mut entry = entry.map_err(|e| tar_err("read archive", e))?;
        let rel = clean(&entry.path().map_err(|e| tar_err("read archive", e))?)?;
        let Some((name, parents)) = rel.split_last() else { continue };
        let parent = format!("{}/{}", dest.trim_end_matches('/'), parents.join("/"));
        let path = format!("{parent}/{name}");
        let pfd = mkdir_all(root, &parent)?;
        let h = entry.header().clone();
        let mode = Mode::from_raw_mode(h.mode().unwrap_or(0o644) & 0o7777);
        let ids = match owner {
            Owner::Keep if is_root => Some((h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32)),
            Owner::Set(u, g) if is_root => Some((u, g)),
            _ => None,
        };
        let chown = |fd: BorrowedFd<'_>| match ids {
            Some((u, g)) => {
                rustix::fs::fchown(fd, Some(rustix::fs::Uid::from_raw(u)), Some(rustix::fs::Gid::from_raw(g)))
                    .map_err(|e| err("chown", &path, e))
            }
            None => Ok(()),
        };
        let mtime = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec { tv_sec: h.mtime().unwrap_or(0) as i64, tv_nsec: 0 },
            last_modification: rustix::fs::Timespec { tv_sec: h.mtime().unwrap_or(0) as i64, tv_nsec: 0 },
        };
        let kind = h.entry_type();
        match kind {
            tar::EntryType::Directory => {
                if !clear(&pfd, name, true, &path)? {
                    rustix::fs::mkdirat(&pfd, name.as_str(), Mode::from_raw_mode(0o700))
                        .map_err(|e| err("mkdir", &path, e))?;
                }
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let d =
                    rustix::fs::openat(&pfd, name.as_str(), flags, Mode::empty()).map_err(|e| err("open", &path, e))?;
                chown(d.as_fd())?;
                rustix::fs::fchmod(&d, mode).map_err(|e| err("chmod", &path, e))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                clear(&pfd, name, false, &path)?;
                let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(&pfd, name.as_str(), flags, Mode::from_raw_mode(0o600))
                    .map_err(|e| err("create", &path, e))?;
                let mut f = std::fs::File::from(fd);
                std::io::copy(&mut entry, &mut f).map_err(|e| Error::io(format!("write {path}"), e))?;
                chown(f.as_fd())?;
                rustix::fs::fchmod(&f, mode).map_err(|e| err("chmod", &path, e))?;
                rustix::fs::futimens(&f, &mtime).map_err(|e| err("utimes", &path, e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name().map_err(|e| tar_err("read archive", e))?.unwrap_or_default();
                clear(&pfd, name, false, &path)?;
                rustix::fs::symlinkat(target.as_os_str(), &pfd, name.as_str()).map_err(|e| err("symlink", &path, e))?;
                if let Some((u, g)) = ids {
                    rustix::fs::chownat(
                        &pfd,
                        name.as_str(),
                        Some(rustix::fs::Uid::from_raw(u)),
                        Some(rustix::fs::Gid::from_raw(g)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| err("chown", &path, e))?;
                }
            }
            tar::EntryType::Link => {
                let target = entry.link_name().map_err(|e| tar_err("read archive", e))?.unwrap_or_default();
                let t = format!("{}/{}", dest.trim_end_matches('/'), clean(&target)?.join("/"));
                let tfd = resolve(root, &t, false).map_err(|e| err("resolve", &t, e))?;
                clear(&pfd, name, false, &path)?;
                rustix::fs::linkat(&tfd, "", &pfd, name.as_str(), AtFlags::EMPTY_PATH)
                    .map_err(|e| err("link", &path, e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                clear(&pfd, name, false, &path)?;
                let (ft, dev) = match kind {
                    tar::EntryType::Char => (FileType::CharacterDevice, dev(&h)),
                    tar::EntryType::Block => (FileType::BlockDevice, dev(&h)),
                    _ => (FileType::Fifo, 0),
                };
                rustix::fs::mknodat(&pfd, name.as_str(), ft, mode, dev).map_err(|e| err("mknod", &path, e))?;
                if let Some((u, g)) = ids {
                    rustix::fs::chownat(
                        &pfd,
                        name.as_str(),
                        Some(rustix::fs::Uid::from_raw(u)),
                        Some(rustix::fs::Gid::from_raw(g)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| err("chown", &path, e))?;
                }
            }
            _ => {} // pax/GNU headers are read by the tar crate; others are ignored
        }
    }
    Ok(())
}

fn dev(h: &tar::Header) -> rustix::fs::Dev {
    let major = h.device_major().ok().flatten().unwrap_or(0);
    let minor = h.device_minor().ok().flatten().unwrap_or(0);
    rustix::fs::makedev(major, minor)
}
