//! The build cache: the image state after each step, keyed by the step's
//! cache key (the parent's key + the instruction after expansion + a hash
//! of its inputs), under `<root>/build-cache/<key>.json`. Each entry is
//! written by temp file and rename, so concurrent builds and `kill -9` at
//! any instant leave either a whole entry or none.

use super::error::{BuildError, BuildResult};
use super::state::ImageState;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use wharf_image::Store;

/// The root of every chain of keys. It changes when the same step on the
/// same inputs gives a different state, so entries of older wharf versions
/// are not reused (2: a RUN that changes nothing adds no layer; a base
/// without PATH gets the default one).
pub(crate) const GENERATION: &str = "wharf-build-cache-2";

pub struct BuildCache {
    dir: PathBuf,
}

/// `sha256(parent || "\n" || parts...)` in hex.
pub(crate) fn key(parent: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(parent.as_bytes());
    for p in parts {
        h.update(b"\n");
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

impl BuildCache {
    pub(crate) fn new(root: &Path) -> Self {
        BuildCache { dir: root.join("build-cache") }
    }

    /// The state stored for `key`, if every layer it names is still in the store.
    pub(crate) fn get(&self, key: &str, store: &Store) -> Option<ImageState> {
        let bytes = std::fs::read(self.dir.join(format!("{key}.json"))).ok()?;
        let state: ImageState = serde_json::from_slice(&bytes).ok()?;
        state.layers.iter().all(|l| store.blobs().exists(l.digest())).then_some(state)
    }

    pub(crate) fn put(&self, key: &str, state: &ImageState) -> BuildResult<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| BuildError::io(format!("create {}", self.dir.display()), e))?;
        let tmp = self.dir.join(format!(".{key}.{}", std::process::id()));
        let bytes = serde_json::to_vec(state).map_err(|e| BuildError::Invalid(format!("cache entry: {e}")))?;
        std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, self.dir.join(format!("{key}.json")))).map_err(
            |e| {
                let _ = std::fs::remove_file(&tmp);
                BuildError::io(format!("write cache entry {key}"), e)
            },
        )
    }

    /// `wharf builder prune`: forgets every entry; returns how many.
    pub fn prune(root: &Path) -> BuildResult<usize> {
        let dir = root.join("build-cache");
        let n = std::fs::read_dir(&dir).map(|r| r.count()).unwrap_or(0);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(BuildError::io(format!("remove {}", dir.display()), e)),
        }
    }
}
