//! Process attributes beside capabilities and seccomp: LSM labels
//! (AppArmor, SELinux), personality, I/O priority and scheduler.

use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process, Spec,
};

use crate::error::{Error, Result};

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

fn selinux_enabled() -> bool {
    std::fs::metadata("/sys/fs/selinux/enforce").is_ok()
}

/// Refuses LSM settings this host cannot honour: silently running a
/// container without the confinement it asked for is the wrong failure.
pub(crate) fn check_lsm(spec: &Spec, p: &Process) -> Result<()> {
    let set = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
    if set(p.apparmor_profile()) && !apparmor_enabled() {
        return Err(Error::Unsupported(format!(
            "apparmorProfile {:?}: AppArmor is not enabled on this host, so it",
            p.apparmor_profile().as_deref().unwrap_or_default()
        )));
    }
    if set(p.selinux_label()) && !selinux_enabled() {
        return Err(Error::Unsupported(format!(
            "selinuxLabel {:?}: SELinux is not enabled on this host, so it",
            p.selinux_label().as_deref().unwrap_or_default()
        )));
    }
    // Without SELinux a mount label means nothing: ignored, as the label
    // libraries of runc and crun do.
    if set(&spec.linux().as_ref().and_then(|l| l.mount_label().clone())) && selinux_enabled() {
        // Labelling mounts needs context= options on every mount; not done yet.
        return Err(Error::Unsupported("linux.mountLabel (SELinux mount labels)".into()));
    }
    Ok(())
}

/// Asks the LSM to switch to the spec's profile/label at the next execve.
pub(crate) fn set_exec_labels(p: &Process) -> Result<()> {
    if let Some(prof) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        let path = if std::path::Path::new("/proc/self/attr/apparmor/exec").exists() {
            "/proc/self/attr/apparmor/exec"
        } else {
            "/proc/self/attr/exec"
        };
        std::fs::write(path, format!("exec {prof}"))
            .map_err(|e| Error::io(format!("set apparmor profile {prof}"), e))?;
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        std::fs::write("/proc/self/attr/exec", label)
            .map_err(|e| Error::io(format!("set selinux label {label}"), e))?;
    }
    Ok(())
}

/// `linux.personality`: the execution domain (flags are not defined by the spec yet).
pub(crate) fn set_personality(spec: &Spec) -> Result<()> {
    let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().clone()) else { return Ok(()) };
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::Unsupported("linux.personality.flags".into()));
    }
    let domain: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0,
        LinuxPersonalityDomain::PerLinux32 => 8,
    };
    // SAFETY: integer argument only.
    if unsafe { libc::personality(domain) } < 0 {
        return Err(Error::io("personality", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// `process.ioPriority` through ioprio_set(IOPRIO_WHO_PROCESS, self).
pub(crate) fn set_io_priority(p: &Process) -> Result<()> {
    let Some(io) = p.io_priority() else { return Ok(()) };
    let class: i64 = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&io.priority()) {
        return Err(Error::InvalidArgument(format!("ioPriority.priority {} is not in 0-7", io.priority())));
    }
    const IOPRIO_WHO_PROCESS: i64 = 1;
    // SAFETY: integer arguments only.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, class << 13 | io.priority()) } != 0 {
        return Err(Error::io("ioprio_set", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// `process.scheduler` through sched_setattr(2).
pub(crate) fn set_scheduler(p: &Process) -> Result<()> {
    let Some(s) = p.scheduler() else { return Ok(()) };
    use LinuxSchedulerFlag::*;
    use LinuxSchedulerPolicy::*;
    let policy = match s.policy() {
        SchedOther => 0,
        SchedFifo => 1,
        SchedRr => 2,
        SchedBatch => 3,
        SchedIso => 4,
        SchedIdle => 5,
        SchedDeadline => 6,
    };
    let flags = s.flags().iter().flatten().fold(0u64, |f, x| {
        f | match x {
            SchedResetOnFork => 0x01,
            SchedFlagReclaim => 0x02,
            SchedFlagDLOverrun => 0x04,
            SchedFlagKeepPolicy => 0x08,
            SchedFlagKeepParams => 0x10,
            SchedFlagUtilClampMin => 0x20,
            SchedFlagUtilClampMax => 0x40,
        }
    });
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    // SAFETY: `attr` is a valid sched_attr of the size it declares.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(Error::io(format!("sched_setattr {:?}", s.policy()), std::io::Error::last_os_error()));
    }
    Ok(())
}
