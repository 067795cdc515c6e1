//! Spawning a container's monitor (`wharf-monitor`, next to the `wharf`
//! binary) and learning whether it created the container.

use super::Containers;
use crate::error::{Error, Result};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) struct Spawn<'a> {
    pub containers: &'a Containers,
    pub id: &'a str,
    pub dir: &'a Path,
    pub log: &'a Path,
    pub tty: bool,
    pub stdin: bool,
    pub start: bool,
    pub restart: &'a str,
    pub restart_count: u32,
    pub log_opts: &'a [String],
    pub health: Option<&'a crate::health::Healthcheck>,
    /// Kubernetes probes, each after `--health-name ROLE`.
    pub probes: &'a [crate::health::Probe],
    /// `[first, max, reset after]` ms of the restart back-off.
    pub backoff: Option<[u64; 3]>,
    /// Locks (and held ports) the monitor keeps for the container's life.
    pub fds: Vec<OwnedFd>,
    /// The stop signal and grace period (s) of a probe's kill.
    pub stop: (i32, u64),
    /// A runtime other than wharf-runtime (its binary and state root).
    pub oci: Option<super::oci::Oci>,
}

/// A helper binary: `$WHARF_<NAME>` if set, else next to this executable,
/// else on PATH.
pub(crate) fn helper(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent) {
        let p = dir.join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// `--log-opt max-size=10m` / `max-file=3`, checked as Docker does, and
/// `max-line-size=16k` (the CRI's: longer lines are split into `P`
/// records; none by default): (size, files, line size), 0 for no limit.
pub(crate) fn log_limits(opts: &[String]) -> Result<(u64, u32, u64)> {
    let (mut size, mut files, mut line) = (0u64, 1u32, 0u64);
    for o in opts {
        match o.split_once('=') {
            Some(("max-size", v)) => size = crate::spec::parse_bytes(v)? as u64,
            Some(("max-line-size", v)) => line = crate::spec::parse_bytes(v)? as u64,
            Some(("max-file", v)) => {
                files = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    Error::InvalidArgument(format!("invalid value for max-file: {v}: must be a positive number"))
                })?
            }
            _ => return Err(Error::InvalidArgument(format!("unknown log opt '{o}' for the log driver"))),
        }
    }
    if files > 1 && size == 0 {
        return Err(Error::InvalidArgument("max-file cannot be set without max-size".into()));
    }
    Ok((size, files, line))
}

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub(crate) fn check_restart(p: &str) -> Result<()> {
    let ok = match p.split_once(':') {
        None => ["no", "always", "unless-stopped", "on-failure"].contains(&p),
        Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
        Some((_, _)) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!("invalid restart policy '{p}'")))
    }
}

/// The check with Docker's defaults filled in: the monitor knows no defaults.
fn health_args(cmd: &mut Command, h: &crate::health::Healthcheck) {
    for t in &h.test {
        cmd.arg("--health-test").arg(t);
    }
    cmd.arg("--health-interval-ns").arg(h.interval_ns().to_string());
    cmd.arg("--health-timeout-ns").arg(h.timeout_ns().to_string());
    cmd.arg("--health-start-period-ns").arg(h.start_period.to_string());
    cmd.arg("--health-start-interval-ns").arg(h.start_interval_ns().to_string());
    cmd.arg("--health-retries").arg(h.retries_or_default().to_string());
}

/// A Kubernetes probe: a new check named after its role.
fn probe_args(cmd: &mut Command, p: &crate::health::Probe) {
    cmd.arg("--health-name").arg(&p.role);
    for t in p.test() {
        cmd.arg("--health-test").arg(t);
    }
    cmd.arg("--health-interval-ns").arg(p.period_ns.to_string());
    cmd.arg("--health-timeout-ns").arg(p.timeout_ns.to_string());
    cmd.arg("--health-initial-delay-ns").arg(p.initial_delay_ns.to_string());
    cmd.arg("--health-retries").arg(p.failure_threshold.to_string());
    cmd.arg("--health-successes").arg(p.success_threshold.to_string());
    if p.role != "readiness" {
        cmd.arg("--health-kill");
    }
}

/// Spawns the monitor; returns the container's init pid once created.
pub(crate) fn spawn(s: Spawn<'_>) -> Result<i32> {
    let cs = s.containers;
    let (size, files, line) = log_limits(s.log_opts)?;
    let socket = cs.socket(s.id);
    let (runtime, state_root) = match &s.oci {
        Some(o) => (o.bin.clone(), o.root.clone()),
        None => (helper("wharf-runtime", "WHARF_RUNTIME_BIN"), cs.state_root()),
    };
    for d in [socket.parent(), Some(state_root.as_path())].into_iter().flatten() {
        std::fs::create_dir_all(d).map_err(|e| Error::io(format!("create {}", d.display()), e))?;
    }
    let (sync_r, sync_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::io("pipe", e.into()))?;
    let mut sync_r = std::fs::File::from(sync_r);
    let mut cmd = Command::new(helper("wharf-monitor", "WHARF_MONITOR"));
    cmd.arg("--id").arg(s.id);
    cmd.arg("--runtime").arg(&runtime);
    cmd.arg("--state-root").arg(&state_root).arg("--bundle").arg(s.dir).arg("--dir").arg(s.dir);
    cmd.arg("--log").arg(s.log).arg("--socket").arg(&socket);
    if s.tty {
        let console = cs.run_root.join("console");
        std::fs::create_dir_all(&console).map_err(|e| Error::io(format!("create {}", console.display()), e))?;
        cmd.arg("--console-socket").arg(console.join(format!("{}.sock", &s.id[..12])));
    }
    if s.stdin {
        cmd.arg("--stdin");
    }
    if s.start {
        cmd.arg("--start");
    }
    cmd.arg("--restart").arg(s.restart).arg("--restart-count").arg(s.restart_count.to_string());
    cmd.arg("--log-max-size").arg(size.to_string()).arg("--log-max-file").arg(files.to_string());
    if line > 0 {
        cmd.arg("--log-max-line").arg(line.to_string());
    }
    if let Some(h) = s.health {
        health_args(&mut cmd, h);
    }
    for p in s.probes {
        probe_args(&mut cmd, p);
    }
    if !s.probes.is_empty() {
        cmd.arg("--kill-signal").arg(s.stop.0.to_string());
        cmd.arg("--kill-grace-ms").arg((s.stop.1.saturating_mul(1000)).to_string());
    }
    if let Some([first, max, reset]) = s.backoff {
        cmd.arg("--restart-delay-ms").arg(first.to_string());
        cmd.arg("--restart-max-delay-ms").arg(max.to_string());
        cmd.arg("--restart-reset-ms").arg(reset.to_string());
    }
    let wharf = std::env::current_exe().map_err(|e| Error::io("find the wharf binary", e))?;
    let exit = [
        wharf.to_string_lossy().into_owned(),
        "--root".into(),
        cs.root.to_string_lossy().into_owned(),
        "--run-root".into(),
        cs.run_root.to_string_lossy().into_owned(),
        "container".into(),
        "cleanup".into(),
        s.id.to_string(),
    ];
    for a in exit {
        cmd.arg("--exit-cmd").arg(a);
    }
    // The inherited fds, at 3, 4, … in the monitor.
    let mut raw: Vec<i32> = vec![sync_w.as_raw_fd()];
    raw.extend(s.fds.iter().map(|f| f.as_raw_fd()));
    cmd.arg("--sync-fd").arg("3");
    for i in 1..raw.len() {
        cmd.arg("--keep-fd").arg((3 + i).to_string());
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    unsafe {
        cmd.pre_exec(move || {
            // Out of the way first, so no target number clobbers a source.
            let high: Vec<i32> = raw.iter().map(|&fd| libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 64)).collect();
            for (i, &fd) in high.iter().enumerate() {
                if fd < 0 || libc::dup2(fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child =
        cmd.spawn().map_err(|e| Error::io(format!("run {}", helper("wharf-monitor", "WHARF_MONITOR").display()), e))?;
    drop(sync_w);
    drop(cmd);
    // It daemonizes: this child exits at once.
    let _ = child.wait();
    let mut answer = String::new();
    let _ = sync_r.read_to_string(&mut answer);
    drop(s.fds);
    match answer.trim().split_once(' ') {
        Some(("ok", pid)) => pid.parse().map_err(|_| Error::Monitor(format!("bad answer {answer:?}"))),
        Some(("err", msg)) => Err(Error::Monitor(msg.to_string())),
        _ => Err(Error::Monitor("the monitor died before creating the container".into())),
    }
}
