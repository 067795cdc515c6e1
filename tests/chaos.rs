//! Chaos: several wharf commands at once (import, build, run, save, rmi,
//! prune), each SIGKILLed after a random delay, for a bounded time; then
//! `rm -f` of the containers (a killed `run` leaves its container running,
//! as Docker's) and one `wharf system prune -f` must leave nothing:
//! `system check` clean, no mount, cgroup, runtime state, work dir or process.
//!
//! `WHARF_CHAOS_SECS` (default 30) sets the time; `WHARF_CHAOS_SEED` replays
//! a run's choices of commands and delays (the seed is printed; the
//! kernel's scheduling still differs between runs).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wharf_tests::leaks::{cgroups_named, entries, iptables_rules, network_leaks, processes_mentioning};
use wharf_tests::{busybox_tar, mounts_under, privileged, TestStore};

/// xorshift64: small, seedable, good enough to pick commands and delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One random command's arguments.
fn command(rng: &mut Rng, s: &TestStore, n: u64, marker: &str) -> Vec<OsString> {
    let p = |x: &Path| x.as_os_str().to_os_string();
    let o = |x: &str| OsString::from(x);
    match rng.below(6) {
        0 => vec![o("import"), p(&busybox_tar(s.dir.path())), o(&format!("chaos:{n}"))],
        1 => vec![o("build"), o("--no-cache"), o("-q"), o("-t"), o(&format!("built:{n}")), p(&s.path("ctx"))],
        2 => vec![o("run"), o("--rm"), o("bb:1"), o("sh"), o("-c"), o(&format!("sleep 2; : {marker}"))],
        3 => vec![o("save"), o("-o"), p(&s.path(&format!("save-{n}.tar"))), o("bb:1")],
        4 => vec![o("rmi"), o(&format!("chaos:{}", n.saturating_sub(rng.below(4))))],
        _ => vec![o("image"), o("prune")],
    }
}

/// Names under the store's container and build dirs and the run-root's
/// runtime dirs, seen while the chaos runs: whose cgroups must be gone.
fn watch(s: &TestStore, seen: &Mutex<BTreeSet<(String, String)>>) {
    let run = s.dir.path().join("run");
    let mut found = Vec::new();
    for id in entries(&s.root.join("containers")) {
        let id =
            id.rsplit_once(".tmp-").map_or(id.clone(), |(_, rest)| rest.split_once('-').map_or(rest, |x| x.1).into());
        found.push(("/wharf".to_string(), id));
    }
    for id in entries(&run.join("runtime")) {
        let parent = if id.starts_with("wharf-build-") { "/wharf-build" } else { "/wharf" };
        found.push((parent.to_string(), id));
    }
    // Build work dirs are in the store's root (a RUN's upper dir becomes a snapshot by rename).
    for b in entries(&s.root.join("build")) {
        for w in entries(&s.root.join("build").join(b)).into_iter().filter(|w| w.starts_with("wharf-build-")) {
            found.push(("/wharf-build".to_string(), w));
        }
    }
    seen.lock().unwrap().extend(found);
}

#[test]
fn chaos_of_killed_commands_leaves_nothing_after_one_system_prune() {
    if !privileged("chaos_of_killed_commands_leaves_nothing_after_one_system_prune") {
        return;
    }
    let secs: u64 = std::env::var("WHARF_CHAOS_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let seed: u64 = std::env::var("WHARF_CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("chaos: {secs} s, WHARF_CHAOS_SEED={seed}");
    let s = Arc::new(TestStore::new());
    let rules_before = iptables_rules();
    let marker = s.dir.path().file_name().unwrap().to_string_lossy().into_owned();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "bb:1".as_ref()]);
    std::fs::create_dir_all(s.path("ctx")).unwrap();
    std::fs::write(s.path("ctx/Dockerfile"), format!("FROM bb:1\nRUN echo x > /f; sleep 1; : {marker}\n")).unwrap();

    let deadline = Instant::now() + Duration::from_secs(secs);
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let pids = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let (s, seen, pids, marker) = (s.clone(), seen.clone(), pids.clone(), marker.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ (w + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let mut n = 0;
                while Instant::now() < deadline {
                    n += 1;
                    let args = command(&mut rng, &s, n * 4 + w, &marker);
                    let delay = Duration::from_millis(rng.below(2500));
                    let mut child = s.cmd().args(&args).stdout(std::process::Stdio::null()).spawn().unwrap();
                    pids.lock().unwrap().push(child.id());
                    let t = Instant::now();
                    while t.elapsed() < delay && child.try_wait().unwrap().is_none() {
                        watch(&s, &seen);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    // SAFETY: kill(2) of the child we spawned and have not reaped, by its pid.
                    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                    let _ = child.wait();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    watch(&s, &seen);
    eprintln!("chaos: {} commands; left before prune: {:?}", pids.lock().unwrap().len(), mounts_under(s.dir.path()));

    // A killed `wharf run` leaves its container running under its monitor,
    // as Docker's and podman's do: the user removes them (rm -f), then one
    // system prune must leave nothing.
    let ids = s.ok(["ps", "-a", "-q", "--no-trunc"]);
    if !ids.trim().is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids.lines());
        let o = s.run(&args);
        assert!(o.status.success(), "WHARF_CHAOS_SEED={seed}: rm -f: {}", String::from_utf8_lossy(&o.stderr));
    }
    let out = s.ok(["system", "prune", "-f"]);
    eprintln!("{out}");
    let dir = s.dir.path();
    let run = dir.join("run");
    let mut leaks = Vec::new();
    leaks.extend(mounts_under(dir).into_iter().map(|m| format!("mount {m}")));
    leaks.extend(processes_mentioning(&marker));
    leaks.extend(processes_mentioning(&dir.to_string_lossy()));
    for (parent, id) in seen.lock().unwrap().iter() {
        leaks.extend(cgroups_named(parent, id).into_iter().map(|c| format!("cgroup {}", c.display())));
    }
    for pid in pids.lock().unwrap().iter() {
        let c = cgroups_named("/wharf-build", &format!("wharf-build-{pid}-*"));
        leaks.extend(c.into_iter().map(|c| format!("cgroup {}", c.display())));
    }
    for d in
        [s.root.join("containers"), s.root.join("build"), run.join("build"), run.join("runtime"), s.root.join("ingest")]
    {
        leaks.extend(entries(&d).into_iter().map(|e| format!("{}/{e}", d.display())));
    }
    leaks.extend(entries(&run.join("console")).into_iter().map(|e| format!("console socket {e}")));
    // `run` joins the default network: its netns, IP, veth and rules too.
    let ids: Vec<String> = seen.lock().unwrap().iter().map(|(_, id)| id.clone()).collect();
    leaks.extend(network_leaks(&s.root, &run, &ids, &rules_before));
    assert!(leaks.is_empty(), "WHARF_CHAOS_SEED={seed}: left after system prune: {leaks:#?}");
    let check = s.run(["system", "check"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && !text.contains("killed"), "WHARF_CHAOS_SEED={seed}: {text}");
}
