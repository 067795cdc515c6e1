//! The image a stage is building: its config JSON (kept whole, so fields we
//! do not model survive from the base image) and its layers.

use super::error::{BuildError, BuildResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use wharf_image::spec::Descriptor;
use wharf_image::{Digest, Store};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ImageState {
    pub config: Value,
    pub layers: Vec<Descriptor>,
}

impl ImageState {
    /// `FROM scratch`.
    pub(crate) fn scratch(p: &wharf_image::Platform) -> Self {
        let mut config = json!({"architecture": p.arch, "os": p.os,
            // BuildKit and buildah give a scratch image the default PATH.
            "config": {"Env": [wharf_runtime::spec::DEFAULT_PATH_ENV]},
            "rootfs": {"type": "layers", "diff_ids": []}, "history": []});
        if !p.variant.is_empty() {
            config["variant"] = json!(p.variant);
        }
        ImageState { config, layers: Vec::new() }
    }

    /// The platform the config says (None when it says none).
    pub(crate) fn platform(&self) -> Option<wharf_image::Platform> {
        wharf_image::Platform::from_json(&self.config)
    }

    /// A stored image, its config as raw JSON.
    pub(crate) fn from_image(store: &Store, img: &wharf_image::Image) -> BuildResult<Self> {
        let raw = store.blobs().read(&img.config_digest, 16 << 20)?;
        let mut config: Value =
            serde_json::from_slice(&raw).map_err(|e| BuildError::Invalid(format!("base image config: {e}")))?;
        if !config["config"].is_object() {
            config["config"] = json!({});
        }
        // A base's inline build cache is about the base, not what is built on it.
        if let Some(o) = config.as_object_mut() {
            o.remove("moby.buildkit.cache.v0");
        }
        Ok(ImageState { config, layers: img.manifest.layers().clone() })
    }

    /// A stage's base without PATH gets the default one, appended, as
    /// BuildKit and buildah give it.
    pub(crate) fn ensure_path(&mut self) {
        let mut env = self.env();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(wharf_runtime::spec::DEFAULT_PATH_ENV.to_string());
            self.cfg().insert("Env".into(), json!(env));
        }
    }

    pub(crate) fn cfg(&mut self) -> &mut Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"].as_object_mut().expect("config is an object")
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.config["config"].get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn env(&self) -> Vec<String> {
        self.get("Env")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    pub(crate) fn diff_ids(&self) -> BuildResult<Vec<Digest>> {
        let ids = self.config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
        ids.iter().map(|v| Ok(wharf_image::digest::parse(v.as_str().unwrap_or_default())?)).collect()
    }

    /// Adds a layer (`None`: a metadata-only step) and its history entry.
    pub(crate) fn record(&mut self, created: &str, created_by: &str, layer: Option<(Descriptor, Digest)>) {
        let empty = layer.is_none();
        if let Some((desc, diff_id)) = layer {
            if let Some(ids) = self.config["rootfs"]["diff_ids"].as_array_mut() {
                ids.push(json!(diff_id.to_string()));
            } else {
                self.config["rootfs"] = json!({"type": "layers", "diff_ids": [diff_id.to_string()]});
            }
            self.layers.push(desc);
        }
        let mut h = json!({"created": created, "created_by": created_by, "comment": "wharf build"});
        if empty {
            h["empty_layer"] = json!(true);
        }
        match self.config["history"].as_array_mut() {
            Some(a) => a.push(h),
            None => self.config["history"] = json!([h]),
        }
        self.config["created"] = json!(created);
    }

    /// Config and manifest blobs into the store; returns the manifest's descriptor.
    /// `annotations` go into the manifest (`--annotation`).
    pub(crate) fn commit(
        &self,
        store: &Store,
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> BuildResult<Descriptor> {
        if annotations.is_empty() {
            return Ok(store.put_image(&self.config, self.layers.clone())?);
        }
        let cbytes = serde_json::to_vec(&self.config).map_err(|e| BuildError::Invalid(format!("config: {e}")))?;
        let cdigest = store.blobs().put_bytes(&cbytes)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": wharf_image::spec::MediaType::ImageManifest.to_string(),
            "config": {"mediaType": wharf_image::spec::MediaType::ImageConfig.to_string(),
                "digest": cdigest.to_string(), "size": cbytes.len()},
            "layers": self.layers,
            "annotations": annotations,
        });
        let mbytes = serde_json::to_vec(&manifest).map_err(|e| BuildError::Invalid(format!("manifest: {e}")))?;
        let mdigest = store.blobs().put_bytes(&mbytes)?;
        Ok(Descriptor::new(wharf_image::spec::MediaType::ImageManifest, mbytes.len() as u64, mdigest))
    }
}
