//! The engine's stdio, networks and storage through the `wharf` binary:
//! `run -it`/`exec -it` on a real pty, `attach` and ctrl-p ctrl-q, piped
//! stdin, `start -a`; two containers talking by name, published ports from
//! the host; named and anonymous volumes across containers; a container's
//! own changes across stop/start. Each test removes what it made and
//! checks that nothing is left.

use std::io::{Read, Write};
use std::time::Duration;
use wharf_tests::engine::{stderr, stdout, unique, wait_for, Engine, Pty};
use wharf_tests::privileged;

#[test]
fn terminals_attach_and_stdin() {
    if !privileged("terminals_attach_and_stdin") {
        return;
    }
    let e = Engine::new();
    // run -it: what is typed reaches the shell, its exit code comes back.
    let mut t = Pty::spawn(&e, &["run", "--rm", "-it", "bb", "sh"]);
    t.write(b"tty; echo $((6*7))\n");
    let seen = t.read_until("42", 30);
    assert!(seen.contains("/dev/pts/"), "{seen}");
    t.write(b"exit 3\n");
    let (code, rest) = t.finish(30);
    assert_eq!(code, Some(3), "{rest}");

    // attach to a -dit container, detach with ctrl-p ctrl-q: it runs on.
    let name = unique("box");
    e.ok(&["run", "-dit", "--name", &name, "bb", "sh"]);
    let mut t = Pty::spawn(&e, &["attach", &name]);
    t.write(b"echo $((7*8))\n");
    t.read_until("56", 30);
    t.write(b"\x10\x11");
    let (code, rest) = t.finish(30);
    assert_eq!(code, Some(0), "detached: {rest}");
    assert_eq!(e.status(&name), "running", "ctrl-p ctrl-q leaves it running");

    // exec -it into it.
    let mut t = Pty::spawn(&e, &["exec", "-it", &name, "sh"]);
    t.write(b"echo $((5*5)); exit 4\n");
    t.read_until("25", 30);
    let (code, rest) = t.finish(30);
    assert_eq!(code, Some(4), "{rest}");

    // Attached again, `exit` ends the container and the attach with its code.
    let mut t = Pty::spawn(&e, &["attach", &name]);
    t.write(b"exit 6\n");
    let (code, rest) = t.finish(30);
    assert_eq!(code, Some(6), "{rest}");
    e.wait_status(&name, "exited", 10);

    // run -i with piped stdin, without a tty.
    let o = e.s.run_stdin(["run", "--rm", "-i", "bb", "cat"], b"hi\nthere\n");
    assert_eq!(stdout(&o), "hi\nthere\n", "{}", stderr(&o));
    let o = e.s.run_stdin(["run", "--rm", "-i", "bb", "wc", "-c"], &vec![b'x'; 1 << 20]);
    assert_eq!(stdout(&o).trim(), "1048576", "1 MiB through stdin: {}", stderr(&o));
    // Without -i, stdin is not the container's.
    let o = e.s.run_stdin(["run", "--rm", "bb", "cat"], b"not read\n");
    assert_eq!(stdout(&o), "");

    // start -a: the output, then the exit code; start -ai feeds stdin.
    let s = unique("later");
    e.ok(&["create", "--name", &s, "bb", "sh", "-c", "echo hello; exit 7"]);
    let o = e.wharf(&["start", "-a", &s]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(7), "hello\n"), "{}", stderr(&o));
    let o = e.wharf(&["start", "-a", &s]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(7), "hello\n"), "a second start -a: {}", stderr(&o));
    let si = unique("stdin");
    e.ok(&["create", "-i", "--name", &si, "bb", "sh", "-c", "read x; echo got $x"]);
    let o = e.s.run_stdin(["start", "-ai", &si], b"it\n");
    assert_eq!(stdout(&o), "got it\n", "{}", stderr(&o));
    e.clean_up();
}

/// An HTTP GET of `path` from 127.0.0.1:`port` (busybox httpd); the body.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).filter(|b| !b.is_empty())
}

/// Retries `http_get` while the server starts.
fn http_get_soon(port: u16, path: &str) -> String {
    let mut body = None;
    wait_for(20, &format!("http://127.0.0.1:{port}{path}"), || {
        body = http_get(port, path);
        body.is_some()
    });
    body.unwrap_or_default()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn networks_and_published_ports() {
    if !privileged("networks_and_published_ports") {
        return;
    }
    let e = Engine::new();
    let net = unique("enet");
    e.ok(&["network", "create", &net]);
    let (srv, cli) = (unique("srv"), unique("cli"));
    let port = free_port();
    let p = format!("127.0.0.1:{port}:80");
    e.ok(&["run", "-d", "--name", &srv, "--network", &net, "-p", &p, "bb", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    // The other container finds it by name over TCP.
    let o = e.wharf(&[
        "run",
        "--rm",
        "--name",
        &cli,
        "--network",
        &net,
        "bb",
        "sh",
        "-c",
        &format!("for i in $(seq 50); do wget -qO- http://{srv}/group && exit 0; sleep 0.2; done; exit 1"),
    ]);
    assert!(o.status.success() && stdout(&o).contains("nogroup"), "{}{}", stdout(&o), stderr(&o));
    // The host reaches the published port.
    assert!(http_get_soon(port, "/passwd").contains("nobody"));
    let ps = e.ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    // -P: the image's EXPOSE 80 on a port wharf chose.
    let all = unique("all");
    e.ok(&["run", "-d", "--name", &all, "--network", &net, "-P", "bb", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    let host = e.ok(&["port", &all, "80"]);
    let hp: u16 = host.lines().next().unwrap().rsplit(':').next().unwrap().parse().unwrap();
    assert!(http_get_soon(hp, "/passwd").contains("root"), "-P gave {host}");
    // Stopped, the port is closed; started again, open again.
    e.ok(&["stop", "-t", "1", &srv]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the port closed with the container");
    e.ok(&["start", &srv]);
    assert!(http_get_soon(port, "/passwd").contains("nobody"), "the port is back after start");
    e.clean_up();
    e.ok(&["network", "rm", &net]);
}

#[test]
fn volumes_and_container_changes_persist() {
    if !privileged("volumes_and_container_changes_persist") {
        return;
    }
    let e = Engine::new();
    let vol = unique("data");
    // A named volume outlives the containers that use it.
    e.ok(&["run", "--rm", "-v", &format!("{vol}:/data"), "bb", "sh", "-c", "echo kept > /data/f"]);
    assert_eq!(e.ok(&["run", "--rm", "-v", &format!("{vol}:/data"), "bb", "cat", "/data/f"]), "kept");
    // A fresh named volume over image content starts with a copy of it.
    let etc = unique("etc");
    let o = e.ok(&["run", "--rm", "-v", &format!("{etc}:/etc"), "bb", "cat", "/etc/group"]);
    assert!(o.contains("nogroup"), "copy-up: {o}");
    let o = e.ok(&["run", "--rm", "-v", &format!("{etc}:/etc"), "bb", "ls", "/etc"]);
    assert!(o.contains("passwd"), "{o}");

    // Anonymous volumes: kept by rm, removed by rm -v.
    let vols = || e.ok(&["volume", "ls", "-q"]).lines().map(str::to_string).collect::<Vec<_>>();
    let before = vols();
    let (a, b) = (unique("anon-a"), unique("anon-b"));
    e.ok(&["run", "-d", "--name", &a, "-v", "/scratch", "bb", "sh", "-c", "echo a > /scratch/x; sleep 1000"]);
    e.ok(&["run", "-d", "--name", &b, "-v", "/scratch", "bb", "sleep", "1000"]);
    let made: Vec<String> = vols().into_iter().filter(|v| !before.contains(v)).collect();
    assert_eq!(made.len(), 2, "{made:?}");
    // The anonymous volume is the same across stop/start.
    wait_for(10, "the write", || e.exec(&a, &["cat", "/scratch/x"]) == "a");
    e.ok(&["stop", "-t", "1", &a]);
    e.ok(&["start", &a]);
    assert_eq!(e.exec(&a, &["cat", "/scratch/x"]), "a");
    assert_eq!(vols().len(), before.len() + 2, "start makes no new anonymous volume");
    e.ok(&["rm", "-f", "-v", &a]);
    assert_eq!(vols().len(), before.len() + 1, "rm -v removed its anonymous volume");
    e.ok(&["rm", "-f", &b]);
    assert_eq!(vols().len(), before.len() + 1, "rm without -v keeps it (Docker's rule)");

    // The container's own filesystem changes survive stop/start.
    let keep = unique("keep");
    e.ok(&["run", "-d", "--name", &keep, "bb", "sh", "-c", "echo run >> /state; sleep 1000"]);
    wait_for(10, "the first write", || e.exec(&keep, &["cat", "/state"]) == "run");
    e.ok(&["stop", "-t", "1", &keep]);
    e.ok(&["start", &keep]);
    wait_for(10, "the second write", || e.exec(&keep, &["cat", "/state"]) == "run\nrun");
    e.clean_up();
    for v in vols().into_iter().filter(|v| !before.contains(v)) {
        e.ok(&["volume", "rm", &v]);
    }
    e.ok(&["volume", "rm", &vol, &etc]);
}
