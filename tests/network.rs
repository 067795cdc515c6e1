//! Networks end to end: `wharf network create|ls|inspect|rm|prune`, and
//! foreground containers on them: names by DNS, published ports reachable
//! from the host at 127.0.0.1, isolation between networks, and nothing left
//! (netns, veth, iptables rule, IP reservation, aardvark-dns) after exit or
//! after a kill -9 and the next prune. Traffic stays on loopback and in the
//! namespaces these tests make (user networks forward unknown names to
//! 127.0.0.1, `network create --dns`); each test has its own store, networks and ports.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use wharf_tests::{busybox_tar, mounts_under, privileged, TestStore};

fn store() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "-c".as_ref(), "EXPOSE 8080".as_ref(), "bb".as_ref()]);
    s
}

/// A name no other test (or run of this one) uses.
fn unique(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run(s: &TestStore, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    s.run(all)
}

/// `wharf run` in the background, stdout piped; a failing test still ends
/// its container (by the init's pid), so the store's networks can go.
struct Background<'a> {
    s: &'a TestStore,
    child: Option<Child>,
}

impl Background<'_> {
    fn finish(mut self) -> Output {
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        out
    }
}

impl Drop for Background<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            for e in std::fs::read_dir(self.s.dir.path().join("run/runtime")).into_iter().flatten().flatten() {
                if let Some(pid) = container_pid(self.s, &e.file_name().to_string_lossy()) {
                    kill_pid(pid);
                }
            }
            let _ = c.wait();
        }
    }
}

fn spawn<'a>(s: &'a TestStore, args: &[&str]) -> Background<'a> {
    let child = s.cmd().arg("run").arg("--rm").args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    Background { s, child: Some(child.unwrap()) }
}

fn kill_pid(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

fn inspect(s: &TestStore, net: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&s.ok(["network", "inspect", net])).unwrap();
    v[0].clone()
}

/// Waits until the container named `name` on `net` has an address; returns it.
fn wait_for_ip(s: &TestStore, net: &str, name: &str) -> String {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        let v = inspect(s, net);
        for c in v["Containers"].as_object().into_iter().flat_map(|m| m.values()) {
            if c["Name"] == name {
                if let Some(ip) = c["IPv4Address"].as_str() {
                    return ip.split('/').next().unwrap().to_string();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("container {name} never got an address on {net}");
}

fn iptables_save() -> String {
    let o = Command::new("iptables-save").output().expect("iptables-save (apt-get install iptables)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Nothing of any container's network is left in `s`: netns files,
/// attachment records, IP reservations, veths on the store's bridges,
/// iptables rules for `nets`, mounts, and a running aardvark-dns.
fn assert_no_network_leaks(s: &TestStore, nets: &[&str]) {
    let run = s.dir.path().join("run");
    let count = |p: &Path| std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0);
    assert_eq!(count(&run.join("netns")), 0, "netns leaked");
    assert_eq!(count(&run.join("containers")), 0, "attachment records leaked");
    for net in std::fs::read_dir(s.root.join("cni/ipam")).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(net.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            assert!(name.parse::<std::net::IpAddr>().is_err(), "IP reservation leaked: {}", f.path().display());
        }
    }
    for rec in std::fs::read_dir(s.root.join("networks")).into_iter().flatten().flatten() {
        if rec.path().extension().is_some_and(|e| e == "json") {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(rec.path()).unwrap()).unwrap();
            let brif = Path::new("/sys/class/net").join(v["bridge"].as_str().unwrap()).join("brif");
            assert_eq!(count(&brif), 0, "veth leaked on {}", brif.display());
        }
    }
    let rules = iptables_save();
    for n in nets {
        assert!(!rules.contains(&format!("name: \"{n}\"")), "iptables rules of {n} leaked:\n{rules}");
    }
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    // aardvark-dns exits by itself once it has no network to serve.
    let pid_file = run.join("aardvark/aardvark.pid");
    let t = Instant::now();
    while pid_file.exists() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pid_file.exists(), "aardvark-dns still running");
}

/// A link's ifindex, if it exists.
fn ifindex(link: &str) -> Option<String> {
    std::fs::read_to_string(Path::new("/sys/class/net").join(link).join("ifindex")).ok()
}

/// After `network rm`: no bridge and no iptables rule naming it. Bridge
/// names are host-wide: a test running alongside may have made a new
/// bridge under the freed name (another ifindex) — that one is not ours.
fn assert_bridge_gone(bridge: &str, index: Option<String>) {
    match ifindex(bridge) {
        None => {}
        Some(now) if Some(&now) != index.as_ref() => return,
        Some(_) => panic!("bridge {bridge} leaked"),
    }
    let rules = iptables_save();
    assert!(!rules.contains(&format!(" {bridge} ")), "iptables rules for {bridge} leaked:\n{rules}");
}

#[test]
fn create_ls_inspect_rm_prune() {
    if !privileged("create_ls_inspect_rm_prune") {
        return;
    }
    let s = store();
    let (a, b) = (unique("nt-crud-a"), unique("nt-crud-b"));
    let id = s.ok(["network", "create", &a]);
    assert_eq!(id.trim().len(), 64, "{id}");
    s.ok(["network", "create", "--subnet", "10.213.7.0/24", "--gateway", "10.213.7.254", "--internal", &b]);
    let ls = s.ok(["network", "ls"]);
    assert!(ls.contains(&a) && ls.contains(&b) && ls.contains("10.213.7.0/24"), "{ls}");
    let va = inspect(&s, &a);
    let vb = inspect(&s, &b);
    assert_eq!(va["Id"].as_str().unwrap(), id.trim());
    assert_eq!(vb["IPAM"]["Config"][0]["Gateway"], "10.213.7.254");
    assert_eq!(vb["Internal"], true);
    let (bridge_a, bridge_b) = (
        va["Options"]["com.docker.network.bridge.name"].as_str().unwrap().to_string(),
        vb["Options"]["com.docker.network.bridge.name"].as_str().unwrap().to_string(),
    );
    assert!(Path::new("/sys/class/net").join(&bridge_a).exists(), "the bridge exists from create on");
    // An ID prefix finds the network; a second network of the same name is refused.
    assert_eq!(inspect(&s, &id.trim()[..12])["Name"], a.as_str());
    let o = s.run(["network", "create", &a]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    // An internal network gives no way out: no default route.
    let o = run(&s, &["--network", &b, "bb", "ip", "route"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("default"), "{}", stdout(&o));
    assert!(stdout(&o).contains("10.213.7.0/24"), "{}", stdout(&o));
    // prune removes unused user networks, not the default one.
    run(&s, &["bb", "true"]);
    let (index_a, index_b) = (ifindex(&bridge_a), ifindex(&bridge_b));
    let pruned = s.ok(["network", "prune", "-f"]);
    assert!(pruned.contains(&a) && pruned.contains(&b), "{pruned}");
    assert!(s.ok(["network", "ls"]).contains("wharf"));
    assert_bridge_gone(&bridge_a, index_a);
    assert_bridge_gone(&bridge_b, index_b);
    let default_bridge =
        inspect(&s, "bridge")["Options"]["com.docker.network.bridge.name"].as_str().unwrap().to_string();
    let index = ifindex(&default_bridge);
    assert_eq!(s.ok(["network", "rm", "bridge"]).trim(), "wharf");
    assert_bridge_gone(&default_bridge, index);
    assert_no_network_leaks(&s, &[&a, &b, "wharf"]);
}

#[test]
fn bad_input_is_a_clear_error_and_leaves_nothing() {
    if !privileged("bad_input_is_a_clear_error_and_leaves_nothing") {
        return;
    }
    let s = store();
    let n = unique("nt-bad");
    let cases: &[(&[&str], &str)] = &[
        (&["network", "create", "--subnet", "10.213.8.1/24", &n], "invalid subnet"),
        (&["network", "create", "--subnet", "banana", &n], "invalid subnet"),
        (&["network", "create", "--subnet", "10.213.8.0/24", "--gateway", "10.213.9.1", &n], "not a host address"),
        (&["network", "create", "bad/name"], "invalid network name"),
        (&["network", "create", "host"], "reserved"),
        (&["network", "inspect", "nosuchnet"], "network nosuchnet not found"),
        (&["network", "rm", "nosuchnet"], "network nosuchnet not found"),
        (&["run", "--rm", "--network", "nosuchnet", "bb", "true"], "network nosuchnet not found"),
        (&["run", "--rm", "-p", "99999:80", "bb", "true"], "invalid publish spec"),
        (&["run", "--rm", "--add-host", "nohost", "bb", "true"], "invalid --add-host"),
        (&["run", "--rm", "--dns", "resolver.example", "bb", "true"], "invalid --dns"),
        (&["run", "--rm", "--name", "bad name", "bb", "true"], "Invalid container name"),
        (&["run", "--rm", "--network", "container:other", "bb", "true"], "container:other"),
    ];
    for (args, msg) in cases {
        let o = s.run(*args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
    // A subnet the host already routes is refused.
    s.ok(["network", "create", "--subnet", "10.213.8.0/24", &n]);
    let o = s.run(["network", "create", "--subnet", "10.213.8.0/25", &unique("nt-bad2")]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("overlaps"), "{}", stderr(&o));
    let ls = s.ok(["network", "ls", "-q"]);
    assert_eq!(ls.lines().count(), 2, "only {n} and the default one (made by the -p case): {ls}");
    s.ok(["network", "rm", &n, "wharf"]);
    assert_no_network_leaks(&s, &[&n]);
}

#[test]
fn containers_find_each_other_by_name() {
    if !privileged("containers_find_each_other_by_name") {
        return;
    }
    let s = store();
    let n = unique("nt-dns");
    s.ok(["network", "create", "--dns", "127.0.0.1", &n]);
    let gw = inspect(&s, &n)["IPAM"]["Config"][0]["Gateway"].as_str().unwrap().to_string();
    let server = spawn(
        &s,
        &[
            "--network",
            &n,
            "--name",
            "srv",
            "--network-alias",
            "db",
            "--hostname",
            "srvhost",
            "bb",
            "sh",
            "-c",
            "for i in 1 2; do echo hello | nc -l -p 8080; done",
        ],
    );
    let srv_ip = wait_for_ip(&s, &n, "srv");
    // The client starts after the server; it finds it by name and by alias.
    let o = run(
        &s,
        &[
            "--network",
            &n,
            "--name",
            "cli",
            "--hostname",
            "client1",
            "--add-host",
            "extra:10.1.2.3",
            "bb",
            "sh",
            "-c",
            "cat /etc/hosts /etc/resolv.conf /etc/hostname; nslookup db | grep -A1 Name:; \
             for i in $(seq 100); do nc srv 8080 && exit 0; sleep 0.1; done; exit 1",
        ],
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{out} {}", stderr(&o));
    assert!(out.contains("hello"), "reached srv by name over TCP: {out}");
    assert!(out.contains(&format!("nameserver {gw}")), "resolv.conf names the network's DNS: {out}");
    assert!(out.contains("10.1.2.3\textra"), "--add-host: {out}");
    assert!(out.contains("127.0.0.1\tlocalhost"), "{out}");
    assert!(out.lines().any(|l| l.contains("client1") && l.contains("cli") && !l.starts_with("127.")), "{out}");
    assert!(out.contains(&format!("Address: {srv_ip}")), "the alias db resolves to srv: {out}");
    // --network container:srv shares srv's namespace (its lo) and /etc files.
    let o = run(&s, &["--network", "container:srv", "bb", "sh", "-c", "hostname; nc 127.0.0.1 8080"]);
    assert_eq!(stdout(&o), "srvhost\nhello\n", "{}", stderr(&o));
    server.finish();
    // The default network has no name resolution (Docker's): the host's resolvers.
    let o = run(&s, &["bb", "cat", "/etc/resolv.conf"]);
    assert!(!stdout(&o).contains(&format!("nameserver {gw}")), "{}", stdout(&o));
    assert_no_network_leaks(&s, &[&n, "wharf"]);
}

/// A free TCP port on 127.0.0.1 (the kernel picks it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Connects to 127.0.0.1:`port` until something answers; returns what it says.
fn read_from(port: u16) -> String {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut s = String::new();
            if c.read_to_string(&mut s).is_ok() && !s.is_empty() {
                return s;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing answered on 127.0.0.1:{port}");
}

#[test]
fn published_ports_are_reachable_from_the_host() {
    if !privileged("published_ports_are_reachable_from_the_host") {
        return;
    }
    let s = store();
    let n = unique("nt-ports");
    s.ok(["network", "create", "--dns", "127.0.0.1", &n]);
    let (p1, p2) = (free_port(), free_port());
    let (m1, m2) = (format!("127.0.0.1:{p1}:8080"), format!("{p2}:8080"));
    let server = spawn(
        &s,
        &[
            "--name",
            "srv",
            "--network",
            &n,
            "-p",
            &m1,
            "-p",
            &m2,
            "bb",
            "sh",
            "-c",
            "for i in 1 2; do echo hello$i | nc -l -p 8080; done",
        ],
    );
    wait_for_ip(&s, &n, "srv");
    // Another container cannot publish the same host port meanwhile.
    let o = run(&s, &["--network", &n, "-p", &m2, "bb", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("already allocated"), "{}", stderr(&o));
    assert_eq!(read_from(p1).trim(), "hello1", "-p 127.0.0.1:HOST:CTR");
    assert_eq!(read_from(p2).trim(), "hello2", "-p HOST:CTR is reachable at 127.0.0.1 too");
    server.finish();
    // -P: the EXPOSEd 8080 on a free port, shown by inspect.
    let server = spawn(&s, &["--network", &n, "--name", "pub", "-P", "bb", "sh", "-c", "echo hello3 | nc -l -p 8080"]);
    wait_for_ip(&s, &n, "pub");
    let v = inspect(&s, &n);
    let c = v["Containers"].as_object().unwrap().values().next().unwrap().clone();
    let port = c["Ports"][0]["host_port"].as_u64().unwrap() as u16;
    assert_eq!(c["Ports"][0]["container_port"], 8080);
    assert_eq!(read_from(port).trim(), "hello3");
    server.finish();
    // A port a host program holds: a clear error, and nothing left behind.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = format!("127.0.0.1:{}:8080", holder.local_addr().unwrap().port());
    let o = run(&s, &["--network", &n, "-p", &taken, "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("already allocated"), "{}", stderr(&o));
    drop(holder);
    assert_no_network_leaks(&s, &[&n]);
}

#[test]
fn networks_are_isolated_from_each_other() {
    if !privileged("networks_are_isolated_from_each_other") {
        return;
    }
    let s = store();
    let (a, b) = (unique("nt-iso-a"), unique("nt-iso-b"));
    s.ok(["network", "create", "--dns", "127.0.0.1", &a]);
    s.ok(["network", "create", "--dns", "127.0.0.1", &b]);
    let server = spawn(
        &s,
        &["--network", &a, "--name", "srv", "bb", "sh", "-c", "while true; do echo hi | nc -l -p 8080; done"],
    );
    let ip = wait_for_ip(&s, &a, "srv");
    let probe = format!("for i in $(seq 50); do nc -w 1 {ip} 8080 </dev/null && exit 0; sleep 0.1; done; exit 1");
    // Control: from its own network, the server answers.
    let o = run(&s, &["--network", &a, "bb", "sh", "-c", &probe]);
    assert!(o.status.success() && stdout(&o).contains("hi"), "{} {}", stdout(&o), stderr(&o));
    // From another network it does not, by address (and not by name either).
    let o = run(&s, &["--network", &b, "bb", "sh", "-c", &format!("nc -w 2 {ip} 8080 </dev/null; echo rc=$?")]);
    assert!(!stdout(&o).contains("hi") && stdout(&o).contains("rc=1"), "{} {}", stdout(&o), stderr(&o));
    let o = run(&s, &["--network", &b, "bb", "sh", "-c", "nslookup srv >/dev/null 2>&1; echo rc=$?"]);
    assert!(stdout(&o).contains("rc=1"), "{}", stdout(&o));
    drop(server); // kills the looping server
    assert_no_network_leaks(&s, &[&a, &b]);
}

/// The running container's init pid, from the runtime's state.
fn container_pid(s: &TestStore, id: &str) -> Option<i32> {
    let state = s.dir.path().join("run/runtime").join(id).join("state.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(state).ok()?).ok()?;
    v["pid"].as_i64().map(|p| p as i32)
}

/// The attachment record of the container named `name`.
fn record_of(s: &TestStore, name: &str) -> serde_json::Value {
    for e in std::fs::read_dir(s.dir.path().join("run/containers")).unwrap().flatten() {
        if let Ok(b) = std::fs::read(e.path().join("network.json")) {
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            if v["name"] == name {
                return v;
            }
        }
    }
    panic!("no container {name}");
}

#[test]
fn kill9_of_run_then_prune_leaves_nothing() {
    if !privileged("kill9_of_run_then_prune_leaves_nothing") {
        return;
    }
    let s = store();
    let n = unique("nt-kill9");
    s.ok(["network", "create", "--dns", "127.0.0.1", &n]);
    let p = format!("127.0.0.1:{}:8080", free_port());
    let mut bg = spawn(&s, &["--network", &n, "--name", "victim", "-p", &p, "bb", "sleep", "1000"]);
    let ip = wait_for_ip(&s, &n, "victim");
    let rec = record_of(&s, "victim");
    let id = rec["container_id"].as_str().unwrap().to_string();
    // The network is up before the container exists: wait for the container too.
    let t = Instant::now();
    while container_pid(&s, &id).is_none() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(iptables_save().contains(&id), "the container has rules while it runs");
    let mut child = bg.child.take().unwrap();
    child.kill().unwrap(); // SIGKILL to `wharf run`
    child.wait().unwrap();
    // The container lives on under its monitor (as Docker's): kill that too,
    // so that nobody tears the network down but the next command.
    let mon_file = s.root.join("containers").join(&id).join("monitor.json");
    let t = Instant::now();
    while !mon_file.exists() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mon: serde_json::Value = serde_json::from_slice(&std::fs::read(&mon_file).unwrap()).unwrap();
    kill_pid(mon["MonitorPid"].as_i64().unwrap() as i32);
    kill_pid(container_pid(&s, &id).expect("the container outlives its killed wharf run"));
    // The runtime's forked wharf (no exec) inherited the owner lock and holds
    // it until the container is gone: the prune raced its exit and kept the
    // attachment as live. Wait for the lock to be free first.
    let lock = s.dir.path().join("run/containers").join(&id).join("network.lock");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        let f = std::fs::File::open(&lock).unwrap();
        if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The next command that looks (prune here) tears the attachment down from its record.
    s.ok(["network", "prune"]);
    let ipam = s.root.join("cni/ipam").join(&n).join(&ip);
    assert!(!ipam.exists(), "IP reservation {ip} left");
    assert!(!iptables_save().contains(&id), "iptables rules of {id} left");
    // The container itself (overlay, runtime state, record) is the engine's: rm -f.
    s.ok(["rm", "-f", &id]);
    assert_no_network_leaks(&s, &[&n]);
}

// Concurrent runs swept each other's netns, IP reservation and DNS entry
// (the sweep took no lock): runs failed, or two got the same IP.
#[test]
fn concurrent_runs_get_distinct_ips_and_leave_nothing() {
    if !privileged("concurrent_runs_get_distinct_ips_and_leave_nothing") {
        return;
    }
    let s = store();
    let n = unique("nt-conc");
    s.ok(["network", "create", "--dns", "127.0.0.1", &n]);
    let script = "ip -4 -o addr show eth0; sleep 1; ip -4 -o addr show eth0";
    let runs: Vec<Background> = (0..12).map(|_| spawn(&s, &["--network", &n, "bb", "sh", "-c", script])).collect();
    let mut ips = Vec::new();
    for r in runs {
        let out = stdout(&r.finish());
        let addrs: Vec<&str> = out.split_whitespace().filter(|w| w.contains('/') && w.contains('.')).collect();
        assert!(addrs.len() == 2 && addrs[0] == addrs[1], "the address changed or is missing: {out}");
        ips.push(addrs[0].to_string());
    }
    let mut distinct = ips.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ips.len(), "an IP was handed out twice: {ips:?}");
    s.ok(["network", "rm", &n]);
    assert_no_network_leaks(&s, &[&n]);
}

// A network record with a short (damaged) ID made `network ls` panic on `[..12]`.
#[test]
fn a_damaged_network_id_is_listed_not_a_panic() {
    let s = TestStore::new();
    let dir = s.root.join("networks");
    std::fs::create_dir_all(&dir).unwrap();
    let rec = serde_json::json!({
        "name": "dmg", "id": "abc", "driver": "bridge", "bridge": "wharf9999", "subnet": "10.213.9.0/24",
        "gateway": "10.213.9.1", "internal": false, "dns_enabled": true, "created": "2026-01-01T00:00:00Z"
    });
    std::fs::write(dir.join("dmg.json"), rec.to_string()).unwrap();
    assert!(s.ok(["network", "ls"]).contains("dmg"));
    assert_eq!(s.ok(["network", "ls", "-q"]).trim(), "abc");
}

// The driver is checked by the library now (it was the CLI's): still a clear error, nothing made.
#[test]
fn an_unknown_driver_is_refused() {
    let s = TestStore::new();
    let o = s.run(["network", "create", "-d", "macvlan", "nt-drv"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("unknown driver \"macvlan\""), "{}", stderr(&o));
    assert!(!s.root.join("networks/nt-drv.json").exists());
}

/// Masquerade and isolation were per container (CNI `ipMasq` + firewall
/// plugin: ~35 iptables execs per run, ~130 ms): they are the network's,
/// made with it, made again when gone, and removed with it.
#[test]
fn iptables_rules_are_the_networks_not_each_containers() {
    if !privileged("iptables_rules_are_the_networks_not_each_containers") {
        return;
    }
    let s = store();
    let n = unique("nt-fw");
    let id = s.ok(["network", "create", &n]).trim().to_string();
    let bridge = inspect(&s, &n)["Options"]["com.docker.network.bridge.name"].as_str().unwrap().to_string();
    let (nat, filter) = (format!("WHARF-N-{}", &id[..12]), format!("WHARF-F-{}", &id[..12]));
    let rules = iptables_save();
    assert!(rules.contains(&format!("-j {nat}")) && rules.contains(&format!("-A FORWARD -j {filter}")), "{rules}");
    // Ends when told (a file in a bind mount), however slow the start is.
    let flag = s.dir.path().join("fw-flag");
    std::fs::create_dir_all(&flag).unwrap();
    let v = format!("{}:/flag", flag.display());
    let wait = "while [ ! -e /flag/stop ]; do sleep 0.1; done";
    let server = spawn(&s, &["--network", &n, "--name", "fw", "-v", &v, "bb", "sh", "-c", wait]);
    wait_for_ip(&s, &n, "fw");
    let ctr = record_of(&s, "fw")["container_id"].as_str().unwrap().to_string();
    let rules = iptables_save();
    std::fs::write(flag.join("stop"), "").unwrap();
    assert!(!rules.contains(&ctr), "a container without -p has no rule of its own:\n{rules}");
    server.finish();
    // Flushed by someone (a firewall reload): the next run makes them again.
    let del = Command::new("iptables").args(["-w", "-D", "FORWARD", "-j", &filter]).status().unwrap();
    assert!(del.success());
    let o = run(&s, &["--network", &n, "bb", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(iptables_save().contains(&format!("-A FORWARD -j {filter}")), "the rules are made again");
    let index = ifindex(&bridge);
    s.ok(["network", "rm", &n]);
    let rules = iptables_save();
    assert!(!rules.contains(&nat) && !rules.contains(&filter), "chains of {n} left:\n{rules}");
    assert_bridge_gone(&bridge, index);
    assert_no_network_leaks(&s, &[&n]);
}
