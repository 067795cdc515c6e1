//! What the builder's registry cache needs besides images: small blobs
//! read whole (a cache config), layers fetched one at a time when a build
//! first needs them (lazily, as BuildKit pulls cache layers), the image
//! metadata of a base without its layers, and a manifest over blobs of the
//! store pushed as is (HEAD-skip and cross-repo mount as for images).

use crate::client::Registry;
use crate::error::{Error, Result};
use crate::pull::{classify, Kind, MAX_MANIFEST};
use crate::push::{BlobPlan, ManifestPlan, PushOptions, Pushed};
use crate::sources::Sources;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use wharf_image::spec::Descriptor;
use wharf_image::{Digest, Platform, Reference, Store};

/// Records that `host/repo` holds `digests` (for mounts on a later push).
pub fn record_sources(store: &Store, host: &str, repo: &str, digests: &[String]) -> Result<()> {
    Sources::new(store.root()).record(host, repo, digests)
}

impl Registry {
    /// A blob of `repo` read whole (at most `max` bytes), its digest checked.
    pub async fn blob_bytes(&self, repo: &str, digest: &str, max: usize) -> Result<Vec<u8>> {
        let oref = self.oci_ref(repo, None, Some(digest));
        let auth = self.authorize(&oref, false, &[]).await?;
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let res = Registry::with_auth(self.http.get(&url), &auth)
            .send()
            .await
            .map_err(|e| crate::pull::transient(&self.host, &url, e))?;
        if res.status() == 404 {
            return Err(Error::NotFound { reference: format!("{}/{repo}@{digest}", self.host) });
        }
        if !res.status().is_success() {
            return Err(Error::Registry {
                registry: self.host.clone(),
                reason: format!("{} for {url}", res.status()),
                transient: res.status().is_server_error(),
            });
        }
        let body = crate::pull::read_limited(res, max).await.map_err(|e| match e {
            crate::pull::BodyError::TooLarge(n) => Error::InvalidInput(format!("{url}: larger than {n} bytes")),
            crate::pull::BodyError::Read(e) => crate::pull::transient(&self.host, &url, e),
        })?;
        let got = wharf_image::digest::of_bytes(&body).to_string();
        if got != digest {
            return Err(Error::DigestMismatch { what: format!("blob {url}"), expected: digest.into(), actual: got });
        }
        Ok(body)
    }

    /// Downloads the blobs of `repo` the store lacks; returns the bytes moved.
    pub async fn fetch_blobs(&self, store: &Store, repo: &str, blobs: &[Descriptor]) -> Result<u64> {
        let oref = self.oci_ref(repo, None, None);
        let opts = crate::PullOptions::default();
        let created = crate::pull::Created::default();
        let pending = std::sync::Mutex::default();
        let ctx = crate::pull::Ctx { store, oref: &oref, opts: &opts, created: &created, pending: &pending };
        self.authorize(&oref, false, &[]).await?;
        let missing: Vec<&Descriptor> = blobs.iter().filter(|d| !store.blobs().exists(d.digest())).collect();
        let n = self.opts.max_concurrent_downloads.max(1);
        futures_util::stream::iter(missing.iter())
            .map(|d| {
                let desc = oci_client::manifest::OciDescriptor {
                    media_type: d.media_type().to_string(),
                    digest: d.digest().to_string(),
                    size: d.size() as i64,
                    ..Default::default()
                };
                let ctx = &ctx;
                async move { self.fetch_blob(ctx, &desc, None).await }
            })
            .buffer_unordered(n)
            .try_collect::<Vec<()>>()
            .await?;
        self.publish(&ctx)?;
        Ok(missing.iter().map(|d| d.size()).sum())
    }

    /// The image `r` names for `platform`: its manifest and config put in
    /// the store (not tagged), its layers not downloaded. Returns the
    /// manifest's descriptor; the repository is recorded as the layers' source.
    pub async fn pull_metadata(&self, store: &Store, r: &Reference, platform: &Platform) -> Result<Descriptor> {
        let (body, mt, digest) = self.manifest_raw(r).await?;
        let (body, mt, digest) = match classify(&body, Some(&mt))?.0 {
            Kind::Manifest => (body, mt, digest),
            Kind::Index => {
                let index: Value = serde_json::from_slice(&body).map_err(|e| Error::InvalidInput(e.to_string()))?;
                let list = index["manifests"].as_array().cloned().unwrap_or_default();
                let chosen = wharf_image::platform::select(&list, platform)
                    .ok_or_else(|| Error::NotFound { reference: format!("{r} for platform {platform}") })?;
                let cd = chosen["digest"].as_str().unwrap_or_default().to_string();
                let child = Reference::parse(&format!("{}@{cd}", r.repository()))?;
                let (b, mt, d) = self.manifest_raw(&child).await?;
                (b, mt, d)
            }
        };
        let m: Value = serde_json::from_slice(&body).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let cd = m["config"]["digest"].as_str().ok_or_else(|| Error::InvalidInput("manifest without config".into()))?;
        if !store.blobs().exists(&wharf_image::digest::parse(cd)?) {
            let cfg = self.blob_bytes(r.path(), cd, MAX_MANIFEST).await?;
            store.blobs().put_bytes(&cfg)?;
        }
        let stored: Digest = store.blobs().put_bytes(&body)?;
        let mut seen = vec![digest.clone(), cd.to_string()];
        seen.extend(
            m["layers"].as_array().into_iter().flatten().filter_map(|l| l["digest"].as_str().map(String::from)),
        );
        record_sources(store, &self.host, r.path(), &seen)?;
        Ok(Descriptor::new(wharf_image::spec::MediaType::from(mt.as_str()), body.len() as u64, stored))
    }

    /// Pushes `manifest` (of `media_type`) and `blobs` of the store to
    /// `dest`: blobs the registry has are skipped, others mounted when a
    /// known repository holds them, else uploaded.
    pub async fn push_manifest_with(
        &self,
        store: &Store,
        dest: &Reference,
        (manifest, media_type): (&[u8], &str),
        blobs: &[(String, u64)],
        opts: &PushOptions,
    ) -> Result<Pushed> {
        if manifest.len() > MAX_MANIFEST {
            return Err(Error::InvalidInput(format!("manifest larger than {MAX_MANIFEST} bytes")));
        }
        let m = ManifestPlan {
            digest: wharf_image::digest::of_bytes(manifest).to_string(),
            media_type: media_type.to_string(),
            bytes: manifest.to_vec(),
        };
        let b = blobs.iter().map(|(d, s)| BlobPlan { digest: d.clone(), size: *s }).collect();
        self.push_planned(store, dest, vec![m], b, opts).await
    }
}
