//! Where clients (containerd, podman, the runtime validation suites) look:
//! kill/delete/exec/events/features/--version/--log answers, side by side
//! with runc on the same bundle where that is cheap.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// runc on the same bundles, with its own state root in the lab; output
/// through files, as [`Lab::rt`] (a detached container inherits them).
fn runc(lab: &Lab, args: &[&str]) -> Output {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (o, e) = (lab.dir.path().join(format!("runc-out-{n}")), lab.dir.path().join(format!("runc-err-{n}")));
    let status = Command::new("runc")
        .arg("--root")
        .arg(lab.dir.path().join("runc-state"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .expect("runc is not installed (apt-get install runc)");
    Output { status, stdout: std::fs::read(&o).unwrap(), stderr: std::fs::read(&e).unwrap() }
}

fn wait_stopped(state: impl Fn() -> Value) {
    let t = Instant::now();
    while state()["status"] != "stopped" {
        assert!(t.elapsed() < Duration::from_secs(10), "container did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn runc_state(lab: &Lab, id: &str) -> Value {
    serde_json::from_slice(&runc(lab, &["state", id]).stdout).unwrap_or(json!({"status": "stopped"}))
}

/// Starts `args` detached with both runtimes; returns (wharf id, runc id).
fn start_both(lab: &mut Lab, name: &str, cfg: &Value) -> (String, String) {
    let b = lab.bundle(name, cfg);
    let w = lab.id(name);
    let r = format!("{w}-runc");
    for (id, out) in [
        (&w, lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &w])),
        (&r, runc(lab, &["run", "-d", "-b", b.to_str().unwrap(), &r])),
    ] {
        assert!(out.status.success(), "run {id}: {}", text(&out.stderr));
    }
    (w, r)
}

#[test]
fn kill_answers_as_runc_does() {
    if !privileged("kill_answers_as_runc_does") {
        return;
    }
    let mut lab = Lab::new("kill");
    let cfg = lab.config(&["sleep", "1000"]);
    let (w, r) = start_both(&mut lab, "k", &cfg);
    // Signal 0 only checks the container is there (kill(2) semantics).
    assert!(lab.rt(&["kill", &w, "0"]).status.success());
    assert!(runc(&lab, &["kill", &r, "0"]).status.success());
    assert!(lab.rt(&["kill", &w, "KILL"]).status.success());
    assert!(runc(&lab, &["kill", &r, "KILL"]).status.success());
    wait_stopped(|| lab.state(&w));
    wait_stopped(|| runc_state(&lab, &r));
    // Was "container … is stopped: cannot kill": containerd maps only
    // "container not running" to NotFound, so it could stop no pod.
    let (wo, ro) = (lab.rt(&["kill", &w, "KILL"]), runc(&lab, &["kill", &r, "KILL"]));
    assert_eq!(wo.status.code(), ro.status.code());
    assert!(text(&ro.stderr).contains("container not running"), "{}", text(&ro.stderr));
    assert!(text(&wo.stderr).contains("container not running"), "{}", text(&wo.stderr));
    // Was refused too: `kill --all` of a stopped container succeeds.
    assert!(runc(&lab, &["kill", "--all", &r, "KILL"]).status.success());
    let out = lab.rt(&["kill", "--all", &w, "KILL"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(runc(&lab, &["delete", &r]).status.success());
    assert!(lab.rt(&["delete", &w]).status.success());
    lab.assert_clean();
}

#[test]
fn kill_all_reaches_children_left_by_an_exited_init() {
    if !privileged("kill_all_reaches_children_left_by_an_exited_init") {
        return;
    }
    let mut lab = Lab::new("killall");
    // Host pid namespace: init exits, its child lives on in the cgroup.
    let mut cfg = lab.config(&["sh", "-c", "sleep 1000 & exit 0"]);
    cfg["linux"]["namespaces"] = json!([{"type": "mount"}]);
    cfg["hostname"] = Value::Null;
    let id = lab.id("orphan");
    let b = lab.bundle("orphan", &cfg);
    assert!(lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &id]).status.success());
    wait_stopped(|| lab.state(&id));
    let left = processes_with(&id);
    assert!(!left.is_empty(), "the background sleep should still run");
    // Was refused ("is stopped: cannot kill"): the child survived until delete.
    let out = lab.rt(&["kill", "--all", &id, "KILL"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = Instant::now();
    while !processes_with(&id).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(5), "kill --all left {:?}", processes_with(&id));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(lab.rt(&["delete", &id]).status.success());
    lab.assert_clean();
}

#[test]
fn delete_force_of_absent_or_half_made_container_succeeds() {
    if !privileged("delete_force_of_absent_or_half_made_container_succeeds") {
        return;
    }
    let mut lab = Lab::new("delforce");
    // Absent: exit 0 with --force (runc and crun too), an error without.
    assert!(runc(&lab, &["delete", "--force", "nope-404"]).status.success());
    assert!(lab.rt(&["delete", "--force", "nope-404"]).status.success());
    assert!(!lab.rt(&["delete", "nope-404"]).status.success());
    // Was "does not exist" (exit 1, which podman reports as a failure): a
    // state directory a killed `create` left without its state.json.
    let id = lab.id("half");
    std::fs::create_dir_all(lab.root.join(&id)).unwrap();
    std::fs::write(lab.root.join(&id).join("exec.fifo"), "").unwrap();
    let out = lab.rt(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!lab.root.join(&id).exists());
    // A `create` killed while its createRuntime hook runs: init and its
    // cgroup exist; delete --force removes them.
    let mut cfg = lab.config(&["sleep", "1000"]);
    cfg["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "1000"]}]});
    let id = lab.id("killed");
    let b = lab.bundle("killed", &cfg);
    let mut create = lab.cmd().args(["create", "-b", b.to_str().unwrap(), &id]).spawn().unwrap();
    let hook = wait_for_child(create.id() as i32);
    create.kill().unwrap();
    create.wait().unwrap();
    // SAFETY: the hook is a process this test's create started.
    unsafe { libc::kill(hook, libc::SIGKILL) };
    let out = lab.rt(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    lab.assert_clean();
}

/// The first child of `pid` (the createRuntime hook of a `create`).
fn wait_for_child(pid: i32) -> i32 {
    let t = Instant::now();
    loop {
        let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for k in kids.split_whitespace().filter_map(|k| k.parse::<i32>().ok()) {
            if std::fs::read_to_string(format!("/proc/{k}/comm")).is_ok_and(|c| c.trim() == "sleep") {
                return k;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(20), "the createRuntime hook never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn exec_of_a_missing_binary_exits_255() {
    if !privileged("exec_of_a_missing_binary_exits_255") {
        return;
    }
    let mut lab = Lab::new("exec255");
    let cfg = lab.config(&["sleep", "1000"]);
    let (w, r) = start_both(&mut lab, "e", &cfg);
    // Was 1: callers tell a failed exec (255) from the process's own code.
    let ro = runc(&lab, &["exec", &r, "/no/such/binary"]);
    let wo = lab.rt(&["exec", &w, "/no/such/binary"]);
    assert_eq!(ro.status.code(), Some(255));
    assert_eq!(wo.status.code(), Some(255), "{}", text(&wo.stderr));
    assert_eq!(lab.rt(&["exec", &w, "sh", "-c", "exit 3"]).status.code(), Some(3));
    assert!(runc(&lab, &["delete", "--force", &r]).status.success());
    assert!(lab.rt(&["delete", "--force", &w]).status.success());
    lab.assert_clean();
}

#[test]
fn events_stats_use_runcs_schema() {
    if !privileged("events_stats_use_runcs_schema") {
        return;
    }
    let mut lab = Lab::new("events");
    let cfg = lab.config(&["sleep", "1000"]);
    let (w, r) = start_both(&mut lab, "ev", &cfg);
    let parse = |o: Output| -> Value {
        assert!(o.status.success(), "{}", text(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (we, re) = (parse(lab.rt(&["events", "--stats", &w])), parse(runc(&lab, &["events", "--stats", &r])));
    assert_eq!(we["type"], "stats");
    // Was a flat {memory_usage, cpu_usage_ns, …}: go-runc decoded zeros.
    for key in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(re["data"][key].is_object(), "runc: {key}");
        assert!(we["data"][key].is_object(), "wharf: {key} in {we}");
    }
    assert!(we["data"].as_object().unwrap().contains_key("network_interfaces"));
    assert!(we["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{we}");
    assert!(we["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{we}");
    assert!(we["data"]["memory"]["usage"]["limit"].as_u64().unwrap() > 0, "{we}");
    assert_eq!(we["data"]["pids"]["current"], 1);
    assert_eq!(re["data"]["pids"]["current"], 1);
    // Once stopped, both refuse.
    assert!(lab.rt(&["kill", &w, "KILL"]).status.success());
    assert!(runc(&lab, &["kill", &r, "KILL"]).status.success());
    wait_stopped(|| lab.state(&w));
    wait_stopped(|| runc_state(&lab, &r));
    assert_eq!(runc(&lab, &["events", "--stats", &r]).status.code(), Some(1));
    assert_eq!(lab.rt(&["events", "--stats", &w]).status.code(), Some(1));
    assert!(runc(&lab, &["delete", &r]).status.success());
    assert!(lab.rt(&["delete", &w]).status.success());
    lab.assert_clean();
}

#[test]
fn version_has_a_commit_line_and_log_file_is_created() {
    if !privileged("version_has_a_commit_line_and_log_file_is_created") {
        return;
    }
    let lab = Lab::new("version");
    let out = lab.rt(&["--version"]);
    let v = text(&out.stdout);
    // Was missing: runc and crun print "commit: …" (clients parse it).
    assert!(v.lines().any(|l| l.starts_with("commit: ") && l.len() > 8), "{v}");
    let log = lab.dir.path().join("log.json");
    // Was not created when nothing was logged.
    let out = lab.rt(&["--log", log.to_str().unwrap(), "--log-format", "json", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(log.exists());
}
