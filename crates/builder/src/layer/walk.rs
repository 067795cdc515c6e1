//! Depth-first walks in a fixed order: siblings sorted bytewise, parents first.

use super::entry::Meta;
use super::{LayerError, Result};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The callback of [`walk`]: `(path, rel, meta)` → whether to enter a directory.
pub(crate) type Visit<'v> = dyn FnMut(&Path, &[u8], &Meta) -> Result<bool> + 'v;

/// Calls `visit(path, rel, meta)` for everything below `dir` (not `dir`
/// itself), never following symlinks. `rel` is `prefix` joined with the
/// names below `dir`. A directory is entered when `visit` returns true. With
/// `one_fs`, entries on another device (mount points) are left out.
pub(crate) fn walk(dir: &Path, prefix: &[u8], one_fs: Option<u64>, visit: &mut Visit<'_>) -> Result<()> {
    for (name, path) in sorted_children(dir)? {
        let md = std::fs::symlink_metadata(&path).map_err(LayerError::io("stat", &path))?;
        if one_fs.is_some_and(|dev| md.dev() != dev) {
            continue;
        }
        let Some(meta) = Meta::from_metadata(&path, &md)? else { continue };
        let rel = join_rel(prefix, &name);
        if visit(&path, &rel, &meta)? && md.is_dir() {
            walk(&path, &rel, one_fs, visit)?;
        }
    }
    Ok(())
}

/// The entries of `dir`, sorted by name bytes.
pub(crate) fn sorted_children(dir: &Path) -> Result<Vec<(Vec<u8>, PathBuf)>> {
    let rd = std::fs::read_dir(dir).map_err(LayerError::io("list", dir))?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(LayerError::io("list", dir))?;
        out.push((ent.file_name().as_bytes().to_vec(), ent.path()));
    }
    out.sort();
    Ok(out)
}

/// `prefix/name`, or `name` when the prefix is empty.
pub(crate) fn join_rel(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut rel = prefix.to_vec();
    if !rel.is_empty() {
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    rel
}
