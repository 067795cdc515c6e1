//! Every namespace isolates; join-by-path shares; user and time namespaces.

mod common;

use common::*;
use serde_json::json;

#[test]
fn each_namespace_isolates() {
    if !privileged("each_namespace_isolates") {
        return;
    }
    let mut lab = Lab::new("isolate");
    let script = "hostname; echo pid=$$; for n in mnt uts ipc net pid cgroup; do readlink /proc/self/ns/$n; done; \
                  ls /sys/class/net; cat /proc/self/cgroup | grep memory; cut -d' ' -f5 /proc/self/mountinfo";
    let mut cfg = lab.config(&["sh", "-c", script]);
    cfg["hostname"] = json!("iso-box");
    let (code, out, err) = lab.run("i", &cfg);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "iso-box");
    assert_eq!(lines[1], "pid=1");
    for (i, n) in ["mnt", "uts", "ipc", "net", "pid", "cgroup"].iter().enumerate() {
        assert_ne!(lines[2 + i], host_ns(n), "{n} namespace is the host's");
    }
    assert_eq!(lines[8], "lo", "a new network namespace has only lo: {out}");
    assert_eq!(lines[9], "4:memory:/", "cgroup namespace root is the container's cgroup");
    // Only the container's own mount table: nothing of the host's /tmp or /work.
    for mp in &lines[10..] {
        assert!(!mp.starts_with("/tmp") && !mp.starts_with("/work"), "host mount {mp} visible");
    }
    assert!(lines[10..].contains(&"/proc") && lines[10..].contains(&"/dev/pts"));
    lab.assert_clean();
}

#[test]
fn ipc_objects_do_not_cross() {
    if !privileged("ipc_objects_do_not_cross") {
        return;
    }
    let mut lab = Lab::new("ipc");
    // A POSIX message queue made in one container is not seen by the next.
    let cfg = lab.config(&["sh", "-c", "touch /dev/mqueue/wharf-q && ls /dev/mqueue"]);
    let (code, out, err) = lab.run("q1", &cfg);
    assert_eq!((code, out.trim()), (0, "wharf-q"), "{err}");
    let cfg = lab.config(&["sh", "-c", "ls /dev/mqueue | wc -l"]);
    let (code, out, err) = lab.run("q2", &cfg);
    assert_eq!((code, out.trim()), (0, "0"), "{err}");
    lab.assert_clean();
}

#[test]
fn join_namespaces_by_path() {
    if !privileged("join_namespaces_by_path") {
        return;
    }
    let mut lab = Lab::new("join");
    let sandbox = lab.id("sandbox");
    let mut cfg = lab.config(&["sleep", "100"]);
    cfg["hostname"] = json!("pod-host");
    let b = lab.bundle("sandbox", &cfg);
    assert!(lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &sandbox]).status.success());
    let pid = lab.state(&sandbox)["pid"].as_i64().unwrap();
    let mut cfg = lab.config(&[
        "sh",
        "-c",
        "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done; hostname; cat /proc/1/cmdline",
    ]);
    cfg["hostname"] = serde_json::Value::Null;
    cfg["linux"]["namespaces"] = json!([
        {"type": "pid", "path": format!("/proc/{pid}/ns/pid")}, {"type": "mount"},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")},
        {"type": "ipc", "path": format!("/proc/{pid}/ns/ipc")},
        {"type": "uts", "path": format!("/proc/{pid}/ns/uts")},
    ]);
    let (code, out, err) = lab.run("member", &cfg);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    for (i, n) in ["net", "ipc", "uts", "pid"].iter().enumerate() {
        let want = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(lines[i], want.to_str().unwrap(), "{n}");
    }
    assert_eq!(lines[4], "pod-host");
    // Same pid namespace: the sandbox's sleep is pid 1 for the member too.
    assert_eq!(lines[5].replace('\0', " ").trim(), "sleep 100");
    assert!(lab.rt(&["delete", "-f", &sandbox]).status.success());
    lab.assert_clean();
}

#[test]
fn user_namespace_maps_ids() {
    if !privileged("user_namespace_maps_ids") {
        return;
    }
    let mut lab = Lab::new("userns");
    let mut cfg = lab.config(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user; ls -l /dev/null; ls /sys/fs/cgroup | grep -c .",
    ]);
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}, {"type": "user"}]);
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let (code, out, err) = lab.run("u", &cfg);
    assert_eq!(code, 0, "{err} {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["0", "100000", "65536"]);
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["0", "100000", "65536"]);
    assert_eq!(lines[2], "0");
    assert_ne!(lines[3], host_ns("user"));
    assert!(lines[4].starts_with("crw-rw-rw-"), "/dev/null is a bind of the host's device: {}", lines[4]);
    assert!(lines[5].parse::<u32>().unwrap() > 0, "cgroup mount is populated in a user namespace");
    lab.assert_clean();
}

#[test]
fn time_namespace_offsets_clocks() {
    if !privileged("time_namespace_offsets_clocks") {
        return;
    }
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        skipped("time_namespace_offsets_clocks", "kernel has no time namespaces");
        return;
    }
    let mut lab = Lab::new("timens");
    let mut cfg = lab.config(&["sh", "-c", "cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time"]);
    let mut ns = cfg["linux"]["namespaces"].as_array().unwrap().clone();
    ns.push(json!({"type": "time"}));
    cfg["linux"]["namespaces"] = json!(ns);
    cfg["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400 * 365, "nanosecs": 0}});
    let (code, out, err) = lab.run("t", &cfg);
    assert_eq!(code, 0, "{err}");
    let up: u64 = out.lines().next().unwrap().parse().unwrap();
    assert!(up >= 86400 * 365, "uptime inside {up}");
    assert_ne!(out.lines().nth(1).unwrap(), host_ns("time"));
    lab.assert_clean();
}

#[test]
fn unknown_namespace_type_is_rejected() {
    if !privileged("unknown_namespace_type_is_rejected") {
        return;
    }
    let mut lab = Lab::new("badns");
    let mut cfg = lab.config(&["true"]);
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "bogus"}]);
    let (code, _, err) = lab.run("b", &cfg);
    assert_eq!(code, 1);
    assert!(err.contains("invalid spec") && err.contains("bogus"), "{err}");
    lab.assert_clean();
}
