//! `wharf cri`'s streaming server (root, real containers and pods made by
//! the wharf CLI on the daemon's store): Exec, Attach and PortForward URLs
//! used through a WebSocket client (tokio-tungstenite: remotecommand v5
//! and v4, portforward with the port prefix) and through the real crictl
//! (client-go: SPDY/3.1 by default, `--transport websocket` too), with a
//! tty and resize (`stty size`), stdin, exit codes; reused and expired
//! tokens refused; the status codes of bad requests; nothing left behind
//! (no exec process, zombie or descriptor of the daemon, no console socket).

use futures_util::{SinkExt, StreamExt};
use k8s_cri::v1 as cri;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use wharf_tests::cri::{tools_dir, CriDaemon};
use wharf_tests::{busybox_tar, privileged};

const TTL_SECS: u64 = 3;

struct Fixture {
    d: CriDaemon,
    _tmp: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::Builder::new().prefix("wharf-cri-stream-").tempdir().unwrap();
        let cfg = format!(
            "[cni]\nconf_dir = \"{}\"\nbin_dirs = [\"/usr/lib/cni\"]\n[stream]\ntoken_ttl_secs = {TTL_SECS}\n",
            tmp.path().join("net.d").display()
        );
        let d = CriDaemon::start(tmp.path(), &cfg);
        let f = Fixture { d, _tmp: tmp };
        let tar = busybox_tar(&f.d.dir);
        f.wharf(&["import".as_ref(), tar.as_os_str(), "bb".as_ref()]);
        f
    }

    /// Stops the daemon; nothing of the test may run on or stay mounted.
    fn finish(self) {
        let Fixture { d, _tmp } = self;
        let dir = d.dir.clone();
        drop(d);
        let left = wharf_tests::leaks::processes_mentioning(&dir.display().to_string());
        assert!(left.is_empty(), "left running: {left:?}");
        let mounts = wharf_tests::mounts_under(&dir);
        assert!(mounts.is_empty(), "left mounted: {mounts:?}");
    }

    /// `wharf ARGS` on the daemon's store; its stdout. Containers and pods
    /// it makes carry the CRI label (streams serve only the kubelet's).
    fn wharf<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let mut argv: Vec<std::ffi::OsString> = args.iter().map(|a| a.as_ref().to_os_string()).collect();
        let at = match argv.iter().map(|a| a.to_str().unwrap_or("")).collect::<Vec<_>>().as_slice() {
            ["run", ..] => Some(1),
            ["pod", "create", ..] => Some(2),
            _ => None,
        };
        if let Some(i) = at {
            argv.splice(i..i, ["--label".into(), "io.wharf.cri=true".into()]);
        }
        self.wharf_plain(&argv)
    }

    /// `wharf ARGS` as given.
    fn wharf_plain<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let out = Command::new(wharf_tests::bin("wharf"))
            .arg("--root")
            .arg(&self.d.root)
            .arg("--run-root")
            .arg(&self.d.run_root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let argv: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
        assert!(out.status.success(), "wharf {argv:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// crictl with this daemon's endpoints (the harness's flags).
    fn crictl(&self) -> Command {
        let ep = format!("unix://{}", self.d.socket.display());
        let mut c = Command::new(tools_dir().join("crictl"));
        c.args(["--config", "/dev/null", "-r", &ep, "-i", &ep, "-t", "60s"]);
        c
    }

    /// crictl ARGS with `input` on stdin: (exit code, stdout, stderr).
    fn crictl_io(&self, args: &[&str], input: &[u8]) -> (i32, String, String) {
        let mut c = self
            .crictl()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input).unwrap();
        let out = wait_output(c, Duration::from_secs(60));
        (out.status.code().unwrap_or(-1), lossy(&out.stdout), lossy(&out.stderr))
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn wait_output(mut c: std::process::Child, limit: Duration) -> std::process::Output {
    let t0 = Instant::now();
    while c.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = c.kill();
            let out = c.wait_with_output().unwrap();
            panic!("timed out: {}{}", lossy(&out.stdout), lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    c.wait_with_output().unwrap()
}

/// One gRPC call on a fresh connection (as tests/cri.rs).
fn grpc<T>(
    sock: &Path,
    f: impl AsyncFnOnce(cri::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>) -> T,
) -> T {
    rt().block_on(async {
        let ch = wharf_tests::cri::channel(sock).await;
        f(cri::runtime_service_client::RuntimeServiceClient::new(ch)).await
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn exec_url(sock: &Path, id: &str, cmd: &[&str], stdin: bool, tty: bool) -> String {
    let req = cri::ExecRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    };
    grpc(sock, async |mut rs| rs.exec(req).await.unwrap().into_inner().url)
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(url: &str, proto: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = url.replacen("http://", "ws://", 1).into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", proto.parse().unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req).await?;
    assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), proto);
    Ok(ws)
}

/// Everything received per channel until the server closes.
async fn ws_collect(ws: &mut Ws) -> HashMap<u8, Vec<u8>> {
    let mut got: HashMap<u8, Vec<u8>> = HashMap::new();
    let read = async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Binary(b) = m {
                if let Some((&ch, rest)) = b.split_first() {
                    got.entry(ch).or_default().extend_from_slice(rest);
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.expect("the session ends");
    got
}

/// The exit code of the v4 error channel's Status.
fn exit_code(status: &[u8]) -> i32 {
    let v: serde_json::Value = serde_json::from_slice(status).unwrap_or_else(|e| panic!("{e}: {}", lossy(status)));
    if v["status"] == "Success" {
        return 0;
    }
    assert_eq!(v["reason"], "NonZeroExitCode", "{v}");
    assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode", "{v}");
    v["details"]["causes"][0]["message"].as_str().unwrap().parse().unwrap()
}

fn ch(got: &HashMap<u8, Vec<u8>>, c: u8) -> String {
    got.get(&c).map(|b| lossy(b)).unwrap_or_default()
}

/// Sends `[channel, data…]`.
async fn send(ws: &mut Ws, channel: u8, data: &[u8]) {
    let mut m = vec![channel];
    m.extend_from_slice(data);
    ws.send(Message::Binary(m.into())).await.unwrap();
}

/// Reads until `channel`'s bytes contain `want`.
async fn ws_until(ws: &mut Ws, got: &mut HashMap<u8, Vec<u8>>, channel: u8, want: &str) {
    let read = async {
        while !ch(got, channel).contains(want) {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => {
                    if let Some((&c, rest)) = b.split_first() {
                        got.entry(c).or_default().extend_from_slice(rest);
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("session ended before {want:?} ({other:?}): {got:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.unwrap_or_else(|_| panic!("no {want:?} in {got:?}"));
}

/// The daemon's open descriptors and its zombie children.
fn daemon_fds_and_zombies(pid: i32) -> (usize, Vec<String>) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let mut zombies = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let Some(rest) = stat.rsplit(')').next() else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[0] == "Z" && f[1] == pid.to_string() {
            zombies.push(stat.clone());
        }
    }
    (fds, zombies)
}

/// Waits for the daemon's descriptors to come back to `before` (threads
/// finishing) and checks it reaped every child.
fn assert_no_daemon_leaks(d: &CriDaemon, before: usize) {
    let t0 = Instant::now();
    loop {
        let (fds, zombies) = daemon_fds_and_zombies(d.pid());
        if fds <= before && zombies.is_empty() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "daemon: {fds} fds (was {before}), zombies {zombies:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let consoles = wharf_tests::leaks::entries(&d.run_root.join("console"));
    assert!(consoles.is_empty(), "console sockets left: {consoles:?}");
}

/// The processes of container `id` besides its own command.
fn exec_leftovers(f: &Fixture, id: &str) -> String {
    let ps = f.wharf(&["exec", id, "ps", "-o", "pid,args"]);
    ps.lines()
        .filter(|l| !l.contains("sleep 1000") && !l.contains("ps -o") && !l.contains("PID"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn exec_over_websocket_v5_v4_and_spdy_with_tty_resize_and_stdin() {
    if !privileged("exec_over_websocket_v5_v4_and_spdy_with_tty_resize_and_stdin") {
        return;
    }
    let f = Fixture::new();
    let sock = f.d.socket.clone();
    let id = f.wharf(&["run", "-d", "--network", "none", "bb", "sleep", "1000"]);
    let before = daemon_fds_and_zombies(f.d.pid()).0;

    // WebSocket v5: stdout, stderr, exit code.
    let url = exec_url(&sock, &id, &["sh", "-c", "echo out; echo err >&2; exit 3"], false, false);
    assert!(url.starts_with("http://127.0.0.1:") && url.contains("/exec/"), "{url}");
    let got = rt().block_on(async {
        let mut ws = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        ws_collect(&mut ws).await
    });
    assert_eq!((ch(&got, 1), ch(&got, 2)), ("out\n".into(), "err\n".into()), "{got:?}");
    assert_eq!(exit_code(got[&3].as_slice()), 3);

    // A command that cannot start: a Failure status saying why, no exit code.
    let url = exec_url(&sock, &id, &["/no/such/binary"], false, false);
    let got = rt().block_on(async {
        let mut ws = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        ws_collect(&mut ws).await
    });
    let v: serde_json::Value = serde_json::from_slice(&got[&3]).unwrap();
    assert_eq!(v["status"], "Failure", "{v}");
    assert!(v["message"].as_str().unwrap().contains("/no/such/binary"), "{v}");

    // v5 stdin, closed with the close channel (255).
    let url = exec_url(&sock, &id, &["sh", "-c", "cat; echo done"], true, false);
    let got = rt().block_on(async {
        let mut ws = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        send(&mut ws, 0, b"hello ").await;
        send(&mut ws, 0, b"world\n").await;
        send(&mut ws, 255, &[0]).await;
        ws_collect(&mut ws).await
    });
    assert_eq!(ch(&got, 1), "hello world\ndone\n");
    assert_eq!(exit_code(&got[&3]), 0);

    // v4: stdin without a close channel (the command reads what it needs).
    let url = exec_url(&sock, &id, &["head", "-c", "5"], true, false);
    let got = rt().block_on(async {
        let mut ws = ws_connect(&url, "v4.channel.k8s.io").await.unwrap();
        send(&mut ws, 0, b"abcdefgh").await;
        ws_collect(&mut ws).await
    });
    assert_eq!(ch(&got, 1), "abcde");
    assert_eq!(exit_code(&got[&3]), 0);

    // A tty: the first size is the process's from the start, a later resize is seen.
    let url = exec_url(&sock, &id, &["sh", "-c", "stty size; read x; stty size; exit 7"], true, true);
    let got = rt().block_on(async {
        let mut ws = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        send(&mut ws, 4, br#"{"Width":100,"Height":33}"#).await;
        let mut got = HashMap::new();
        ws_until(&mut ws, &mut got, 1, "33 100").await;
        send(&mut ws, 4, br#"{"Width":50,"Height":20}"#).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(&mut ws, 0, b"go\n").await;
        let rest = ws_collect(&mut ws).await;
        for (c, b) in rest {
            got.entry(c).or_default().extend(b);
        }
        got
    });
    assert!(ch(&got, 1).contains("20 50"), "{got:?}");
    assert!(!got.contains_key(&2), "a tty has no stderr channel");
    assert_eq!(exit_code(&got[&3]), 7);

    // SPDY (crictl's default transport): output, exit code, stdin.
    // (crictl exits 1 and names the code client-go read from the error stream.)
    let (code, out, err) = f.crictl_io(&["exec", &id, "sh", "-c", "echo out; echo err >&2; exit 3"], b"");
    assert_eq!((code, out.as_str()), (1, "out\n"), "{err}");
    assert!(err.starts_with("err\n") && err.contains("command terminated with exit code 3"), "{err}");
    let (code, out, err) = f.crictl_io(&["exec", "-i", &id, "sh", "-c", "cat; echo done"], b"over spdy\n");
    assert_eq!((code, out.as_str()), (0, "over spdy\ndone\n"), "{err}");
    // crictl's WebSocket transport (client-go's v5 executor).
    let (code, out, err) =
        f.crictl_io(&["exec", "-i", "--transport", "websocket", &id, "sh", "-c", "cat; exit 4"], b"over ws\n");
    assert_eq!((code, out.as_str()), (1, "over ws\n"), "{err}");
    assert!(err.contains("command terminated with exit code 4"), "{err}");
    let (code, out, err) =
        f.crictl_io(&["exec", "--transport", "websocket", &id, "sh", "-c", "echo o; echo e >&2"], b"");
    assert_eq!((code, out.as_str(), err.as_str()), (0, "o\n", "e\n"));
    // SPDY with a tty: crictl in a pty of 33x100 sends that size.
    let out = crictl_in_pty(&f, &["exec", "-it", &id, "stty", "size"], (33, 100));
    assert!(out.contains("33 100"), "{out:?}");
    let out = crictl_in_pty(&f, &["exec", "-it", "--transport", "websocket", &id, "stty", "size"], (31, 90));
    assert!(out.contains("31 90"), "{out:?}");

    assert_eq!(exec_leftovers(&f, &id), "", "exec processes left in the container");
    assert_no_daemon_leaks(&f.d, before);
    f.wharf(&["rm", "-f", &id]);
    f.finish();
}

/// Runs crictl ARGS on a new pty of `size` (rows, cols); all it printed.
fn crictl_in_pty(f: &Fixture, args: &[&str], size: (u16, u16)) -> String {
    let pty = rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY).unwrap();
    rustix::pty::grantpt(&pty).unwrap();
    rustix::pty::unlockpt(&pty).unwrap();
    let name = rustix::pty::ptsname(&pty, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new().read(true).write(true).open(name.to_str().unwrap()).unwrap();
    let ws = rustix::termios::Winsize { ws_row: size.0, ws_col: size.1, ws_xpixel: 0, ws_ypixel: 0 };
    rustix::termios::tcsetwinsize(&slave, ws).unwrap();
    let mut cmd = f.crictl();
    cmd.args(args)
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    let mut child = cmd.spawn().unwrap();
    drop(slave);
    drop(cmd);
    let mut master = std::fs::File::from(pty);
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once every slave descriptor is closed.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        lossy(&all)
    });
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().unwrap()
}

#[test]
fn attach_over_websocket_and_spdy() {
    if !privileged("attach_over_websocket_and_spdy") {
        return;
    }
    let f = Fixture::new();
    let sock = f.d.socket.clone();
    let id = f.wharf(&[
        "run",
        "-d",
        "-i",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "echo ready; while read l; do echo got:$l; echo err:$l >&2; done; echo bye; exit 5",
    ]);
    let before = daemon_fds_and_zombies(f.d.pid()).0;
    let attach_url = |stdin: bool| {
        let req = cri::AttachRequest { container_id: id.clone(), stdin, tty: false, stdout: true, stderr: true };
        grpc(&sock, async |mut rs| rs.attach(req).await.unwrap().into_inner().url)
    };

    // WebSocket: stdin in, stdout and stderr out; leaving keeps the container running.
    let url = attach_url(true);
    assert!(url.contains("/attach/"), "{url}");
    rt().block_on(async {
        let mut ws = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        let mut got = HashMap::new();
        send(&mut ws, 0, b"one\n").await;
        ws_until(&mut ws, &mut got, 1, "got:one").await;
        ws_until(&mut ws, &mut got, 2, "err:one").await;
        ws.close(None).await.unwrap();
    });
    // A second session after the first left without ending its input: the
    // container's stdin is still open, and the monitor forgot the first.
    let url = attach_url(true);
    rt().block_on(async {
        let mut ws = ws_connect(&url, "v4.channel.k8s.io").await.unwrap();
        let mut got = HashMap::new();
        send(&mut ws, 0, b"three\n").await;
        ws_until(&mut ws, &mut got, 1, "got:three").await;
        assert!(!ch(&got, 1).contains("got:one"), "{got:?}");
        ws.close(None).await.unwrap();
    });
    assert!(f.wharf(&["ps", "-q"]).contains(&id[..12]), "the container runs on");

    // SPDY through crictl: stdin ends (EOF), the loop ends, the container exits.
    let (code, out, err) = f.crictl_io(&["attach", "-i", &id], b"two\n");
    assert!(out.contains("got:two") && out.contains("bye"), "{code} {out:?} {err:?}");
    assert!(err.contains("err:two"), "{err:?}");
    let t0 = Instant::now();
    while f.wharf(&["ps", "-q"]).contains(&id[..12]) {
        assert!(t0.elapsed() < Duration::from_secs(10), "the container did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A container with a terminal: attach with a tty, resized.
    let tty_id = f.wharf(&["run", "-d", "-i", "-t", "--network", "none", "bb", "sh"]);
    let req = cri::AttachRequest { container_id: tty_id.clone(), stdin: true, tty: true, stdout: true, stderr: false };
    let url = grpc(&sock, async |mut rs| rs.attach(req).await.unwrap().into_inner().url);
    rt().block_on(async {
        let mut ws = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        send(&mut ws, 4, br#"{"Width":120,"Height":40}"#).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(&mut ws, 0, b"stty size\n").await;
        let mut got = HashMap::new();
        ws_until(&mut ws, &mut got, 1, "40 120").await;
        ws.close(None).await.unwrap();
    });
    f.wharf(&["rm", "-f", &tty_id]);

    // A stopped container: FailedPrecondition, as containerd.
    let e = grpc(&sock, async |mut rs| {
        rs.attach(cri::AttachRequest { container_id: id.clone(), stdout: true, ..Default::default() })
            .await
            .unwrap_err()
    });
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert_no_daemon_leaks(&f.d, before);
    f.wharf(&["rm", "-f", &id]);
    f.finish();
}

#[test]
fn stdin_once_closes_the_containers_stdin_when_the_first_attach_goes() {
    if !privileged("stdin_once_closes_the_containers_stdin_when_the_first_attach_goes") {
        return;
    }
    let f = Fixture::new();
    let sock = f.d.socket.clone();
    // A pod on the host's network (no CNI), its container made by the kubelet's calls.
    let sb = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "once".into(),
            uid: "uid-once".into(),
            namespace: "stream".into(),
            attempt: 0,
        }),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption { network: 2, ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let script = "echo ready; while read l; do echo got:$l; done; echo eof; exit 7";
    let (pod, id) = grpc(&sock, async |mut rs| {
        let r = cri::RunPodSandboxRequest { config: Some(sb.clone()), runtime_handler: String::new() };
        let pod = rs.run_pod_sandbox(r).await.expect("RunPodSandbox").into_inner().pod_sandbox_id;
        let cfg = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata { name: "c".into(), attempt: 0 }),
            image: Some(cri::ImageSpec { image: "bb".into(), ..Default::default() }),
            command: vec!["sh".into(), "-c".into(), script.into()],
            stdin: true,
            stdin_once: true,
            ..Default::default()
        };
        let r =
            cri::CreateContainerRequest { pod_sandbox_id: pod.clone(), config: Some(cfg), sandbox_config: Some(sb) };
        let id = rs.create_container(r).await.expect("CreateContainer").into_inner().container_id;
        rs.start_container(cri::StartContainerRequest { container_id: id.clone() }).await.expect("StartContainer");
        (pod, id)
    });
    let req = cri::AttachRequest { container_id: id.clone(), stdin: true, tty: false, stdout: true, stderr: true };
    let url = grpc(&sock, async |mut rs| rs.attach(req).await.unwrap().into_inner().url);
    // v4: no close of stdin; the client just goes away after one line.
    rt().block_on(async {
        let mut ws = ws_connect(&url, "v4.channel.k8s.io").await.unwrap();
        let mut got = HashMap::new();
        send(&mut ws, 0, b"one\n").await;
        ws_until(&mut ws, &mut got, 1, "got:one").await;
        ws.close(None).await.unwrap();
    });
    // The container saw EOF (its stdin stayed open for the next attach: it ran on).
    let t0 = Instant::now();
    let code = loop {
        let r = cri::ContainerStatusRequest { container_id: id.clone(), verbose: false };
        let st = grpc(&sock, async |mut rs| rs.container_status(r).await.unwrap().into_inner().status.unwrap());
        if st.state == cri::ContainerState::ContainerExited as i32 {
            break st.exit_code;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "still running after its attach went: {st:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, 7);
    grpc(&sock, async |mut rs| {
        rs.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod.clone() }).await.unwrap();
        rs.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod.clone() }).await.unwrap();
    });
    f.finish();
}

#[test]
fn port_forward_over_websocket_and_spdy_into_the_pod_netns() {
    if !privileged("port_forward_over_websocket_and_spdy_into_the_pod_netns") {
        return;
    }
    let f = Fixture::new();
    let sock = f.d.socket.clone();
    let pod = f.wharf(&["pod", "create", "--network", "none", "--name", &format!("pf-{}", std::process::id())]);
    // Bound to the pod's own loopback: reachable only from inside its netns.
    let ctr = f.wharf(&[
        "run",
        "-d",
        "--pod",
        &pod,
        "bb",
        "sh",
        "-c",
        "mkdir -p /tmp/www && echo hello-from-the-pod > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/www",
    ]);
    let t0 = Instant::now();
    while Command::new(wharf_tests::bin("wharf"))
        .arg("--root")
        .arg(&f.d.root)
        .arg("--run-root")
        .arg(&f.d.run_root)
        .args(["exec", &ctr, "wget", "-qO-", "http://127.0.0.1:8080/index.html"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        assert!(t0.elapsed() < Duration::from_secs(20), "httpd does not answer in the pod");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = daemon_fds_and_zombies(f.d.pid()).0;
    let pf_url = || {
        let req = cri::PortForwardRequest { pod_sandbox_id: pod.clone(), port: vec![8080] };
        grpc(&sock, async |mut rs| rs.port_forward(req).await.unwrap().into_inner().url)
    };
    let get = b"GET /index.html HTTP/1.0\r\n\r\n";

    // WebSocket, kubelet's framing: the port first on the data and error channels.
    let url = pf_url();
    assert!(url.contains("/portforward/"), "{url}");
    let got = rt().block_on(async {
        // httpd may still be starting: retry on a fresh URL until it answers.
        let mut ws = ws_connect(&format!("{url}?port=8080"), "portforward.k8s.io").await.unwrap();
        let mut got: HashMap<u8, Vec<u8>> = HashMap::new();
        send(&mut ws, 0, get).await;
        let rest = ws_collect(&mut ws).await;
        for (c, b) in rest {
            got.entry(c).or_default().extend(b);
        }
        got
    });
    let data = got.get(&0).cloned().unwrap_or_default();
    assert_eq!(&data[..2], &8080u16.to_le_bytes(), "the port prefix: {got:?}");
    assert!(lossy(&data).contains("hello-from-the-pod"), "{got:?}");

    // A port nothing listens on: the error channel says so.
    let url = pf_url();
    let got = rt().block_on(async {
        let mut ws = ws_connect(&format!("{url}?port=9"), "v4.channel.k8s.io").await.unwrap();
        ws_collect(&mut ws).await
    });
    assert!(ch(&got, 1).contains("refused"), "{got:?}");

    // crictl: SPDY, and client-go's WebSocket port-forward (SPDY tunnelled in WebSocket messages).
    for transport in ["spdy", "websocket"] {
        crictl_port_forward(&f, &pod, transport, get);
    }

    // Unknown pod: NotFound.
    let e = grpc(&sock, async |mut rs| {
        rs.port_forward(cri::PortForwardRequest { pod_sandbox_id: "nope".into(), port: vec![80] }).await.unwrap_err()
    });
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    assert_no_daemon_leaks(&f.d, before);
    f.wharf(&["pod", "rm", "-f", &pod]);
    f.finish();
}

/// `crictl port-forward --transport T POD LOCAL:8080`: several connections
/// through one session reach the pod's server.
fn crictl_port_forward(f: &Fixture, pod: &str, transport: &str, get: &[u8]) {
    let local = wharf_tests::registry::free_port();
    let mut child = f
        .crictl()
        .args(["port-forward", "--transport", transport, pod, &format!("{local}:8080")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let fetch = || -> Option<String> {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", local)).ok()?;
        c.write_all(get).ok()?;
        let mut a = String::new();
        c.read_to_string(&mut a).ok()?;
        Some(a)
    };
    let t0 = Instant::now();
    while !fetch().is_some_and(|a| a.contains("hello-from-the-pod")) {
        if t0.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{transport}: no answer through crictl port-forward: {}", lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..3 {
        let a = fetch().unwrap_or_default();
        assert!(a.contains("hello-from-the-pod"), "{transport}: {a}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn tokens_are_single_use_and_expire_and_bad_requests_get_containerds_codes() {
    if !privileged("tokens_are_single_use_and_expire_and_bad_requests_get_containerds_codes") {
        return;
    }
    let f = Fixture::new();
    let sock = f.d.socket.clone();
    let id = f.wharf(&["run", "-d", "--network", "none", "bb", "sleep", "1000"]);
    let before = daemon_fds_and_zombies(f.d.pid()).0;

    let url = exec_url(&sock, &id, &["true"], false, false);
    rt().block_on(async {
        let mut ws = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        ws_collect(&mut ws).await;
        // Reused: refused (404), whatever the protocol.
        let e = ws_connect(&url, "v5.channel.k8s.io").await.unwrap_err();
        assert!(e.to_string().contains("404"), "{e}");
    });
    let url = exec_url(&sock, &id, &["true"], false, false);
    std::thread::sleep(Duration::from_secs(TTL_SECS + 1));
    rt().block_on(async {
        let e = ws_connect(&url, "v5.channel.k8s.io").await.unwrap_err();
        assert!(e.to_string().contains("404"), "expired: {e}");
    });
    // A protocol we do not speak: 403, and the token is spent.
    let url = exec_url(&sock, &id, &["true"], false, false);
    rt().block_on(async {
        let e = ws_connect(&url, "v1.channel.k8s.io").await.unwrap_err();
        assert!(e.to_string().contains("403"), "{e}");
    });
    // A plain GET (no upgrade): 400.
    let url = exec_url(&sock, &id, &["true"], false, false);
    let addr = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    let path = &url[url.find("/exec/").unwrap()..];
    write!(c, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");

    let stopped = f.wharf(&["run", "-d", "--network", "none", "bb", "true"]);
    // The CLI's own containers are not the kubelet's: NotFound.
    let cli = f.wharf_plain(&["run", "-d", "--network", "none", "bb", "sleep", "1000"]);
    let t0 = Instant::now();
    while f.wharf(&["ps", "-q"]).contains(&stopped[..12]) {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(50));
    }
    let codes = grpc(&sock, async |mut rs| {
        let exec = |id: &str, cmd: &[&str], out: bool| cri::ExecRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            stdout: out,
            ..Default::default()
        };
        let mut codes = Vec::new();
        for (what, r) in [
            ("unknown", exec("0123456789ab-nope", &["true"], true)),
            ("the CLI's", exec(&cli, &["true"], true)),
            ("stopped", exec(&stopped, &["true"], true)),
            ("no streams", exec(&id, &["true"], false)),
            ("no cmd", exec(&id, &[], true)),
        ] {
            codes.push((what, rs.exec(r).await.unwrap_err().code()));
        }
        let tty_stderr = cri::ExecRequest { tty: true, stderr: true, ..exec(&id, &["true"], true) };
        codes.push(("tty+stderr", rs.exec(tty_stderr).await.unwrap_err().code()));
        codes
    });
    use tonic::Code::*;
    let want = [NotFound, NotFound, FailedPrecondition, InvalidArgument, InvalidArgument, InvalidArgument];
    assert_eq!(codes.iter().map(|c| c.1).collect::<Vec<_>>(), want, "{codes:?}");
    assert_no_daemon_leaks(&f.d, before);
    f.wharf(&["rm", "-f", &id, &stopped, &cli]);
    f.finish();
}
