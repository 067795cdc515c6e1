//! Limits are enforced (OOM kill reported, fork bomb stopped), resources are
//! written, cgroupsPath honoured, nothing left behind.

mod common;

use common::*;
use serde_json::json;

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    if !privileged("memory_hog_is_oom_killed_and_reported") {
        return;
    }
    let mut lab = Lab::new("oom");
    // tail buffers its whole input: an endless line grows without bound.
    let mut cfg = lab.config(&["sh", "-c", "tail /dev/zero; echo survived"]);
    cfg["linux"]["resources"]["memory"] = json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024});
    let (code, out, err) = lab.run("hog", &cfg);
    assert_eq!(out.trim(), "survived", "the shell survives, tail is killed: {err}");
    assert_eq!(code, 0);
    // Now the init itself is the hog: run exits 137 and says why.
    let mut cfg = lab.config(&["tail", "/dev/zero"]);
    cfg["linux"]["resources"]["memory"] = json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024});
    let (code, _, err) = lab.run("hog2", &cfg);
    assert_eq!(code, 137, "{err}");
    assert!(err.contains("OOM"), "OOM kill is reported: {err}");
    lab.assert_clean();
}

#[test]
fn fork_bomb_stops_at_pids_limit() {
    if !privileged("fork_bomb_stops_at_pids_limit") {
        return;
    }
    let mut lab = Lab::new("pids");
    // The bomb runs in a subshell (a failed fork ends it); `read` is a builtin,
    // so counting needs no fork of its own.
    let script = "(i=0; while [ $i -lt 40 ]; do sleep 2 & i=$((i+1)); done) 2>/dev/null; \
                  read n < /sys/fs/cgroup/pids/pids.current || read n < /sys/fs/cgroup/pids.current; echo $n";
    let mut cfg = lab.config(&["sh", "-c", script]);
    cfg["linux"]["resources"]["pids"] = json!({"limit": 10});
    let (code, out, err) = lab.run("bomb", &cfg);
    assert_eq!(code, 0, "{err}");
    let n: u32 = out.trim().parse().unwrap_or_else(|_| panic!("{out} / {err}"));
    assert!((8..=10).contains(&n), "forks stop at the limit: {n} tasks");
    lab.assert_clean();
}

#[test]
fn resources_are_written_and_cgroups_path_honoured() {
    if !privileged("resources_are_written_and_cgroups_path_honoured") {
        return;
    }
    let mut lab = Lab::new("res");
    let id = lab.id("r");
    let parent = format!("wharf-test-{}", std::process::id());
    let mut cfg = lab.config(&["sleep", "100"]);
    cfg["linux"]["cgroupsPath"] = json!(format!("/{parent}/{id}"));
    cfg["linux"]["resources"]["cpu"] =
        json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"});
    cfg["linux"]["resources"]["memory"] = json!({"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10});
    cfg["linux"]["resources"]["pids"] = json!({"limit": 33});
    cfg["linux"]["resources"]["blockIO"] = json!({"weight": 500});
    cfg["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4194304}]);
    let b = lab.bundle("r", &cfg);
    let out = lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = lab.state(&id)["pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&format!(":/{parent}/{id}")), "{cg}");
    if std::path::Path::new("/sys/fs/cgroup/memory").exists() {
        let rd = |c: &str, f: &str| {
            std::fs::read_to_string(format!("/sys/fs/cgroup/{c}/{parent}/{id}/{f}")).unwrap().trim().to_string()
        };
        assert_eq!(rd("cpu", "cpu.shares"), "512");
        assert_eq!(rd("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(rd("cpuset", "cpuset.cpus"), "0");
        assert_eq!(rd("memory", "memory.limit_in_bytes"), (64u64 << 20).to_string());
        assert_eq!(rd("memory", "memory.soft_limit_in_bytes"), (32u64 << 20).to_string());
        assert_eq!(rd("memory", "memory.swappiness"), "10");
        assert_eq!(rd("pids", "pids.max"), "33");
        let blkio = ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .find_map(|f| std::fs::read_to_string(format!("/sys/fs/cgroup/blkio/{parent}/{id}/{f}")).ok())
            .unwrap();
        assert!(blkio.contains("500"), "{blkio}");
        // hugetlb is a v1 controller here, or sits on the hybrid v2 mount.
        let huge = std::fs::read_to_string(format!("/sys/fs/cgroup/hugetlb/{parent}/{id}/hugetlb.2MB.limit_in_bytes"))
            .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/unified/{parent}/{id}/hugetlb.2MB.max")))
            .unwrap();
        assert_eq!(huge.trim(), "4194304");
    } else {
        let rd =
            |f: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{parent}/{id}/{f}")).unwrap().trim().to_string();
        assert_eq!(rd("cpu.max"), "50000 100000");
        assert_eq!(rd("memory.max"), (64u64 << 20).to_string());
        assert_eq!(rd("pids.max"), "33");
    }
    assert!(lab.rt(&["delete", "-f", &id]).status.success());
    // The parent we created is gone too.
    assert!(cgroup_dirs_named(&parent).is_empty(), "parent cgroup left behind");
    lab.assert_clean();
}

#[test]
fn device_cgroup_denies_unlisted_devices() {
    if !privileged("device_cgroup_denies_unlisted_devices") {
        return;
    }
    let mut lab = Lab::new("devcg");
    // The default spec denies all devices and allows the default set (v1
    // device list, or the eBPF filter on v2): /dev/null works; a node for the
    // host's disk (8:0) may be made (mknod is allowed, as in runc and Docker)
    // but not opened — EPERM, where ENXIO would mean no filter stopped it.
    let cfg = lab.config(&[
        "sh",
        "-c",
        "echo x > /dev/null && echo null-ok; mknod /dev/sda-probe b 8 0 && echo mknod-ok; \
         head -c1 /dev/sda-probe 2>&1 >/dev/null | grep -q 'not permitted' && echo open-denied",
    ]);
    let (code, out, err) = lab.run("d", &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("null-ok") && out.contains("mknod-ok") && out.contains("open-denied"), "{out}");
    lab.assert_clean();
}

#[test]
fn relative_cgroups_path_goes_under_our_cgroup() {
    if !privileged("relative_cgroups_path_goes_under_our_cgroup") {
        return;
    }
    let mut lab = Lab::new("relcg");
    let id = lab.id("rel");
    let mut cfg = lab.config(&["sh", "-c", "cat /proc/self/cgroup"]);
    cfg["linux"]["cgroupsPath"] = json!(format!("rel-{id}"));
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
    cfg["hostname"] = serde_json::Value::Null;
    let b = lab.bundle("rel", &cfg);
    let out = lab.rt(&["run", "-b", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("/rel-{id}")), "{}", text(&out.stdout));
    assert!(cgroup_dirs_named(&format!("rel-{id}")).is_empty());
    lab.assert_clean();
}
