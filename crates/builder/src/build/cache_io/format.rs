//! BuildKit's distributable cache format (`cache/remotecache/v1`): a config
//! blob of media type `application/vnd.buildkit.cacheconfig.v0` holding the
//! layers (blob, parent layer) and the records (cache key digest, inputs
//! linking to other records, results naming the top layer of a chain).
//! Field names and Go's `omitempty` quirks are kept: a missing `parent` is
//! layer 0, as BuildKit reads it.
//!
//! wharf's records carry one field BuildKit does not know and ignores:
//! `wharf.config`, the image config after the step (BuildKit's frontend
//! recomputes the config; wharf's cache keys cover it instead).

use super::super::state::ImageState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use wharf_image::spec::{Descriptor, MediaType};

pub(crate) const CONFIG_MEDIA_TYPE: &str = "application/vnd.buildkit.cacheconfig.v0";
/// containerd's label for the uncompressed digest, which BuildKit wants on cache layers.
pub(crate) const UNCOMPRESSED: &str = "containerd.io/uncompressed";
pub(crate) const CREATED_AT: &str = "buildkit/createdat";
/// The image config key of an inline cache (base64 of the records' JSON).
pub(crate) const INLINE_KEY: &str = "moby.buildkit.cache.v0";

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CacheConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<CacheLayer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<CacheRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CacheLayer {
    #[serde(default)]
    pub blob: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parent: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<LayerAnnotations>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LayerAnnotations {
    #[serde(rename = "mediaType", default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    #[serde(rename = "diffID", default, skip_serializing_if = "String::is_empty")]
    pub diff_id: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: i64,
    #[serde(rename = "createdAt", default)]
    pub created_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CacheRecord {
    #[serde(rename = "layers", default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<CacheResult>,
    #[serde(rename = "chains", default, skip_serializing_if = "Vec::is_empty")]
    pub chained: Vec<ChainedResult>,
    #[serde(default)]
    pub digest: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Vec<CacheInput>>,
    #[serde(rename = "wharf.config", default, skip_serializing_if = "Option::is_none")]
    pub wharf_config: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CacheResult {
    pub layer: i64,
    #[serde(rename = "createdAt", default)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChainedResult {
    pub layers: Vec<i64>,
    #[serde(rename = "createdAt", default)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CacheInput {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    pub link: i64,
}

/// A step's result as recorded during a build.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub parent: Option<String>,
    pub state: ImageState,
}

/// The cache config over `records` (key → result), parents before children.
pub(crate) fn to_config(records: &BTreeMap<String, Recorded>, created_at: &str) -> CacheConfig {
    let depth = |k: &str| {
        let mut d = 0;
        let mut cur = records.get(k).and_then(|r| r.parent.clone());
        while let Some(p) = cur {
            d += 1;
            cur = records.get(&p).and_then(|r| r.parent.clone());
            if d > records.len() {
                break;
            }
        }
        d
    };
    let mut order: Vec<&String> = records.keys().collect();
    order.sort_by_key(|k| (depth(k), (*k).clone()));
    let mut cfg = CacheConfig::default();
    let mut layer_idx: HashMap<(String, i64), i64> = HashMap::new();
    let mut rec_idx: HashMap<&str, i64> = HashMap::new();
    for k in order {
        let r = &records[k];
        let diff_ids: Vec<String> = r.state.config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let mut parent = -1;
        for (i, l) in r.state.layers.iter().enumerate() {
            let id = (l.digest().to_string(), parent);
            parent = *layer_idx.entry(id).or_insert_with(|| {
                cfg.layers.push(CacheLayer {
                    blob: l.digest().to_string(),
                    parent,
                    annotations: Some(LayerAnnotations {
                        media_type: l.media_type().to_string(),
                        diff_id: diff_ids.get(i).cloned().unwrap_or_default(),
                        size: l.size() as i64,
                        created_at: created_at.to_string(),
                    }),
                });
                cfg.layers.len() as i64 - 1
            });
        }
        let inputs = match r.parent.as_deref().and_then(|p| rec_idx.get(p)) {
            Some(&p) => vec![vec![CacheInput { selector: String::new(), link: p }]],
            None => Vec::new(),
        };
        let results =
            if parent >= 0 { vec![CacheResult { layer: parent, created_at: created_at.into() }] } else { Vec::new() };
        cfg.records.push(CacheRecord {
            results,
            chained: Vec::new(),
            digest: format!("sha256:{k}"),
            inputs,
            wharf_config: Some(r.state.config.clone()),
        });
        rec_idx.insert(k, cfg.records.len() as i64 - 1);
    }
    cfg
}

/// What a cache config gives wharf: each record of wharf's that is whole
/// (layers known, as many as its config's diff_ids), by key. `known` holds
/// the descriptors of the manifest or index that carried the config.
/// Returns the entries and how many records were not usable (BuildKit's own).
pub(crate) fn entries(
    cfg: &CacheConfig,
    known: &HashMap<String, Descriptor>,
) -> Result<(HashMap<String, ImageState>, usize), String> {
    let mut out = HashMap::new();
    let mut foreign = 0;
    for r in &cfg.records {
        let (Some(config), Some(key)) = (&r.wharf_config, r.digest.strip_prefix("sha256:")) else {
            foreign += 1;
            continue;
        };
        let chain: Vec<i64> = match (r.results.first(), r.chained.first()) {
            (Some(res), _) => chain_of(&cfg.layers, res.layer)?,
            (None, Some(c)) => c.layers.clone(),
            (None, None) => Vec::new(),
        };
        let mut layers = Vec::with_capacity(chain.len());
        for i in chain {
            let l = usize::try_from(i)
                .ok()
                .and_then(|i| cfg.layers.get(i))
                .ok_or_else(|| format!("record {}: no layer {i}", r.digest))?;
            layers.push(descriptor(l, known)?);
        }
        let n_diff = config["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len);
        if n_diff != layers.len() || !config.is_object() {
            // Not a state wharf can use (an inline record whose layers are not the image's).
            foreign += 1;
            continue;
        }
        out.insert(key.to_string(), ImageState { config: config.clone(), layers });
    }
    Ok((out, foreign))
}

/// The layer indexes from the bottom to layer `top`.
fn chain_of(layers: &[CacheLayer], top: i64) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    let mut cur = top;
    while cur >= 0 {
        if out.len() > layers.len() {
            return Err("the layers form a loop".into());
        }
        let l = layers.get(cur as usize).ok_or_else(|| format!("no layer {cur}"))?;
        out.push(cur);
        cur = l.parent;
    }
    out.reverse();
    Ok(out)
}

fn descriptor(l: &CacheLayer, known: &HashMap<String, Descriptor>) -> Result<Descriptor, String> {
    if let Some(d) = known.get(&l.blob) {
        // The cache's own annotations are not the image's: without them the
        // manifest is the one the cache was made from, byte for byte.
        let mut d = d.clone();
        let ann: Option<std::collections::HashMap<String, String>> = d.annotations().clone().map(|mut a| {
            a.retain(|k, _| k != UNCOMPRESSED && k != CREATED_AT && !k.starts_with("buildkit/"));
            a
        });
        d.set_annotations(ann.filter(|a| !a.is_empty()));
        return Ok(d);
    }
    let a = l.annotations.as_ref().ok_or_else(|| format!("layer {}: not in the manifest, no annotations", l.blob))?;
    let digest = wharf_image::digest::parse(&l.blob).map_err(|e| e.to_string())?;
    Ok(Descriptor::new(MediaType::from(a.media_type.as_str()), a.size.max(0) as u64, digest))
}

/// The descriptor of a layer in a cache manifest: BuildKit's annotations.
pub(crate) fn layer_descriptor(l: &CacheLayer) -> Value {
    let a = l.annotations.clone();
    let mut ann = serde_json::Map::new();
    if let Some(a) = &a {
        if !a.diff_id.is_empty() {
            ann.insert(UNCOMPRESSED.into(), Value::from(a.diff_id.clone()));
        }
        ann.insert(CREATED_AT.into(), Value::from(a.created_at.clone()));
    }
    serde_json::json!({
        "mediaType": a.as_ref().map(|a| a.media_type.clone()).unwrap_or_default(),
        "digest": l.blob,
        "size": a.as_ref().map_or(0, |a| a.size),
        "annotations": ann,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_omitempty_parent_reads_as_zero() {
        // BuildKit omits `"parent": 0`; reading it as -1 would drop layer 0 from chains.
        let cfg: CacheConfig = serde_json::from_str(
            r#"{"layers":[{"blob":"sha256:aa","parent":-1},{"blob":"sha256:bb"}],"records":[{"digest":"sha256:k","layers":[{"layer":1}]}]}"#,
        )
        .unwrap();
        assert_eq!(chain_of(&cfg.layers, 1).unwrap(), vec![0, 1]);
        let back = serde_json::to_string(&cfg.layers[1]).unwrap();
        assert!(!back.contains("parent"), "{back}");
    }

    #[test]
    fn looping_layers_are_an_error() {
        let layers = vec![CacheLayer { blob: "a".into(), parent: 0, annotations: None }];
        assert!(chain_of(&layers, 0).is_err());
    }
}
