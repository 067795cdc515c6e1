//! The container's loopback interface, brought up in its network namespace
//! (a new namespace starts with `lo` down; Docker and podman bring it up).

use crate::error::{Error, Result};

/// Sets `lo` up in the network namespace of process `pid`.
pub(crate) fn loopback_up(pid: i32) -> Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| Error::io("open the container's network namespace", e))?;
    // setns changes only the calling thread: do it in a thread of its own.
    std::thread::spawn(move || -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a descriptor this thread owns.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lo_up_here()
    })
    .join()
    .map_err(|_| Error::io("bring lo up", std::io::Error::other("thread panicked")))?
    .map_err(|e| Error::io("bring lo up in the container", e))
}

/// Sets `lo` up in the calling thread's network namespace.
pub(crate) fn lo_up_here() -> std::io::Result<()> {
    // SAFETY: plain syscalls on a descriptor this function owns.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(sock);
        if rc != 0 {
            return Err(err);
        }
    }
    Ok(())
}
