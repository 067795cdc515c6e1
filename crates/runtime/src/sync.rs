//! The message channel between the runtime and the processes it forks.
//!
//! A SOCK_SEQPACKET socketpair keeps message boundaries, so each message is
//! one tag byte plus an optional payload and needs no framing.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

/// Messages exchanged during create/exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Msg {
    /// child → runtime: user namespace made, write the id maps.
    NeedIdMaps,
    /// runtime → child: id maps written.
    IdMapsDone,
    /// intermediate → runtime: the pid of the container process.
    Pid(i32),
    /// init → runtime: run prestart/createRuntime hooks now.
    RunHooks,
    /// runtime → init: hooks done.
    HooksDone,
    /// init → runtime: everything set up, waiting for start.
    Ready,
    /// runtime → init: start now (used when there is no exec fifo).
    Start,
    /// child → runtime: setup failed.
    Error(String),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        let (tag, payload): (u8, Vec<u8>) = match self {
            Msg::NeedIdMaps => (b'U', vec![]),
            Msg::IdMapsDone => (b'M', vec![]),
            Msg::Pid(p) => (b'P', p.to_le_bytes().to_vec()),
            Msg::RunHooks => (b'R', vec![]),
            Msg::HooksDone => (b'H', vec![]),
            Msg::Ready => (b'C', vec![]),
            Msg::Start => (b'S', vec![]),
            Msg::Error(e) => (b'E', e.as_bytes().to_vec()),
        };
        let mut v = Vec::with_capacity(1 + payload.len());
        v.push(tag);
        v.extend(payload);
        v
    }

    fn decode(b: &[u8]) -> io::Result<Msg> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad sync message");
        let (&tag, rest) = b.split_first().ok_or_else(bad)?;
        Ok(match tag {
            b'U' => Msg::NeedIdMaps,
            b'M' => Msg::IdMapsDone,
            b'P' => Msg::Pid(i32::from_le_bytes(rest.try_into().map_err(|_| bad())?)),
            b'R' => Msg::RunHooks,
            b'H' => Msg::HooksDone,
            b'C' => Msg::Ready,
            b'S' => Msg::Start,
            b'E' => Msg::Error(String::from_utf8_lossy(rest).into_owned()),
            _ => return Err(bad()),
        })
    }
}

/// One end of the channel.
#[derive(Debug)]
pub(crate) struct Channel(pub(crate) OwnedFd);

impl Channel {
    pub(crate) fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        Ok((Channel(a), Channel(b)))
    }

    pub(crate) fn send(&self, m: &Msg) -> io::Result<()> {
        let b = m.encode();
        loop {
            // SAFETY: buffer valid for its length.
            let n = unsafe { libc::send(self.0.as_raw_fd(), b.as_ptr().cast(), b.len(), libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Receives one message; `Ok(None)` when the peer closed its end.
    pub(crate) fn recv(&self) -> io::Result<Option<Msg>> {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: buffer valid for its length.
            let n = unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n == 0 {
                return Ok(None);
            }
            if n > 0 {
                return Msg::decode(&buf[..n as usize]).map(Some);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Waits for `want`; an error message or EOF becomes an error string.
    pub(crate) fn expect(&self, want: Msg) -> Result<(), String> {
        match self.recv() {
            Ok(Some(m)) if m == want => Ok(()),
            Ok(Some(Msg::Error(e))) => Err(e),
            Ok(Some(m)) => Err(format!("unexpected sync message {m:?}, wanted {want:?}")),
            Ok(None) => Err("runtime went away".into()),
            Err(e) => Err(format!("sync channel: {e}")),
        }
    }
}
