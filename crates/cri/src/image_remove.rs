//! RemoveImage: the image and every name it has (containerd removes all
//! of an image's references); an image that is not there is already
//! removed, so that is success too.

use crate::images;
use tonic::Status;
use wharf_image::Store;

pub(crate) fn remove_image(store: &Store, name: &str) -> Result<(), Status> {
    let Some(img) = images::find(store, name)? else { return Ok(()) };
    let targets: Vec<String> = img.targets.into_iter().collect();
    match store.remove_images(&targets, true) {
        Ok(removed) => {
            tracing::info!("RemoveImage {name}: {removed:?}");
            Ok(())
        }
        // Removed meanwhile by another client: the outcome asked for.
        Err(e) if e.kind() == wharf_image::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::Error::from(e).into()),
    }
}
