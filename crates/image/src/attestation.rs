//! Attestations stored as BuildKit stores them: in an image index, next to
//! each platform's image manifest, an *attestation manifest* (platform
//! `unknown/unknown`, annotated `vnd.docker.reference.type=attestation-manifest`
//! and `vnd.docker.reference.digest=<the image manifest>`) whose layers are
//! in-toto statements (`application/vnd.in-toto+json`, each annotated with
//! its `in-toto.io/predicate-type`). Runtimes skip them by their platform.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::images::{is_index, Image};
use crate::layout::{Store, MAX_METADATA_BLOB};
use serde_json::{json, Value};

pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
pub const SLSA_PROVENANCE_V02: &str = "https://slsa.dev/provenance/v0.2";
pub const SPDX_DOCUMENT: &str = "https://spdx.dev/Document";

/// Whether an index entry is an attestation manifest.
pub fn is_attestation_entry(entry: &Value) -> bool {
    entry["annotations"][REFERENCE_TYPE].as_str() == Some(ATTESTATION_MANIFEST)
        || (entry["platform"]["os"] == "unknown" && entry["platform"]["architecture"] == "unknown")
}

/// One in-toto statement attached to an image manifest.
#[derive(Debug, Clone)]
pub struct Statement {
    pub predicate_type: String,
    /// The whole statement (`_type`, `subject`, `predicateType`, `predicate`).
    pub statement: Value,
}

impl Store {
    /// Writes an attestation manifest over `statements` (each an in-toto
    /// statement) for the image manifest `subject`; returns its index entry.
    pub fn put_attestations(&self, subject: &Digest, statements: &[Value]) -> Result<Value> {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for s in statements {
            let bytes = serde_json::to_vec(s).map_err(|e| Error::malformed("in-toto statement", e))?;
            let d = self.blobs().put_bytes(&bytes)?;
            let pt = s["predicateType"].as_str().unwrap_or_default();
            layers.push(json!({"mediaType": IN_TOTO_MEDIA_TYPE, "digest": d.to_string(), "size": bytes.len(),
                "annotations": {PREDICATE_TYPE: pt}}));
            diff_ids.push(d.to_string());
        }
        let config = json!({"architecture": "unknown", "os": "unknown", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let cbytes = serde_json::to_vec(&config).map_err(|e| Error::malformed("config", e))?;
        let cd = self.blobs().put_bytes(&cbytes)?;
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(),
                "size": cbytes.len()},
            "layers": layers});
        let mbytes = serde_json::to_vec(&manifest).map_err(|e| Error::malformed("manifest", e))?;
        let md = self.blobs().put_bytes(&mbytes)?;
        Ok(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(),
            "size": mbytes.len(),
            "annotations": {REFERENCE_DIGEST: subject.to_string(), REFERENCE_TYPE: ATTESTATION_MANIFEST},
            "platform": {"architecture": "unknown", "os": "unknown"}}))
    }

    /// The statements attached to `img`'s manifest in the index it was
    /// resolved through (none for a plain manifest, or when the store lacks
    /// the attestation manifest: `pull` fetches only the host's image).
    pub fn attestations(&self, img: &Image) -> Result<Vec<Statement>> {
        if !is_index(img.target.media_type()) {
            return Ok(Vec::new());
        }
        let index = self.read_json(img.target.digest())?;
        attestations_in(&index, &img.manifest_digest, &|d| self.read_json(d).ok())
    }

    fn read_json(&self, d: &Digest) -> Result<Value> {
        serde_json::from_slice(&self.blobs().read(d, MAX_METADATA_BLOB)?)
            .map_err(|e| Error::malformed(d.to_string(), e))
    }
}

/// The statements an index attaches to the manifest `subject`, read
/// through `fetch` (a store, a registry); blobs `fetch` cannot give are skipped.
pub fn attestations_in(
    index: &Value,
    subject: &Digest,
    fetch: &dyn Fn(&Digest) -> Option<Value>,
) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    let subject = subject.to_string();
    for e in index["manifests"].as_array().into_iter().flatten() {
        if e["annotations"][REFERENCE_TYPE].as_str() != Some(ATTESTATION_MANIFEST)
            || e["annotations"][REFERENCE_DIGEST].as_str() != Some(subject.as_str())
        {
            continue;
        }
        let Some(d) = e["digest"].as_str().and_then(|d| crate::digest::parse(d).ok()) else { continue };
        let Some(m) = fetch(&d) else { continue };
        for l in m["layers"].as_array().into_iter().flatten() {
            if l["mediaType"].as_str() != Some(IN_TOTO_MEDIA_TYPE) {
                continue;
            }
            let Some(ld) = l["digest"].as_str().and_then(|d| crate::digest::parse(d).ok()) else { continue };
            let Some(statement) = fetch(&ld) else { continue };
            let predicate_type = statement["predicateType"].as_str().unwrap_or_default().to_string();
            out.push(Statement { predicate_type, statement });
        }
    }
    Ok(out)
}

/// `{"SLSA": …}` / `{"SPDX": …}` of one image's statements, as
/// `docker buildx imagetools inspect --format '{{json .Provenance}}'`
/// (and `.SBOM`) shows them.
pub fn summarize(statements: &[Statement]) -> (Option<Value>, Option<Value>) {
    let pred = |t: &str| statements.iter().find(|s| s.predicate_type == t).map(|s| s.statement["predicate"].clone());
    (pred(SLSA_PROVENANCE_V02).map(|p| json!({"SLSA": p})), pred(SPDX_DOCUMENT).map(|p| json!({"SPDX": p})))
}

/// `Provenance` and `SBOM` of an index as imagetools shows them: of its
/// only image, or by platform (`linux/amd64`) when it has several.
pub fn index_summary(index: &Value, fetch: &dyn Fn(&Digest) -> Option<Value>) -> Result<Value> {
    let images: Vec<&Value> =
        index["manifests"].as_array().into_iter().flatten().filter(|e| !is_attestation_entry(e)).collect();
    let (mut prov, mut sbom) = (serde_json::Map::new(), serde_json::Map::new());
    let mut single = (None, None);
    for e in &images {
        let Some(d) = e["digest"].as_str().and_then(|d| crate::digest::parse(d).ok()) else { continue };
        let (p, s) = summarize(&attestations_in(index, &d, fetch)?);
        let plat = crate::Platform::from_json(&e["platform"]).map_or_else(|| d.to_string(), |p| p.to_string());
        if images.len() == 1 {
            single = (p, s);
            continue;
        }
        if let Some(p) = p {
            prov.insert(plat.clone(), p);
        }
        if let Some(s) = s {
            sbom.insert(plat, s);
        }
    }
    let mut out = json!({});
    let (p, s) = if images.len() == 1 {
        single
    } else {
        ((!prov.is_empty()).then_some(Value::Object(prov)), (!sbom.is_empty()).then_some(Value::Object(sbom)))
    };
    if let Some(p) = p {
        out["Provenance"] = p;
    }
    if let Some(s) = s {
        out["SBOM"] = s;
    }
    Ok(out)
}
