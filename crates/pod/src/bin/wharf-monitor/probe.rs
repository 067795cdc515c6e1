//! Kubernetes' network probes (`httpGet`, `tcpSocket`), run by a forked
//! child of the monitor that enters the container's network namespace, so
//! `127.0.0.1` is the pod's loopback. Its exit status is the result (0
//! passes) and what it prints is the probe's output, as for exec probes.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// Forks the probe for `test` (`HTTP-GET host port path` or `TCP host port`)
/// against the network namespace of `pid`; its pid and output pipe.
pub fn spawn(pid: i32, test: &[String], timeout: Duration) -> Result<(i32, OwnedFd), String> {
    let ns =
        std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| format!("open the container's netns: {e}"))?;
    let (r, w) = crate::sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    crate::sys::set_nonblock(r.as_raw_fd()).map_err(|e| format!("fcntl: {e}"))?;
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if child > 0 {
        unsafe { libc::setpgid(child, child) };
        return Ok((child, r));
    }
    // The child: its own process group (killed whole at timeout), output to the pipe.
    unsafe {
        libc::setpgid(0, 0);
        libc::dup2(w.as_raw_fd(), 1);
        libc::dup2(w.as_raw_fd(), 2);
    }
    crate::sys::reset_signals();
    let code = if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        println!("enter the container's netns: {}", std::io::Error::last_os_error());
        1
    } else {
        match run(test, timeout) {
            Ok(msg) => {
                println!("{msg}");
                0
            }
            Err(msg) => {
                println!("{msg}");
                1
            }
        }
    };
    let _ = std::io::stdout().flush();
    unsafe { libc::_exit(code) }
}

fn connect(host: &str, port: &str, timeout: Duration) -> Result<TcpStream, String> {
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    let port: u16 = port.parse().map_err(|_| format!("bad port {port}"))?;
    let addrs = (host, port).to_socket_addrs().map_err(|e| format!("resolve {host}: {e}"))?;
    let mut last = format!("no address for {host}");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("dial tcp {a}: {e}"),
        }
    }
    Err(last)
}

fn run(test: &[String], timeout: Duration) -> Result<String, String> {
    match test {
        [kind, host, port] if kind == "TCP" => {
            connect(host, port, timeout).map(|_| format!("connected to {host}:{port}"))
        }
        [kind, host, port, path] if kind == "HTTP-GET" => {
            let mut s = connect(host, port, timeout)?;
            let _ = s.set_read_timeout(Some(timeout));
            let h = if host.is_empty() { "127.0.0.1" } else { host };
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: {h}:{port}\r\nUser-Agent: kube-probe/1.34\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            );
            s.write_all(req.as_bytes()).map_err(|e| format!("send: {e}"))?;
            let mut buf = [0u8; 512];
            let mut got = Vec::new();
            while !got.contains(&b'\n') && got.len() < 512 {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
            let line = String::from_utf8_lossy(&got).lines().next().unwrap_or("").to_string();
            let code: u16 =
                line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or(format!("bad answer {line:?}"))?;
            if (200..400).contains(&code) {
                Ok(line)
            } else {
                Err(format!("HTTP probe failed with statuscode: {code}"))
            }
        }
        _ => Err(format!("malformed probe {test:?}")),
    }
}
