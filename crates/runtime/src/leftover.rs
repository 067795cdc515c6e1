//! What a killed creator leaves of a container — its processes, cgroups and
//! state directory — removed by whoever finds it later.

use crate::container::Container;
use crate::error::{ErrorKind, Result};
use crate::state::StateStore;
use std::path::{Path, PathBuf};

/// Kills and removes container `id` (state under `state_root`, bundle at
/// `bundle`) whose creator died: from its state if it was written, and from
/// the bundle's `cgroupsPath` in any case (the creator may have died
/// between making the cgroups and writing the state).
pub fn remove(state_root: &Path, id: &str, bundle: &Path) -> Result<()> {
    let deleted = match Container::load(state_root, id) {
        Ok(c) => c.delete(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        // Unreadable state (killed mid-write): the spec still says where things are.
        Err(_) => Ok(()),
    };
    let cgroups = crate::cgroups::remove_leftover(cgroups_path(bundle).as_deref(), id);
    let state = StateStore::new(state_root).remove(id);
    // Whatever delete failed at (a shared parent cgroup, say), the two steps
    // above redid from scratch: their errors are the ones that count.
    drop(deleted);
    cgroups.and(state)
}

/// The bundle's `linux.cgroupsPath`, if it has one.
fn cgroups_path(bundle: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["linux"]["cgroupsPath"].as_str().map(PathBuf::from)
}
