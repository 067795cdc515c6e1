//! `exec -t`: the runtime sends the pty master over a console socket (as
//! runc does with `--console-socket`); it is relayed to the user's terminal.

use crate::error::{Error, Result};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

pub(crate) struct Console {
    path: PathBuf,
    listener: UnixListener,
}

impl Console {
    pub(crate) fn listen(run_root: &Path, id: &str) -> Result<Self> {
        Self::listen_at(socket_path(run_root, id))
    }

    fn listen_at(path: PathBuf) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| Error::io(format!("listen on {}", path.display()), e))?;
        Ok(Console { path, listener })
    }

    /// A socket of its own for each call: several execs of one process
    /// (a server's) at once.
    pub(crate) fn listen_unique(run_root: &Path, id: &str) -> Result<Self> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{}-x{}-{n}.sock", id.get(..12).unwrap_or(id), std::process::id());
        Self::listen_at(run_root.join("console").join(name))
    }

    /// The pty master the runtime sent.
    pub(crate) fn receive(&self) -> Result<OwnedFd> {
        let (conn, _) = self.listener.accept().map_err(|e| Error::io("accept console socket", e))?;
        recv_fd(conn.as_fd())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the pty master the runtime sent and starts relaying it.
    pub(crate) fn attach(&self, interactive: bool) -> Result<Relay> {
        let (conn, _) = self.listener.accept().map_err(|e| Error::io("accept console socket", e))?;
        let master = recv_fd(conn.as_fd())?;
        let stdin = std::io::stdin();
        if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdout()) {
            let _ = rustix::termios::tcsetwinsize(&master, ws);
        }
        let saved = if interactive { rustix::termios::tcgetattr(&stdin).ok() } else { None };
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
        }
        let mut out_side = std::fs::File::from(master.try_clone().map_err(|e| Error::io("dup pty", e))?);
        let output = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut stdout = std::io::stdout();
            // EIO once the container side closes: that is the end.
            while let Ok(n) = out_side.read(&mut buf) {
                if n == 0 || stdout.write_all(&buf[..n]).and_then(|()| stdout.flush()).is_err() {
                    break;
                }
            }
        });
        if interactive {
            let mut in_side = std::fs::File::from(master);
            // Detached: it blocks on the user's stdin until the process ends.
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut in_side);
            });
        }
        Ok(Relay { output: Some(output), saved })
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn recv_fd(sock: impl AsFd) -> Result<OwnedFd> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    rustix::net::recvmsg(sock, &mut [std::io::IoSliceMut::new(&mut buf)], &mut cmsg, RecvFlags::CMSG_CLOEXEC)
        .map_err(|e| Error::io("receive pty from the runtime", e.into()))?;
    for msg in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(Error::io("receive pty from the runtime", std::io::Error::other("no file descriptor in the message")))
}

/// Restores the terminal and waits for the output to drain.
pub(crate) struct Relay {
    output: Option<std::thread::JoinHandle<()>>,
    saved: Option<rustix::termios::Termios>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(t) = self.output.take() {
            let _ = t.join();
        }
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(std::io::stdin(), rustix::termios::OptionalActions::Now, t);
        }
    }
}

/// Where container `id`'s console socket is made.
fn socket_path(run_root: &Path, id: &str) -> std::path::PathBuf {
    // sun_path holds 108 bytes: keep the name short.
    run_root.join("console").join(format!("{}-x{}.sock", id.get(..12).unwrap_or(id), std::process::id()))
}
