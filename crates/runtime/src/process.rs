//! The last steps before the user process runs, shared by the container init
//! and `exec`: rlimits, oom score, umask, user and groups, cwd, exec.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};

use crate::error::{Context, Error, Result};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Applies `process.rlimits`; raising a hard limit needs CAP_SYS_RESOURCE,
/// which gets its own message rather than a bare EPERM.
pub(crate) fn set_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let lim = libc::rlimit { rlim_cur: r.soft(), rlim_max: r.hard() };
        // SAFETY: `lim` is a valid rlimit struct.
        if unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) } != 0 {
            let e = std::io::Error::last_os_error();
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                " (raising a hard limit needs CAP_SYS_RESOURCE, which this runtime lacks)"
            } else {
                ""
            };
            return Err(Error::InvalidArgument(format!(
                "cannot set rlimit {} to soft={} hard={}: {e}{hint}",
                r.typ(),
                r.soft(),
                r.hard()
            )));
        }
    }
    Ok(())
}

pub(crate) fn set_oom_score_adj(p: &Process) -> Result<()> {
    let Some(v) = p.oom_score_adj() else { return Ok(()) };
    std::fs::write("/proc/self/oom_score_adj", v.to_string()).map_err(|e| {
        let hint = if v < 0 && e.raw_os_error() == Some(libc::EACCES) {
            " (a negative value needs CAP_SYS_RESOURCE, which this runtime lacks)"
        } else {
            ""
        };
        Error::InvalidArgument(format!("cannot set oomScoreAdj to {v}: {e}{hint}"))
    })
}

/// Switches to the spec's uid/gid and supplementary groups.
pub(crate) fn set_user(p: &Process, setgroups_allowed: bool) -> Result<()> {
    let u = p.user();
    if setgroups_allowed {
        let gids: Vec<Gid> = u.additional_gids().iter().flatten().map(|&g| Gid::from_raw(g)).collect();
        nix::unistd::setgroups(&gids).ctx(|| "setgroups")?;
    }
    let g = Gid::from_raw(u.gid());
    nix::unistd::setresgid(g, g, g).ctx(|| format!("setgid {}", u.gid()))?;
    let uid = Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setuid {}", u.uid()))
}

pub(crate) fn set_umask(p: &Process) {
    let m = p.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
}

pub(crate) fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
}

/// Finds `args[0]` on the container's PATH, as execvp would, so that a
/// missing binary is reported by `create`, not after `start`.
pub(crate) fn resolve_exe(p: &Process) -> Result<PathBuf> {
    let args = p.args().as_deref().unwrap_or_default();
    let Some(a0) = args.first().filter(|a| !a.is_empty()) else {
        return Err(Error::InvalidArgument("process.args must not be empty".into()));
    };
    let env = p.env().as_deref().unwrap_or_default();
    if a0.contains('/') {
        let path = if Path::new(a0).is_absolute() { PathBuf::from(a0) } else { p.cwd().join(a0) };
        return check_exec(path);
    }
    let search = env_value(env, "PATH").unwrap_or(DEFAULT_PATH);
    for dir in search.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(a0);
        if let Ok(p) = check_exec(cand) {
            return Ok(p);
        }
    }
    Err(Error::InvalidArgument(format!("executable {a0:?} not found in $PATH ({search})")))
}

fn check_exec(path: PathBuf) -> Result<PathBuf> {
    let meta = std::fs::metadata(&path).ctx(|| format!("exec {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
        return Err(Error::InvalidArgument(format!("{} is not an executable file", path.display())));
    }
    Ok(path)
}

fn cstrings(v: &[String]) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| Error::InvalidArgument(format!("{s:?} contains NUL"))))
        .collect()
}

/// What the last steps before execve need, resolved before fork.
pub(crate) struct Privileges<'a> {
    pub caps: Option<crate::caps::CapSets>,
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    /// May call setgroups (not in a user namespace we joined without mapping rights).
    pub setgroups: bool,
    pub preserve_fds: u32,
}

/// Drops privileges and execs `exe`; returns only on failure.
pub(crate) fn drop_privileges_and_exec(exe: &Path, p: &Process, v: &Privileges) -> Error {
    match drop_privileges(p, v) {
        Ok(()) => seccomp_and_exec(exe, p, v),
        Err(e) => e,
    }
}

/// Every fallible step before the exec (labels, user, capabilities, the
/// seccomp filter when it cannot wait for no_new_privs), so that `create`
/// can report a failure (a capability the bounding set lacks) instead of an
/// init dying silently after `start` — runc's order.
pub(crate) fn drop_privileges(p: &Process, v: &Privileges) -> Result<()> {
    reset_signals();
    crate::security::set_exec_labels(p)?;
    if let Some(c) = &v.caps {
        c.apply_bounding()?;
        crate::caps::set_keep_caps(true)?;
    }
    set_user(p, v.setgroups)?;
    let nnp = p.no_new_privileges() == Some(true);
    if nnp {
        nix::sys::prctl::set_no_new_privs().ctx(|| "set no_new_privs")?;
    }
    crate::sys::cloexec_from(3 + v.preserve_fds);
    if let (Some(f), false) = (v.seccomp, nnp) {
        // Without no_new_privs loading a filter needs CAP_SYS_ADMIN: load it
        // before the capabilities are cut down.
        if v.caps.is_some() {
            crate::caps::raise_all_permitted()?;
        }
        load_seccomp(f, nnp)?;
    }
    match &v.caps {
        Some(c) => c.apply(),
        None => Ok(()),
    }
}

/// The last steps after [`drop_privileges`]: a seccomp filter under
/// no_new_privs goes on as late as possible, then the exec.
pub(crate) fn seccomp_and_exec(exe: &Path, p: &Process, v: &Privileges) -> Error {
    if let (Some(f), Some(true)) = (v.seccomp, p.no_new_privileges()) {
        if let Err(e) = load_seccomp(f, true) {
            return e;
        }
    }
    exec(exe, p)
}

/// The process starts as a freshly started program would: no signal ignored
/// and none blocked, as runc does. Ignored signals survive execve, and the
/// caller may ignore some (Rust's runtime ignores SIGPIPE, so `yes | head`
/// in a container would print "Broken pipe") or block others (a
/// signal-forwarding `wharf run`).
fn reset_signals() {
    // The kernel's struct sigaction (x86_64 and arm64 alike); raw
    // rt_sigaction because glibc's wrappers refuse the two real-time
    // signals it keeps for itself, which a caller may still have ignored.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: rt_sigaction with a valid struct and an 8-byte sigset.
            unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, &dfl as *const KernelSigaction, 0usize, 8usize) };
        }
    }
    let none: u64 = 0;
    // SAFETY: rt_sigprocmask with a valid 8-byte set.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &none as *const u64, 0usize, 8usize) };
}

fn load_seccomp(f: &crate::seccomp::Filter, nnp: bool) -> Result<()> {
    f.load().map_err(|e| match e {
        Error::Io { source, .. } if source.raw_os_error() == Some(libc::EACCES) && !nnp => Error::InvalidArgument(
            "loading a seccomp filter needs noNewPrivileges or CAP_SYS_ADMIN in the permitted set".into(),
        ),
        e => e,
    })
}

/// Replaces this process with the user process; returns only on failure.
pub(crate) fn exec(exe: &Path, p: &Process) -> Error {
    let args = match cstrings(p.args().as_deref().unwrap_or_default()) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let env = match cstrings(p.env().as_deref().unwrap_or_default()) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let exe_c = match crate::sys::cstr(exe) {
        Ok(c) => c,
        Err(e) => return Error::io("exec path", e),
    };
    match nix::unistd::execve(&exe_c, &args, &env) {
        Err(e) => Error::sys(format!("exec {}", exe.display()), e),
        Ok(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lookup_takes_last() {
        let env = vec!["A=1".to_string(), "PATH=/x".into(), "PATH=/y".into()];
        assert_eq!(env_value(&env, "PATH"), Some("/y"));
        assert_eq!(env_value(&env, "PAT"), None);
    }
}
