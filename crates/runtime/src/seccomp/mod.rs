//! OCI `linux.seccomp` → a BPF program, compiled by libseccomp (it resolves
//! names per architecture and builds a binary-tree filter, as runc, crun and
//! youki use it) in the runtime *before* any process is forked, so a bad
//! profile is an error of `create` and the container process only has to
//! make one seccomp(2) call, the last thing before execve.

mod cache;
pub mod docker_default;
mod ffi;

use std::ffi::CString;
use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall};

use crate::error::{Error, Result};

/// A compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER).
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    prog: Vec<libc::sock_filter>,
    flags: u64,
}

const ACT_KILL_THREAD: u32 = 0x0000_0000;
const ACT_KILL_PROCESS: u32 = 0x8000_0000;
const ACT_TRAP: u32 = 0x0003_0000;
const ACT_ERRNO: u32 = 0x0005_0000;
const ACT_TRACE: u32 = 0x7ff0_0000;
const ACT_LOG: u32 = 0x7ffc_0000;
const ACT_ALLOW: u32 = 0x7fff_0000;

/// libseccomp's action value; `errno` is errnoRet (EPERM when absent, as runc).
fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<u32> {
    use LinuxSeccompAction::*;
    Ok(match a {
        ScmpActKill | ScmpActKillThread => ACT_KILL_THREAD,
        ScmpActKillProcess => ACT_KILL_PROCESS,
        ScmpActTrap => ACT_TRAP,
        ScmpActErrno => ACT_ERRNO | (errno.unwrap_or(libc::EPERM as u32) & 0xffff),
        ScmpActTrace => ACT_TRACE | (errno.unwrap_or(libc::EPERM as u32) & 0xffff),
        ScmpActLog => ACT_LOG,
        ScmpActAllow => ACT_ALLOW,
        ScmpActNotify => return Err(Error::Unsupported("seccomp action SCMP_ACT_NOTIFY (a seccomp agent) yet".into())),
    })
}

fn op(o: LinuxSeccompOperator) -> u32 {
    use LinuxSeccompOperator::*;
    match o {
        ScmpCmpNe => 1,
        ScmpCmpLt => 2,
        ScmpCmpLe => 3,
        ScmpCmpEq => 4,
        ScmpCmpGe => 5,
        ScmpCmpGt => 6,
        ScmpCmpMaskedEq => 7,
    }
}

fn flag(f: LinuxSeccompFilterFlag) -> u64 {
    match f {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
    }
}

fn bad(reason: String) -> Error {
    Error::InvalidArgument(format!("seccomp profile: {reason}"))
}

/// Owns a libseccomp context.
struct Ctx(ffi::Ctx);

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: the context came from seccomp_init and is released once.
        unsafe { ffi::seccomp_release(self.0) }
    }
}

/// Compiles `linux.seccomp`, or takes the program from the cache beside the
/// state root `cache_root` (Docker's profile costs ~13 ms to compile for x86_64 with its
/// x86 and x32 compat ABIs — twice a whole container start); `None` when
/// the spec has no profile.
pub(crate) fn compile_cached(s: Option<&LinuxSeccomp>, cache_root: &std::path::Path) -> Result<Option<Filter>> {
    let Some(s) = s else { return Ok(None) };
    let key = cache::key(s);
    if let Some(f) = key.as_deref().and_then(|k| cache::get(cache_root, k)) {
        return Ok(Some(f));
    }
    let f = compile(Some(s))?;
    if let (Some(k), Some(f)) = (key.as_deref(), f.as_ref()) {
        cache::put(cache_root, k, f);
    }
    Ok(f)
}

/// Compiles `linux.seccomp`; `None` when the spec has none.
// Cold: with the cache this runs once per profile.
#[cold]
pub(crate) fn compile(s: Option<&LinuxSeccomp>) -> Result<Option<Filter>> {
    let Some(s) = s else { return Ok(None) };
    if s.listener_path().is_some() {
        return Err(Error::Unsupported("seccomp listenerPath (a seccomp agent) yet".into()));
    }
    let default = action(s.default_action(), s.default_errno_ret())?;
    // SAFETY: plain constructor; NULL on a bad default action.
    let ctx = Ctx(unsafe { ffi::seccomp_init(default) });
    if ctx.0.is_null() {
        return Err(bad(format!("bad defaultAction {:?}", s.default_action())));
    }
    // We load the program ourselves; no_new_privs is the spec's business.
    // SAFETY (both): valid context, attribute ids from seccomp.h.
    unsafe { ffi::seccomp_attr_set(ctx.0, ffi::ATTR_CTL_NNP, 0) };
    // A binary tree of syscall numbers instead of a linear scan (libseccomp ≥ 2.5).
    unsafe { ffi::seccomp_attr_set(ctx.0, ffi::ATTR_CTL_OPTIMIZE, 2) };
    for a in s.architectures().iter().flatten() {
        // SAFETY: valid context; the token is an AUDIT_ARCH value.
        let rc = unsafe { ffi::seccomp_arch_add(ctx.0, *a as u32) };
        if rc != 0 && rc != -libc::EEXIST {
            return Err(bad(format!("architecture {a:?}: {}", std::io::Error::from_raw_os_error(-rc))));
        }
    }
    for sc in s.syscalls().iter().flatten() {
        add_rule(&ctx, sc, default)?;
    }
    let flags = s.flags().iter().flatten().fold(0, |f, &x| f | flag(x));
    Ok(Some(Filter { prog: export(&ctx)?, flags }))
}

/// Adds one `syscalls[]` entry for each of its names.
#[cold]
fn add_rule(ctx: &Ctx, sc: &LinuxSyscall, default: u32) -> Result<()> {
    let act = action(sc.action(), sc.errno_ret())?;
    // libseccomp refuses a rule that repeats the default action; it is a no-op anyway.
    if act == default {
        return Ok(());
    }
    let args: Vec<ffi::ArgCmp> = sc
        .args()
        .iter()
        .flatten()
        .map(|a| ffi::ArgCmp {
            arg: a.index() as u32,
            op: op(a.op()),
            datum_a: a.value(),
            datum_b: a.value_two().unwrap_or(0),
        })
        .collect();
    if let Some(a) = args.iter().find(|a| a.arg > 5) {
        return Err(bad(format!("argument index {} out of range (0-5)", a.arg)));
    }
    // libseccomp takes one comparison per argument in a rule; several on the
    // same argument become one rule each (an OR), as runc does.
    let repeated = args.iter().enumerate().any(|(i, a)| args[..i].iter().any(|b| b.arg == a.arg));
    let groups: Vec<&[ffi::ArgCmp]> =
        if repeated { args.iter().map(std::slice::from_ref).collect() } else { vec![&args[..]] };
    for name in sc.names() {
        let c = CString::new(name.as_str()).map_err(|_| bad(format!("syscall name {name:?} contains NUL")))?;
        // SAFETY: NUL-terminated name.
        let nr = unsafe { ffi::seccomp_syscall_resolve_name(c.as_ptr()) };
        if nr == ffi::NR_SCMP_ERROR {
            // A name newer than this libseccomp in an allow rule only leaves
            // that syscall at the default action (fail closed); anywhere else
            // skipping it would silently weaken the filter.
            if act == ACT_ALLOW {
                continue;
            }
            return Err(bad(format!("unknown syscall {name:?}")));
        }
        for g in &groups {
            // SAFETY: valid context; `g` points at g.len() comparisons.
            let rc = unsafe { ffi::seccomp_rule_add_array(ctx.0, act, nr, g.len() as u32, g.as_ptr()) };
            // -EDOM/-EINVAL from pseudo-syscalls: a name that exists on none of
            // the filter's architectures (e.g. an s390-only call on x86) adds nothing.
            if rc != 0 && !(nr < 0 && (rc == -libc::EDOM || rc == -libc::EINVAL)) {
                let e = std::io::Error::from_raw_os_error(-rc);
                return Err(bad(format!("rule for {name}: {e}")));
            }
        }
    }
    Ok(())
}

/// The BPF program libseccomp generates, read back through a memfd.
#[cold]
fn export(ctx: &Ctx) -> Result<Vec<libc::sock_filter>> {
    // SAFETY: name is a NUL-terminated literal.
    let fd = unsafe { libc::memfd_create(c"seccomp-bpf".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::io("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor we own.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: valid context and descriptor.
    let rc = unsafe { ffi::seccomp_export_bpf(ctx.0, fd) };
    if rc != 0 {
        return Err(bad(format!("generate BPF: {}", std::io::Error::from_raw_os_error(-rc))));
    }
    let mut raw = Vec::new();
    f.rewind().and_then(|_| f.read_to_end(&mut raw)).map_err(|e| Error::io("read seccomp BPF", e))?;
    Ok(decode(&raw))
}

/// struct sock_filter array in native byte order → instructions.
fn decode(raw: &[u8]) -> Vec<libc::sock_filter> {
    raw.chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

impl Filter {
    /// Installs the filter on this thread; needs no_new_privs or CAP_SYS_ADMIN.
    pub(crate) fn load(&self) -> Result<()> {
        let prog = libc::sock_fprog { len: self.prog.len() as u16, filter: self.prog.as_ptr() as *mut _ };
        // SAFETY: `prog` points at our instructions for the duration of the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(Error::io("load seccomp filter", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Number of BPF instructions.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.prog.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn compiles_docker_default() {
        let caps = crate::spec::DOCKER_CAPS.iter().map(|c| crate::caps::parse(c).unwrap()).collect::<Vec<_>>();
        let f = compile(Some(&docker_default::profile(&caps))).unwrap().unwrap();
        assert!(f.len() > 100, "{}", f.len());
    }

    #[test]
    fn bad_profiles_are_clear_errors() {
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_ERRNO"}]}));
        assert!(compile(Some(&p)).unwrap_err().to_string().contains("unknown syscall \"no_such_call\""));
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert!(compile(Some(&p)).unwrap_err().to_string().contains("SCMP_ACT_NOTIFY"));
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
        assert!(compile(Some(&p)).unwrap_err().to_string().contains("index 7"));
    }
}
