//! Health probes, run from the poll loop as Docker's health monitor does:
//! one probe at a time, `interval` after the last one ended (`start
//! interval` while starting within the start period), killed with its
//! process group at `timeout`; the last 5 results, the status and the
//! failing streak go to `<dir>/health.json` (Docker's `State.Health`).
//! Nothing here blocks: the probe's output is a nonblocking pipe in the
//! loop's poll set, and its exit is reaped with the container's.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Docker keeps 5 results and 4 KiB of each probe's output.
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `health` (Docker's check, `health.json`) or a Kubernetes probe's
    /// role (`liveness`, `readiness`, `startup`: `<role>.json`).
    pub name: String,
    /// `CMD argv…`, `CMD-SHELL command`, `HTTP-GET host port path`, `TCP host port`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
    /// Kubernetes: no probe before this long after the start.
    pub initial_delay: Duration,
    /// Kubernetes' successThreshold.
    pub successes: u32,
    /// Kill the container when it turns unhealthy (liveness, startup).
    pub kill: bool,
}

impl Check {
    /// Docker's defaults.
    pub fn docker(name: &str) -> Check {
        Check {
            name: name.to_string(),
            test: Vec::new(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            start_period: Duration::ZERO,
            start_interval: Duration::from_secs(5),
            retries: 3,
            initial_delay: Duration::ZERO,
            successes: 1,
            kill: false,
        }
    }

    /// The command to run in the container (for network probes: the test).
    pub fn argv(&self) -> Vec<String> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" => {
                ["/bin/sh", "-c"].iter().map(|s| s.to_string()).chain(rest.iter().cloned()).collect()
            }
            Some((kind, _)) if kind == "HTTP-GET" || kind == "TCP" => self.test.clone(),
            Some((_, rest)) => rest.to_vec(),
            None => Vec::new(),
        }
    }

    /// A network probe (run by the monitor itself in the container's netns).
    pub fn is_net(&self) -> bool {
        matches!(self.test.first().map(String::as_str), Some("HTTP-GET" | "TCP"))
    }
}

/// A running probe: the runtime's `exec` (leader of its own process group).
struct Probe {
    pid: i32,
    out: Option<OwnedFd>,
    output: Vec<u8>,
    start: String,
    deadline: Instant,
    timed_out: bool,
}

struct Entry {
    start: String,
    end: String,
    code: i32,
    output: String,
}

pub struct Health {
    check: Check,
    file: PathBuf,
    started: Instant,
    status: &'static str,
    streak: u32,
    oks: u32,
    /// Turned unhealthy with `kill`: the container must go.
    kill_now: bool,
    log: Vec<Entry>,
    next: Option<Instant>,
    probe: Option<Probe>,
}

impl Health {
    pub fn new(check: Check, dir: &Path) -> Health {
        let file = if check.name == "health" { "health.json".to_string() } else { format!("{}.json", check.name) };
        Health {
            check,
            file: dir.join(file),
            started: Instant::now(),
            status: "starting",
            streak: 0,
            oks: 0,
            kill_now: false,
            log: Vec::new(),
            next: None,
            probe: None,
        }
    }

    /// The container (re)started: starting again, first probe one interval on.
    pub fn on_start(&mut self) {
        self.stop();
        self.started = Instant::now();
        self.status = "starting";
        self.streak = 0;
        self.oks = 0;
        self.kill_now = false;
        let first = if self.check.name == "health" { self.interval() } else { self.check.initial_delay };
        self.next = Some(self.started + first);
        self.write();
    }

    pub fn name(&self) -> &str {
        &self.check.name
    }

    /// A startup probe that has not yet succeeded holds the others.
    pub fn holds_others(&self) -> bool {
        self.check.name == "startup" && self.status != "healthy"
    }

    /// Held by a startup probe: the next turn one interval on.
    pub fn defer(&mut self) {
        if self.probe.is_none() && self.next.is_some_and(|t| t <= Instant::now()) {
            self.next = Some(Instant::now() + self.check.interval);
        }
    }

    /// Whether the container must be killed (once per failure).
    pub fn take_kill(&mut self) -> bool {
        std::mem::take(&mut self.kill_now)
    }

    /// The container is gone: no more probes, the running one killed.
    pub fn stop(&mut self) {
        if let Some(p) = self.probe.take() {
            kill_group(p.pid);
        }
        self.next = None;
    }

    fn interval(&self) -> Duration {
        let c = &self.check;
        if self.status == "starting" && self.started.elapsed() < c.start_period {
            c.start_interval
        } else {
            c.interval
        }
    }

    /// When the loop must wake for us.
    pub fn wake_at(&self) -> Option<Instant> {
        match &self.probe {
            Some(p) if !p.timed_out => Some(p.deadline),
            Some(_) => None,
            None => self.next,
        }
    }

    /// The probe's output pipe, to poll.
    pub fn fd(&self) -> RawFd {
        self.probe.as_ref().and_then(|p| p.out.as_ref()).map_or(-1, |f| f.as_raw_fd())
    }

    /// Times out the probe, or starts the next one with `spawn` (pid and
    /// the read end of its output pipe); `paused` containers skip a turn.
    /// Whether a probe was started.
    pub fn tick(&mut self, paused: bool, spawn: impl FnOnce(&Check) -> Result<(i32, OwnedFd), String>) -> bool {
        let now = Instant::now();
        if let Some(p) = &mut self.probe {
            if !p.timed_out && p.deadline <= now {
                p.timed_out = true;
                kill_group(p.pid);
            }
            return false;
        }
        if self.next.is_none_or(|t| t > now) {
            return false;
        }
        if paused {
            self.next = Some(now + self.interval());
            return false;
        }
        let start = crate::sys::now_rfc3339();
        match spawn(&self.check) {
            Ok((pid, out)) => {
                self.next = None;
                let deadline = now + self.check.timeout;
                self.probe = Some(Probe { pid, out: Some(out), output: Vec::new(), start, deadline, timed_out: false });
                true
            }
            Err(e) => {
                self.record(Entry { start, end: crate::sys::now_rfc3339(), code: -1, output: e });
                false
            }
        }
    }

    /// Reads what the probe wrote (all of it, keeping the first 4 KiB).
    pub fn read_output(&mut self) {
        let Some(p) = &mut self.probe else { return };
        let Some(fd) = p.out.as_ref().map(|f| f.as_raw_fd()) else { return };
        let mut buf = [0u8; 4096];
        loop {
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                let room = MAX_OUTPUT.saturating_sub(p.output.len());
                p.output.extend_from_slice(&buf[..(n as usize).min(room)]);
                continue;
            }
            let e = std::io::Error::last_os_error().kind();
            if n < 0 && e == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n == 0 || e != std::io::ErrorKind::WouldBlock {
                p.out = None;
            }
            return;
        }
    }

    /// Whether `pid` is this check's running probe.
    pub fn owns(&self, pid: i32) -> bool {
        self.probe.as_ref().is_some_and(|p| p.pid == pid)
    }

    /// A reaped child: `true` if it was the probe, whose result is recorded.
    pub fn on_reaped(&mut self, pid: i32, code: i32) -> bool {
        if self.probe.as_ref().is_none_or(|p| p.pid != pid) {
            return false;
        }
        self.read_output();
        let Some(p) = self.probe.take() else { return false };
        // What the probe left behind in its group (a backgrounded child) goes too.
        kill_group(p.pid);
        let (code, output) = if p.timed_out {
            (-1, format!("Health check exceeded timeout ({})", go_duration(self.check.timeout)))
        } else {
            (code, String::from_utf8_lossy(&p.output).into_owned())
        };
        self.record(Entry { start: p.start, end: crate::sys::now_rfc3339(), code, output });
        true
    }

    /// Docker's rules: success is healthy; a failure counts unless the
    /// container is still starting within its start period.
    fn record(&mut self, e: Entry) {
        if e.code == 0 {
            self.streak = 0;
            self.oks += 1;
            if self.oks >= self.check.successes {
                self.status = "healthy";
            }
        } else if !(self.status == "starting" && self.started.elapsed() < self.check.start_period) {
            self.streak += 1;
            self.oks = 0;
            if self.streak >= self.check.retries {
                self.kill_now = self.check.kill && self.status != "unhealthy";
                self.status = "unhealthy";
            }
        }
        self.log.push(e);
        if self.log.len() > MAX_LOG {
            self.log.remove(0);
        }
        // Kubernetes: a startup probe stops once it has succeeded.
        let done = self.check.name == "startup" && self.status == "healthy";
        self.next = (!done).then(|| Instant::now() + self.interval());
        self.write();
    }

    /// `health.json`, replaced atomically (write + rename).
    pub fn write(&self) {
        let mut body = format!("{{\"Status\":\"{}\",\"FailingStreak\":{},\"Log\":[", self.status, self.streak);
        for (i, e) in self.log.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                "{{\"Start\":\"{}\",\"End\":\"{}\",\"ExitCode\":{},\"Output\":\"{}\"}}",
                e.start,
                e.end,
                e.code,
                crate::event::json_escape(&e.output)
            ));
        }
        body.push_str("]}\n");
        let tmp = self.file.with_file_name(format!(".{}.json.tmp", self.check.name));
        if std::fs::write(&tmp, body).is_ok() {
            let _ = std::fs::rename(&tmp, &self.file);
        }
    }
}

fn kill_group(pgid: i32) {
    if pgid > 0 {
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// `30s`, `1.5s`, `200ms`, as Go prints a `time.Duration` (enough of it).
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(retries: u32, start_period: Duration) -> Check {
        Check {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            start_period,
            start_interval: Duration::from_millis(100),
            retries,
            ..Check::docker("health")
        }
    }

    fn entry(code: i32) -> Entry {
        Entry { start: String::new(), end: String::new(), code, output: "x\"y\n".into() }
    }

    #[test]
    fn streaks_statuses_and_the_start_period() {
        let dir = std::env::temp_dir().join(format!("wharf-monitor-health-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut h = Health::new(check(2, Duration::ZERO), &dir);
        h.record(entry(1));
        assert_eq!((h.status, h.streak), ("starting", 1));
        h.record(entry(1));
        assert_eq!((h.status, h.streak), ("unhealthy", 2));
        h.record(entry(0));
        assert_eq!((h.status, h.streak), ("healthy", 0));
        for _ in 0..6 {
            h.record(entry(1));
        }
        assert_eq!(h.log.len(), 5);
        let text = std::fs::read_to_string(dir.join("health.json")).unwrap();
        assert!(text.starts_with("{\"Status\":\"unhealthy\",\"FailingStreak\":6,\"Log\":[{"), "{text}");
        assert!(text.contains("\"Output\":\"x\\\"y\\u000a\""), "{text}");
        // Failures within the start period do not count while starting.
        let mut h = Health::new(check(1, Duration::from_secs(60)), &dir);
        h.record(entry(1));
        assert_eq!((h.status, h.streak), ("starting", 0));
        assert_eq!(h.interval(), Duration::from_millis(100));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn kubernetes_probes_kill_once_and_count_successes() {
        let dir = std::env::temp_dir().join(format!("wharf-monitor-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let live = Check { name: "liveness".into(), kill: true, ..check(2, Duration::ZERO) };
        let mut h = Health::new(live, &dir);
        h.record(entry(1));
        assert!(!h.take_kill());
        h.record(entry(1));
        assert!(h.take_kill(), "the second failure turns it unhealthy: kill");
        h.record(entry(1));
        assert!(!h.take_kill(), "one kill per turn to unhealthy");
        assert!(dir.join("liveness.json").exists());
        let ready = Check { name: "readiness".into(), successes: 2, ..check(1, Duration::ZERO) };
        let mut h = Health::new(ready, &dir);
        h.record(entry(0));
        assert_eq!(h.status, "starting");
        h.record(entry(0));
        assert_eq!(h.status, "healthy");
        let mut s = Health::new(Check { name: "startup".into(), ..check(1, Duration::ZERO) }, &dir);
        assert!(s.holds_others());
        s.record(entry(0));
        assert!(!s.holds_others());
        assert_eq!(s.next, None, "a startup probe stops once it succeeded");
        let c = Check { test: vec!["HTTP-GET".into(), "".into(), "80".into(), "/".into()], ..check(1, Duration::ZERO) };
        assert!(c.is_net());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn argv_and_durations() {
        assert_eq!(check(1, Duration::ZERO).argv(), ["/bin/sh", "-c", "true"]);
        let c = Check { test: vec!["CMD".into(), "a".into(), "b".into()], ..check(1, Duration::ZERO) };
        assert_eq!(c.argv(), ["a", "b"]);
        assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
