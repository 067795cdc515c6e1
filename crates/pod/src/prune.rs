//! `image prune` and the image part of `system prune`: the containers of
//! killed runs go first (their mounts pin layers), then dangling images or,
//! with `-a`, every image no container uses. That set is read under the
//! store's gc lock: a starting `run` holds the content lock from resolving
//! its image until its container dir names it, so none is missed.

use crate::error::Result;
use std::path::Path;
use wharf_image::{GcReport, Store};

/// What [`prune_images`] removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    /// Containers whose `wharf run` was killed.
    pub containers: usize,
    pub images: GcReport,
}

/// Removes the containers of killed runs, then dangling images (`all`:
/// every image no container uses), unreferenced blobs and layers.
pub fn prune_images(store: &Store, run_root: &Path, all: bool) -> Result<PruneReport> {
    let containers = crate::leftover::remove_leftovers(store.root(), run_root)?;
    let images =
        if all { store.prune_unused_by(|| crate::leftover::images_in_use(store.root()))? } else { store.prune()? };
    Ok(PruneReport { containers, images })
}
