//! `exec`: a new process in a running container, through the runtime
//! library in this process (as `runc exec`): the container's namespaces,
//! cgroup, capabilities and seccomp filter, plus the user's overrides.
//!
//! [`Containers::exec`] relays the caller's own terminal or stdio (the
//! CLI); [`Containers::exec_spawn`] gives the process descriptors the
//! caller chose, or a pty whose master it returns (a server such as
//! `wharf cri`, which relays them itself).

use super::record::Container;
use super::tty::Console;
use super::Containers;
use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub privileged: bool,
}

/// The stdio of a process started by [`Containers::exec_spawn`].
#[derive(Debug)]
pub enum ExecIo {
    /// stdin, stdout, stderr (pipe ends, `/dev/null`, sockets…).
    Fds([OwnedFd; 3]),
    /// A new pty: the process's controlling terminal and stdio, of
    /// `size` (rows, columns) from the start.
    Tty { size: Option<(u16, u16)> },
}

/// A process started by [`Containers::exec_spawn`]; a child of this process.
#[derive(Debug)]
pub struct Spawned {
    /// The process in the container (wharf-runtime), or the runtime
    /// binary's `exec` (runc, crun) that waits for it.
    pub pid: i32,
    /// The pty master ([`ExecIo::Tty`]): read the output, write the input, resize it.
    pub pty: Option<OwnedFd>,
    /// A runtime binary's `--pid-file`: the pid of the process in the
    /// container once it started. Removed on drop.
    pid_file: Option<PathBuf>,
}

impl Spawned {
    /// Waits for the process; its exit code (128+N for signal N).
    pub fn wait(&self) -> Result<i32> {
        let p = wharf_runtime::exec::ExecProcess { pid: self.pid };
        Ok(p.wait()?.code())
    }

    /// SIGKILL to the process in the container. Through a runtime binary,
    /// that is the pid its `exec` wrote (killing the `exec` itself would
    /// leave the process running, as a child of the container's init);
    /// the `exec`, if it has not written it yet. Call it before the
    /// process was reaped ([`Spawned::wait`]).
    pub fn kill(&self) {
        let inner = self.pid_file.as_ref().and_then(|f| std::fs::read_to_string(f).ok());
        let pid = inner.and_then(|s| s.trim().parse::<i32>().ok()).filter(|p| *p > 0).unwrap_or(self.pid);
        // SAFETY: kill(2) of a pid: the exec process (our child, not yet
        // reaped) or the one it runs, which it has not reaped either while
        // it waits for it in the foreground.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(f) = &self.pid_file {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// A fresh path for a runtime binary's `exec --pid-file` in the container's dir.
fn exec_pid_file(dir: &Path) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!(".exec-{}-{n}.pid", std::process::id()))
}

impl Containers {
    /// Runs `r.cmd` in `c`; its exit code (0 at once with `detach`).
    pub fn exec(&self, c: &Container, r: &ExecRequest) -> Result<i32> {
        let (rt, p) = self.exec_process(c, r)?;
        let console = if r.tty { Some(Console::listen(&self.run_root, c.id())?) } else { None };
        if !r.interactive || r.detach {
            let null = std::fs::File::open("/dev/null").map_err(|e| Error::io("open /dev/null", e))?;
            rustix::stdio::dup2_stdin(&null).map_err(|e| Error::io("redirect stdin", e.into()))?;
        }
        let opts = wharf_runtime::ExecOptions {
            process: p,
            console_socket: console.as_ref().map(|c| c.path().to_path_buf()),
            pid_file: None,
            preserve_fds: 0,
            stdio: None,
        };
        let proc = self.run_exec(c, rt.as_ref(), &opts)?;
        let relay = match &console {
            Some(con) if !r.detach => Some(con.attach(r.interactive)?),
            _ => None,
        };
        if r.detach {
            return Ok(0);
        }
        let status = proc.wait()?;
        drop(relay);
        Ok(status.code())
    }

    /// Starts `r.cmd` in `c` on `io` and returns at once (`r.tty`,
    /// `r.interactive` and `r.detach` are not read: `io` says it all).
    /// Reap it with [`Spawned::wait`].
    pub fn exec_spawn(&self, c: &Container, r: &ExecRequest, io: ExecIo) -> Result<Spawned> {
        let (rt, mut p) = self.exec_process(c, r)?;
        let tty = matches!(io, ExecIo::Tty { .. });
        p.set_terminal(Some(tty));
        if let ExecIo::Tty { size: Some((rows, cols)) } = io {
            let b = wharf_runtime::oci_spec::runtime::BoxBuilder::default().height(rows).width(cols).build();
            p.set_console_size(b.ok());
        }
        let console = if tty { Some(Console::listen_unique(&self.run_root, c.id())?) } else { None };
        let pid_file = rt.is_none().then(|| exec_pid_file(&c.dir));
        let opts = wharf_runtime::ExecOptions {
            process: p,
            console_socket: console.as_ref().map(|c| c.path().to_path_buf()),
            pid_file: pid_file.clone(),
            preserve_fds: 0,
            stdio: match &io {
                ExecIo::Fds(f) => Some([f[0].as_raw_fd(), f[1].as_raw_fd(), f[2].as_raw_fd()]),
                ExecIo::Tty { .. } => None,
            },
        };
        let proc = self.run_exec(c, rt.as_ref(), &opts)?;
        drop(io);
        let mut spawned = Spawned { pid: proc.pid, pty: None, pid_file };
        if let Some(con) = &console {
            match con.receive() {
                Ok(m) => spawned.pty = Some(m),
                Err(e) => {
                    spawned.kill();
                    let _ = spawned.wait();
                    return Err(e);
                }
            }
        }
        Ok(spawned)
    }

    /// Starts `opts` through wharf-runtime's library (`rt`), or through the
    /// container's own runtime binary (runc, crun).
    fn run_exec(
        &self,
        c: &Container,
        rt: Option<&wharf_runtime::Container>,
        opts: &wharf_runtime::ExecOptions,
    ) -> Result<wharf_runtime::exec::ExecProcess> {
        if let Some(rt) = rt {
            return Ok(rt.exec(opts)?);
        }
        let oci = self.oci(&c.record).ok_or_else(|| Error::Conflict(format!("container {} is not running", c.id())))?;
        let pid =
            oci.exec(c.id(), &opts.process, opts.console_socket.as_deref(), opts.pid_file.as_deref(), opts.stdio)?;
        Ok(wharf_runtime::exec::ExecProcess { pid })
    }

    /// The checks of an exec and the process it runs, with `r`'s overrides;
    /// the runtime library's container (None: a runtime binary's).
    fn exec_process(
        &self,
        c: &Container,
        r: &ExecRequest,
    ) -> Result<(Option<wharf_runtime::Container>, wharf_runtime::oci_spec::runtime::Process)> {
        if !c.is_running() || c.status == super::Status::Restarting {
            return Err(Error::Conflict(format!("container {} is not running", c.id())));
        }
        if c.status == super::Status::Paused {
            return Err(Error::Conflict(format!("container {} is paused, unpause the container before exec", c.id())));
        }
        if r.cmd.is_empty() {
            return Err(Error::InvalidArgument("no command specified".into()));
        }
        let (rt, mut p) = if self.oci(&c.record).is_some() {
            let mut p = super::oci::bundle_process(&c.dir)?;
            p.set_args(Some(r.cmd.clone()));
            (None, p)
        } else {
            let rt = wharf_runtime::Container::load(&self.state_root(), c.id())
                .map_err(|_| Error::Conflict(format!("container {} is not running", c.id())))?;
            let p = wharf_runtime::exec::process_from_args(&rt, r.cmd.clone());
            (Some(rt), p)
        };
        let mut env = p.env().clone().unwrap_or_default();
        wharf_runtime::spec::merge_env(&mut env, &r.env);
        p.set_env(Some(env));
        if let Some(w) = &r.workdir {
            p.set_cwd(w.into());
        }
        if let Some(u) = &r.user {
            let (uid, gid, groups) = wharf_runtime::spec::resolve_user(&c.dir.join("merged"), u)?;
            let mut user = p.user().clone();
            user.set_uid(uid);
            user.set_gid(gid);
            user.set_additional_gids(Some(groups));
            p.set_user(user);
        }
        p.set_terminal(Some(r.tty));
        Ok((rt, p))
    }
}
