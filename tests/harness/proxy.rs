//! A fault-injecting HTTP proxy in front of the real registry, for faults
//! the registry cannot produce: a connection cut mid-blob, a truncated body,
//! a blob with the wrong bytes, a 503. Every request is logged, so a test
//! can also assert what the client did (no upload during a mount).
//!
//! One request per connection: `Connection: close` is forced upstream, so
//! bytes are relayed as they are until the server closes.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer with this status and no body, without asking the registry.
    Status(u16),
    /// Send the registry's head and only this many body bytes, then close.
    CutAfter(usize),
    /// Flip one byte in the middle of the body.
    Corrupt,
}

struct Rule {
    method: String,
    path_contains: String,
    fault: Fault,
    remaining: usize,
}

#[derive(Clone)]
pub struct FaultProxy {
    pub addr: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let p = FaultProxy { addr, rules: Arc::default(), log: Arc::default() };
        let (me, up) = (p.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (me, up) = (me.clone(), up.clone());
                std::thread::spawn(move || me.handle(conn, &up));
            }
        });
        p
    }

    /// Applies `fault` to the next `times` requests whose method and path match.
    pub fn add(&self, method: &str, path_contains: &str, fault: Fault, times: usize) {
        self.rules.lock().unwrap().push(Rule {
            method: method.into(),
            path_contains: path_contains.into(),
            fault,
            remaining: times,
        });
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
        self.log.lock().unwrap().clear();
    }

    /// "METHOD path" of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let r = rules.iter_mut().find(|r| r.remaining > 0 && r.method == method && path.contains(&r.path_contains))?;
        r.remaining -= 1;
        Some(r.fault)
    }

    fn handle(&self, mut client: TcpStream, upstream: &str) {
        let Some(head) = read_head(&mut client) else { return };
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or("").to_string();
        let mut it = request_line.split(' ');
        let (method, path) = (it.next().unwrap_or("").to_string(), it.next().unwrap_or("").to_string());
        self.log.lock().unwrap().push(format!("{method} {path}"));
        let mut out = format!("{request_line}\r\n");
        for l in lines.filter(|l| !l.is_empty()) {
            if !l.to_ascii_lowercase().starts_with("connection:") {
                out.push_str(l);
                out.push_str("\r\n");
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        let fault = self.take_fault(&method, &path);
        if let Some(Fault::Status(code)) = fault {
            let _ = write!(client, "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        let Ok(mut up) = TcpStream::connect(upstream) else { return };
        if up.write_all(out.as_bytes()).is_err() {
            return;
        }
        match fault {
            None => relay(client, up),
            Some(f) => {
                let mut resp = Vec::new();
                let _ = up.read_to_end(&mut resp);
                let split = resp.windows(4).position(|w| w == b"\r\n\r\n").map_or(resp.len(), |i| i + 4);
                let (h, body) = resp.split_at(split);
                let mut body = body.to_vec();
                match f {
                    Fault::CutAfter(n) => body.truncate(n),
                    Fault::Corrupt if !body.is_empty() => {
                        let mid = body.len() / 2;
                        body[mid] ^= 0xff;
                    }
                    _ => {}
                }
                let _ = client.write_all(h);
                let _ = client.write_all(&body);
                let _ = client.shutdown(Shutdown::Both);
            }
        }
    }
}

fn read_head(c: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if c.read(&mut b).ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(b[0]);
    }
    Some(head)
}

/// Copies both ways until the server closes (the request body may still flow).
fn relay(client: TcpStream, up: TcpStream) {
    let (mut c_read, mut u_write) = (client.try_clone().unwrap(), up.try_clone().unwrap());
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (up, client);
    let _ = std::io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = t.join();
}
