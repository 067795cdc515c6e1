//! `wharf-infra`: a pod's infra process (the `pause` role), std + libc only.
//!
//! `wharf-infra --pid-file F [--network P] [--ipc P] [--uts P] [--new-pid]
//! [--cgroup DIR]...` with the pod's `infra.lock` flocked on fd 3: joins the
//! namespaces by path and the cgroup directories, optionally unshares a
//! pid namespace, forks, writes the child's host pid to F and exits. The
//! child (PID 1 of the new pid namespace with `--new-pid`) detaches, reaps
//! every child it inherits, exits on SIGTERM, SIGINT or SIGHUP, and keeps
//! fd 3 (the lock that tells `wharf` it lives) until then.

use std::ffi::CString;
use std::io::Write;

fn fail(what: &str) -> ! {
    let e = std::io::Error::last_os_error();
    let _ = writeln!(std::io::stderr(), "wharf-infra: {what}: {e}");
    std::process::exit(1)
}

fn join_ns(path: &str) {
    let c = CString::new(path).unwrap_or_default();
    // SAFETY: plain syscalls on a descriptor this function owns.
    unsafe {
        let fd = libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 || libc::setns(fd, 0) != 0 {
            fail(&format!("join {path}"));
        }
        libc::close(fd);
    }
}

fn write_pid_file(path: &str, pid: i32) {
    let tmp = format!("{path}.tmp");
    if std::fs::write(&tmp, pid.to_string()).and_then(|()| std::fs::rename(&tmp, path)).is_err() {
        fail(&format!("write {path}"));
    }
}

extern "C" fn noop(_: libc::c_int) {}

/// The infra's life: wait for signals, reap children, exit on a stop signal.
fn pause() -> ! {
    // SAFETY: plain syscalls; the handler does nothing.
    unsafe {
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(devnull, fd);
        }
        libc::close(devnull);
        libc::setsid();
        libc::chdir(c"/".as_ptr());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        // PID 1 of a pid namespace gets only the signals it handles: a handler each.
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD] {
            libc::signal(s, noop as *const () as libc::sighandler_t);
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        loop {
            let mut sig: libc::c_int = 0;
            if libc::sigwait(&set, &mut sig) != 0 {
                continue;
            }
            if sig == libc::SIGCHLD {
                while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
            } else {
                libc::_exit(0);
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut pid_file, mut new_pid, mut cgroups, mut ns) = (None, false, Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--pid-file" => pid_file = it.next().cloned(),
            "--new-pid" => new_pid = true,
            "--cgroup" => cgroups.extend(it.next().cloned()),
            "--network" | "--ipc" | "--uts" => ns.extend(it.next().cloned()),
            other => {
                let _ = writeln!(std::io::stderr(), "wharf-infra: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let Some(pid_file) = pid_file else {
        let _ = writeln!(std::io::stderr(), "wharf-infra: --pid-file is required");
        std::process::exit(2)
    };
    for d in &cgroups {
        // v1: `tasks` with "0" moves this (single-threaded) process without the
        // kernel's threadgroup lock and its RCU wait (~10 ms per hierarchy);
        // v2 has only cgroup.procs.
        let tasks = format!("{d}/tasks");
        let p = if std::path::Path::new(&tasks).exists() { tasks } else { format!("{d}/cgroup.procs") };
        if std::fs::write(&p, "0").is_err() {
            fail(&format!("join {p}"));
        }
    }
    for p in &ns {
        join_ns(p);
    }
    // SAFETY: plain syscalls; this process has one thread.
    unsafe {
        if new_pid && libc::unshare(libc::CLONE_NEWPID) != 0 {
            fail("unshare a pid namespace");
        }
        match libc::fork() {
            -1 => fail("fork"),
            0 => pause(),
            child => {
                write_pid_file(&pid_file, child);
                libc::_exit(0)
            }
        }
    }
}
