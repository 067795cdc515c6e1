//! The attach socket's wire format, shared by the monitor (`wharf-monitor`)
//! and its clients (`run`, `attach`, `start -a`, `stop`, `wait`).
//!
//! Frames both ways: one kind byte, a big-endian u32 length, the payload.
//! A client first sends [`HELLO`] with [`Hello`] flags; the monitor sends
//! output frames for the streams asked for, [`STARTED`] after a [`START`],
//! and [`EXIT`] (the exit code in ASCII) when the container is gone for
//! good. Unix stream sockets, so no partial frames are lost.

use std::io::{self, Read, Write};

// Client → monitor.
pub const HELLO: u8 = b'H';
pub const STDIN: u8 = b'I';
pub const CLOSE_STDIN: u8 = b'C';
/// Payload: rows and columns, big-endian u16 each.
pub const RESIZE: u8 = b'R';
/// Let a created container's process run (opens the runtime's exec fifo).
pub const START: u8 = b'S';
/// The client (a foreground `run`) has cleaned up after the exit: the
/// monitor need not run its exit command.
pub const CLEANED: u8 = b'D';

// Monitor → client.
pub const STDOUT: u8 = b'1';
pub const STDERR: u8 = b'2';
pub const STARTED: u8 = b's';
pub const EXIT: u8 = b'X';
pub const ERROR: u8 = b'E';

/// What a client wants, sent in its [`HELLO`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hello {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// This client cleans up after the exit (it sends [`CLEANED`]).
    pub cleaner: bool,
}

impl Hello {
    pub fn to_byte(self) -> u8 {
        u8::from(self.stdin) | u8::from(self.stdout) << 1 | u8::from(self.stderr) << 2 | u8::from(self.cleaner) << 3
    }
    pub fn from_byte(b: u8) -> Self {
        Hello { stdin: b & 1 != 0, stdout: b & 2 != 0, stderr: b & 4 != 0, cleaner: b & 8 != 0 }
    }
}

/// The largest payload either side sends or accepts.
pub const MAX_FRAME: usize = 1 << 20;

pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&frame(kind, payload))
}

/// Reads one frame; `None` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("attach frame of {len} bytes")));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// Splits complete frames off the front of `buf` (a nonblocking reader's
/// buffer); an oversized frame is an error.
pub fn take_frames(buf: &mut Vec<u8>) -> io::Result<Vec<(u8, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() - at >= 5 {
        let len = u32::from_be_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("attach frame of {len} bytes")));
        }
        if buf.len() - at - 5 < len {
            break;
        }
        out.push((buf[at], buf[at + 5..at + 5 + len].to_vec()));
        at += 5 + len;
    }
    buf.drain(..at);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split() {
        let mut buf = frame(STDIN, b"abc");
        buf.extend(frame(RESIZE, &[0, 24, 0, 80]));
        buf.extend(&frame(EXIT, b"3")[..3]);
        let got = take_frames(&mut buf).unwrap();
        assert_eq!(got, vec![(STDIN, b"abc".to_vec()), (RESIZE, vec![0, 24, 0, 80])]);
        assert_eq!(buf.len(), 3);
        let h = Hello { stdin: true, stdout: false, stderr: true, cleaner: true };
        assert_eq!(Hello::from_byte(h.to_byte()), h);
        let mut r = std::io::Cursor::new(frame(STARTED, b"42"));
        assert_eq!(read_frame(&mut r).unwrap(), Some((STARTED, b"42".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }
}
