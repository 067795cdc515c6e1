//! OCI hooks: run with the state JSON on stdin, killed after `timeout`.

use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;

use crate::error::{Error, Result};
use crate::state::OciState;

/// Runs `hooks` in order; the first failure stops the rest.
pub(crate) fn run_all(kind: &'static str, hooks: &[Hook], state: &OciState) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).map_err(|e| Error::io("encode state", e.into()))?;
    for h in hooks {
        run_one(kind, h, &json)?;
    }
    Ok(())
}

/// Runs every hook in `hooks`, logging each failure as a warning: the spec
/// says a failing poststart or poststop hook is logged and the remaining
/// hooks and the lifecycle go on as if it had succeeded.
pub(crate) fn run_all_warn(kind: &'static str, hooks: &[Hook], state: &OciState) {
    if hooks.is_empty() {
        return;
    }
    let json = match serde_json::to_vec(state) {
        Ok(j) => j,
        Err(e) => return crate::log::warn(&format!("{kind} hooks: encode state: {e}")),
    };
    for h in hooks {
        if let Err(e) = run_one(kind, h, &json) {
            crate::log::warn(&format!("{e}"));
        }
    }
}

fn run_one(kind: &'static str, h: &Hook, state: &[u8]) -> Result<()> {
    let fail = |reason: String| Error::Hook { kind, path: h.path().clone(), reason };
    let mut cmd = Command::new(h.path());
    let args = h.args().as_deref().unwrap_or_default();
    if let Some(a0) = args.first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(a0);
        cmd.args(&args[1..]);
    }
    cmd.env_clear();
    for e in h.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(format!("start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that ignores stdin may close it early: not an error.
        let _ = stdin.write_all(state);
    }
    let timeout = h.timeout().filter(|&t| t > 0).map(|t| Duration::from_secs(t as u64));
    let status = match timeout {
        None => child.wait().map_err(|e| fail(format!("wait: {e}")))?,
        Some(t) => wait_timeout(&mut child, t).map_err(fail)?,
    };
    if !status.success() {
        return Err(fail(format!("exited with {status}")));
    }
    Ok(())
}

fn wait_timeout(child: &mut std::process::Child, t: Duration) -> Result<std::process::ExitStatus, String> {
    let pidfd = crate::sys::pidfd_open(child.id() as i32).map_err(|e| format!("pidfd: {e}"))?;
    let deadline = Instant::now() + t;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s and was killed", t.as_secs()));
        }
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
            Ok(n) if n > 0 => return child.wait().map_err(|e| format!("wait: {e}")),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
    }
}
