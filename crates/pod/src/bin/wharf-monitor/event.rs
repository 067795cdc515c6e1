//! The monitor's life: create the container, then one poll loop over the
//! container's output, the attach socket and its clients, SIGCHLD, and
//! the health probe's output and timers.

use crate::args::{Args, Restart};
use crate::health::Health;
use crate::logfile::LogFile;
use crate::sys;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wharf_pod::container::proto::{self, Hello};

/// After work, the loop drops the code pages it faulted in again once it
/// has been this long since the last time (see `sys::Trim`).
const TRIM_EVERY: Duration = Duration::from_millis(100);
/// A client that reads this far behind is dropped (the log has it all).
const CLIENT_BACKLOG: usize = 4 << 20;

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    pending: Vec<u8>,
    hello: Hello,
    greeted: bool,
    cleaned: bool,
    gone: bool,
}

/// The container's side of its stdio, kept across restarts.
struct Stdio3 {
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

pub struct Monitor {
    a: Args,
    log: LogFile,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    stdin_w: Option<OwnedFd>,
    child: Option<Stdio3>,
    master: Option<OwnedFd>,
    listener: UnixListener,
    clients: Vec<Client>,
    sig: OwnedFd,
    pid: i32,
    started_at: Option<Instant>,
    started_wall: String,
    delay: Duration,
    restart_at: Option<Instant>,
    /// The delay of the pending restart (shown in `monitor.json`).
    backoff: Duration,
    exit_code: Option<i32>,
    /// The container's memory cgroup's OOM kill counter, and whether it moved at the exit.
    oom: Option<crate::oom::OomWatch>,
    oom_killed: bool,
    /// Docker's check and Kubernetes' probes.
    health: Vec<Health>,
    /// A probe's fork and exec (or its exit) just faulted in much code.
    trim_now: bool,
    /// A probe asked the container to stop: SIGKILL at this instant.
    kill_at: Option<Instant>,
}

fn io_err(what: &str, e: std::io::Error) -> String {
    format!("{what}: {e}")
}

impl Monitor {
    /// Everything up to a created container (its init waits on the exec
    /// fifo); errors are for the sync pipe.
    pub fn create(a: Args) -> Result<Monitor, String> {
        let sig = sys::signalfd().map_err(|e| io_err("signalfd", e))?;
        let log =
            LogFile::open(&a.log, a.log_max_size, a.log_max_file, a.log_max_line).map_err(|e| io_err("open log", e))?;
        let (out_r, out_w) = sys::pipe().map_err(|e| io_err("pipe", e))?;
        let (err_r, err_w) = sys::pipe().map_err(|e| io_err("pipe", e))?;
        let (stdin_r, stdin_w) = if a.stdin {
            let (r, w) = sys::pipe().map_err(|e| io_err("pipe", e))?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        for fd in [Some(&out_r), Some(&err_r), stdin_w.as_ref()].into_iter().flatten() {
            sys::set_nonblock(fd.as_raw_fd()).map_err(|e| io_err("fcntl", e))?;
        }
        let _ = std::fs::remove_file(&a.socket);
        let listener =
            UnixListener::bind(&a.socket).map_err(|e| io_err(&format!("listen on {}", a.socket.display()), e))?;
        listener.set_nonblocking(true).map_err(|e| io_err("fcntl", e))?;
        let health = a.health.iter().map(|c| Health::new(c.clone(), &a.dir)).collect();
        let a_delay = a.restart_delay;
        let mut m = Monitor {
            a,
            log,
            out: Some(out_r),
            err: Some(err_r),
            stdin_w,
            child: Some(Stdio3 { stdin: stdin_r, stdout: out_w, stderr: err_w }),
            master: None,
            listener,
            clients: Vec::new(),
            sig,
            pid: 0,
            started_at: None,
            started_wall: String::new(),
            delay: a_delay,
            restart_at: None,
            backoff: Duration::ZERO,
            exit_code: None,
            oom: None,
            oom_killed: false,
            health,
            trim_now: false,
            kill_at: None,
        };
        if let Err(e) = m.create_container() {
            let _ = std::fs::remove_file(&m.a.socket);
            return Err(e);
        }
        m.write_status("created", "");
        if m.a.start {
            m.start_container()?;
        }
        Ok(m)
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn runtime(&self) -> Command {
        let mut c = Command::new(&self.a.runtime);
        c.arg("--root").arg(&self.a.state_root).arg("--log").arg(self.a.dir.join("runtime.log"));
        if self.a.systemd_cgroup {
            c.arg("--systemd-cgroup");
        }
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut c, || {
                sys::reset_signals();
                Ok(())
            });
        }
        c
    }

    /// `wharf-runtime create`, its init reparented to us when it exits.
    fn create_container(&mut self) -> Result<(), String> {
        let pid_file = self.a.dir.join("pid");
        let _ = std::fs::remove_file(&pid_file);
        let console = match &self.a.console_socket {
            Some(p) => {
                let _ = std::fs::remove_file(p);
                Some(UnixListener::bind(p).map_err(|e| io_err("console socket", e))?)
            }
            None => None,
        };
        let mut cmd = self.runtime();
        cmd.arg("create").arg("--bundle").arg(&self.a.bundle).arg("--pid-file").arg(&pid_file);
        if let Some(p) = &self.a.console_socket {
            cmd.arg("--console-socket").arg(p);
        }
        cmd.arg(&self.a.id);
        let child = self.child.as_ref().ok_or("no stdio")?;
        let dup = |fd: &OwnedFd| fd.try_clone().map(Stdio::from).map_err(|e| io_err("dup", e));
        cmd.stdin(match &child.stdin {
            Some(fd) => dup(fd)?,
            None => Stdio::null(),
        });
        cmd.stdout(dup(&child.stdout)?).stderr(dup(&child.stderr)?);
        let status = cmd.status().map_err(|e| io_err(&format!("run {}", self.a.runtime.display()), e))?;
        if let Some(p) = &self.a.console_socket {
            let _ = std::fs::remove_file(p);
        }
        if !status.success() {
            return Err(self.runtime_error("create"));
        }
        let pid = std::fs::read_to_string(&pid_file).map_err(|e| io_err("read pid file", e))?;
        self.pid = pid.trim().parse().map_err(|_| format!("bad pid file {pid:?}"))?;
        self.oom = crate::oom::OomWatch::of_pid(self.pid);
        self.oom_killed = false;
        if let Some(l) = console {
            if !sys::wait_readable(l.as_raw_fd(), 10_000) {
                return Err("the runtime sent no terminal".into());
            }
            let (conn, _) = l.accept().map_err(|e| io_err("accept console", e))?;
            let master = sys::recv_fd(conn.as_raw_fd()).map_err(|e| io_err("receive terminal", e))?;
            sys::set_nonblock(master.as_raw_fd()).map_err(|e| io_err("fcntl", e))?;
            self.out = Some(master.try_clone().map_err(|e| io_err("dup", e))?);
            self.master = Some(master);
        }
        Ok(())
    }

    /// The last line the runtime logged (its error), or a generic message.
    fn runtime_error(&self, op: &str) -> String {
        let log = std::fs::read_to_string(self.a.dir.join("runtime.log")).unwrap_or_default();
        let line = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
        // JSON lines from `--log-format json`, or text.
        let msg = quoted_after(&line, "\"msg\":\"").or_else(|| quoted_after(&line, " msg=\"")).unwrap_or(line);
        if msg.is_empty() {
            format!("wharf-runtime {op} failed")
        } else {
            msg
        }
    }

    /// Lets the init exec the process: the runtime's `start`, done here
    /// (open the exec fifo, read its byte, remove it).
    fn start_container(&mut self) -> Result<(), String> {
        let fifo = self.a.state_root.join(&self.a.id).join("exec.fifo");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_nonblock()
            .open(&fifo)
            .map_err(|e| io_err(&format!("open {}", fifo.display()), e))?;
        loop {
            if sys::wait_readable(f.as_raw_fd(), 100) {
                let mut b = [0u8; 1];
                if (&f).read(&mut b).unwrap_or(0) == 1 {
                    break;
                }
            }
            if unsafe { libc::kill(self.pid, 0) } != 0 {
                return Err("the container's init exited before start".into());
            }
        }
        let _ = std::fs::remove_file(&fifo);
        self.started_at = Some(Instant::now());
        self.started_wall = sys::now_rfc3339();
        self.write_status("running", "");
        for h in &mut self.health {
            h.on_start();
        }
        Ok(())
    }

    /// `monitor.json`, replaced atomically (write + rename).
    fn write_status(&self, status: &str, error: &str) {
        let code = self.exit_code.unwrap_or(0);
        let finished = if self.exit_code.is_some() { sys::now_rfc3339() } else { String::new() };
        let pid = if status == "exited" { 0 } else { self.pid };
        // While waiting to restart: the back-off, in ms.
        let backoff = if status == "restarting" { self.backoff.as_millis() } else { 0 };
        let body = format!(
            "{{\"Status\":\"{status}\",\"Pid\":{pid},\"MonitorPid\":{},\"StartedAt\":\"{}\",\"FinishedAt\":\"{finished}\",\"ExitCode\":{code},\"RestartCount\":{},\"BackOffMs\":{backoff},\"OOMKilled\":{},\"Error\":\"{}\"}}\n",
            std::process::id(),
            self.started_wall,
            self.a.restart_count,
            self.oom_killed && self.exit_code.is_some(),
            json_escape(error),
        );
        let path = self.a.dir.join("monitor.json");
        let tmp = self.a.dir.join(".monitor.json.tmp");
        if std::fs::write(&tmp, body).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }

    /// The loop, until the container is gone for good; then the exit.
    /// An idle monitor comes back to its small resident set: after a wake,
    /// the pages faulted in are dropped again within `TRIM_EVERY`.
    pub fn run(&mut self) -> ! {
        let trim = sys::Trim::new();
        let mut trimmed = Instant::now();
        let mut dirty = true;
        loop {
            if self.exit_code.is_some() && self.restart_at.is_none() {
                self.finish();
            }
            if dirty && (self.trim_now || trimmed.elapsed() >= TRIM_EVERY) {
                trim.run();
                trimmed = Instant::now();
                dirty = false;
                self.trim_now = false;
            }
            self.poll_once(dirty.then_some(trimmed + TRIM_EVERY));
            dirty = true;
        }
    }

    fn poll_once(&mut self, trim_at: Option<Instant>) {
        let mut fds = vec![
            pollfd(self.sig.as_raw_fd()),
            pollfd(self.listener.as_raw_fd()),
            pollfd(self.out.as_ref().map_or(-1, |f| f.as_raw_fd())),
            pollfd(self.err.as_ref().map_or(-1, |f| f.as_raw_fd())),
        ];
        let probes = fds.len();
        fds.extend(self.health.iter().map(|h| pollfd(h.fd())));
        let clients = fds.len();
        for c in &self.clients {
            let mut p = pollfd(c.stream.as_raw_fd());
            if !c.pending.is_empty() {
                p.events |= libc::POLLOUT;
            }
            fds.push(p);
        }
        let wake = [self.restart_at, trim_at, self.kill_at]
            .into_iter()
            .chain(self.health.iter().map(Health::wake_at))
            .flatten()
            .min();
        let timeout = match wake {
            // Rounded up: waking a little early would spin until the instant.
            Some(t) => t.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000).min(60_000) as i32,
            None => -1,
        };
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            return;
        }
        if fds[2].revents != 0 {
            self.pump(true);
        }
        if fds[3].revents != 0 {
            self.pump(false);
        }
        for (h, p) in self.health.iter_mut().zip(&fds[probes..clients]) {
            if p.revents != 0 {
                h.read_output();
            }
        }
        for (i, p) in fds[clients..].iter().enumerate() {
            if p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.read_client(i);
            }
            if p.revents & libc::POLLOUT != 0 {
                flush(&mut self.clients[i]);
            }
        }
        self.clients.retain(|c| !c.gone);
        if fds[1].revents != 0 {
            self.accept();
        }
        if fds[0].revents != 0 {
            sys::drain_signalfd(&self.sig);
            self.log.reopen_if_moved();
            self.reap();
        }
        if self.kill_at.is_some_and(|t| t <= Instant::now()) {
            self.kill_at = None;
            if self.exit_code.is_none() && self.pid > 0 {
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
            }
        }
        if self.restart_at.is_some_and(|t| t <= Instant::now()) {
            self.restart();
        } else if self.restart_at.is_some() && self.a.dir.join("stopped").exists() {
            // Stopped (or removed) during a back-off, which may last minutes:
            // done now, not when the delay ends (`stop`/`rm -f` connect, which wakes us).
            self.restart_at = None;
        }
        self.health_tick();
    }

    /// Times out or starts the probes while the container runs (a startup
    /// probe that has not succeeded holds the others).
    fn health_tick(&mut self) {
        if self.health.is_empty() || self.exit_code.is_some() || self.started_at.is_none() {
            return;
        }
        let paused = self.a.dir.join("paused").exists();
        let held = self.health.iter().any(Health::holds_others);
        let (a, pid) = (&self.a, self.pid);
        for h in &mut self.health {
            if held && h.name() != "startup" {
                h.defer();
                continue;
            }
            self.trim_now |= h.tick(paused, |c| {
                if c.is_net() {
                    crate::probe::spawn(pid, &c.test, c.timeout)
                } else {
                    spawn_probe(a, &c.argv())
                }
            });
        }
    }

    /// Reads what the container wrote; `false` when nothing was there.
    fn pump(&mut self, stdout: bool) -> bool {
        let fd = match if stdout { &self.out } else { &self.err } {
            Some(f) => f.as_raw_fd(),
            None => return false,
        };
        let mut buf = vec![0u8; 64 << 10];
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            let e = std::io::Error::last_os_error();
            // EOF, or EIO from a pty whose other side closed.
            if n == 0 || e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::Interrupted {
                if stdout {
                    self.out = None;
                } else {
                    self.err = None;
                }
            }
            return false;
        }
        let data = &buf[..n as usize];
        let (stream, kind) = if stdout { ("stdout", proto::STDOUT) } else { ("stderr", proto::STDERR) };
        self.log.write(stream, data);
        let frame = proto::frame(kind, data);
        for c in &mut self.clients {
            if c.greeted && if stdout { c.hello.stdout } else { c.hello.stderr } {
                send(c, &frame);
            }
        }
        true
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let mut c = Client {
                stream,
                inbuf: Vec::new(),
                pending: Vec::new(),
                hello: Hello::default(),
                greeted: false,
                cleaned: false,
                gone: false,
            };
            if let Some(code) = self.exit_code.filter(|_| self.restart_at.is_none()) {
                send(&mut c, &proto::frame(proto::EXIT, code.to_string().as_bytes()));
            }
            self.clients.push(c);
        }
    }

    fn read_client(&mut self, i: usize) {
        let mut buf = [0u8; 32 << 10];
        match self.clients[i].stream.read(&mut buf) {
            Ok(0) => self.clients[i].gone = true,
            Ok(n) => self.clients[i].inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(_) => self.clients[i].gone = true,
        }
        let frames = match proto::take_frames(&mut self.clients[i].inbuf) {
            Ok(f) => f,
            Err(_) => {
                self.clients[i].gone = true;
                return;
            }
        };
        for (kind, payload) in frames {
            self.on_frame(i, kind, &payload);
        }
    }

    fn on_frame(&mut self, i: usize, kind: u8, payload: &[u8]) {
        match kind {
            proto::HELLO => {
                let c = &mut self.clients[i];
                c.hello = Hello::from_byte(payload.first().copied().unwrap_or(0));
                c.greeted = true;
            }
            proto::STDIN if self.clients[i].hello.stdin => {
                let fd = self.master.as_ref().or(self.stdin_w.as_ref()).map(|f| f.as_raw_fd());
                if let Some(fd) = fd {
                    write_all_fd(fd, payload);
                }
            }
            proto::CLOSE_STDIN if self.clients[i].hello.stdin && self.master.is_none() => self.stdin_w = None,
            proto::RESIZE if payload.len() == 4 => {
                if let Some(m) = &self.master {
                    let rows = u16::from_be_bytes([payload[0], payload[1]]);
                    let cols = u16::from_be_bytes([payload[2], payload[3]]);
                    sys::set_winsize(m.as_raw_fd(), rows, cols);
                }
            }
            proto::START => {
                let reply = if self.started_at.is_some() {
                    proto::frame(proto::STARTED, self.pid.to_string().as_bytes())
                } else {
                    match self.start_container() {
                        Ok(()) => proto::frame(proto::STARTED, self.pid.to_string().as_bytes()),
                        Err(e) => proto::frame(proto::ERROR, e.as_bytes()),
                    }
                };
                send(&mut self.clients[i], &reply);
            }
            proto::CLEANED => self.clients[i].cleaned = true,
            _ => {}
        }
    }

    fn reap(&mut self) {
        while let Some((pid, code)) = sys::reap_any() {
            if let Some(h) = self.health.iter_mut().find(|h| h.owns(pid)) {
                h.on_reaped(pid, code);
                self.trim_now = true;
                // Kubernetes: a failed liveness or startup probe kills the
                // container (its stop signal, SIGKILL after the grace
                // period); its restart policy decides what comes next.
                if h.take_kill() && self.exit_code.is_none() && self.pid > 0 && self.kill_at.is_none() {
                    let grace = self.a.kill_grace;
                    let sig = if grace.is_zero() { libc::SIGKILL } else { self.a.kill_signal };
                    unsafe { libc::kill(self.pid, sig) };
                    self.kill_at = (!grace.is_zero()).then(|| Instant::now() + grace);
                }
                continue;
            }
            if pid == self.pid && self.exit_code.is_none() {
                while self.pump(true) {}
                while self.pump(false) {}
                self.on_exit(code);
            }
        }
    }

    fn on_exit(&mut self, code: i32) {
        self.exit_code = Some(code);
        self.oom_killed = self.oom.as_ref().is_some_and(|w| w.killed());
        self.kill_at = None;
        for h in &mut self.health {
            h.stop();
        }
        let stopped = self.a.dir.join("stopped").exists();
        let again = !stopped
            && match self.a.restart {
                Restart::No => false,
                Restart::Always | Restart::UnlessStopped => true,
                Restart::OnFailure(max) => code != 0 && max.is_none_or(|m| self.a.restart_count < m),
            };
        if !again || self.started_at.is_none() {
            return;
        }
        if self.started_at.is_some_and(|t| t.elapsed() >= self.a.restart_reset) {
            self.delay = self.a.restart_delay;
        }
        self.restart_at = Some(Instant::now() + self.delay);
        self.backoff = self.delay;
        self.delay = (self.delay * 2).min(self.a.restart_max_delay);
        self.write_status("restarting", "");
    }

    fn restart(&mut self) {
        self.restart_at = None;
        if self.a.dir.join("stopped").exists() {
            return; // stopped during the delay: finish() next
        }
        let _ = self.runtime().arg("delete").arg("--force").arg(&self.a.id).stdout(Stdio::null()).status();
        self.a.restart_count += 1;
        let res = self.create_container().and_then(|()| {
            self.exit_code = None;
            self.start_container()
        });
        if let Err(e) = res {
            self.exit_code.get_or_insert(128);
            self.write_status("exited", &e);
        }
    }

    /// The container is gone for good: record it, release the locks, tell
    /// the clients, then hand over to the exit command (or to the client
    /// that cleans up).
    fn finish(&mut self) -> ! {
        let code = self.exit_code.unwrap_or(255);
        self.pid = 0;
        self.write_status("exited", "");
        for fd in std::mem::take(&mut self.a.keep_fds) {
            unsafe { libc::close(fd) };
        }
        let exit = proto::frame(proto::EXIT, code.to_string().as_bytes());
        for c in &mut self.clients {
            send(c, &exit);
            flush(c);
        }
        let _ = std::fs::remove_file(&self.a.socket);
        // A cleaner client (a foreground `run`) gets until it hangs up.
        loop {
            if self.clients.iter().any(|c| c.cleaned) {
                std::process::exit(0);
            }
            let mut fds: Vec<_> =
                self.clients.iter().filter(|c| c.hello.cleaner).map(|c| pollfd(c.stream.as_raw_fd())).collect();
            if fds.is_empty() {
                break;
            }
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
            for i in 0..self.clients.len() {
                if self.clients[i].hello.cleaner {
                    self.read_client(i);
                }
            }
            self.clients.retain(|c| !c.gone || c.cleaned);
        }
        self.exec_exit_command()
    }

    fn exec_exit_command(&self) -> ! {
        if let Some((prog, args)) = self.a.exit_cmd.split_first() {
            sys::reset_signals();
            let e = std::os::unix::process::CommandExt::exec(
                Command::new(prog).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()),
            );
            self.write_status("exited", &format!("exit command: {e}"));
        }
        std::process::exit(0)
    }
}

/// `wharf-runtime exec ID ARGV…` in its own process group (killed whole
/// at timeout), stdout and stderr into one nonblocking pipe.
fn spawn_probe(a: &Args, argv: &[String]) -> Result<(i32, OwnedFd), String> {
    let (r, w) = sys::pipe().map_err(|e| io_err("pipe", e))?;
    sys::set_nonblock(r.as_raw_fd()).map_err(|e| io_err("fcntl", e))?;
    let w2 = w.try_clone().map_err(|e| io_err("dup", e))?;
    let mut c = Command::new(&a.runtime);
    c.arg("--root").arg(&a.state_root);
    if a.systemd_cgroup {
        c.arg("--systemd-cgroup");
    }
    c.arg("exec").arg(&a.id).args(argv);
    c.stdin(Stdio::null()).stdout(Stdio::from(w)).stderr(Stdio::from(w2));
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            sys::reset_signals();
            Ok(())
        });
    }
    // Reaped by the loop (SIGCHLD), never waited for here.
    let child = c.spawn().map_err(|e| io_err(&format!("run {}", a.runtime.display()), e))?;
    Ok((child.id() as i32, r))
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd { fd, events: libc::POLLIN, revents: 0 }
}

fn send(c: &mut Client, frame: &[u8]) {
    if c.pending.len() > CLIENT_BACKLOG {
        c.gone = true;
        return;
    }
    c.pending.extend_from_slice(frame);
    flush(c);
}

fn flush(c: &mut Client) {
    while !c.pending.is_empty() {
        match c.stream.write(&c.pending) {
            Ok(n) => {
                c.pending.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(_) => {
                c.gone = true;
                c.pending.clear();
                return;
            }
        }
    }
}

/// Writes `data` to the container's stdin (a nonblocking pipe or pty); a
/// container that reads nothing for 5 s loses the rest.
fn write_all_fd(fd: RawFd, mut data: &[u8]) {
    let mut waits = 0;
    while !data.is_empty() && waits < 50 {
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n <= 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock {
                sys::wait_writable(fd, 100);
                waits += 1;
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}

/// The quoted value after `key` (which ends with its opening quote), unescaped.
fn quoted_after(line: &str, key: &str) -> Option<String> {
    let rest = &line[line.find(key)? + key.len()..];
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Some(out)
}

/// A JSON string's body, escaped (the monitor writes its files without serde).
pub(crate) fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

trait NonBlockOpen {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlockOpen for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}
