//! `wharf run --rm` end to end: the image's overlay rootfs, the runtime
//! library in-process, exit status, isolation, limits, mounts, and nothing
//! left behind afterwards.

use std::process::Output;
use wharf_tests::{busybox_tar, mounts_under, privileged, TestStore};

fn store() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "-c".as_ref(), "CMD [\"/bin/sh\"]".as_ref(), "bb".as_ref()]);
    s
}

fn run(s: &TestStore, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    s.run(all)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Nothing of any container remains: mounts, container dirs, runtime state.
fn assert_clean(s: &TestStore) {
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    let ctrs = std::fs::read_dir(s.root.join("containers")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(ctrs, 0, "container dirs leaked");
    let state = std::fs::read_dir(s.dir.path().join("run/runtime")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(state, 0, "runtime state leaked");
    s.assert_consistent();
}

#[test]
fn exit_status_env_workdir_user_entrypoint() {
    if !privileged("exit_status_env_workdir_user_entrypoint") {
        return;
    }
    let s = store();
    let o = run(&s, &["bb", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    let env_file = s.path("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n").unwrap();
    let o = run(
        &s,
        &[
            "-e",
            "A=1",
            "--env-file",
            env_file.to_str().unwrap(),
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "bb",
            "sh",
            "-c",
            "echo $A $FROM_FILE $(pwd) $(id -u)",
        ],
    );
    assert_eq!(stdout(&o).trim(), "1 yes /tmp 65534", "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&s, &["--entrypoint", "/bin/echo", "bb", "from", "entrypoint"]);
    assert_eq!(stdout(&o).trim(), "from entrypoint");
    // Docker's and podman's code for a command not found.
    let o = run(&s, &["bb", "/no/such/binary"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/no/such/binary"));
    assert_clean(&s);
}

#[test]
fn namespaces_isolate() {
    if !privileged("namespaces_isolate") {
        return;
    }
    let s = store();
    let o = run(
        &s,
        &[
            "--network",
            "none",
            "--hostname",
            "box1",
            "bb",
            "sh",
            "-c",
            "hostname; echo $$; ls /sys/class/net; ps -o pid | wc -l",
        ],
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box1", "{out}");
    assert_eq!(lines[1], "1", "the command is pid 1: {out}");
    assert_eq!(lines[2], "lo", "--network none has only lo: {out}");
    let o = run(&s, &["--network", "host", "bb", "ls", "/sys/class/net"]);
    assert!(stdout(&o).lines().count() > 1, "host network: {}", stdout(&o));
    assert_clean(&s);
}

#[test]
fn limits_are_enforced() {
    if !privileged("limits_are_enforced") {
        return;
    }
    let s = store();
    // The shell keeps 100 MB of command output in memory: OOM-killed, 128+9.
    let o =
        run(&s, &["--memory", "32m", "bb", "sh", "-c", "a=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived"]);
    assert_eq!(o.status.code(), Some(137), "{} {}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    let o = run(&s, &["--pids-limit", "10", "bb", "sh", "-c", "for i in $(seq 30); do sleep 1 & done; wait; echo end"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("can't fork"), "the 11th process must fail: {err}");
    assert_ne!(o.status.code(), Some(0));
    assert_clean(&s);
}

#[test]
fn mounts_and_read_only() {
    if !privileged("mounts_and_read_only") {
        return;
    }
    let s = store();
    let vol = s.path("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f"), "host file\n").unwrap();
    let v_ro = format!("{}:/data:ro", vol.display());
    let o = run(&s, &["--read-only", "-v", &v_ro, "--tmpfs", "/scratch", "bb", "sh", "-c",
        "cat /data/f; touch /data/x 2>/dev/null || echo vol-ro; touch /x 2>/dev/null || echo root-ro; touch /scratch/y && echo tmpfs-rw"]);
    assert_eq!(stdout(&o), "host file\nvol-ro\nroot-ro\ntmpfs-rw\n", "{}", String::from_utf8_lossy(&o.stderr));
    let v_rw = format!("{}:/data", vol.display());
    run(&s, &["-v", &v_rw, "bb", "sh", "-c", "echo written > /data/out"]);
    assert_eq!(std::fs::read_to_string(vol.join("out")).unwrap(), "written\n");
    // Writes to the rootfs do not outlive the container.
    run(&s, &["bb", "sh", "-c", "echo x > /persist"]);
    let o = run(&s, &["bb", "sh", "-c", "cat /persist 2>/dev/null || echo gone"]);
    assert_eq!(stdout(&o).trim(), "gone");
    // (`-v relative:/data` is a named volume now; a relative container path is the error.)
    let o = run(&s, &["-v", "/tmp:relative", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("absolute"));
    assert_clean(&s);
}

#[test]
fn tty_gives_a_terminal() {
    if !privileged("tty_gives_a_terminal") {
        return;
    }
    let s = store();
    let script = wharf_tests::require_tool("script");
    let cmd = format!(
        "{} --root {} --run-root {} run --rm -t bb sh -c 'tty; test -t 0 && echo is-a-tty'",
        wharf_tests::bin("wharf").display(),
        s.root.display(),
        s.dir.path().join("run").display()
    );
    let o = std::process::Command::new(script).args(["-qec", &cmd, "/dev/null"]).output().unwrap();
    let out = stdout(&o);
    assert!(out.contains("/dev/pts/") && out.contains("is-a-tty"), "{out} {}", String::from_utf8_lossy(&o.stderr));
    assert_clean(&s);
}

#[test]
fn a_missing_image_is_a_clear_error() {
    let s = TestStore::new();
    let o = run(&s, &["--pull", "never", "nosuch:1", "true"]);
    assert_eq!(o.status.code(), Some(125));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not found") && err.contains("nosuch"), "{err}");
}

/// What `docker run` gives a container: Docker's 14 capabilities, its
/// seccomp profile (mode 2), and no_new_privs off so setuid binaries work.
#[test]
fn docker_default_privileges() {
    if !privileged("docker_default_privileges") {
        return;
    }
    let s = store();
    let o = run(
        &s,
        &[
            "bb",
            "sh",
            "-c",
            "grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status; unshare -U true 2>&1 || echo denied",
        ],
    );
    let out = stdout(&o);
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("denied"), "unshare(CLONE_NEWUSER) is refused by the default profile: {out}");
    assert_clean(&s);
}
