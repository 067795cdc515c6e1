//! Snapshots: each layer unpacked once under `layers/sha256/<diffID hex>/`,
//! in overlayfs format, shared by every image and container that uses it.
//!
//! A snapshot is unpacked into a flocked temp dir under `ingest/` and renamed
//! into place only when complete and its diffID verified, so an existing
//! snapshot directory is always whole.

use crate::blobs::unique_name;
use crate::digest::{self, Digest};
use crate::error::{Error, IoContext, Result};
use crate::lock;
use crate::unpack::{self, Applied};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
    ingest: PathBuf,
}

/// A temp snapshot dir, removed on drop unless committed.
struct TempSnapshot {
    path: PathBuf,
    _lock: File,
    keep: bool,
}

impl Drop for TempSnapshot {
    fn drop(&mut self) {
        if !self.keep {
            let _ = unpack::remove_tree(&self.path);
        }
    }
}

impl Snapshots {
    pub(crate) fn new(root: &Path) -> Self {
        Snapshots { dir: root.join("layers/sha256"), ingest: root.join("ingest") }
    }

    pub(crate) fn init(&self) -> Result<()> {
        if let Some(parent) = self.dir.parent() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).ctx("create", parent)?;
        }
        fs::create_dir_all(&self.dir).ctx("create", &self.dir)
    }

    pub fn path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(digest::hex(diff_id))
    }

    pub fn exists(&self, diff_id: &Digest) -> bool {
        self.path(diff_id).is_dir()
    }

    fn temp(&self) -> Result<TempSnapshot> {
        let path = self.ingest.join(unique_name("layer-"));
        fs::DirBuilder::new().mode(0o700).create(&path).ctx("create", &path)?;
        let lock = File::open(&path).ctx("open", &path)?;
        lock::hold(&lock);
        Ok(TempSnapshot { path, _lock: lock, keep: false })
    }

    /// Unpacks `layer` as the snapshot for `diff_id` unless it exists already.
    pub fn ensure(&self, diff_id: &Digest, layer: impl Read) -> Result<PathBuf> {
        let dest = self.path(diff_id);
        if dest.is_dir() {
            return Ok(dest);
        }
        let tmp = self.temp()?;
        let applied = unpack::apply_layer(layer, &tmp.path)?;
        if &applied.diff_id != diff_id {
            return Err(Error::DigestMismatch {
                what: "layer diffID",
                digest: diff_id.to_string(),
                expected: diff_id.to_string(),
                actual: applied.diff_id.to_string(),
            });
        }
        self.commit(tmp, &dest)?;
        Ok(dest)
    }

    /// Unpacks a layer whose diffID is not known yet (an import).
    pub fn unpack_new(&self, layer: impl Read) -> Result<(Applied, PathBuf)> {
        let tmp = self.temp()?;
        let applied = unpack::apply_layer(layer, &tmp.path)?;
        let dest = self.path(&applied.diff_id);
        if !dest.is_dir() {
            self.commit(tmp, &dest)?;
        }
        Ok((applied, dest))
    }

    /// Moves the directory `dir` into place as the snapshot for `diff_id`,
    /// without copying: a build step's overlay upper dir that already holds,
    /// in snapshot format, exactly what the layer `diff_id` unpacks to (the
    /// caller vouches for that; nothing is verified). `Ok(None)` when `dir`
    /// is on another filesystem than the store: the caller unpacks the blob
    /// instead. An existing snapshot wins and `dir` is left where it is.
    pub fn adopt(&self, diff_id: &Digest, dir: &Path) -> Result<Option<PathBuf>> {
        let dest = self.path(diff_id);
        if dest.is_dir() {
            return Ok(Some(dest));
        }
        match fs::rename(dir, &dest) {
            Ok(()) => Ok(Some(dest)),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => Ok(None),
            // Another process made the same snapshot first: theirs is as good.
            Err(e) if dest.is_dir() && matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY)) => {
                Ok(Some(dest))
            }
            Err(e) => Err(Error::io("move snapshot into", &dest, e)),
        }
    }

    fn commit(&self, mut tmp: TempSnapshot, dest: &Path) -> Result<()> {
        match fs::rename(&tmp.path, dest) {
            Ok(()) => {
                tmp.keep = true;
                Ok(())
            }
            // Another process unpacked the same layer first: theirs is as good.
            Err(e) if dest.is_dir() && matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY)) => Ok(()),
            Err(e) => Err(Error::io("rename snapshot into", dest, e)),
        }
    }

    pub fn remove(&self, diff_id: &Digest) -> Result<()> {
        // Rename first so a half-removed snapshot is never visible as whole.
        let src = self.path(diff_id);
        let doomed = self.ingest.join(unique_name("gone-"));
        match fs::rename(&src, &doomed) {
            Ok(()) => unpack::remove_tree(&doomed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove snapshot", src, e)),
        }
    }

    /// Every snapshot directory name, and names that are not diffIDs.
    pub fn list(&self) -> Result<(Vec<Digest>, Vec<String>)> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((good, bad)),
            Err(e) => return Err(Error::io("list", &self.dir, e)),
        };
        for ent in rd {
            let name = ent.ctx("list", &self.dir)?.file_name().to_string_lossy().into_owned();
            match digest::parse(&format!("sha256:{name}")) {
                Ok(d) => good.push(d),
                Err(_) => bad.push(name),
            }
        }
        Ok((good, bad))
    }
}
