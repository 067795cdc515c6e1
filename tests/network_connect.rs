//! A container on several networks: `wharf network connect`/`disconnect`
//! of a running (`wharf run` in the background) container, names on every
//! network it is on, the owner's teardown of networks connected after
//! setup, kill -9 of `network connect`/`disconnect` at random moments, and
//! `--dns-search`/`--dns-option`. Each test has its own store and networks
//! (upstream DNS 127.0.0.1: no traffic leaves the host) and checks that
//! nothing is left: veths, IP reservations, iptables rules, netns, DNS.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use wharf_tests::{busybox_tar, mounts_under, privileged, TestStore};

fn store() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "bb".as_ref()]);
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

fn kill_pid(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// The running container's init pid, from the runtime's state.
fn container_pid(s: &TestStore, id: &str) -> Option<i32> {
    let state = s.dir.path().join("run/runtime").join(id).join("state.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(state).ok()?).ok()?;
    v["pid"].as_i64().map(|p| p as i32)
}

/// `wharf run` of a named container in the background; a failing test
/// still ends it (by the init's pid), so the store's networks can go.
struct Background<'a> {
    s: &'a TestStore,
    child: Option<Child>,
    id: String,
}

impl Background<'_> {
    /// Ends the container by its init's pid: `wharf run` then tears down
    /// as the owner would, from the record on disk. Its output.
    fn stop(mut self) -> Output {
        if let Some(pid) = container_pid(self.s, &self.id) {
            kill_pid(pid);
        }
        self.child.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Background<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = container_pid(self.s, &self.id) {
                kill_pid(pid);
            }
            let _ = c.wait();
        }
    }
}

/// Starts `wharf run --rm --name NAME ARGS…` and waits until its container runs.
fn spawn<'a>(s: &'a TestStore, name: &str, args: &[&str]) -> Background<'a> {
    let mut cmd = s.cmd();
    cmd.args(["run", "--rm", "--name", name]).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut bg = Background { s, child: Some(cmd.spawn().unwrap()), id: String::new() };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if let Some(r) = record_of(s, name) {
            bg.id = r["container_id"].as_str().unwrap().to_string();
            if container_pid(s, &bg.id).is_some() {
                return bg;
            }
        }
        if let Ok(Some(st)) = bg.child.as_mut().unwrap().try_wait() {
            panic!("wharf run of {name} ended early: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("container {name} never started");
}

/// The attachment record of the container named `name`.
fn record_of(s: &TestStore, name: &str) -> Option<serde_json::Value> {
    for e in std::fs::read_dir(s.dir.path().join("run/containers")).into_iter().flatten().flatten() {
        if let Ok(b) = std::fs::read(e.path().join("network.json")) {
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            if v["name"] == name {
                return Some(v);
            }
        }
    }
    None
}

fn inspect(s: &TestStore, net: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&s.ok(["network", "inspect", net])).unwrap();
    v[0].clone()
}

/// The address of container `id` on `net`, from `network inspect`.
fn ip_on(s: &TestStore, net: &str, id: &str) -> Option<String> {
    let v = inspect(s, net);
    v["Containers"][id]["IPv4Address"].as_str().map(|a| a.split('/').next().unwrap().to_string())
}

fn bridge_of(s: &TestStore, net: &str) -> String {
    inspect(s, net)["Options"]["com.docker.network.bridge.name"].as_str().unwrap().to_string()
}

fn iptables_save() -> String {
    let o = Command::new("iptables-save").output().expect("iptables-save (apt-get install iptables)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Nothing of container `id` is left on network `net` (it may still run on others).
fn assert_off_network(s: &TestStore, net: &str, id: &str) {
    for f in std::fs::read_dir(s.root.join("cni/ipam").join(net)).into_iter().flatten().flatten() {
        let owner = std::fs::read_to_string(f.path()).unwrap_or_default();
        assert!(!owner.starts_with(id), "IP reservation of {id} on {net} leaked: {}", f.path().display());
    }
    let dns = std::fs::read_to_string(s.dir.path().join("run/aardvark").join(net)).unwrap_or_default();
    assert!(!dns.contains(id), "DNS entry of {id} on {net} leaked: {dns}");
    let rules = iptables_save();
    let leaked: Vec<&str> = rules.lines().filter(|l| l.contains(id) && l.contains(&format!("\"{net}\""))).collect();
    assert!(leaked.is_empty(), "iptables rules of {id} on {net} leaked: {leaked:#?}");
}

/// Nothing of any container's network is left in `s`: netns, records,
/// IP reservations, veths on `bridges`, iptables rules of `nets`, mounts,
/// aardvark-dns.
fn assert_no_network_leaks(s: &TestStore, nets: &[&str], bridges: &[String]) {
    let run = s.dir.path().join("run");
    let count = |p: &Path| std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0);
    assert_eq!(count(&run.join("netns")), 0, "netns leaked");
    let left: Vec<_> = walkdir(&run.join("containers"));
    assert!(left.is_empty(), "attachment records leaked: {left:?}");
    let temps: Vec<_> = walkdir(&run).into_iter().filter(|p| p.to_string_lossy().contains(".tmp-")).collect();
    assert!(temps.is_empty(), "temp files leaked: {temps:?}");
    for net in std::fs::read_dir(s.root.join("cni/ipam")).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(net.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            assert!(name.parse::<std::net::IpAddr>().is_err(), "IP reservation leaked: {}", f.path().display());
        }
    }
    for b in bridges {
        let brif = Path::new("/sys/class/net").join(b).join("brif");
        assert_eq!(count(&brif), 0, "veth leaked on {}", brif.display());
    }
    let rules = iptables_save();
    for n in nets {
        assert!(!rules.contains(&format!("name: \"{n}\"")), "iptables rules of {n} leaked:\n{rules}");
    }
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    let pid_file = run.join("aardvark/aardvark.pid");
    let t = Instant::now();
    while pid_file.exists() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pid_file.exists(), "aardvark-dns still running");
}

/// Every path under `dir`.
fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        out.extend(walkdir(&e.path()));
    }
    out
}

fn wait_for_file(p: &Path) -> String {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if let Ok(s) = std::fs::read_to_string(p) {
            if s.contains("done") {
                return s;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never written", p.display());
}

/// An httpd answering `text` on 8080, then `then`, then sleep.
fn serve(text: &str, then: &str) -> String {
    format!("mkdir -p /tmp/w && echo {text} > /tmp/w/index.html && httpd -p 8080 -h /tmp/w && {then}; sleep 60")
}

#[test]
fn connect_and_disconnect_a_running_container() {
    if !privileged("connect_and_disconnect_a_running_container") {
        return;
    }
    let s = store();
    let (n1, n2) = (unique("nc-one"), unique("nc-two"));
    s.ok(["network", "create", "--dns", "127.0.0.1", &n1]);
    s.ok(["network", "create", "--dns", "127.0.0.1", &n2]);
    let shared = s.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let vol = format!("{}:/shared", shared.display());
    // `a` waits for /shared/go, then fetches from `c`, which only n2 has.
    let fetch = "while [ ! -e /shared/go ]; do sleep 0.1; done; \
                 (wget -qO- http://c:8080/; cat /etc/hosts /etc/resolv.conf; echo done) > /shared/out 2>&1";
    let a = spawn(&s, "a", &["--network", &n1, "-v", &vol, "bb", "sh", "-c", &serve("hello-a", fetch)]);
    let c = spawn(&s, "c", &["--network", &n2, "bb", "sh", "-c", &serve("hello-c", "true")]);
    let a_ip1 = ip_on(&s, &n1, &a.id).unwrap();
    // Before connect, n2's containers do not know `a`.
    let probe = "nslookup a >/dev/null 2>&1 && echo resolved; wget -T 2 -qO- http://a:8080/; echo rc=$?";
    let o = run(&s, &["--network", &n2, "bb", "sh", "-c", probe]);
    assert!(!stdout(&o).contains("resolved") && !stdout(&o).contains("hello-a"), "{}", stdout(&o));

    s.ok(["network", "connect", "--alias", "web", &n2, "a"]);
    let a_ip2 = ip_on(&s, &n2, &a.id).expect("network inspect shows a on n2");
    let v = inspect(&s, &n2);
    assert_eq!(v["Containers"].as_object().unwrap().len(), 2, "a and c on n2: {v}");
    assert_eq!(v["Containers"][&a.id]["Aliases"], serde_json::json!(["web"]));
    let rec = record_of(&s, "a").unwrap();
    assert_eq!(rec["networks"][1]["ifname"], "eth1", "{rec}");
    assert_eq!(ip_on(&s, &n1, &a.id).unwrap(), a_ip1, "still on n1");
    // From n2, `a` (and its alias) resolves to its n2 address and answers over TCP.
    let o = run(
        &s,
        &[
            "--network",
            &n2,
            "bb",
            "sh",
            "-c",
            "nslookup a | grep -A1 Name:; for i in $(seq 50); do wget -qO- http://a:8080/ && break; sleep 0.1; done; \
             wget -qO- http://web:8080/",
        ],
    );
    let out = stdout(&o);
    assert!(out.contains(&format!("Address: {a_ip2}")), "{out} {}", stderr(&o));
    assert_eq!(out.matches("hello-a").count(), 2, "{out} {}", stderr(&o));
    // `a` resolves names of its new network too, and its /etc files say so.
    std::fs::write(shared.join("go"), "").unwrap();
    let seen = wait_for_file(&shared.join("out"));
    assert!(seen.contains("hello-c"), "a reached c on n2 by name: {seen}");
    assert!(seen.lines().any(|l| l.starts_with(&format!("{a_ip2}\t"))), "hosts line for the n2 address: {seen}");
    let gw2 = inspect(&s, &n2)["IPAM"]["Config"][0]["Gateway"].as_str().unwrap().to_string();
    assert!(seen.contains(&format!("nameserver {gw2}")), "{seen}");

    // Bad input: clear errors, nothing changed.
    let cases: &[(&[&str], &str)] = &[
        (&["network", "connect", &n2, "a"], &format!("endpoint with name a already exists in network {n2}")),
        (&["network", "connect", "nosuchnet", "a"], "network nosuchnet not found"),
        (&["network", "connect", &n2, "nosuchctr"], "No such container: nosuchctr"),
        (&["network", "disconnect", &n2, "nosuchctr"], "No such container: nosuchctr"),
        (&["network", "disconnect", "nosuchnet", "a"], "network nosuchnet not found"),
        (&["network", "disconnect", &n1, "c"], "is not connected to network"),
        (&["network", "connect", "--alias", "bad alias", &n1, "c"], "invalid container name or alias"),
        (&["network", "connect", "--ip", "10.1.2.3", &n1, "c"], "invalid --ip"),
    ];
    for (args, msg) in cases {
        let o = s.run(*args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(record_of(&s, "a").unwrap()["networks"].as_array().unwrap().len(), 2);
    assert_eq!(record_of(&s, "c").unwrap()["networks"].as_array().unwrap().len(), 1);

    s.ok(["network", "disconnect", &n2, &a.id[..12]]);
    let o = run(&s, &["--network", &n2, "bb", "sh", "-c", probe]);
    assert!(!stdout(&o).contains("resolved") && !stdout(&o).contains("hello-a"), "{}", stdout(&o));
    let o = run(&s, &["--network", &n2, "bb", "sh", "-c", &format!("wget -T 2 -qO- http://{a_ip2}:8080/; echo rc=$?")]);
    assert!(!stdout(&o).contains("hello-a"), "{}", stdout(&o));
    assert_off_network(&s, &n2, &a.id);
    let hosts = std::fs::read_to_string(s.root.join("containers").join(&a.id).join("hosts")).unwrap();
    assert!(!hosts.contains(&a_ip2), "{hosts}");
    let o = s.run(["network", "disconnect", &n2, "a"]);
    assert!(stderr(&o).contains(&format!("is not connected to network {n2}")), "{}", stderr(&o));

    // Connected again, with a fixed address: the owner's teardown (the
    // container ends, `wharf run` exits) must undo it too, from the record.
    let fixed = a_ip2.rsplit_once('.').map(|(p, _)| format!("{p}.200")).unwrap();
    s.ok(["network", "connect", "--ip", &fixed, &n2, "a"]);
    assert_eq!(ip_on(&s, &n2, &a.id).unwrap(), fixed);
    let out = a.stop();
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    drop(c);
    assert_no_network_leaks(&s, &[&n1, &n2], &[bridge_of(&s, &n1), bridge_of(&s, &n2)]);
}

/// xorshift, seeded from the clock (printed, `WHARF_CONNECT_SEED` replays).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Container `id` is on `net` with everything that takes (address,
/// reservation, DNS entry, veth) or has nothing there; no change is half done.
fn assert_consistent(s: &TestStore, id: &str, net: &str, bridge: &str) {
    let dir = s.dir.path().join("run/containers").join(id);
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("network.json")).unwrap()).unwrap();
    let eps = rec["networks"].as_array().unwrap();
    assert!(eps.iter().all(|e| e["state"] == "up"), "a change is left half done: {rec}");
    let veths = std::fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif")).unwrap().count();
    match eps.iter().find(|e| e["network"] == net) {
        Some(e) => {
            let ip = e["ip"].as_str().expect("an address");
            let owner = std::fs::read_to_string(s.root.join("cni/ipam").join(net).join(ip)).unwrap();
            assert!(owner.starts_with(id), "{owner}");
            let dns = std::fs::read_to_string(s.dir.path().join("run/aardvark").join(net)).unwrap();
            assert!(dns.contains(id), "{dns}");
            assert_eq!(veths, 1, "one veth on {bridge}");
        }
        None => {
            assert_off_network(s, net, id);
            assert_eq!(veths, 0, "veth leaked on {bridge}");
        }
    }
}

/// A coin toss, from the clock.
fn rand_bool() -> bool {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_micros() % 2 == 0
}

/// Starts `wharf ARGS…` and SIGKILLs it after `ms` (if still running).
fn kill_after(s: &TestStore, args: &[&str], ms: u64) {
    let mut child = s.cmd().args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_lock_free(lock: &PathBuf) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        let Ok(f) = std::fs::File::open(lock) else { return };
        if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} still locked", lock.display());
}

// Kill -9 of `network connect`/`disconnect` at any moment: the next command
// finishes or undoes the change; after `system prune -f` nothing is left.
#[test]
fn kill9_of_connect_and_disconnect_leaves_nothing() {
    if !privileged("kill9_of_connect_and_disconnect_leaves_nothing") {
        return;
    }
    let s = store();
    let (n1, n2) = (unique("nc-k1"), unique("nc-k2"));
    s.ok(["network", "create", "--dns", "127.0.0.1", &n1]);
    s.ok(["network", "create", "--dns", "127.0.0.1", &n2]);
    let seed = std::env::var("WHARF_CONNECT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("WHARF_CONNECT_SEED={seed}");
    let mut rng = Rng(seed);
    let bridges = [bridge_of(&s, &n1), bridge_of(&s, &n2)];
    let mut a = spawn(&s, "victim", &["--network", &n1, "bb", "sleep", "1000"]);
    for _ in 0..30 {
        let ms = rng.below(150);
        match rng.below(3) {
            0 | 1 => kill_after(&s, &["network", "connect", &n2, "victim"], ms),
            _ => kill_after(&s, &["network", "disconnect", &n2, "victim"], ms),
        }
        // The next command that sweeps (this one does, then fails) finishes
        // or undoes the killed change: the container is on n2 fully or not at all.
        s.fails(["network", "rm", "nc-no-such-net"]);
        assert_consistent(&s, &a.id, &n2, &bridges[1]);
    }
    // The live container is consistent: one full connect (or it is
    // connected already) and one full disconnect leave nothing on n2.
    let o = s.run(["network", "connect", &n2, "victim"]);
    assert!(o.status.success() || stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert!(ip_on(&s, &n2, &a.id).is_some());
    s.ok(["network", "disconnect", &n2, "victim"]);
    assert_off_network(&s, &n2, &a.id);
    assert_eq!(
        std::fs::read_dir(Path::new("/sys/class/net").join(bridge_of(&s, &n2)).join("brif")).unwrap().count(),
        0
    );
    // Then half-done changes again, and the owner killed too.
    for _ in 0..4 {
        kill_after(&s, &["network", "connect", &n2, "victim"], rng.below(150));
    }
    let id = a.id.clone();
    let pid = container_pid(&s, &id).unwrap();
    let mut child = a.child.take().unwrap();
    child.kill().unwrap(); // SIGKILL to `wharf run`
    child.wait().unwrap();
    kill_pid(pid);
    wait_lock_free(&s.dir.path().join("run/containers").join(&id).join("network.lock"));
    s.ok(["system", "prune", "-f"]);
    // (It removed the unused networks too, bridges and all.)
    assert_no_network_leaks(&s, &[&n1, &n2], &bridges);
}

// Connects and disconnects from two processes at once while the container
// exits: no change is lost (the record is rewritten under the networks
// lock) and the owner's teardown, reading the record fresh, undoes every
// network it names; none is connected after teardown began.
#[test]
fn connects_racing_each_other_and_the_exit_leave_nothing() {
    if !privileged("connects_racing_each_other_and_the_exit_leave_nothing") {
        return;
    }
    let s = store();
    let nets: Vec<String> = ["nc-r1", "nc-r2", "nc-r3"].iter().map(|n| unique(n)).collect();
    for n in &nets {
        s.ok(["network", "create", "--dns", "127.0.0.1", n]);
    }
    let bridges: Vec<String> = nets.iter().map(|n| bridge_of(&s, n)).collect();
    let mut a = spawn(&s, "racer", &["--network", &nets[0], "bb", "sleep", "3"]);
    let done = std::sync::atomic::AtomicBool::new(false);
    let connected = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for n in &nets[1..] {
            let (s, done, connected) = (&s, &done, &connected);
            sc.spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    for verb in ["connect", "disconnect"] {
                        let o = s.run(["network", verb, n, "racer"]);
                        if o.status.success() && verb == "connect" {
                            connected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    if rand_bool() {
                        let _ = s.run(["network", "connect", n, "racer"]);
                    }
                }
            });
        }
        let out = a.child.take().unwrap().wait_with_output().unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(out.status.success(), "{}", stderr(&out));
    });
    assert!(connected.into_inner() > 2, "the connects never got in");
    let names: Vec<&str> = nets.iter().map(String::as_str).collect();
    assert_no_network_leaks(&s, &names, &bridges);
}

#[test]
fn dns_search_and_options_reach_resolv_conf() {
    if !privileged("dns_search_and_options_reach_resolv_conf") {
        return;
    }
    let s = store();
    let n = unique("nc-dns");
    s.ok(["network", "create", "--dns", "127.0.0.1", &n]);
    let flags = ["--dns-search", "a.example", "--dns-search", "b.example", "--dns-option", "ndots:3"];
    for net in [n.as_str(), "bridge"] {
        let mut args = vec!["--network", net];
        args.extend(flags);
        args.extend(["bb", "cat", "/etc/resolv.conf"]);
        let o = run(&s, &args);
        let out = stdout(&o);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(out.contains("search a.example b.example\n"), "{net}: {out}");
        assert!(out.contains("options ndots:3\n"), "{net}: {out}");
        assert_eq!(out.matches("search").count(), 1, "{net}: {out}");
    }
    let o = run(&s, &["--network", &n, "--dns-option", "ndots:1 x", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("invalid --dns-option"), "{}", stderr(&o));
    s.ok(["network", "rm", &n, "wharf"]);
    assert_no_network_leaks(&s, &[], &[]);
}
