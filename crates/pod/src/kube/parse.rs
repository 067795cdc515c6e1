//! Manifests read: YAML documents (`---` separated) → generic values →
//! Kubernetes' own types (`k8s-openapi`), in three checks, each naming the
//! field path as kubectl does:
//! 1. the typed decode (`spec.containers[0].ports[0].containerPort: invalid
//!    type: string "80", expected i32`);
//! 2. fields Kubernetes does not know (`unknown field`): whatever the typed
//!    value, serialized back, no longer has;
//! 3. fields Kubernetes knows and wharf does not implement (`not
//!    supported`): the allowlist of [`super::allow`].
//!
//! Nothing is created while reading: a bad document fails the whole file.

use super::allow;
use crate::error::{Error, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// One object of a manifest.
#[derive(Debug, Clone)]
pub enum Object {
    Pod(Box<Pod>),
    Deployment(Box<Deployment>),
    ConfigMap(Box<ConfigMap>),
    Secret(Box<Secret>),
    PersistentVolumeClaim(Box<PersistentVolumeClaim>),
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Pod(_) => "Pod",
            Object::Deployment(_) => "Deployment",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
            Object::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
        }
    }

    pub fn name(&self) -> &str {
        let m = match self {
            Object::Pod(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::PersistentVolumeClaim(o) => &o.metadata,
        };
        m.name.as_deref().unwrap_or("")
    }
}

/// The kinds wharf plays, with their `apiVersion`.
const KINDS: &[(&str, &str)] =
    &[("Pod", "v1"), ("Deployment", "apps/v1"), ("ConfigMap", "v1"), ("Secret", "v1"), ("PersistentVolumeClaim", "v1")];

/// An object and where it was read (`pod.yaml: document 2`), for errors.
pub type Located = (String, Object);

/// Every object of `text` (`source` names it in errors: a file name).
pub fn parse(source: &str, text: &str) -> Result<Vec<Located>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let at = |m: String| Error::InvalidArgument(format!("{source}: document {}: {m}", i + 1));
        let mut v = Value::deserialize(doc).map_err(|e| at(format!("invalid YAML: {e}")))?;
        octal_modes(&mut v);
        if v.is_null() {
            continue;
        }
        let obj = object(&v).map_err(at)?;
        out.push((format!("{source}: document {}", i + 1), obj));
    }
    if out.is_empty() {
        return Err(Error::InvalidArgument(format!("{source}: no Kubernetes objects found")));
    }
    Ok(out)
}

/// YAML 1.1 (kubectl's) reads `mode: 0644` as octal; the YAML 1.2 reader
/// here sees a string: file modes written so are turned into numbers.
fn octal_modes(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if let (true, Value::String(s)) = (k == "mode" || k == "defaultMode", &*v) {
                    if s.len() > 1 && s.starts_with('0') && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                        if let Ok(n) = i64::from_str_radix(s, 8) {
                            *v = Value::from(n);
                        }
                    }
                }
                octal_modes(v);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(octal_modes),
        _ => {}
    }
}

fn object(v: &Value) -> Result<Object, String> {
    let Value::Object(map) = v else {
        return Err("not a Kubernetes object (a mapping with apiVersion and kind)".into());
    };
    let kind = match map.get("kind") {
        Some(Value::String(k)) => k.as_str(),
        Some(_) => return Err("kind: must be a string".into()),
        None => return Err("kind: Required value".into()),
    };
    let Some((_, api)) = KINDS.iter().find(|(k, _)| *k == kind) else {
        let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        return Err(format!("kind {kind:?} is not supported (wharf plays {})", known.join(", ")));
    };
    match map.get("apiVersion") {
        Some(Value::String(a)) if a == api => {}
        Some(Value::String(a)) => return Err(format!("apiVersion: Unsupported value: {a:?}: {kind} is {api:?}")),
        _ => return Err("apiVersion: Required value".into()),
    }
    let name = map.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("");
    let label = format!("{kind} {name:?}: ");
    let wrap = |m: String| format!("{label}{m}");
    let obj = match kind {
        "Pod" => Object::Pod(Box::new(typed::<Pod>(v, kind).map_err(wrap)?)),
        "Deployment" => Object::Deployment(Box::new(typed::<Deployment>(v, kind).map_err(wrap)?)),
        "ConfigMap" => Object::ConfigMap(Box::new(typed::<ConfigMap>(v, kind).map_err(wrap)?)),
        "Secret" => Object::Secret(Box::new(typed::<Secret>(v, kind).map_err(wrap)?)),
        _ => Object::PersistentVolumeClaim(Box::new(typed::<PersistentVolumeClaim>(v, kind).map_err(wrap)?)),
    };
    if name.is_empty() {
        return Err(format!("{kind}: metadata.name: Required value"));
    }
    Ok(obj)
}

/// The typed decode, then the unknown and unsupported fields.
fn typed<T: DeserializeOwned + serde::Serialize>(v: &Value, kind: &str) -> Result<T, String> {
    let t: T = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })?;
    let back = serde_json::to_value(&t).map_err(|e| e.to_string())?;
    if let Some(p) = unknown(v, &back, "") {
        return Err(format!("{p}: unknown field"));
    }
    allow::check(kind, v)?;
    Ok(t)
}

/// The first field of `orig` that `back` (its typed round trip) lost.
fn unknown(orig: &Value, back: &Value, path: &str) -> Option<String> {
    match (orig, back) {
        (Value::Object(o), Value::Object(b)) => o.iter().filter(|(_, v)| !v.is_null()).find_map(|(k, v)| {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            match b.get(k) {
                None => Some(p),
                Some(bv) => unknown(v, bv, &p),
            }
        }),
        (Value::Array(o), Value::Array(b)) => {
            o.iter().zip(b).enumerate().find_map(|(i, (v, bv))| unknown(v, bv, &format!("{path}[{i}]")))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
