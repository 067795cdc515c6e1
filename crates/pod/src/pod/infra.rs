//! The infra process: `wharf-infra` (src/bin/wharf-infra.rs) started into
//! the pod's pinned namespaces and its cgroup, holding `infra.lock` (fd 3)
//! for its whole life. It forks once: the child is the infra (PID 1 of a
//! new pid namespace with `--share pid`), the parent records the child's
//! host pid in `infra.pid` and exits, so this process reaps it at once and
//! the infra is nobody's child.

use super::record::{self, PodRecord, INFRA_LOCK, INFRA_PID};
use super::Pods;
use crate::error::{Error, Result};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the infra unless it runs; its host pid.
pub(crate) fn start(pods: &Pods, rec: &PodRecord) -> Result<i32> {
    let dir = pods.dir(&rec.id);
    let Some(lock) = try_lock(&dir.join(INFRA_LOCK))? else {
        return wait_pid(&dir);
    };
    let _ = std::fs::remove_file(dir.join(INFRA_PID));
    let cg = wharf_runtime::cgroups::create(Some(Path::new(&super::setup::infra_cgroup(&rec.id))), &rec.id, false)?;
    let mut cmd = Command::new(crate::container::helper("wharf-infra", "WHARF_INFRA"));
    cmd.arg("--pid-file").arg(dir.join(INFRA_PID));
    for (t, p) in &rec.namespaces {
        cmd.arg(format!("--{t}")).arg(p);
    }
    if rec.options.share.pid {
        cmd.arg("--new-pid");
    }
    for (_, d) in &cg.record().paths {
        cmd.arg("--cgroup").arg(d);
    }
    let fd = lock.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; fd 3 is the lock, inherited (no CLOEXEC).
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| Error::io("start the infra process (wharf-infra)", e))?;
    let status = child.wait().map_err(|e| Error::io("wait for wharf-infra", e))?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    drop(lock);
    if !status.success() {
        return Err(Error::Monitor(format!("the infra process of pod {} failed: {}", rec.name, err.trim())));
    }
    wait_pid(&dir)
}

/// The live infra's pid (it writes `infra.pid` before it lets go).
fn wait_pid(dir: &Path) -> Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = record::infra_state(dir, true);
        if s.running && s.pid > 0 {
            return Ok(s.pid);
        }
        if !s.running || Instant::now() > deadline {
            return Err(Error::Conflict(format!("the infra process of {} did not start", dir.display())));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Signals the infra (if it runs) and waits up to `grace` for it to let go
/// of its lock, then SIGKILL.
pub(crate) fn stop(dir: &Path, signal: i32, grace: Duration) -> Result<()> {
    let s = record::infra_state(dir, true);
    if !s.running || s.pid <= 0 {
        return Ok(());
    }
    send(s.pid, signal)?;
    if wait_free(dir, grace) {
        return Ok(());
    }
    let _ = send(s.pid, libc::SIGKILL);
    if wait_free(dir, Duration::from_secs(10)) {
        Ok(())
    } else {
        Err(Error::Conflict(format!("the infra process {} does not exit", s.pid)))
    }
}

fn send(pid: i32, sig: i32) -> Result<()> {
    // SAFETY: a plain syscall.
    if unsafe { libc::kill(pid, sig) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(Error::io(format!("kill {pid}"), e));
        }
    }
    Ok(())
}

fn wait_free(dir: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while record::held(dir, INFRA_LOCK) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// `path` (made if missing) locked exclusively without waiting; None if held.
fn try_lock(path: &Path) -> Result<Option<std::fs::File>> {
    use rustix::fs::{flock, FlockOperation};
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| record::io("open", path, e))?;
    match flock(&f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(f)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(record::io("lock", path, e.into())),
    }
}
