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
    /// `rro`, `rnosuid`, …: MOUNT_ATTR_* to set and clear on the whole tree
    /// with mount_setattr(AT_RECURSIVE) once the mount is in place.
    pub rec_set: u64,
    pub rec_clr: u64,
}

/// Not in nix's MsFlags (Linux 5.10+).
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// Options that set (`false`) or clear (`true`) an MS_* flag.
const FLAG_OPTIONS: &[(&str, bool, MsFlags)] = &[
    ("acl", false, MsFlags::MS_POSIXACL),
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("atime", true, MsFlags::MS_NOATIME),
    ("dev", true, MsFlags::MS_NODEV),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("iversion", false, MsFlags::MS_I_VERSION),
    ("lazytime", false, MsFlags::MS_LAZYTIME),
    ("loud", true, MsFlags::MS_SILENT),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("noacl", true, MsFlags::MS_POSIXACL),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("nodev", false, MsFlags::MS_NODEV),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("noiversion", true, MsFlags::MS_I_VERSION),
    ("nolazytime", true, MsFlags::MS_LAZYTIME),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("nosymfollow", false, MS_NOSYMFOLLOW),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("silent", false, MsFlags::MS_SILENT),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("suid", true, MsFlags::MS_NOSUID),
    ("symfollow", true, MS_NOSYMFOLLOW),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
];

pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_ATIME: u64 = 0x70;
const MOUNT_ATTR_RELATIME: u64 = 0x0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// Recursive options (runc 1.1+): set (`false`) or clear (`true`) a
/// MOUNT_ATTR_* on every mount of the tree.
const RECURSIVE_OPTIONS: &[(&str, bool, u64)] = &[
    ("ratime", true, MOUNT_ATTR_NOATIME),
    ("rdev", true, MOUNT_ATTR_NODEV),
    ("rdiratime", true, MOUNT_ATTR_NODIRATIME),
    ("rexec", true, MOUNT_ATTR_NOEXEC),
    ("rnoatime", false, MOUNT_ATTR_NOATIME),
    ("rnodev", false, MOUNT_ATTR_NODEV),
    ("rnodiratime", false, MOUNT_ATTR_NODIRATIME),
    ("rnoexec", false, MOUNT_ATTR_NOEXEC),
    ("rnorelatime", true, MOUNT_ATTR_RELATIME),
    ("rnostrictatime", true, MOUNT_ATTR_STRICTATIME),
    ("rnosuid", false, MOUNT_ATTR_NOSUID),
    ("rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW),
    ("rrelatime", false, MOUNT_ATTR_RELATIME),
    ("rro", false, MOUNT_ATTR_RDONLY),
    ("rrw", true, MOUNT_ATTR_RDONLY),
    ("rstrictatime", false, MOUNT_ATTR_STRICTATIME),
    ("rsuid", true, MOUNT_ATTR_NOSUID),
    ("rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW),
];

const PROPAGATION_OPTIONS: &[&str] =
    &["private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"];

/// Every mount option `mounts[].options` may carry, for `features`.
pub(crate) fn known_options() -> Vec<&'static str> {
    let mut v: Vec<&str> = FLAG_OPTIONS.iter().map(|o| o.0).collect();
    v.extend(RECURSIVE_OPTIONS.iter().map(|o| o.0));
    v.extend(PROPAGATION_OPTIONS);
    v.extend(["bind", "rbind", "defaults", "tmpcopyup"]);
    v.sort_unstable();
    v
}

pub(crate) fn parse_options(opts: &[String]) -> Result<Options> {
    let mut o = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: vec![],
        bind: false,
        recursive_bind: false,
        rec_set: 0,
        rec_clr: 0,
    };
    for opt in opts {
        let opt = opt.as_str();
        if let Some(&(_, clear, f)) = FLAG_OPTIONS.iter().find(|x| x.0 == opt) {
            if clear {
                o.flags.remove(f);
            } else {
                o.flags |= f;
            }
        } else if let Some(&(_, clear, a)) = RECURSIVE_OPTIONS.iter().find(|x| x.0 == opt) {
            if clear {
                o.rec_clr |= a;
                o.rec_set &= !a;
            } else if a & MOUNT_ATTR_ATIME != 0 || opt == "rrelatime" {
                // The atime mode is one field: the kernel wants it cleared to set a mode.
                o.rec_set = (o.rec_set & !MOUNT_ATTR_ATIME) | a;
                o.rec_clr |= MOUNT_ATTR_ATIME;
            } else {
                o.rec_set |= a;
                o.rec_clr &= !a;
            }
        } else if PROPAGATION_OPTIONS.contains(&opt) {
            o.propagation |= propagation_flag(opt).unwrap_or(MsFlags::empty());
        } else {
            match opt {
                "bind" => o.bind = true,
                "rbind" => (o.bind, o.recursive_bind) = (true, true),
                // Docker's tmpfs copy-up and SELinux relabel hints: nothing to do here.
                "defaults" | "tmpcopyup" | "z" | "Z" => {}
                "idmap" | "ridmap" => return Err(Error::Unsupported(format!("mount option {opt:?}"))),
                _ => o.data.push(opt.to_string()),
            }
        }
    }
    Ok(o)
}

/// mount_setattr(2) with AT_RECURSIVE on the mount at `target`.
pub(crate) fn set_recursive_attrs(target: &Path, set: u64, clr: u64, dest: &Path) -> Result<()> {
    if set == 0 && clr == 0 {
        return Ok(());
    }
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr { attr_set: set, attr_clr: clr, propagation: 0, userns_fd: 0 };
    let path = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::InvalidArgument(format!("mount target {} has a NUL byte", dest.display())))?;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    // SAFETY: a valid C string and a properly sized attr struct that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(Error::Mount {
            what: "recursive mount attributes (mount_setattr)".into(),
            target: dest.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
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
    let flags = opts.flags.difference(MsFlags::MS_REMOUNT);
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
    drop(target);
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        // Reopened: the descriptor from before mount(2) names what lies beneath.
        let fd = ctx.root.resolve(&dest).map_err(|e| Error::io(format!("reopen mount {}", dest.display()), e))?;
        set_recursive_attrs(&crate::sys::fd_path(&fd), opts.rec_set, opts.rec_clr, &dest)?;
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
    let extra = opts.flags.difference(MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        remount(ctx, dest, extra)?;
    }
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        let fd = ctx.root.resolve(dest).map_err(|e| Error::io(format!("reopen mount {}", dest.display()), e))?;
        set_recursive_attrs(&crate::sys::fd_path(&fd), opts.rec_set, opts.rec_clr, dest)?;
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
        let o = parse_options(&["rro".into(), "rnosuid".into(), "lazytime".into(), "nosymfollow".into()]).unwrap();
        assert_eq!((o.rec_set, o.rec_clr), (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0));
        assert!(o.flags.contains(MsFlags::MS_LAZYTIME | MS_NOSYMFOLLOW));
        assert!(o.data.is_empty());
        let o = parse_options(&["rnoatime".into()]).unwrap();
        assert_eq!((o.rec_set, o.rec_clr), (MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME));
    }
}
