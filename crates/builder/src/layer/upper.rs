//! A RUN step's overlayfs upper dir → an OCI layer tar.
//!
//! overlayfs records a deletion as a 0/0 character device and a directory
//! that replaced a lower one as `trusted.overlay.opaque=y`; OCI layers say
//! the same with `.wh.NAME` and `DIR/.wh..wh..opq` entries.

use super::entry::{get_xattr, list_xattrs, Content, Kind, Meta, TarWriter};
use super::walk::{join_rel, walk};
use super::{LayerError, Result, TarOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// Writes the changes recorded in the overlayfs upper dir `upper` as a layer tar.
pub fn upper_to_tar(upper: &Path, out: &mut dyn Write, opts: &TarOptions) -> Result<()> {
    let root = std::fs::symlink_metadata(upper).map_err(LayerError::io("stat", upper))?;
    if !root.is_dir() {
        return Err(LayerError::io("read upper dir", upper)(std::io::Error::other("not a directory")));
    }
    let mut tar = TarWriter::new(out, opts);
    walk(upper, b"", Some(root.dev()), &mut |path, rel, meta| {
        if meta.kind == Kind::Char && meta.rdev == 0 {
            return whiteout(&mut tar, rel, meta).map(|()| false);
        }
        check_overlay_xattrs(path)?;
        tar.entry(rel, meta, Content::Path(path))?;
        if meta.kind == Kind::Dir && is_opaque(path)? {
            tar.marker(&join_rel(rel, OPAQUE_MARKER), meta)?;
        }
        Ok(true)
    })?;
    tar.finish()
}

/// A deleted file: `.wh.NAME` beside where it was.
fn whiteout(tar: &mut TarWriter<'_>, rel: &[u8], meta: &Meta) -> Result<()> {
    let (dir, name) = match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&rel[..0], rel),
    };
    let mut wh = WHITEOUT_PREFIX.to_vec();
    wh.extend_from_slice(name);
    tar.marker(&join_rel(dir, &wh), meta)
}

/// True for a directory overlayfs marked opaque (it replaced a lower one).
pub fn is_opaque(path: &Path) -> Result<bool> {
    Ok(get_xattr(path, OPAQUE_XATTR)?.is_some_and(|v| v == b"y"))
}

/// Redirected directories and metacopy files keep their data in a lower
/// layer: the upper dir alone does not describe them, so refuse rather than
/// write a layer that silently loses content.
fn check_overlay_xattrs(path: &Path) -> Result<()> {
    for name in list_xattrs(path)? {
        let what = match name.as_str() {
            "trusted.overlay.redirect" => "a renamed directory (overlayfs redirect_dir)",
            "trusted.overlay.metacopy" => "a metadata-only copy-up (overlayfs metacopy)",
            _ => continue,
        };
        return Err(LayerError::Unsupported {
            path: path.to_path_buf(),
            reason: format!(
                "{what} cannot be turned into a layer; mount the overlay with redirect_dir=off,metacopy=off"
            ),
        });
    }
    Ok(())
}
