//! `wharf import`: a single-layer image from a rootfs tar, like `docker import`.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::images::Image;
use crate::layout::Store;
use crate::reference::Reference;
use oci_spec::image::{Descriptor, MediaType};
use serde_json::{json, Map, Value};
use std::io::Read;

#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    pub reference: Option<Reference>,
    /// Dockerfile-style changes: `CMD …`, `ENTRYPOINT …`, `ENV …`, `WORKDIR …`,
    /// `USER …`, `LABEL …`, `EXPOSE …`, `VOLUME …`, `STOPSIGNAL …`.
    pub changes: Vec<String>,
    pub message: Option<String>,
    /// The image's platform (`docker import --platform`); the host's by default.
    pub platform: Option<crate::platform::Platform>,
}

impl Store {
    /// Stores `rootfs` (tar, tar+gzip or tar+zstd) as a layer, unpacks it at
    /// once (a bad tar is refused here), and writes config, manifest and tag.
    pub fn import(&self, rootfs: &mut impl Read, opts: &ImportOptions) -> Result<Image> {
        let mut config = Map::new();
        for c in &opts.changes {
            apply_change(&mut config, c)?;
        }
        let content = self.content_lock()?;
        let (layer_digest, layer_size) = self.blobs().put_reader(rootfs, None)?;
        let applied = match self.blobs().open(&layer_digest).and_then(|f| self.snapshots().unpack_new(f)) {
            Ok((a, _)) => a,
            Err(e) => {
                // A refused layer must not stay behind as an unreferenced blob.
                drop(content);
                self.discard_unreferenced(&[layer_digest].into_iter().collect())?;
                return Err(e);
            }
        };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut history = json!({"created": now, "created_by": "wharf import"});
        if let Some(m) = &opts.message {
            history["comment"] = json!(m);
        }
        let platform = opts.platform.clone().unwrap_or_else(crate::platform::Platform::host);
        let mut cfg = json!({
            "created": now,
            "architecture": platform.arch,
            "os": platform.os,
            "config": Value::Object(config),
            "rootfs": {"type": "layers", "diff_ids": [applied.diff_id.to_string()]},
            "history": [history],
        });
        if !platform.variant.is_empty() {
            cfg["variant"] = json!(platform.variant);
        }
        let layer = Descriptor::new(applied.compression.layer_media_type().into(), layer_size, layer_digest);
        let target = self.put_image(&cfg, vec![layer])?;
        match &opts.reference {
            Some(r) => self.set_tag(r, &target)?,
            None => self.add_untagged(&target)?,
        }
        self.load_image(&target)
    }

    /// Writes a config and the manifest over it; returns the manifest's descriptor.
    pub fn put_image(&self, config: &Value, layers: Vec<Descriptor>) -> Result<Descriptor> {
        let cbytes = serde_json::to_vec(config).map_err(|e| Error::malformed("image config", e))?;
        let cdigest = self.blobs().put_bytes(&cbytes)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::ImageManifest.to_string(),
            "config": {"mediaType": MediaType::ImageConfig.to_string(), "digest": cdigest.to_string(), "size": cbytes.len()},
            "layers": layers,
        });
        let mbytes = serde_json::to_vec(&manifest).map_err(|e| Error::malformed("manifest", e))?;
        let mdigest: Digest = self.blobs().put_bytes(&mbytes)?;
        Ok(Descriptor::new(MediaType::ImageManifest, mbytes.len() as u64, mdigest))
    }
}

fn bad(change: &str, why: &str) -> Error {
    Error::malformed(format!("change {change:?}"), why)
}

/// JSON form `["a","b"]`, else the shell form wrapped in `/bin/sh -c`.
fn command_form(args: &str) -> Value {
    if let Ok(Value::Array(a)) = serde_json::from_str::<Value>(args) {
        if a.iter().all(Value::is_string) {
            return Value::Array(a);
        }
    }
    json!(["/bin/sh", "-c", args])
}

/// `K=V K2="v 2"` or the legacy `K V`.
fn key_values(change: &str, args: &str) -> Result<Vec<(String, String)>> {
    let words = shell_words(args);
    if words.first().is_some_and(|w| !w.contains('=')) {
        let (k, v) = args.split_once(char::is_whitespace).ok_or_else(|| bad(change, "needs KEY VALUE or KEY=VALUE"))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| {
            w.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| bad(change, "needs KEY=VALUE"))
        })
        .collect()
}

/// Splits on blanks, honouring double and single quotes and backslashes.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                any = true;
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

pub(crate) fn apply_change(cfg: &mut Map<String, Value>, change: &str) -> Result<()> {
    let change = change.trim();
    let (instr, args) = change.split_once(char::is_whitespace).unwrap_or((change, ""));
    let args = args.trim();
    if args.is_empty() {
        return Err(bad(change, "has no arguments"));
    }
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => {
            cfg.insert("Cmd".into(), command_form(args));
        }
        "ENTRYPOINT" => {
            cfg.insert("Entrypoint".into(), command_form(args));
        }
        "WORKDIR" => {
            cfg.insert("WorkingDir".into(), json!(args));
        }
        "USER" => {
            cfg.insert("User".into(), json!(args));
        }
        "STOPSIGNAL" => {
            cfg.insert("StopSignal".into(), json!(args));
        }
        "ENV" => {
            let env = cfg.entry("Env").or_insert_with(|| json!([]));
            let list = env.as_array_mut().ok_or_else(|| bad(change, "Env is not a list"))?;
            for (k, v) in key_values(change, args)? {
                list.retain(|e| e.as_str().and_then(|e| e.split_once('=')).is_none_or(|(ek, _)| ek != k));
                list.push(json!(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
            for (k, v) in key_values(change, args)? {
                labels[k] = json!(v);
            }
        }
        "EXPOSE" => {
            let ports = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
            for p in args.split_whitespace() {
                let p = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                ports[p] = json!({});
            }
        }
        "VOLUME" => {
            let vols = cfg.entry("Volumes").or_insert_with(|| json!({}));
            let list: Vec<String> = serde_json::from_str(args).unwrap_or_else(|_| shell_words(args));
            for v in list {
                vols[v] = json!({});
            }
        }
        other => return Err(bad(change, &format!("{other} is not a change import can make"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_like_docker_import() {
        let mut c = Map::new();
        apply_change(&mut c, r#"CMD ["/bin/sh", "-c", "echo hi"]"#).unwrap();
        apply_change(&mut c, "ENTRYPOINT echo hello").unwrap();
        apply_change(&mut c, r#"ENV A=1 B="two words""#).unwrap();
        apply_change(&mut c, "ENV A 3").unwrap();
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "echo hello"]));
        assert_eq!(c["Env"], json!(["B=two words", "A=3"]));
        assert_eq!(c["WorkingDir"], json!("/srv"));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert!(apply_change(&mut c, "RUN rm -rf /").unwrap_err().to_string().contains("RUN"));
        assert!(apply_change(&mut c, "CMD").is_err());
    }
}
