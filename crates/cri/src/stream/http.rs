//! The streaming server's HTTP/1.1 side: one request per connection, an
//! upgrade to WebSocket (`Sec-WebSocket-Protocol`) or SPDY/3.1
//! (`X-Stream-Protocol-Version`) on `/{exec,attach,portforward}/<token>`,
//! after which the connection is the protocol's.

use super::tokens::{Job, Tokens};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest request head accepted.
const MAX_HEAD: usize = 16 << 10;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn serve(listener: TcpListener, tokens: Arc<Tokens>) {
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                let tokens = tokens.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(conn, &tokens).await {
                        tracing::debug!("streaming: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("streaming server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A parsed request head.
pub(crate) struct Request {
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Names in lower case, in order, repeated names kept.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a header, commas split, across its repetitions.
    pub fn header_list(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn is_upgrade_to(&self, proto: &str) -> bool {
        self.header_list("upgrade").iter().any(|u| u.eq_ignore_ascii_case(proto))
    }
}

/// How the client wants to talk.
pub(crate) enum Upgrade {
    /// `Sec-WebSocket-Key`; the offered subprotocols.
    WebSocket { key: String, protocols: Vec<String> },
    /// The offered `X-Stream-Protocol-Version`s.
    Spdy { protocols: Vec<String> },
}

async fn handle(mut conn: TcpStream, tokens: &Tokens) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let (req, early) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut conn)).await {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) | Err(_) => return respond(&mut conn, 400, "bad request").await,
        Ok(Err(e)) => return Err(e),
    };
    let mut parts = req.path.trim_start_matches('/').splitn(2, '/');
    let (kind, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !matches!(kind, "exec" | "attach" | "portforward") || token.is_empty() || token.contains('/') {
        return respond(&mut conn, 404, "not found").await;
    }
    let upgrade = if req.is_upgrade_to("websocket") {
        match req.header("sec-websocket-key") {
            Some(k) => Upgrade::WebSocket { key: k.to_string(), protocols: req.header_list("sec-websocket-protocol") },
            None => return respond(&mut conn, 400, "missing Sec-WebSocket-Key").await,
        }
    } else if req.is_upgrade_to("SPDY/3.1") {
        Upgrade::Spdy { protocols: req.header_list("x-stream-protocol-version") }
    } else {
        return respond(&mut conn, 400, "expected an upgrade to websocket or SPDY/3.1").await;
    };
    // Single use: the token is spent by this request whatever follows.
    let job = match tokens.take(token) {
        Some(j) if j.kind() == kind => j,
        _ => return respond(&mut conn, 404, "unknown or expired token").await,
    };
    match job {
        Job::PortForward { .. } => super::portforward::serve(conn, early, &req, upgrade, job).await,
        _ => super::remote::serve(conn, early, upgrade, job).await,
    }
}

/// Reads up to the end of the head; the head and the bytes after it.
async fn read_head(conn: &mut TcpStream) -> std::io::Result<Option<(Request, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(2048);
    loop {
        let mut chunk = [0u8; 2048];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Request::new(&mut hs);
        match r.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let target = r.path.unwrap_or("/");
                let (path, q) = target.split_once('?').unwrap_or((target, ""));
                let query = q
                    .split('&')
                    .filter_map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
                    })
                    .collect();
                let headers = r
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_string()))
                    .collect();
                let req = Request { path: path.to_string(), query, headers };
                return Ok(Some((req, buf[len..].to_vec())));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            _ => return Ok(None),
        }
    }
}

/// A plain response, then the connection is closed.
pub(crate) async fn respond(conn: &mut TcpStream, code: u16, msg: &str) -> std::io::Result<()> {
    let reason = match code {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let body = format!("{msg}\n");
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}

/// Answers the upgrade with the protocol chosen from `ours` (in our order
/// of preference); a 403 naming both lists when none is shared, as
/// kubelet's handshake does. The chosen protocol.
pub(crate) async fn accept_upgrade(
    conn: &mut TcpStream,
    upgrade: &Upgrade,
    ours: &[&'static str],
) -> std::io::Result<Option<&'static str>> {
    let theirs = match upgrade {
        Upgrade::WebSocket { protocols, .. } | Upgrade::Spdy { protocols } => protocols,
    };
    let Some(chosen) = ours.iter().copied().find(|p| theirs.iter().any(|t| t == p)) else {
        let msg = format!(
            "unable to upgrade: unable to negotiate protocol: client supports {theirs:?}, server supports {ours:?}"
        );
        respond(conn, 403, &msg).await?;
        return Ok(None);
    };
    let head = match upgrade {
        Upgrade::WebSocket { key, .. } => format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {chosen}\r\n\r\n",
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes())
        ),
        Upgrade::Spdy { .. } => format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {chosen}\r\n\r\n"
        ),
    };
    conn.write_all(head.as_bytes()).await?;
    Ok(Some(chosen))
}
