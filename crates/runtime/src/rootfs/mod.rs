//! The container's filesystem, as named steps: [`prepare`] (propagation,
//! rootfs bind, spec mounts, devices) runs before the createRuntime hooks,
//! [`enter`] pivots (or chroots), [`finish`] applies the read-only and masked
//! paths and the read-only root.

mod cgroupfs;
mod devices;
pub(crate) mod mounts;
pub(crate) mod path;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;

use crate::error::{Context, Error, Result};
use mounts::MountCtx;
use path::RootDir;

/// What the rootfs steps need to know.
pub(crate) struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup_paths: &'a [(String, PathBuf)],
    pub new_cgroupns: bool,
    pub in_userns: bool,
    pub no_pivot: bool,
}

fn rootfs_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    let Some(p) = spec.linux().as_ref().and_then(|l| l.rootfs_propagation().clone()) else {
        return Ok(None);
    };
    if p.is_empty() {
        return Ok(None);
    }
    mounts::propagation_flag(&p)
        .map(Some)
        .ok_or_else(|| Error::InvalidArgument(format!("unknown rootfsPropagation {p:?}")))
}

/// Everything up to (not including) pivot_root.
pub(crate) fn prepare(plan: &RootfsPlan) -> Result<()> {
    let prop = rootfs_propagation(plan.spec)?;
    // Keep container mounts from propagating back to the host. "slave" and
    // "private" apply to the whole tree: the rootfs is bound from a mount
    // below "/", and it is that mount's propagation the container inherits
    // (runc applies them to "/" alone, so a rootfs in a shared mount ends up
    // private under "slave", and one in a slave mount still receives host
    // mounts under "private").
    // "unbindable" waits for finish(): an unbindable "/" (or rootfs parent)
    // could not be bound as the rootfs.
    let flag = match prop {
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(f) if f.contains(MsFlags::MS_UNBINDABLE) => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(f) if f.intersects(MsFlags::MS_SLAVE | MsFlags::MS_PRIVATE) => f | MsFlags::MS_REC,
        Some(f) => f,
    };
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>).map_err(|e| Error::sys("set propagation of /", e))?;
    // pivot_root refuses a new root whose parent mount is shared.
    make_parent_private(plan.rootfs)?;
    mount(Some(plan.rootfs), plan.rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).map_err(
        |e| Error::Mount { what: "rootfs bind".into(), target: plan.rootfs.to_path_buf(), source: e.into() },
    )?;
    let root = RootDir::open(plan.rootfs).ctx(|| format!("open rootfs {}", plan.rootfs.display()))?;
    let ctx = MountCtx {
        root: &root,
        bundle: plan.bundle,
        cgroup_paths: plan.cgroup_paths,
        new_cgroupns: plan.new_cgroupns,
        in_userns: plan.in_userns,
    };
    let mounts = plan.spec.mounts().as_deref().unwrap_or_default();
    for m in mounts {
        mounts::mount_entry(&ctx, m)?;
    }
    let dev_is_bind = mounts.iter().any(|m| {
        path::clean(m.destination()) == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind") || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind"))
    });
    if !dev_is_bind {
        let devs = plan.spec.linux().as_ref().and_then(|l| l.devices().clone()).unwrap_or_default();
        devices::create_devices(&root, &devs, ctx.in_userns)?;
        let has_devpts = mounts
            .iter()
            .any(|m| m.typ().as_deref() == Some("devpts") && path::clean(m.destination()) == Path::new("/dev/pts"));
        devices::create_links(&root, has_devpts)?;
    }
    Ok(())
}

/// pivot_root requires the new root's parent mount not to be shared.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mi = crate::sys::mountinfo().ctx(|| "read mountinfo")?;
    let parent =
        mi.iter().filter(|m| rootfs.starts_with(&m.mount_point)).max_by_key(|m| m.mount_point.as_os_str().len());
    if let Some(m) = parent.filter(|m| m.optional.contains("shared:")) {
        mount(None::<&str>, &m.mount_point, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>)
            .map_err(|e| Error::sys(format!("make {} private", m.mount_point.display()), e))?;
    }
    Ok(())
}

/// Makes the rootfs `/`: pivot_root, or chroot with `--no-pivot`.
pub(crate) fn enter(plan: &RootfsPlan) -> Result<()> {
    if plan.no_pivot {
        nix::unistd::chdir(plan.rootfs).ctx(|| "chdir rootfs")?;
        mount(Some(plan.rootfs), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(|e| Error::sys("move rootfs to /", e))?;
        nix::unistd::chroot(".").ctx(|| "chroot")?;
        return nix::unistd::chdir("/").ctx(|| "chdir /");
    }
    let old = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "open old root")?;
    let new = nix::fcntl::open(
        plan.rootfs,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "open new root")?;
    nix::unistd::fchdir(&new).ctx(|| "fchdir new root")?;
    // pivot_root(".", ".") stacks the old root on top of the new one; it is
    // then detached without ever needing a directory for it in the image.
    nix::unistd::pivot_root(".", ".").ctx(|| format!("pivot_root into {}", plan.rootfs.display()))?;
    nix::unistd::fchdir(&old).ctx(|| "fchdir old root")?;
    mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)
        .map_err(|e| Error::sys("make old root rslave", e))?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach old root")?;
    let _ = new.as_raw_fd();
    nix::unistd::chdir("/").ctx(|| "chdir /")
}

/// What a container without a mount namespace cannot have: every mount
/// would land in the runtime's own namespace (runc refuses masked and
/// read-only paths there too). Its `mounts` are not made, as with runc.
pub(crate) fn check_without_mount_ns(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let any = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    if any(linux.and_then(|l| l.masked_paths().as_ref())) || any(linux.and_then(|l| l.readonly_paths().as_ref())) {
        return Err(Error::InvalidArgument("linux.maskedPaths and linux.readonlyPaths need a mount namespace".into()));
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        return Err(Error::InvalidArgument("root.readonly needs a mount namespace".into()));
    }
    if linux.and_then(|l| l.rootfs_propagation().as_ref()).is_some_and(|p| !p.is_empty()) {
        return Err(Error::InvalidArgument("linux.rootfsPropagation needs a mount namespace".into()));
    }
    if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        crate::log::debug("no mount namespace: the spec's mounts are not made");
    }
    Ok(())
}

/// The root of a container without a mount namespace: chroot into the
/// rootfs (the runtime's mounts stay visible below it, as with runc).
pub(crate) fn chroot_only(plan: &RootfsPlan) -> Result<()> {
    nix::unistd::chroot(plan.rootfs).ctx(|| format!("chroot into {}", plan.rootfs.display()))?;
    nix::unistd::chdir("/").ctx(|| "chdir /")
}

/// After pivot: read-only and masked paths, read-only root, final propagation.
pub(crate) fn finish(plan: &RootfsPlan) -> Result<()> {
    let linux = plan.spec.linux().as_ref();
    for p in linux.and_then(|l| l.readonly_paths().as_ref()).into_iter().flatten() {
        readonly_path(p)?;
    }
    for p in linux.and_then(|l| l.masked_paths().as_ref()).into_iter().flatten() {
        mask_path(p)?;
    }
    let ro = plan.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false);
    if ro {
        let locked = MsFlags::from_bits_truncate(crate::sys::mount_flags(Path::new("/")));
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked,
            None::<&str>,
        )
        .map_err(|e| Error::sys("remount rootfs read-only", e))?;
    }
    if let Some(flag) = rootfs_propagation(plan.spec)? {
        mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
            .map_err(|e| Error::sys("set rootfs propagation", e))?;
    }
    Ok(())
}

fn readonly_path(p: &str) -> Result<()> {
    let r = mount(Some(p), p, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>);
    match r {
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        r => r.map_err(|e| Error::sys(format!("bind readonly path {p}"), e))?,
    }
    let locked = MsFlags::from_bits_truncate(crate::sys::mount_flags(Path::new(p)));
    mount(
        None::<&str>,
        p,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_REC | locked,
        None::<&str>,
    )
    .map_err(|e| Error::sys(format!("remount readonly path {p}"), e))
}

fn mask_path(p: &str) -> Result<()> {
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    let r = if meta.is_dir() {
        mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
    } else {
        mount(Some("/dev/null"), p, None::<&str>, MsFlags::MS_BIND, None::<&str>)
    };
    match r {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys(format!("mask {p}"), e)),
    }
}
