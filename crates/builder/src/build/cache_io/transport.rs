//! Where caches live: a registry (a manifest whose config is the cache
//! config, BuildKit's `image-manifest=true` form, which every registry
//! accepts), an OCI layout directory (as BuildKit's type=local), or inline
//! in an image config. Reading also takes BuildKit's index form (the cache
//! config and layers as entries of an OCI index).

use super::format::{self, CacheConfig, CacheLayer, CacheRecord, Recorded, CONFIG_MEDIA_TYPE, INLINE_KEY};
use super::{BlobSource, CacheIo, CacheLocation, CacheSpec, ExportCtx};
use crate::build::error::{BuildError, BuildResult};
use crate::build::state::ImageState;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use wharf_image::spec::Descriptor;
use wharf_image::{Platform, Reference, Store};

/// Cache configs and manifests are small; wharf's carry image configs too.
const MAX_DOC: usize = 16 << 20;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub(super) struct Imported {
    pub entries: HashMap<String, ImageState>,
    pub foreign: usize,
    pub source: BlobSource,
}

pub(super) fn describe(loc: &CacheLocation) -> String {
    match loc {
        CacheLocation::Registry(r) => r.to_string(),
        CacheLocation::Local { dir, tag } => format!("{}:{tag}", dir.display()),
        CacheLocation::Inline => "inline".into(),
    }
}

fn invalid(what: impl std::fmt::Display) -> BuildError {
    BuildError::Invalid(what.to_string())
}

/// Reads a manifest (`true`) or blob (`false`) by digest.
type Reader<'a> = dyn Fn(&str, bool) -> BuildResult<Vec<u8>> + 'a;

pub(super) fn import(store: &Store, loc: &CacheLocation) -> BuildResult<Imported> {
    match loc {
        CacheLocation::Registry(r) => {
            let reg = wharf_registry::Registry::new(r.domain(), wharf_registry::RegistryOptions::default())?;
            let (top, _, _) = wharf_registry::block_on(reg.manifest_raw(r))?;
            let read = |d: &str, manifest: bool| -> BuildResult<Vec<u8>> {
                if manifest {
                    let child = Reference::parse(&format!("{}@{d}", r.repository()))?;
                    Ok(wharf_registry::block_on(reg.manifest_raw(&child))?.0)
                } else {
                    Ok(wharf_registry::block_on(reg.blob_bytes(r.path(), d, MAX_DOC))?)
                }
            };
            let (entries, foreign) = parse_top(&top, &read, 0)?;
            let digests: Vec<String> =
                entries.values().flat_map(|s| s.layers.iter().map(|l| l.digest().to_string())).collect();
            wharf_registry::record_sources(store, reg.host(), r.path(), &digests)?;
            let source = BlobSource::Registry { host: reg.host().to_string(), repo: r.path().to_string() };
            Ok(Imported { entries, foreign, source })
        }
        CacheLocation::Local { dir, tag } => {
            let index = std::fs::read(dir.join("index.json"))
                .map_err(|e| BuildError::io(format!("read {}/index.json", dir.display()), e))?;
            let index: Value =
                serde_json::from_slice(&index).map_err(|e| invalid(format!("{}/index.json: {e}", dir.display())))?;
            let list = index["manifests"].as_array().cloned().unwrap_or_default();
            let entry = list
                .iter()
                .find(|m| m["annotations"][REF_NAME].as_str() == Some(tag.as_str()))
                .or(if list.len() == 1 { list.first() } else { None })
                .ok_or_else(|| invalid(format!("{}: no cache tagged {tag:?} in index.json", dir.display())))?;
            let read = |d: &str, _: bool| read_local(dir, d);
            let top = read(entry["digest"].as_str().unwrap_or_default(), true)?;
            let (entries, foreign) = parse_top(&top, &read, 0)?;
            Ok(Imported { entries, foreign, source: BlobSource::Local(dir.clone()) })
        }
        CacheLocation::Inline => Err(invalid("an inline cache is read from the image: use type=registry,ref=IMAGE")),
    }
}

fn blob_path(dir: &Path, digest: &str) -> BuildResult<std::path::PathBuf> {
    let d = wharf_image::digest::parse(digest)?;
    Ok(dir.join("blobs/sha256").join(wharf_image::digest::hex(&d)))
}

fn read_local(dir: &Path, digest: &str) -> BuildResult<Vec<u8>> {
    let p = blob_path(dir, digest)?;
    let b = std::fs::read(&p).map_err(|e| BuildError::io(format!("read {}", p.display()), e))?;
    if b.len() > MAX_DOC || wharf_image::digest::of_bytes(&b).to_string() != digest {
        return Err(invalid(format!("{}: not the blob {digest}", p.display())));
    }
    Ok(b)
}

pub(super) fn copy_local_blob(store: &Store, dir: &Path, l: &Descriptor) -> BuildResult<u64> {
    let p = blob_path(dir, l.digest().as_ref())?;
    let mut f = std::fs::File::open(&p).map_err(|e| BuildError::io(format!("open {}", p.display()), e))?;
    Ok(store.blobs().put_reader(&mut f, Some((l.digest(), l.size())))?.1)
}

fn descriptors(list: &[Value]) -> HashMap<String, Descriptor> {
    list.iter()
        .filter_map(|v| serde_json::from_value::<Descriptor>(v.clone()).ok())
        .map(|d| (d.digest().to_string(), d))
        .collect()
}

/// The entries of a cache manifest or index, or the inline cache of an image.
fn parse_top(body: &[u8], read: &Reader, depth: u8) -> BuildResult<(HashMap<String, ImageState>, usize)> {
    let v: Value = serde_json::from_slice(body).map_err(|e| invalid(format!("cache manifest is not JSON: {e}")))?;
    let as_config = |desc: &Value, known: HashMap<String, Descriptor>| {
        let raw = read(desc["digest"].as_str().unwrap_or_default(), false)?;
        let cfg: CacheConfig =
            serde_json::from_slice(&raw).map_err(|e| invalid(format!("cache config is not BuildKit's v0: {e}")))?;
        format::entries(&cfg, &known).map_err(|e| invalid(format!("cache config: {e}")))
    };
    if let Some(list) = v["manifests"].as_array() {
        if let Some(c) = list.iter().find(|m| m["mediaType"] == CONFIG_MEDIA_TYPE) {
            return as_config(c, descriptors(list));
        }
        // An image index: the host's image, for its inline cache.
        let child = wharf_image::platform::select(list, &Platform::host())
            .ok_or_else(|| invalid("an image index without this platform's image and no cache config"))?;
        if depth > 0 {
            return Err(invalid("nested indexes"));
        }
        let body = read(child["digest"].as_str().unwrap_or_default(), true)?;
        return parse_top(&body, read, depth + 1);
    }
    let layers = v["layers"].as_array().cloned().unwrap_or_default();
    if v["config"]["mediaType"] == CONFIG_MEDIA_TYPE {
        return as_config(&v["config"], descriptors(&layers));
    }
    if v["config"].is_object() {
        let raw = read(v["config"]["digest"].as_str().unwrap_or_default(), false)?;
        let img: Value = serde_json::from_slice(&raw).map_err(|e| invalid(format!("image config: {e}")))?;
        return inline_entries(&img, &layers);
    }
    Err(invalid("neither a cache manifest (config application/vnd.buildkit.cacheconfig.v0) nor an image"))
}

/// BuildKit's inline cache: base64 of the records' JSON in the image
/// config; layer i of the image is cache layer i, its parent i-1.
fn inline_entries(img: &Value, layers: &[Value]) -> BuildResult<(HashMap<String, ImageState>, usize)> {
    let b64 = img[INLINE_KEY].as_str().ok_or_else(|| {
        invalid(format!("the image has no inline cache ({INLINE_KEY}): build it with --cache-to type=inline"))
    })?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| invalid(format!("inline cache is not base64: {e}")))?;
    let records: Vec<CacheRecord> =
        serde_json::from_slice(&raw).map_err(|e| invalid(format!("inline cache records: {e}")))?;
    let cfg = CacheConfig {
        layers: layers
            .iter()
            .enumerate()
            .map(|(i, l)| CacheLayer {
                blob: l["digest"].as_str().unwrap_or_default().to_string(),
                parent: i as i64 - 1,
                annotations: None,
            })
            .collect(),
        records,
    };
    format::entries(&cfg, &descriptors(layers)).map_err(|e| invalid(format!("inline cache: {e}")))
}

/// Puts the inline cache of `records` into the final image's config.
pub(super) fn inline_into(state: &mut ImageState, records: &BTreeMap<String, Recorded>, created_at: &str) {
    let cfg = format::to_config(records, created_at);
    let image: Vec<String> = state.layers.iter().map(|l| l.digest().to_string()).collect();
    let mut out = Vec::new();
    for mut r in cfg.records {
        // Results must be a prefix of the image's layers; others are dropped.
        if let Some(res) = r.results.first_mut() {
            let chain = chain_blobs(&cfg.layers, res.layer);
            if chain.len() > image.len() || chain[..] != image[..chain.len()] {
                continue;
            }
            res.layer = chain.len() as i64 - 1;
        }
        out.push(r);
    }
    let raw = serde_json::to_vec(&out).unwrap_or_default();
    state.config[INLINE_KEY] = json!(base64::engine::general_purpose::STANDARD.encode(raw));
}

fn chain_blobs(layers: &[CacheLayer], top: i64) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = top;
    while cur >= 0 && out.len() <= layers.len() {
        let Some(l) = layers.get(cur as usize) else { break };
        out.push(l.blob.clone());
        cur = l.parent;
    }
    out.reverse();
    out
}

/// The manifest over a cache config: its bytes, media type, and blobs.
fn manifest(cfg: &CacheConfig, config_digest: &str, config_len: usize, oci: bool) -> (Vec<u8>, &'static str) {
    let mt = if oci { OCI_MANIFEST } else { DOCKER_MANIFEST };
    let m = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_len},
        "layers": cfg.layers.iter().map(format::layer_descriptor).collect::<Vec<_>>(),
    });
    (serde_json::to_vec(&m).unwrap_or_default(), mt)
}

pub(super) fn export(
    store: &Store,
    io: &CacheIo,
    spec: &CacheSpec,
    records: &BTreeMap<String, Recorded>,
    ctx: &ExportCtx,
) -> BuildResult<String> {
    let cfg = format::to_config(records, &ctx.created_at);
    let raw = serde_json::to_vec(&cfg).map_err(|e| invalid(format!("cache config: {e}")))?;
    let cdigest = wharf_image::digest::of_bytes(&raw).to_string();
    let (mbytes, mt) = manifest(&cfg, &cdigest, raw.len(), spec.oci_mediatypes);
    let layer_descs: Vec<Descriptor> = cfg
        .layers
        .iter()
        .filter_map(|l| serde_json::from_value::<Descriptor>(format::layer_descriptor(l)).ok())
        .collect();
    let summary = format!("{} records, {} layers", cfg.records.len(), cfg.layers.len());
    match &spec.location {
        CacheLocation::Registry(r) => {
            store.blobs().put_bytes(&raw)?;
            let reg = wharf_registry::Registry::new(r.domain(), wharf_registry::RegistryOptions::default())?;
            // Layers only another registry has are fetched to be uploaded here.
            let elsewhere: Vec<Descriptor> = layer_descs
                .iter()
                .filter(|l| !store.blobs().exists(l.digest()) && !io.on_host(l, reg.host()))
                .cloned()
                .collect();
            io.fetch(store, &elsewhere, ctx.say)?;
            let mut blobs: Vec<(String, u64)> =
                layer_descs.iter().map(|l| (l.digest().to_string(), l.size())).collect();
            blobs.push((cdigest, raw.len() as u64));
            let pushed = wharf_registry::block_on(reg.push_manifest_with(
                store,
                r,
                (&mbytes, mt),
                &blobs,
                &wharf_registry::PushOptions::default(),
            ))?;
            Ok(format!("exported cache to {r}: {summary}, {} blob(s) uploaded", pushed.uploaded))
        }
        CacheLocation::Local { dir, tag } => {
            io.fetch(store, &layer_descs, ctx.say)?;
            write_layout(store, dir, tag, &layer_descs, &[&raw, &mbytes], mt)?;
            Ok(format!("exported cache to {}: {summary}", dir.display()))
        }
        CacheLocation::Inline => Ok(String::new()),
    }
}

/// An OCI layout: blobs, `oci-layout`, index.json naming the manifest (the last of `docs`) `tag`.
fn write_layout(
    store: &Store,
    dir: &Path,
    tag: &str,
    layers: &[Descriptor],
    docs: &[&[u8]],
    mt: &str,
) -> BuildResult<()> {
    let io = |what: &Path, e| BuildError::io(format!("write {}", what.display()), e);
    std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| io(dir, e))?;
    for l in layers {
        let dest = blob_path(dir, l.digest().as_ref())?;
        if !dest.exists() {
            let tmp = dest.with_extension("tmp");
            std::fs::copy(store.blobs().path(l.digest()), &tmp)
                .and_then(|_| std::fs::rename(&tmp, &dest))
                .map_err(|e| io(&dest, e))?;
        }
    }
    for d in docs {
        let dest = blob_path(dir, wharf_image::digest::of_bytes(d).as_ref())?;
        std::fs::write(&dest, d).map_err(|e| io(&dest, e))?;
    }
    let top = docs.last().copied().unwrap_or_default();
    let mut list: Vec<Value> = std::fs::read(dir.join("index.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["manifests"].as_array().cloned())
        .unwrap_or_default();
    list.retain(|m| m["annotations"][REF_NAME].as_str() != Some(tag));
    list.push(json!({"mediaType": mt, "digest": wharf_image::digest::of_bytes(top).to_string(),
        "size": top.len(), "annotations": {REF_NAME: tag}}));
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": list});
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(|e| io(dir, e))?;
    let tmp = dir.join(format!("index.json.tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(&index).unwrap_or_default())
        .and_then(|()| std::fs::rename(&tmp, dir.join("index.json")))
        .map_err(|e| io(&dir.join("index.json"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BuildKit's default registry form: an index holding the cache config and the layers.
    #[test]
    fn reads_buildkits_index_form_and_counts_its_records_as_unusable() {
        let layer = "sha256:".to_string() + &"a".repeat(64);
        let cfg = json!({"layers": [{"blob": layer, "parent": -1}],
            "records": [{"digest": "sha256:llb1"}, {"digest": "sha256:llb2", "layers": [{"layer": 0}],
                "inputs": [[{"selector": "sha256:sel", "link": 0}]]}]})
        .to_string();
        let cd = wharf_image::digest::of_bytes(cfg.as_bytes()).to_string();
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 10,
             "annotations": {"containerd.io/uncompressed": layer}},
            {"mediaType": CONFIG_MEDIA_TYPE, "digest": cd, "size": cfg.len()}]});
        let read = |d: &str, _: bool| if d == cd { Ok(cfg.clone().into_bytes()) } else { Err(invalid("no")) };
        let (entries, foreign) = parse_top(index.to_string().as_bytes(), &read, 0).unwrap();
        assert!(entries.is_empty());
        assert_eq!(foreign, 2);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let read = |_: &str, _: bool| Ok(b"{}".to_vec());
        let e = parse_top(b"not json", &read, 0).unwrap_err().to_string();
        assert!(e.contains("not JSON"), "{e}");
        let e = parse_top(br#"{"schemaVersion": 2}"#, &read, 0).unwrap_err().to_string();
        assert!(e.contains("neither a cache manifest"), "{e}");
    }
}
