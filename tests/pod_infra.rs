//! What a pod's infra holds and does (root, real CNI, real cgroups): the
//! published host ports (no host program can take them while the pod
//! runs), the freeze of `pod pause` (infra included), and the pod-level
//! CLI: streaming `pod stats`, `--annotation`, `run --pod new:X --network
//! none`. Each test has its own store, run root, network and ports, and
//! ends with the engine's leak check.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wharf_tests::engine::{unique, wait_for, Engine};
use wharf_tests::leaks::{cgroups_named, entries};
use wharf_tests::privileged;

fn pod_inspect(e: &Engine, pod: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["pod", "inspect", pod])).unwrap();
    v[0].clone()
}

/// `pod rm -f`, then nothing of the pod or its containers is left.
fn remove_pod(e: &Engine, pod: &str) {
    let id = pod_inspect(e, pod)["Id"].as_str().unwrap().to_string();
    e.ok(&["pod", "rm", "-f", pod]);
    e.assert_no_leaks();
    assert_eq!(cgroups_named("/wharf", &format!("pod-{id}")), Vec::<std::path::PathBuf>::new(), "pod cgroups left");
    for d in [e.s.root.join("pods"), e.run_root().join("pods")] {
        assert_eq!(entries(&d), Vec::<String>::new(), "{} is not empty", d.display());
    }
}

/// The freezer state of `pid`'s cgroup: v1 `freezer.state`, else v2
/// `cgroup.events` (`frozen 1`) — whichever the host has.
fn frozen(pid: i64) -> bool {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cg.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if ctrl.split(',').any(|c| c == "freezer") {
            let s = std::fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state")).unwrap();
            return s.trim() == "FROZEN";
        }
    }
    for line in cg.lines() {
        if let Some(path) = line.strip_prefix("0::") {
            for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                if let Ok(ev) = std::fs::read_to_string(format!("{base}{path}/cgroup.events")) {
                    return ev.lines().any(|l| l == "frozen 1");
                }
            }
        }
    }
    panic!("no freezer for {pid}: {cg}");
}

#[test]
fn published_ports_are_held_by_the_infra() {
    if !privileged("published_ports_are_held_by_the_infra") {
        return;
    }
    let e = Engine::new();
    let net = unique("pi-port");
    e.ok(&["network", "create", &net]);
    let port = 30000 + (std::process::id() % 20000) as u16;
    let publish = format!("127.0.0.1:{port}:8080");
    let o = e.wharf(&["pod", "create", "--infra=false", "--network", &net, "-p", &publish]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("-p needs the infra"));
    let pod = unique("pi-port");
    e.ok(&["pod", "create", "--name", &pod, "--network", &net, "-p", &publish]);
    e.ok(&["pod", "start", &pod]);
    // Broke: only DNAT rules; a host program could bind the published port.
    assert!(TcpListener::bind(("127.0.0.1", port)).is_err(), "port {port} is not held while the pod runs");
    let infra = pod_inspect(&e, &pod)["InfraConfig"]["Pid"].as_i64().unwrap();
    let sockets = std::fs::read_dir(format!("/proc/{infra}/fd"))
        .unwrap()
        .flatten()
        .filter(|f| std::fs::read_link(f.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")))
        .count();
    assert_eq!(sockets, 1, "the infra holds the port's socket");
    // Traffic still reaches the pod's member.
    let serve = "mkdir -p /www && echo held > /www/index.html && exec httpd -f -p 8080 -h /www";
    e.ok(&["run", "-d", "--pod", &pod, "--name", "srv", "bb", "sh", "-c", serve]);
    let url = format!("http://127.0.0.1:{port}/");
    wait_for(20, "the pod's port to answer", || {
        let o = Command::new("/bin/busybox").args(["wget", "-qO-", &url]).output().unwrap();
        o.status.success() && o.stdout == b"held\n"
    });
    // Stopped: free; taken meanwhile by a host program: start says so.
    e.ok(&["pod", "stop", "-t", "1", &pod]);
    let taken = TcpListener::bind(("127.0.0.1", port)).expect("the port is free once the pod stopped");
    let o = e.wharf(&["pod", "start", &pod]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("already allocated"), "{err}");
    drop(taken);
    e.ok(&["pod", "start", &pod]);
    assert!(TcpListener::bind(("127.0.0.1", port)).is_err());
    remove_pod(&e, &pod);
    e.ok(&["network", "rm", &net]);
    TcpListener::bind(("127.0.0.1", port)).expect("the port is free once the pod is gone");
}

#[test]
fn pause_freezes_the_whole_pod() {
    if !privileged("pause_freezes_the_whole_pod") {
        return;
    }
    let e = Engine::new();
    let pod = unique("pi-pause");
    e.ok(&["pod", "create", "--name", &pod, "--network", "none"]);
    e.ok(&["run", "-d", "--pod", &pod, "--name", "sleeper", "bb", "sleep", "1000"]);
    let infra = pod_inspect(&e, &pod)["InfraConfig"]["Pid"].as_i64().unwrap();
    assert!(!frozen(infra));
    e.ok(&["pod", "pause", &pod]);
    // Broke: the infra was left running; status showed Paused anyway.
    assert!(frozen(infra), "pod pause left the infra running");
    let p = pod_inspect(&e, &pod);
    assert_eq!((p["State"].as_str(), p["InfraConfig"]["Paused"].as_bool()), (Some("Paused"), Some(true)), "{p}");
    assert_eq!(e.status("sleeper"), "paused");
    e.ok(&["pod", "unpause", &pod]);
    assert!(!frozen(infra));
    assert_eq!(pod_inspect(&e, &pod)["State"], "Running");
    assert_eq!(e.status("sleeper"), "running");
    // A paused pod stops (and is removed) all the same: the infra is thawed first.
    e.ok(&["pod", "pause", &pod]);
    e.ok(&["pod", "stop", "-t", "1", &pod]);
    assert_eq!(pod_inspect(&e, &pod)["State"], "Exited");
    e.ok(&["pod", "start", &pod]);
    e.ok(&["pod", "pause", &pod]);
    remove_pod(&e, &pod);
}

#[test]
fn pod_stats_streams_with_podmans_columns() {
    if !privileged("pod_stats_streams_with_podmans_columns") {
        return;
    }
    let e = Engine::new();
    let pod = unique("pi-stats");
    e.ok(&["pod", "create", "--name", &pod, "--network", "none"]);
    e.ok(&["run", "-d", "--pod", &pod, "--name", "busy", "bb", "sleep", "1000"]);
    let head = ["POD", "CID", "NAME", "CPU %", "MEM USAGE/ LIMIT", "MEM %", "NET IO", "BLOCK IO", "PIDS"];
    let one = e.ok(&["pod", "stats", "--no-stream", &pod]);
    let first = one.lines().next().unwrap();
    let cols: Vec<&str> = first.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cols, head, "{one}");
    assert_eq!(one.lines().count(), 2, "{one}");
    assert!(one.lines().nth(1).unwrap().contains("busy"));
    let json: serde_json::Value =
        serde_json::from_str(&e.ok(&["pod", "stats", "--no-stream", "--format", "json", &pod])).unwrap();
    assert_eq!(json[0]["Name"], "busy", "{json}");
    assert!(json[0]["MemUsage"].as_str().unwrap().contains(" / "), "{json}");
    // Broke: one reading only. Streamed: a reading a second until killed.
    let mut child = e.s.cmd().args(["pod", "stats", &pod]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let t = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.windows(3).filter(|w| *w == b"POD").count() < 3 {
        assert!(t.elapsed() < Duration::from_secs(20), "no third reading: {}", String::from_utf8_lossy(&got));
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "pod stats ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(child.try_wait().unwrap().is_none(), "pod stats exited instead of streaming");
    let _ = child.kill();
    let _ = child.wait();
    assert!(got.starts_with(b"\x1b[2J\x1b[H"), "each reading clears the screen");
    remove_pod(&e, &pod);
}

#[test]
fn annotations_and_a_new_pod_without_network() {
    if !privileged("annotations_and_a_new_pod_without_network") {
        return;
    }
    let e = Engine::new();
    // Broke: no --annotation flag (run, create, pod create).
    let pod = unique("pi-ann");
    e.ok(&["pod", "create", "--name", &pod, "--network", "none", "--annotation", "team=blue", "--annotation", "x="]);
    let p = pod_inspect(&e, &pod);
    assert_eq!(p["Annotations"], serde_json::json!({"team": "blue", "x": ""}), "{p}");
    e.ok(&["create", "--pod", &pod, "--name", "ann", "--annotation", "io.example/a=b=c", "bb", "true"]);
    assert_eq!(e.inspect("ann", "{{json .Config.Annotations}}"), r#"{"io.example/a":"b=c"}"#);
    e.ok(&["start", "ann"]);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.dir("ann").join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["annotations"]["io.example/a"], "b=c", "the OCI spec's annotations");
    let o = e.wharf(&["run", "--rm", "--network", "none", "--annotation", "novalue", "bb", "true"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("invalid annotation"));
    remove_pod(&e, &pod);
    // Broke: `--pod new:X --network none` gave the new pod the bridge network.
    let lone = unique("pi-none");
    let links =
        e.ok(&["run", "--rm", "--pod", &format!("new:{lone}"), "--network", "none", "bb", "ls", "/sys/class/net"]);
    assert_eq!(links, "lo");
    let p = pod_inspect(&e, &lone);
    assert_eq!(p["InfraConfig"]["Network"], "none", "{p}");
    assert!(p["InfraConfig"]["IP"].is_null(), "{p}");
    remove_pod(&e, &lone);
}
