//! remotecommand (exec, attach) over WebSocket (`v5.channel.k8s.io`,
//! `v4.channel.k8s.io`: one channel byte per message, 0 stdin, 1 stdout,
//! 2 stderr, 3 error, 4 resize; v5's 255 closes a channel) and over
//! SPDY/3.1 (`v4.channel.k8s.io`: one stream per `streamType`). The
//! error channel carries the v4 JSON Status: `Success`, or `Failure`
//! with reason `NonZeroExitCode` and the code as the `ExitCode` cause.

use super::backend::{self, Io, Outcome, Size};
use super::http::{accept_upgrade, Upgrade};
use super::spdy;
use super::tokens::{Job, StdioOpts};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";
/// How long the client has to open its SPDY streams (kubelet's default).
const STREAM_CREATION: Duration = Duration::from_secs(30);
/// How long we wait for the client to close after the status was sent.
const LINGER: Duration = Duration::from_secs(5);

pub(crate) async fn serve(mut conn: TcpStream, early: Vec<u8>, upgrade: Upgrade, job: Job) -> std::io::Result<()> {
    match upgrade {
        Upgrade::WebSocket { .. } => {
            let Some(p) = accept_upgrade(&mut conn, &upgrade, &[V5, V4]).await? else { return Ok(()) };
            let ws = WebSocketStream::from_partially_read(conn, early, Role::Server, None).await;
            websocket(ws, p == V5, job).await;
        }
        Upgrade::Spdy { .. } => {
            if accept_upgrade(&mut conn, &upgrade, &[V4]).await?.is_none() {
                return Ok(());
            }
            spdy_session(spdy::Conn::start(conn, early), job).await;
        }
    }
    Ok(())
}

fn opts(job: &Job) -> StdioOpts {
    match job {
        Job::Exec { opts, .. } | Job::Attach { opts, .. } => *opts,
        Job::PortForward { .. } => StdioOpts::default(),
    }
}

async fn run(job: Job, io: Io) -> Outcome {
    match job {
        Job::Exec { target, cmd, opts } => backend::exec(target, cmd, opts, io).await,
        Job::Attach { target, opts } => match backend::attach(target, opts, io).await {
            // An attach ends with its container; kubelet reports no exit code for it.
            Outcome::Exited(_) => Outcome::Exited(0),
            f => f,
        },
        Job::PortForward { .. } => Outcome::Failed("not a remotecommand".into()),
    }
}

/// The session's ends of the backend's channels.
struct Ends {
    stdin: Option<mpsc::UnboundedSender<Vec<u8>>>,
    stdout: Option<mpsc::Receiver<Vec<u8>>>,
    stderr: Option<mpsc::Receiver<Vec<u8>>>,
    resize: Option<mpsc::UnboundedSender<Size>>,
}

fn channels(o: StdioOpts) -> (Io, Ends) {
    let mut io = Io { stdin: None, stdout: None, stderr: None, resize: None };
    let mut ends = Ends { stdin: None, stdout: None, stderr: None, resize: None };
    if o.stdin {
        let (t, r) = mpsc::unbounded_channel();
        (io.stdin, ends.stdin) = (Some(r), Some(t));
    }
    if o.stdout {
        let (t, r) = mpsc::channel(16);
        (io.stdout, ends.stdout) = (Some(t), Some(r));
    }
    if o.stderr && !o.tty {
        let (t, r) = mpsc::channel(16);
        (io.stderr, ends.stderr) = (Some(t), Some(r));
    }
    if o.tty {
        let (t, r) = mpsc::unbounded_channel();
        (io.resize, ends.resize) = (Some(r), Some(t));
    }
    (io, ends)
}

/// A close frame with code 1000 (normal closure).
pub(crate) fn normal_close() -> Message {
    use tokio_tungstenite::tungstenite::protocol::frame::{coding::CloseCode, CloseFrame};
    Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))
}

/// The metav1.Status JSON of the error channel.
pub(crate) fn status_json(o: &Outcome) -> String {
    let v = match o {
        Outcome::Exited(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited(code) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::Failed(m) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": m,
            "reason": "InternalError",
            "details": {"causes": [{"message": m}]},
            "code": 500,
        }),
    };
    v.to_string()
}

/// Parses the resize stream: JSON objects back to back.
struct Resizes(Vec<u8>);

impl Resizes {
    fn feed(&mut self, data: &[u8]) -> Vec<Size> {
        self.0.extend_from_slice(data);
        let mut it = serde_json::Deserializer::from_slice(&self.0).into_iter::<Size>();
        let mut out = Vec::new();
        loop {
            match it.next() {
                Some(Ok(s)) => out.push(s),
                Some(Err(e)) if e.is_eof() => break,
                // Garbage: drop what was buffered.
                Some(Err(_)) => {
                    self.0.clear();
                    return out;
                }
                None => break,
            }
        }
        let used = it.byte_offset();
        self.0.drain(..used);
        out
    }
}

/// Waits for `tasks` (the output forwarders) at most `t`, then drops them.
async fn drain(tasks: Vec<tokio::task::JoinHandle<()>>, t: Duration) {
    let _ = tokio::time::timeout(t, async {
        for h in tasks {
            let _ = h.await;
        }
    })
    .await;
}

/// The client's messages: stdin (0), resize (4), v5's close of stdin (255 0).
async fn ws_input(
    mut stream: futures_util::stream::SplitStream<WebSocketStream<TcpStream>>,
    v5: bool,
    mut stdin_tx: Option<mpsc::UnboundedSender<Vec<u8>>>,
    resize_tx: Option<mpsc::UnboundedSender<Size>>,
) {
    let mut resizes = Resizes(Vec::new());
    while let Some(Ok(msg)) = stream.next().await {
        let b = match msg {
            Message::Binary(b) => b,
            Message::Close(_) => break,
            _ => continue,
        };
        match b.first() {
            // (An empty message would read as the end of input.)
            Some(0) if b.len() > 1 => {
                if let Some(tx) = &stdin_tx {
                    let _ = tx.send(b[1..].to_vec());
                }
            }
            Some(4) => {
                for s in resizes.feed(&b[1..]) {
                    if let Some(tx) = &resize_tx {
                        let _ = tx.send(s);
                    }
                }
            }
            Some(255) if v5 && b.get(1) == Some(&0) => {
                if let Some(tx) = stdin_tx.take() {
                    let _ = tx.send(Vec::new());
                }
            }
            _ => {}
        }
    }
}

async fn websocket(ws: WebSocketStream<TcpStream>, v5: bool, job: Job) {
    let (mut sink, stream) = ws.split();
    let (io, mut ends) = channels(opts(&job));
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(32);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        // 1000: client-go takes any other code (even none) as an error.
        let _ = sink.send(normal_close()).await;
        let _ = sink.close().await;
    });
    let mut reader = tokio::spawn(ws_input(stream, v5, ends.stdin.take(), ends.resize.take()));
    let mut fwd = Vec::new();
    for (rx, ch) in [(ends.stdout.take(), 1u8), (ends.stderr.take(), 2u8)] {
        if let Some(mut rx) = rx {
            let tx = out_tx.clone();
            fwd.push(tokio::spawn(async move {
                while let Some(d) = rx.recv().await {
                    let mut m = Vec::with_capacity(d.len() + 1);
                    m.push(ch);
                    m.extend(d);
                    if tx.send(Message::Binary(m.into())).await.is_err() {
                        return;
                    }
                }
            }));
        }
    }
    let outcome = tokio::select! {
        o = run(job, io) => o,
        _ = &mut reader => {
            tracing::debug!("streaming: the websocket client went away");
            for f in fwd { f.abort(); }
            return;
        }
    };
    drain(fwd, Duration::from_secs(1)).await;
    let mut m = vec![3u8];
    m.extend(status_json(&outcome).into_bytes());
    let _ = out_tx.send(Message::Binary(m.into())).await;
    drop(out_tx);
    let _ = tokio::time::timeout(LINGER, async {
        let _ = writer.await;
        let _ = (&mut reader).await;
    })
    .await;
    reader.abort();
}

async fn spdy_session(mut conn: spdy::Conn, job: Job) {
    let o = opts(&job);
    let mut want = vec!["error"];
    for (on, name) in [(o.stdin, "stdin"), (o.stdout, "stdout"), (o.stderr && !o.tty, "stderr"), (o.tty, "resize")] {
        if on {
            want.push(name);
        }
    }
    let mut got: HashMap<String, spdy::Stream> = HashMap::new();
    let deadline = tokio::time::Instant::now() + STREAM_CREATION;
    while want.iter().any(|w| !got.contains_key(*w)) {
        match tokio::time::timeout_at(deadline, conn.streams.recv()).await {
            Ok(Some(s)) => {
                if let Some(t) = s.header("streamtype") {
                    got.insert(t.to_ascii_lowercase(), s);
                }
            }
            Ok(None) => return,
            Err(_) => {
                tracing::debug!("streaming: timed out waiting for the client's streams");
                conn.finish(Duration::ZERO).await;
                return;
            }
        }
    }
    let (mut io, mut ends) = channels(o);
    if let Some(s) = got.remove("stdin") {
        // The stream's own channel is the backend's stdin.
        io.stdin = Some(s.rx);
        ends.stdin = None;
    }
    if let (Some(mut s), Some(tx)) = (got.remove("resize"), ends.resize.take()) {
        tokio::spawn(async move {
            let mut resizes = Resizes(Vec::new());
            while let Some(d) = s.rx.recv().await {
                for sz in resizes.feed(&d) {
                    let _ = tx.send(sz);
                }
            }
        });
    }
    let mut fwd = Vec::new();
    for (rx, name) in [(ends.stdout.take(), "stdout"), (ends.stderr.take(), "stderr")] {
        if let (Some(mut rx), Some(s)) = (rx, got.remove(name)) {
            fwd.push(tokio::spawn(async move {
                while let Some(d) = rx.recv().await {
                    if !s.out.write(&d).await {
                        return;
                    }
                }
                s.out.close().await;
            }));
        }
    }
    let error = got.remove("error").expect("waited for it");
    let outcome = {
        let session = run(job, io);
        tokio::pin!(session);
        loop {
            tokio::select! {
                o = &mut session => break o,
                s = conn.streams.recv() => if s.is_none() {
                    tracing::debug!("streaming: the SPDY client went away");
                    return;
                },
            }
        }
    };
    drain(fwd, Duration::from_secs(1)).await;
    error.out.write(status_json(&outcome).as_bytes()).await;
    error.out.close().await;
    conn.finish(LINGER).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_messages_split_anywhere() {
        let mut r = Resizes(Vec::new());
        assert!(r.feed(br#"{"Width":80,"#).is_empty());
        let got = r.feed(br#""Height":24}{"Width":100,"Height":33}"#);
        assert_eq!(got, vec![Size { width: 80, height: 24 }, Size { width: 100, height: 33 }]);
        assert!(r.0.is_empty());
    }

    #[test]
    fn exit_status_json() {
        assert_eq!(status_json(&Outcome::Exited(0)), r#"{"metadata":{},"status":"Success"}"#);
        let v: serde_json::Value = serde_json::from_str(&status_json(&Outcome::Exited(3))).unwrap();
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
    }
}
