//! The infra process: `wharf-infra` (src/bin/wharf-infra.rs) started into
//! the pod's pinned namespaces and its cgroup, holding `infra.lock` (fd 3)
//! for its whole life. It forks once: the child is the infra (PID 1 of a
//! new pid namespace with `--share pid`), the parent records the child's
//! host pid in `infra.pid` and exits, so this process reaps it at once and
//! the infra is nobody's child.
//!
//! The infra holds the pod's published host ports (bound sockets inherited
//! from here, as podman's infra conmon holds them) for as long as it runs,
//! and its pid namespace (`--share pid`) is bind-mounted at
//! `<run-root>/pods/<id>/ns/pid` each time it starts: the one path every
//! member's spec names, so that a member restarted by its monitor joins the
//! live infra's namespace, not a dead one's.

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
        let pid = wait_pid(&dir)?;
        // Started by a wharf that did not pin it: pinned now.
        if rec.options.share.pid && !pid_ns_path(&pods.run_dir(&rec.id)).exists() {
            pin_pid_ns(&pods.run_dir(&rec.id), pid)?;
        }
        return Ok(pid);
    };
    let _ = std::fs::remove_file(dir.join(INFRA_PID));
    let _ = std::fs::remove_file(dir.join(record::INFRA_PAUSED));
    let ports = hold_ports(pods, &rec.id)?;
    let cg = wharf_runtime::cgroups::create(Some(Path::new(&super::setup::infra_cgroup(rec))), &rec.id, false)?;
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
    let port_fds: Vec<i32> = ports.iter().map(|p| p.as_raw_fd()).collect();
    // SAFETY: dup2 and fcntl are async-signal-safe; fd 3 is the lock and the
    // port sockets keep their numbers (opened after the lock: above 3), all
    // inherited (no CLOEXEC).
    unsafe {
        cmd.pre_exec(move || {
            let dup = if fd == 3 { libc::fcntl(fd, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
            if dup < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for p in &port_fds {
                if libc::fcntl(*p, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
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
    drop((lock, ports));
    if !status.success() {
        return Err(Error::Monitor(format!("the infra process of pod {} failed: {}", rec.name, err.trim())));
    }
    let pid = wait_pid(&dir)?;
    if rec.options.share.pid {
        pin_pid_ns(&pods.run_dir(&rec.id), pid)?;
    }
    Ok(pid)
}

/// The pod's published host ports bound again (their numbers as CNI ADD
/// published them), for the infra to hold: a clear error if a host program
/// took one meanwhile.
fn hold_ports(pods: &Pods, id: &str) -> Result<Vec<std::os::fd::OwnedFd>> {
    use crate::network::record as net;
    let Some(r) = net::load(&net::dir(&pods.run_root, id)) else { return Ok(Vec::new()) };
    let mut maps: Vec<_> = r.networks.iter().flat_map(|e| e.ports.iter().cloned()).collect();
    crate::network::ports::reserve(&mut maps)
}

/// Where the infra's pid namespace is pinned (`--share pid`).
pub(crate) fn pid_ns_path(run_dir: &Path) -> std::path::PathBuf {
    run_dir.join("ns").join("pid")
}

/// Binds `/proc/<pid>/ns/pid` at [`pid_ns_path`], replacing the namespace
/// of an earlier infra.
fn pin_pid_ns(run_dir: &Path, pid: i32) -> Result<()> {
    let p = pid_ns_path(run_dir);
    unpin_pid_ns(run_dir)?;
    std::fs::create_dir_all(run_dir.join("ns")).map_err(|e| record::io("create", &run_dir.join("ns"), e))?;
    std::fs::File::create(&p).map_err(|e| record::io("create", &p, e))?;
    rustix::mount::mount_bind(format!("/proc/{pid}/ns/pid"), &p)
        .map_err(|e| Error::io(format!("pin the pid namespace of the infra at {}", p.display()), e.into()))
}

/// Unmounts [`pid_ns_path`] (every stacked mount) and removes the file.
pub(crate) fn unpin_pid_ns(run_dir: &Path) -> Result<()> {
    let p = pid_ns_path(run_dir);
    loop {
        match rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) => continue,
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => break,
            Err(e) => return Err(Error::io(format!("unmount {}", p.display()), e.into())),
        }
    }
    let _ = std::fs::remove_file(&p);
    Ok(())
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
    // A frozen (v1) process takes no signal, not even SIGKILL, until thawed.
    if dir.join(record::INFRA_PAUSED).exists() {
        let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        set_frozen(dir, &id, false)?;
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

/// Freezes or thaws the infra's cgroup (`pod pause`/`unpause`); the
/// `infra.paused` marker says so to `pod ls`.
pub(crate) fn set_frozen(dir: &Path, id: &str, frozen: bool) -> Result<()> {
    let rec = record::load_record(dir).map_err(|_| Error::NoSuchPod(id.to_string()))?;
    let cg = wharf_runtime::cgroups::create(Some(Path::new(&super::setup::infra_cgroup(&rec))), id, false)?;
    cg.set_frozen(frozen)?;
    let marker = dir.join(record::INFRA_PAUSED);
    if frozen {
        std::fs::write(&marker, b"").map_err(|e| record::io("write", &marker, e))
    } else {
        match std::fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(record::io("remove", &marker, e)),
            _ => Ok(()),
        }
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
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| record::io("open", path, e))?;
    // `pod ls`'s and the CRI stats' passing shared locks are waited out.
    match crate::flock::try_exclusive(&f, path) {
        Ok(true) => Ok(Some(f)),
        Ok(false) => Ok(None),
        Err(e) => Err(record::io("lock", path, e)),
    }
}
