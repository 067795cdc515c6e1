//! A RUN step's overlay upper dir made into its layer's snapshot in place.
//!
//! Unpacking the blob just written would rebuild, file by file, what the
//! upper dir already holds: the snapshot format is overlayfs' own (0/0
//! character devices for deletions, `trusted.overlay.opaque=y` on replaced
//! directories). So the upper dir becomes the snapshot once it holds exactly
//! what unpacking the layer tar ([`super::upper_to_tar`]) would give: what
//! the tar leaves out goes (sockets, xattrs other than the kept ones and the
//! opaque mark, overlayfs' bookkeeping such as `trusted.overlay.origin`),
//! and every time is the tar's (mtime clamped to SOURCE_DATE_EPOCH, whole
//! seconds, atime = mtime). BuildKit's overlay snapshotter likewise commits
//! the RUN's upper dir as the snapshot; buildah re-applies the diff.

use super::entry::{get_xattr, list_xattrs, xattr_kept};
use super::{LayerError, Result, TarOptions};
use rustix::fs::{AtFlags, Timespec, Timestamps, CWD};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The mode of a snapshot's top directory (an unpacked one is made 0700).
const SNAPSHOT_ROOT_MODE: u32 = 0o700;

/// Turns the (unmounted) upper dir `upper`, whose layer tar was written
/// with `opts`, into what unpacking that tar gives. `Ok(false)`: it cannot
/// be made so (an entry on another device, an xattr that cannot be
/// removed); the caller then unpacks the blob.
pub fn upper_to_snapshot(upper: &Path, opts: &TarOptions) -> Result<bool> {
    let root = std::fs::symlink_metadata(upper).map_err(LayerError::io("stat", upper))?;
    // The tar has no entry for the top directory: it is as an unpack makes it.
    if !root.is_dir() || !fix_xattrs(upper, Keep::Nothing)? || !fix_dir(upper, root.dev(), opts)? {
        return Ok(false);
    }
    let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    std::os::unix::fs::lchown(upper, Some(uid), Some(gid)).map_err(LayerError::io("chown", upper))?;
    std::fs::set_permissions(upper, std::fs::Permissions::from_mode(SNAPSHOT_ROOT_MODE))
        .map_err(LayerError::io("chmod", upper))?;
    Ok(true)
}

/// The entries below `dir`, children before their directory (whose time
/// is set last: removing a socket changes it).
fn fix_dir(dir: &Path, dev: u64, opts: &TarOptions) -> Result<bool> {
    let rd = std::fs::read_dir(dir).map_err(LayerError::io("list", dir))?;
    for ent in rd {
        let path = ent.map_err(LayerError::io("list", dir))?.path();
        let md = std::fs::symlink_metadata(&path).map_err(LayerError::io("stat", &path))?;
        if md.dev() != dev {
            return Ok(false);
        }
        let ft = md.file_type();
        if ft.is_socket() {
            // A tar cannot hold it: the unpacked layer has no such file.
            std::fs::remove_file(&path).map_err(LayerError::io("remove socket", &path))?;
            continue;
        }
        if ft.is_char_device() && md.rdev() == 0 {
            continue; // a whiteout: unpacking makes the same device, with its own times
        }
        if ft.is_dir() && !fix_dir(&path, dev, opts)? {
            return Ok(false);
        }
        if !fix_xattrs(&path, if ft.is_dir() { Keep::DirEntry } else { Keep::Entry })? {
            return Ok(false);
        }
        let t = Timespec { tv_sec: opts.clamp(md.mtime()), tv_nsec: 0 };
        rustix::fs::utimensat(
            CWD,
            &path,
            &Timestamps { last_access: t, last_modification: t },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| LayerError::io("set times of", &path)(e.into()))?;
    }
    Ok(true)
}

/// Which xattrs stay.
#[derive(Clone, Copy, PartialEq)]
enum Keep {
    /// Those a tar entry carries.
    Entry,
    /// Those, and the opaque mark the tar records as `DIR/.wh..wh..opq`.
    DirEntry,
    Nothing,
}

/// Drops the xattrs an unpacked layer would not have.
fn fix_xattrs(path: &Path, keep: Keep) -> Result<bool> {
    for name in list_xattrs(path)? {
        let kept = match keep {
            Keep::Nothing => false,
            Keep::Entry => xattr_kept(&name),
            Keep::DirEntry => {
                xattr_kept(&name) || (name == OPAQUE_XATTR && get_xattr(path, &name)?.as_deref() == Some(b"y"))
            }
        };
        if kept {
            continue;
        }
        match rustix::fs::lremovexattr(path, name.as_str()) {
            Ok(()) | Err(rustix::io::Errno::NODATA) => {}
            // security.selinux and the like may be enforced by the host.
            Err(_) => return Ok(false),
        }
    }
    Ok(true)
}
