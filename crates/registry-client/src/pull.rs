//! Pull: tag or digest → manifest or index → platform → blobs streamed into
//! the store, several at once, hashed while written, resumed with Range
//! after a dropped connection, retried on 5xx; each layer is unpacked while
//! it downloads (snapshots are independent of order; see `tee`), and its
//! download slot goes to the next layer once its bytes are in, not once its
//! unpacking ends (a small layer's unpacking took as long as its GET).
//!
//! Crash safety with one wait for the disk per image: layer blobs are
//! verified into `ingest/` with their writeback started, and published
//! together once every layer is in (`Blobs::publish`: fsync each, rename
//! each, fsync `blobs/sha256`). A blob's name therefore never shows content
//! a crash could lose, and the tag is written (index.json: fsync, rename)
//! only after that, so it never points at a blob a crash could lose.

use crate::client::Registry;
use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressFn};
use crate::retry::{retry, ATTEMPTS};
use crate::tee::Unpacker;
use futures_util::StreamExt;
use oci_client::client::BlobResponse;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use serde_json::Value;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::Duration;
use wharf_image::blobs::{BlobWriter, PendingBlob};
use wharf_image::spec::{Descriptor, MediaType};
use wharf_image::{Digest, Platform, Reference, Store};

pub(crate) const MAX_MANIFEST: usize = 4 << 20;
pub(crate) const ACCEPT: [&str; 5] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

#[derive(Clone)]
pub struct PullOptions {
    /// `os/arch[/variant]`; the host's by default.
    pub platform: Option<String>,
    /// Keep the whole index and every platform's image.
    pub all_platforms: bool,
    /// When the name is an index, tag the index (with only the chosen
    /// platform's image here) rather than that image: what a build for a
    /// foreign platform does, so the host's image keeps its name.
    pub keep_index: bool,
    pub progress: ProgressFn,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions { platform: None, all_platforms: false, keep_index: false, progress: crate::progress::silent() }
    }
}

/// What a pull stored.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// Digest of what the name now points at (a manifest, or an index with --all-platforms).
    pub digest: String,
    /// Digest of the manifest or index the registry served for the name.
    pub remote_digest: String,
    /// The image ID (config digest) of the selected platform.
    pub id: String,
}

/// What kind of document a manifest body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Index,
    Manifest,
}

pub(crate) fn classify(body: &[u8], content_type: Option<&str>) -> Result<(Kind, String)> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| Error::InvalidInput(format!("manifest is not JSON: {e}")))?;
    let mt = v.get("mediaType").and_then(Value::as_str).or(content_type).unwrap_or("").to_string();
    if v.get("schemaVersion").and_then(Value::as_i64) == Some(1)
        || mt.starts_with("application/vnd.docker.distribution.manifest.v1")
    {
        return Err(Error::Unsupported(
            "Docker schema 1 manifests are not supported (the image is too old; push it again with a current tool)"
                .into(),
        ));
    }
    if v.get("manifests").is_some() {
        let mt = if mt.is_empty() { "application/vnd.oci.image.index.v1+json".into() } else { mt };
        return Ok((Kind::Index, mt));
    }
    if v.get("config").is_some() && v.get("layers").is_some() {
        let mt = if mt.is_empty() { "application/vnd.oci.image.manifest.v1+json".into() } else { mt };
        return Ok((Kind::Manifest, mt));
    }
    Err(Error::Unsupported(format!("not an image manifest or index (mediaType {mt:?})")))
}

/// The child of `index` for the wanted platform.
fn select(index: &Value, want: &Platform) -> Option<Value> {
    wharf_image::platform::select(index.get("manifests")?.as_array()?, want).cloned()
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Result<Descriptor> {
    Ok(Descriptor::new(MediaType::from(media_type), size, wharf_image::digest::parse(digest)?))
}

impl Registry {
    /// Pulls `r` into `store` and points the name at it. A failed pull
    /// removes the blobs and snapshots it added that nothing references.
    pub async fn pull(&self, store: &Store, r: &Reference, opts: &PullOptions) -> Result<Pulled> {
        let created = Created::default();
        let res = {
            let _content = store.content_lock()?;
            self.pull_named(store, r, opts, &created).await
        };
        if res.is_err() {
            let (blobs, diffs) = created.take();
            if let Err(e) = store.discard(&blobs, &diffs) {
                tracing::warn!("cleaning up after a failed pull: {e}");
            }
        }
        res
    }

    async fn pull_named(&self, store: &Store, r: &Reference, opts: &PullOptions, created: &Created) -> Result<Pulled> {
        let oref = self.oci_ref(r.path(), r.tag(), r.digest());
        let auth = self.authorize(&oref, false, &[]).await?;
        let (body, mt, digest) =
            self.fetch_manifest(&auth, r.path(), r.digest().or(r.tag()).unwrap_or("latest"), r).await?;
        let (kind, mt) = classify(&body, Some(&mt))?;
        let mut seen = vec![digest.clone()];
        let pending = std::sync::Mutex::default();
        let ctx = Ctx { store, oref: &oref, opts, created, pending: &pending };
        let (target, id) = match kind {
            Kind::Manifest => {
                let id = self.pull_image(&ctx, &body, &mut seen, true).await?;
                created.blob(store.blobs().put_bytes(&body)?);
                (descriptor(&mt, &digest, body.len() as u64)?, id)
            }
            Kind::Index => self.pull_index(&ctx, &auth, r, (&body, &mt, &digest), &mut seen).await?,
        };
        store.set_tag(r, &target)?;
        crate::sources::Sources::new(store.root()).record(&self.host, r.path(), &seen)?;
        Ok(Pulled { digest: target.digest().to_string(), remote_digest: digest, id })
    }

    async fn pull_index(
        &self,
        ctx: &Ctx<'_>,
        auth: &RegistryAuth,
        r: &Reference,
        (body, mt, digest): (&[u8], &str, &str),
        seen: &mut Vec<String>,
    ) -> Result<(Descriptor, String)> {
        let (store, opts) = (ctx.store, ctx.opts);
        let index: Value = serde_json::from_slice(body).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let want = match &opts.platform {
            Some(p) => Platform::parse(p).map_err(|e| Error::InvalidInput(e.to_string()))?,
            None => Platform::host(),
        };
        let chosen =
            select(&index, &want).ok_or_else(|| Error::NotFound { reference: format!("{r} for platform {want}") })?;
        let children: Vec<Value> = if opts.all_platforms {
            index["manifests"].as_array().cloned().unwrap_or_default()
        } else {
            vec![chosen.clone()]
        };
        let mut id = String::new();
        for c in &children {
            let cd = c
                .get("digest")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::InvalidInput("index entry without digest".into()))?;
            let (cbody, cmt, _) = self.fetch_manifest(auth, r.path(), cd, r).await?;
            if classify(&cbody, Some(&cmt))?.0 != Kind::Manifest {
                return Err(Error::Unsupported(format!("{cd}: nested indexes are not supported")));
            }
            seen.push(cd.to_string());
            // An attestation manifest's layers are in-toto statements: stored, never unpacked.
            let unpack = !wharf_image::attestation::is_attestation_entry(c);
            let this_id = self.pull_image(ctx, &cbody, seen, unpack).await?;
            ctx.created.blob(store.blobs().put_bytes(&cbody)?);
            if c.get("digest") == chosen.get("digest") {
                id = this_id;
            }
        }
        if opts.all_platforms || opts.keep_index {
            ctx.created.blob(store.blobs().put_bytes(body)?);
            return Ok((descriptor(mt, digest, body.len() as u64)?, id));
        }
        let cd = chosen["digest"].as_str().unwrap_or_default();
        let cmt =
            chosen.get("mediaType").and_then(Value::as_str).unwrap_or("application/vnd.oci.image.manifest.v1+json");
        let size = chosen.get("size").and_then(Value::as_u64).unwrap_or(0);
        Ok((descriptor(cmt, cd, size)?, id))
    }

    /// The manifest or index `r` names, as the registry serves it: its bytes,
    /// media type and digest (`wharf manifest inspect REF`).
    pub async fn manifest_raw(&self, r: &Reference) -> Result<(Vec<u8>, String, String)> {
        let oref = self.oci_ref(r.path(), r.tag(), r.digest());
        let auth = self.authorize(&oref, false, &[]).await?;
        let (body, mt, digest) =
            self.fetch_manifest(&auth, r.path(), r.digest().or(r.tag()).unwrap_or("latest"), r).await?;
        let (_, mt) = classify(&body, Some(&mt))?;
        Ok((body, mt, digest))
    }

    /// GET of a manifest by tag or digest, with a size limit and digest check.
    pub(crate) async fn fetch_manifest(
        &self,
        auth: &RegistryAuth,
        repo: &str,
        reference: &str,
        named: &Reference,
    ) -> Result<(Vec<u8>, String, String)> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        retry(
            &url,
            |_, _| {},
            |_| async {
                let req = Registry::with_auth(self.http.get(&url), auth).header("Accept", ACCEPT.join(", "));
                let res = req.send().await.map_err(|e| transient(&self.host, &url, e))?;
                let status = res.status();
                if status == 404 {
                    return Err(Error::NotFound { reference: named.to_string() });
                }
                if status == 401 || status == 403 {
                    return Err(Error::Unauthorized {
                        registry: self.host.clone(),
                        reason: format!("{status} for {named}"),
                    });
                }
                if !status.is_success() {
                    return Err(Error::Registry {
                        registry: self.host.clone(),
                        reason: format!("{status} for {url}"),
                        transient: status.is_server_error() || status == 429,
                    });
                }
                let mt = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let body = read_limited(res, MAX_MANIFEST).await.map_err(|e| self.body_err(&url, e))?;
                let digest = wharf_image::digest::of_bytes(&body).to_string();
                if reference.starts_with("sha256:") && digest != reference {
                    return Err(Error::DigestMismatch {
                        what: format!("manifest {url}"),
                        expected: reference.into(),
                        actual: digest,
                    });
                }
                Ok((body, mt, digest))
            },
        )
        .await
    }

    fn body_err(&self, url: &str, e: BodyError) -> Error {
        match e {
            BodyError::TooLarge(n) => Error::InvalidInput(format!("{url}: manifest larger than {n} bytes")),
            BodyError::Read(e) => transient(&self.host, url, e),
        }
    }

    /// Pulls one platform's config and layers; returns the image ID.
    async fn pull_image(&self, ctx: &Ctx<'_>, manifest: &[u8], seen: &mut Vec<String>, unpack: bool) -> Result<String> {
        let m: Value = serde_json::from_slice(manifest).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let blob = |v: &Value| -> Result<OciDescriptor> {
            Ok(OciDescriptor {
                media_type: v.get("mediaType").and_then(Value::as_str).unwrap_or_default().to_string(),
                digest: v
                    .get("digest")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::InvalidInput("descriptor without digest".into()))?
                    .to_string(),
                size: v.get("size").and_then(Value::as_i64).unwrap_or(-1),
                ..Default::default()
            })
        };
        let config = blob(&m["config"])?;
        self.fetch_blob(ctx, &config, None).await?;
        let cd = wharf_image::digest::parse(&config.digest)?;
        let cfg: Value = serde_json::from_slice(&read_fetched(ctx, &cd)?)
            .map_err(|e| Error::InvalidInput(format!("config {}: {e}", config.digest)))?;
        let diff_ids: Vec<String> = cfg["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let layers: Vec<OciDescriptor> =
            m["layers"].as_array().map(|a| a.iter().map(blob).collect::<Result<_>>()).transpose()?.unwrap_or_default();
        if layers.len() != diff_ids.len() {
            return Err(Error::InvalidInput(format!(
                "config {} lists {} diffIDs for {} layers",
                config.digest,
                diff_ids.len(),
                layers.len()
            )));
        }
        seen.push(config.digest.clone());
        seen.extend(layers.iter().map(|l| l.digest.clone()));
        self.fetch_layers(ctx, &layers, &diff_ids, unpack).await?;
        self.publish(ctx)?;
        Ok(config.digest)
    }

    /// Downloads the layers, `max_concurrent_downloads` at once. A layer's
    /// download slot goes to the next one as soon as its bytes are in: the
    /// end of its unpacking is awaited beside the downloads (at most as many
    /// layers again finish unpacking at once, so memory stays bounded).
    async fn fetch_layers(
        &self,
        ctx: &Ctx<'_>,
        layers: &[OciDescriptor],
        diff_ids: &[String],
        unpack: bool,
    ) -> Result<()> {
        let store = ctx.store;
        let n = self.opts.max_concurrent_downloads.max(1);
        let slots = tokio::sync::Semaphore::new(2 * n);
        let downloads = futures_util::stream::iter(layers.iter().zip(diff_ids.iter()))
            .map(|(l, diff)| {
                let slots = &slots;
                async move {
                    let permit =
                        slots.acquire().await.map_err(|e| Error::io("unpack slots", std::io::Error::other(e)))?;
                    let diff = wharf_image::digest::parse(diff)?;
                    let unpack = (unpack && !store.snapshots().exists(&diff)).then_some(diff);
                    let fetched = self.download_blob(ctx, l, unpack).await?;
                    Ok::<_, Error>(async move {
                        let _permit = permit;
                        self.finish_blob(ctx, l, fetched).await
                    })
                }
            })
            .buffer_unordered(n);
        let mut downloads = std::pin::pin!(downloads);
        let mut finishing = futures_util::stream::FuturesUnordered::new();
        let res = loop {
            tokio::select! {
                next = downloads.next() => match next {
                    Some(Ok(f)) => finishing.push(f),
                    Some(Err(e)) => break Err(e),
                    None => break Ok(()),
                },
                Some(r) = finishing.next(), if !finishing.is_empty() => {
                    if let Err(e) = r {
                        break Err(e);
                    }
                }
            }
        };
        // Even after an error: a layer still unpacking is waited for, so a
        // snapshot it commits is known to the cleanup of the failed pull.
        let mut first = res.err();
        while let Some(r) = finishing.next().await {
            if let (Err(e), None) = (r, &first) {
                first = Some(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Streams one blob into the store and, with `unpack` (a diffID),
    /// unpacks it as that snapshot.
    pub(crate) async fn fetch_blob(&self, ctx: &Ctx<'_>, desc: &OciDescriptor, unpack: Option<Digest>) -> Result<()> {
        let fetched = self.download_blob(ctx, desc, unpack).await?;
        self.finish_blob(ctx, desc, fetched).await
    }

    /// Streams one blob into the store (resuming with Range after a cut),
    /// unpacking it while it downloads when `unpack` (a diffID) says so; what
    /// is left to wait for is [`Registry::finish_blob`]'s.
    async fn download_blob(&self, ctx: &Ctx<'_>, desc: &OciDescriptor, unpack: Option<Digest>) -> Result<Fetched> {
        let (store, oref, progress) = (ctx.store, ctx.oref, &ctx.opts.progress);
        let d = wharf_image::digest::parse(&desc.digest)?;
        if store.blobs().exists(&d) {
            progress(Progress::Done { digest: desc.digest.clone(), how: "exists" });
            if let Some(diff) = unpack {
                tokio::task::block_in_place(|| store.snapshots().ensure(&diff, store.blobs().open(&d)?))?;
                self.unpacked(ctx, desc, diff);
            }
            return Ok(Fetched { d, unpack: None, streamed: None, pending: None });
        }
        let size = u64::try_from(desc.size).ok();
        progress(Progress::Start { digest: desc.digest.clone(), size: size.unwrap_or(0) });
        let mut w = store.blobs().writer()?;
        let mut tee = unpack.clone().map(|diff| Unpacker::start(store, diff));
        let mut attempt = 0;
        let res = loop {
            match self.stream_into(store, oref, desc, &mut w, progress, tee.as_mut()).await {
                Ok(()) => break Ok(()),
                Err(e) if e.kind() == crate::ErrorKind::Transient && attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    if let Some(t) = tee.take() {
                        let _ = t.finish(false).await; // unpacked from the whole blob below
                    }
                    progress(Progress::Retry { digest: desc.digest.clone(), attempt, reason: e.to_string() });
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => break Err(e),
            }
        };
        // The blob waits in ingest/ to be published with the image's others.
        let res = res.and_then(|()| {
            tokio::task::block_in_place(|| w.verify(Some(&d), size)).map(|v| v.2).map_err(|e| self.mismatch(e))
        });
        let err = match (res, tee) {
            (Ok(p), tee) => {
                progress(Progress::Done { digest: desc.digest.clone(), how: "downloaded" });
                let streamed = tee.map(|t| Box::pin(t.end()) as Unpacking);
                return Ok(Fetched { d, unpack, streamed, pending: p });
            }
            (Err(e), Some(t)) => {
                let _ = t.finish(false).await;
                e
            }
            (Err(e), None) => e,
        };
        Err(err)
    }

    /// Waits for a downloaded blob's unpacking (or unpacks it from the
    /// blob when its download had to restart), then queues it for publishing.
    async fn finish_blob(&self, ctx: &Ctx<'_>, desc: &OciDescriptor, f: Fetched) -> Result<()> {
        match (f.streamed, f.unpack) {
            (Some(s), Some(diff)) => {
                s.await?;
                self.unpacked(ctx, desc, diff);
            }
            (None, Some(diff)) => {
                let file = match &f.pending {
                    Some(p) => p.open()?,
                    None => ctx.store.blobs().open(&f.d)?,
                };
                tokio::task::block_in_place(|| ctx.store.snapshots().ensure(&diff, file))?;
                self.unpacked(ctx, desc, diff);
            }
            _ => {}
        }
        if let Some(p) = f.pending {
            ctx.pending.lock().unwrap_or_else(|e| e.into_inner()).push(p);
        }
        Ok(())
    }

    /// Makes the layers of one image visible, with one round of fsyncs.
    pub(crate) fn publish(&self, ctx: &Ctx<'_>) -> Result<()> {
        let batch = std::mem::take(&mut *ctx.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let (done, err) = match tokio::task::block_in_place(|| ctx.store.blobs().publish(batch)) {
            Ok(done) => (done, None),
            Err((done, e)) => (done, Some(e)),
        };
        for d in done {
            ctx.created.blob(d);
        }
        err.map_or(Ok(()), |e| Err(e.into()))
    }

    /// A blob that is not what its descriptor says, named with its registry.
    fn mismatch(&self, e: wharf_image::Error) -> Error {
        match e {
            wharf_image::Error::DigestMismatch { what, digest, expected, actual } => Error::DigestMismatch {
                what: match what {
                    "blob" => format!("digest of blob {digest} from {}", self.host),
                    what => format!("{what} {digest} from {}", self.host),
                },
                expected,
                actual,
            },
            e => e.into(),
        }
    }

    fn unpacked(&self, ctx: &Ctx<'_>, desc: &OciDescriptor, diff: Digest) {
        ctx.created.diff(diff);
        (ctx.opts.progress)(Progress::Done { digest: desc.digest.clone(), how: "unpacked" });
    }

    async fn stream_into(
        &self,
        store: &Store,
        oref: &oci_client::Reference,
        desc: &OciDescriptor,
        w: &mut BlobWriter,
        progress: &ProgressFn,
        mut tee: Option<&mut Unpacker>,
    ) -> Result<()> {
        let offset = w.written();
        let map = |e| Error::from_oci(&self.host, &desc.digest, e);
        // Asked as a range even from 0: oci-client then leaves the bytes to
        // us instead of hashing them a second time (the writer hashes them).
        let mut stream = if desc.size == 0 {
            self.oci().pull_blob_stream(oref, desc).await.map_err(map)?.stream
        } else {
            match self.oci().pull_blob_stream_partial(oref, desc, offset, None).await.map_err(map)? {
                BlobResponse::Partial(s) => s.stream,
                BlobResponse::Full(s) if offset == 0 => s.stream,
                BlobResponse::Full(s) => {
                    *w = store.blobs().writer()?; // the registry ignored Range: start over
                    s.stream
                }
            }
        };
        let size = u64::try_from(desc.size).unwrap_or(u64::MAX);
        let mut last = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::io(format!("{}: blob {}", self.host, desc.digest), e))?;
            w.write_all(&chunk).map_err(|e| Error::Store(wharf_image::Error::from_io("write blob", e)))?;
            if w.written() > size {
                return Err(Error::DigestMismatch {
                    what: format!("blob {} size", desc.digest),
                    expected: size.to_string(),
                    actual: format!("more than {}", w.written()),
                });
            }
            if let Some(t) = tee.as_mut() {
                t.feed(chunk).await;
            }
            if w.written() - last >= 4 << 20 {
                last = w.written();
                progress(Progress::Bytes { digest: desc.digest.clone(), done: last, size });
            }
        }
        if size != u64::MAX && w.written() < size {
            return Err(Error::io(
                format!("{}: blob {}", self.host, desc.digest),
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("connection closed after {} of {size} bytes", w.written()),
                ),
            ));
        }
        Ok(())
    }
}

/// The end of a layer's unpacking while it downloaded: the snapshot's path.
type Unpacking = std::pin::Pin<Box<dyn std::future::Future<Output = Result<std::path::PathBuf>> + Send>>;

/// A blob whose bytes are in: its unpacking may still run.
pub(crate) struct Fetched {
    d: Digest,
    /// The diffID to unpack as (none when nothing is left to unpack).
    unpack: Option<Digest>,
    /// The unpacking fed while it downloaded; none when the download restarted.
    streamed: Option<Unpacking>,
    pending: Option<PendingBlob>,
}

/// A small blob just fetched (a config): pending, or stored already.
fn read_fetched(ctx: &Ctx<'_>, d: &Digest) -> Result<Vec<u8>> {
    let pending = ctx.pending.lock().unwrap_or_else(|e| e.into_inner());
    let Some(p) = pending.iter().find(|p| p.digest() == d) else {
        return Ok(ctx.store.blobs().read(d, MAX_MANIFEST as u64)?);
    };
    let mut buf = Vec::new();
    p.open()?.take(MAX_MANIFEST as u64 + 1).read_to_end(&mut buf).map_err(|e| Error::io(format!("read {d}"), e))?;
    if buf.len() > MAX_MANIFEST {
        return Err(Error::InvalidInput(format!("config {d} is larger than {MAX_MANIFEST} bytes")));
    }
    Ok(buf)
}

/// What one pull works with.
pub(crate) struct Ctx<'a> {
    pub store: &'a Store,
    pub oref: &'a oci_client::Reference,
    pub opts: &'a PullOptions,
    pub created: &'a Created,
    /// Layer blobs verified but not yet visible, published together.
    pub pending: &'a std::sync::Mutex<Vec<PendingBlob>>,
}

/// Blobs and snapshots a pull added, to remove again if it fails.
#[derive(Default)]
pub(crate) struct Created(std::sync::Mutex<(HashSet<Digest>, HashSet<Digest>)>);

impl Created {
    fn blob(&self, d: Digest) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.insert(d);
    }
    fn diff(&self, d: Digest) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1.insert(d);
    }
    fn take(&self) -> (HashSet<Digest>, HashSet<Digest>) {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub(crate) enum BodyError {
    TooLarge(usize),
    Read(reqwest::Error),
}

pub(crate) async fn read_limited(res: reqwest::Response, max: usize) -> std::result::Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    let mut s = res.bytes_stream();
    while let Some(c) = s.next().await {
        let c = c.map_err(BodyError::Read)?;
        if out.len() + c.len() > max {
            return Err(BodyError::TooLarge(max));
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}

pub(crate) fn transient(host: &str, url: &str, e: reqwest::Error) -> Error {
    Error::Registry { registry: host.to_string(), reason: format!("{url}: {e}"), transient: true }
}
