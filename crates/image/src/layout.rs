//! The store's OCI image layout: `oci-layout`, `index.json` and the locks
//! that make concurrent `wharf` processes safe.

use crate::blobs::{unique_name, Blobs};
use crate::error::{Error, IoContext, Result};
use crate::lock::FileLock;
use crate::snapshot::Snapshots;
use oci_spec::image::{ImageIndex, ImageIndexBuilder, MediaType};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const OCI_LAYOUT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";
/// Manifests, indexes and configs are small; anything larger is refused.
pub const MAX_METADATA_BLOB: u64 = 16 << 20;

/// The image store at `root`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    blobs: Blobs,
    snapshots: Snapshots,
}

impl Store {
    /// Opens the store at `root`, laying it out first if it is new or empty.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let store = Store { blobs: Blobs::new(&root), snapshots: Snapshots::new(&root), root };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<()> {
        fs::create_dir_all(&self.root).ctx("create store", &self.root)?;
        self.blobs.init()?;
        self.snapshots.init()?;
        let layout = self.root.join("oci-layout");
        if !layout.exists() {
            write_atomic(self.blobs.ingest_dir(), &layout, OCI_LAYOUT.as_bytes())?;
        } else {
            let text = fs::read_to_string(&layout).ctx("read", &layout)?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::malformed("oci-layout", e))?;
            if v.get("imageLayoutVersion").and_then(|v| v.as_str()).is_none() {
                return Err(Error::malformed("oci-layout", "no imageLayoutVersion"));
            }
        }
        let index = self.root.join("index.json");
        if !index.exists() {
            let _g = self.lock_index()?;
            if !index.exists() {
                self.write_index(&empty_index())?;
            }
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// Held shared while adding content, exclusive while collecting garbage.
    pub fn content_lock(&self) -> Result<FileLock> {
        FileLock::shared(&self.root.join("gc.lock"))
    }

    pub(crate) fn gc_lock(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.root.join("gc.lock"))
    }

    /// The gc lock if nobody adds content right now; `None` otherwise.
    pub(crate) fn gc_lock_now(&self) -> Result<Option<FileLock>> {
        FileLock::try_exclusive(&self.root.join("gc.lock"))
    }

    fn lock_index(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.root.join("index.lock"))
    }

    /// The current `index.json`.
    pub fn index(&self) -> Result<ImageIndex> {
        let p = self.root.join("index.json");
        let bytes = fs::read(&p).ctx("read", &p)?;
        if bytes.len() as u64 > MAX_METADATA_BLOB {
            return Err(Error::malformed("index.json", "too large"));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::malformed("index.json", e))
    }

    /// Read-modify-write of `index.json` under the index lock.
    pub(crate) fn update_index<T>(&self, f: impl FnOnce(&mut ImageIndex) -> Result<T>) -> Result<T> {
        let _g = self.lock_index()?;
        let mut index = self.index()?;
        let out = f(&mut index)?;
        self.write_index(&index)?;
        Ok(out)
    }

    fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let bytes = serde_json::to_vec(index).map_err(|e| Error::malformed("index.json", e))?;
        write_atomic(self.blobs.ingest_dir(), &self.root.join("index.json"), &bytes)
    }

    /// Removes temp files and snapshot dirs whose writer died.
    pub fn clean_abandoned(&self) -> Result<usize> {
        self.blobs.clean_ingest()
    }
}

fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .expect("an empty index is valid")
}

/// Writes `bytes` to `dest` by a flocked temp file in `tmp_dir`, fsync and rename.
pub(crate) fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_dir.join(unique_name("file-"));
    let res = (|| {
        let mut f = fs::File::create(&tmp).ctx("create", &tmp)?;
        crate::lock::hold(&f);
        f.write_all(bytes).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
        fs::rename(&tmp, dest).ctx("rename into", dest)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}
