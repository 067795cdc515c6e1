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
    pub systemd_cgroup: bool,
    pub exit_cmd: Vec<String>,
    pub sync_fd: Option<RawFd>,
    pub keep_fds: Vec<RawFd>,
    /// The health check (`--health-test` words, durations in ns).
    pub health: Option<Check>,
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
            systemd_cgroup: false,
            exit_cmd: Vec::new(),
            sync_fd: None,
            keep_fds: Vec::new(),
            health: None,
        };
        let mut check = Check {
            test: Vec::new(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            start_period: Duration::ZERO,
            start_interval: Duration::from_secs(5),
            retries: 3,
        };
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
                "--exit-cmd" => a.exit_cmd.push(val()?),
                "--sync-fd" => a.sync_fd = Some(num(val()?)? as RawFd),
                "--keep-fd" => a.keep_fds.push(num(val()?)? as RawFd),
                "--health-test" => check.test.push(val()?),
                "--health-interval-ns" => check.interval = Duration::from_nanos(num(val()?)?),
                "--health-timeout-ns" => check.timeout = Duration::from_nanos(num(val()?)?),
                "--health-start-period-ns" => check.start_period = Duration::from_nanos(num(val()?)?),
                "--health-start-interval-ns" => check.start_interval = Duration::from_nanos(num(val()?)?),
                "--health-retries" => check.retries = num(val()?)? as u32,
                other => return Err(format!("unknown flag {other}")),
            }
        }
        if a.id.is_empty() || a.runtime.as_os_str().is_empty() || a.dir.as_os_str().is_empty() {
            return Err("--id, --runtime and --dir are required".into());
        }
        if !check.argv().is_empty() {
            a.health = Some(check);
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
