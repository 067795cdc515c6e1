//! The few system calls the monitor makes, over libc (no other crate: the
//! monitor stays small and starts fast).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }).map(drop)
}

pub fn set_nonblock(fd: RawFd) -> io::Result<()> {
    let fl = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(drop)
}

/// Forks; in the parent exits at once (its caller reaps it), so the child
/// is nobody's child but init's (or a subreaper's) and leads a new session.
pub fn daemonize() -> io::Result<()> {
    match check(unsafe { libc::fork() })? {
        0 => {}
        _ => unsafe { libc::_exit(0) },
    }
    check(unsafe { libc::setsid() })?;
    // Not the caller's cwd: it may be a dir someone wants to unmount or remove.
    check(unsafe { libc::chdir(c"/".as_ptr()) })?;
    Ok(())
}

/// Orphaned processes of the container (the init, once the runtime that
/// forked it exits) become our children.
pub fn become_subreaper() -> io::Result<()> {
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

/// SIGCHLD, SIGUSR1 (and the termination signals, ignored otherwise) as an fd.
pub fn signalfd() -> io::Result<OwnedFd> {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        // SIGUSR1: reopen the log (the kubelet's ReopenContainerLog).
        libc::sigaddset(&mut set, libc::SIGUSR1);
        check(libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()))?;
        for s in [libc::SIGPIPE, libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGQUIT, libc::SIGTTOU, libc::SIGTTIN]
        {
            libc::signal(s, libc::SIG_IGN);
        }
        let fd = check(libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Undoes [`signalfd`]'s mask and ignored signals (for a child about to exec).
pub fn reset_signals() {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for s in [libc::SIGPIPE, libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGQUIT, libc::SIGTTOU, libc::SIGTTIN]
        {
            libc::signal(s, libc::SIG_DFL);
        }
    }
}

pub fn drain_signalfd(fd: &OwnedFd) {
    let mut buf = [0u8; 128 * 8];
    while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// A reaped child: its pid and its status as a shell reports it (the exit
/// code, or 128 + the signal).
pub fn reap_any() -> Option<(i32, i32)> {
    let mut st = 0;
    let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    Some((pid, status_code(st)))
}

fn status_code(st: i32) -> i32 {
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        255
    }
}

pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// Receives one fd (SCM_RIGHTS) from a unix socket.
pub fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    let mut cbuf = [0u64; 8];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    check(unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) } as libc::c_int)?;
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if !c.is_null() && (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>());
            return Ok(OwnedFd::from_raw_fd(fd));
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "no fd on the console socket"))
}

/// Waits up to `ms` for `fd` to be readable.
pub fn wait_readable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

pub fn wait_writable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// Drops this process's page-table entries for the read-only, unwritten
/// parts of the binaries it maps (code, constants): start-up touched much of
/// them, the event loop needs a few pages, which fault back in. They stay in
/// the page cache, shared; only the resident set of each monitor shrinks.
/// Relocated (RELRO) and writable mappings are left alone.
pub fn trim_resident() {
    Trim::new().run();
}

/// The mappings [`trim_resident`] drops, found once, so that the loop can
/// drop them again cheaply after a burst of work (a probe's fork and exec
/// fault in much of libc, 64 KiB at a time with the kernel's fault-around).
/// A binary's mappings live as long as the process (no dlclose), so the
/// ranges never come to name other memory.
pub struct Trim {
    ranges: Vec<(usize, usize)>,
}

impl Trim {
    pub fn new() -> Trim {
        let mut ranges = Vec::new();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        for line in maps.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 || !f[5].starts_with('/') || f[1].contains('w') {
                continue;
            }
            if !(f[1].contains('x') || f[2].trim_start_matches('0').is_empty()) {
                continue;
            }
            let Some((a, b)) = f[0].split_once('-') else { continue };
            let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else { continue };
            ranges.push((a, b - a));
        }
        Trim { ranges }
    }

    pub fn run(&self) {
        for &(a, len) in &self.ranges {
            unsafe { libc::madvise(a as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        }
    }
}

/// Now as RFC 3339 UTC with nanoseconds (the CRI log's timestamps).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        assert_eq!(super::rfc3339(0, 5), "1970-01-01T00:00:00.000000005Z");
        assert_eq!(super::rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000000000Z");
        assert_eq!(super::rfc3339(951_782_400, 1), "2000-02-29T00:00:00.000000001Z");
    }
}
