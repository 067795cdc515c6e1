//! A container whose OCI runtime is not wharf-runtime (a CRI runtime
//! handler's: runc, crun): every step goes through that binary's runc CLI,
//! with a state root of its own, `<run-root>/runtimes/<binary name>`.
//!
//! The monitor runs its `create`, `start` (the exec fifo in that state
//! root, as runc and crun keep it) and `delete --force` at a restart; this
//! module its `kill`, `pause`/`resume`, `exec`, `update` and
//! `delete --force` (stop, rm, the cleanup after an exit, the sweep).
//! Stats read the cgroup (`linux.cgroupsPath` of the bundle), whoever made
//! it. Containers of wharf-runtime go on through the runtime library.

use super::record::{self, Record};
use super::Containers;
use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use wharf_runtime::oci_spec::runtime::{LinuxResources, Process, Spec};

/// A runtime binary and the state root it is run with.
#[derive(Debug, Clone)]
pub(crate) struct Oci {
    pub bin: PathBuf,
    pub root: PathBuf,
}

impl Containers {
    /// `rec`'s runtime when it is not wharf-runtime.
    pub(crate) fn oci(&self, rec: &Record) -> Option<Oci> {
        let bin = rec.options.runtime.clone()?;
        let name = bin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "oci".into());
        Some(Oci { root: self.run_root.join("runtimes").join(name), bin })
    }

    /// [`Containers::oci`] of the container `id` (from its record, if readable).
    pub(crate) fn oci_of_id(&self, id: &str) -> Option<Oci> {
        record::load_record(&self.dir(id)).ok().and_then(|r| self.oci(&r))
    }
}

impl Oci {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root);
        c
    }

    /// Runs `args`; its stderr as the error when it fails.
    fn run(&self, args: &[&str]) -> Result<()> {
        let out = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("run {}", self.bin.display()), e))?;
        if out.status.success() {
            return Ok(());
        }
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(Error::OciRuntime(format!("{} {}: {msg}", self.bin.display(), args.join(" "))))
    }

    pub fn kill(&self, id: &str, sig: i32, all: bool) -> Result<()> {
        let sig = sig.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, sig.as_str()]);
        self.run(&args)
    }

    pub fn set_paused(&self, id: &str, pause: bool) -> Result<()> {
        self.run(&[if pause { "pause" } else { "resume" }, id])
    }

    /// `delete --force`: its processes, cgroup and state; gone already is fine.
    pub fn delete(&self, id: &str) -> Result<()> {
        if !self.root.join(id).exists() {
            return Ok(());
        }
        self.run(&["delete", "--force", id])
    }

    /// `update --resources FILE` (FILE in the container's dir, removed after).
    pub fn update(&self, dir: &Path, id: &str, r: &LinuxResources) -> Result<()> {
        let f = dir.join(".update.json");
        let body = serde_json::to_vec(r).map_err(|e| Error::InvalidArgument(format!("resources: {e}")))?;
        std::fs::write(&f, body).map_err(|e| record::io("write", &f, e))?;
        let res = self.run(&["update", "--resources", &f.to_string_lossy(), id]);
        let _ = std::fs::remove_file(&f);
        res
    }

    /// `exec --process` in the foreground: its pid, our child, which exits
    /// with the process's code. The process JSON goes through a pipe (fd 3
    /// of the runtime), the pty master (if `console`) through the socket;
    /// the pid of the process in the container to `pid_file`.
    pub fn exec(
        &self,
        id: &str,
        p: &Process,
        console: Option<&Path>,
        pid_file: Option<&Path>,
        stdio: Option<[RawFd; 3]>,
    ) -> Result<i32> {
        let json = serde_json::to_vec(p).map_err(|e| Error::InvalidArgument(format!("process: {e}")))?;
        let (r, w) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::io("pipe", e.into()))?;
        let mut cmd = self.cmd();
        cmd.arg("exec").arg("--process").arg("/proc/self/fd/3");
        if let Some(s) = console {
            cmd.arg("--console-socket").arg(s);
        }
        if let Some(f) = pid_file {
            cmd.arg("--pid-file").arg(f);
        }
        cmd.arg(id);
        // None: inherited (or the pty's, with a console).
        if let Some(fds) = stdio {
            for (i, fd) in fds.iter().enumerate() {
                // SAFETY: the caller's open descriptor, borrowed for the dup.
                let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) };
                let s = Stdio::from(b.try_clone_to_owned().map_err(|e| Error::io("dup", e))?);
                match i {
                    0 => cmd.stdin(s),
                    1 => cmd.stdout(s),
                    _ => cmd.stderr(s),
                };
            }
        }
        let rfd = r.as_raw_fd();
        // SAFETY: dup2 and fcntl are async-signal-safe; a dup2 target has no
        // CLOEXEC, and fd 3 already being the pipe loses it by fcntl.
        unsafe {
            cmd.pre_exec(move || {
                let r = if rfd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(rfd, 3) };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| Error::io(format!("run {}", self.bin.display()), e))?;
        drop(r);
        // Written once it reads (the write end is ours alone: CLOEXEC), whatever its size.
        let mut wf = std::fs::File::from(w);
        if let Err(e) = std::io::Write::write_all(&mut wf, &json) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::io("write the exec process", e));
        }
        drop(wf);
        Ok(child.id() as i32)
    }
}

/// The process of the bundle's spec (what the container runs), for an exec.
pub(crate) fn bundle_process(dir: &Path) -> Result<Process> {
    let spec = Spec::load(dir.join("config.json"))
        .map_err(|e| Error::InvalidArgument(format!("the spec of {}: {e}", dir.display())))?;
    Ok(spec.process().clone().unwrap_or_default())
}

/// The bundle's `linux.cgroupsPath`.
pub(crate) fn bundle_cgroups_path(dir: &Path) -> Option<PathBuf> {
    let spec = Spec::load(dir.join("config.json")).ok()?;
    spec.linux().as_ref()?.cgroups_path().clone()
}
