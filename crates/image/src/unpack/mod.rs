//! Applying a layer tar into a snapshot directory, safely.
//!
//! Layer tars are untrusted. Each entry's path is cleaned against `/` and
//! resolved inside the snapshot with `openat2(RESOLVE_IN_ROOT)` (see
//! [`fsops`]), so `..`, absolute paths, symlinks pointing anywhere, hardlinks
//! to outside names and whiteouts of `..` all land inside the snapshot — as
//! the container would see them — or fail with an error naming the entry.
//! OCI whiteouts become overlayfs whiteouts (0/0 char devices, opaque xattr).

mod fsops;

use crate::compression::{self, Compression};
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use fsops::{clean, join};
use rustix::fs::{self as rfs, FileType};
use rustix::io::Errno;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use tar::EntryType;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What applying a layer found.
#[derive(Debug, Clone)]
pub struct Applied {
    /// sha256 of the uncompressed tar stream: the layer's diffID.
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    pub compression: Compression,
}

/// Applies the (possibly compressed) layer tar `r` into the existing directory `root`.
pub fn apply_layer(r: impl Read, root: &Path) -> Result<Applied> {
    let (compression, dec) = compression::decompress(r)?;
    let mut hashing = HashingReader::new(dec);
    let root_fd: OwnedFd = File::open(root).ctx("open snapshot", root)?.into();
    let mut ap = Applier::new(root_fd);
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive.entries().map_err(|e| Error::malformed("layer tar", e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::malformed("layer tar", e))?;
            ap.apply(&mut entry)?;
        }
    }
    let (diff_id, uncompressed_size) = hashing.finish().map_err(|e| Error::malformed("layer stream", e))?;
    ap.finish();
    Ok(Applied { diff_id, uncompressed_size, compression })
}

/// Creates directory `path` (and missing parents, mode 0755) inside `root`,
/// resolving symlinks as the container would: never outside `root`.
pub fn ensure_dir_in_root(root: &Path, path: &str) -> Result<()> {
    let root_fd: OwnedFd = File::open(root).ctx("open rootfs", root)?.into();
    let comps = clean(path.as_bytes());
    fsops::ensure_dir_in(&root_fd, &comps)
        .map(|_| ())
        .map_err(|e| Error::LayerEntryIo { entry: path.to_string(), source: e.into() })
}

/// Removes a directory tree without following symlinks.
pub fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Metadata of one entry, with PAX overrides applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Applier {
    root: OwnedFd,
    can_chown: bool,
    /// Directories whose mtime is set last: adding children changes it.
    dir_times: Vec<(Vec<u8>, i64)>,
    /// The last parent directory opened, for runs of regular files in one dir.
    parent_cache: Option<(Vec<u8>, OwnedFd)>,
    buf: Vec<u8>,
}

impl Applier {
    fn new(root: OwnedFd) -> Self {
        Applier {
            root,
            can_chown: rustix::process::geteuid().is_root(),
            dir_times: Vec::new(),
            parent_cache: None,
            buf: vec![0; 256 * 1024],
        }
    }

    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let meta = read_meta(entry).map_err(|e| Error::LayerEntryIo { entry: name.clone(), source: e })?;
        let comps = clean(&raw);
        if !matches!(kind, EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse) {
            self.parent_cache = None;
        }
        let Some((base, parent)) = comps.split_last() else {
            return self.apply_root(kind, &meta, &name);
        };
        let io = |e: Errno| Error::LayerEntryIo { entry: name.clone(), source: e.into() };
        if base.starts_with(WHITEOUT_PREFIX) {
            self.parent_cache = None;
            return self.whiteout(parent, base, &name);
        }
        let dir = self.parent(parent).map_err(|e| match e {
            Errno::NOENT | Errno::EXIST => entry_err(&name, "its parent directory goes through a dangling symlink"),
            Errno::NOTDIR => entry_err(&name, "its parent is not a directory"),
            e => io(e),
        })?;
        match kind {
            EntryType::Directory => self.directory(&dir, &comps, &meta).map_err(io),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => self
                .regular(&dir, base, &meta, entry)
                .map_err(|e| Error::LayerEntryIo { entry: name.clone(), source: e }),
            EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| entry_err(&name, "symlink without a target"))?;
                self.replace(&dir, base).map_err(io)?;
                fsops::symlink(&target, &dir, base).map_err(io)?;
                self.own_and_time(&dir, base, &meta, false).map_err(io)
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| entry_err(&name, "hard link without a target"))?;
                self.hardlink(&dir, base, &target, &name)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (ft, dev) = match kind {
                    EntryType::Char => (FileType::CharacterDevice, device(entry.header())),
                    EntryType::Block => (FileType::BlockDevice, device(entry.header())),
                    _ => (FileType::Fifo, 0),
                };
                self.replace(&dir, base).map_err(io)?;
                fsops::mknod(&dir, base, ft, meta.mode, dev).map_err(io)?;
                self.own_and_time(&dir, base, &meta, true).map_err(io)
            }
            other => Err(entry_err(&name, &format!("unsupported tar entry type {other:?}"))),
        }
    }

    fn parent(&mut self, comps: &[&[u8]]) -> Result<OwnedFd, Errno> {
        let key = join(comps);
        if let Some((k, fd)) = &self.parent_cache {
            if *k == key {
                return fd.try_clone().map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO));
            }
        }
        let fd = fsops::ensure_dir_in(&self.root, comps)?;
        self.parent_cache = Some((key, fd.try_clone().map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?));
        Ok(fd)
    }

    /// Clears the way for a non-directory entry: whatever is there goes.
    fn replace(&mut self, dir: &OwnedFd, base: &[u8]) -> Result<(), Errno> {
        if fsops::lstat_type(dir, base)? == Some(FileType::Directory) {
            self.parent_cache = None;
        }
        fsops::remove_at(dir, base)
    }

    fn apply_root(&mut self, kind: EntryType, meta: &Meta, name: &str) -> Result<()> {
        if kind != EntryType::Directory {
            return Err(entry_err(name, "only a directory may name the root"));
        }
        let io = |e: Errno| Error::LayerEntryIo { entry: name.to_string(), source: e.into() };
        let fd = fsops::open_dir_in(&self.root, &[]).map_err(io)?;
        self.set_fd_meta(&fd, meta).map_err(io)?;
        self.dir_times.push((Vec::new(), meta.mtime));
        Ok(())
    }

    fn directory(&mut self, dir: &OwnedFd, comps: &[&[u8]], meta: &Meta) -> Result<(), Errno> {
        let base = comps[comps.len() - 1];
        match fsops::lstat_type(dir, base)? {
            Some(FileType::Directory) => {}
            Some(_) => {
                fsops::remove_at(dir, base)?;
                fsops::mkdir(dir, base, 0o700)?;
            }
            None => fsops::mkdir(dir, base, 0o700)?,
        }
        let fd = fsops::open_child_dir(dir, base)?;
        self.set_fd_meta(&fd, meta)?;
        self.dir_times.push((join(comps), meta.mtime));
        Ok(())
    }

    fn regular<R: Read>(&mut self, dir: &OwnedFd, base: &[u8], meta: &Meta, data: &mut R) -> std::io::Result<()> {
        self.replace(dir, base)?;
        let fd = fsops::create_file(dir, base)?;
        let mut f = File::from(fd);
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            f.write_all(&self.buf[..n])?;
        }
        self.set_fd_meta(&f, meta)?;
        rfs::futimens(&f, &fsops::times(meta.mtime))?;
        Ok(())
    }

    fn hardlink(&mut self, dir: &OwnedFd, base: &[u8], target: &[u8], name: &str) -> Result<()> {
        let io = |e: Errno| Error::LayerEntryIo { entry: name.to_string(), source: e.into() };
        let tcomps = clean(target);
        let Some((tbase, tparent)) = tcomps.split_last() else {
            return Err(entry_err(name, "hard link to the root directory"));
        };
        let tdir = fsops::open_dir_in(&self.root, tparent)
            .map_err(|e| entry_err(name, &format!("hard link target {:?}: {e}", String::from_utf8_lossy(target))))?;
        if fsops::lstat_type(&tdir, tbase).map_err(io)?.is_none() {
            return Err(entry_err(
                name,
                &format!("hard link target {:?} does not exist in the layer", String::from_utf8_lossy(target)),
            ));
        }
        self.replace(dir, base).map_err(io)?;
        fsops::hardlink(&tdir, tbase, dir, base).map_err(io)
    }

    fn whiteout(&mut self, parent: &[&[u8]], base: &[u8], name: &str) -> Result<()> {
        let io = |e: Errno| Error::LayerEntryIo { entry: name.to_string(), source: e.into() };
        let dir = fsops::ensure_dir_in(&self.root, parent).map_err(|e| match e {
            Errno::NOENT | Errno::EXIST => entry_err(name, "its parent directory goes through a dangling symlink"),
            e => io(e),
        })?;
        if base == OPAQUE_WHITEOUT {
            return fsops::set_xattr(&dir, OVERLAY_OPAQUE_XATTR, b"y").map_err(io);
        }
        let hidden = &base[WHITEOUT_PREFIX.len()..];
        if hidden.starts_with(WHITEOUT_PREFIX) {
            return Ok(()); // other AUFS metadata (.wh..wh.plnk, ...): not content
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(entry_err(name, "whiteout names no file"));
        }
        fsops::remove_at(&dir, hidden).map_err(io)?;
        fsops::mknod(&dir, hidden, FileType::CharacterDevice, 0, 0).map_err(io)
    }

    fn set_fd_meta(&self, fd: impl AsFd, meta: &Meta) -> Result<(), Errno> {
        if self.can_chown {
            rfs::fchown(fd.as_fd(), Some(rfs::Uid::from_raw(meta.uid)), Some(rfs::Gid::from_raw(meta.gid)))?;
        }
        rfs::fchmod(fd.as_fd(), rfs::Mode::from_raw_mode(meta.mode & 0o7777))?;
        for (k, v) in &meta.xattrs {
            fsops::set_xattr(fd.as_fd(), k, v)?;
        }
        Ok(())
    }

    fn own_and_time(&self, dir: &OwnedFd, base: &[u8], meta: &Meta, chmod: bool) -> Result<(), Errno> {
        if self.can_chown {
            fsops::chown_at(dir, base, meta.uid, meta.gid)?;
        }
        if chmod {
            fsops::chmod_at(dir, base, meta.mode)?;
        }
        fsops::set_times_at(dir, base, meta.mtime)
    }

    /// Sets directory mtimes, deepest last-written first; failures only lose a timestamp.
    fn finish(&mut self) {
        for (path, mtime) in self.dir_times.iter().rev() {
            let comps = clean(path);
            if let Ok(fd) = fsops::open_dir_in(&self.root, &comps) {
                let _ = rfs::futimens(&fd, &fsops::times(*mtime));
            }
        }
    }
}

fn entry_err(name: &str, reason: &str) -> Error {
    Error::LayerEntry { entry: name.to_string(), reason: reason.to_string() }
}

fn device(h: &tar::Header) -> u64 {
    let major = h.device_major().ok().flatten().unwrap_or(0);
    let minor = h.device_minor().ok().flatten().unwrap_or(0);
    rfs::makedev(major, minor)
}

/// xattrs a layer may carry. Others (trusted.overlay.* above all) could make
/// overlayfs redirect lookups outside the layer, so they are dropped.
fn xattr_allowed(name: &str) -> bool {
    name.starts_with("user.") || name == "security.capability"
}

fn read_meta<R: Read>(entry: &mut tar::Entry<R>) -> std::io::Result<Meta> {
    let h = entry.header();
    let mut meta = Meta {
        mode: h.mode()?,
        uid: h.uid()? as u32,
        gid: h.gid()? as u32,
        mtime: h.mtime()? as i64,
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            let num = || ext.value().ok().and_then(|v| v.split('.').next().and_then(|s| s.parse::<i64>().ok()));
            match key {
                "uid" => meta.uid = num().unwrap_or(meta.uid as i64) as u32,
                "gid" => meta.gid = num().unwrap_or(meta.gid as i64) as u32,
                "mtime" => meta.mtime = num().unwrap_or(meta.mtime),
                k => {
                    if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                        if xattr_allowed(x) {
                            meta.xattrs.push((x.to_string(), ext.value_bytes().to_vec()));
                        }
                    }
                }
            }
        }
    }
    Ok(meta)
}
