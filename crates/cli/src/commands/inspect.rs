use crate::Globals;
use serde_json::json;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image names or IDs.
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn run(g: &Globals, a: Args) -> anyhow::Result<ExitCode> {
    let store = g.store()?;
    let index = store.index()?;
    let mut out = Vec::new();
    for name in &a.images {
        let img = store.resolve(name)?;
        let tags: Vec<&str> = index
            .manifests()
            .iter()
            .filter(|d| d.digest() == img.target.digest())
            .filter_map(|d| d.annotations().as_ref().and_then(|a| a.get(wharf_image::REF_NAME)).map(String::as_str))
            .collect();
        out.push(json!({
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
        }));
    }
    crate::outln!("{}", serde_json::to_string_pretty(&out)?)?;
    Ok(ExitCode::SUCCESS)
}

fn raw_config(store: &wharf_image::Store, img: &wharf_image::Image) -> anyhow::Result<serde_json::Value> {
    let bytes = store.blobs().read(img.id(), 16 << 20)?;
    Ok(serde_json::from_slice(&bytes)?)
}
