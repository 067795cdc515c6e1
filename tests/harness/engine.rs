//! Containers that outlive the CLI, driven through the `wharf` binary: a
//! temp store with busybox as `bb`, waits on container state, a pty for
//! `-it`, and the check that nothing of any container is left.

use super::leaks::{cgroups_named, entries, iptables_rules, network_leaks, processes_mentioning};
use super::{busybox_tar, mounts_under, TestStore};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A store with busybox imported as `bb` (CMD sh, EXPOSE 80), the host's
/// iptables rules from before, and the container IDs seen so far.
pub struct Engine {
    pub s: TestStore,
    /// `iptables-save` from before the test.
    pub iptables_before: String,
    seen: Mutex<BTreeSet<String>>,
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `f` every 20 ms until it is true; panics with `what` after `secs`.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A name no other test (or run of this one) uses.
pub fn unique(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

/// SIGKILL of a process this test started (or a monitor of its store), by pid.
pub fn kill9(pid: i32) {
    // SAFETY: kill(2) on a pid this test owns.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Self {
        let s = TestStore::new();
        let iptables_before = iptables_rules();
        let tar = busybox_tar(s.dir.path());
        s.ok([
            "import".as_ref(),
            tar.as_os_str(),
            "-c".as_ref(),
            "CMD [\"/bin/sh\"]".as_ref(),
            "-c".as_ref(),
            "EXPOSE 80".as_ref(),
            "bb".as_ref(),
        ]);
        Engine { s, iptables_before, seen: Mutex::new(BTreeSet::new()) }
    }

    pub fn run_root(&self) -> PathBuf {
        self.s.dir.path().join("run")
    }

    /// `wharf ARGS`, remembering every container that exists afterwards.
    pub fn wharf(&self, args: &[&str]) -> Output {
        let o = self.s.run(args);
        self.remember();
        o
    }

    /// `wharf ARGS`, which must succeed; its stdout, trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.wharf(args);
        assert!(o.status.success(), "wharf {args:?} failed ({:?}): {}{}", o.status, stderr(&o), stdout(&o));
        stdout(&o).trim().to_string()
    }

    /// Records the IDs of every container that has a dir now.
    pub fn remember(&self) {
        let ids = entries(&self.s.root.join("containers"));
        self.seen.lock().unwrap().extend(ids.into_iter().filter(|i| i.len() == 64));
    }

    /// Every container ID seen so far.
    pub fn ids(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().cloned().collect()
    }

    /// `inspect -f TEMPLATE NAME`.
    pub fn inspect(&self, name: &str, tpl: &str) -> String {
        self.ok(&["inspect", "-f", tpl, name])
    }

    pub fn status(&self, name: &str) -> String {
        self.inspect(name, "{{.State.Status}}")
    }

    /// The container's dir: `<root>/containers/<id>`.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.s.root.join("containers").join(self.inspect(name, "{{.Id}}"))
    }

    /// The pid in `monitor.json`'s `key` (`Pid`, `MonitorPid`).
    pub fn monitor_pid(&self, name: &str, key: &str) -> i32 {
        let bytes = std::fs::read(self.dir(name).join("monitor.json")).expect("monitor.json");
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v[key].as_i64().unwrap_or(0) as i32
    }

    pub fn wait_status(&self, name: &str, want: &str, secs: u64) {
        wait_for(secs, &format!("{name} to be {want}"), || self.status(name) == want);
    }

    /// Runs `cmd` inside `name` and returns its stdout.
    pub fn exec(&self, name: &str, cmd: &[&str]) -> String {
        let mut a = vec!["exec", name];
        a.extend_from_slice(cmd);
        self.ok(&a)
    }

    /// Removes every container (`rm -f -v`), then asserts nothing is left.
    pub fn clean_up(&self) {
        self.remember();
        let ids = self.ok(&["ps", "-a", "-q", "--no-trunc"]);
        if !ids.is_empty() {
            let mut a = vec!["rm", "-f", "-v"];
            a.extend(ids.lines());
            self.ok(&a);
        }
        self.assert_no_leaks();
    }

    /// No container dir, mount, process, cgroup, runtime state, attach
    /// socket or network resource of any container this test saw.
    pub fn assert_no_leaks(&self) {
        let dir = self.s.dir.path();
        let run = self.run_root();
        assert_eq!(mounts_under(dir), Vec::<String>::new(), "mounts left");
        // The monitors' and containers' command lines, cwds and roots name the temp dir.
        let marker = dir.to_string_lossy().into_owned();
        let t = Instant::now();
        while !processes_mentioning(&marker).is_empty() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(processes_mentioning(&marker), Vec::<String>::new(), "processes left");
        let ids: Vec<String> = self.seen.lock().unwrap().iter().cloned().collect();
        for id in &ids {
            assert_eq!(cgroups_named("/wharf", id), Vec::<PathBuf>::new(), "cgroups left");
        }
        for d in [self.s.root.join("containers"), run.join("runtime"), run.join("attach")] {
            assert_eq!(entries(&d), Vec::<String>::new(), "{} is not empty", d.display());
        }
        assert_eq!(entries(&self.s.root.join("names")), Vec::<String>::new(), "names left");
        assert_eq!(
            network_leaks(&self.s.root, &run, &ids, &self.iptables_before),
            Vec::<String>::new(),
            "network state left"
        );
    }
}

impl Drop for Engine {
    /// A failed test still ends its containers (by their monitors' and
    /// inits' pids), so its networks can go with the store.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for id in entries(&self.s.root.join("containers")) {
            let p = self.s.root.join("containers").join(&id).join("monitor.json");
            let Ok(bytes) = std::fs::read(p) else { continue };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
            for k in ["MonitorPid", "Pid"] {
                if let Some(pid) = v[k].as_i64().filter(|p| *p > 0) {
                    kill9(pid as i32);
                }
            }
        }
        let _ = self.s.run(
            ["rm", "-f", "-v"].into_iter().chain(entries(&self.s.root.join("containers")).iter().map(String::as_str)),
        );
    }
}

/// A session on a pseudo-terminal (python3's pty module drives it): what
/// the test types goes in, what the terminal shows comes out.
pub struct Pty {
    child: std::process::Child,
}

/// The python side: forks `argv` on a pty; copies our stdin to it and its
/// output to our stdout; exits with its status.
const PTY_PY: &str = r#"
import os, pty, sys, select
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
inp = sys.stdin.fileno()
open_in = True
while True:
    r, _, _ = select.select([fd] + ([inp] if open_in else []), [], [])
    if fd in r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            break
        os.write(1, data)
    if open_in and inp in r:
        data = os.read(inp, 65536)
        if not data:
            open_in = False
        else:
            os.write(fd, data)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) & 255)
"#;

impl Pty {
    /// `wharf ARGS` on a new pty.
    pub fn spawn(e: &Engine, args: &[&str]) -> Pty {
        use std::process::{Command, Stdio};
        let wharf = super::bin("wharf");
        let mut argv: Vec<String> = vec![
            wharf.to_string_lossy().into_owned(),
            "--root".into(),
            e.s.root.to_string_lossy().into_owned(),
            "--run-root".into(),
            e.run_root().to_string_lossy().into_owned(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        let child = Command::new(super::require_tool("python3"))
            .arg("-c")
            .arg(PTY_PY)
            .args(&argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Pty { child }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let w = self.child.stdin.as_mut().unwrap();
        w.write_all(bytes).unwrap();
        w.flush().unwrap();
    }

    /// Reads the terminal until `word` shows (panics after `secs`); all read.
    pub fn read_until(&mut self, word: &str, secs: u64) -> String {
        use std::io::Read;
        let out = self.child.stdout.as_mut().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(out);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !String::from_utf8_lossy(&seen).contains(word) {
            let left = deadline.saturating_duration_since(Instant::now()).as_millis() as i32;
            assert!(left > 0, "the terminal never showed {word:?}: {:?}", String::from_utf8_lossy(&seen));
            let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut p, 1, left) } <= 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            match out.read(&mut buf) {
                Ok(0) | Err(_) => panic!("the terminal closed before {word:?}: {:?}", String::from_utf8_lossy(&seen)),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// Waits for the end (at most `secs`); its exit code and the rest of the output.
    pub fn finish(mut self, secs: u64) -> (Option<i32>, String) {
        drop(self.child.stdin.take());
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let o = self.child.wait_with_output().unwrap();
                return (st.code(), stdout(&o) + &stderr(&o));
            }
            if t.elapsed() > Duration::from_secs(secs) {
                let _ = self.child.kill();
                let o = self.child.wait_with_output().unwrap();
                panic!("the pty session did not end: {}{}", stdout(&o), stderr(&o));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
