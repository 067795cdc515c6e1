//! `run`: create + start (+ wait + delete unless `--detach`/`--keep`);
//! exits with the container's status.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};

use super::{need_id, parse_create, Args, Global};
use wharf_runtime::{Container, ExitStatus, Result};

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Signals sent to `run` go to the container, as runc's `run` does.
fn forward_signals(pid: i32) {
    CHILD.store(pid, Ordering::Relaxed);
    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH] {
        // SAFETY: installing a handler that only calls kill.
        unsafe { libc::signal(s, forward as *const () as libc::sighandler_t) };
    }
}

pub(crate) fn run(g: &Global, p: &mut Args) -> Result<i32> {
    let mut f = parse_create(p, true)?;
    f.opts.systemd_cgroup = g.systemd_cgroup;
    let id = need_id(std::mem::take(&mut f.ids))?;
    let bundle = f.bundle.take().unwrap_or_else(|| PathBuf::from("."));
    // No other process will `start` it: skip the exec fifo.
    f.opts.exec_fifo = false;
    f.opts.hold_until_start = false;
    let mut c = Container::create(&g.root, &id, &bundle, &f.opts)?;
    if let Err(e) = c.start() {
        let _ = Container::load(&g.root, &id).and_then(|c| c.delete(true));
        return Err(e);
    }
    if f.detach {
        return Ok(0);
    }
    forward_signals(c.pid());
    let status = c.wait()?;
    if status == ExitStatus::Signaled(libc::SIGKILL) && c.stats().is_ok_and(|s| s.oom_kills > 0) {
        eprintln!("wharf-runtime: container {id} was killed by the kernel OOM killer (memory limit reached)");
    }
    if !f.keep {
        c.delete(true)?;
    }
    Ok(status.code())
}
