//! One OCI `mounts[]` entry → mount(2) calls onto a target resolved inside
//! the rootfs and named through /proc/self/fd (as runc does since
//! CVE-2021-30465), so a symlink swap cannot redirect it to the host.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use super::path::RootDir;
use crate::error::{Error, Result};

/// Parsed mount options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub flags: MsFlags,
    /// Flags to clear on remount (e.g. `rw` after a `ro` default).
    pub propagation: MsFlags,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive_bind: bool,
}

pub(crate) fn parse_options(opts: &[String]) -> Result<Options> {
    let mut o = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: vec![],
        bind: false,
        recursive_bind: false,
    };
    for opt in opts {
        let (set, clear) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                o.bind = true;
                o.recursive_bind = true;
                continue;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
                o.propagation |= propagation_flag(opt).unwrap_or(MsFlags::empty());
                continue;
            }
            // Docker's tmpfs copy-up and SELinux relabel hints: nothing to do here.
            "tmpcopyup" | "z" | "Z" => continue,
            "idmap" | "ridmap" | "rro" | "rrw" | "rnosuid" | "rnodev" | "rnoexec" => {
                return Err(Error::Unsupported(format!("mount option {opt:?}")))
            }
            _ => {
                o.data.push(opt.clone());
                continue;
            }
        };
        o.flags |= set;
        o.flags &= !clear;
    }
    Ok(o)
}

/// MS_* flag of a propagation keyword (also used for rootfsPropagation).
pub(crate) fn propagation_flag(s: &str) -> Option<MsFlags> {
    Some(match s {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

fn mount_err(what: impl Into<String>, target: &Path) -> impl FnOnce(nix::errno::Errno) -> Error {
    let what = what.into();
    let target = target.to_path_buf();
    move |e| Error::Mount { what, target, source: e.into() }
}

/// Context the mount code needs about the container.
pub(crate) struct MountCtx<'a> {
    pub root: &'a RootDir,
    pub bundle: &'a Path,
    /// Host cgroup directories of the container, for `cgroup` mounts.
    pub cgroup_paths: &'a [(String, PathBuf)],
    pub new_cgroupns: bool,
    pub in_userns: bool,
}

/// Mounts one spec entry.
pub(crate) fn mount_entry(ctx: &MountCtx, m: &Mount) -> Result<()> {
    let dest = super::path::clean(m.destination());
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = parse_options(m.options().as_deref().unwrap_or_default())?;
    if typ == "cgroup" || typ == "cgroup2" {
        return super::cgroupfs::mount_cgroup(ctx, &dest, typ, &opts);
    }
    if opts.bind || typ == "bind" {
        return bind(ctx, m, &dest, &opts);
    }
    let target =
        ctx.root.mkdir_all(&dest, 0o755).map_err(|e| Error::io(format!("create mount point {}", dest.display()), e))?;
    refuse_root(ctx, &target, &dest)?;
    let src = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let data = opts.data.join(",");
    let flags = opts.flags & !MsFlags::MS_REMOUNT;
    let tpath = crate::sys::fd_path(&target);
    let r = mount(Some(src.as_path()), &tpath, Some(typ), flags, (!data.is_empty()).then_some(data.as_str()));
    match r {
        // sysfs cannot be mounted in a user namespace that does not own the
        // network namespace; runc falls back to a recursive bind of /sys.
        Err(nix::errno::Errno::EPERM) if typ == "sysfs" => {
            let r = mount(Some("/sys"), &tpath, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>);
            r.map_err(mount_err("/sys (rbind fallback)", &dest))?;
        }
        r => r.map_err(mount_err(format!("{typ} ({})", src.display()), &dest))?,
    }
    apply_propagation(ctx, &dest, &opts)
}

/// A destination that resolves to the rootfs itself (e.g. a symlink to `/`)
/// would shadow the whole container; refuse it.
fn refuse_root(ctx: &MountCtx, fd: &std::os::fd::OwnedFd, dest: &Path) -> Result<()> {
    if ctx.root.is_root(fd) {
        return Err(Error::Mount {
            what: "destination".into(),
            target: dest.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "destination resolves to the container's root directory (symlink to /?)",
            ),
        });
    }
    Ok(())
}

fn bind(ctx: &MountCtx, m: &Mount, dest: &Path, opts: &Options) -> Result<()> {
    let src = m.source().clone().unwrap_or_default();
    let src = if src.is_absolute() { src } else { ctx.bundle.join(src) };
    let is_dir =
        super::path::host_is_dir(&src).map_err(|e| Error::io(format!("bind mount source {}", src.display()), e))?;
    let target = if is_dir { ctx.root.mkdir_all(dest, 0o755) } else { ctx.root.create_file(dest) }
        .map_err(|e| Error::io(format!("create mount point {}", dest.display()), e))?;
    refuse_root(ctx, &target, dest)?;
    let mut flags = MsFlags::MS_BIND;
    if opts.recursive_bind {
        flags |= MsFlags::MS_REC;
    }
    let tpath = crate::sys::fd_path(&target);
    mount(Some(src.as_path()), &tpath, None::<&str>, flags, None::<&str>)
        .map_err(mount_err(format!("bind {}", src.display()), dest))?;
    drop(target);
    let extra = opts.flags & !MsFlags::MS_REMOUNT;
    if !extra.is_empty() {
        remount(ctx, dest, extra)?;
    }
    apply_propagation(ctx, dest, opts)
}

/// Remounts the mount now on `dest` with `flags`, keeping the flags the
/// kernel locks (nosuid/nodev/… inherited from a less privileged mount).
pub(crate) fn remount(ctx: &MountCtx, dest: &Path, flags: MsFlags) -> Result<()> {
    let fd = ctx.root.resolve(dest).map_err(|e| Error::io(format!("reopen mount {}", dest.display()), e))?;
    let tpath = crate::sys::fd_path(&fd);
    let base = MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    let r = mount(None::<&str>, &tpath, None::<&str>, base | flags, None::<&str>);
    if r == Err(nix::errno::Errno::EPERM) {
        let locked = MsFlags::from_bits_truncate(crate::sys::mount_flags(&tpath));
        mount(None::<&str>, &tpath, None::<&str>, base | flags | locked, None::<&str>)
            .map_err(mount_err("remount", dest))?;
        return Ok(());
    }
    r.map_err(mount_err("remount", dest))
}

fn apply_propagation(ctx: &MountCtx, dest: &Path, opts: &Options) -> Result<()> {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let fd = ctx.root.resolve(dest).map_err(|e| Error::io(format!("reopen mount {}", dest.display()), e))?;
    let tpath = crate::sys::fd_path(&fd);
    // One propagation type per mount(2) call.
    let rec = opts.propagation & MsFlags::MS_REC;
    for f in [MsFlags::MS_PRIVATE, MsFlags::MS_SHARED, MsFlags::MS_SLAVE, MsFlags::MS_UNBINDABLE] {
        if opts.propagation.contains(f) {
            mount(None::<&str>, &tpath, None::<&str>, f | rec, None::<&str>).map_err(mount_err("propagation", dest))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_options() {
        let o = parse_options(&["nosuid".into(), "ro".into(), "size=65536k".into(), "rbind".into(), "rslave".into()])
            .unwrap();
        assert!(o.flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_RDONLY));
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.data, vec!["size=65536k".to_string()]);
        assert!(o.propagation.contains(MsFlags::MS_SLAVE | MsFlags::MS_REC));
        let o = parse_options(&["ro".into(), "rw".into()]).unwrap();
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }
}
