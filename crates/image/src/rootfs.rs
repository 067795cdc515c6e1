//! Overlay root filesystems over an image's snapshots, for a container or a
//! build step: `<dir>/upper`, `<dir>/work`, mounted at `<dir>/merged`.
//!
//! Mounting prefers the new mount API with `lowerdir+` (Linux 6.8+), which
//! takes each layer as its own option and so has no total-length limit. On
//! older kernels the classic `mount(2)` option string is limited to a page;
//! if absolute paths do not fit, layers are named by short links under
//! `<root>/l/` and mounted from a child that chdirs there, as Docker does.

use crate::error::{Error, IoContext, Result};
use crate::images::Image;
use crate::layout::Store;
use rustix::mount::{
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, FsMountFlags, FsOpenFlags, MountAttrFlags,
    MoveMountFlags, UnmountFlags,
};
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// overlayfs refuses more lower layers than this (OVL_MAX_STACK).
pub const MAX_LAYERS: usize = 500;
const PAGE_LIMIT: usize = 4095;

/// A mounted overlay rootfs.
#[derive(Debug, Clone)]
pub struct Rootfs {
    pub dir: PathBuf,
    pub merged: PathBuf,
}

/// True when the kernel offers overlayfs (possibly as a loadable module).
pub fn overlay_supported() -> bool {
    fs::read_to_string("/proc/filesystems").is_ok_and(|s| s.lines().any(|l| l.ends_with("\toverlay")))
        || Path::new("/sys/module/overlay").exists()
}

impl Store {
    /// Unpacks whatever snapshots `img` still lacks; returns them top layer first.
    pub fn layer_paths(&self, img: &Image) -> Result<Vec<PathBuf>> {
        let diff_ids = img.diff_ids()?;
        if diff_ids.len() != img.manifest.layers().len() {
            return Err(Error::malformed(
                format!("image {}", img.manifest_digest),
                "config diffIDs do not match the manifest's layers",
            ));
        }
        let _content = self.content_lock()?;
        let mut out = Vec::with_capacity(diff_ids.len());
        for (diff_id, layer) in diff_ids.iter().zip(img.manifest.layers()) {
            if !self.snapshots().exists(diff_id) {
                crate::compression::Compression::from_media_type(layer.media_type().as_ref())?;
                let mut blob = self.blobs().open(layer.digest())?.take(layer.size());
                self.snapshots().ensure(diff_id, &mut blob)?;
            }
            out.push(self.snapshots().path(diff_id));
        }
        out.reverse();
        Ok(out)
    }

    /// Mounts `img` as a writable overlay under `dir` (created if needed).
    pub fn mount_rootfs(&self, img: &Image, dir: &Path) -> Result<Rootfs> {
        self.mount_rootfs_with(img, dir, false)
    }

    /// [`Store::mount_rootfs`], `volatile` as in [`mount_overlay_with`].
    pub fn mount_rootfs_with(&self, img: &Image, dir: &Path, volatile: bool) -> Result<Rootfs> {
        let mut lowers = self.layer_paths(img)?;
        let empty = dir.join("empty");
        if lowers.is_empty() {
            fs::create_dir_all(&empty).ctx("create", &empty)?;
            lowers.push(empty);
        }
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        for d in [&upper, &work, &merged] {
            fs::create_dir_all(d).ctx("create", d)?;
        }
        mount_overlay_with(&lowers, &upper, &work, &merged, &self.root().join("l"), volatile)?;
        Ok(Rootfs { dir: dir.to_path_buf(), merged })
    }
}

impl Rootfs {
    /// Unmounts and removes the rootfs dir; an already unmounted one is fine.
    pub fn remove(dir: &Path) -> Result<()> {
        let merged = dir.join("merged");
        match rustix::mount::unmount(&merged, UnmountFlags::DETACH) {
            Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(Error::io("unmount", merged, e.into())),
        }
        crate::unpack::remove_tree(dir)
    }
}

/// `lowers` (top first) with each layer kept only at its topmost place.
/// overlayfs refuses a lower dir given twice ("conflicting lowerdir path"),
/// yet images repeat layers (two RUN steps giving the same empty layer, and
/// many built by other tools). A lower copy of a layer is wholly shadowed by
/// the identical copy above it — files, whiteouts and opaque dirs alike —
/// so dropping it changes nothing in the merged view.
pub fn distinct_lowers(lowers: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    lowers.iter().filter(|l| seen.insert(l.as_path())).cloned().collect()
}

/// Mounts an overlay of `lowers` (top first) with `upper`/`work` at `target`.
/// A layer that repeats is mounted once, at its topmost place.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path, links: &Path) -> Result<()> {
    mount_overlay_with(lowers, upper, work, target, links, false)
}

/// [`mount_overlay`]; `volatile`: the upper dir is never synced (no sync at
/// unmount either, which costs an ext4 journal commit): for a container
/// whose changes go with it (`run --rm`), as podman does. A kernel without
/// the option (before 5.10) mounts without it.
pub fn mount_overlay_with(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    links: &Path,
    volatile: bool,
) -> Result<()> {
    if volatile {
        if let Ok(()) = mount_overlay_inner(lowers, (upper, work, target, links), true) {
            return Ok(());
        }
    }
    mount_overlay_inner(lowers, (upper, work, target, links), false)
}

fn mount_overlay_inner(lowers: &[PathBuf], dirs: (&Path, &Path, &Path, &Path), volatile: bool) -> Result<()> {
    let (upper, work, target, links) = dirs;
    let lowers = &distinct_lowers(lowers);
    if lowers.len() > MAX_LAYERS {
        return Err(Error::Unsupported(format!("{} layers: overlayfs stacks at most {MAX_LAYERS}", lowers.len())));
    }
    if !overlay_supported() {
        return Err(Error::Unsupported("this kernel has no overlayfs".into()));
    }
    match mount_new_api(lowers, upper, work, target, volatile) {
        Ok(()) => Ok(()),
        // ENOSYS: no fsopen; EINVAL: no lowerdir+ (before 6.8).
        Err(NewApi::Unavailable) => mount_legacy(lowers, (upper, work, target, links), volatile),
        Err(NewApi::Failed(msg)) => {
            Err(Error::other(format!("mount overlay at {}", target.display()), std::io::Error::other(msg)))
        }
    }
}

enum NewApi {
    Unavailable,
    Failed(String),
}

fn mount_new_api(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path, volatile: bool) -> Result<(), NewApi> {
    use rustix::io::Errno;
    let fsfd = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|_| NewApi::Unavailable)?;
    let fail = |what: &str, e: Errno, fsfd: &OwnedFd| NewApi::Failed(format!("{what}: {e}{}", kernel_log(fsfd)));
    for (i, l) in lowers.iter().enumerate() {
        if let Err(e) = fsconfig_set_string(&fsfd, "lowerdir+", l.as_os_str()) {
            if i == 0 && e == Errno::INVAL {
                return Err(NewApi::Unavailable);
            }
            return Err(fail(&format!("lower layer {}", l.display()), e, &fsfd));
        }
    }
    fsconfig_set_string(&fsfd, "upperdir", upper.as_os_str()).map_err(|e| fail("upperdir", e, &fsfd))?;
    fsconfig_set_string(&fsfd, "workdir", work.as_os_str()).map_err(|e| fail("workdir", e, &fsfd))?;
    if volatile {
        rustix::mount::fsconfig_set_flag(&fsfd, "volatile").map_err(|e| fail("volatile", e, &fsfd))?;
    }
    fsconfig_create(&fsfd).map_err(|e| fail("create", e, &fsfd))?;
    let mnt = fsmount(&fsfd, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| fail("fsmount", e, &fsfd))?;
    move_mount(mnt.as_fd(), "", rustix::fs::CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .map_err(|e| fail("move_mount", e, &fsfd))
}

/// The messages the kernel left on an fs context, which say why it failed.
fn kernel_log(fsfd: &OwnedFd) -> String {
    let mut out = String::new();
    let mut f = fs::File::from(match fsfd.try_clone() {
        Ok(f) => f,
        Err(_) => return out,
    });
    let mut buf = [0u8; 1024];
    for _ in 0..8 {
        match f.read(&mut buf) {
            Ok(n) if n > 0 => {
                out.push_str(" (");
                out.push_str(String::from_utf8_lossy(&buf[..n]).trim());
                out.push(')');
            }
            _ => break,
        }
    }
    out
}

fn check_path(p: &Path) -> Result<()> {
    let b = p.as_os_str().as_bytes();
    if b.contains(&b':') || b.contains(&b',') {
        return Err(Error::Unsupported(format!("overlay path {} contains ':' or ','", p.display())));
    }
    Ok(())
}

fn mount_legacy(lowers: &[PathBuf], dirs: (&Path, &Path, &Path, &Path), volatile: bool) -> Result<()> {
    let (upper, work, target, links) = dirs;
    for p in lowers.iter().map(PathBuf::as_path).chain([upper, work]) {
        check_path(p)?;
    }
    let vol = if volatile { ",volatile" } else { "" };
    let tail = format!(",upperdir={},workdir={}{vol}", upper.display(), work.display());
    let abs: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let data = format!("lowerdir={}{tail}", abs.join(":"));
    if data.len() <= PAGE_LIMIT {
        return mount_data(&data, target, None);
    }
    let short = short_links(lowers, links)?;
    let data = format!("lowerdir={}{tail}", short.join(":"));
    if data.len() > PAGE_LIMIT {
        return Err(Error::Unsupported(format!(
            "{} layers do not fit this kernel's overlay mount options (a page); Linux 6.8+ has no such limit",
            lowers.len()
        )));
    }
    mount_data(&data, target, Some(links))
}

/// Names each layer by a 12-hex-char link in `links`: `l/<hex12>` → the snapshot.
fn short_links(lowers: &[PathBuf], links: &Path) -> Result<Vec<String>> {
    fs::create_dir_all(links).ctx("create", links)?;
    let mut out = Vec::new();
    for l in lowers {
        let name = l.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let short: String = name.chars().take(12).collect();
        let link = links.join(&short);
        match fs::read_link(&link) {
            Ok(t) if t == *l => {}
            Ok(_) => return Err(Error::Conflict(format!("short layer link {} names another layer", link.display()))),
            Err(_) => {
                let tmp = links.join(crate::blobs::unique_name(".new-"));
                std::os::unix::fs::symlink(l, &tmp).ctx("symlink", &tmp)?;
                fs::rename(&tmp, &link).ctx("rename", &link)?;
            }
        }
        out.push(short);
    }
    Ok(out)
}

/// mount(2) of an overlay; with `cwd`, from a forked child that chdirs there
/// first so relative lowerdirs resolve (chdir would race other threads here).
fn mount_data(data: &str, target: &Path, cwd: Option<&Path>) -> Result<()> {
    let c = |s: &[u8]| CString::new(s).map_err(|_| Error::Unsupported("path with a NUL byte".into()));
    let (data_c, target_c) = (c(data.as_bytes())?, c(target.as_os_str().as_bytes())?);
    let cwd_c = cwd.map(|p| c(p.as_os_str().as_bytes())).transpose()?;
    let do_mount = || unsafe {
        libc::mount(c"overlay".as_ptr(), target_c.as_ptr(), c"overlay".as_ptr(), 0, data_c.as_ptr().cast())
    };
    let rc = match &cwd_c {
        None => {
            if do_mount() == 0 {
                0
            } else {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
            }
        }
        Some(dir) => {
            // SAFETY: the child only calls async-signal-safe chdir, mount and _exit.
            unsafe {
                let pid = libc::fork();
                if pid == 0 {
                    if libc::chdir(dir.as_ptr()) != 0 || do_mount() != 0 {
                        libc::_exit(*libc::__errno_location());
                    }
                    libc::_exit(0);
                }
                if pid < 0 {
                    return Err(Error::other("fork", std::io::Error::last_os_error()));
                }
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
                if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    libc::EIO
                }
            }
        }
    };
    if rc != 0 {
        return Err(Error::io("mount overlay at", target, std::io::Error::from_raw_os_error(rc)));
    }
    Ok(())
}

#[doc(hidden)]
/// Test seam: the pre-6.8 path, whatever the kernel.
pub fn mount_overlay_legacy(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path, links: &Path) -> Result<()> {
    mount_legacy(&distinct_lowers(lowers), (upper, work, target, links), false)
}
