//! Image indexes in the store: the ones a multi-platform build makes and the
//! ones `wharf manifest create|add|annotate|rm` assembles by hand (as
//! `docker manifest` and `buildah manifest`). A list is an OCI image index
//! blob tagged in `index.json` like any image; its entries are the
//! platforms' manifests, which stay in the store as blobs.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::images::{is_index, ref_name};
use crate::layout::{Store, MAX_METADATA_BLOB};
use crate::platform::Platform;
use crate::reference::Reference;
use oci_spec::image::{Descriptor, MediaType};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// What `manifest add|annotate` may set on an entry.
#[derive(Debug, Default, Clone)]
pub struct EntryOptions {
    pub os: Option<String>,
    pub arch: Option<String>,
    pub variant: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

impl Store {
    /// Writes an OCI index over `entries` (each with its `platform`).
    pub fn put_index(&self, entries: &[Value], annotations: &BTreeMap<String, String>) -> Result<Descriptor> {
        let mut index = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::ImageIndex.to_string(),
            "manifests": entries,
        });
        if !annotations.is_empty() {
            index["annotations"] = json!(annotations);
        }
        let bytes = serde_json::to_vec(&index).map_err(|e| Error::malformed("index", e))?;
        let digest: Digest = self.blobs().put_bytes(&bytes)?;
        Ok(Descriptor::new(MediaType::ImageIndex, bytes.len() as u64, digest))
    }

    /// The index entry for a stored manifest: its descriptor and the platform
    /// its config says.
    pub fn index_entry(&self, manifest: &Descriptor) -> Result<Value> {
        let img = self.load_image(manifest)?;
        let cfg: Value = serde_json::from_slice(&self.blobs().read(&img.config_digest, MAX_METADATA_BLOB)?)
            .map_err(|e| Error::malformed("config", e))?;
        let platform = Platform::from_json(&cfg).unwrap_or_else(Platform::host);
        Ok(json!({
            "mediaType": manifest.media_type().to_string(),
            "digest": img.manifest_digest.to_string(),
            "size": self.blobs().size(&img.manifest_digest)?,
            "platform": platform.to_json(),
        }))
    }

    /// The raw JSON of the list `name` (an error if it is not an index).
    pub fn list(&self, name: &str) -> Result<(Descriptor, Value)> {
        let entry = self.entry(name)?;
        if !is_index(entry.media_type()) {
            return Err(Error::InvalidInput(format!("{name} is not a manifest list (it is an image)")));
        }
        let v = serde_json::from_slice(&self.blobs().read(entry.digest(), MAX_METADATA_BLOB)?)
            .map_err(|e| Error::malformed(format!("index {}", entry.digest()), e))?;
        Ok((entry, v))
    }

    /// `manifest create LIST [IMAGE…]`: a new list of the images' manifests
    /// (every platform of an image that is itself a list).
    pub fn create_list(&self, list: &Reference, images: &[String], amend: bool) -> Result<Descriptor> {
        let _content = self.content_lock()?;
        let mut entries = Vec::new();
        let mut annotations = BTreeMap::new();
        if let Ok(e) = self.entry(&list.to_string()) {
            if !amend {
                return Err(Error::Conflict(format!("{list} already exists (use --amend to add to it)")));
            }
            let (_, v) = self
                .list(&list.to_string())
                .map_err(|_| Error::Conflict(format!("{list} exists and is an image, not a list ({})", e.digest())))?;
            entries = v["manifests"].as_array().cloned().unwrap_or_default();
            annotations = serde_json::from_value(v["annotations"].clone()).unwrap_or_default();
        }
        for i in images {
            for e in self.entries_of(i)? {
                push_entry(&mut entries, e);
            }
        }
        self.replace_list(list, &entries, &annotations)
    }

    /// `manifest add LIST IMAGE`: adds (or replaces, by digest) the image's entries.
    pub fn add_to_list(&self, list: &str, image: &str, opts: &EntryOptions) -> Result<Descriptor> {
        let _content = self.content_lock()?;
        let (r, mut entries, annotations) = self.list_parts(list)?;
        for mut e in self.entries_of(image)? {
            apply(&mut e, opts);
            push_entry(&mut entries, e);
        }
        self.replace_list(&r, &entries, &annotations)
    }

    /// `manifest annotate LIST IMAGE`: changes the entry of IMAGE (a name in
    /// the store or a manifest digest in the list); with no IMAGE, the list's
    /// own annotations.
    pub fn annotate_list(&self, list: &str, image: Option<&str>, opts: &EntryOptions) -> Result<Descriptor> {
        let _content = self.content_lock()?;
        let (r, mut entries, mut annotations) = self.list_parts(list)?;
        let Some(image) = image else {
            annotations.extend(opts.annotations.clone());
            return self.replace_list(&r, &entries, &annotations);
        };
        let digests: Vec<String> = if image.starts_with("sha256:") {
            vec![image.to_string()]
        } else {
            self.entries_of(image)?.iter().filter_map(|e| e["digest"].as_str().map(str::to_string)).collect()
        };
        let mut hit = false;
        for e in entries.iter_mut().filter(|e| digests.iter().any(|d| e["digest"].as_str() == Some(d))) {
            apply(e, opts);
            hit = true;
        }
        if !hit {
            return Err(Error::ImageNotFound(format!("{image} is not in the list {list}")));
        }
        self.replace_list(&r, &entries, &annotations)
    }

    /// `manifest rm LIST…`: drops the list's name; the images it lists stay.
    pub fn remove_list(&self, name: &str) -> Result<()> {
        let (entry, _) = self.list(name)?;
        let want = Reference::parse(name).map(|r| r.to_string()).unwrap_or_else(|_| name.to_string());
        self.update_index(|idx| {
            let mut l = idx.manifests().clone();
            let before = l.len();
            l.retain(|d| !(d.digest() == entry.digest() && ref_name(d).is_some_and(|n| n == want || n == name)));
            if l.len() == before {
                return Err(Error::ImageNotFound(name.to_string()));
            }
            idx.set_manifests(l);
            Ok(())
        })
    }

    fn list_parts(&self, list: &str) -> Result<(Reference, Vec<Value>, BTreeMap<String, String>)> {
        let (_, v) = self.list(list)?;
        let r = Reference::parse(list)?;
        let entries = v["manifests"].as_array().cloned().unwrap_or_default();
        let annotations = serde_json::from_value(v["annotations"].clone()).unwrap_or_default();
        Ok((r, entries, annotations))
    }

    fn replace_list(&self, r: &Reference, entries: &[Value], ann: &BTreeMap<String, String>) -> Result<Descriptor> {
        let d = self.put_index(entries, ann)?;
        self.set_tag(r, &d)?;
        Ok(d)
    }

    /// Index entries for a stored image: its manifest, or each entry of a list.
    fn entries_of(&self, image: &str) -> Result<Vec<Value>> {
        let entry = self.entry(image)?;
        if is_index(entry.media_type()) {
            let v: Value = serde_json::from_slice(&self.blobs().read(entry.digest(), MAX_METADATA_BLOB)?)
                .map_err(|e| Error::malformed(format!("index {}", entry.digest()), e))?;
            let list = v["manifests"].as_array().cloned().unwrap_or_default();
            let here: Vec<Value> = list
                .into_iter()
                .filter(|m| {
                    m["digest"]
                        .as_str()
                        .and_then(|d| crate::digest::parse(d).ok())
                        .is_some_and(|d| self.blobs().exists(&d))
                })
                .collect();
            if here.is_empty() {
                return Err(Error::ImageNotFound(format!("{image}: none of its manifests is in the store")));
            }
            return Ok(here);
        }
        Ok(vec![self.index_entry(&entry)?])
    }
}

/// Adds `e`, replacing an entry with the same digest.
fn push_entry(entries: &mut Vec<Value>, e: Value) {
    entries.retain(|x| x["digest"] != e["digest"]);
    entries.push(e);
}

fn apply(e: &mut Value, opts: &EntryOptions) {
    let mut p = e["platform"].as_object().cloned().unwrap_or_default();
    let mut set = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            p.insert(k.to_string(), json!(v));
        }
    };
    set("os", &opts.os);
    set("architecture", &opts.arch);
    set("variant", &opts.variant);
    e["platform"] = Value::Object(p);
    if !opts.annotations.is_empty() {
        let mut a: Map<String, Value> = e["annotations"].as_object().cloned().unwrap_or_default();
        for (k, v) in &opts.annotations {
            a.insert(k.clone(), json!(v));
        }
        e["annotations"] = Value::Object(a);
    }
}
