//! `exec`: a new process inside a running container, joining every one of
//! its namespaces and its cgroup.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::container::{Container, ExitStatus};
use crate::error::{Context, Error, Result};
use crate::namespaces;
use crate::state::Status;
use crate::sync::{Channel, Msg};

/// What to run and how.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Descriptors for the process's stdin, stdout and stderr (without a
    /// console); `None`: it inherits the caller's.
    pub stdio: Option<[RawFd; 3]>,
}

/// A process started by [`Container::exec`].
#[derive(Debug)]
pub struct ExecProcess {
    pub pid: i32,
}

impl ExecProcess {
    /// Waits for the process (it is the caller's child).
    pub fn wait(&self) -> Result<ExitStatus> {
        use nix::sys::wait::{waitpid, WaitStatus};
        loop {
            match waitpid(Pid::from_raw(self.pid), None) {
                Ok(WaitStatus::Exited(_, c)) => return Ok(ExitStatus::Exited(c)),
                Ok(WaitStatus::Signaled(_, s, _)) => return Ok(ExitStatus::Signaled(s as i32)),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("wait for exec process", e)),
            }
        }
    }
}

/// The spec's process with `args` and extras, as runc builds an exec process.
pub fn process_from_args(c: &Container, args: Vec<String>) -> Process {
    let mut p = c.record().process.clone().unwrap_or_default();
    p.set_args(Some(args));
    p.set_terminal(Some(false));
    p
}

/// `exec --cap`: adds each capability to all five sets, as runc does.
pub fn add_capabilities(p: &mut Process, caps: &[oci_spec::runtime::Capability]) {
    let mut c = p.capabilities().clone().unwrap_or_else(empty_caps);
    let add = |s: &Option<oci_spec::runtime::Capabilities>| {
        let mut s = s.clone().unwrap_or_default();
        s.extend(caps.iter().copied());
        Some(s)
    };
    c.set_bounding(add(c.bounding()));
    c.set_effective(add(c.effective()));
    c.set_inheritable(add(c.inheritable()));
    c.set_permitted(add(c.permitted()));
    c.set_ambient(add(c.ambient()));
    p.set_capabilities(Some(c));
}

fn empty_caps() -> oci_spec::runtime::LinuxCapabilities {
    // LinuxCapabilities::default() is runc's three caps, not an empty set.
    let mut c = oci_spec::runtime::LinuxCapabilities::default();
    c.set_bounding(None);
    c.set_effective(None);
    c.set_inheritable(None);
    c.set_permitted(None);
    c.set_ambient(None);
    c
}

impl Container {
    /// Starts `opts.process` inside the container.
    pub fn exec(&self, opts: &ExecOptions) -> Result<ExecProcess> {
        let s = self.status();
        if !matches!(s, Status::Running | Status::Created) {
            return Err(Error::InvalidState { id: self.id().to_string(), state: s.to_string(), op: "exec" });
        }
        crate::security::check_lsm(&oci_spec::runtime::Spec::default(), &opts.process)?;
        let seccomp = crate::seccomp::compile_cached(self.record().seccomp.as_ref(), self.store_root())?;
        let caps = opts.process.capabilities().as_ref().map(crate::caps::CapSets::from_spec);
        let ns_fds = open_namespaces(self.pid(), &self.record().namespaces)?;
        let placement = self.cgroup()?.placement()?;
        let (parent_end, child_end) = Channel::pair().ctx(|| "socketpair")?;
        let console = opts.console_socket.as_deref().map(crate::console::connect).transpose()?;
        let args = ExecArgs {
            ns: &ns_fds,
            chan: &child_end,
            process: &opts.process,
            console: console.as_ref().map(|c| c.as_raw_fd()),
            stdio: opts.stdio,
            preserve_fds: opts.preserve_fds,
            in_userns: self.record().namespaces.iter().any(|n| n == "user"),
            chroot: (!self.record().namespaces.iter().any(|n| n == "mnt")).then(|| self.record().rootfs.clone()),
            placement,
            caps,
            seccomp,
        };
        // SAFETY: as in create: the child runs only exec code and _exits.
        let mid = match unsafe { nix::unistd::fork() }.ctx(|| "fork")? {
            nix::unistd::ForkResult::Child => {
                drop(parent_end);
                exec_intermediate(&args)
            }
            nix::unistd::ForkResult::Parent { child } => child.as_raw(),
        };
        drop(child_end);
        drop(console);
        let r = self.drive_exec(&parent_end);
        let _ = nix::sys::wait::waitpid(Pid::from_raw(mid), None);
        let pid = r?;
        if let Some(p) = &opts.pid_file {
            crate::create::write_pid_file(p, pid)?;
        }
        Ok(ExecProcess { pid })
    }

    fn drive_exec(&self, chan: &Channel) -> Result<i32> {
        let mut pid = 0;
        loop {
            match chan.recv().ctx(|| "sync with exec process")? {
                Some(Msg::Pid(p)) => pid = p,
                Some(Msg::Ready) => {}
                Some(Msg::Error(e)) => {
                    if pid > 0 {
                        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
                    }
                    return Err(Error::Init(e));
                }
                Some(m) => return Err(Error::Init(format!("unexpected message {m:?}"))),
                // EOF: the process exec'd (the channel is close-on-exec).
                None if pid > 0 => return Ok(pid),
                None => return Err(Error::Init("exec process exited during setup".into())),
            }
        }
    }
}

struct ExecArgs<'a> {
    ns: &'a [(LinuxNamespaceType, OwnedFd)],
    chan: &'a Channel,
    process: &'a Process,
    console: Option<RawFd>,
    stdio: Option<[RawFd; 3]>,
    preserve_fds: u32,
    in_userns: bool,
    /// A container without a mount namespace lives chrooted in its rootfs.
    chroot: Option<PathBuf>,
    placement: crate::cgroups::Placement,
    caps: Option<crate::caps::CapSets>,
    seccomp: Option<crate::seccomp::Filter>,
}

/// Opened up front: after joining the mount namespace /proc may differ.
fn open_namespaces(pid: i32, names: &[String]) -> Result<Vec<(LinuxNamespaceType, OwnedFd)>> {
    let mut out = Vec::new();
    for n in names {
        let Some(t) = namespaces::from_proc_name(n) else { continue };
        let p = format!("/proc/{pid}/ns/{}", namespaces::proc_name(t));
        let f = std::fs::File::open(&p).ctx(|| format!("open {p}"))?;
        out.push((t, OwnedFd::from(f)));
    }
    Ok(out)
}

fn exec_intermediate(a: &ExecArgs) -> ! {
    let code = match exec_intermediate_steps(a) {
        Ok(()) => 0,
        Err(e) => {
            let _ = a.chan.send(&Msg::Error(e.to_string()));
            1
        }
    };
    // SAFETY: leave without running destructors of the parent's state.
    unsafe { libc::_exit(code) }
}

fn exec_intermediate_steps(a: &ExecArgs) -> Result<()> {
    // Join the cgroup first: the process (and what it forks) is counted from the start.
    a.placement.join_all_self()?;
    let order = |t: &LinuxNamespaceType| match t {
        LinuxNamespaceType::User => 2,
        LinuxNamespaceType::Mount => 1,
        _ => 0,
    };
    let mut ns: Vec<&(LinuxNamespaceType, OwnedFd)> = a.ns.iter().collect();
    ns.sort_by_key(|(t, _)| order(t));
    for (t, fd) in ns {
        nix::sched::setns(fd, namespaces::flag(*t)).ctx(|| format!("join {} namespace", namespaces::proc_name(*t)))?;
    }
    let pid = crate::init::clone_child(CloneFlags::empty(), None, true)?;
    if pid == 0 {
        exec_child(a);
    }
    a.chan.send(&Msg::Pid(pid)).ctx(|| "sync")
}

fn exec_child(a: &ExecArgs) -> ! {
    let e = match exec_child_steps(a) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = a.chan.send(&Msg::Error(e.to_string()));
    // SAFETY: see exec_intermediate.
    unsafe { libc::_exit(127) }
}

enum Never {}

fn exec_child_steps(a: &ExecArgs) -> Result<Never> {
    let p = a.process;
    // We run the runtime binary inside the container's pid namespace until execve.
    crate::sys::set_non_dumpable().ctx(|| "prctl PR_SET_DUMPABLE")?;
    if let Some(fd) = a.console {
        let size = p.console_size().map(|b| (b.height() as u16, b.width() as u16));
        crate::console::setup_pty(fd, size)?;
    } else if p.terminal() == Some(true) {
        return Err(Error::InvalidArgument("terminal requested but no --console-socket given".into()));
    } else if let Some(fds) = a.stdio {
        for (target, fd) in fds.into_iter().enumerate() {
            // SAFETY: dup2 onto stdio in the child, before exec.
            if unsafe { libc::dup2(fd, target as i32) } < 0 {
                return Err(Error::sys(format!("set up stdio fd {target}"), nix::errno::Errno::last()));
            }
        }
    }
    crate::process::set_rlimits(p)?;
    crate::security::set_io_priority(p)?;
    crate::security::set_scheduler(p)?;
    if let Some(root) = &a.chroot {
        nix::unistd::chroot(root.as_path()).ctx(|| format!("chroot into {}", root.display()))?;
    }
    nix::unistd::chdir(p.cwd().as_path()).ctx(|| format!("chdir to {}", p.cwd().display()))?;
    crate::process::set_umask(p);
    let exe = crate::process::resolve_exe(p)?;
    a.chan.send(&Msg::Ready).ctx(|| "sync")?;
    let v = crate::process::Privileges {
        caps: a.caps,
        seccomp: a.seccomp.as_ref(),
        setgroups: !a.in_userns,
        preserve_fds: a.preserve_fds,
    };
    Err(crate::process::drop_privileges_and_exec(&exe, p, &v))
}
