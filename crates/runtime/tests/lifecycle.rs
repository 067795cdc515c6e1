//! create/start/state/kill/delete/run/list/ps/exec/pause/resume/update through the CLI.

mod common;

use common::*;
use serde_json::json;

#[test]
fn create_start_kill_delete_walks_the_states() {
    if !privileged("create_start_kill_delete_walks_the_states") {
        return;
    }
    let mut lab = Lab::new("states");
    let id = lab.id("c");
    let b = lab.bundle("c", &lab.config(&["sleep", "100"]));
    let pidfile = lab.dir.path().join("pid");
    let out = lab.rt(&["create", "-b", b.to_str().unwrap(), "--pid-file", pidfile.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let st = lab.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // The user process has not run yet: init is still our binary.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.to_string_lossy().contains("wharf-runtime"), "{exe:?}");
    // Wrong-state operations give errors.
    let out = lab.rt(&["pause", &id]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is created"), "{}", text(&out.stderr));
    assert!(lab.rt(&["start", &id]).status.success());
    assert_eq!(lab.state(&id)["status"], "running");
    let out = lab.rt(&["start", &id]);
    assert!(!out.status.success(), "second start must fail");
    let out = lab.rt(&["delete", &id]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("running"), "{}", text(&out.stderr));
    assert!(lab.rt(&["kill", &id, "KILL"]).status.success());
    for _ in 0..100 {
        if lab.state(&id)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(lab.state(&id)["status"], "stopped");
    assert!(!lab.rt(&["kill", &id]).status.success(), "kill of a stopped container must fail");
    let out = lab.rt(&["delete", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    lab.assert_clean();
}

#[test]
fn missing_container_is_a_clear_error() {
    if !privileged("missing_container_is_a_clear_error") {
        return;
    }
    let lab = Lab::new("missing");
    for verb in ["state", "start", "kill", "delete", "pause", "resume", "ps"] {
        let out = lab.rt(&[verb, "nope-404"]);
        assert_eq!(out.status.code(), Some(1), "{verb}");
        assert!(text(&out.stderr).contains("container nope-404 does not exist"), "{verb}: {}", text(&out.stderr));
    }
}

#[test]
fn run_passes_stdio_and_exit_status() {
    if !privileged("run_passes_stdio_and_exit_status") {
        return;
    }
    let mut lab = Lab::new("exit");
    let cfg = lab.config(&["sh", "-c", "echo out; echo err >&2; exit 3"]);
    let (code, out, err) = lab.run("x", &cfg);
    assert_eq!(code, 3);
    assert_eq!(out, "out\n");
    assert!(err.contains("err"), "{err}");
    // Without a pid namespace the shell is not pid 1, so the signal is not ignored.
    let mut cfg = lab.config(&["sh", "-c", "kill -TERM $$"]);
    cfg["linux"]["namespaces"] = json!([{"type": "mount"}]);
    cfg["hostname"] = serde_json::Value::Null;
    assert_eq!(lab.run("sig", &cfg).0, 128 + 15);
    lab.assert_clean();
}

/// The container's process ignores and blocks no signal, whatever the
/// caller did (Rust ignores SIGPIPE; the library may be called from a
/// thread that blocks signals): `yes | head -1` ends quietly, as under runc.
#[test]
fn process_starts_with_default_signals() {
    if !privileged("process_starts_with_default_signals") {
        return;
    }
    let mut lab = Lab::new("signals");
    let cfg = lab.config(&["sh", "-c", "grep -E '^Sig(Blk|Ign):' /proc/self/status; yes | head -1"]);
    let (code, out, err) = lab.run("s", &cfg);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\ny\n");
    assert!(!err.contains("Broken pipe"), "{err}");
    lab.assert_clean();
}

#[test]
fn run_keep_and_detach() {
    if !privileged("run_keep_and_detach") {
        return;
    }
    let mut lab = Lab::new("keep");
    let id = lab.id("k");
    let b = lab.bundle("k", &lab.config(&["true"]));
    let out = lab.rt(&["run", "--keep", "-b", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(lab.state(&id)["status"], "stopped");
    assert!(lab.rt(&["delete", &id]).status.success());
    let id = lab.id("d");
    let b = lab.bundle("d", &lab.config(&["sleep", "100"]));
    let out = lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(lab.state(&id)["status"], "running");
    let out = lab.rt(&["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(text(&lab.rt(&["list", "-q"]).stdout).trim(), id);
    let out = lab.rt(&["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids.len(), 1);
    assert!(lab.rt(&["delete", "--force", &id]).status.success());
    lab.assert_clean();
}

#[test]
fn kill_all_and_force_delete_running_container() {
    if !privileged("kill_all_and_force_delete_running_container") {
        return;
    }
    let mut lab = Lab::new("force");
    let id = lab.id("f");
    let b = lab.bundle("f", &lab.config(&["sh", "-c", "sleep 100 & sleep 100 & wait"]));
    assert!(lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &id]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(100));
    let out = lab.rt(&["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(lab.rt(&["kill", "--all", &id, "9"]).status.success());
    let out = lab.rt(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for p in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{p}")).exists()
                || std::fs::read_to_string(format!("/proc/{p}/stat")).map(|s| s.contains(") Z")).unwrap_or(true)
        );
    }
    lab.assert_clean();
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup() {
    if !privileged("exec_joins_every_namespace_and_the_cgroup") {
        return;
    }
    let mut lab = Lab::new("exec");
    let id = lab.id("e");
    let mut cfg = lab.config(&["sleep", "100"]);
    cfg["hostname"] = json!("exec-box");
    let b = lab.bundle("e", &cfg);
    assert!(lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &id]).status.success());
    let pid = lab.state(&id)["pid"].as_i64().unwrap();
    let script = "for n in mnt uts ipc net pid cgroup; do readlink /proc/self/ns/$n; done; hostname; echo $FOO; pwd; id -u; cat /proc/self/cgroup; echo ==; cat /proc/1/cgroup";
    let out = lab.rt(&["exec", "--env", "FOO=bar", "--cwd", "/tmp", "--user", "1000:1000", &id, "sh", "-c", script]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = text(&out.stdout);
    let mut lines = got.lines();
    for n in ["mnt", "uts", "ipc", "net", "pid", "cgroup"] {
        let want = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(lines.next().unwrap(), want.to_str().unwrap(), "{n}");
    }
    assert_eq!(lines.next(), Some("exec-box"));
    assert_eq!(lines.next(), Some("bar"));
    assert_eq!(lines.next(), Some("/tmp"));
    assert_eq!(lines.next(), Some("1000"));
    // Same cgroup as init (both seen through the container's cgroup namespace).
    let rest: Vec<&str> = lines.collect();
    let (mine, init) = rest.split_at(rest.iter().position(|l| *l == "==").unwrap());
    assert_eq!(mine, &init[1..]);
    assert!(mine.len() > 3);
    // Exit status of exec comes back.
    let out = lab.rt(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    // A missing binary is a clear error.
    let out = lab.rt(&["exec", &id, "no-such-binary"]);
    assert!(text(&out.stderr).contains("not found"), "{}", text(&out.stderr));
    assert!(lab.rt(&["delete", "--force", &id]).status.success());
    lab.assert_clean();
}

#[test]
fn pause_resume_update_and_stats() {
    if !privileged("pause_resume_update_and_stats") {
        return;
    }
    let mut lab = Lab::new("pause");
    let id = lab.id("p");
    let b = lab.bundle("p", &lab.config(&["sleep", "100"]));
    assert!(lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &id]).status.success());
    let pid = lab.state(&id)["pid"].as_i64().unwrap();
    assert!(lab.rt(&["pause", &id]).status.success());
    assert_eq!(lab.state(&id)["status"], "paused");
    // A frozen task does not run: exec into it cannot complete, so check the kernel's view.
    let frozen = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(!frozen.is_empty() && !cg.is_empty());
    assert!(!lab.rt(&["pause", &id]).status.success(), "pausing a paused container must fail");
    assert!(lab.rt(&["resume", &id]).status.success());
    assert_eq!(lab.state(&id)["status"], "running");
    let out = lab.rt(&["update", "--memory", "67108864", "--pids-limit", "42", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lab.rt(&["events", "--stats", &id]);
    let ev: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    // runc's schema (types/events.go), as go-runc decodes it.
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 67108864);
    assert_eq!(ev["data"]["pids"]["limit"], 42);
    assert_eq!(ev["data"]["pids"]["current"], 1);
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    // A paused container is thawed and killed by delete --force.
    assert!(lab.rt(&["pause", &id]).status.success());
    assert!(lab.rt(&["delete", "--force", &id]).status.success());
    lab.assert_clean();
}

#[test]
fn runc_spec_bundle_runs_unchanged() {
    if !privileged("runc_spec_bundle_runs_unchanged") {
        return;
    }
    if std::process::Command::new("runc").arg("--version").output().is_err() {
        panic!("runc is not installed (apt-get install runc): needed to make the bundle");
    }
    let mut lab = Lab::new("runcspec");
    let b = lab.dir.path().join("bundle");
    std::fs::create_dir_all(&b).unwrap();
    make_rootfs(&b.join("rootfs"));
    let out = std::process::Command::new("runc").arg("spec").current_dir(&b).output().unwrap();
    assert!(out.status.success());
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(["sh", "-c", "echo hello from $(hostname) pid $$"]);
    std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let id = lab.id("r");
    let out = lab.rt(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from runc pid 1\n");
    lab.assert_clean();
}

#[test]
fn features_and_spec_commands() {
    let lab = Lab::new("features");
    let out = lab.rt(&["features"]);
    assert!(out.status.success());
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(f["hooks"].as_array().unwrap().iter().any(|h| h == "createRuntime"));
    let d = lab.dir.path();
    let out = lab.rt(&["spec", "--bundle", d.to_str().unwrap()]);
    assert!(out.status.success());
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
    assert_eq!(s["process"]["terminal"], true);
    // `spec` writes what `runc spec` writes: three capabilities, no seccomp.
    assert_eq!(s["process"]["capabilities"]["bounding"].as_array().unwrap().len(), 3);
    assert!(s["linux"]["seccomp"].is_null());
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    assert!(f["linux"]["capabilities"].as_array().unwrap().iter().any(|c| c == "CAP_NET_RAW"));
    // The systemd cgroup driver exists (cgroups/systemd.rs): clients read this to pick it.
    assert_eq!(f["linux"]["cgroup"]["systemd"], true);
    assert!(!lab.rt(&["spec", "--bundle", d.to_str().unwrap()]).status.success(), "spec must not overwrite");
    std::fs::remove_file(d.join("config.json")).unwrap();
    assert!(lab.rt(&["spec", "--rootless", "-b", d.to_str().unwrap()]).status.success());
    // Accepted by every verb, as containerd's shim passes it (tests/systemd_cgroup.rs).
    let out = lab.rt(&["--systemd-cgroup", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn log_file_in_json_gets_errors() {
    if !privileged("log_file_in_json_gets_errors") {
        return;
    }
    let lab = Lab::new("log");
    let log = lab.dir.path().join("log.json");
    let out = lab.rt(&["--log", log.to_str().unwrap(), "--log-format", "json", "state", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("ghost"));
    assert!(text(&out.stderr).contains("ghost"));
}

/// Regression: under load init's messages overtook the intermediate's pid
/// message, so `run` recorded pid 0 and failed with "is stopped: cannot start".
#[test]
fn parallel_runs_never_lose_the_init_pid() {
    if !privileged("parallel_runs_never_lose_the_init_pid") {
        return;
    }
    let mut lab = Lab::new("parallel");
    let b = lab.bundle("p", &lab.config(&["true"]));
    let ids: Vec<Vec<String>> = (0..4).map(|t| (0..15).map(|i| lab.id(&format!("p{t}x{i}"))).collect()).collect();
    std::thread::scope(|s| {
        for batch in &ids {
            let (lab, b) = (&lab, &b);
            s.spawn(move || {
                for id in batch {
                    let out = lab.rt(&["run", "-b", b.to_str().unwrap(), id]);
                    assert!(out.status.success(), "{id}: {}", text(&out.stderr));
                }
            });
        }
    });
    lab.assert_clean();
}
