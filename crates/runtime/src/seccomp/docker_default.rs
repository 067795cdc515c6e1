//! Docker's default seccomp profile (moby profiles/seccomp/default.json) as
//! a data table, and its evaluation for one container: rules conditional on
//! capabilities, architectures and kernel version are kept or dropped here,
//! as Docker does before handing the runtime a plain OCI `linux.seccomp`.

use oci_spec::runtime::{Capability, LinuxSeccomp};
use serde_json::{json, Value};

/// One rule group: syscalls, action, argument conditions and the
/// capability / architecture / kernel conditions under which it applies.
struct Group {
    names: &'static [&'static str],
    /// `None` is SCMP_ACT_ALLOW; `Some(n)` is SCMP_ACT_ERRNO with errno n.
    errno: Option<u32>,
    /// (index, value, op): one argument comparison.
    args: &'static [(u32, u64, &'static str)],
    caps: &'static [&'static str],
    not_caps: &'static [&'static str],
    arches: &'static [&'static str],
    not_arches: &'static [&'static str],
    min_kernel: Option<(u32, u32)>,
}

const G: Group = Group {
    names: &[],
    errno: None,
    args: &[],
    caps: &[],
    not_caps: &[],
    arches: &[],
    not_arches: &[],
    min_kernel: None,
};

/// The unconditional allow list.
const ALLOW: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// The clone flags that make namespaces (CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP):
/// without CAP_SYS_ADMIN, clone is allowed only with none of them set.
const CLONE_NS_MASK: u64 = 2_114_060_288;

const GROUPS: &[Group] = &[
    Group { names: ALLOW, ..G },
    Group { names: &["process_vm_readv", "process_vm_writev", "ptrace"], min_kernel: Some((4, 8)), ..G },
    // AF_VSOCK sockets reach the host's hypervisor.
    Group { names: &["socket"], args: &[(0, 40, "SCMP_CMP_NE")], ..G },
    // Only the personalities programs really set: PER_LINUX, PER_LINUX32,
    // UNAME26, UNAME26|PER_LINUX32, and the 0xffffffff query.
    Group { names: &["personality"], args: &[(0, 0, "SCMP_CMP_EQ")], ..G },
    Group { names: &["personality"], args: &[(0, 8, "SCMP_CMP_EQ")], ..G },
    Group { names: &["personality"], args: &[(0, 131_072, "SCMP_CMP_EQ")], ..G },
    Group { names: &["personality"], args: &[(0, 131_080, "SCMP_CMP_EQ")], ..G },
    Group { names: &["personality"], args: &[(0, 4_294_967_295, "SCMP_CMP_EQ")], ..G },
    Group { names: &["sync_file_range2", "swapcontext"], arches: &["ppc64le"], ..G },
    Group {
        names: &["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"],
        arches: &["arm", "arm64"],
        ..G
    },
    Group { names: &["arch_prctl"], arches: &["amd64", "x32"], ..G },
    Group { names: &["modify_ldt"], arches: &["amd64", "x32", "x86"], ..G },
    Group {
        names: &["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"],
        arches: &["s390", "s390x"],
        ..G
    },
    Group { names: &["riscv_flush_icache"], arches: &["riscv64"], ..G },
    Group { names: &["open_by_handle_at"], caps: &["CAP_DAC_READ_SEARCH"], ..G },
    Group {
        names: &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        caps: &["CAP_SYS_ADMIN"],
        ..G
    },
    Group {
        names: &["clone"],
        args: &[(0, CLONE_NS_MASK, "SCMP_CMP_MASKED_EQ")],
        not_caps: &["CAP_SYS_ADMIN"],
        not_arches: &["s390", "s390x"],
        ..G
    },
    // s390 passes clone's flags second.
    Group {
        names: &["clone"],
        args: &[(1, CLONE_NS_MASK, "SCMP_CMP_MASKED_EQ")],
        arches: &["s390", "s390x"],
        not_caps: &["CAP_SYS_ADMIN"],
        ..G
    },
    // clone3's flags sit in memory seccomp cannot read: ENOSYS makes libc fall back to clone.
    Group { names: &["clone3"], errno: Some(38), not_caps: &["CAP_SYS_ADMIN"], ..G },
    Group { names: &["reboot"], caps: &["CAP_SYS_BOOT"], ..G },
    Group { names: &["chroot"], caps: &["CAP_SYS_CHROOT"], ..G },
    Group { names: &["delete_module", "init_module", "finit_module"], caps: &["CAP_SYS_MODULE"], ..G },
    Group { names: &["acct"], caps: &["CAP_SYS_PACCT"], ..G },
    Group {
        names: &["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"],
        caps: &["CAP_SYS_PTRACE"],
        ..G
    },
    Group { names: &["iopl", "ioperm"], caps: &["CAP_SYS_RAWIO"], ..G },
    Group { names: &["settimeofday", "stime", "clock_settime", "clock_settime64"], caps: &["CAP_SYS_TIME"], ..G },
    Group { names: &["vhangup"], caps: &["CAP_SYS_TTY_CONFIG"], ..G },
    Group {
        names: &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
        caps: &["CAP_SYS_NICE"],
        ..G
    },
    Group { names: &["syslog"], caps: &["CAP_SYSLOG"], ..G },
    Group { names: &["bpf"], caps: &["CAP_BPF"], ..G },
    Group { names: &["perf_event_open"], caps: &["CAP_PERFMON"], ..G },
];

/// Docker's name for this machine's architecture and the seccomp
/// architectures its profile lists for it (the native one and its compat ABIs).
fn host_arches() -> (&'static str, &'static [&'static str]) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        "aarch64" => ("arm64", &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
        "riscv64" => ("riscv64", &["SCMP_ARCH_RISCV64"]),
        "s390x" => ("s390x", &["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]),
        "powerpc64" => ("ppc64le", &["SCMP_ARCH_PPC64LE"]),
        "x86" => ("x86", &["SCMP_ARCH_X86"]),
        "arm" => ("arm", &["SCMP_ARCH_ARM"]),
        _ => ("", &[]),
    }
}

fn kernel_version() -> (u32, u32) {
    let u = nix::sys::utsname::uname().ok();
    let r = u.as_ref().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let mut it = r.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Docker's default profile for a container holding `caps` (its bounding set).
pub fn profile(caps: &[Capability]) -> LinuxSeccomp {
    let held: Vec<u32> = caps.iter().map(|&c| crate::caps::number(c)).collect();
    let has = |c: &str| crate::caps::parse(c).is_ok_and(|c| held.contains(&crate::caps::number(c)));
    let (arch, arches) = host_arches();
    let kernel = kernel_version();
    let syscalls: Vec<Value> = GROUPS
        .iter()
        .filter(|g| g.caps.iter().all(|c| has(c)) && !g.not_caps.iter().any(|c| has(c)))
        .filter(|g| (g.arches.is_empty() || g.arches.contains(&arch)) && !g.not_arches.contains(&arch))
        .filter(|g| g.min_kernel.is_none_or(|m| kernel >= m))
        .map(|g| {
            let args: Vec<Value> =
                g.args.iter().map(|&(index, value, op)| json!({"index": index, "value": value, "op": op})).collect();
            let mut v = json!({"names": g.names, "action": "SCMP_ACT_ALLOW"});
            if let Some(e) = g.errno {
                v["action"] = json!("SCMP_ACT_ERRNO");
                v["errnoRet"] = json!(e);
            }
            if !args.is_empty() {
                v["args"] = json!(args);
            }
            v
        })
        .collect();
    let v =
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": arches, "syscalls": syscalls});
    serde_json::from_value(v).expect("the built-in Docker seccomp profile is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_conditions_follow_the_caps() {
        let plain = profile(&[Capability::Chown]);
        let admin = profile(&[Capability::SysAdmin]);
        let names = |p: &LinuxSeccomp| -> Vec<String> {
            p.syscalls().iter().flatten().filter(|s| s.args().is_none()).flat_map(|s| s.names().clone()).collect()
        };
        assert!(!names(&plain).contains(&"mount".to_string()));
        assert!(names(&admin).contains(&"mount".to_string()));
        let clone3_denied = |p: &LinuxSeccomp| {
            p.syscalls()
                .iter()
                .flatten()
                .any(|s| s.names().contains(&"clone3".to_string()) && s.errno_ret() == Some(38))
        };
        assert!(clone3_denied(&plain) && !clone3_denied(&admin));
    }
}
