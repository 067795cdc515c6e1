//! Port-forward into a pod: each connection is made to `localhost:PORT`
//! inside the pod's network namespace (a short-lived thread joins the
//! pinned netns, connects, and hands the socket to tokio).
//!
//! - SPDY (`portforward.k8s.io`): the client opens a `data` and an `error`
//!   stream per connection, paired by `requestID`, the port in `port`.
//! - WebSocket (`v4.channel.k8s.io`, `portforward.k8s.io`): the ports are
//!   the URL's `port` parameters; port i has data channel 2i and error
//!   channel 2i+1, each opened by the port as 2 little-endian bytes, as
//!   kubelet writes it.

use super::http::{accept_upgrade, respond, Request, Upgrade};
use super::spdy;
use super::tokens::Job;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const PROTOCOL: &str = "portforward.k8s.io";
/// client-go's WebSocket port-forward: SPDY carried in binary messages.
const TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
const WS_PROTOCOLS: &[&str] = &["v4.channel.k8s.io", PROTOCOL];
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn serve(
    mut conn: TcpStream,
    early: Vec<u8>,
    req: &Request,
    upgrade: Upgrade,
    job: Job,
) -> std::io::Result<()> {
    let Job::PortForward { pod, netns, ports } = job else {
        return respond(&mut conn, 500, "not a port-forward").await;
    };
    match upgrade {
        Upgrade::WebSocket { ref protocols, .. } if protocols.iter().any(|p| p == TUNNEL) => {
            if accept_upgrade(&mut conn, &upgrade, &[TUNNEL]).await?.is_none() {
                return Ok(());
            }
            let ws = WebSocketStream::from_partially_read(conn, early, Role::Server, None).await;
            let (ours, spdy_end) = tokio::io::duplex(64 << 10);
            let bridge = tokio::spawn(tunnel(ws, ours));
            spdy_session(spdy::Conn::start(spdy_end, Vec::new()), pod, netns).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), bridge).await;
        }
        Upgrade::WebSocket { .. } => {
            let mut want = Vec::new();
            for (k, v) in &req.query {
                if k == "port" {
                    match v.parse::<u16>() {
                        Ok(p) if p > 0 => want.push(p),
                        _ => return respond(&mut conn, 400, &format!("invalid port {v:?}")).await,
                    }
                }
            }
            if want.is_empty() {
                want = ports;
            }
            if want.is_empty() {
                return respond(&mut conn, 400, "at least one port is required").await;
            }
            if accept_upgrade(&mut conn, &upgrade, WS_PROTOCOLS).await?.is_none() {
                return Ok(());
            }
            let ws = WebSocketStream::from_partially_read(conn, early, Role::Server, None).await;
            websocket(ws, pod, netns, want).await;
        }
        Upgrade::Spdy { .. } => {
            if accept_upgrade(&mut conn, &upgrade, &[PROTOCOL]).await?.is_none() {
                return Ok(());
            }
            spdy_session(spdy::Conn::start(conn, early), pod, netns).await;
        }
    }
    Ok(())
}

/// Carries a byte stream (`io`, SPDY's) in the WebSocket's binary messages.
async fn tunnel(ws: WebSocketStream<TcpStream>, io: tokio::io::DuplexStream) {
    let (mut sink, mut stream) = ws.split();
    let (mut r, mut w) = tokio::io::split(io);
    let up = async move {
        while let Some(Ok(m)) = stream.next().await {
            let ok = match m {
                Message::Binary(b) => w.write_all(&b).await.is_ok(),
                Message::Close(_) => false,
                _ => true,
            };
            if !ok {
                break;
            }
        }
        let _ = w.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 32 << 10];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 || sink.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                break;
            }
        }
        let _ = sink.send(super::remote::normal_close()).await;
        let _ = sink.close().await;
    };
    tokio::join!(up, down);
}

/// Connects to `localhost:port` in `netns` (the host's without one).
pub(crate) async fn dial(netns: Option<PathBuf>, port: u16) -> std::io::Result<TcpStream> {
    let (tx, rx) = oneshot::channel();
    // A thread of its own: it leaves the daemon's netns and then ends.
    std::thread::spawn(move || {
        let r = (|| -> std::io::Result<std::net::TcpStream> {
            if let Some(p) = &netns {
                let f = std::fs::File::open(p)?;
                rustix::thread::move_into_link_name_space(f.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))?;
            }
            let v4 = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
            let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
            let s = std::net::TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT)
                .or_else(|e| std::net::TcpStream::connect_timeout(&v6, CONNECT_TIMEOUT).map_err(|_| e))?;
            s.set_nonblocking(true)?;
            Ok(s)
        })();
        let _ = tx.send(r);
    });
    let s = rx.await.map_err(|_| std::io::Error::other("the connecting thread died"))??;
    TcpStream::from_std(s)
}

fn forward_error(port: u16, pod: &str, e: &std::io::Error) -> String {
    format!("error forwarding port {port} to pod {pod}: failed to connect to localhost:{port} inside the pod's network namespace: {e}")
}

async fn spdy_session(mut conn: spdy::Conn, pod: String, netns: Option<PathBuf>) {
    let mut pending: HashMap<String, (Option<spdy::Stream>, Option<spdy::Stream>)> = HashMap::new();
    while let Some(s) = conn.streams.recv().await {
        let id = s.header("requestid").unwrap_or("").to_string();
        let e = pending.entry(id.clone()).or_default();
        match s.header("streamtype") {
            Some("data") => e.0 = Some(s),
            Some("error") => e.1 = Some(s),
            _ => continue,
        }
        if let (Some(_), Some(_)) = e {
            if let Some((Some(data), Some(error))) = pending.remove(&id) {
                tokio::spawn(spdy_pair(data, error, pod.clone(), netns.clone()));
            }
        }
    }
    conn.finish(Duration::ZERO).await;
}

async fn spdy_pair(data: spdy::Stream, error: spdy::Stream, pod: String, netns: Option<PathBuf>) {
    let port = data.header("port").and_then(|p| p.parse::<u16>().ok()).filter(|&p| p > 0);
    let Some(port) = port else {
        let msg = format!("invalid port {:?}", data.header("port").unwrap_or(""));
        error.out.write(msg.as_bytes()).await;
        error.out.close().await;
        data.out.close().await;
        return;
    };
    let tcp = match dial(netns, port).await {
        Ok(t) => t,
        Err(e) => {
            error.out.write(forward_error(port, &pod, &e).as_bytes()).await;
            error.out.close().await;
            data.out.close().await;
            return;
        }
    };
    let spdy::Stream { rx: mut from_client, out, .. } = data;
    let (mut r, mut w) = tcp.into_split();
    let up = async move {
        while let Some(d) = from_client.recv().await {
            if w.write_all(&d).await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 32 << 10];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 || !out.write(&buf[..n]).await {
                break;
            }
        }
        out.close().await;
    };
    tokio::join!(up, down);
    error.out.close().await;
}

async fn websocket(ws: WebSocketStream<TcpStream>, pod: String, netns: Option<PathBuf>, ports: Vec<u16>) {
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(32);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        // 1000: client-go takes any other code (even none) as an error.
        let _ = sink.send(super::remote::normal_close()).await;
        let _ = sink.close().await;
    });
    let mut to_pod: Vec<Option<tokio::net::tcp::OwnedWriteHalf>> = Vec::new();
    let mut copies = Vec::new();
    for (i, &port) in ports.iter().enumerate() {
        let (data_ch, err_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        for ch in [data_ch, err_ch] {
            let mut m = vec![ch];
            m.extend(port.to_le_bytes());
            let _ = out_tx.send(Message::Binary(m.into())).await;
        }
        match dial(netns.clone(), port).await {
            Ok(tcp) => {
                let (mut r, w) = tcp.into_split();
                to_pod.push(Some(w));
                let tx = out_tx.clone();
                copies.push(tokio::spawn(async move {
                    let mut buf = vec![0u8; 32 << 10];
                    while let Ok(n) = r.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let mut m = Vec::with_capacity(n + 1);
                        m.push(data_ch);
                        m.extend_from_slice(&buf[..n]);
                        if tx.send(Message::Binary(m.into())).await.is_err() {
                            break;
                        }
                    }
                }));
            }
            Err(e) => {
                to_pod.push(None);
                let mut m = vec![err_ch];
                m.extend(forward_error(port, &pod, &e).into_bytes());
                let _ = out_tx.send(Message::Binary(m.into())).await;
            }
        }
    }
    let all_copied = async {
        for c in copies {
            let _ = c.await;
        }
    };
    let from_client = async {
        while let Some(Ok(msg)) = stream.next().await {
            let b = match msg {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            let Some(&ch) = b.first() else { continue };
            if ch % 2 == 0 {
                if let Some(Some(w)) = to_pod.get_mut(usize::from(ch / 2)) {
                    if w.write_all(&b[1..]).await.is_err() {
                        to_pod[usize::from(ch / 2)] = None;
                    }
                }
            }
        }
    };
    // Done when the client leaves or every pod connection has ended.
    tokio::select! {
        _ = from_client => {}
        _ = all_copied => {}
    }
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}
