//! The monitor's command line, written by `wharf` (`container::monitor`).

use crate::health::Check;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    No,
    Always,
    UnlessStopped,
    OnFailure(Option<u32>),
}

#[derive(Debug)]
pub struct Args {
    pub id: String,
    pub runtime: PathBuf,
    pub state_root: PathBuf,
    pub bundle: PathBuf,
    /// The container's dir: `monitor.json`, `ctr.log`, `pid`, `runtime.log`.
    pub dir: PathBuf,
    pub log: PathBuf,
    pub socket: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub stdin: bool,
    pub start: bool,
    pub restart: Restart,
    pub restart_count: u32,
    pub log_max_size: u64,
    pub log_max_file: u32,
    /// Longer lines are split into `P` records (0: no limit).
    pub log_max_line: u64,
    pub systemd_cgroup: bool,
    pub exit_cmd: Vec<String>,
    pub sync_fd: Option<RawFd>,
    pub keep_fds: Vec<RawFd>,
    /// The checks: Docker's (`--health-test` words, durations in ns), then
    /// Kubernetes probes, each begun by `--health-name ROLE`.
    pub health: Vec<Check>,
    /// The restart back-off: first delay, at most, reset after this long up.
    pub restart_delay: Duration,
    pub restart_max_delay: Duration,
    pub restart_reset: Duration,
    /// A probe's kill (liveness, startup): this signal (the container's
    /// stop signal), then SIGKILL after the grace period, as the kubelet.
    pub kill_signal: i32,
    pub kill_grace: Duration,
}

impl Args {
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut a = Args {
            id: String::new(),
            runtime: PathBuf::new(),
            state_root: PathBuf::new(),
            bundle: PathBuf::new(),
            dir: PathBuf::new(),
            log: PathBuf::new(),
            socket: PathBuf::new(),
            console_socket: None,
            stdin: false,
            start: false,
            restart: Restart::No,
            restart_count: 0,
            log_max_size: 0,
            log_max_file: 1,
            log_max_line: 0,
            systemd_cgroup: false,
            exit_cmd: Vec::new(),
            sync_fd: None,
            keep_fds: Vec::new(),
            health: Vec::new(),
            restart_delay: Duration::from_millis(100),
            restart_max_delay: Duration::from_secs(60),
            restart_reset: Duration::from_secs(10),
            kill_signal: libc::SIGTERM,
            kill_grace: Duration::from_secs(30),
        };
        let mut check = Check::docker("health");
        while let Some(flag) = it.next() {
            let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            let num = |v: String| v.parse::<u64>().map_err(|_| format!("{flag}: not a number: {v}"));
            match flag.as_str() {
                "--id" => a.id = val()?,
                "--runtime" => a.runtime = val()?.into(),
                "--state-root" => a.state_root = val()?.into(),
                "--bundle" => a.bundle = val()?.into(),
                "--dir" => a.dir = val()?.into(),
                "--log" => a.log = val()?.into(),
                "--socket" => a.socket = val()?.into(),
                "--console-socket" => a.console_socket = Some(val()?.into()),
                "--stdin" => a.stdin = true,
                "--start" => a.start = true,
                "--systemd-cgroup" => a.systemd_cgroup = true,
                "--restart" => a.restart = parse_restart(&val()?)?,
                "--restart-count" => a.restart_count = num(val()?)? as u32,
                "--log-max-size" => a.log_max_size = num(val()?)?,
                "--log-max-file" => a.log_max_file = num(val()?)? as u32,
                "--log-max-line" => a.log_max_line = num(val()?)?,
                "--exit-cmd" => a.exit_cmd.push(val()?),
                "--sync-fd" => a.sync_fd = Some(num(val()?)? as RawFd),
                "--keep-fd" => a.keep_fds.push(num(val()?)? as RawFd),
                "--health-test" => check.test.push(val()?),
                "--health-interval-ns" => check.interval = Duration::from_nanos(num(val()?)?),
                "--health-timeout-ns" => check.timeout = Duration::from_nanos(num(val()?)?),
                "--health-start-period-ns" => check.start_period = Duration::from_nanos(num(val()?)?),
                "--health-start-interval-ns" => check.start_interval = Duration::from_nanos(num(val()?)?),
                "--health-retries" => check.retries = num(val()?)? as u32,
                "--health-name" => {
                    let next = Check::docker(&val()?);
                    let done = std::mem::replace(&mut check, next);
                    if !done.argv().is_empty() {
                        a.health.push(done);
                    }
                }
                "--health-initial-delay-ns" => check.initial_delay = Duration::from_nanos(num(val()?)?),
                "--health-successes" => check.successes = (num(val()?)? as u32).max(1),
                "--health-kill" => check.kill = true,
                "--restart-delay-ms" => a.restart_delay = Duration::from_millis(num(val()?)?),
                "--restart-max-delay-ms" => a.restart_max_delay = Duration::from_millis(num(val()?)?),
                "--restart-reset-ms" => a.restart_reset = Duration::from_millis(num(val()?)?),
                "--kill-signal" => a.kill_signal = num(val()?)? as i32,
                "--kill-grace-ms" => a.kill_grace = Duration::from_millis(num(val()?)?),
                other => return Err(format!("unknown flag {other}")),
            }
        }
        if a.id.is_empty() || a.runtime.as_os_str().is_empty() || a.dir.as_os_str().is_empty() {
            return Err("--id, --runtime and --dir are required".into());
        }
        if !check.argv().is_empty() {
            a.health.push(check);
        }
        Ok(a)
    }
}

fn parse_restart(s: &str) -> Result<Restart, String> {
    Ok(match s.split_once(':') {
        None if s == "no" => Restart::No,
        None if s == "always" => Restart::Always,
        None if s == "unless-stopped" => Restart::UnlessStopped,
        None if s == "on-failure" => Restart::OnFailure(None),
        Some(("on-failure", n)) => Restart::OnFailure(Some(n.parse().map_err(|_| format!("bad restart count {n}"))?)),
        _ => return Err(format!("unknown restart policy {s}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Args {
        let base = ["--id", "x", "--runtime", "/r", "--dir", "/d"];
        Args::parse(base.iter().chain(extra).map(|s| s.to_string())).unwrap()
    }

    #[test]
    fn probes_and_back_off() {
        let a = parse(&[
            "--health-test",
            "CMD-SHELL",
            "--health-test",
            "true",
            "--health-name",
            "liveness",
            "--health-test",
            "TCP",
            "--health-test",
            "",
            "--health-test",
            "80",
            "--health-kill",
            "--health-initial-delay-ns",
            "5",
            "--health-name",
            "readiness",
            "--health-test",
            "CMD",
            "--health-test",
            "ls",
            "--health-successes",
            "2",
            "--restart-delay-ms",
            "10000",
            "--restart-max-delay-ms",
            "300000",
            "--restart-reset-ms",
            "600000",
        ]);
        let names: Vec<&str> = a.health.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["health", "liveness", "readiness"]);
        assert!(a.health[1].kill && a.health[1].is_net());
        assert_eq!(a.health[1].initial_delay, Duration::from_nanos(5));
        assert_eq!((a.health[2].successes, a.health[2].kill), (2, false));
        assert_eq!(a.restart_delay, Duration::from_secs(10));
        assert_eq!(a.restart_max_delay, Duration::from_secs(300));
        assert_eq!(a.restart_reset, Duration::from_secs(600));
        // Docker's back-off when not told.
        let d = parse(&[]);
        assert_eq!((d.restart_delay, d.restart_reset), (Duration::from_millis(100), Duration::from_secs(10)));
        assert!(d.health.is_empty());
    }
}
