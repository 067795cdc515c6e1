//! Console socket with a real pty; hooks in order with the right state.

mod common;

use std::io::{IoSliceMut, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use common::*;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

fn receive_master(listener: UnixListener) -> (OwnedFd, String) {
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    use std::os::fd::AsRawFd;
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().copied();
        }
    }
    let n = msg.bytes;
    // SAFETY: the fd arrived with SCM_RIGHTS and is ours now.
    (unsafe { OwnedFd::from_raw_fd(fd.expect("no fd in message")) }, String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn console_socket_gets_a_real_pty() {
    if !privileged("console_socket_gets_a_real_pty") {
        return;
    }
    let mut lab = Lab::new("console");
    let id = lab.id("tty");
    let sock = lab.dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || receive_master(listener));
    let mut cfg = lab.config(&["sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-tty; stty size"]);
    cfg["process"]["terminal"] = json!(true);
    cfg["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    let b = lab.bundle("tty", &cfg);
    let out = lab.rt(&["create", "--console-socket", sock.to_str().unwrap(), "-b", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (master, name) = receiver.join().unwrap();
    assert!(name.starts_with("/dev/pts/"), "{name}");
    assert!(lab.rt(&["start", &id]).status.success());
    let mut f = std::fs::File::from(master);
    let mut got = String::new();
    let mut buf = [0u8; 1024];
    // Reading the master ends with EIO once the slave side is closed.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let lines: Vec<&str> = got.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines, ["/dev/pts/0", "stdio-is-tty", "30 100"], "{got:?}");
    // Without a console socket a terminal is a clear error.
    let (code, _, err) = lab.run("notty", &cfg);
    assert_eq!(code, 1);
    assert!(err.contains("console-socket"), "{err}");
    for _ in 0..100 {
        if lab.state(&id)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(lab.rt(&["delete", &id]).status.success());
    lab.assert_clean();
}

fn hook(dir: &str, name: &str) -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {dir}/{name}.json; echo {name} >> {dir}/order")]})
}

#[test]
fn hooks_run_in_order_with_state() {
    if !privileged("hooks_run_in_order_with_state") {
        return;
    }
    let mut lab = Lab::new("hooks");
    let logs = lab.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let l = logs.to_str().unwrap();
    let mut cfg = lab.config(&["sh", "-c", "echo main >> /hooklog/order"]);
    let mut m = cfg["mounts"].as_array().unwrap().clone();
    m.push(json!({"destination": "/hooklog", "type": "bind", "source": l, "options": ["bind"]}));
    cfg["mounts"] = json!(m);
    cfg["hooks"] = json!({
        "prestart": [hook(l, "prestart")],
        "createRuntime": [hook(l, "createRuntime")],
        "createContainer": [hook(l, "createContainer")],
        "startContainer": [hook("/hooklog", "startContainer")],
        "poststart": [hook(l, "poststart")],
        "poststop": [hook(l, "poststop")],
    });
    let id = lab.id("h");
    let b = lab.bundle("h", &cfg);
    let out = lab.rt(&["run", "-b", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let order = std::fs::read_to_string(logs.join("order")).unwrap();
    let order: Vec<&str> = order.lines().collect();
    // poststart races the user process (runc's order too): check the rest.
    let without_poststart: Vec<&str> = order.iter().copied().filter(|h| *h != "poststart").collect();
    assert_eq!(
        without_poststart,
        ["prestart", "createRuntime", "createContainer", "startContainer", "main", "poststop"]
    );
    assert!(order.contains(&"poststart"));
    for (name, status) in [("createRuntime", "creating"), ("createContainer", "creating"), ("poststop", "stopped")] {
        let st: serde_json::Value =
            serde_json::from_slice(&std::fs::read(logs.join(format!("{name}.json"))).unwrap()).unwrap();
        assert_eq!(st["id"], id.as_str(), "{name}");
        assert_eq!(st["status"], status, "{name}");
        assert_eq!(st["bundle"], b.canonicalize().unwrap().to_str().unwrap(), "{name}");
    }
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(logs.join("poststart.json")).unwrap()).unwrap();
    assert!(st["pid"].as_i64().unwrap() > 0);
    lab.assert_clean();
}

#[test]
fn failing_or_slow_hook_fails_create_and_leaves_nothing() {
    if !privileged("failing_or_slow_hook_fails_create_and_leaves_nothing") {
        return;
    }
    let mut lab = Lab::new("hookfail");
    let mut cfg = lab.config(&["true"]);
    cfg["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 10"], "timeout": 1}]});
    let t = std::time::Instant::now();
    let (code, _, err) = lab.run("slow", &cfg);
    assert_eq!(code, 1);
    assert!(err.contains("createRuntime") && err.contains("timed out"), "{err}");
    assert!(t.elapsed().as_secs() < 5);
    cfg["hooks"] = json!({"createContainer": [{"path": "/bin/false"}]});
    let (code, _, err) = lab.run("false", &cfg);
    assert_eq!(code, 1);
    assert!(err.contains("createContainer") && err.contains("exit"), "{err}");
    lab.assert_clean();
}

#[test]
fn exec_with_tty_and_process_file() {
    if !privileged("exec_with_tty_and_process_file") {
        return;
    }
    let mut lab = Lab::new("exectty");
    let id = lab.id("et");
    let b = lab.bundle("et", &lab.config(&["sleep", "100"]));
    assert!(lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &id]).status.success());
    let sock = lab.dir.path().join("exec.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || receive_master(listener));
    let out = lab.rt(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "tty; echo via-exec",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (master, _) = receiver.join().unwrap();
    let mut f = std::fs::File::from(master);
    let mut got = String::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.starts_with("/dev/pts/") && got.contains("via-exec"), "{got:?}");
    // --process: a full OCI process document.
    let p = lab.dir.path().join("process.json");
    let doc = json!({"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo $WHO; exit 4"],
                     "env": ["PATH=/bin", "WHO=from-file"], "cwd": "/"});
    std::fs::write(&p, doc.to_string()).unwrap();
    let out = lab.rt(&["exec", "--process", p.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(text(&out.stdout).trim(), "from-file");
    assert!(lab.rt(&["delete", "-f", &id]).status.success());
    lab.assert_clean();
}
