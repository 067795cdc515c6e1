//! SPDY/3.1, the server side as the kubelet's clients (client-go through
//! moby/spdystream) use it: the client opens streams (SYN_STREAM with a
//! header block), the server answers each with SYN_REPLY, data flows in
//! DATA frames closed by FIN; PINGs are echoed. Header blocks are one zlib
//! stream per direction, primed with the SPDY/3 dictionary and flushed
//! after each block. spdystream does no flow control; WINDOW_UPDATEs are
//! still sent for what was received, so that a stricter client never stalls.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use std::collections::HashMap;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const FLAG_FIN: u8 = 1;
/// The largest frame accepted (the 24-bit length allows 16 MiB).
const MAX_FRAME: usize = 1 << 20;
/// The largest DATA payload sent at once.
const CHUNK: usize = 32 << 10;

/// The SPDY/3 header dictionary: length-prefixed words, then raw text.
fn dictionary() -> &'static [u8] {
    static D: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505\
            203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized\
            403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable\
            Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT\
            chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,\
            text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend((w.len() as u32).to_be_bytes());
            d.extend(w.as_bytes());
        }
        d.extend(TAIL.as_bytes());
        d
    })
}

/// A stream the client opened.
pub(crate) struct Stream {
    /// Header names in lower case; several values of one name as several pairs.
    pub headers: Vec<(String, String)>,
    /// What the client sends on it; an empty chunk is its FIN, then the
    /// channel ends (without the empty chunk: RST or the connection's end).
    pub rx: mpsc::UnboundedReceiver<Vec<u8>>,
    pub out: Writer,
}

impl Stream {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

enum Out {
    Reply(u32),
    Data { id: u32, fin: bool, data: Vec<u8> },
    Ping(u32),
    Window { id: u32, delta: u32 },
    GoAway,
}

/// The sending half of one stream.
#[derive(Clone)]
pub(crate) struct Writer {
    id: u32,
    tx: mpsc::Sender<Out>,
}

impl Writer {
    /// Sends `data` (in chunks); false once the connection is gone.
    pub async fn write(&self, data: &[u8]) -> bool {
        for c in data.chunks(CHUNK) {
            if self.tx.send(Out::Data { id: self.id, fin: false, data: c.to_vec() }).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Ends our side of the stream (an empty DATA frame with FIN).
    pub async fn close(&self) {
        let _ = self.tx.send(Out::Data { id: self.id, fin: true, data: Vec::new() }).await;
    }
}

/// A SPDY connection: the streams the client opens arrive on `streams`.
pub(crate) struct Conn {
    pub streams: mpsc::UnboundedReceiver<Stream>,
    out: mpsc::Sender<Out>,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl Conn {
    /// Serves SPDY on `io`; `early` are bytes already read after the HTTP head.
    pub fn start<S>(io: S, early: Vec<u8>) -> Conn
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(64);
        let (streams_tx, streams) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(w, out_rx));
        let reader = tokio::spawn(read_loop(r, early, out_tx.clone(), streams_tx));
        Conn { streams, out: out_tx, reader, writer }
    }

    /// Sends GOAWAY, flushes what is queued, and waits (up to `linger`)
    /// for the client to close: closing first with unread input would
    /// reset the connection and could lose output not yet read.
    pub async fn finish(self, linger: std::time::Duration) {
        let _ = self.out.send(Out::GoAway).await;
        drop(self.out);
        let Conn { streams, reader, writer, .. } = self;
        drop(streams);
        let mut reader = reader;
        let _ = tokio::time::timeout(linger, async {
            let _ = writer.await;
            let _ = (&mut reader).await;
        })
        .await;
        reader.abort();
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut r: R,
    early: Vec<u8>,
    out: mpsc::Sender<Out>,
    streams_tx: mpsc::UnboundedSender<Stream>,
) {
    let mut r = io::Cursor::new(early).chain(&mut r);
    let mut inflate = Inflate::new();
    let mut open: HashMap<u32, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    loop {
        let mut head = [0u8; 8];
        if r.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        if len > MAX_FRAME {
            tracing::debug!("spdy: frame of {len} bytes: closing");
            return;
        }
        let flags = head[4];
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).await.is_err() {
            return;
        }
        if head[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            if !body.is_empty() {
                if let Some(tx) = open.get(&id) {
                    let _ = tx.send(body.clone());
                    let _ = out.send(Out::Window { id, delta: body.len() as u32 }).await;
                }
            }
            if flags & FLAG_FIN != 0 {
                if let Some(tx) = open.remove(&id) {
                    // An empty chunk: the client's end of input, not a broken connection.
                    let _ = tx.send(Vec::new());
                }
            }
            continue;
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let id = body.get(..4).map(|b| u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]])).unwrap_or(0);
        match kind {
            SYN_STREAM if body.len() >= 10 => {
                let Ok(headers) = inflate.block(&body[10..]) else { return };
                if out.send(Out::Reply(id)).await.is_err() {
                    return;
                }
                let (tx, rx) = mpsc::unbounded_channel();
                if flags & FLAG_FIN == 0 {
                    open.insert(id, tx);
                }
                let s = Stream { headers, rx, out: Writer { id, tx: out.clone() } };
                // Nobody taking streams any more is the session's end, not ours.
                let _ = streams_tx.send(s);
            }
            // Keep the zlib stream in step even though we want none of these.
            SYN_REPLY | HEADERS if body.len() >= 4 && inflate.block(&body[4..]).is_err() => return,
            RST_STREAM => {
                open.remove(&id);
            }
            PING if body.len() >= 4 => {
                let pid = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                // Odd ids are the client's pings: echo them.
                if pid % 2 == 1 && out.send(Out::Ping(pid)).await.is_err() {
                    return;
                }
            }
            GOAWAY => {
                open.clear();
            }
            _ => {}
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Out>) {
    let mut deflate = Deflate::new();
    while let Some(o) = rx.recv().await {
        let frame = match o {
            Out::Reply(id) => {
                let mut body = id.to_be_bytes().to_vec();
                body.extend(deflate.block(&[]));
                control(SYN_REPLY, 0, &body)
            }
            Out::Data { id, fin, data } => {
                let mut f = (id & 0x7fff_ffff).to_be_bytes().to_vec();
                f.push(if fin { FLAG_FIN } else { 0 });
                f.extend(&(data.len() as u32).to_be_bytes()[1..]);
                f.extend(data);
                f
            }
            Out::Ping(pid) => control(PING, 0, &pid.to_be_bytes()),
            Out::Window { id, delta } => {
                let mut b = id.to_be_bytes().to_vec();
                b.extend(delta.to_be_bytes());
                control(WINDOW_UPDATE, 0, &b)
            }
            Out::GoAway => control(GOAWAY, 0, &[0; 8]),
        };
        if w.write_all(&frame).await.is_err() {
            return;
        }
        // Batch what is already queued before flushing.
        if rx.is_empty() && w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80, 3];
    f.extend(kind.to_be_bytes());
    f.push(flags);
    f.extend(&(body.len() as u32).to_be_bytes()[1..]);
    f.extend(body);
    f
}

/// The client's header blocks: one zlib stream across the connection.
struct Inflate(Decompress);

impl Inflate {
    fn new() -> Self {
        Inflate(Decompress::new(true))
    }

    fn block(&mut self, input: &[u8]) -> io::Result<Vec<(String, String)>> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, format!("spdy header block: {m}"));
        let mut out = Vec::with_capacity(4096);
        let (mut at, mut stalls) = (0, 0);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(4096));
            }
            let (bi, bo) = (self.0.total_in(), self.0.total_out());
            match self.0.decompress_vec(&input[at..], &mut out, FlushDecompress::Sync) {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.0.set_dictionary(dictionary()).map_err(|_| bad("dictionary"))?;
                }
                Err(e) => return Err(bad(&e.to_string())),
            }
            at += (self.0.total_in() - bi) as usize;
            // All input in, and the sync flush left room: the block is whole.
            if at >= input.len() && out.len() < out.capacity() {
                break;
            }
            if self.0.total_in() == bi && self.0.total_out() == bo {
                stalls += 1;
                if stalls > 3 {
                    return Err(bad("truncated"));
                }
            }
        }
        parse_headers(&out).ok_or_else(|| bad("malformed"))
    }
}

/// A decompressed header block: a count, then length-prefixed names and
/// values (several values of a name separated by NUL).
fn parse_headers(mut b: &[u8]) -> Option<Vec<(String, String)>> {
    fn take<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let l = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let s = b.get(4..4 + l)?;
        *b = &b[4 + l..];
        Some(s)
    }
    let n = u32::from_be_bytes(b.get(..4)?.try_into().ok()?);
    b = &b[4..];
    let mut out = Vec::new();
    for _ in 0..n.min(1024) {
        let name = String::from_utf8_lossy(take(&mut b)?).to_ascii_lowercase();
        let value = String::from_utf8_lossy(take(&mut b)?).into_owned();
        for v in value.split('\0') {
            out.push((name.clone(), v.to_string()));
        }
    }
    Some(out)
}

/// Our header blocks (empty: SYN_REPLY carries none we need).
struct Deflate(Compress);

impl Deflate {
    fn new() -> Self {
        let mut c = Compress::new(Compression::default(), true);
        c.set_dictionary(dictionary()).expect("a fresh deflate stream takes a dictionary");
        Deflate(c)
    }

    fn block(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = (headers.len() as u32).to_be_bytes().to_vec();
        for (n, v) in headers {
            raw.extend((n.len() as u32).to_be_bytes());
            raw.extend(n.as_bytes());
            raw.extend((v.len() as u32).to_be_bytes());
            raw.extend(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut at = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.0.total_in();
            let _ = self.0.compress_vec(&raw[at..], &mut out, FlushCompress::Sync);
            at += (self.0.total_in() - before) as usize;
            // Done once all input is in and the flush left room unused.
            if at >= raw.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn dictionary_is_spdy3s() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        // zlib's Adler-32 of the dictionary, as the FDICT header carries it.
        let (mut a, mut b) = (1u32, 0u32);
        for &x in d {
            a = (a + x as u32) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[test]
    fn header_blocks_round_trip_across_one_zlib_stream() {
        let mut d = Deflate::new();
        let mut i = Inflate::new();
        let b1 = d.block(&[("streamtype", "error"), ("x", "a\0b")]);
        let b2 = d.block(&[("streamtype", "stdout")]);
        assert_eq!(
            i.block(&b1).unwrap(),
            vec![("streamtype".into(), "error".into()), ("x".into(), "a".into()), ("x".into(), "b".into())]
        );
        assert_eq!(i.block(&b2).unwrap(), vec![("streamtype".to_string(), "stdout".to_string())]);
        assert!(i.block(&d.block(&[])).unwrap().is_empty());
    }
}
