//! Containers whose owner died (a `wharf` killed while setting one up, or
//! its monitor killed): found by the free owner lock of
//! `<root>/containers/<id>/` (with no `container.json`, or an `active`
//! marker). [`remove_leftovers`] hands them to [`crate::Containers::sweep`],
//! which kills what is left, tears down the network, unmounts, and records
//! the exit; `system check` only lists them. Also: which images containers
//! use (their `image` file), for `image prune -a`.

use crate::error::Result;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A container dir's record of its image (the index entry's digest).
pub(crate) const IMAGE_FILE: &str = "image";

/// The images containers use (index entry digests), for `image prune -a`.
pub fn images_in_use(root: &Path) -> HashSet<wharf_image::Digest> {
    let rd = std::fs::read_dir(containers_dir(root)).into_iter().flatten().flatten();
    rd.filter_map(|e| std::fs::read_to_string(e.path().join(IMAGE_FILE)).ok())
        .filter_map(|s| wharf_image::digest::parse(s.trim()).ok())
        .collect()
}

pub(crate) fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

/// Dirs of containers whose owner died and that need cleaning up, without
/// touching them (`system check`): creations killed before their record
/// existed, and containers whose monitor (or setup) was killed.
pub fn find_leftovers(root: &Path) -> Result<Vec<PathBuf>> {
    let dead = wharf_image::dead_dirs(&containers_dir(root))?;
    let needs_work = |d: &PathBuf| !d.join("container.json").exists() || d.join("active").exists();
    Ok(dead.into_iter().filter(needs_work).collect())
}

/// Cleans up after every container whose monitor or `wharf` process was
/// killed (see [`crate::Containers::sweep`]); returns how many.
pub fn remove_leftovers(root: &Path, run_root: &Path) -> Result<usize> {
    Ok(crate::Containers::new(root, run_root).sweep())
}
