//! Where blobs were seen: `<root>/registry-sources.json` maps a digest to
//! `host/repository` names that hold it, so a push to another repository of
//! the same registry can mount the blob instead of uploading it (Docker keeps
//! the same record as its "v2 metadata").

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wharf_image::FileLock;

const MAX_SOURCES: usize = 8;

pub(crate) struct Sources {
    path: PathBuf,
    lock: PathBuf,
}

impl Sources {
    pub(crate) fn new(root: &Path) -> Self {
        Sources { path: root.join("registry-sources.json"), lock: root.join("registry-sources.lock") }
    }

    fn read(&self) -> BTreeMap<String, Vec<String>> {
        std::fs::read(&self.path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Repositories of `host` other than `except` known to hold `digest`.
    pub(crate) fn repos_on(&self, digest: &str, host: &str, except: &str) -> Vec<String> {
        let prefix = format!("{host}/");
        self.read()
            .get(digest)
            .map(|v| {
                v.iter().filter_map(|s| s.strip_prefix(&prefix)).filter(|r| *r != except).map(str::to_string).collect()
            })
            .unwrap_or_default()
    }

    /// Records that `host/repo` holds every digest in `digests`.
    pub(crate) fn record(&self, host: &str, repo: &str, digests: &[String]) -> Result<()> {
        let _g = FileLock::exclusive(&self.lock)?;
        let mut map = self.read();
        let name = format!("{host}/{repo}");
        for d in digests {
            let v = map.entry(d.clone()).or_default();
            v.retain(|n| *n != name);
            v.insert(0, name.clone());
            v.truncate(MAX_SOURCES);
        }
        let tmp = self.path.with_extension(format!("tmp{}", std::process::id()));
        let bytes = serde_json::to_vec(&map).unwrap_or_default();
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| Error::io(format!("write {}", self.path.display()), e))
    }
}
