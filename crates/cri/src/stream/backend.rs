//! Exec and attach behind the protocols: the pod crate's exec (pipes or a
//! pty) and the monitor's attach socket, relayed by plain threads (the
//! descriptors block) to the session's channels.

use super::tokens::{StdioOpts, Target};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use wharf_pod::container::proto;

/// A terminal size, as the clients send it (`{"Width":…,"Height":…}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct Size {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The session's side of the streams; `None`: not asked for.
pub(crate) struct Io {
    /// The client's input. An empty chunk is its end of input (v5's close
    /// of stdin, SPDY's FIN); the channel ending without one is the
    /// client going away. An exec's stdin is closed either way; an
    /// attached container's only at the end of input (the next client
    /// may still type to it).
    pub stdin: Option<mpsc::UnboundedReceiver<Vec<u8>>>,
    pub stdout: Option<mpsc::Sender<Vec<u8>>>,
    pub stderr: Option<mpsc::Sender<Vec<u8>>>,
    pub resize: Option<mpsc::UnboundedReceiver<Size>>,
}

/// How the session ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Exited(i32),
    Failed(String),
}

/// How long output may still drain after the process exited (a background
/// child may hold the pipes open for good).
const DRAIN: Duration = Duration::from_secs(2);

pub(crate) async fn exec(t: Target, cmd: Vec<String>, o: StdioOpts, mut io: Io) -> Outcome {
    match exec_inner(t, cmd, o, &mut io).await {
        Ok(code) => Outcome::Exited(code),
        Err(e) => Outcome::Failed(e),
    }
}

async fn exec_inner(t: Target, cmd: Vec<String>, o: StdioOpts, io: &mut Io) -> Result<i32, String> {
    let err = |e: std::io::Error| e.to_string();
    let null = || std::fs::File::options().read(true).write(true).open("/dev/null").map(OwnedFd::from);
    let mut resize = io.resize.take();
    let (child_io, ours) = if o.tty {
        // The client sends its size first: start the process with it.
        let size = match resize.as_mut() {
            Some(r) => tokio::time::timeout(Duration::from_millis(200), r.recv()).await.ok().flatten(),
            None => None,
        };
        (wharf_pod::container::ExecIo::Tty { size: size.map(|s| (s.height, s.width)) }, None)
    } else {
        let (in_r, in_w) = match io.stdin {
            Some(_) => pipe().map(|(r, w)| (r, Some(w))).map_err(err)?,
            None => (null().map_err(err)?, None),
        };
        let (out_r, out_w) = match io.stdout {
            Some(_) => pipe().map(|(r, w)| (Some(r), w)).map_err(err)?,
            None => (None, null().map_err(err)?),
        };
        let (err_r, err_w) = match io.stderr {
            Some(_) => pipe().map(|(r, w)| (Some(r), w)).map_err(err)?,
            None => (None, null().map_err(err)?),
        };
        (wharf_pod::container::ExecIo::Fds([in_r, out_w, err_w]), Some((in_w, out_r, err_r)))
    };
    let req = wharf_pod::container::ExecRequest { cmd, ..Default::default() };
    let spawned = tokio::task::spawn_blocking(move || {
        let cs = wharf_pod::Containers::new(&t.root, &t.run_root);
        let c = cs.get(&t.id)?;
        cs.exec_spawn(&c, &req, child_io)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let mut readers = Vec::new();
    match (ours, &spawned.pty) {
        (Some((in_w, out_r, err_r)), _) => {
            if let (Some(w), Some(rx)) = (in_w, io.stdin.take()) {
                std::thread::spawn(move || pump_in(std::fs::File::from(w), rx));
            }
            for (r, tx) in [(out_r, io.stdout.take()), (err_r, io.stderr.take())] {
                if let (Some(r), Some(tx)) = (r, tx) {
                    readers.push(pump_out(std::fs::File::from(r), tx));
                }
            }
        }
        (None, Some(pty)) => {
            let dup = |f: &OwnedFd| f.try_clone().map(std::fs::File::from).map_err(err);
            if let Some(rx) = io.stdin.take() {
                let w = dup(pty)?;
                std::thread::spawn(move || pump_in(w, rx));
            }
            if let Some(tx) = io.stdout.take() {
                readers.push(pump_out(dup(pty)?, tx));
            }
            if let Some(mut rx) = resize.take() {
                let m = pty.try_clone().map_err(err)?;
                tokio::spawn(async move {
                    while let Some(s) = rx.recv().await {
                        let ws =
                            rustix::termios::Winsize { ws_row: s.height, ws_col: s.width, ws_xpixel: 0, ws_ypixel: 0 };
                        let _ = rustix::termios::tcsetwinsize(&m, ws);
                    }
                });
            }
        }
        (None, None) => return Err("exec: no pty from the runtime".into()),
    }
    let code = tokio::task::spawn_blocking(move || spawned.wait())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let _ = tokio::time::timeout(DRAIN, async {
        for r in readers {
            let _ = r.await;
        }
    })
    .await;
    Ok(code)
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

/// The client's input to `w` until its end (then `w` is closed).
fn pump_in(mut w: std::fs::File, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(d) = rx.blocking_recv() {
        if d.is_empty() || w.write_all(&d).is_err() {
            return;
        }
    }
}

/// `r` to `tx` until EOF (EIO on a pty whose other side closed); done
/// when the receiver fires.
fn pump_out(mut r: std::fs::File, tx: mpsc::Sender<Vec<u8>>) -> oneshot::Receiver<()> {
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 << 10];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 || tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
        let _ = done_tx.send(());
    });
    done_rx
}

/// Attach: the monitor's attach socket relayed. Ends with the container
/// (its exit code) or when the session drops this future (the socket is
/// then shut down so the monitor forgets this client).
pub(crate) async fn attach(t: Target, o: StdioOpts, mut io: Io) -> Outcome {
    let hello = proto::Hello {
        stdin: io.stdin.is_some(),
        stdout: io.stdout.is_some(),
        stderr: io.stderr.is_some() && !o.tty,
        cleaner: false,
    };
    let connected = tokio::task::spawn_blocking(move || {
        let cs = wharf_pod::Containers::new(&t.root, &t.run_root);
        wharf_pod::container::attach::Client::connect_with(&cs, &t.id, hello).map(|c| c.into_stream())
    })
    .await;
    let sock = match connected {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Outcome::Failed(e.to_string()),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let stdin_once = t.stdin_once && io.stdin.is_some();
    let writer = match sock.try_clone() {
        Ok(w) => Arc::new(Mutex::new(w)),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let guard = Shutdown(sock.try_clone().ok(), stdin_once.then(|| writer.clone()));
    if let Some(rx) = io.stdin.take() {
        let w = writer.clone();
        std::thread::spawn(move || attach_in(&w, rx, stdin_once));
    }
    if let Some(mut rx) = io.resize.take() {
        let w = writer.clone();
        tokio::spawn(async move {
            while let Some(s) = rx.recv().await {
                let mut p = s.height.to_be_bytes().to_vec();
                p.extend(s.width.to_be_bytes());
                let w = w.clone();
                let sent = tokio::task::spawn_blocking(move || {
                    proto::write_frame(&mut *w.lock().unwrap_or_else(|e| e.into_inner()), proto::RESIZE, &p)
                });
                if !matches!(sent.await, Ok(Ok(()))) {
                    return;
                }
            }
        });
    }
    let (out, err) = (io.stdout.take(), io.stderr.take());
    let end = tokio::task::spawn_blocking(move || attach_out(sock, out, err)).await;
    drop(guard);
    end.unwrap_or_else(|e| Outcome::Failed(e.to_string()))
}

/// The client's input to the monitor; its end (or, with `stdin_once`, the
/// client going away) closes the container's stdin.
fn attach_in(w: &Mutex<UnixStream>, mut rx: mpsc::UnboundedReceiver<Vec<u8>>, stdin_once: bool) {
    while let Some(d) = rx.blocking_recv() {
        let mut s = w.lock().unwrap_or_else(|e| e.into_inner());
        if d.is_empty() {
            let _ = proto::write_frame(&mut *s, proto::CLOSE_STDIN, &[]);
            return;
        }
        if proto::write_frame(&mut *s, proto::STDIN, &d).is_err() {
            return;
        }
    }
    if stdin_once {
        let _ = proto::write_frame(&mut *w.lock().unwrap_or_else(|e| e.into_inner()), proto::CLOSE_STDIN, &[]);
    }
}

fn attach_out(mut sock: UnixStream, out: Option<mpsc::Sender<Vec<u8>>>, err: Option<mpsc::Sender<Vec<u8>>>) -> Outcome {
    loop {
        match proto::read_frame(&mut sock) {
            Ok(Some((proto::STDOUT, d))) => {
                if let Some(tx) = &out {
                    let _ = tx.blocking_send(d);
                }
            }
            Ok(Some((proto::STDERR, d))) => {
                if let Some(tx) = err.as_ref().or(out.as_ref()) {
                    let _ = tx.blocking_send(d);
                }
            }
            Ok(Some((proto::EXIT, p))) => {
                return Outcome::Exited(String::from_utf8_lossy(&p).trim().parse().unwrap_or(255));
            }
            Ok(Some((proto::ERROR, m))) => return Outcome::Failed(String::from_utf8_lossy(&m).into_owned()),
            Ok(Some(_)) => {}
            // The session shut the socket down, or the monitor went away.
            Ok(None) | Err(_) => return Outcome::Exited(0),
        }
    }
}

/// Shuts a socket down when dropped (unblocks the threads using it),
/// first closing the container's stdin through the writer when there is
/// one (`stdin_once`).
struct Shutdown(Option<UnixStream>, Option<Arc<Mutex<UnixStream>>>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        if let Some(w) = &self.1 {
            let _ = proto::write_frame(&mut *w.lock().unwrap_or_else(|e| e.into_inner()), proto::CLOSE_STDIN, &[]);
        }
        if let Some(s) = &self.0 {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}
