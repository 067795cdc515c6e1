//! A small blocking D-Bus client: just what the systemd cgroup driver needs
//! (method calls with a handful of argument types, their replies and
//! systemd's `JobRemoved` signal).
//!
//! Why not `zbus`: even its blocking API runs on an async executor
//! (async-io or tokio) and brings proc macros and dozens of crates into a
//! runtime that otherwise links none (see `cargo tree -p wharf-runtime`),
//! while the runtime only ever makes a handful of calls to one peer
//! (StartTransientUnit, SetUnitProperties, StopUnit, ResetFailedUnit; Hello
//! and AddMatch on a bus). The wire format needed here (the D-Bus
//! specification's marshalling of `s`, `o`, `g`, `b`, `u`, `t`, `ay`, `au`,
//! arrays, structs and variants, plus SASL `EXTERNAL` auth over a unix
//! socket) fits in this file, and costs nothing unless `--systemd-cgroup`
//! is given: no code here runs, and no library is loaded, without it
//! (measured in bench/README-runtime.md: same `run` time, +53 KiB binary).
//!
//! Transport: as root, systemd's own socket `/run/systemd/private` (a
//! direct connection to PID 1: no bus daemon needed, no `Hello`, and
//! systemd sends its signals to every direct connection); otherwise the
//! system bus (`$DBUS_SYSTEM_BUS_ADDRESS` or `/run/dbus/system_bus_socket`),
//! where we say `Hello` and add a match rule for `JobRemoved`. This is the
//! order crun's sd-bus uses.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

const PRIVATE_SOCKET: &str = "/run/systemd/private";
const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";
/// How long one reply or job may take (runc waits 30 s for a job too).
const TIMEOUT: Duration = Duration::from_secs(30);
/// Refuse absurd messages from the peer rather than allocating them.
const MAX_MESSAGE: usize = 64 << 20;

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

/// One argument value; enough types for systemd's unit properties.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Path(String),
    Bool(bool),
    U32(u32),
    U64(u64),
    Bytes(Vec<u8>),
    U32s(Vec<u32>),
    /// `a(ss)`: e.g. DeviceAllow's (device, access) pairs.
    Pairs(Vec<(String, String)>),
    /// `a(sv)`: systemd's property lists.
    Props(Vec<(String, Value)>),
    /// `a(sa(sv))`: StartTransientUnit's auxiliary units (always empty here).
    AuxUnits,
}

impl Value {
    fn signature(&self) -> &'static str {
        match self {
            Value::Str(_) => "s",
            Value::Path(_) => "o",
            Value::Bool(_) => "b",
            Value::U32(_) => "u",
            Value::U64(_) => "t",
            Value::Bytes(_) => "ay",
            Value::U32s(_) => "au",
            Value::Pairs(_) => "a(ss)",
            Value::Props(_) => "a(sv)",
            Value::AuxUnits => "a(sa(sv))",
        }
    }
}

/// Little-endian marshalling into a buffer whose offset 0 is 8-aligned
/// relative to the message start (true of the header and of the body).
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn sig(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// An array whose elements align to `align`; `body` writes them.
    fn array(&mut self, align: usize, body: impl FnOnce(&mut Writer)) {
        self.u32(0);
        let len_at = self.buf.len() - 4;
        self.pad(align);
        let start = self.buf.len();
        body(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Str(s) | Value::Path(s) => self.str(s),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::U32(n) => self.u32(*n),
            Value::U64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::Bytes(b) => self.array(1, |w| w.buf.extend_from_slice(b)),
            Value::U32s(list) => self.array(4, |w| list.iter().for_each(|n| w.u32(*n))),
            Value::Pairs(pairs) => self.array(8, |w| {
                for (a, b) in pairs {
                    w.pad(8);
                    w.str(a);
                    w.str(b);
                }
            }),
            Value::Props(props) => self.array(8, |w| {
                for (name, v) in props {
                    w.pad(8);
                    w.str(name);
                    w.sig(v.signature());
                    w.value(v);
                }
            }),
            Value::AuxUnits => self.array(8, |_| {}),
        }
    }
}

/// A received message: what the driver looks at.
#[derive(Debug, Default)]
pub(crate) struct Message {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub error_name: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub signature: String,
    big_endian: bool,
    body: Vec<u8>,
}

impl Message {
    /// Reads the body by its signature: only flat `s`, `o`, `u` values.
    pub(crate) fn args(&self) -> Result<Vec<Value>> {
        let mut r = Reader { buf: &self.body, pos: 0, big: self.big_endian };
        let mut out = vec![];
        for c in self.signature.chars() {
            out.push(match c {
                's' => Value::Str(r.str()?),
                'o' => Value::Path(r.str()?),
                'u' => Value::U32(r.u32()?),
                // Stop at the first type we do not need to understand.
                _ => break,
            });
        }
        Ok(out)
    }

    /// The first string (or object path) argument.
    pub(crate) fn first_str(&self) -> Option<String> {
        match self.args().ok()?.into_iter().next()? {
            Value::Str(s) | Value::Path(s) => Some(s),
            _ => None,
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

impl Reader<'_> {
    fn align(&mut self, a: usize) {
        self.pos = self.pos.div_ceil(a) * a;
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| bad("truncated message"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        self.align(4);
        let b: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
        Ok(if self.big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    fn str(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.take(1)?;
        Ok(s)
    }

    fn sig(&mut self) -> Result<String> {
        let n = self.take(1)?[0] as usize;
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.take(1)?;
        Ok(s)
    }
}

fn bad(what: &str) -> Error {
    Error::Systemd(format!("D-Bus protocol error: {what}"))
}

fn io_err(what: &str, e: io::Error) -> Error {
    Error::Systemd(format!("D-Bus {what}: {e}"))
}

/// A connection to systemd.
pub(crate) struct Conn {
    sock: UnixStream,
    serial: u32,
    /// Signals that arrived while waiting for a reply.
    pending: Vec<Message>,
    /// Whether we talk through a bus daemon (needs a destination, `Hello`).
    bus: bool,
}

impl Conn {
    /// Connects as crun does: systemd's private socket as root, else the system bus.
    pub(crate) fn system() -> Result<Conn> {
        let mut tried = vec![];
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            match UnixStream::connect(PRIVATE_SOCKET) {
                Ok(s) => return Conn::start(s, false),
                Err(e) => tried.push(format!("{PRIVATE_SOCKET}: {e}")),
            }
        }
        let bus = system_bus_path();
        match UnixStream::connect(&bus) {
            Ok(s) => Conn::start(s, true),
            Err(e) => {
                tried.push(format!("{}: {e}", bus.display()));
                Err(Error::Systemd(format!(
                    "cannot reach systemd over D-Bus ({}); is systemd running? \
                     Drop --systemd-cgroup to use the cgroupfs driver",
                    tried.join("; ")
                )))
            }
        }
    }

    fn start(sock: UnixStream, bus: bool) -> Result<Conn> {
        sock.set_read_timeout(Some(TIMEOUT)).map_err(|e| io_err("socket", e))?;
        sock.set_write_timeout(Some(TIMEOUT)).map_err(|e| io_err("socket", e))?;
        let mut c = Conn { sock, serial: 0, pending: vec![], bus };
        c.auth()?;
        if bus {
            let dbus = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus");
            c.call(dbus, "Hello", &[])?;
            let rule = "type='signal',sender='org.freedesktop.systemd1',\
                        interface='org.freedesktop.systemd1.Manager',member='JobRemoved'";
            c.call(dbus, "AddMatch", &[Value::Str(rule.into())])?;
        }
        Ok(c)
    }

    /// SASL EXTERNAL: the kernel vouches for our uid.
    ///
    /// AUTH and BEGIN go in one write, and the first message only after the
    /// server's OK, as sd-bus clients do: systemd 252's sd-bus server stalls
    /// (until the client hangs up) when a message arrives in the same read
    /// as BEGIN, which a separate BEGIN write followed at once by a call
    /// provokes.
    fn auth(&mut self) -> Result<()> {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let hello = format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n");
        self.sock.write_all(hello.as_bytes()).map_err(|e| io_err("auth", e))?;
        // The server answers OK and then waits for our first message.
        let mut line = vec![];
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 || self.sock.read(&mut b).map_err(|e| io_err("auth", e))? == 0 {
                return Err(bad("authentication reply too long or cut short"));
            }
            line.push(b[0]);
        }
        if !line.starts_with(b"OK ") {
            let l = String::from_utf8_lossy(&line);
            return Err(Error::Systemd(format!("D-Bus authentication refused: {}", l.trim())));
        }
        Ok(())
    }

    /// Calls `member` and returns the reply; a D-Bus error becomes `Err`.
    pub(crate) fn call(&mut self, target: (&str, &str, &str), member: &str, args: &[Value]) -> Result<Message> {
        let (dest, path, iface) = target;
        let serial = self.send(dest, path, iface, member, args)?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let m = self.recv(deadline)?;
            match m.kind {
                SIGNAL => self.pending.push(m),
                METHOD_RETURN if m.reply_serial == Some(serial) => return Ok(m),
                ERROR if m.reply_serial == Some(serial) => {
                    let name = m.error_name.clone().unwrap_or_default();
                    return Err(Error::Systemd(format!("{member}: {name}: {}", m.first_str().unwrap_or_default())));
                }
                _ => {}
            }
        }
    }

    /// Waits for systemd's `JobRemoved` of `job`; returns its result
    /// ("done", "failed", "canceled", "timeout", "dependency", "skipped").
    pub(crate) fn wait_job(&mut self, job: &str) -> Result<String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let m = match self.pending.is_empty() {
                true => self.recv(deadline)?,
                false => self.pending.remove(0),
            };
            let is_removed = m.kind == SIGNAL
                && m.member.as_deref() == Some("JobRemoved")
                && m.interface.as_deref() == Some("org.freedesktop.systemd1.Manager");
            if !is_removed {
                continue;
            }
            // JobRemoved(u id, o job, s unit, s result)
            if let [_, Value::Path(p), _, Value::Str(result)] = m.args()?.as_slice() {
                if p == job {
                    return Ok(result.clone());
                }
            }
        }
    }

    fn send(&mut self, dest: &str, path: &str, iface: &str, member: &str, args: &[Value]) -> Result<u32> {
        self.serial += 1;
        let mut body = Writer::default();
        let mut sig = String::new();
        for a in args {
            sig.push_str(a.signature());
            body.value(a);
        }
        let mut h = Writer::default();
        h.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
        h.u32(body.buf.len() as u32);
        h.u32(self.serial);
        let mut fields: Vec<(u8, &str, &str)> = vec![(1, "o", path), (2, "s", iface), (3, "s", member)];
        if self.bus {
            fields.push((6, "s", dest));
        }
        if !sig.is_empty() {
            fields.push((8, "g", &sig));
        }
        h.array(8, |w| {
            for (code, t, v) in fields {
                w.pad(8);
                w.buf.push(code);
                w.sig(t);
                if t == "g" {
                    w.sig(v)
                } else {
                    w.str(v)
                }
            }
        });
        h.pad(8);
        h.buf.extend_from_slice(&body.buf);
        self.sock.write_all(&h.buf).map_err(|e| io_err("send", e))?;
        Ok(self.serial)
    }

    fn recv(&mut self, deadline: Instant) -> Result<Message> {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        self.sock.set_read_timeout(Some(left)).map_err(|e| io_err("socket", e))?;
        let mut fixed = [0u8; 16];
        self.read_exact(&mut fixed)?;
        let big = match fixed[0] {
            b'l' => false,
            b'B' => true,
            _ => return Err(bad("unknown byte order")),
        };
        let num = |b: &[u8]| {
            let a: [u8; 4] = b.try_into().expect("4 bytes");
            (if big { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) }) as usize
        };
        let (body_len, fields_len) = (num(&fixed[4..8]), num(&fixed[12..16]));
        let head_len = (16 + fields_len).div_ceil(8) * 8;
        if head_len + body_len > MAX_MESSAGE {
            return Err(bad("message too large"));
        }
        let mut rest = vec![0u8; head_len - 16 + body_len];
        self.read_exact(&mut rest)?;
        let mut all = fixed.to_vec();
        all.extend_from_slice(&rest);
        let mut m = Message { kind: fixed[1], big_endian: big, ..Message::default() };
        let mut r = Reader { buf: &all[..16 + fields_len], pos: 16, big };
        while r.pos < r.buf.len() {
            r.align(8);
            let code = r.take(1)?[0];
            let t = r.sig()?;
            let (s, u) = match t.as_str() {
                "s" | "o" => (Some(r.str()?), None),
                "g" => (Some(r.sig()?), None),
                "u" => (None, Some(r.u32()?)),
                _ => return Err(bad("unexpected header field type")),
            };
            match code {
                2 => m.interface = s,
                3 => m.member = s,
                4 => m.error_name = s,
                5 => m.reply_serial = u,
                8 => m.signature = s.unwrap_or_default(),
                _ => {}
            }
        }
        m.body = all.split_off(head_len);
        Ok(m)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.sock.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                Error::Systemd(format!("no answer from systemd within {} s", TIMEOUT.as_secs()))
            }
            _ => io_err("receive", e),
        })
    }
}

fn system_bus_path() -> PathBuf {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .and_then(|a| a.split(';').find_map(|t| Some(PathBuf::from(t.strip_prefix("unix:path=")?.split(',').next()?))))
        .unwrap_or_else(|| PathBuf::from(SYSTEM_BUS_SOCKET))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marshals_properties_like_the_spec() {
        let mut w = Writer::default();
        w.value(&Value::Str("ab".into()));
        w.value(&Value::Props(vec![("X".into(), Value::Bool(true)), ("P".into(), Value::U32s(vec![7]))]));
        let want: Vec<u8> = [
            &[2, 0, 0, 0, b'a', b'b', 0, 0][..],
            // array length 36, padding to the first struct at 16.
            &[36, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, b'X', 0, 1, b'b', 0, 0, 0, 0, 1, 0, 0, 0][..],
            // struct aligned at 32: "P", variant "au", array of one u32.
            &[1, 0, 0, 0, b'P', 0, 2, b'a', b'u', 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0][..],
        ]
        .concat();
        assert_eq!(w.buf, want);
    }

    #[test]
    fn reads_back_flat_arguments() {
        let mut w = Writer::default();
        for v in [Value::U32(9), Value::Path("/j/1".into()), Value::Str("x.scope".into()), Value::Str("done".into())] {
            w.value(&v);
        }
        let m = Message { signature: "uoss".into(), body: w.buf, ..Message::default() };
        let args = m.args().unwrap();
        assert_eq!(args[1], Value::Path("/j/1".into()));
        assert_eq!(args[3], Value::Str("done".into()));
    }
}
