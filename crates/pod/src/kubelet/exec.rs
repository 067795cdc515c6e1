//! ExecSync: a command in a running container with its output captured
//! through pipes (the caller's own stdio untouched: `wharf cri` serves many
//! at once), a timeout after which the process is killed, and a cap on
//! the output kept.

use crate::container::{Container, Containers, ExecIo, ExecRequest, Spawned};
use crate::error::{Error, Result};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Output kept per stream (containerd's and CRI-O's 16 MiB).
pub const MAX_EXEC_OUTPUT: usize = 16 << 20;

/// What [`Containers::exec_capture`] saw.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The timeout passed and the process was killed.
    pub timed_out: bool,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::io("pipe", e.into()))
}

impl Containers {
    /// Runs `r.cmd` in `c` with stdin from /dev/null and stdout/stderr
    /// captured (`cap` bytes each at most); killed after `timeout`.
    pub fn exec_capture(
        &self,
        c: &Container,
        r: &ExecRequest,
        timeout: Option<Duration>,
        cap: usize,
    ) -> Result<ExecOutput> {
        let null = std::fs::File::open("/dev/null").map_err(|e| Error::io("open /dev/null", e))?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        // The checks and the process are `exec`'s (user, env, workdir, paused…).
        let proc = self.exec_spawn(c, r, ExecIo::Fds([null.into(), out_w, err_w]))?;
        collect(&proc, [out_r, err_r], timeout, cap)
    }
}

/// Reads both pipes until the process has exited and they are drained
/// (or, with a background child keeping them open, a moment after).
fn collect(proc: &Spawned, fds: [OwnedFd; 2], timeout: Option<Duration>, cap: usize) -> Result<ExecOutput> {
    let pid = proc.pid;
    let mut out = ExecOutput::default();
    let start = Instant::now();
    let mut open = [true, true];
    let mut exited: Option<Instant> = None;
    let mut files: Vec<std::fs::File> = fds.into_iter().map(std::fs::File::from).collect();
    for f in &files {
        // SAFETY: fcntl on an fd this function owns.
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    }
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if exited.is_none() {
            let mut st = 0;
            // SAFETY: waitpid on the exec process, this process's child.
            match unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } {
                0 => {}
                n if n == pid => {
                    out.exit_code = if libc::WIFEXITED(st) { libc::WEXITSTATUS(st) } else { 128 + libc::WTERMSIG(st) };
                    exited = Some(Instant::now());
                }
                _ => return Err(Error::io("wait for the exec process", std::io::Error::last_os_error())),
            }
            if exited.is_none() && !out.timed_out && timeout.is_some_and(|t| start.elapsed() >= t) {
                out.timed_out = true;
                // The process in the container (a runtime binary's `exec` would die alone).
                proc.kill();
            }
        }
        // The pipes close as the process exits, a moment before it can be
        // reaped: done only once it was, and the pipes are drained (or, if
        // a background child keeps them open, a moment later).
        let drained = !open[0] && !open[1];
        if exited.is_some_and(|t| drained || t.elapsed() > Duration::from_millis(200)) {
            return Ok(out);
        }
        if drained {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let mut pfds: Vec<libc::pollfd> = files
            .iter()
            .zip(open)
            .filter(|(_, o)| *o)
            .map(|(f, _)| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        // SAFETY: poll over fds this function owns.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 10) };
        for (i, f) in files.iter_mut().enumerate() {
            if !open[i] {
                continue;
            }
            loop {
                match f.read(&mut buf) {
                    Ok(0) => {
                        open[i] = false;
                        break;
                    }
                    Ok(n) => {
                        let dst = if i == 0 { &mut out.stdout } else { &mut out.stderr };
                        let room = cap.saturating_sub(dst.len());
                        dst.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        open[i] = false;
                        break;
                    }
                }
            }
        }
    }
}
