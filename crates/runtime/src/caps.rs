//! The five capability sets of `process.capabilities`, applied around the
//! uid switch as runc does: bounding set first (dropping needs CAP_SETPCAP,
//! which only the still-privileged process has), keep the permitted set
//! across setuid with PR_SET_KEEPCAPS, then set exactly the spec's
//! effective/permitted/inheritable sets, ambient last.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use crate::error::{Error, Result};

/// Kernel number of a capability (linux/capability.h).
pub(crate) fn number(c: Capability) -> u32 {
    use Capability::*;
    match c {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// Parses `CAP_NET_RAW` / `net_raw` (as `exec --cap` takes them).
pub fn parse(name: &str) -> Result<Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| Error::InvalidArgument(format!("unknown capability {name:?}")))
}

/// The highest capability this kernel knows, probed with PR_CAPBSET_READ
/// (EINVAL past the last one): names the kernel lacks are skipped like runc,
/// and caps newer than our table are still dropped from the bounding set.
/// (Reading /proc/sys/kernel/cap_last_cap instead cost ~190 kB of peak RSS.)
fn last_cap() -> u32 {
    // SAFETY: prctl with integer arguments only.
    let known = |n: u32| unsafe { libc::prctl(libc::PR_CAPBSET_READ, n as libc::c_ulong, 0, 0, 0) } >= 0;
    let mut n = CAP_LAST_KNOWN;
    while n > 0 && !known(n) {
        n -= 1;
    }
    while n < 63 && known(n + 1) {
        n += 1;
    }
    n
}

const CAP_LAST_KNOWN: u32 = 40;

/// A capability set as the kernel's 64-bit mask.
fn mask(set: &Option<Capabilities>, last: u32) -> u64 {
    set.iter().flatten().map(|&c| number(c)).filter(|&n| n <= last).fold(0, |m, n| m | 1 << n)
}

/// The spec's sets as masks, resolved once before the process forks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    last: u32,
}

impl CapSets {
    pub(crate) fn from_spec(c: &LinuxCapabilities) -> CapSets {
        let last = last_cap();
        CapSets {
            bounding: mask(c.bounding(), last),
            effective: mask(c.effective(), last),
            permitted: mask(c.permitted(), last),
            inheritable: mask(c.inheritable(), last),
            ambient: mask(c.ambient(), last),
            last,
        }
    }

    /// Drops every capability not in the bounding set; needs CAP_SETPCAP.
    pub(crate) fn apply_bounding(&self) -> Result<()> {
        for n in (0..=self.last).filter(|n| self.bounding & 1 << n == 0) {
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) } != 0 {
                let e = std::io::Error::last_os_error();
                return Err(Error::io(format!("drop capability {n} from the bounding set"), e));
            }
        }
        Ok(())
    }

    /// Sets effective/permitted/inheritable exactly, then raises ambient.
    pub(crate) fn apply(&self) -> Result<()> {
        if let Err(e) = capset(self.effective, self.permitted, self.inheritable) {
            // Name the usual cause: a capability this process may not hold.
            let wanted = self.effective | self.permitted | self.inheritable;
            // SAFETY: prctl with integer arguments only.
            let held = |n: u32| unsafe { libc::prctl(libc::PR_CAPBSET_READ, n as libc::c_ulong, 0, 0, 0) } == 1;
            let missing: Vec<String> =
                (0..=self.last).filter(|&n| wanted & 1 << n != 0 && !held(n)).map(|n| format!("{n}")).collect();
            if missing.is_empty() {
                return Err(e);
            }
            return Err(Error::InvalidArgument(format!(
                "{e}: capabilities number {} are not in the bounding set (the runtime's own, or process.capabilities.bounding)",
                missing.join(", ")
            )));
        }
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
        // The kernel refuses an ambient cap not both permitted and inheritable;
        // runc's own default spec asks for such caps, so they are skipped as runc does.
        let ambient = self.ambient & self.permitted & self.inheritable;
        for n in (0..=self.last).filter(|n| ambient & 1 << n != 0) {
            // SAFETY: as above.
            let rc = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, n as libc::c_ulong, 0, 0) };
            if rc != 0 {
                let e = std::io::Error::last_os_error();
                return Err(Error::io(format!("raise ambient capability {n}"), e));
            }
        }
        Ok(())
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// capset(2) of this thread, 64-bit masks split into the kernel's two words.
fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    let mut hdr = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [0, 32].map(|s| CapData {
        effective: (effective >> s) as u32,
        permitted: (permitted >> s) as u32,
        inheritable: (inheritable >> s) as u32,
    });
    // SAFETY: header and two data words as the v3 ABI requires.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) } != 0 {
        return Err(Error::io("capset", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// This thread's permitted set.
fn permitted_now() -> Result<u64> {
    let mut hdr = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: as capset, the kernel writes two data words.
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut CapHeader, data.as_mut_ptr()) } != 0 {
        return Err(Error::io("capget", std::io::Error::last_os_error()));
    }
    Ok(u64::from(data[0].permitted) | u64::from(data[1].permitted) << 32)
}

/// Makes every permitted capability effective again (setuid to a non-root
/// uid clears the effective set), e.g. so that a seccomp filter can be
/// loaded without no_new_privs before the spec's sets are applied.
pub(crate) fn raise_all_permitted() -> Result<()> {
    let p = permitted_now()?;
    capset(p, p, 0)
}

pub(crate) fn set_keep_caps(on: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) } != 0 {
        return Err(Error::io("prctl PR_SET_KEEPCAPS", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Capability names by kernel number (linux/capability.h).
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_masks() {
        assert_eq!(number(parse("CAP_NET_RAW").unwrap()), 13);
        assert_eq!(number(parse("sys_admin").unwrap()), 21);
        assert!(parse("CAP_FLY").unwrap_err().to_string().contains("unknown capability"));
        let set: Capabilities = [Capability::Chown, Capability::Kill].into_iter().collect();
        assert_eq!(mask(&Some(set.clone()), 40), 0b10_0001);
        assert_eq!(mask(&Some(set), 4), 1, "caps above cap_last_cap are skipped");
    }
}
