//! `stats`, `top`, `update`, `cp`, `events` and `system df` against real
//! containers (busybox, `run -d`, cgroups, overlayfs), each test removing
//! its containers and checking nothing leaked.

use std::path::Path;
use std::time::{Duration, Instant};
use wharf_tests::leaks::{cgroups_named, entries, processes_mentioning};
use wharf_tests::{busybox_tar, mounts_under, privileged, TestStore};

fn store() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "-c".as_ref(), "CMD [\"/bin/sh\"]".as_ref(), "bb".as_ref()]);
    s
}

/// A detached busybox running `script`; its full ID.
fn start(s: &TestStore, name: &str, extra: &[&str], script: &str) -> String {
    let mut args = vec!["run", "-d", "--network", "none", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["bb", "sh", "-c", script]);
    s.ok(args).trim().to_string()
}

/// Removes the named containers even when the test fails midway (before
/// the temp store goes), so that a failure leaks no container.
struct Remove<'a>(&'a TestStore, &'static [&'static str]);

impl Drop for Remove<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in self.1 {
                let _ = self.0.run(["rm", "-f", n]);
            }
        }
    }
}

/// Removes the containers and checks that none of their parts remain.
fn remove_and_check(s: &TestStore, ids: &[String], marker: &str) {
    for id in ids {
        s.ok(["rm", "-f", id]);
    }
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    assert!(entries(&s.root.join("containers")).is_empty(), "container dirs leaked");
    assert!(entries(&s.dir.path().join("run/runtime")).is_empty(), "runtime state leaked");
    for id in ids {
        assert!(cgroups_named("wharf", id).is_empty(), "cgroups leaked: {:?}", cgroups_named("wharf", id));
    }
    let procs = processes_mentioning(marker);
    assert!(procs.is_empty(), "processes leaked: {procs:?}");
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// "65.2MiB / 7.6GiB" → bytes of the first figure.
fn mem_bytes(usage: &str) -> f64 {
    let first = usage.split(" / ").next().unwrap();
    let split = first.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let (n, unit) = first.split_at(split);
    let mult = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        u => panic!("unit {u}"),
    };
    n.parse::<f64>().unwrap() * mult
}

fn stats_json(s: &TestStore, name: &str) -> serde_json::Value {
    let out = s.ok(["stats", "--no-stream", "--format", "json", name]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn stats_top_update_follow_the_container() {
    if !privileged("stats_top_update_follow_the_container") {
        return;
    }
    let s = store();
    let marker = "statsmarker";
    // The shell holds 64 MiB in a variable once /go appears.
    let script = format!(
        "while [ ! -e /go ]; do sleep 0.1; done; x=$(head -c 67108864 /dev/zero | tr '\\0' x); sleep 1000; echo ${{#x}} # {marker}"
    );
    let _rm = Remove(&s, &["st1"]);
    let id = start(&s, "st1", &["--memory", "256m"], &script);
    let before = stats_json(&s, "st1");
    assert_eq!(before["Name"], "st1");
    assert_eq!(before["ID"], id[..12]);
    assert!(before["MemUsage"].as_str().unwrap().ends_with("/ 256MiB"), "{before}");
    assert!(before["PIDs"].as_str().unwrap().parse::<u32>().unwrap() >= 1, "{before}");
    for k in ["CPUPerc", "MemPerc", "NetIO", "BlockIO"] {
        assert!(before[k].is_string(), "{k}: {before}");
    }
    let m0 = mem_bytes(before["MemUsage"].as_str().unwrap());
    s.ok(["exec", "st1", "touch", "/go"]);
    let mut grown = 0.0;
    wait_for("memory to grow", || {
        grown = mem_bytes(stats_json(&s, "st1")["MemUsage"].as_str().unwrap());
        grown > m0 + 60.0 * 1024.0 * 1024.0
    });
    // The table: Docker's columns.
    let table = s.ok(["stats", "--no-stream", "st1"]);
    assert!(table.starts_with("CONTAINER ID   NAME"), "{table}");
    assert!(table.contains("MEM USAGE / LIMIT") && table.contains("st1"), "{table}");
    let tpl = s.ok(["stats", "--no-stream", "--format", "{{.Name}}:{{.MemPerc}}", "st1"]);
    assert!(tpl.starts_with("st1:") && tpl.trim_end().ends_with('%'), "{tpl}");

    let top = s.ok(["top", "st1"]);
    let head = top.lines().next().unwrap();
    assert_eq!(head.split_whitespace().collect::<Vec<_>>(), ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
    assert!(top.contains("sleep 1000"), "{top}");
    let top = s.ok(["top", "st1", "-o", "pid,comm"]);
    assert!(top.lines().any(|l| l.trim_end().ends_with("sleep")), "{top}");

    // update: the live cgroup and the record (kept across a restart).
    s.ok(["update", "--memory", "300m", "--pids-limit", "50", "st1"]);
    let limit = || {
        let p = cgroups_named("wharf", &id).into_iter().find(|p| p.join("memory.limit_in_bytes").exists());
        match p {
            Some(p) => std::fs::read_to_string(p.join("memory.limit_in_bytes")).unwrap(),
            None => {
                let p = cgroups_named("wharf", &id).into_iter().find(|p| p.join("memory.max").exists()).unwrap();
                std::fs::read_to_string(p.join("memory.max")).unwrap()
            }
        }
    };
    assert_eq!(limit().trim(), (300u64 << 20).to_string());
    assert!(stats_json(&s, "st1")["MemUsage"].as_str().unwrap().ends_with("/ 300MiB"));
    s.ok(["restart", "-t", "0", "st1"]);
    assert_eq!(limit().trim(), (300u64 << 20).to_string(), "update must survive a restart");
    let bad = s.fails(["update", "--memory", "nonsense", "st1"]);
    assert!(bad.contains("invalid size"), "{bad}");
    remove_and_check(&s, &[id], marker);
}

#[test]
fn cp_both_ways_and_never_out_of_the_container() {
    if !privileged("cp_both_ways_and_never_out_of_the_container") {
        return;
    }
    let s = store();
    let marker = "cpmarker";
    let script = format!(
        "mkdir -p /data/sub; echo inside > /data/sub/f; ln -s / /escape; ln -s /etc/passwd /data/pw; sleep 1000 # {marker}"
    );
    let _rm = Remove(&s, &["cp1", "cp2", "cp3"]);
    let id = start(&s, "cp1", &[], &script);
    wait_for("the files", || s.run(["exec", "cp1", "test", "-L", "/escape"]).status.success());
    let host = s.dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    // Out: a file to a new name, a dir into a dir.
    s.ok(["cp".as_ref(), "cp1:/data/sub/f".as_ref(), host.join("g").as_os_str()]);
    assert_eq!(std::fs::read_to_string(host.join("g")).unwrap(), "inside\n");
    s.ok(["cp".as_ref(), "cp1:/data".as_ref(), host.as_os_str()]);
    assert_eq!(std::fs::read_to_string(host.join("data/sub/f")).unwrap(), "inside\n");
    // A symlink is copied as a symlink; -L copies what it points at.
    assert_eq!(std::fs::read_link(host.join("data/pw")).unwrap(), Path::new("/etc/passwd"));
    s.ok(["cp".as_ref(), "-L".as_ref(), "cp1:/data/pw".as_ref(), host.join("pw").as_os_str()]);
    assert!(std::fs::read_to_string(host.join("pw")).unwrap().starts_with("root:"));
    // The hostile symlink resolves inside the container, never to the host.
    let secret = s.dir.path().join("secret");
    std::fs::write(&secret, "host secret").unwrap();
    let through = format!("cp1:/escape{}", secret.display());
    let err = s.fails(["cp".as_ref(), through.as_ref(), host.join("leak").as_os_str()]);
    assert!(err.contains("Could not find the file"), "{err}");
    assert!(!host.join("leak").exists());
    // In: a file, a dir with ownership kept, through the hostile link too.
    let src = s.dir.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/x"), "from host").unwrap();
    std::os::unix::fs::chown(src.join("d/x"), Some(1234), Some(5678)).unwrap();
    s.ok(["cp".as_ref(), src.join("d").as_os_str(), "cp1:/tmp".as_ref()]);
    assert_eq!(s.ok(["exec", "cp1", "cat", "/tmp/d/x"]), "from host");
    assert_eq!(s.ok(["exec", "cp1", "stat", "-c", "%u:%g", "/tmp/d/x"]).trim(), "1234:5678");
    // Through the link, the copy lands in the container's /tmp, not the host's.
    let name = format!("via-escape-{}", std::process::id());
    s.ok(["cp".as_ref(), src.join("d/x").as_os_str(), format!("cp1:/escape/tmp/{name}").as_ref()]);
    assert_eq!(s.ok(["exec", "cp1", "cat", &format!("/tmp/{name}")]), "from host");
    assert!(!Path::new("/tmp").join(&name).exists(), "cp wrote to the host's /tmp");
    let victim = s.dir.path().join("victim");
    let via = format!("cp1:/escape{}", victim.display());
    let _ = s.run(["cp".as_ref(), src.join("d/x").as_os_str(), via.as_ref()]);
    assert!(!victim.exists(), "cp wrote through a container symlink onto the host");
    // Tar streams both ways.
    let tar = s.run(["cp", "cp1:/data/sub", "-"]);
    assert!(tar.status.success());
    let mut names: Vec<String> = tar::Archive::new(&tar.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["sub/", "sub/f"]);
    let o = s.run_stdin(["cp", "-", "cp1:/tmp"], &tar.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(s.ok(["exec", "cp1", "cat", "/tmp/sub/f"]), "inside\n");
    // A stopped container: its rootfs is mounted for the copy, then not.
    s.ok(["stop", "-t", "0", "cp1"]);
    s.ok(["cp".as_ref(), src.join("d/x").as_os_str(), "cp1:/stopped-x".as_ref()]);
    s.ok(["cp".as_ref(), "cp1:/stopped-x".as_ref(), host.join("back").as_os_str()]);
    assert_eq!(std::fs::read_to_string(host.join("back")).unwrap(), "from host");
    assert!(mounts_under(s.dir.path()).is_empty(), "cp left the rootfs mounted");
    let err = s.fails(["cp", "cp1:/nope", "-"]);
    assert!(err.contains("Could not find the file /nope"), "{err}");
    // A stopped container's volumes are there for cp, read-only ones stay so.
    let vol = start(&s, "cp3", &["-v", "cpvol:/v", "-v", "cpro:/ro:ro"], "echo in-volume > /v/f");
    s.ok(["wait", "cp3"]);
    s.ok(["cp".as_ref(), "cp3:/v/f".as_ref(), host.join("vf").as_os_str()]);
    assert_eq!(std::fs::read_to_string(host.join("vf")).unwrap(), "in-volume\n");
    s.ok(["cp".as_ref(), src.join("d/x").as_os_str(), "cp3:/v/new".as_ref()]);
    let err = s.fails(["cp".as_ref(), src.join("d/x").as_os_str(), "cp3:/ro/new".as_ref()]);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(mounts_under(s.dir.path()).is_empty(), "cp left mounts: {:?}", mounts_under(s.dir.path()));
    let both = s.ok(["run", "--rm", "--network", "none", "-v", "cpvol:/v", "bb", "cat", "/v/f", "/v/new"]);
    assert_eq!(both, "in-volume\nfrom host");
    // -a into a created (never started) container: its user owns the copy.
    let created = s.ok(["create", "--name", "cp2", "-u", "4321:8765", "bb", "true"]).trim().to_string();
    s.ok(["cp".as_ref(), "-a".as_ref(), src.join("d/x").as_os_str(), "cp2:/owned".as_ref()]);
    let tar = s.run(["cp", "cp2:/owned", "-"]);
    let mut a = tar::Archive::new(&tar.stdout[..]);
    let e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!((e.header().uid().unwrap(), e.header().gid().unwrap()), (4321, 8765));
    remove_and_check(&s, &[id, created, vol], marker);
    s.ok(["volume", "rm", "cpvol", "cpro"]);
}

fn events(s: &TestStore, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["events", "--format", "json"];
    all.extend_from_slice(args);
    s.ok(all).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn events_record_the_lifecycle() {
    if !privileged("events_record_the_lifecycle") {
        return;
    }
    let s = store();
    let _rm = Remove(&s, &["ev1", "ev2"]);
    let t0 = chrono::Utc::now().timestamp();
    let id = start(&s, "ev1", &[], "exit 3");
    s.ok(["wait", "ev1"]);
    s.ok(["rm", "ev1"]);
    let other = s.ok(["create", "--name", "ev2", "bb", "true"]).trim().to_string();
    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    let since = t0.to_string();
    let evs = events(&s, &["--since", &since, "--until", &until, "--filter", "container=ev1"]);
    let actions: Vec<&str> = evs.iter().map(|e| e["Action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"], "{evs:?}");
    let die = &evs[2];
    assert_eq!(die["Type"], "container");
    assert_eq!(die["scope"], "local");
    assert_eq!(die["id"], id.as_str());
    assert_eq!(die["Actor"]["ID"], id.as_str());
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "3");
    assert_eq!(die["Actor"]["Attributes"]["name"], "ev1");
    assert_eq!(die["Actor"]["Attributes"]["image"], "bb");
    assert!(die["timeNano"].as_i64().unwrap() / 1_000_000_000 == die["time"].as_i64().unwrap());
    let creates = events(&s, &["--since", &since, "--until", &until, "--filter", "event=create"]);
    assert_eq!(creates.len(), 2);
    let after = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    assert!(events(&s, &["--since", &after, "--until", &after]).is_empty());
    // Following: a new event shows up in a running `events`.
    let mut follow = s
        .cmd()
        .args(["events", "--format", "{{.Action}} {{.ID}}", "--filter", "container=ev2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    s.ok(["rm", "ev2"]);
    let mut out = follow.stdout.take().unwrap();
    // A watchdog: a follower that never prints must not hang the test.
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let pid = follow.id() as i32;
    let watchdog = std::thread::spawn(move || {
        if wait.recv_timeout(Duration::from_secs(20)).is_err() {
            // SAFETY: kill(2) of our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut buf = [0u8; 200];
    let n = std::io::Read::read(&mut out, &mut buf).unwrap();
    done.send(()).unwrap();
    watchdog.join().unwrap();
    follow.kill().unwrap();
    follow.wait().unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim(), format!("destroy {other}"));
    remove_and_check(&s, &[], "evmarker");
}

#[test]
fn system_df_counts_images_containers_volumes() {
    if !privileged("system_df_counts_images_containers_volumes") {
        return;
    }
    let s = store();
    let marker = "dfmarker";
    let _rm = Remove(&s, &["df1"]);
    s.ok(["volume", "create", "v1"]);
    let id = start(&s, "df1", &["-v", "v1:/v"], &format!("head -c 100000 /dev/zero > /big; sleep 1000 # {marker}"));
    wait_for("the file", || s.run(["exec", "df1", "test", "-s", "/big"]).status.success());
    let out = s.ok(["system", "df"]);
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], "{out}");
    assert_eq!(&rows[1][..3], ["Images", "1", "1"], "{out}");
    assert_eq!(&rows[2][..3], ["Containers", "1", "1"], "{out}");
    assert_eq!(&rows[3][..4], ["Local", "Volumes", "1", "1"], "{out}");
    assert_eq!(rows[4][0], "Build", "{out}");
    let json: serde_json::Value = serde_json::from_str(&s.ok(["system", "df", "--format", "json"])).unwrap();
    assert!(json["containers"][0]["size"].as_u64().unwrap() >= 100_000, "{json}");
    let v = s.ok(["system", "df", "-v"]);
    assert!(v.contains("Containers space usage:") && v.contains("df1"), "{v}");
    remove_and_check(&s, &[id], marker);
    s.ok(["volume", "rm", "v1"]);
}
