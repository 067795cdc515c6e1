use crate::Globals;
use serde_json::json;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Containers (by name or ID), else images, else volumes and networks.
    #[arg(required = true)]
    images: Vec<String>,
    /// Only this kind: container, image, volume or network.
    #[arg(long = "type")]
    kind: Option<String>,
    /// A Go template ('{{.State.Status}}') or json.
    #[arg(short, long)]
    format: Option<String>,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let store = g.store()?;
    let index = store.index()?;
    let cs = wharf_pod::Containers::new(&g.root, &g.run_root);
    let kind = a.kind.as_deref();
    let mut out = Vec::new();
    for name in &a.images {
        if kind.is_none_or(|k| k == "container") {
            match cs.get(name) {
                Ok(c) => {
                    out.push(cs.inspect(&c));
                    continue;
                }
                Err(e) if kind.is_some() => return Err(e.into()),
                Err(_) => {}
            }
        }
        if kind == Some("volume") || kind.is_none() && store.resolve(name).is_err() {
            if let Ok(v) = wharf_pod::volume::Volumes::new(&g.root).get(name) {
                out.push(serde_json::to_value(&v)?);
                continue;
            }
        }
        if kind == Some("network") || kind.is_none() && store.resolve(name).is_err() {
            let nets = wharf_pod::network::Networks::new(&g.root, &g.run_root);
            if let Ok(n) = nets.get(name) {
                out.push(nets.inspect(&n));
                continue;
            }
        }
        let img = store.resolve(name)?;
        let tags: Vec<&str> = index
            .manifests()
            .iter()
            .filter(|d| d.digest() == img.target.digest())
            .filter_map(|d| d.annotations().as_ref().and_then(|a| a.get(wharf_image::REF_NAME)).map(String::as_str))
            .collect();
        let mut v = json!({
            "Id": img.id().to_string(),
            "Digest": img.target.digest().to_string(),
            "ManifestDigest": img.manifest_digest.to_string(),
            "RepoTags": tags,
            "Created": img.config.created(),
            "Architecture": img.config.architecture().to_string(),
            "Os": img.config.os().to_string(),
            // The raw config: Docker's fields the OCI model lacks (Shell,
            // Healthcheck, OnBuild) are shown as stored.
            "Config": raw_config(&store, &img)?["config"],
            "RootFS": {"Type": "layers", "Layers": img.config.rootfs().diff_ids()},
            "Layers": img.manifest.layers(),
            "History": img.config.history(),
            "Size": img.size(),
        });
        // Attestations attached in the image's index (builds with --provenance/--sbom), as buildx shows them.
        let (prov, sbom) = wharf_image::attestation::summarize(&store.attestations(&img)?);
        if let Some(p) = prov {
            v["Provenance"] = p;
        }
        if let Some(s) = sbom {
            v["SBOM"] = s;
        }
        out.push(v);
    }
    match a.format.as_deref() {
        None | Some("json") => crate::outln!("{}", serde_json::to_string_pretty(&out)?)?,
        Some(t) => {
            for v in &out {
                crate::outln!("{}", template(t, v))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn raw_config(store: &wharf_image::Store, img: &wharf_image::Image) -> anyhow::Result<serde_json::Value> {
    let bytes = store.blobs().read(img.id(), 16 << 20)?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// `{{.A.B}}` and `{{json .A}}` paths into the inspected object.
pub(crate) fn template(t: &str, v: &serde_json::Value) -> String {
    let mut out = String::new();
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else { break };
        let expr = rest[i + 2..i + j].trim();
        let (json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let mut cur = v;
        for key in path.trim_start_matches('.').split('.').filter(|k| !k.is_empty()) {
            cur = cur.get(key).unwrap_or(&serde_json::Value::Null);
        }
        match cur {
            serde_json::Value::String(s) if !json => out.push_str(s),
            serde_json::Value::Null if !json => out.push_str("<no value>"),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}
