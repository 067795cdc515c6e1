//! What a killed `wharf build` leaves under `<root>/build/<id>/` — RUN
//! containers, their runtime state and cgroups, overlay mounts — found by
//! the dir's free owner lock and removed.
//!
//! The work dirs live in the store's root, not the run root: a RUN's
//! overlay upper dir becomes its layer's snapshot by a rename, which needs
//! the same filesystem as `layers/` (the run root is often a tmpfs). Builds
//! of earlier versions kept them in `<run-root>/build/`; both are swept.

use super::error::{BuildError, BuildResult};
use std::path::{Path, PathBuf};

/// Where builds keep their work dirs: in the store's ROOT.
pub(crate) fn build_dirs(root: &Path) -> PathBuf {
    root.join("build")
}

/// Where builds of earlier versions kept them.
fn old_build_dirs(run_root: &Path) -> PathBuf {
    run_root.join("build")
}

/// Work dirs of builds that died, without touching them (`system check`).
pub fn find_leftovers(root: &Path, run_root: &Path) -> BuildResult<Vec<PathBuf>> {
    let mut dead = wharf_image::dead_dirs(&build_dirs(root))?;
    dead.extend(wharf_image::dead_dirs(&old_build_dirs(run_root))?);
    Ok(dead)
}

/// Removes what builds that died left: their RUN containers (processes,
/// cgroups, runtime state), mounts and work dirs. Returns how many builds'
/// leftovers were removed. Cheap when there are none: one readdir.
pub fn remove_leftovers(root: &Path, run_root: &Path) -> BuildResult<usize> {
    let state_root = run_root.join("runtime");
    let mut n = 0;
    let mut first_err = None;
    let mut dead_dirs = wharf_image::leftovers(&build_dirs(root))?;
    dead_dirs.extend(wharf_image::leftovers(&old_build_dirs(run_root))?);
    for dead in dead_dirs {
        tracing::info!("removing what a killed build left in {}", dead.path.display());
        let path = dead.path.clone();
        match remove_work_dir(&state_root, &path).and_then(|()| Ok(dead.remove()?)) {
            Ok(()) => n += 1,
            Err(e) => {
                tracing::warn!("{}: {e}", path.display());
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

/// Every workspace of a dead build: its RUN container, then its mount.
fn remove_work_dir(state_root: &Path, dir: &Path) -> BuildResult<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| BuildError::io(format!("list {}", dir.display()), e))?;
    for ent in rd.flatten() {
        if !ent.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let ws = ent.path();
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with(super::run_step::CONTAINER_PREFIX) {
            wharf_runtime::leftover::remove(state_root, &name, &ws)?;
        }
        wharf_image::Rootfs::remove(&ws)?;
    }
    Ok(())
}
