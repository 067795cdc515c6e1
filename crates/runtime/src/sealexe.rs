//! CVE-2019-5736: the process that becomes a container's init (or an exec'd
//! process) is a fork of the runtime, so until its final execve its
//! /proc/self/exe is the runtime binary. If the container's program is a
//! script whose interpreter is `/proc/self/exe`, the kernel runs the host
//! binary inside the container, where another container process can open
//! /proc/PID/exe and, once the binary is idle, reopen it for writing.
//!
//! The cure is that /proc/self/exe of every process we fork refers to the
//! binary through something that cannot be written. [`ensure_sealed_exe`]
//! re-executes the current program once, before any thread exists, from a
//! detached read-only bind mount of its directory (open_tree + mount_setattr,
//! Linux 5.12): no copy, the page cache stays shared, and a write through
//! /proc/PID/exe fails with EROFS. Where that is unavailable it falls back to
//! a sealed memfd copy (what runc 1.1 and crun do, at the cost of a copy per
//! start). A binary that already sits on a read-only mount needs neither.
//!
//! Binaries that run containers call it first thing: `wharf-runtime` for
//! create/run/exec, `wharf` for run/build. A program that embeds the library
//! without calling it gets a warning from [`crate::Container::create`].

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

const MEMFD_NAME: &str = "wharf-sealed-exe";

/// True if /proc/self/exe cannot be written through: it is on a read-only
/// mount, or it is our sealed memfd.
pub fn exe_is_sealed() -> bool {
    if let Ok(st) = nix::sys::statvfs::statvfs("/proc/self/exe") {
        if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
            return true;
        }
    }
    std::fs::read_link("/proc/self/exe")
        .map(|p| p.as_os_str().as_bytes().starts_with(format!("/memfd:{MEMFD_NAME}").as_bytes()))
        .unwrap_or(false)
}

/// Re-executes the current program from a read-only view of itself unless
/// it already runs from one. Returns only if nothing needed doing; on
/// success the process image is replaced (same argv, same environment).
/// Call it before any thread starts.
pub fn ensure_sealed_exe() -> crate::Result<()> {
    if exe_is_sealed() {
        return Ok(());
    }
    reexec_sealed().map_err(|e| crate::Error::io("re-exec from a sealed view of the runtime binary", e))
}

fn reexec_sealed() -> io::Result<()> {
    let fd = match readonly_bind_of_exe() {
        Ok(fd) => fd,
        Err(_) => sealed_memfd_copy()?,
    };
    let args: Vec<CString> = std::env::args_os().map(cstring).collect::<io::Result<_>>()?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstring(kv)
        })
        .collect::<io::Result<_>>()?;
    let e = nix::unistd::fexecve(&fd, &args, &env).unwrap_err();
    Err(io::Error::from(e))
}

fn cstring(s: OsString) -> io::Result<CString> {
    CString::new(s.into_vec()).map_err(|_| io::Error::other("NUL byte in argv or environment"))
}

/// Our binary, opened through a detached read-only bind mount of its
/// directory (so /proc/PID/exe reads "/<name>", not a bare "/").
fn readonly_bind_of_exe() -> io::Result<OwnedFd> {
    use std::os::unix::fs::MetadataExt;
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let path = std::fs::read_link("/proc/self/exe")?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other("no directory for /proc/self/exe"));
    };
    let dir = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let name = CString::new(name.as_bytes()).map_err(io::Error::other)?;
    // SAFETY: open_tree with a NUL-terminated path; returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            dir.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor owned by us.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: mount_setattr on our fd with a properly sized attr struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat relative to our tree fd with a NUL-terminated name.
    let fd =
        unsafe { libc::openat(tree.as_raw_fd(), name.as_ptr(), libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor owned by us.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    // The path may have been replaced since we started (an upgrade): only
    // the very file we run from will do.
    let (now, ours) =
        (std::fs::metadata(format!("/proc/self/fd/{}", file.as_raw_fd()))?, std::fs::metadata("/proc/self/exe")?);
    if (now.dev(), now.ino()) != (ours.dev(), ours.ino()) {
        return Err(io::Error::other("the runtime binary was replaced while starting"));
    }
    Ok(file)
}

/// A memfd holding a copy of our binary, sealed against every change.
fn sealed_memfd_copy() -> io::Result<OwnedFd> {
    let fd = nix::sys::memfd::memfd_create(
        MEMFD_NAME,
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )?;
    let mut file = std::fs::File::from(fd);
    std::io::copy(&mut std::fs::File::open("/proc/self/exe")?, &mut file)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl with integer arguments on our fd.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from(file))
}
