use super::CONTAINERD_NAME;
use crate::compression;
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::images::{ref_name, Image};
use crate::layout::{Store, MAX_METADATA_BLOB};
use crate::reference::Reference;
use oci_spec::image::{Descriptor, ImageIndex, MediaType};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::io::Read;

/// What `load` added: an image and the name it got, if any.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub name: Option<Reference>,
    pub id: Digest,
}

/// Small metadata files read whole; everything else streams into blobs.
const METADATA_FILES: [&str; 4] = ["index.json", "oci-layout", "manifest.json", "repositories"];

#[derive(Default)]
struct Streamed {
    meta: HashMap<String, Vec<u8>>,
    /// Archive path → blob stored from it.
    files: HashMap<String, (Digest, u64)>,
    /// Blobs this load wrote that were not in the store before.
    created: HashSet<Digest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl Store {
    /// Loads every image of an OCI or Docker archive read from `r`.
    /// On failure, blobs it wrote that nothing references are removed again.
    pub fn load(&self, r: impl Read) -> Result<Vec<LoadedImage>> {
        let mut streamed = Streamed::default();
        let res = {
            let _content = self.content_lock()?;
            self.stream_archive(r, &mut streamed).and_then(|()| self.register(&streamed))
        };
        self.discard_unreferenced(&streamed.created)?;
        res
    }

    fn stream_archive(&self, r: impl Read, st: &mut Streamed) -> Result<()> {
        let mut ar = tar::Archive::new(r);
        let entries = ar.entries().map_err(|e| Error::malformed("archive", e))?;
        for e in entries {
            let mut e = e.map_err(|e| Error::malformed("archive", e))?;
            if e.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = String::from_utf8_lossy(&e.path_bytes()).trim_start_matches("./").to_string();
            if METADATA_FILES.contains(&path.as_str()) {
                let mut buf = Vec::new();
                (&mut e)
                    .take(MAX_METADATA_BLOB + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::malformed("archive", e))?;
                if buf.len() as u64 > MAX_METADATA_BLOB {
                    return Err(Error::malformed(format!("archive file {path}"), "too large"));
                }
                st.meta.insert(path, buf);
                continue;
            }
            let size = e.header().size().map_err(|e| Error::malformed("archive", e))?;
            let expected = match path.strip_prefix("blobs/sha256/") {
                Some(hex) => Some(digest::parse(&format!("sha256:{hex}"))?),
                None => None,
            };
            if let Some(d) = &expected {
                if self.blobs().exists(d) {
                    st.files.insert(path, (d.clone(), size));
                    continue;
                }
            }
            let (d, n) = self
                .blobs()
                .put_reader(&mut e, expected.as_ref().map(|d| (d, size)))
                .map_err(|err| with_path(err, &path))?;
            st.created.insert(d.clone());
            st.files.insert(path, (d, n));
        }
        Ok(())
    }

    fn register(&self, st: &Streamed) -> Result<Vec<LoadedImage>> {
        if st.meta.contains_key("index.json") && st.meta.contains_key("oci-layout") {
            self.register_oci(st)
        } else if let Some(m) = st.meta.get("manifest.json") {
            self.register_docker(st, m)
        } else {
            Err(Error::malformed("archive", "neither an OCI layout (index.json) nor a Docker archive (manifest.json)"))
        }
    }

    fn register_oci(&self, st: &Streamed) -> Result<Vec<LoadedImage>> {
        let index: ImageIndex =
            serde_json::from_slice(&st.meta["index.json"]).map_err(|e| Error::malformed("archive index.json", e))?;
        let mut out = Vec::new();
        for d in index.manifests() {
            let img = self.load_image(d)?;
            self.layer_paths(&img)?;
            let name = oci_name(d);
            self.name_image(&name, d)?;
            out.push(LoadedImage { name, id: img.config_digest });
        }
        Ok(out)
    }

    fn register_docker(&self, st: &Streamed, manifest: &[u8]) -> Result<Vec<LoadedImage>> {
        let entries: Vec<DockerEntry> =
            serde_json::from_slice(manifest).map_err(|e| Error::malformed("archive manifest.json", e))?;
        let file = |p: &str| {
            st.files
                .get(p.trim_start_matches("./"))
                .cloned()
                .ok_or_else(|| Error::malformed("archive", format!("{p} is named in manifest.json but missing")))
        };
        let mut out = Vec::new();
        for e in entries {
            let (config_digest, _) = file(&e.config)?;
            let _config: serde_json::Value =
                serde_json::from_slice(&self.blobs().read(&config_digest, MAX_METADATA_BLOB)?)
                    .map_err(|err| Error::malformed(format!("config {}", e.config), err))?;
            let mut layers = Vec::new();
            for l in &e.layers {
                let (d, size) = file(l)?;
                let c = compression::sniff_file(&mut self.blobs().open(&d)?)
                    .map_err(|err| Error::other(format!("read {l}"), err))?;
                layers.push(Descriptor::new(c.layer_media_type().into(), size, d));
            }
            let target = self.put_image_with_config(&config_digest, layers)?;
            let img: Image = self.load_image(&target)?;
            self.layer_paths(&img)?;
            let tags: Vec<Reference> =
                e.repo_tags.unwrap_or_default().iter().map(|t| Reference::parse(t)).collect::<Result<_>>()?;
            if tags.is_empty() {
                self.name_image(&None, &target)?;
                out.push(LoadedImage { name: None, id: img.config_digest.clone() });
            }
            for t in tags {
                self.name_image(&Some(t.clone()), &target)?;
                out.push(LoadedImage { name: Some(t), id: img.config_digest.clone() });
            }
        }
        Ok(out)
    }

    /// A manifest over an already stored config blob.
    fn put_image_with_config(&self, config: &Digest, layers: Vec<Descriptor>) -> Result<Descriptor> {
        let size = self.blobs().size(config)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MediaType::ImageManifest.to_string(),
            "config": {"mediaType": MediaType::ImageConfig.to_string(), "digest": config.to_string(), "size": size},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::malformed("manifest", e))?;
        let d = self.blobs().put_bytes(&bytes)?;
        Ok(Descriptor::new(MediaType::ImageManifest, bytes.len() as u64, d))
    }

    fn name_image(&self, name: &Option<Reference>, target: &Descriptor) -> Result<()> {
        let mut plain = target.clone();
        plain.set_annotations(None);
        match name {
            Some(r) => self.set_tag(r, &plain),
            None => self.add_untagged(&plain),
        }
    }

    /// Removes blobs in `created` that no image references (archive files
    /// that were not layers, or everything after a failed load).
    pub(crate) fn discard_unreferenced(&self, created: &HashSet<Digest>) -> Result<()> {
        self.discard(created, &HashSet::new())
    }
}

/// The name an OCI archive gives an entry: containerd's full-name
/// annotation, else a ref.name that is a full reference (a bare tag such
/// as `latest` names no repository, so the image loads untagged, as in Docker).
fn oci_name(d: &Descriptor) -> Option<Reference> {
    let ann = d.annotations().as_ref();
    ann.and_then(|a| a.get(CONTAINERD_NAME))
        .and_then(|n| Reference::parse(n).ok())
        .or_else(|| ref_name(d).filter(|n| n.contains('/')).and_then(|n| Reference::parse(n).ok()))
        .filter(|r| r.tag().is_some())
}

fn with_path(e: Error, path: &str) -> Error {
    match e {
        Error::DigestMismatch { what, digest, expected, actual } => {
            Error::DigestMismatch { what, digest: format!("{digest} (archive file {path})"), expected, actual }
        }
        e => e,
    }
}
