//! Images in the store: listing, resolving names and IDs, tagging.

use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::layout::{Store, MAX_METADATA_BLOB};
use crate::platform::Platform;
use crate::reference::Reference;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use std::collections::HashMap;

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1";

/// An image resolved down to one platform's manifest and config.
#[derive(Debug, Clone)]
pub struct Image {
    /// What index.json points at: a manifest, or an index of them.
    pub target: Descriptor,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
}

impl Image {
    /// Docker's image ID: the config digest.
    pub fn id(&self) -> &Digest {
        &self.config_digest
    }
    /// Layer diffIDs, bottom first.
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        self.config.rootfs().diff_ids().iter().map(|s| digest::parse(s)).collect()
    }
    pub fn size(&self) -> u64 {
        self.manifest.layers().iter().map(|l| l.size()).sum::<u64>() + self.manifest.config().size()
    }
}

/// One row of `wharf images`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageSummary {
    /// Tags pointing at this image (fully qualified); empty when dangling.
    pub names: Vec<String>,
    pub id: String,
    pub digest: String,
    pub created: Option<String>,
    pub size: u64,
}

pub fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str)
}

/// The platform this process runs on, in OCI terms.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

pub(crate) fn is_index(mt: &MediaType) -> bool {
    matches!(mt, MediaType::ImageIndex) || mt.to_string() == DOCKER_MANIFEST_LIST
}

pub(crate) fn is_manifest(mt: &MediaType) -> bool {
    matches!(mt, MediaType::ImageManifest) || mt.to_string() == DOCKER_MANIFEST
}

/// Normalises a user's name the way index.json stores it.
fn canonical(name: &str) -> Option<String> {
    Reference::parse(name).ok().map(|r| r.to_string())
}

impl Store {
    /// Follows `desc` down to this host's image manifest. An index with no
    /// entry for the host gives its first platform whose manifest is here,
    /// as Docker runs a foreign image (under emulation) when asked to.
    pub fn load_image(&self, desc: &Descriptor) -> Result<Image> {
        self.load_image_with(desc, None)
    }

    /// Follows `desc` down to `platform`'s image manifest (strictly: an
    /// index without it, or a manifest of another platform, is not found).
    pub fn load_image_for(&self, desc: &Descriptor, platform: &Platform) -> Result<Image> {
        let img = self.load_image_with(desc, Some(platform))?;
        let have = Platform::normalized(
            &img.config.os().to_string(),
            &img.config.architecture().to_string(),
            img.config.variant().as_deref().unwrap_or(""),
        );
        if !platform.accepts(&have) {
            return Err(Error::ImageNotFound(format!("{}: is {have}, not {platform}", desc.digest())));
        }
        Ok(img)
    }

    /// `name` resolved to `platform`'s image, strictly.
    pub fn resolve_for(&self, name: &str, platform: &Platform) -> Result<Image> {
        let entry = self.entry(name)?;
        self.load_image_for(&entry, platform)
    }

    /// What index.json holds for a name, digest reference or ID prefix.
    pub fn entry(&self, name: &str) -> Result<Descriptor> {
        let index = self.index()?;
        find_entry(self, &index, name)
    }

    fn load_image_with(&self, desc: &Descriptor, want: Option<&Platform>) -> Result<Image> {
        let mut cur = desc.clone();
        for _ in 0..4 {
            let mt = cur.media_type().clone();
            if mt.to_string().starts_with(DOCKER_SCHEMA1) {
                return Err(Error::Unsupported(format!(
                    "{}: Docker schema 1 manifests are not supported",
                    cur.digest()
                )));
            }
            let bytes = self.blobs().read(cur.digest(), MAX_METADATA_BLOB)?;
            if is_index(&mt) {
                let idx: ImageIndex = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::malformed(format!("index {}", cur.digest()), e))?;
                let p = want.cloned().unwrap_or_else(Platform::host);
                cur = self
                    .pick_platform(&idx, &p, want.is_none())
                    .ok_or_else(|| Error::ImageNotFound(format!("{}: no manifest for {p}", cur.digest())))?;
                continue;
            }
            if !is_manifest(&mt) {
                return Err(Error::Unsupported(format!("{}: media type {mt} is not an image", cur.digest())));
            }
            let manifest: ImageManifest = serde_json::from_slice(&bytes)
                .map_err(|e| Error::malformed(format!("manifest {}", cur.digest()), e))?;
            let config_digest = manifest.config().digest().clone();
            let cbytes = self.blobs().read(&config_digest, MAX_METADATA_BLOB)?;
            let config: ImageConfiguration =
                serde_json::from_slice(&cbytes).map_err(|e| Error::malformed(format!("config {config_digest}"), e))?;
            return Ok(Image {
                target: desc.clone(),
                manifest_digest: cur.digest().clone(),
                manifest,
                config_digest,
                config,
            });
        }
        Err(Error::malformed(format!("index {}", desc.digest()), "nested too deep"))
    }

    /// Every image in the store, one row per distinct target.
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        let index = self.index()?;
        let mut order: Vec<Digest> = Vec::new();
        let mut by_digest: HashMap<Digest, (Descriptor, Vec<String>)> = HashMap::new();
        for d in index.manifests() {
            let e = by_digest.entry(d.digest().clone()).or_insert_with(|| {
                order.push(d.digest().clone());
                (d.clone(), Vec::new())
            });
            if let Some(n) = ref_name(d) {
                e.1.push(n.to_string());
            }
        }
        let mut out = Vec::new();
        for dg in order {
            let (desc, names) = &by_digest[&dg];
            let img = self.load_image(desc)?;
            out.push(ImageSummary {
                names: names.clone(),
                id: img.config_digest.to_string(),
                digest: dg.to_string(),
                created: img.config.created().clone(),
                size: img.size(),
            });
        }
        Ok(out)
    }

    /// Finds the index entry for a name, a digest reference, or an ID prefix.
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let entry = self.entry(name)?;
        self.load_image(&entry)
    }

    /// Points `reference` at `target`. A target that loses its last name this
    /// way stays in the store as a dangling image, as Docker keeps it.
    pub fn set_tag(&self, reference: &Reference, target: &Descriptor) -> Result<()> {
        if reference.tag().is_none() && reference.digest().is_none() {
            return Err(Error::InvalidReference {
                reference: reference.to_string(),
                reason: "a tag or digest is required".into(),
            });
        }
        let name = reference.to_string();
        let mut desc = target.clone();
        let mut ann = desc.annotations().clone().unwrap_or_default();
        ann.insert(REF_NAME.to_string(), name.clone());
        desc.set_annotations(Some(ann));
        self.update_index(|idx| {
            let mut list = idx.manifests().clone();
            let old: Vec<Descriptor> = list.iter().filter(|d| ref_name(d) == Some(&name)).cloned().collect();
            list.retain(|d| ref_name(d) != Some(&name) && !(ref_name(d).is_none() && d.digest() == target.digest()));
            for o in old {
                if o.digest() != target.digest() && !list.iter().any(|d| d.digest() == o.digest()) {
                    list.push(untagged(&o));
                }
            }
            list.push(desc);
            idx.set_manifests(list);
            Ok(())
        })
    }

    /// `wharf tag SRC DST`.
    pub fn tag(&self, src: &str, dst: &str) -> Result<Reference> {
        let _content = self.content_lock()?;
        let dst = Reference::parse(dst)?;
        let img = self.resolve(src)?;
        self.set_tag(&dst, &img.target)?;
        Ok(dst)
    }

    /// Adds an image with no name (a build's intermediate, a loaded image without tags).
    pub fn add_untagged(&self, target: &Descriptor) -> Result<()> {
        self.update_index(|idx| {
            if !idx.manifests().iter().any(|d| d.digest() == target.digest()) {
                let mut list = idx.manifests().clone();
                list.push(untagged(target));
                idx.set_manifests(list);
            }
            Ok(())
        })
    }
}

fn untagged(d: &Descriptor) -> Descriptor {
    let mut d = d.clone();
    if let Some(mut a) = d.annotations().clone() {
        a.remove(REF_NAME);
        d.set_annotations(if a.is_empty() { None } else { Some(a) });
    }
    d
}

impl Store {
    /// The entry of `idx` for `want`; with `lenient`, when the index lists
    /// no such platform, its only entry or its first one that is here.
    fn pick_platform(&self, idx: &ImageIndex, want: &Platform, lenient: bool) -> Option<Descriptor> {
        let plat = |m: &Descriptor| {
            m.platform().as_ref().map(|p| {
                Platform::normalized(
                    &p.os().to_string(),
                    &p.architecture().to_string(),
                    p.variant().as_deref().unwrap_or(""),
                )
            })
        };
        let list = idx.manifests();
        let found = list
            .iter()
            .find(|m| plat(m).as_ref() == Some(want))
            .or_else(|| list.iter().find(|m| plat(m).is_some_and(|p| want.accepts(&p))));
        if found.is_some() || !lenient {
            return found
                .or_else(|| if list.len() == 1 && plat(&list[0]).is_none() { list.first() } else { None })
                .cloned();
        }
        let usable = |m: &&Descriptor| {
            is_manifest(m.media_type()) && plat(m).is_some_and(|p| p.os != "unknown") && self.blobs().exists(m.digest())
        };
        if list.len() == 1 { list.first() } else { list.iter().find(usable) }.cloned()
    }
}

fn looks_like_id(name: &str) -> Option<&str> {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    (hex.len() >= 4 && hex.len() <= 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

fn find_entry(store: &Store, index: &ImageIndex, name: &str) -> Result<Descriptor> {
    let entries = index.manifests();
    // Exact stored names first: foreign layouts (umoci, skopeo) tag with bare words.
    if let Some(d) = entries.iter().find(|d| ref_name(d) == Some(name)) {
        return Ok(d.clone());
    }
    if let Some(c) = canonical(name) {
        if let Some(d) = entries.iter().find(|d| ref_name(d) == Some(c.as_str())) {
            return Ok(d.clone());
        }
    }
    if let Ok(r) = Reference::parse(name) {
        if let Some(dg) = r.digest() {
            if let Some(d) = entries.iter().find(|d| d.digest().to_string() == dg) {
                return Ok(d.clone());
            }
        }
    }
    if let Some(hex) = looks_like_id(name) {
        let mut found: Vec<Descriptor> = Vec::new();
        for d in entries {
            let hit = d.digest().digest().starts_with(hex)
                || store.load_image(d).is_ok_and(|i| i.config_digest.digest().starts_with(hex));
            if hit && !found.iter().any(|f| f.digest() == d.digest()) {
                found.push(d.clone());
            }
        }
        match found.len() {
            0 => {}
            1 => return Ok(found.remove(0)),
            _ => return Err(Error::Conflict(format!("image ID prefix {name:?} is ambiguous"))),
        }
    }
    Reference::parse(name)?; // a malformed name says why
    Err(Error::ImageNotFound(name.to_string()))
}
