//! Privileges, seccomp and the container-escape classes of issue 6, one
//! regression test each, named after what they guard.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// The 14 default capabilities as the kernel's mask.
fn docker_mask() -> u64 {
    wharf_runtime::spec::DOCKER_CAPS.iter().map(|c| 1u64 << cap_no(c)).fold(0, |a, b| a | b)
}

fn cap_no(name: &str) -> u32 {
    let names = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
    ];
    let n = name.trim_start_matches("CAP_");
    match names.iter().position(|x| *x == n) {
        Some(i) => i as u32,
        None => match n {
            "SYS_CHROOT" => 18,
            "MKNOD" => 27,
            "AUDIT_WRITE" => 29,
            "SETFCAP" => 31,
            other => panic!("cap {other} not in the test's table"),
        },
    }
}

/// `Cap*:` lines of /proc/self/status as (name, mask).
fn cap_lines(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), u64::from_str_radix(v.trim(), 16).ok()?))
        })
        .collect()
}

fn caps(set: &[&str]) -> Value {
    json!(set)
}

#[test]
fn non_root_process_keeps_exactly_its_spec_capabilities() {
    if !privileged("non_root_process_keeps_exactly_its_spec_capabilities") {
        return;
    }
    let mut lab = Lab::new("caps");
    let mut cfg = lab.config(&["grep", "^Cap", "/proc/self/status"]);
    let two = caps(&["CAP_NET_BIND_SERVICE", "CAP_KILL"]);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    cfg["process"]["capabilities"] = json!({"bounding": wharf_runtime::spec::DOCKER_CAPS,
        "effective": two, "permitted": two, "inheritable": two, "ambient": two});
    let (code, out, err) = lab.run("nonroot", &cfg);
    assert_eq!(code, 0, "{err}");
    let got = cap_lines(&out);
    let want = 1 << 10 | 1 << 5;
    for (k, v) in [("CapInh", want), ("CapPrm", want), ("CapEff", want), ("CapAmb", want), ("CapBnd", docker_mask())] {
        assert!(got.contains(&(k.to_string(), v)), "{k} should be {v:#x}: {out}");
    }
    // Root gets its bounding set on execve; nothing beyond it.
    let mut cfg = lab.config(&["grep", "^CapEff", "/proc/self/status"]);
    cfg["process"]["capabilities"] =
        json!({"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]});
    let (code, out, err) = lab.run("root", &cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(cap_lines(&out), vec![("CapEff".to_string(), 1)], "{out}");
    lab.assert_clean();
}

#[test]
fn dropping_net_raw_makes_raw_sockets_fail() {
    if !privileged("dropping_net_raw_makes_raw_sockets_fail") {
        return;
    }
    let mut lab = Lab::new("netraw");
    let cfg = lab.config(&["sh", "-c", "ping -c 1 -W 1 127.0.0.1 2>&1; true"]);
    let (code, with, err) = lab.run("with", &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(!with.contains("not permitted"), "raw socket refused with CAP_NET_RAW: {with}");
    let mut cfg = cfg.clone();
    let no_raw: Vec<&str> = wharf_runtime::spec::DOCKER_CAPS.iter().copied().filter(|c| *c != "CAP_NET_RAW").collect();
    cfg["process"]["capabilities"] = json!({"bounding": no_raw, "effective": no_raw, "permitted": no_raw});
    let (code, without, err) = lab.run("without", &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(without.contains("not permitted") || without.contains("denied"), "{without}");
    lab.assert_clean();
}

#[test]
fn exec_cap_adds_a_capability_and_unknown_names_are_errors() {
    if !privileged("exec_cap_adds_a_capability_and_unknown_names_are_errors") {
        return;
    }
    let mut lab = Lab::new("execcap");
    let mut cfg = lab.config(&["sleep", "30"]);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    cfg["process"]["capabilities"] = json!({"bounding": ["CAP_KILL"], "effective": [], "permitted": []});
    let id = lab.id("c");
    let b = lab.bundle("c", &cfg);
    let out = lab.rt(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lab.rt(&["exec", "--cap", "CAP_KILL", &id, "grep", "^CapEff", "/proc/self/status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(cap_lines(&text(&out.stdout)), vec![("CapEff".to_string(), 1 << 5)]);
    let out = lab.rt(&["exec", &id, "grep", "^CapEff", "/proc/self/status"]);
    assert_eq!(cap_lines(&text(&out.stdout)), vec![("CapEff".to_string(), 0)]);
    let out = lab.rt(&["exec", "--cap", "CAP_FLY", &id, "true"]);
    assert!(!out.status.success() && text(&out.stderr).contains("unknown capability \"CAP_FLY\""));
    assert!(lab.rt(&["delete", "--force", &id]).status.success());
    lab.assert_clean();
}

/// Builds the C probe (static, so it runs in the busybox rootfs).
fn probe(lab: &Lab) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe/probe.c");
    let out = lab.dir.path().join("probe");
    let st = std::process::Command::new("gcc").args(["-static", "-O1", "-o"]).arg(&out).arg(&src).status();
    assert!(st.is_ok_and(|s| s.success()), "gcc -static failed: the seccomp tests need gcc and libc6-dev");
    out
}

fn with_probe(cfg: &mut Value, probe: &Path) {
    cfg["mounts"].as_array_mut().unwrap().push(json!({"destination": "/probe", "type": "bind",
        "source": probe, "options": ["rbind", "ro"]}));
}

#[test]
fn seccomp_default_profile_denies_unshare_mount_personality_keyctl() {
    if !privileged("seccomp_default_profile_denies_unshare_mount_personality_keyctl") {
        return;
    }
    let mut lab = Lab::new("seccomp");
    let p = probe(&lab);
    let mut cfg = lab.config(&["/probe"]);
    with_probe(&mut cfg, &p);
    let (code, out, err) = lab.run("default", &cfg);
    assert_eq!(code, 0, "{err}");
    for want in ["unshare=1", "mount=1", "personality=1", "keyctl=1", "clone3=38", "getppid=0"] {
        assert!(out.lines().any(|l| l == want), "{want} missing: {out}");
    }
    // Control: without the profile the same calls get past seccomp.
    cfg["linux"]["seccomp"] = Value::Null;
    let (code, out, err) = lab.run("none", &cfg);
    assert_eq!(code, 0, "{err}");
    for want in ["unshare=0", "personality=0", "keyctl=0"] {
        assert!(out.lines().any(|l| l == want), "{want} missing without seccomp: {out}");
    }
    lab.assert_clean();
}

#[test]
fn seccomp_default_profile_keeps_busybox_and_pipelines_working() {
    if !privileged("seccomp_default_profile_keeps_busybox_and_pipelines_working") {
        return;
    }
    let mut lab = Lab::new("seccompok");
    let script = "ls / | grep -c bin && echo hello | tr h H && sort /etc/passwd | head -n 1 >/dev/null \
                  && (sleep 0 &) && wait && date >/dev/null && ps >/dev/null && find /etc -type f | wc -l >/dev/null \
                  && sh -c 'exit 3'; echo rc=$?";
    let cfg = lab.config(&["sh", "-c", script]);
    let (code, out, err) = lab.run("ok", &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Hello") && out.contains("rc=3"), "{out}");
    lab.assert_clean();
}

#[test]
fn bad_seccomp_profile_is_a_clear_error() {
    if !privileged("bad_seccomp_profile_is_a_clear_error") {
        return;
    }
    let mut lab = Lab::new("badseccomp");
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_ERRNO"}]}),
            "unknown syscall \"no_such_call\"",
        ),
        (json!({"defaultAction": "SCMP_ACT_FOO"}), "SCMP_ACT_FOO"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_BAR"}]}),
            "SCMP_ACT_BAR",
        ),
        (json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}), "not supported"),
    ];
    for (i, (profile, want)) in cases.into_iter().enumerate() {
        let mut cfg = lab.config(&["true"]);
        cfg["linux"]["seccomp"] = profile;
        let (code, _, err) = lab.run(&format!("bad{i}"), &cfg);
        assert_eq!(code, 1, "case {i}");
        assert!(err.contains(want), "case {i}: want {want:?} in {err}");
    }
    lab.assert_clean();
}

/// CVE-2019-5736: while the runtime binary runs inside the container (init
/// waiting for start), container processes cannot reach it through /proc/1/exe.
#[test]
fn cve_2019_5736_runtime_exe_unreachable_from_container() {
    if !privileged("cve_2019_5736_runtime_exe_unreachable_from_container") {
        return;
    }
    let mut lab = Lab::new("cve5736");
    let before = std::fs::read(BIN).unwrap();
    let cfg = lab.config(&["true"]);
    let id = lab.id("c");
    let b = lab.bundle("c", &cfg);
    let out = lab.rt(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = "readlink /proc/1/exe && echo READLINK; cat /proc/1/exe >/dev/null 2>&1 && echo READ; \
                  (echo x >> /proc/1/exe) 2>/dev/null && echo WRITE; \
                  for p in /proc/[0-9]*; do cat $p/exe >/dev/null 2>&1 && echo READ-$p; done; echo done";
    let out = lab.rt(&["exec", &id, "sh", "-c", script]);
    let o = text(&out.stdout);
    assert!(o.contains("done") && !o.contains("READLINK") && !o.contains("WRITE"), "{o}");
    // Only the shell's own processes (busybox, not the runtime) may be readable.
    assert!(!o.contains("READ-/proc/1\n") && !o.lines().any(|l| l == "READ"), "{o}");
    assert!(lab.rt(&["delete", "--force", &id]).status.success());
    assert!(std::fs::read(BIN).unwrap() == before, "runtime binary changed");
    lab.assert_clean();
}

/// CVE-2024-21626: no descriptor of the runtime (or of its caller) reaches
/// the container, and cwd is resolved inside the rootfs.
#[test]
fn cve_2024_21626_no_host_fd_leaks_and_cwd_inside() {
    if !privileged("cve_2024_21626_no_host_fd_leaks_and_cwd_inside") {
        return;
    }
    let mut lab = Lab::new("cve21626");
    let cfg = lab.config(&["sh", "-c", "for f in /proc/self/fd/*; do echo $f $(readlink $f); done"]);
    let id = lab.id("fds");
    let b = lab.bundle("fds", &cfg);
    // The caller holds a host directory open without O_CLOEXEC on fd 7.
    let host_dir = std::fs::File::open("/etc").unwrap();
    let mut c = lab.cmd();
    c.args(["run", "--bundle", b.to_str().unwrap(), &id]);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&host_dir);
    // SAFETY: dup2 in the child between fork and exec only.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fds: Vec<String> = text(&out.stdout).lines().map(|l| l.split(' ').next().unwrap_or("").to_string()).collect();
    // 0-2 and the shell's own fd for the /proc/self/fd listing at most.
    assert!(fds.iter().all(|f| ["/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2", "/proc/self/fd/3"]
        .contains(&f.as_str())), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("/etc") && !text(&out.stdout).contains("cgroup"), "{}", text(&out.stdout));
    // A cwd through /proc/self/fd or .. never lands outside the rootfs.
    for cwd in ["/proc/self/fd/7", "/../../../../.."] {
        let mut cfg = lab.config(&["pwd"]);
        cfg["process"]["cwd"] = json!(cwd);
        let (code, out, err) = lab.run("cwd", &cfg);
        assert!(code != 0 || out.trim() == "/", "cwd {cwd}: {out} {err}");
    }
    lab.assert_clean();
}

/// CVE-2021-30465: a mount destination swapped for a symlink while the
/// container starts never makes a mount (or its mount point) land outside.
#[test]
fn cve_2021_30465_symlink_swap_race_never_mounts_outside() {
    if !privileged("cve_2021_30465_symlink_swap_race_never_mounts_outside") {
        return;
    }
    let mut lab = Lab::new("cve30465");
    let rootfs = lab.dir.path().join("rootfs");
    make_rootfs(&rootfs);
    let outside = lab.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mnt, target, s) = (rootfs.join("mnt"), outside.clone(), stop.clone());
    let swapper = std::thread::spawn(move || {
        let tmp = mnt.with_extension("swap");
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = std::fs::create_dir(&tmp);
            let _ = std::fs::rename(&tmp, &mnt);
            let _ = std::os::unix::fs::symlink(&target, &tmp);
            let _ = std::fs::rename(&tmp, &mnt);
            let _ = std::fs::remove_dir(&mnt);
        }
    });
    let mut cfg = lab.config(&["true"]);
    cfg["root"]["path"] = json!(rootfs);
    cfg["mounts"].as_array_mut().unwrap().push(json!({"destination": "/mnt/data", "type": "tmpfs", "source": "tmpfs"}));
    for i in 0..60 {
        let _ = lab.run(&format!("r{i}"), &cfg);
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "run {i}: a mount point was made outside");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(outside.to_str().unwrap()), "host mount on {}", outside.display());
    lab.assert_clean();
}

#[test]
fn proc_and_sys_writes_blocked_and_sensitive_files_masked() {
    if !privileged("proc_and_sys_writes_blocked_and_sensitive_files_masked") {
        return;
    }
    let mut lab = Lab::new("procsys");
    let script = "for f in /proc/sys/kernel/domainname /proc/sysrq-trigger /sys/kernel/uevent_helper; do \
                    (echo x > $f) 2>/dev/null && echo WROTE $f; done; \
                  for f in /proc/kcore /proc/keys /proc/timer_list; do echo $f $(wc -c < $f); done; echo done";
    let cfg = lab.config(&["sh", "-c", script]);
    let (code, out, err) = lab.run("p", &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("done") && !out.contains("WROTE"), "{out}");
    for f in ["/proc/kcore", "/proc/keys", "/proc/timer_list"] {
        // A kernel without the file (no CONFIG_PROC_KCORE) has nothing to mask.
        let want = if Path::new(f).exists() { format!("{f} 0") } else { format!("{f} ") };
        assert!(out.lines().any(|l| l == want || l == want.trim()), "{f} not masked: {out}");
    }
    lab.assert_clean();
}

#[test]
fn lsm_requests_fail_clearly_and_personality_ioprio_scheduler_apply() {
    if !privileged("lsm_requests_fail_clearly_and_personality_ioprio_scheduler_apply") {
        return;
    }
    let mut lab = Lab::new("attrs");
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y");
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    let mut cases = vec![];
    // Without SELinux a mount label is ignored (validation.rs), as runc's and crun's label libraries do.
    if selinux {
        cases.push((json!({"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}), "mountLabel"));
    }
    if !apparmor {
        cases.push((json!({"process": {"apparmorProfile": "docker-default"}}), "AppArmor is not enabled"));
    }
    if !selinux {
        cases
            .push((json!({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}), "SELinux is not enabled"));
    }
    for (i, (patch, want)) in cases.into_iter().enumerate() {
        let mut cfg = lab.config(&["true"]);
        for (section, v) in patch.as_object().unwrap() {
            for (k, x) in v.as_object().unwrap() {
                cfg[section][k] = x.clone();
            }
        }
        let (code, _, err) = lab.run(&format!("lsm{i}"), &cfg);
        assert_eq!(code, 1, "{want}");
        assert!(err.contains(want), "want {want:?}: {err}");
    }
    let mut cfg = lab.config(&["sh", "-c", "uname -m; ionice; cut -d' ' -f19,41 /proc/self/stat"]);
    cfg["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    cfg["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
    if std::env::consts::ARCH == "x86_64" {
        cfg["linux"]["personality"] = json!({"domain": "LINUX32"});
    }
    let (code, out, err) = lab.run("attrs", &cfg);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(lines[0], "i686", "{out}");
    }
    assert!(lines[1].contains("idle"), "{out}");
    assert_eq!(lines[2], "5 3", "nice 5, SCHED_BATCH: {out}");
    lab.assert_clean();
}

/// CVE-2019-5736, the original attack: the program a container runs is a
/// script whose interpreter is `/proc/self/exe`, so the kernel starts the
/// runtime binary itself inside the container; a container process holds it
/// through /proc/PID/exe and, once no one executes it, reopens it for
/// writing. (On kernel 6.18 that interpreter lookup from the runtime's own
/// process fails with ENOENT, for runc as well, so the attack cannot be
/// staged from inside here.) The defence is that every process the runtime
/// forks has /proc/self/exe on a read-only view of the binary: hold the
/// container init's /proc/PID/exe while it is still the runtime, let every
/// runtime process finish, then try the write — it must fail.
#[test]
fn cve_2019_5736_runtime_exe_of_container_processes_cannot_be_reopened_for_writing() {
    if !privileged("cve_2019_5736_runtime_exe_of_container_processes_cannot_be_reopened_for_writing") {
        return;
    }
    use std::os::unix::fs::OpenOptionsExt;
    let mut lab = Lab::new("cve5736-reopen");
    // A copy: were the defence to fail, only the copy would be damaged.
    let rt = lab.dir.path().join("wharf-runtime");
    std::fs::copy(BIN, &rt).unwrap();
    let before = std::fs::read(&rt).unwrap();
    let cfg = lab.config(&["true"]);
    let id = lab.id("c");
    let b = lab.bundle("c", &cfg);
    let run = |args: &[&str]| {
        Command::new(&rt)
            .arg("--root")
            .arg(&lab.root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    };
    assert!(run(&["create", "--bundle", b.to_str().unwrap(), &id]).success());
    // The init waits for `start`, still running the runtime binary.
    let pid = lab.state(&id)["pid"].as_i64().unwrap();
    let exe =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH).open(format!("/proc/{pid}/exe")).unwrap();
    assert!(run(&["start", &id]).success());
    let t0 = std::time::Instant::now();
    while lab.state(&id)["status"] != "stopped" && t0.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(run(&["delete", &id]).success());
    // Not even host root can make that view writable again: the exe is not
    // the root of the read-only mount, so mount_setattr refuses it.
    let fd = std::os::fd::AsRawFd::as_raw_fd(&exe);
    let clear_rdonly: [u64; 4] = [0, 1, 0, 0];
    // SAFETY: mount_setattr with a properly sized mount_attr on our fd.
    let r = unsafe {
        libc::syscall(libc::SYS_mount_setattr, fd, c"".as_ptr(), libc::AT_EMPTY_PATH, clear_rdonly.as_ptr(), 32usize)
    };
    assert!(r < 0, "mount_setattr cleared MOUNT_ATTR_RDONLY on the runtime's view");
    // No process executes the copy now, so ETXTBSY no longer protects it.
    let w = std::fs::OpenOptions::new().append(true).open(format!("/proc/self/fd/{fd}"));
    let err = w.expect_err("the runtime binary was writable through the container's /proc/PID/exe");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    assert!(std::fs::read(&rt).unwrap() == before, "runtime binary changed");
    lab.assert_clean();
}
