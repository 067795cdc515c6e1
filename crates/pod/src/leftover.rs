//! Containers whose `wharf run` was killed: found by the free owner lock of
//! `<root>/containers/<id>/` and removed with their processes, cgroups,
//! runtime state, console socket and overlay mount.
//!
//! Docker's daemon would keep such a container; until containers get a
//! monitor of their own, a container whose foreground `wharf run` died is
//! an orphan nobody can reach, so it is killed and removed.

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

/// Dirs of containers whose owner died, without touching them (`system check`).
pub fn find_leftovers(root: &Path) -> Result<Vec<PathBuf>> {
    Ok(wharf_image::dead_dirs(&containers_dir(root))?)
}

/// Kills and removes every container whose owner died; returns how many.
/// Cheap when there are none: one readdir plus one flock per live container.
pub fn remove_leftovers(root: &Path, run_root: &Path) -> Result<usize> {
    let state_root = run_root.join("runtime");
    let mut n = 0;
    let mut first_err = None;
    for dead in wharf_image::leftovers(&containers_dir(root))? {
        tracing::info!("removing container {} (its wharf run was killed)", dead.name);
        let res = wharf_runtime::leftover::remove(&state_root, &dead.name, &dead.path)
            .map_err(crate::Error::from)
            .map(|()| crate::console::remove_socket(run_root, &dead.name));
        let anonymous = crate::volume::attach::recorded_for_removal(&dead.path);
        match res.and_then(|()| Ok(dead.remove()?)) {
            Ok(()) => {
                n += 1;
                remove_anonymous_volumes(root, &dead.name, &anonymous);
            }
            Err(e) => {
                tracing::warn!("container {}: {e}", dead.name);
                first_err.get_or_insert(e);
            }
        }
    }
    // Their network attachments (netns, CNI, DNS entries) are torn down from
    // the records the dead runs left.
    crate::network::sweep_orphans(&crate::network::Networks::new(root, run_root));
    match first_err {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

/// A killed `run --rm`'s anonymous volumes, once its container dir is gone
/// (until then the dir counts it as their user).
fn remove_anonymous_volumes(root: &Path, container: &str, names: &[String]) {
    let volumes = crate::volume::Volumes::new(root);
    for name in names {
        match volumes.remove(name) {
            Ok(()) | Err(crate::Error::NoSuchVolume(_)) => {}
            Err(e) => tracing::warn!("container {container}: removing its anonymous volume {name}: {e}"),
        }
    }
}
