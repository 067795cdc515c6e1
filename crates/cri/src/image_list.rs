//! ListImages: every image, or the one the filter names.

use crate::images;
use k8s_cri::v1 as cri;
use tonic::Status;
use wharf_image::Store;

pub(crate) fn list_images(store: &Store, pause_image: &str, filter: &str) -> Result<Vec<cri::Image>, Status> {
    if filter.is_empty() {
        return Ok(images::all(store)?.iter().map(|i| i.to_cri(pause_image)).collect());
    }
    // A filter names an image as ImageStatus would; an unknown or malformed name matches nothing.
    Ok(images::find(store, filter).unwrap_or(None).map(|i| i.to_cri(pause_image)).into_iter().collect())
}
