//! ImageStatus: the image, or an empty answer when there is none (the
//! kubelet pulls on that, as with containerd); with `verbose`, the image
//! config and where it came from under `info["info"]`.

use crate::images;
use k8s_cri::v1 as cri;
use serde_json::json;
use std::collections::HashMap;
use tonic::Status;
use wharf_image::Store;

pub(crate) fn image_status(
    store: &Store,
    pause_image: &str,
    r: &cri::ImageStatusRequest,
) -> Result<cri::ImageStatusResponse, Status> {
    let name = r.image.as_ref().map(|s| s.image.as_str()).unwrap_or_default();
    let Some(img) = images::find(store, name)? else {
        return Ok(cri::ImageStatusResponse { image: None, info: HashMap::new() });
    };
    let mut info = HashMap::new();
    if r.verbose {
        let v = json!({
            "id": img.id(),
            "manifestDigest": img.image.manifest_digest.to_string(),
            "targets": img.targets,
            "chainID": chain_id(&img.image),
            "imageSpec": img.image.config,
        });
        info.insert("info".to_string(), v.to_string());
    }
    Ok(cri::ImageStatusResponse { image: Some(img.to_cri(pause_image)), info })
}

/// The OCI chain ID of the image's layers (what containerd's snapshotter
/// keys on): ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
fn chain_id(img: &wharf_image::Image) -> Option<String> {
    let ids = img.diff_ids().ok()?;
    let mut it = ids.iter().map(|d| d.to_string());
    let mut cur = it.next()?;
    for d in it {
        cur = wharf_image::digest::of_bytes(format!("{cur} {d}").as_bytes()).to_string();
    }
    Some(cur)
}
