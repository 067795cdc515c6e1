//! One tar entry at a time, normalised: the deterministic tar writer.

use super::{LayerError, Result, TarOptions};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Char,
    Block,
}

/// What a tar header says about a file, before mtime clamping.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub kind: Kind,
    /// Permission bits with setuid/setgid/sticky (07777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub rdev: u64,
    pub link: Option<Vec<u8>>,
    /// (dev, ino) when the file has other hard links.
    pub hardlink_key: Option<(u64, u64)>,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    /// A directory that no file stands for (a created parent of a COPY destination).
    pub fn dir(mode: u32, uid: u32, gid: u32, mtime: i64) -> Self {
        Meta {
            kind: Kind::Dir,
            mode,
            uid,
            gid,
            mtime,
            size: 0,
            rdev: 0,
            link: None,
            hardlink_key: None,
            xattrs: Vec::new(),
        }
    }

    /// Reads `path`'s lstat result. `None` for sockets, which a tar cannot hold.
    pub fn from_metadata(path: &Path, md: &Metadata) -> Result<Option<Self>> {
        let ft = md.file_type();
        let kind = if ft.is_file() {
            Kind::File
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_char_device() {
            Kind::Char
        } else if ft.is_block_device() {
            Kind::Block
        } else {
            return Ok(None);
        };
        let link = match kind {
            Kind::Symlink => Some(
                std::fs::read_link(path).map_err(LayerError::io("readlink", path))?.as_os_str().as_bytes().to_vec(),
            ),
            _ => None,
        };
        let hardlink_key = (kind != Kind::Dir && md.nlink() > 1).then(|| (md.dev(), md.ino()));
        Ok(Some(Meta {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            size: if kind == Kind::File { md.len() } else { 0 },
            rdev: md.rdev(),
            link,
            hardlink_key,
            xattrs: read_xattrs(path)?,
        }))
    }
}

/// xattrs a layer keeps: `user.*` and file capabilities. `trusted.overlay.*`
/// would let a layer redirect overlayfs lookups, and the rest is host policy.
pub(crate) fn xattr_kept(name: &str) -> bool {
    name.starts_with("user.") || name == "security.capability"
}

/// The kept xattrs of `path` (not followed), sorted by name.
pub(crate) fn read_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in list_xattrs(path)? {
        if !xattr_kept(&name) {
            continue;
        }
        if let Some(v) = get_xattr(path, &name)? {
            out.push((name, v));
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn list_xattrs(path: &Path) -> Result<Vec<String>> {
    let mut buf = vec![0u8; 1024];
    loop {
        match rustix::fs::llistxattr(path, &mut buf[..]) {
            Ok(n) => {
                return Ok(buf[..n]
                    .split(|&b| b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect())
            }
            Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            // Symlinks on some filesystems, or xattrs disabled: nothing to keep.
            Err(rustix::io::Errno::NOTSUP) | Err(rustix::io::Errno::PERM) => return Ok(Vec::new()),
            Err(e) => return Err(LayerError::io("list xattrs of", path)(e.into())),
        }
        if buf.len() > 1 << 20 {
            return Err(LayerError::io("list xattrs of", path)(io::Error::other("xattr list too large")));
        }
    }
}

pub(crate) fn get_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => return Ok(Some(buf[..n].to_vec())),
            Err(rustix::io::Errno::RANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(LayerError::io("read xattr of", path)(e.into())),
        }
    }
}

/// Where an entry's content comes from.
pub(crate) enum Content<'a> {
    None,
    Path(&'a Path),
}

/// Writes normalised tar entries; hard links to a file already written become link entries.
pub(crate) struct TarWriter<'a> {
    out: &'a mut dyn Write,
    opts: TarOptions,
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
}

const BLOCK: usize = 512;
const USTAR_MAX_ID: u64 = 0o7777777;
const USTAR_MAX_NUM: u64 = 0o77777777777;

impl<'a> TarWriter<'a> {
    pub fn new(out: &'a mut dyn Write, opts: &TarOptions) -> Self {
        TarWriter { out, opts: opts.clone(), links: HashMap::new(), buf: vec![0; 128 * 1024] }
    }

    /// Writes one entry named `name` (relative, no trailing '/'; one is added for directories).
    pub fn entry(&mut self, name: &[u8], meta: &Meta, content: Content<'_>) -> Result<()> {
        let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
        if base.starts_with(b".wh.") {
            // Any layer reader would take it for a deletion of a lower file.
            return Err(LayerError::Unsupported {
                path: String::from_utf8_lossy(name).into_owned().into(),
                reason: "a file name starting with \".wh.\" cannot be stored in a layer: OCI reserves it for whiteouts"
                    .into(),
            });
        }
        let mut name = name.to_vec();
        if meta.kind == Kind::Dir {
            name.push(b'/');
        }
        if let Some(key) = meta.hardlink_key {
            if let Some(first) = self.links.get(&key).cloned() {
                return self.header(&name, meta, tar::EntryType::Link, Some(&first), 0);
            }
            self.links.insert(key, name.clone());
        }
        let kind = match meta.kind {
            Kind::File => tar::EntryType::Regular,
            Kind::Dir => tar::EntryType::Directory,
            Kind::Symlink => tar::EntryType::Symlink,
            Kind::Fifo => tar::EntryType::Fifo,
            Kind::Char => tar::EntryType::Char,
            Kind::Block => tar::EntryType::Block,
        };
        let size = if meta.kind == Kind::File { meta.size } else { 0 };
        self.header(&name, meta, kind, meta.link.as_deref(), size)?;
        if let (Kind::File, Content::Path(p)) = (meta.kind, content) {
            self.data(p, size)?;
        } else if size > 0 {
            return Err(LayerError::Unsupported {
                path: String::from_utf8_lossy(&name).into_owned().into(),
                reason: "a file entry without content".into(),
            });
        }
        Ok(())
    }

    /// An empty regular file: OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`).
    pub fn marker(&mut self, name: &[u8], like: &Meta) -> Result<()> {
        let mut meta = like.clone();
        meta.kind = Kind::File;
        meta.mode &= 0o777;
        meta.size = 0;
        meta.xattrs.clear();
        self.header(name, &meta, tar::EntryType::Regular, None, 0)
    }

    /// The end-of-archive marker: two zero blocks, as Go's archive/tar writes.
    pub fn finish(self) -> Result<()> {
        self.out.write_all(&[0u8; BLOCK * 2]).map_err(LayerError::Write)?;
        self.out.flush().map_err(LayerError::Write)
    }

    fn header(&mut self, name: &[u8], meta: &Meta, kind: tar::EntryType, link: Option<&[u8]>, size: u64) -> Result<()> {
        let mtime = self.opts.clamp(meta.mtime) as u64;
        let mut pax: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(meta.mode & 0o7777);
        let fits = |v: u64, max: u64| if v <= max { v } else { 0 };
        for (key, v, max) in [
            ("uid", u64::from(meta.uid), USTAR_MAX_ID),
            ("gid", u64::from(meta.gid), USTAR_MAX_ID),
            ("size", size, USTAR_MAX_NUM),
            ("mtime", mtime, USTAR_MAX_NUM),
        ] {
            if v > max {
                pax.insert(key.to_string(), v.to_string().into_bytes());
            }
        }
        h.set_uid(fits(meta.uid.into(), USTAR_MAX_ID));
        h.set_gid(fits(meta.gid.into(), USTAR_MAX_ID));
        h.set_size(fits(size, USTAR_MAX_NUM));
        h.set_mtime(fits(mtime, USTAR_MAX_NUM));
        if !put_field(&mut h.as_old_mut().name, name) {
            pax.insert("path".into(), name.to_vec());
        }
        if let Some(l) = link {
            if !put_field(&mut h.as_old_mut().linkname, l) {
                pax.insert("linkpath".into(), l.to_vec());
            }
        }
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            let (major, minor) = (rustix::fs::major(meta.rdev), rustix::fs::minor(meta.rdev));
            h.set_device_major(major).map_err(LayerError::Write)?;
            h.set_device_minor(minor).map_err(LayerError::Write)?;
        }
        for (k, v) in &meta.xattrs {
            pax.insert(format!("SCHILY.xattr.{k}"), v.clone());
        }
        if !pax.is_empty() {
            self.pax(name, &pax)?;
        }
        h.set_cksum();
        self.out.write_all(h.as_bytes()).map_err(LayerError::Write)
    }

    /// A PAX extended header for the next entry; records sorted by key.
    fn pax(&mut self, name: &[u8], records: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        let mut body = Vec::new();
        for (k, v) in records {
            // "%d %s=%s\n" where the length counts its own digits.
            let rest = k.len() + v.len() + 3;
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len = len.to_string().len() + rest;
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let trimmed = name.strip_suffix(b"/").unwrap_or(name);
        let base = trimmed.rsplit(|&b| b == b'/').next().unwrap_or(trimmed);
        let mut pname = b"PaxHeaders.0/".to_vec();
        pname.extend_from_slice(&base[..base.len().min(80)]);
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        put_field(&mut h.as_old_mut().name, &pname);
        h.set_cksum();
        self.out.write_all(h.as_bytes()).map_err(LayerError::Write)?;
        self.out.write_all(&body).map_err(LayerError::Write)?;
        self.pad(body.len() as u64)
    }

    /// Streams exactly `size` bytes of `path`; a file that changed size since its stat is an error.
    fn data(&mut self, path: &Path, size: u64) -> Result<()> {
        let f: File = OpenOptions::new()
            .read(true)
            .custom_flags(libc_o_nofollow())
            .open(path)
            .map_err(LayerError::io("open", path))?;
        let mut r = f.take(size);
        let mut done = 0u64;
        loop {
            let n = match r.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LayerError::io("read", path)(e)),
            };
            self.out.write_all(&self.buf[..n]).map_err(LayerError::Write)?;
            done += n as u64;
        }
        if done != size {
            return Err(LayerError::io("read", path)(io::Error::other("file shrank while it was being copied")));
        }
        self.pad(size)
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem]).map_err(LayerError::Write)?;
        }
        Ok(())
    }
}

fn libc_o_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Copies `v` into a NUL-padded header field; false if it does not fit (the
/// field then holds a truncated copy for readers that ignore PAX records).
fn put_field(field: &mut [u8], v: &[u8]) -> bool {
    field.fill(0);
    let n = v.len().min(field.len());
    field[..n].copy_from_slice(&v[..n]);
    v.len() <= field.len() && !v.contains(&0)
}
