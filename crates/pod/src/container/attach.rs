//! The client side of a monitor's attach socket: `run` in the foreground,
//! `attach`, `start -a`, and the waits of `stop`/`wait`/`rm -f`.

use super::proto::{self, Hello};
use super::Containers;
use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub struct Client {
    stream: UnixStream,
}

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys (ctrl-p ctrl-q).
    Detached,
}

/// What [`Client::relay`] copies.
#[derive(Debug, Clone, Copy, Default)]
pub struct RelayOptions {
    /// The user's stdin goes to the container.
    pub stdin: bool,
    /// The container has a terminal: ours goes raw and detach keys work.
    pub tty: bool,
    /// Send START first (a foreground `run`, `start -a` of a created one).
    pub start: bool,
}

const DETACH: [u8; 2] = [0x10, 0x11];

impl Client {
    /// Connects without asking for any stream (to wait for the exit).
    pub fn connect(cs: &Containers, id: &str) -> Result<Client> {
        Self::connect_with(cs, id, Hello::default())
    }

    pub fn connect_with(cs: &Containers, id: &str, hello: Hello) -> Result<Client> {
        let path = cs.socket(id);
        let mut stream = UnixStream::connect(&path)
            .map_err(|e| Error::Conflict(format!("container {id} is not running (attach socket: {e})")))?;
        proto::write_frame(&mut stream, proto::HELLO, &[hello.to_byte()]).map_err(|e| Error::io("attach", e))?;
        Ok(Client { stream })
    }

    /// The socket itself, for a caller that relays the frames on its own
    /// (`wharf cri`'s streaming server).
    pub fn into_stream(self) -> UnixStream {
        self.stream
    }

    pub fn send(&mut self, kind: u8, payload: &[u8]) -> Result<()> {
        proto::write_frame(&mut self.stream, kind, payload).map_err(|e| Error::io("attach", e))
    }

    /// Lets a created container run; its pid.
    pub fn start(&mut self) -> Result<i32> {
        self.send(proto::START, &[])?;
        loop {
            match proto::read_frame(&mut self.stream).map_err(|e| Error::io("attach", e))? {
                Some((proto::STARTED, p)) => return Ok(String::from_utf8_lossy(&p).parse().unwrap_or(0)),
                Some((proto::ERROR, m)) => return Err(Error::Monitor(String::from_utf8_lossy(&m).into_owned())),
                Some((proto::EXIT, _)) | None => {
                    return Err(Error::Monitor("the container exited before it started".into()))
                }
                Some(_) => {}
            }
        }
    }

    /// Reads until EXIT (its code), the end of the stream, or `deadline`.
    pub fn wait_exit(&mut self, deadline: Option<Instant>) -> Option<i32> {
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return None;
            }
            let _ = self.stream.set_read_timeout(left);
            match proto::read_frame(&mut self.stream) {
                Ok(Some((proto::EXIT, p))) => return String::from_utf8_lossy(&p).parse().ok(),
                Ok(Some(_)) => {}
                Ok(None) => return Some(-1),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return None
                }
                Err(_) => return Some(-1),
            }
        }
    }

    /// Copies the container's output to ours (and our stdin to it) until
    /// it exits or the user detaches.
    pub fn relay(&mut self, o: RelayOptions) -> Result<End> {
        let raw = if o.tty && o.stdin { RawTerminal::enter() } else { None };
        if o.tty {
            if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdout()) {
                let mut p = ws.ws_row.to_be_bytes().to_vec();
                p.extend(ws.ws_col.to_be_bytes());
                self.send(proto::RESIZE, &p)?;
            }
        }
        if o.start {
            self.send(proto::START, &[])?;
        }
        let detached = Arc::new(AtomicBool::new(false));
        if o.stdin {
            let w = self.stream.try_clone().map_err(|e| Error::io("attach", e))?;
            let flag = detached.clone();
            std::thread::spawn(move || pump_stdin(w, o.tty, &flag));
        }
        let end = self.pump_output(&detached);
        drop(raw);
        end
    }

    fn pump_output(&mut self, detached: &AtomicBool) -> Result<End> {
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        loop {
            let frame = proto::read_frame(&mut self.stream);
            if detached.load(Ordering::SeqCst) {
                return Ok(End::Detached);
            }
            match frame {
                Ok(Some((proto::STDOUT, d))) => {
                    let _ = out.write_all(&d).and_then(|()| out.flush());
                }
                Ok(Some((proto::STDERR, d))) => {
                    let _ = err.write_all(&d);
                }
                Ok(Some((proto::EXIT, p))) => {
                    return Ok(End::Exited(String::from_utf8_lossy(&p).parse().unwrap_or(255)))
                }
                Ok(Some((proto::ERROR, m))) => return Err(Error::Monitor(String::from_utf8_lossy(&m).into_owned())),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return Err(Error::Monitor("the container's monitor went away".into())),
            }
        }
    }
}

/// The user's stdin to the container; ctrl-p ctrl-q detaches (with a tty).
fn pump_stdin(mut w: UnixStream, tty: bool, detached: &AtomicBool) {
    let mut buf = [0u8; 8192];
    let mut stdin = std::io::stdin().lock();
    let mut prev = 0u8;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if tty {
            for &b in &buf[..n] {
                if prev == DETACH[0] && b == DETACH[1] {
                    detached.store(true, Ordering::SeqCst);
                    let _ = w.shutdown(std::net::Shutdown::Both);
                    return;
                }
                prev = b;
            }
        }
        if proto::write_frame(&mut w, proto::STDIN, &buf[..n]).is_err() {
            return;
        }
    }
    let _ = proto::write_frame(&mut w, proto::CLOSE_STDIN, &[]);
}

/// Our terminal in raw mode while attached to a container's tty.
struct RawTerminal(rustix::termios::Termios);

impl RawTerminal {
    fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(std::io::stdin(), rustix::termios::OptionalActions::Now, &self.0);
    }
}
