//! `cgroup` mounts inside the container: the container's own view of v1
//! hierarchies (a tmpfs with one mount per controller) or of v2.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::mounts::{remount, MountCtx, Options};
use crate::error::{Error, Result};

fn err(what: String, target: &Path) -> impl FnOnce(nix::errno::Errno) -> Error {
    let target = target.to_path_buf();
    move |e| Error::Mount { what, target, source: e.into() }
}

/// Mounts one cgroup filesystem, or binds the host directory when the
/// container has no cgroup namespace (then the host path is its view).
fn mount_one(ctx: &MountCtx, dest: &Path, ctrl: &str, host: &Path, flags: MsFlags) -> Result<()> {
    let fd =
        ctx.root.mkdir_all(dest, 0o755).map_err(|e| Error::io(format!("create mount point {}", dest.display()), e))?;
    let t = crate::sys::fd_path(&fd);
    let base = flags.difference(MsFlags::MS_RDONLY);
    let bind = || mount(Some(host), &t, None::<&str>, MsFlags::MS_BIND, None::<&str>);
    let mut bound = !ctx.new_cgroupns;
    let r = if ctx.new_cgroupns && ctrl.is_empty() {
        mount(Some("cgroup2"), &t, Some("cgroup2"), base, None::<&str>)
    } else if ctx.new_cgroupns {
        mount(Some("cgroup"), &t, Some("cgroup"), base, Some(ctrl))
    } else {
        bind()
    };
    let r = match r {
        // v1 hierarchies cannot be mounted from a user namespace: bind the
        // container's host directory instead (what runc does there too).
        Err(nix::errno::Errno::EPERM) if ctx.in_userns && !bound => {
            bound = true;
            bind()
        }
        r => r,
    };
    r.map_err(err(format!("cgroup {ctrl}"), dest))?;
    drop(fd);
    if bound || flags.contains(MsFlags::MS_RDONLY) {
        remount(ctx, dest, flags)?;
    }
    Ok(())
}

pub(crate) fn mount_cgroup(ctx: &MountCtx, dest: &Path, typ: &str, opts: &Options) -> Result<()> {
    let flags = opts.flags.difference(MsFlags::MS_REMOUNT);
    let pure_v2 = ctx.cgroup_paths.len() == 1 && ctx.cgroup_paths[0].0.is_empty();
    if pure_v2 || typ == "cgroup2" {
        let host = ctx
            .cgroup_paths
            .iter()
            .find(|(c, _)| c.is_empty())
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
        return mount_one(ctx, dest, "", &host, flags);
    }
    let fd =
        ctx.root.mkdir_all(dest, 0o755).map_err(|e| Error::io(format!("create mount point {}", dest.display()), e))?;
    let t = crate::sys::fd_path(&fd);
    mount(
        Some("tmpfs"),
        &t,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(err("tmpfs for cgroup".into(), dest))?;
    drop(fd);
    for (ctrl, host) in ctx.cgroup_paths {
        let name = if ctrl.is_empty() { "unified" } else { ctrl.as_str() };
        mount_one(ctx, &dest.join(name), ctrl, host, flags)?;
        if ctrl.contains(',') {
            link_aliases(ctx, dest, ctrl)?;
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        remount(ctx, dest, flags)?;
    }
    Ok(())
}

/// `cpu` and `cpuacct` → `cpu,cpuacct`, as hosts with joined hierarchies have.
fn link_aliases(ctx: &MountCtx, dest: &Path, joined: &str) -> Result<()> {
    let dir = ctx
        .root
        .resolve(dest)
        .and_then(|fd| super::path::reopen_dir(&fd))
        .map_err(|e| Error::io(format!("open {}", dest.display()), e))?;
    for alias in joined.split(',') {
        match nix::unistd::symlinkat(joined, &dir, alias) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink {}/{alias}", dest.display()), e)),
        }
    }
    Ok(())
}
