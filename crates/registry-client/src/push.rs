//! Push: every blob is HEADed first and skipped when the registry has it,
//! mounted from another repository of the same registry when we know one
//! holds it, else streamed from the store in one monolithic PUT (which ECR
//! needs too); manifests go last, children before the index, then the tag.

use crate::client::Registry;
use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressFn};
use crate::pull::MAX_MANIFEST;
use crate::retry::retry;
use crate::sources::Sources;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use wharf_image::{Reference, Store};

#[derive(Clone)]
pub struct PushOptions {
    pub progress: ProgressFn,
    /// Write the pushed manifest's digest here (`--digestfile`).
    pub digestfile: Option<PathBuf>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions { progress: crate::progress::silent(), digestfile: None }
    }
}

#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub size: u64,
    /// Blobs actually uploaded (not skipped, not mounted).
    pub uploaded: usize,
}

/// A manifest to push, children of an index first.
pub(crate) struct ManifestPlan {
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

pub(crate) struct BlobPlan {
    pub digest: String,
    pub size: u64,
}

impl Registry {
    /// Pushes the stored image `src` to `dest`.
    pub async fn push(&self, store: &Store, src: &str, dest: &Reference, opts: &PushOptions) -> Result<Pushed> {
        let _content = store.content_lock()?;
        let target = store.entry(src)?;
        let (manifests, blobs) = plan(store, target.digest().as_ref(), target.media_type().as_ref())?;
        self.push_planned(store, dest, manifests, blobs, opts).await
    }

    /// Pushes planned blobs, then the manifests (the last one tagged).
    pub(crate) async fn push_planned(
        &self,
        store: &Store,
        dest: &Reference,
        manifests: Vec<ManifestPlan>,
        blobs: Vec<BlobPlan>,
        opts: &PushOptions,
    ) -> Result<Pushed> {
        let sources = Sources::new(store.root());
        let mounts: BTreeSet<String> =
            blobs.iter().flat_map(|b| sources.repos_on(&b.digest, &self.host, dest.path())).collect();
        let mounts: Vec<String> = mounts.into_iter().collect();
        let oref = self.oci_ref(dest.path(), dest.tag(), dest.digest());
        self.authorize(&oref, true, &mounts).await?;
        let n = self.opts.max_concurrent_uploads.max(1);
        let results: Vec<bool> = futures_util::stream::iter(blobs.iter())
            .map(|b| self.push_blob(store, &oref, b, &sources, dest.path(), &opts.progress))
            .buffer_unordered(n)
            .try_collect()
            .await?;
        let uploaded = results.iter().filter(|u| **u).count();
        let (top, children) = manifests.split_last().ok_or_else(|| Error::InvalidInput("nothing to push".into()))?;
        for m in children {
            let r = self.oci_ref(dest.path(), None, Some(&m.digest));
            self.push_manifest(&r, m).await?;
        }
        self.push_manifest(&oref, top).await?;
        let mut digests: Vec<String> = blobs.iter().map(|b| b.digest.clone()).collect();
        digests.extend(manifests.iter().map(|m| m.digest.clone()));
        sources.record(&self.host, dest.path(), &digests)?;
        if let Some(f) = &opts.digestfile {
            std::fs::write(f, &top.digest).map_err(|e| Error::io(format!("write {}", f.display()), e))?;
        }
        Ok(Pushed { digest: top.digest.clone(), size: top.bytes.len() as u64, uploaded })
    }

    async fn push_manifest(&self, oref: &oci_client::Reference, m: &ManifestPlan) -> Result<()> {
        let ct =
            reqwest::header::HeaderValue::from_str(&m.media_type).map_err(|e| Error::InvalidInput(e.to_string()))?;
        retry(
            &m.digest,
            |_, _| {},
            |_| async {
                self.oci()
                    .push_manifest_raw(oref, m.bytes.clone(), ct.clone())
                    .await
                    .map(|_| ())
                    .map_err(|e| Error::from_oci(&self.host, &oref.whole(), e))
            },
        )
        .await
    }

    /// Returns true when the blob was uploaded (not already there, not mounted).
    async fn push_blob(
        &self,
        store: &Store,
        oref: &oci_client::Reference,
        b: &BlobPlan,
        sources: &Sources,
        repo: &str,
        progress: &ProgressFn,
    ) -> Result<bool> {
        let exists = retry(
            &b.digest,
            |_, _| {},
            |_| async {
                self.oci().blob_exists(oref, &b.digest).await.map_err(|e| Error::from_oci(&self.host, &b.digest, e))
            },
        )
        .await?;
        if exists {
            progress(Progress::Done { digest: b.digest.clone(), how: "exists" });
            return Ok(false);
        }
        for from in sources.repos_on(&b.digest, &self.host, repo) {
            let src = self.oci_ref(&from, None, Some(&b.digest));
            // A 202 instead of 201 means the registry did not mount: upload instead.
            if self.oci().mount_blob(oref, &src, &b.digest).await.is_ok() {
                progress(Progress::Done { digest: b.digest.clone(), how: "mounted" });
                return Ok(false);
            }
        }
        progress(Progress::Start { digest: b.digest.clone(), size: b.size });
        let on_retry = |attempt: u32, reason: &str| {
            progress(Progress::Retry { digest: b.digest.clone(), attempt, reason: reason.to_string() })
        };
        retry(&b.digest, on_retry, |_| async {
            let stream = file_stream(store, &b.digest, b.size, progress.clone())?;
            self.oci()
                .push_blob_stream(oref, stream, &b.digest, Some(b.size))
                .await
                .map(|_| ())
                .map_err(|e| Error::from_oci(&self.host, &b.digest, e))
        })
        .await?;
        progress(Progress::Done { digest: b.digest.clone(), how: "pushed" });
        Ok(true)
    }
}

type ChunkStream = futures_util::stream::BoxStream<'static, oci_client::errors::Result<bytes::Bytes>>;

/// A blob read from the store in 1 MiB chunks: never the whole layer in memory.
fn file_stream(store: &Store, digest: &str, size: u64, progress: ProgressFn) -> Result<ChunkStream> {
    let d = wharf_image::digest::parse(digest)?;
    let f = store.blobs().open(&d)?;
    let digest = digest.to_string();
    let s = futures_util::stream::unfold((f, 0u64, 0u64), move |(mut f, done, last)| {
        let progress = progress.clone();
        let digest = digest.clone();
        async move {
            let mut buf = vec![0u8; 1 << 20];
            match f.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    let done = done + n as u64;
                    let last = if done - last >= 4 << 20 {
                        progress(Progress::Bytes { digest, done, size });
                        done
                    } else {
                        last
                    };
                    Some((Ok(bytes::Bytes::from(buf)), (f, done, last)))
                }
                Err(e) => Some((Err(e.into()), (f, done, last))),
            }
        }
    });
    Ok(s.boxed())
}

/// The manifests (children first) and distinct blobs under `digest`.
fn plan(store: &Store, digest: &str, media_type: &str) -> Result<(Vec<ManifestPlan>, Vec<BlobPlan>)> {
    let mut manifests = Vec::new();
    let mut blobs: Vec<BlobPlan> = Vec::new();
    let mut add_blob = |v: &Value| -> Result<()> {
        let d = v
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::InvalidInput("descriptor without digest".into()))?;
        let size = v.get("size").and_then(Value::as_u64).unwrap_or(0);
        if !blobs.iter().any(|b| b.digest == d) {
            blobs.push(BlobPlan { digest: d.to_string(), size });
        }
        Ok(())
    };
    let read =
        |d: &str| -> Result<Vec<u8>> { Ok(store.blobs().read(&wharf_image::digest::parse(d)?, MAX_MANIFEST as u64)?) };
    let bytes = read(digest)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidInput(e.to_string()))?;
    if let Some(children) = v.get("manifests").and_then(Value::as_array) {
        for c in children {
            let cd = c.get("digest").and_then(Value::as_str).unwrap_or_default();
            let cbytes = read(cd).map_err(|_| Error::InvalidInput(format!("index {digest}: manifest {cd} is not in the store (pull with --all-platforms to push every platform)")))?;
            let cv: Value = serde_json::from_slice(&cbytes).map_err(|e| Error::InvalidInput(e.to_string()))?;
            add_blob(&cv["config"])?;
            for l in cv["layers"].as_array().into_iter().flatten() {
                add_blob(l)?;
            }
            let cmt =
                c.get("mediaType").and_then(Value::as_str).unwrap_or("application/vnd.oci.image.manifest.v1+json");
            manifests.push(ManifestPlan { digest: cd.to_string(), media_type: cmt.to_string(), bytes: cbytes });
        }
    } else {
        add_blob(&v["config"])?;
        for l in v["layers"].as_array().into_iter().flatten() {
            add_blob(l)?;
        }
    }
    let mt = v.get("mediaType").and_then(Value::as_str).unwrap_or(media_type).to_string();
    manifests.push(ManifestPlan { digest: digest.to_string(), media_type: mt, bytes });
    Ok((manifests, blobs))
}
