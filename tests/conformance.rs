//! Ports of the OCI runtime-tools validation cases (validation/<case>) that
//! apply to a root runtime: each test is named `rt_<case>` and checks, from
//! inside the container (busybox), the properties that case's runtimetest
//! checks. tests/README.md lists which cases are ported and which are not.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use wharf_tests::{bin, busybox_rootfs, mounts_under, privileged};

struct Bundle {
    dir: tempfile::TempDir,
    spec: Value,
}

impl Bundle {
    /// `wharf-runtime spec` over a busybox rootfs, no terminal, writable root.
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("wharf-rt-").tempdir().unwrap();
        busybox_rootfs(dir.path());
        let out = Command::new(bin("wharf-runtime")).arg("spec").current_dir(dir.path()).output().unwrap();
        assert!(out.status.success(), "spec: {}", String::from_utf8_lossy(&out.stderr));
        let mut spec: Value = serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
        spec["process"]["terminal"] = json!(false);
        spec["root"]["readonly"] = json!(false);
        if std::env::var_os("WHARF_CONFORMANCE_RUNTIME").is_some() {
            // crun 1.8 refuses any ociVersion newer than the one it knows.
            spec["ociVersion"] = json!("1.0.2");
        }
        Bundle { dir, spec }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn rt(&self, args: &[&str]) -> Output {
        Command::new(runtime()).arg("--root").arg(self.state()).args(args).output().unwrap()
    }

    /// Like `rt`, but the container's stdio is /dev/null: a created
    /// container keeps the stdio it was given, so a pipe would never close.
    fn rt_detached(&self, args: &[&str]) -> std::process::ExitStatus {
        Command::new(runtime())
            .arg("--root")
            .arg(self.state())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    }

    /// Writes the spec with `sh -c script` as the process and runs it.
    fn run(&mut self, id: &str, script: &str) -> Output {
        self.spec["process"]["args"] = json!(["sh", "-c", script]);
        std::fs::write(self.path().join("config.json"), serde_json::to_vec_pretty(&self.spec).unwrap()).unwrap();
        self.rt(&["run", "--bundle", self.path().to_str().unwrap(), id])
    }

    fn run_ok(&mut self, id: &str, script: &str) -> String {
        let out = self.run(id, script);
        assert!(
            out.status.success(),
            "{id}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Nothing of any container remains: state, mounts, cgroups named by `ids`.
    fn assert_clean(&self, ids: &[&str]) {
        let state = std::fs::read_dir(self.state()).map(|r| r.count()).unwrap_or(0);
        assert_eq!(state, 0, "state left");
        assert!(mounts_under(self.path()).is_empty(), "mounts left: {:?}", mounts_under(self.path()));
        for id in ids {
            let left = Command::new("find").args(["/sys/fs/cgroup", "-maxdepth", "4", "-name", id]).output().unwrap();
            assert!(left.stdout.is_empty(), "cgroup left: {}", String::from_utf8_lossy(&left.stdout));
        }
    }
}

/// The runtime under test: wharf-runtime, or the one named by
/// WHARF_CONFORMANCE_RUNTIME (e.g. `runc`, `crun`) to compare peers on the
/// same cases. The spec always comes from `wharf-runtime spec`.
fn runtime() -> PathBuf {
    match std::env::var_os("WHARF_CONFORMANCE_RUNTIME") {
        Some(r) => PathBuf::from(r),
        None => bin("wharf-runtime"),
    }
}

fn id(case: &str) -> String {
    format!("rt-{case}-{}", std::process::id())
}

#[test]
fn rt_hostname() {
    if !privileged("rt_hostname") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["hostname"] = json!("hostname-specific");
    let i = id("hostname");
    assert_eq!(b.run_ok(&i, "hostname").trim(), "hostname-specific");
    b.assert_clean(&[&i]);
}

#[test]
fn rt_process() {
    if !privileged("rt_process") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["process"]["cwd"] = json!("/tmp");
    b.spec["process"]["env"] = json!(["PATH=/bin", "key=value"]);
    b.spec["process"]["user"] = json!({"uid": 65534, "gid": 65534, "additionalGids": [5, 6]});
    b.spec["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}]);
    let i = id("process");
    let out = b.run_ok(&i, "pwd; echo $key; id -u; id -g; id -G; ulimit -n; ulimit -Hn");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["/tmp", "value", "65534", "65534", "65534", "5", "6", "512", "1024"]
    );
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_sysctl() {
    if !privileged("rt_linux_sysctl") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "8192"});
    let i = id("sysctl");
    assert_eq!(
        b.run_ok(&i, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1", "8192"]
    );
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_masked_paths() {
    if !privileged("rt_linux_masked_paths") {
        return;
    }
    let mut b = Bundle::new();
    std::fs::create_dir_all(b.path().join("rootfs/masked-dir")).unwrap();
    std::fs::write(b.path().join("rootfs/masked-dir/secret"), "s").unwrap();
    std::fs::write(b.path().join("rootfs/masked-file"), "s").unwrap();
    b.spec["linux"]["maskedPaths"] = json!(["/masked-dir", "/masked-file", "/proc/keys", "/does-not-exist"]);
    let i = id("masked");
    let out = b.run_ok(&i, "ls /masked-dir | wc -l; wc -c < /masked-file; wc -c < /proc/keys");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "0", "0"], "masked paths are empty");
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_readonly_paths() {
    if !privileged("rt_linux_readonly_paths") {
        return;
    }
    let mut b = Bundle::new();
    std::fs::create_dir_all(b.path().join("rootfs/ro-dir")).unwrap();
    std::fs::write(b.path().join("rootfs/ro-file"), "s").unwrap();
    b.spec["linux"]["readonlyPaths"] = json!(["/ro-dir", "/ro-file", "/proc/sys"]);
    let i = id("readonly");
    let out = b.run_ok(&i, "touch /ro-dir/x 2>/dev/null || echo dir-ro; echo x 2>/dev/null > /ro-file || echo file-ro; echo 1 2>/dev/null > /proc/sys/kernel/shmmni || echo proc-ro");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["dir-ro", "file-ro", "proc-ro"]);
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_uid_mappings() {
    if !privileged("rt_linux_uid_mappings") {
        return;
    }
    let mut b = Bundle::new();
    let ns = b.spec["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "user"}));
    b.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    // The rootfs must be reachable by the mapped root.
    Command::new("chown").args(["-R", "100000:200000"]).arg(b.path().join("rootfs")).status().unwrap();
    let i = id("uidmap");
    let out = b.run_ok(&i, "cat /proc/self/uid_map /proc/self/gid_map; id -u");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["0", "100000", "65536", "0", "200000", "65536", "0"]);
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_devices() {
    if !privileged("rt_linux_devices") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["linux"]["devices"] = json!([
        {"path": "/dev/test-null", "type": "c", "major": 1, "minor": 3, "fileMode": 432, "uid": 0, "gid": 0},
        {"path": "/dev/test-fifo", "type": "p", "fileMode": 384}
    ]);
    let i = id("devices");
    let out = b.run_ok(&i, "stat -c '%F %t:%T %a' /dev/test-null; stat -c '%F %a' /dev/test-fifo; ls /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | wc -l");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "character special file 1:3 660");
    assert_eq!(lines[1], "fifo 600");
    assert_eq!(lines[2].trim(), "6", "the default devices exist");
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_rootfs_propagation() {
    if !privileged("rt_linux_rootfs_propagation") {
        return;
    }
    for (prop, want, sees_host_mount) in
        [("private", "", false), ("slave", "master:", true), ("shared", "shared:", false)]
    {
        let mut b = Bundle::new();
        // The rootfs sits in a shared mount, as on a systemd host, so that
        // "slave" has a master to follow. "shared" makes the container's
        // root a new peer group (pivot_root needs an unshared parent), so
        // like "private" it does not receive the host's later mounts.
        let p = b.path().to_str().unwrap().to_string();
        assert!(Command::new("mount").args(["--bind", &p, &p]).status().unwrap().success());
        assert!(Command::new("mount").args(["--make-rshared", &p]).status().unwrap().success());
        std::fs::create_dir(b.path().join("rootfs/probe")).unwrap();
        b.spec["linux"]["rootfsPropagation"] = json!(prop);
        let i = id(&format!("prop-{prop}"));
        // Field 7 of mountinfo holds the optional fields of "/"; then wait for
        // the host to mount on /probe and see whether it arrived.
        let script = "awk '$5 == \"/\" {print $7}' /proc/self/mountinfo; touch /started; \
                      while [ ! -e /ready ]; do sleep 0.05; done; ls /probe";
        b.spec["process"]["args"] = json!(["sh", "-c", script]);
        std::fs::write(b.path().join("config.json"), serde_json::to_vec(&b.spec).unwrap()).unwrap();
        let child = Command::new(runtime())
            .arg("--root")
            .arg(b.state())
            .args(["run", "--bundle", &p, &i])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while !b.path().join("rootfs/started").exists() && t0.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let probe = b.path().join("rootfs/probe");
        assert!(Command::new("mount").args(["-t", "tmpfs", "probe"]).arg(&probe).status().unwrap().success());
        std::fs::write(probe.join("from-host"), "x").unwrap();
        std::fs::write(b.path().join("rootfs/ready"), "").unwrap();
        let out = child.wait_with_output().unwrap();
        Command::new("umount").args(["-R", &p]).status().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{prop}: {}", String::from_utf8_lossy(&out.stderr));
        let first = text.lines().next().unwrap_or_default();
        if want.is_empty() {
            assert!(!first.contains("shared:") && !first.contains("master:"), "{prop}: {text}");
        } else {
            assert!(first.contains(want), "{prop}: {text}");
        }
        assert_eq!(text.contains("from-host"), sees_host_mount, "{prop}: host mount seen inside? {text}");
        b.assert_clean(&[&i]);
    }
}

#[test]
fn rt_linux_ns_nopath() {
    if !privileged("rt_linux_ns_nopath") {
        return;
    }
    let mut b = Bundle::new();
    let i = id("ns-nopath");
    let inside = b.run_ok(&i, "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done");
    for (n, line) in ["pid", "net", "ipc", "uts", "mnt", "cgroup"].iter().zip(inside.lines()) {
        let host = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        assert_ne!(host.to_string_lossy(), line, "{n} namespace is the host's");
    }
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_ns_path() {
    if !privileged("rt_linux_ns_path") {
        return;
    }
    // A process of ours holds a network namespace; the container joins it by path.
    let mut holder = Command::new("unshare").args(["--net", "sleep", "30"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let path = format!("/proc/{}/ns/net", holder.id());
    let want = std::fs::read_link(&path).unwrap().to_string_lossy().into_owned();
    let mut b = Bundle::new();
    for n in b.spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = json!(path);
        }
    }
    let i = id("ns-path");
    let got = b.run_ok(&i, "readlink /proc/self/ns/net");
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(got.trim(), want);
    b.assert_clean(&[&i]);
}

#[test]
fn rt_mounts() {
    if !privileged("rt_mounts") {
        return;
    }
    let mut b = Bundle::new();
    let mounts = b.spec["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/mnt/tmpfs", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m", "mode=0710"]}));
    let i = id("mounts");
    let out = b.run_ok(&i, "grep ' /mnt/tmpfs ' /proc/mounts; stat -c %a /mnt/tmpfs");
    assert!(
        out.contains("tmpfs /mnt/tmpfs tmpfs")
            && out.contains("nosuid")
            && out.contains("nodev")
            && out.contains("size=1024k"),
        "{out}"
    );
    assert_eq!(out.lines().last().unwrap(), "710");
    b.assert_clean(&[&i]);
}

#[test]
fn rt_state_create_start_kill_delete() {
    if !privileged("rt_state_create_start_kill_delete") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["process"]["args"] = json!(["sleep", "30"]);
    std::fs::write(b.path().join("config.json"), serde_json::to_vec(&b.spec).unwrap()).unwrap();
    let i = id("lifecycle");
    let bundle = b.path().to_str().unwrap().to_string();
    let pidfile = b.path().join("pid");
    // create: state "created", pidfile written, duplicate id refused.
    assert!(b.rt_detached(&["create", "--bundle", &bundle, "--pid-file", pidfile.to_str().unwrap(), &i]).success());
    let st: Value = serde_json::from_slice(&b.rt(&["state", &i]).stdout).unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], i.as_str());
    assert!(st["ociVersion"].is_string() && st["bundle"] == bundle.as_str());
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), st["pid"].to_string());
    assert!(!b.rt_detached(&["create", "--bundle", &bundle, &i]).success(), "duplicate id");
    assert!(b.rt(&["start", &i]).status.success());
    let st: Value = serde_json::from_slice(&b.rt(&["state", &i]).stdout).unwrap();
    assert_eq!(st["status"], "running");
    assert!(!b.rt(&["delete", &i]).status.success(), "delete of a running container fails without --force");
    assert!(b.rt(&["kill", &i, "KILL"]).status.success());
    let t0 = std::time::Instant::now();
    loop {
        let st: Value = serde_json::from_slice(&b.rt(&["state", &i]).stdout).unwrap_or(json!({}));
        if st["status"] == "stopped" || t0.elapsed().as_secs() > 5 {
            assert_eq!(st["status"], "stopped");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!b.rt(&["kill", &i, "KILL"]).status.success(), "kill of a stopped container is an error");
    assert!(b.rt(&["delete", &i]).status.success());
    assert!(!b.rt(&["state", &i]).status.success(), "state of a deleted container is an error");
    b.assert_clean(&[&i]);
}

#[test]
fn rt_hooks() {
    if !privileged("rt_hooks") {
        return;
    }
    let mut b = Bundle::new();
    let log = b.path().join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo {name} \"$s\" >> {}", log.display())]});
    b.spec["hooks"] = json!({
        "prestart": [hook("prestart")], "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        // startContainer runs inside the container, after pivot_root: its
        // /bin/sh is busybox and its log path is the container's.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer $(hostname) > /start.log"]}],
        "poststart": [hook("poststart")], "poststop": [hook("poststop")]
    });
    b.spec["hostname"] = json!("in-container");
    let i = id("hooks");
    b.run_ok(&i, "true");
    let start = std::fs::read_to_string(b.path().join("rootfs/start.log")).unwrap();
    assert_eq!(start.trim(), "startContainer in-container");
    let text = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(order, ["prestart", "createRuntime", "createContainer", "poststart", "poststop"], "{text}");
    assert!(text.lines().all(|l| l.contains(&format!("\"id\":\"{i}\""))), "state JSON on stdin: {text}");
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_cgroups_memory_and_pids() {
    if !privileged("rt_linux_cgroups_memory_and_pids") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["linux"]["resources"] = json!({"memory": {"limit": 50 * 1024 * 1024}, "pids": {"limit": 42}});
    let i = id("cgroups");
    b.spec["linux"]["cgroupsPath"] = json!(format!("/{i}"));
    let out = b.run_ok(&i, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["52428800", "42"]);
    b.assert_clean(&[&i]);
}

/// Waits up to `secs` for `cond`.
fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed().as_secs() < secs {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cond()
}

impl Bundle {
    fn write_spec(&self) {
        std::fs::write(self.path().join("config.json"), serde_json::to_vec(&self.spec).unwrap()).unwrap();
    }

    fn status(&self, id: &str) -> Value {
        serde_json::from_slice::<Value>(&self.rt(&["state", id]).stdout).unwrap_or(json!({}))["status"].clone()
    }

    /// `run` must fail with `want` in its error and leave nothing behind.
    fn run_fails(&mut self, id: &str, script: &str, want: &str) {
        let out = self.run(id, script);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{id} should fail");
        assert!(err.contains(want), "{id}: error {err:?} should mention {want:?}");
        self.assert_clean(&[id]);
    }
}

#[test]
fn rt_process_capabilities() {
    if !privileged("rt_process_capabilities") {
        return;
    }
    let mut b = Bundle::new();
    let set = json!(["CAP_CHOWN", "CAP_KILL"]);
    b.spec["process"]["capabilities"] =
        json!({"bounding": set, "effective": set, "inheritable": set, "permitted": set, "ambient": set});
    let i = id("caps");
    let out = b.run_ok(&i, "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status");
    // CAP_CHOWN is bit 0, CAP_KILL bit 5.
    for line in out.lines() {
        assert!(line.ends_with("0000000000000021"), "{out}");
    }
    assert_eq!(out.lines().count(), 5, "{out}");
    b.assert_clean(&[&i]);
}

#[test]
fn rt_process_capabilities_fail() {
    if !privileged("rt_process_capabilities_fail") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["process"]["capabilities"]["bounding"] = json!(["CAP_TEST"]);
    b.run_fails(&id("caps-fail"), "true", "CAP_TEST");
}

#[test]
fn rt_process_user() {
    if !privileged("rt_process_user") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000, "umask": 63, "additionalGids": [1001]});
    let i = id("user");
    let out = b.run_ok(&i, "id -u; id -g; id -G; umask");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["1000", "1000", "1000", "1001", "0077"]);
    b.assert_clean(&[&i]);
}

#[test]
fn rt_process_oom_score_adj() {
    if !privileged("rt_process_oom_score_adj") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["process"]["oomScoreAdj"] = json!(500);
    let i = id("oom");
    assert_eq!(b.run_ok(&i, "cat /proc/self/oom_score_adj").trim(), "500");
    b.assert_clean(&[&i]);
}

#[test]
fn rt_process_rlimits_fail() {
    if !privileged("rt_process_rlimits_fail") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 1024}]);
    b.run_fails(&id("rlimits-fail"), "true", "limit");
}

#[test]
fn rt_root_readonly_true() {
    if !privileged("rt_root_readonly_true") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["root"]["readonly"] = json!(true);
    let i = id("root-ro");
    assert_eq!(b.run_ok(&i, "touch /x 2>/dev/null || echo ro").trim(), "ro");
    assert!(!b.path().join("rootfs/x").exists());
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_seccomp() {
    if !privileged("rt_linux_seccomp") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    let i = id("seccomp");
    let out = b.run_ok(&i, "mkdir /tmp/d 2>&1; echo done");
    assert!(out.contains("Operation not permitted") && out.contains("done"), "{out}");
    assert!(!b.path().join("rootfs/tmp/d").exists());
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_cgroups_cpus() {
    if !privileged("rt_linux_cgroups_cpus") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["linux"]["resources"] =
        json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}});
    let i = id("cpus");
    let out = b.run_ok(
        &i,
        "if [ -e /sys/fs/cgroup/cpu/cpu.shares ]; then \
           cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us \
               /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpuset/cpuset.mems; \
         else cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpuset.cpus /sys/fs/cgroup/cpuset.mems; fi",
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    // cgroup v1 takes the values as they are; v2 converts shares to a weight.
    let v1 = ["512", "50000", "100000", "0", "0"];
    let v2 = ["20", "50000", "100000", "0", "0"];
    assert!(words == v1 || words == v2, "{out}");
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_cgroups_hugetlb() {
    if !privileged("rt_linux_cgroups_hugetlb") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["linux"]["resources"] = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]});
    let i = id("hugetlb");
    // v1 hugetlb controller, the v2 mount of a hybrid host, or pure v2.
    let out = b.run_ok(
        &i,
        "cat /sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes 2>/dev/null || \
         cat /sys/fs/cgroup/unified/hugetlb.2MB.max 2>/dev/null || cat /sys/fs/cgroup/hugetlb.2MB.max",
    );
    assert_eq!(out.trim(), "4194304");
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_cgroups_devices() {
    if !privileged("rt_linux_cgroups_devices") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["linux"]["resources"] = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
        {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"}
    ]});
    // CAP_MKNOD, so that only the device cgroup can say no.
    let caps = json!(["CAP_MKNOD", "CAP_DAC_OVERRIDE"]);
    b.spec["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    let i = id("cg-devices");
    // v1: the kernel's list; v1 and v2 (eBPF filter): what is enforced.
    // mknod is allowed for every node (runc's and Docker's default); opening
    // one outside the rules fails with EPERM (ENXIO would mean the filter
    // let it through to a driver that is not there).
    let out = b.run_ok(
        &i,
        "cat /sys/fs/cgroup/devices/devices.list 2>/dev/null; \
         mknod /tmp/null2 c 1 3 && head -c1 /tmp/null2 && echo null-ok; \
         mknod /tmp/sdb b 8 16 && echo sdb-mknod-ok; \
         head -c1 /tmp/sdb 2>&1 >/dev/null | grep -q 'not permitted' && echo sdb-read-denied",
    );
    if Path::new("/sys/fs/cgroup/devices").is_dir() {
        assert!(out.lines().any(|l| l == "c 10:229 rw"), "{out}");
        assert!(out.lines().any(|l| l == "b 8:0 r"), "{out}");
        assert!(!out.lines().any(|l| l.starts_with("a ")), "deny-all took effect: {out}");
    }
    for want in ["null-ok", "sdb-mknod-ok", "sdb-read-denied"] {
        assert!(out.lines().any(|l| l == want), "{want}: {out}");
    }
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_ns_itype() {
    if !privileged("rt_linux_ns_itype") {
        return;
    }
    let mut b = Bundle::new();
    // A namespace not listed is inherited from the runtime.
    b.spec["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "uts");
    b.spec["hostname"] = Value::Null;
    let i = id("ns-itype");
    let inside = b.run_ok(&i, "readlink /proc/self/ns/uts");
    assert_eq!(inside.trim(), std::fs::read_link("/proc/self/ns/uts").unwrap().to_string_lossy());
    b.assert_clean(&[&i]);
}

#[test]
fn rt_linux_ns_path_type() {
    if !privileged("rt_linux_ns_path_type") {
        return;
    }
    let mut b = Bundle::new();
    for n in b.spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = json!("/proc/self/ns/uts");
        }
    }
    let out = b.run(&id("ns-path-type"), "true");
    assert!(!out.status.success(), "joining a uts namespace as the network namespace must fail");
    b.assert_clean(&[&id("ns-path-type")]);
}

#[test]
fn rt_config_updates_without_affect() {
    if !privileged("rt_config_updates_without_affect") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["process"]["args"] = json!(["sh", "-c", "echo created-config > /out"]);
    b.write_spec();
    let i = id("config-update");
    let bundle = b.path().to_str().unwrap().to_string();
    assert!(b.rt_detached(&["create", "--bundle", &bundle, &i]).success());
    b.spec["process"]["args"] = json!(["sh", "-c", "echo changed-config > /out"]);
    b.write_spec();
    assert!(b.rt(&["start", &i]).status.success());
    assert!(wait_for(10, || b.status(&i) == "stopped"));
    assert_eq!(std::fs::read_to_string(b.path().join("rootfs/out")).unwrap().trim(), "created-config");
    assert!(b.rt(&["delete", &i]).status.success());
    b.assert_clean(&[&i]);
}

#[test]
fn rt_killsig() {
    if !privileged("rt_killsig") {
        return;
    }
    for sig in ["USR1", "SIGUSR1", "10"] {
        let mut b = Bundle::new();
        b.spec["process"]["args"] =
            json!(["sh", "-c", "trap 'echo got > /sig; exit 0' USR1; touch /ready; while true; do sleep 0.05; done"]);
        b.write_spec();
        let i = id("killsig");
        let bundle = b.path().to_str().unwrap().to_string();
        assert!(b.rt_detached(&["create", "--bundle", &bundle, &i]).success());
        assert!(b.rt(&["start", &i]).status.success());
        assert!(wait_for(10, || b.path().join("rootfs/ready").exists()));
        assert!(b.rt(&["kill", &i, sig]).status.success(), "kill {sig}");
        assert!(wait_for(10, || b.status(&i) == "stopped"), "{sig} stops the container");
        assert!(b.path().join("rootfs/sig").exists(), "{sig} reached the process's handler");
        assert!(b.rt(&["delete", &i]).status.success());
        b.assert_clean(&[&i]);
    }
}

#[test]
fn rt_prestart_fail() {
    if !privileged("rt_prestart_fail") {
        return;
    }
    let mut b = Bundle::new();
    b.spec["hooks"] = json!({"prestart": [{"path": "/bin/false", "args": ["false"]}]});
    b.run_fails(&id("prestart-fail"), "touch /ran", "hook");
    assert!(!b.path().join("rootfs/ran").exists(), "the process must not run");
}

#[test]
fn rt_poststart_fail_and_poststop_fail() {
    if !privileged("rt_poststart_fail_and_poststop_fail") {
        return;
    }
    let mut b = Bundle::new();
    let out = b.path().join("output");
    let ok = |what: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo '{what} called' >> {}", out.display())]});
    let fail = json!({"path": "/bin/false", "args": ["false"]});
    b.spec["hooks"] = json!({"poststart": [fail, ok("post-start")], "poststop": [fail, ok("post-stop")]});
    let i = id("post-fail");
    // Failing poststart/poststop hooks are warnings: the remaining hooks and
    // the lifecycle go on.
    b.run_ok(&i, "true");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "post-start called\npost-stop called\n");
    b.assert_clean(&[&i]);
}
