//! `wharf run`'s security, device, rlimit, sysctl, cgroup and `--init`
//! flags, checked from inside a busybox container; bad values refused with
//! exit 125 and nothing left behind.

use std::path::Path;
use std::process::Output;
use wharf_tests::leaks::processes_mentioning;
use wharf_tests::{busybox_tar, mounts_under, privileged, TestStore};

fn store() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "-c".as_ref(), "CMD [\"/bin/sh\"]".as_ref(), "bb".as_ref()]);
    s
}

/// `wharf run --rm --network none ARGS…`.
fn run(s: &TestStore, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend_from_slice(args);
    s.run(all)
}

/// Runs and returns stdout; the container must exit 0.
fn out(s: &TestStore, args: &[&str]) -> String {
    let o = run(s, args);
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{args:?}: {stdout}\n{stderr}");
    stdout.into_owned()
}

/// The value of `Key:` in the container's /proc/self/status, as printed by `grep`.
fn status_field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
        .into()
}

fn cap_bits(text: &str, key: &str) -> u64 {
    u64::from_str_radix(&status_field(text, key), 16).unwrap()
}

/// Nothing of any container remains: mounts, dirs, runtime state, processes.
fn assert_clean(s: &TestStore) {
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    let ctrs = std::fs::read_dir(s.root.join("containers")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(ctrs, 0, "container dirs leaked");
    let state = std::fs::read_dir(s.dir.path().join("run/runtime")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(state, 0, "runtime state leaked");
    let procs = processes_mentioning(&s.dir.path().to_string_lossy());
    assert!(procs.is_empty(), "processes leaked: {procs:?}");
    s.assert_consistent();
}

const STATUS: &str = "grep -E 'Cap|NoNewPrivs|Seccomp:' /proc/self/status";

#[test]
fn capabilities_privileged_and_security_opts() {
    if !privileged("capabilities_privileged_and_security_opts") {
        return;
    }
    let s = store();
    let (net_admin, chown, kill) = (1u64 << 12, 1u64 << 0, 1u64 << 5);
    let base = cap_bits(&out(&s, &["bb", "sh", "-c", STATUS]), "CapEff");
    let t = out(&s, &["--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN", "bb", "sh", "-c", STATUS]);
    assert_eq!(cap_bits(&t, "CapEff"), (base | net_admin) & !chown, "{t}");
    assert_eq!(cap_bits(&t, "CapBnd"), cap_bits(&t, "CapEff"));
    let t = out(&s, &["--cap-drop", "ALL", "--cap-add", "KILL", "bb", "sh", "-c", STATUS]);
    assert_eq!(cap_bits(&t, "CapEff"), kill, "{t}");
    // A non-root user keeps the bounding set only, as under Docker.
    let t = out(&s, &["-u", "nobody", "bb", "sh", "-c", STATUS]);
    assert_eq!((cap_bits(&t, "CapEff"), cap_bits(&t, "CapBnd")), (0, base), "{t}");

    // --privileged: every capability this process has, no seccomp, /sys rw, the host's devices.
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let script = format!("{STATUS}; grep ' /sys ' /proc/mounts; ls /dev | wc -l");
    let t = out(&s, &["--privileged", "bb", "sh", "-c", &script]);
    assert_eq!(cap_bits(&t, "CapEff"), cap_bits(&host, "CapBnd"), "{t}");
    assert_eq!(status_field(&t, "Seccomp"), "0");
    assert!(t.contains("sysfs rw,"), "/sys is read-write: {t}");
    let ndev: usize = t.lines().rev().find_map(|l| l.trim().parse().ok()).unwrap();
    assert!(ndev > 20, "the host's devices: {t}");

    let t = out(&s, &["bb", "sh", "-c", STATUS]);
    assert_eq!((status_field(&t, "NoNewPrivs"), status_field(&t, "Seccomp")), ("0".into(), "2".into()), "{t}");
    for opt in ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"] {
        let t = out(&s, &["--security-opt", opt, "bb", "sh", "-c", STATUS]);
        assert_eq!(status_field(&t, "NoNewPrivs"), "1", "{opt}: {t}");
    }
    let t = out(&s, &["--security-opt", "seccomp=unconfined", "bb", "sh", "-c", STATUS]);
    assert_eq!(status_field(&t, "Seccomp"), "0");
    // A profile in Docker's format: everything but mkdir.
    let profile = s.path("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let t = out(&s, &["--security-opt", &opt, "bb", "sh", "-c", "mkdir /tmp/d 2>&1; touch /tmp/f && echo touched"]);
    assert!(t.contains("Operation not permitted") && t.contains("touched"), "{t}");
    let t = out(
        &s,
        &["--security-opt", "systempaths=unconfined", "bb", "sh", "-c", "grep ' /proc/kcore ' /proc/mounts | wc -l"],
    );
    assert_eq!(t.trim(), "0", "no masked paths: {t}");
    assert_clean(&s);
}

#[test]
fn ulimits_sysctls_shm_and_groups() {
    if !privileged("ulimits_sysctls_shm_and_groups") {
        return;
    }
    let s = store();
    let t = out(
        &s,
        &["--ulimit", "nofile=100:200", "--ulimit", "core=0", "bb", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"],
    );
    assert_eq!(t.split_whitespace().collect::<Vec<_>>(), ["100", "200", "0"]);
    let t = out(
        &s,
        &[
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmax=123456789",
            "bb",
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax",
        ],
    );
    assert_eq!(t.split_whitespace().collect::<Vec<_>>(), ["1", "123456789"]);
    let shm = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["bb", "sh", "-c", "df -k /dev/shm | tail -1"]);
        out(&s, &a).split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(shm(&[]), "65536", "Docker's default 64m");
    assert_eq!(shm(&["--shm-size", "32m"]), "32768");
    let t = out(&s, &["--group-add", "nogroup", "--group-add", "4242", "bb", "id", "-G"]);
    let mut groups: Vec<&str> = t.split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["0", "4242", "65534"]);
    assert_clean(&s);
}

#[test]
fn devices() {
    if !privileged("devices") {
        return;
    }
    let s = store();
    let t = out(
        &s,
        &[
            "--device",
            "/dev/null:/dev/mynull",
            "bb",
            "sh",
            "-c",
            "ls -l /dev/mynull; echo x > /dev/mynull && head -c 1 /dev/mynull | wc -c",
        ],
    );
    assert!(t.starts_with('c') && t.contains("1,   3") && t.trim_end().ends_with('0'), "{t}");
    // Regression: -m replaced linux.resources, and with it the default
    // "deny all" device rule: any node the container made was usable.
    let t = out(&s, &["-m", "64m", "bb", "sh", "-c", "mknod /tmp/n c 10 229 && (echo -n '' > /tmp/n) 2>&1 || true"]);
    assert!(t.contains("Operation not permitted"), "a node outside the allowed devices opened: {t}");
    // A device shared read-only cannot be opened for writing (regression:
    // the runtime allowed every linux.devices node rwm).
    let Some(dev) = ["/dev/fuse", "/dev/loop-control", "/dev/net/tun"].into_iter().find(|d| Path::new(d).exists())
    else {
        panic!("no /dev/fuse, /dev/loop-control or /dev/net/tun on this host to share read-only");
    };
    let script = "echo -n '' > /dev/d && echo opened-for-write || true";
    let t = out(&s, &["--device", &format!("{dev}:/dev/d:r"), "bb", "sh", "-c", script]);
    assert!(!t.contains("opened-for-write"), "{dev} shared read-only was writable");
    let t = out(&s, &["--device", &format!("{dev}:/dev/d:rw"), "bb", "sh", "-c", script]);
    assert!(t.contains("opened-for-write"), "{dev} shared rw: {t}");
    assert_clean(&s);
}

#[test]
fn init_is_tini_and_reaps() {
    if !privileged("init_is_tini_and_reaps") {
        return;
    }
    let s = store();
    let script = "tr '\\0' ' ' < /proc/1/cmdline; echo; (sleep 0.1 &); sleep 0.5; ps -o stat= | grep -c Z || true";
    let t = out(&s, &["--init", "bb", "sh", "-c", script]);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("/sbin/docker-init -- sh -c"), "pid 1: {t}");
    assert_eq!(lines.last().map(|l| l.trim()), Some("0"), "no zombie: {t}");
    let o = run(&s, &["--init", "bb", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "tini passes the exit status on");
    let t = out(&s, &["--init", "bb", "grep", " /sbin/docker-init ", "/proc/mounts"]);
    assert!(t.split_whitespace().nth(3).is_some_and(|o| o.split(',').any(|o| o == "ro")), "bound read-only: {t}");
    assert_clean(&s);
}

/// Which hierarchy holds the memory controller: cgroup v1 or v2.
fn memory_is_v1() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
}

#[test]
fn memory_and_cpu_cgroup_values() {
    if !privileged("memory_and_cpu_cgroup_values") {
        return;
    }
    let s = store();
    // Every file that exists, as NAME=VALUE, read in the container's own cgroup.
    let script = "for f in memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes \
                  memory/memory.soft_limit_in_bytes cpu/cpu.shares cpu,cpuacct/cpu.shares cpuset/cpuset.cpus \
                  cpuset/cpuset.mems memory.max memory.swap.max memory.low cpu.weight cpuset.cpus cpuset.mems; do \
                  [ -f /sys/fs/cgroup/$f ] && echo \"$f=$(cat /sys/fs/cgroup/$f)\"; done; cat /proc/self/oom_score_adj";
    let t = out(
        &s,
        &[
            "-m",
            "64m",
            "--memory-swap",
            "128m",
            "--memory-reservation",
            "32m",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--cpuset-mems",
            "0",
            "--oom-score-adj",
            "300",
            "bb",
            "sh",
            "-c",
            script,
        ],
    );
    let get = |k: &str| t.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).map(str::to_string);
    assert_eq!(t.lines().last(), Some("300"), "{t}");
    if memory_is_v1() {
        assert_eq!(get("memory/memory.limit_in_bytes").as_deref(), Some("67108864"), "{t}");
        assert_eq!(get("memory/memory.soft_limit_in_bytes").as_deref(), Some("33554432"), "{t}");
        match get("memory/memory.memsw.limit_in_bytes") {
            Some(v) => assert_eq!(v, "134217728", "{t}"),
            None => eprintln!("NOTE: no memory.memsw.* (kernel without swap accounting): --memory-swap not checked"),
        }
        let shares = get("cpu/cpu.shares").or_else(|| get("cpu,cpuacct/cpu.shares"));
        assert_eq!(shares.as_deref(), Some("512"), "{t}");
        assert_eq!((get("cpuset/cpuset.cpus"), get("cpuset/cpuset.mems")), (Some("0".into()), Some("0".into())), "{t}");
    } else {
        // cgroup v2: swap.max counts swap alone; the weight is runc's conversion of 512 shares.
        assert_eq!(get("memory.max").as_deref(), Some("67108864"), "{t}");
        assert_eq!(get("memory.low").as_deref(), Some("33554432"), "{t}");
        if let Some(v) = get("memory.swap.max") {
            assert_eq!(v, "67108864", "{t}");
        }
        assert_eq!(get("cpu.weight").as_deref(), Some("20"), "{t}");
        assert_eq!((get("cpuset.cpus"), get("cpuset.mems")), (Some("0".into()), Some("0".into())), "{t}");
    }
    assert_clean(&s);
}

#[test]
fn env_file_follows_dockers_rules() {
    if !privileged("env_file_follows_dockers_rules") {
        return;
    }
    let s = store();
    let f = s.path("env");
    // Regression: values were trimmed (Docker keeps them as written) and a key with blanks passed.
    std::fs::write(&f, "# comment\n  A=one two \nB=\n").unwrap();
    let script = "printf '[%s][%s]' \"$A\" \"${B-unset}\"";
    let t = out(&s, &["--env-file", f.to_str().unwrap(), "bb", "sh", "-c", script]);
    assert_eq!(t, "[one two ][]");
    std::fs::write(&f, "BAD KEY=1\n").unwrap();
    let o = run(&s, &["--env-file", f.to_str().unwrap(), "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("variable 'BAD KEY' contains whitespaces"));
    assert_clean(&s);
}

#[test]
fn labels_and_stop_settings_are_accepted() {
    if !privileged("labels_and_stop_settings_are_accepted") {
        return;
    }
    let s = store();
    let f = s.path("labels");
    std::fs::write(&f, "# comment\na=1\n\nb\n").unwrap();
    let lf = f.to_str().unwrap();
    let t =
        out(&s, &["-l", "x=y", "--label-file", lf, "--stop-signal", "usr1", "--stop-timeout", "3", "bb", "echo", "ok"]);
    assert_eq!(t.trim(), "ok");
    assert_clean(&s);
}

#[test]
fn bad_values_are_refused_with_125_and_leave_nothing() {
    if !privileged("bad_values_are_refused_with_125_and_leave_nothing") {
        return;
    }
    let s = store();
    let file = s.path("not-a-device");
    std::fs::write(&file, "x").unwrap();
    let not_dev = file.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--cap-add", "foo"], "invalid CapAdd: unknown capability: \"CAP_FOO\""),
        (&["--cap-drop", "CAP_NOPE"], "invalid CapDrop: unknown capability: \"CAP_NOPE\""),
        (&["--ulimit", "nofile=x"], "invalid ulimit value"),
        (&["--ulimit", "files=1"], "invalid ulimit type: files"),
        (&["--ulimit", "nofile=20:10"], "ulimit soft limit must be less than or equal to hard limit: 20 > 10"),
        (&["--sysctl", "kernel.pid_max=100"], "sysctl 'kernel.pid_max=100' is not allowed"),
        (&["--device", "/dev/wharf-no-such-device"], "error gathering device information while adding custom device"),
        (&["--device", not_dev], "not a device node"),
        (&["--device", "/dev/null:/dev/x:rwz"], "invalid device mode: rwz"),
        (&["--security-opt", "foo=bar"], "invalid --security-opt: \"foo=bar\""),
        (
            &["--security-opt", "seccomp=/no/such/profile.json"],
            "opening seccomp profile (/no/such/profile.json) failed",
        ),
        (&["--security-opt", "no-new-privileges=maybe"], "invalid --security-opt"),
        (&["--memory-swap", "1g"], "You should always set the Memory limit when using Memoryswap limit"),
        (&["-m", "64m", "--memory-swap", "32m"], "Minimum memoryswap limit should be larger than memory limit"),
        (&["--cpuset-cpus", "4095"], "Requested CPUs are not available - requested 4095"),
        (&["--cpuset-cpus", "a-b"], "Invalid value a-b for cpuset cpus"),
        (&["--oom-score-adj", "2000"], "range for oom score adj is [-1000, 1000]"),
        (&["--stop-signal", "SIGNOPE"], "invalid signal: SIGNOPE"),
        (&["--shm-size", "lots"], "invalid argument \"lots\" for \"--shm-size\" flag"),
        (&["--group-add", "no-such-group"], "unable to find group no-such-group"),
        (&["--label-file", "/no/such/labels"], "--label-file /no/such/labels"),
        (&["--env-file", "/no/such/env"], "--env-file /no/such/env"),
    ];
    for (args, want) in cases {
        let mut a = args.to_vec();
        a.extend(["bb", "true"]);
        let o = run(&s, &a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
    }
    // net.* sysctls would change the host's own network namespace.
    let o = s.run(["run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not allowed in the host network namespace"));
    assert_clean(&s);
}
