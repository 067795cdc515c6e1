//! What runs in the forked processes during `create`.
//!
//! The runtime forks an *intermediate* process which joins namespaces given
//! by path, makes the user namespace (the runtime writes its id maps), then
//! clones the container *init* with CLONE_PARENT into the new namespaces, so
//! init is the runtime's own child. Init then runs the named steps of
//! [`init_steps`] and waits for `start`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Context, Error, Result};
use crate::namespaces::{self, NsPlan};
use crate::rootfs::{self, RootfsPlan};
use crate::sync::{Channel, Msg};

/// Everything the forked processes need; they inherit it through fork.
pub(crate) struct InitArgs<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub ns: &'a NsPlan,
    pub chan: &'a Channel,
    /// O_PATH descriptor of the exec fifo; `None` means wait for [`Msg::Start`].
    pub fifo: Option<&'a OwnedFd>,
    pub console: Option<RawFd>,
    /// stdin, stdout, stderr for the process when there is no console.
    pub stdio: Option<[RawFd; 3]>,
    pub cgroup_paths: &'a [(String, PathBuf)],
    pub placement: &'a crate::cgroups::Placement,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Wait for start (fifo or channel); `false` for `run`.
    pub hold: bool,
    /// The runtime has prestart/createRuntime hooks to run mid-setup.
    pub runtime_hooks: bool,
    pub preserve_fds: u32,
    pub caps: Option<crate::caps::CapSets>,
    pub seccomp: Option<&'a crate::seccomp::Filter>,
}

/// Entry point of the intermediate process; never returns.
pub(crate) fn intermediate(a: &InitArgs) -> ! {
    let code = match intermediate_steps(a) {
        Ok(()) => 0,
        Err(e) => {
            let _ = a.chan.send(&Msg::Error(e.to_string()));
            1
        }
    };
    // SAFETY: leave without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(code) }
}

fn intermediate_steps(a: &InitArgs) -> Result<()> {
    // In a user namespace we lose the right to move into host-owned cgroups.
    let in_userns = a.ns.has(LinuxNamespaceType::User);
    if in_userns {
        a.placement.join_all_self()?;
    } else {
        a.placement.join_v1_self()?;
    }
    join_namespaces(a.ns)?;
    if a.ns.new_user {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).ctx(|| "create user namespace")?;
        a.chan.send(&Msg::NeedIdMaps).ctx(|| "sync")?;
        a.chan.expect(Msg::IdMapsDone).map_err(Error::Init)?;
        become_root()?;
    }
    if a.ns.new_time {
        new_time_namespace(a.spec)?;
    }
    // The cgroup namespace is made by init once it sits in its cgroup:
    // clone3 places the child in the v2 cgroup only after namespaces are copied.
    let into = if in_userns { None } else { a.placement.v2_dir.as_ref() };
    let pid = clone_child(a.ns.new - CloneFlags::CLONE_NEWCGROUP, into, true)?;
    if pid == 0 {
        init(a);
    }
    a.chan.send(&Msg::Pid(pid)).ctx(|| "sync")
}

/// setns into every namespace given by path; the user namespace last, since
/// once inside it we no longer hold privileges over the host's namespaces.
fn join_namespaces(ns: &NsPlan) -> Result<()> {
    for (t, p) in ns.join.iter().filter(|(t, _)| *t != LinuxNamespaceType::User) {
        namespaces::join(*t, p)?;
    }
    for (t, p) in ns.join.iter().filter(|(t, _)| *t == LinuxNamespaceType::User) {
        namespaces::join(*t, p)?;
        become_root()?;
    }
    Ok(())
}

fn become_root() -> Result<()> {
    let (u, g) = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
    nix::unistd::setresgid(g, g, g).ctx(|| "setgid 0 in user namespace")?;
    nix::unistd::setresuid(u, u, u).ctx(|| "setuid 0 in user namespace")
}

fn new_time_namespace(spec: &Spec) -> Result<()> {
    nix::sched::unshare(namespaces::flag(LinuxNamespaceType::Time)).ctx(|| "create time namespace")?;
    let offsets = spec.linux().as_ref().and_then(|l| l.time_offsets().clone());
    let mut text = String::new();
    for (clock, off) in offsets.iter().flatten() {
        text.push_str(&format!("{clock} {} {}\n", off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0)));
    }
    if !text.is_empty() {
        std::fs::write("/proc/self/timens_offsets", text).ctx(|| "write time namespace offsets")?;
    }
    Ok(())
}

#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Clones a child that continues on a copy of our stack (fork-like), placed
/// straight into the v2 cgroup `into` if given. With `sibling` the child gets
/// our parent (CLONE_PARENT): the runtime, not a short-lived intermediate,
/// then reaps the container init.
/// Safe only in a process with exactly one thread (callers ensure it).
pub(crate) fn clone_child(flags: CloneFlags, into: Option<&OwnedFd>, sibling: bool) -> Result<i32> {
    let flags = if sibling { flags | CloneFlags::CLONE_PARENT } else { flags };
    if let Some(dir) = into {
        let args = CloneArgs {
            flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
            pidfd: 0,
            child_tid: 0,
            parent_tid: 0,
            // With CLONE_PARENT clone3 wants 0: the child inherits our exit
            // signal (SIGCHLD), which then goes to the runtime.
            exit_signal: if sibling { 0 } else { libc::SIGCHLD as u64 },
            stack: 0,
            stack_size: 0,
            tls: 0,
            set_tid: 0,
            set_tid_size: 0,
            cgroup: dir.as_raw_fd() as u64,
        };
        // SAFETY: a zero stack makes clone3 fork-like; `args` outlives the call.
        let pid =
            unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
        if pid >= 0 {
            return Ok(pid as i32);
        }
    }
    let f = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: a NULL stack makes clone behave like fork (the child continues
    // on a copy of our stack); the caller has exactly one thread.
    let pid = unsafe { libc::syscall(libc::SYS_clone, f, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(Error::io("clone container process", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        if let Some(dir) = into {
            // Kernels before 5.7 have no clone3: the child moves itself.
            let p = crate::sys::fd_path(dir).join("cgroup.procs");
            std::fs::write(&p, "0").ctx(|| format!("join cgroup {}", p.display()))?;
        }
    }
    Ok(pid as i32)
}

/// The runtime may clone init itself, skipping the intermediate process,
/// when nothing must happen between fork and clone: no namespace to join,
/// no user or time namespace to make, and a single-threaded caller.
pub(crate) fn can_clone_directly(ns: &NsPlan) -> bool {
    ns.join.is_empty() && !ns.new_user && !ns.new_time && crate::sys::single_threaded()
}

/// Clones the container init straight from the runtime; returns its pid.
pub(crate) fn spawn_direct(a: &InitArgs, runtime_end: RawFd) -> Result<i32> {
    let pid = clone_child(a.ns.new - CloneFlags::CLONE_NEWCGROUP, a.placement.v2_dir.as_ref(), false)?;
    if pid == 0 {
        // SAFETY: closing our copy of the runtime's end, so init sees EOF if the runtime dies.
        unsafe { libc::close(runtime_end) };
        if let Err(e) = a.placement.join_v1_self() {
            let _ = a.chan.send(&Msg::Error(e.to_string()));
            // SAFETY: leave without running the runtime's destructors.
            unsafe { libc::_exit(1) }
        }
        init(a);
    }
    Ok(pid)
}

/// Entry point of the container init; never returns.
fn init(a: &InitArgs) -> ! {
    let err = match init_steps(a) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if a.chan.send(&Msg::Error(err.to_string())).is_err() {
        eprintln!("wharf-runtime: container init: {err}");
    }
    // SAFETY: see intermediate().
    unsafe { libc::_exit(127) }
}

enum Never {}

fn init_steps(a: &InitArgs) -> Result<Never> {
    // In a user namespace /proc/self of a non-dumpable process belongs to
    // the host's root and our own setup writes there would fail; there it is
    // done just before handing over (see below).
    let in_userns = a.ns.has(LinuxNamespaceType::User);
    if !in_userns {
        crate::sys::set_non_dumpable().ctx(|| "prctl PR_SET_DUMPABLE")?;
    }
    // Device nodes and mount points get exactly the modes the spec asks for.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    if a.ns.new.contains(CloneFlags::CLONE_NEWCGROUP) {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).ctx(|| "create cgroup namespace")?;
    }
    set_hostname(a)?;
    if !a.no_new_keyring {
        new_session_keyring();
    }
    let plan = RootfsPlan {
        spec: a.spec,
        rootfs: a.rootfs,
        bundle: a.bundle,
        cgroup_paths: a.cgroup_paths,
        new_cgroupns: a.ns.new.contains(CloneFlags::CLONE_NEWCGROUP),
        in_userns: a.ns.has(LinuxNamespaceType::User),
        no_pivot: a.no_pivot,
    };
    // A mount namespace joined by path gets the same rootfs and pivot as a
    // new one (runc does the same); without any, the container shares the
    // runtime's mounts and only chroots into the rootfs.
    let mount_ns = a.ns.has(LinuxNamespaceType::Mount);
    if mount_ns {
        rootfs::prepare(&plan)?;
    }
    if a.runtime_hooks {
        a.chan.send(&Msg::RunHooks).ctx(|| "sync")?;
        a.chan.expect(Msg::HooksDone).map_err(Error::Init)?;
    }
    let hooks = a.spec.hooks().clone().unwrap_or_default();
    let state = container_state_for_hooks(a)?;
    crate::hooks::run_all("createContainer", hooks.create_container().as_deref().unwrap_or_default(), &state)?;
    if mount_ns {
        rootfs::enter(&plan)?;
    } else {
        rootfs::chroot_only(&plan)?;
    }
    set_sysctls(a.spec, a.ns)?;
    if mount_ns {
        rootfs::finish(&plan)?;
    }
    let process =
        a.spec.process().as_ref().ok_or_else(|| Error::InvalidArgument("config.json has no process".into()))?;
    prepare_process(a, process)?;
    let exe = crate::process::resolve_exe(process)?;
    if in_userns {
        crate::sys::set_non_dumpable().ctx(|| "prctl PR_SET_DUMPABLE")?;
    }
    let v = crate::process::Privileges {
        caps: a.caps,
        seccomp: a.seccomp,
        setgroups: !a.ns.has(LinuxNamespaceType::User) || a.ns.new_user,
        preserve_fds: a.preserve_fds,
    };
    // Before Ready: a failure here (capset, setuid) fails `create`.
    crate::process::drop_privileges(process, &v)?;
    a.chan.send(&Msg::Ready).ctx(|| "sync")?;
    if a.hold {
        wait_for_start(a)?;
    }
    crate::hooks::run_all("startContainer", hooks.start_container().as_deref().unwrap_or_default(), &state)?;
    Err(crate::process::seccomp_and_exec(&exe, process, &v))
}

/// The state the createContainer/startContainer hooks see: pid is ours.
fn container_state_for_hooks(a: &InitArgs) -> Result<crate::state::OciState> {
    Ok(crate::state::OciState {
        oci_version: a.spec.version().clone(),
        id: a.id.to_string(),
        status: crate::state::Status::Creating,
        pid: nix::unistd::getpid().as_raw(),
        bundle: a.bundle.to_path_buf(),
        rootfs: a.rootfs.to_path_buf(),
        created: String::new(),
        owner: String::new(),
        annotations: a.spec.annotations().clone().unwrap_or_default(),
    })
}

fn set_hostname(a: &InitArgs) -> Result<()> {
    let uts = a.ns.has(LinuxNamespaceType::Uts);
    for (what, v) in [("hostname", a.spec.hostname()), ("domainname", a.spec.domainname())] {
        let Some(v) = v.as_deref().filter(|v| !v.is_empty()) else { continue };
        if !uts {
            return Err(Error::InvalidArgument(format!("cannot set {what} without a UTS namespace")));
        }
        if what == "hostname" {
            nix::unistd::sethostname(v).ctx(|| "sethostname")?;
        } else {
            // SAFETY: pointer and length describe `v`.
            if unsafe { libc::setdomainname(v.as_ptr().cast(), v.len()) } != 0 {
                return Err(Error::io("setdomainname", std::io::Error::last_os_error()));
            }
        }
    }
    Ok(())
}

/// A fresh session keyring so containers do not share the host's keys.
fn new_session_keyring() {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: NULL name asks for an anonymous keyring; failure (ENOSYS, EPERM
    // under some seccomp policies) is harmless and ignored as runc does.
    unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0usize) };
}

fn set_sysctls(spec: &Spec, ns: &NsPlan) -> Result<()> {
    for (k, v) in spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()).into_iter().flatten() {
        if k.contains("..") || k.contains('/') {
            return Err(Error::InvalidArgument(format!("bad sysctl key {k:?}")));
        }
        match crate::spec::sysctl_namespace(k) {
            Some(t) if ns.has(t) => {}
            Some(t) => {
                return Err(Error::InvalidArgument(format!(
                    "sysctl {k} needs a private {} namespace",
                    namespaces::proc_name(t)
                )))
            }
            None => {
                return Err(Error::InvalidArgument(format!(
                    "sysctl {k} is not namespaced: setting it would change the host"
                )))
            }
        }
        let p = Path::new("/proc/sys").join(k.replace('.', "/"));
        std::fs::write(&p, v).ctx(|| format!("set sysctl {k}={v}"))?;
    }
    Ok(())
}

fn prepare_process(a: &InitArgs, p: &oci_spec::runtime::Process) -> Result<()> {
    if let Some(fd) = a.console {
        let size = p.console_size().map(|b| (b.height() as u16, b.width() as u16));
        crate::console::setup_pty(fd, size)?;
    } else if p.terminal() == Some(true) {
        return Err(Error::InvalidArgument("process.terminal is true but no --console-socket was given".into()));
    } else if let Some(fds) = a.stdio {
        for (target, fd) in fds.into_iter().enumerate() {
            // SAFETY: dup2 onto 0..2 of descriptors the caller keeps open.
            if fd != target as RawFd && unsafe { libc::dup2(fd, target as RawFd) } < 0 {
                return Err(Error::sys(format!("set up stdio fd {target}"), nix::errno::Errno::last()));
            }
        }
    }
    crate::process::set_rlimits(p)?;
    crate::process::set_oom_score_adj(p)?;
    crate::security::set_personality(a.spec)?;
    crate::security::set_io_priority(p)?;
    crate::security::set_scheduler(p)?;
    let cwd = p.cwd();
    if !cwd.is_absolute() {
        return Err(Error::InvalidArgument(format!("process.cwd {} is not absolute", cwd.display())));
    }
    if std::fs::metadata(cwd).is_err() {
        std::fs::create_dir_all(cwd).ctx(|| format!("create cwd {}", cwd.display()))?;
    }
    nix::unistd::chdir(cwd.as_path()).ctx(|| format!("chdir to cwd {}", cwd.display()))?;
    crate::process::set_umask(p);
    Ok(())
}

/// Blocks until `start`: on the exec fifo (another process runs `start`)
/// or on the sync channel (`run`, or a library caller holding the container).
fn wait_for_start(a: &InitArgs) -> Result<()> {
    match a.fifo {
        Some(fd) => {
            let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
            let f = std::fs::OpenOptions::new().write(true).open(&p).ctx(|| "open exec fifo")?;
            use std::io::Write;
            (&f).write_all(b"0").ctx(|| "write exec fifo")
        }
        None => a.chan.expect(Msg::Start).map_err(Error::Init),
    }
}
