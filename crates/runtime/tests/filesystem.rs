//! Mounts, devices, rlimits, user, cwd, env, sysctl, read-only rootfs, no-pivot, preserve-fds.

mod common;

use common::*;
use serde_json::json;

fn with_mounts(cfg: &mut serde_json::Value, extra: serde_json::Value) {
    let mut m = cfg["mounts"].as_array().unwrap().clone();
    m.extend(extra.as_array().unwrap().iter().cloned());
    cfg["mounts"] = json!(m);
}

#[test]
fn bind_tmpfs_and_mount_options() {
    if !privileged("bind_tmpfs_and_mount_options") {
        return;
    }
    let mut lab = Lab::new("mounts");
    let host = lab.dir.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from-host\n").unwrap();
    let script = "cat /data/f; echo x > /data/g 2>/dev/null && echo rw-bind-writable; \
                  echo x > /ro/f 2>/dev/null || echo ro-bind-readonly; \
                  stat -c %a /scratch; grep ' /scratch ' /proc/self/mountinfo | grep -o 'size=[0-9]*k'; \
                  cp /bin/busybox /scratch/bb && /scratch/bb true 2>/dev/null || echo noexec-enforced; \
                  cat /file-bind; grep ' /data ' /proc/self/mountinfo | grep -o 'nosuid'";
    let mut cfg = lab.config(&["sh", "-c", script]);
    with_mounts(
        &mut cfg,
        json!([
            {"destination": "/data", "type": "bind", "source": host, "options": ["rbind", "rw", "nosuid"]},
            {"destination": "/ro", "type": "bind", "source": host, "options": ["bind", "ro"]},
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=4m", "mode=1770", "noexec"]},
            {"destination": "/file-bind", "type": "none", "source": host.join("f"), "options": ["bind", "ro"]},
        ]),
    );
    let (code, out, err) = lab.run("m", &cfg);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "from-host",
            "rw-bind-writable",
            "ro-bind-readonly",
            "1770",
            "size=4096k",
            "noexec-enforced",
            "from-host",
            "nosuid"
        ],
        "{err}"
    );
    assert!(host.join("g").exists(), "rw bind writes reach the host");
    lab.assert_clean();
}

#[test]
fn readonly_rootfs_and_masked_paths() {
    if !privileged("readonly_rootfs_and_masked_paths") {
        return;
    }
    let mut lab = Lab::new("ro");
    let cfg = lab.config(&["sh", "-c", "touch /newfile 2>/dev/null || echo ro-root; wc -c < /proc/timer_list; echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo ro-proc-sys"]);
    let (code, out, err) = lab.run("r", &cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["ro-root", "0", "ro-proc-sys"]);
    lab.assert_clean();
}

#[test]
fn devices_and_dev_links() {
    if !privileged("devices_and_dev_links") {
        return;
    }
    let mut lab = Lab::new("dev");
    let script = "for d in null zero full random urandom tty mydev; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
                  for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; head -c 4 /dev/zero | wc -c";
    let mut cfg = lab.config(&["sh", "-c", script]);
    cfg["linux"]["devices"] =
        json!([{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0, "gid": 0}]);
    let (code, out, err) = lab.run("d", &cfg);
    assert_eq!(code, 0, "{err}");
    let want = [
        "/dev/null character special file 1:3 666",
        "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666",
        "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666",
        "/dev/tty character special file 5:0 666",
        "/dev/mydev character special file 1:3 640",
        "/proc/self/fd",
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
        "pts/ptmx",
        "4",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
    lab.assert_clean();
}

// Regression: each linux.devices node was also allowed rwm, so a node the
// spec's rules allow read-only (`docker run --device X:r`) was writable.
#[test]
fn a_device_keeps_the_access_its_rule_gives() {
    if !privileged("a_device_keeps_the_access_its_rule_gives") {
        return;
    }
    let mut lab = Lab::new("devacc");
    let mut cfg = lab.config(&["sh", "-c", "echo -n '' > /dev/f && echo opened-for-write"]);
    cfg["linux"]["devices"] =
        json!([{"path": "/dev/f", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0}]);
    cfg["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"}
    ]);
    let (_, out, _) = lab.run("ro", &cfg);
    assert_eq!(out.trim(), "", "a read-only device was opened for writing");
    cfg["linux"]["resources"]["devices"][1]["access"] = json!("rw");
    let (code, out, err) = lab.run("rw", &cfg);
    assert_eq!((code, out.trim()), (0, "opened-for-write"), "{err}");
    lab.assert_clean();
}

#[test]
fn user_cwd_env_umask_and_rlimits() {
    if !privileged("user_cwd_env_umask_and_rlimits") {
        return;
    }
    let mut lab = Lab::new("proc");
    let mut cfg = lab.config(&["sh", "-c", "id -u; id -g; id -G; pwd; echo $GREETING; umask; ulimit -n; ulimit -Hn"]);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 5], "umask": 0o27});
    cfg["process"]["cwd"] = json!("/work/dir");
    cfg["process"]["env"] = json!(["PATH=/bin", "GREETING=hello world"]);
    cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}]);
    cfg["root"]["readonly"] = json!(false);
    let rootfs = lab.dir.path().join("rootfs-rw");
    make_rootfs(&rootfs);
    cfg["root"]["path"] = json!(rootfs);
    let (code, out, err) = lab.run("p", &cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["1000", "1000", "1000 5 10", "/work/dir", "hello world", "0027", "256", "512"]
    );
    lab.assert_clean();
}

#[test]
fn raising_hard_rlimit_or_negative_oom_score_is_a_clear_error() {
    if !privileged("raising_hard_rlimit_or_negative_oom_score_is_a_clear_error") {
        return;
    }
    let mut lab = Lab::new("caps");
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) };
    let mut cfg = lab.config(&["true"]);
    cfg["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": cur.rlim_max.saturating_mul(4).min(1 << 30)}]);
    let (code, _, err) = lab.run("rl", &cfg);
    if code == 0 {
        eprintln!("note: this host allows raising hard rlimits (has CAP_SYS_RESOURCE)");
    } else {
        assert!(err.contains("RLIMIT_NOFILE") && err.contains("CAP_SYS_RESOURCE"), "{err}");
    }
    let mut cfg = lab.config(&["true"]);
    cfg["process"]["oomScoreAdj"] = json!(-500);
    let (code, _, err) = lab.run("oom", &cfg);
    if code != 0 {
        assert!(err.contains("oomScoreAdj") && err.contains("CAP_SYS_RESOURCE"), "{err}");
    }
    let mut cfg = lab.config(&["sh", "-c", "cat /proc/self/oom_score_adj"]);
    cfg["process"]["oomScoreAdj"] = json!(300);
    let (code, out, err) = lab.run("oom2", &cfg);
    assert_eq!((code, out.trim()), (0, "300"), "{err}");
    lab.assert_clean();
}

#[test]
fn sysctl_hostname_domainname() {
    if !privileged("sysctl_hostname_domainname") {
        return;
    }
    let mut lab = Lab::new("sysctl");
    let mut cfg =
        lab.config(&["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward; hostname; cat /proc/sys/kernel/domainname"]);
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    cfg["linux"]["readonlyPaths"] = json!([]);
    cfg["hostname"] = json!("box1");
    cfg["domainname"] = json!("example.org");
    let (code, out, err) = lab.run("s", &cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["1", "box1", "example.org"]);
    // A host-wide sysctl, or a net.* one without a network namespace, is refused.
    let mut cfg = lab.config(&["true"]);
    cfg["linux"]["sysctl"] = json!({"vm.swappiness": "10"});
    let (code, _, err) = lab.run("host", &cfg);
    assert!(code == 1 && err.contains("not namespaced"), "{err}");
    let mut cfg = lab.config(&["true"]);
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]);
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    let (code, _, err) = lab.run("nonet", &cfg);
    assert!(code == 1 && err.contains("private net namespace"), "{err}");
    lab.assert_clean();
}

#[test]
fn no_pivot_and_preserve_fds() {
    if !privileged("no_pivot_and_preserve_fds") {
        return;
    }
    let mut lab = Lab::new("nopivot");
    let id = lab.id("np");
    let cfg = lab.config(&["sh", "-c", "cat <&3; ls /proc/self/fd | wc -l"]);
    let b = lab.bundle("np", &cfg);
    let fdfile = lab.dir.path().join("fd3");
    std::fs::write(&fdfile, "via-fd3\n").unwrap();
    let f = std::fs::File::open(&fdfile).unwrap();
    let mut cmd = lab.cmd();
    cmd.args(["run", "--no-pivot", "--preserve-fds", "1", "-b", b.to_str().unwrap(), &id]);
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let raw = f.as_raw_fd();
    // SAFETY: dup2 in the child before exec.
    unsafe {
        cmd.pre_exec(move || {
            // dup2(3, 3) would keep close-on-exec: clear it explicitly then.
            if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0);
            } else if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // stdin, stdout, stderr, fd 3, and the fd ls opens: nothing else leaks in.
    assert_eq!(text(&out.stdout).lines().collect::<Vec<_>>(), ["via-fd3", "5"]);
    lab.assert_clean();
}

#[test]
fn rootfs_propagation_is_applied() {
    if !privileged("rootfs_propagation_is_applied") {
        return;
    }
    let mut lab = Lab::new("prop");
    let mut cfg = lab.config(&["awk", "$5 == \"/\"", "/proc/self/mountinfo"]);
    cfg["linux"]["rootfsPropagation"] = json!("shared");
    let (code, out, err) = lab.run("shared", &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("shared:"), "{out}");
    cfg["linux"]["rootfsPropagation"] = json!("private");
    let (code, out, err) = lab.run("private", &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("shared:") && !out.contains("master:"), "{out}");
    lab.assert_clean();
}
