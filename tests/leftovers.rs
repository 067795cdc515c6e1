//! `kill -9` of a wharf command at a bad moment, then one ordinary command:
//! nothing may be left (mounts, processes, cgroups, runtime state, dirs).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use wharf_tests::leaks::{cgroups_named, entries, iptables_rules, network_leaks, processes_mentioning};
use wharf_tests::{busybox_tar, mounts_under, privileged, TestStore};

/// Spawns wharf with `args` and returns once `word` appears on its stdout
/// or stderr (the container is running). `word` is computed by the
/// container (`$((6*7))`) so that an echo of the command does not match.
fn spawn_until(s: &TestStore, args: &[&std::ffi::OsStr], word: &str) -> Child {
    let mut child = s.cmd().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for r in [Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stderr.take().unwrap())] {
        let (tx, word) = (tx.clone(), word.to_string());
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                if line.contains(&word) {
                    let _ = tx.send(());
                }
            }
        });
    }
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("{args:?} never printed {word:?}: {:?}", child.wait_with_output());
    }
    child
}

fn sigkill(mut child: Child) {
    // SAFETY: kill(2) of the child we spawned, by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
}

/// A store with busybox imported as `bb:1`, and the marker word that the
/// test's container commands carry (to find their processes).
fn setup() -> (TestStore, String) {
    let s = TestStore::new();
    // The host's rules before: other stores' rules are not this test's leaks.
    std::fs::write(s.dir.path().join("iptables.before"), iptables_rules()).unwrap();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "bb:1".as_ref()]);
    let marker = s.dir.path().file_name().unwrap().to_string_lossy().into_owned();
    (s, marker)
}

fn run_root(s: &TestStore) -> PathBuf {
    s.dir.path().join("run")
}

/// Container ids (and their cgroup parent) of what is left right now.
fn container_ids(s: &TestStore) -> Vec<(&'static str, String)> {
    let mut ids: Vec<_> = entries(&s.root.join("containers")).into_iter().map(|i| ("/wharf", i)).collect();
    // Build work dirs are in the store's root (a RUN's upper dir becomes a snapshot by rename).
    for b in entries(&s.root.join("build")) {
        let dir = s.root.join("build").join(b);
        ids.extend(entries(&dir).into_iter().filter(|w| w.starts_with("wharf-build-")).map(|w| ("/wharf-build", w)));
    }
    ids
}

fn assert_nothing_left(s: &TestStore, marker: &str, ids: &[(&str, String)]) {
    let dir = s.dir.path();
    assert_eq!(mounts_under(dir), Vec::<String>::new(), "mounts left");
    assert_eq!(processes_mentioning(marker), Vec::<String>::new(), "container processes left");
    assert_eq!(processes_mentioning(&dir.to_string_lossy()), Vec::<String>::new(), "processes left");
    for (parent, id) in ids {
        assert_eq!(cgroups_named(parent, id), Vec::<PathBuf>::new(), "cgroups left");
    }
    for d in [s.root.join("containers"), s.root.join("build"), run_root(s).join("build"), run_root(s).join("runtime")] {
        assert_eq!(entries(&d), Vec::<String>::new(), "{} is not empty", d.display());
    }
    assert!(!run_root(s).join("console").exists() || entries(&run_root(s).join("console")).is_empty());
    let ids: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    let before = std::fs::read_to_string(s.dir.path().join("iptables.before")).unwrap_or_default();
    assert_eq!(network_leaks(&s.root, &run_root(s), &ids, &before), Vec::<String>::new(), "network state left");
    s.assert_consistent();
}

fn is_mounted_under(dir: &Path) -> bool {
    !mounts_under(dir).is_empty()
}

/// A SIGKILLed `wharf run` leaves its container running under its monitor,
/// as Docker's and podman's do: `ps` says so. Killing the running monitors too
/// (SIGKILL, by the pids in monitor.json) makes the orphans the sweep is for.
fn kill_monitors(s: &TestStore) {
    let running = s.ok(["ps", "-q", "--no-trunc"]);
    assert!(!running.trim().is_empty(), "the container should outlive the killed run");
    for id in running.lines() {
        let bytes = std::fs::read(s.root.join("containers").join(id).join("monitor.json")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        // SAFETY: kill(2) of the monitor this test's run started, by its pid.
        unsafe { libc::kill(v["MonitorPid"].as_i64().unwrap() as i32, libc::SIGKILL) };
    }
}

// Broke: a build SIGKILLed in a RUN left its overlay mount, work dir, runtime
// state, cgroups and the RUN's processes forever; nothing removed them.
#[test]
fn build_killed_mid_run_is_cleaned_by_the_next_prune() {
    if !privileged("build_killed_mid_run_is_cleaned_by_the_next_prune") {
        return;
    }
    let (s, marker) = setup();
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM bb:1\nRUN echo ready-$((6*7)); sleep 600; : {marker}\n"))
        .unwrap();
    let child = spawn_until(&s, &["build".as_ref(), "--progress=plain".as_ref(), ctx.as_os_str()], "ready-42");
    sigkill(child);
    let ids = container_ids(&s);
    assert!(is_mounted_under(s.dir.path()) && !ids.is_empty(), "the kill left nothing to clean: test is void");
    assert!(!processes_mentioning(&marker).is_empty(), "the RUN's process should outlive the kill");
    // The check sees it, and changes nothing.
    let out = s.run(["system", "check"]);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("killed build"));
    assert!(is_mounted_under(s.dir.path()));
    s.ok(["image", "prune"]);
    assert_nothing_left(&s, &marker, &ids);
}

// Broke: `wharf run --rm` SIGKILLed left its container running as an orphan,
// with its mount, dir and runtime state, unreachable by any command.
#[test]
fn run_rm_killed_is_cleaned_by_the_next_prune() {
    if !privileged("run_rm_killed_is_cleaned_by_the_next_prune") {
        return;
    }
    let (s, marker) = setup();
    let script = format!("echo ready-$((6*7)); sleep 600; : {marker}");
    // A published port: its portmap rules are the container's own (masquerade
    // and isolation are the network's), so the leak check has one to find.
    let args = ["run", "--rm", "-p", "127.0.0.1::8080", "bb:1", "sh", "-c", &script];
    let child = spawn_until(&s, &args.map(std::ffi::OsStr::new), "ready-42");
    sigkill(child);
    kill_monitors(&s);
    let ids = container_ids(&s);
    assert!(is_mounted_under(s.dir.path()) && ids.len() == 1, "the kill left nothing to clean: test is void");
    assert!(!processes_mentioning(&marker).is_empty(), "the container should outlive the kill");
    // Broke: `system check` did not report the dead run's network attachment.
    let attachments = entries(&run_root(&s).join("containers"));
    assert_eq!(attachments.len(), 1, "run joins the default network: test is void");
    let out = s.run(["system", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("network attachment of a killed wharf run"), "{text}");
    assert_eq!(entries(&run_root(&s).join("containers")), attachments, "system check changed the attachment");
    assert_eq!(entries(&run_root(&s).join("netns")).len(), 1, "system check changed the netns");
    let id_list: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    let rules = std::fs::read_to_string(s.dir.path().join("iptables.before")).unwrap();
    let before = network_leaks(&s.root, &run_root(&s), &id_list, &rules);
    for kind in ["record ", "netns ", "IP reservation ", "veth ", "iptables rule "] {
        assert!(before.iter().any(|l| l.starts_with(kind)), "the leak check misses {kind:?}: {before:#?}");
    }
    s.ok(["image", "prune"]);
    assert_nothing_left(&s, &marker, &ids);
}

// Broke: the next `wharf run` did not remove a killed run's container either.
#[test]
fn run_rm_killed_is_cleaned_by_the_next_run() {
    if !privileged("run_rm_killed_is_cleaned_by_the_next_run") {
        return;
    }
    let (s, marker) = setup();
    let script = format!("echo ready-$((6*7)); sleep 600; : {marker}");
    let child = spawn_until(&s, &["run", "--rm", "bb:1", "sh", "-c", &script].map(std::ffi::OsStr::new), "ready-42");
    sigkill(child);
    kill_monitors(&s);
    let ids = container_ids(&s);
    s.ok(["run", "--rm", "bb:1", "true"]);
    assert_nothing_left(&s, &marker, &ids);
}

// Broke: `image prune` kept the temp blob of a writer killed less than 5 s
// before (a free lock on a young file passed for a writer not locked yet),
// and `system check` went on reporting it.
#[test]
fn image_prune_removes_the_temp_file_of_a_just_killed_import() {
    let s = TestStore::new();
    // Large enough that the import is still writing when killed.
    let big = s.path("big.tar");
    let mut raw = wharf_tests::RawTar::default();
    let mut data = vec![0u8; 64 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&big, raw.file("big", &data).finish()).unwrap();
    let ingest = s.root.join("ingest");
    let mut left = false;
    for _ in 0..20 {
        let child = s.cmd().args(["import".as_ref(), big.as_os_str(), "big:1".as_ref()]).spawn().unwrap();
        let t = Instant::now();
        while entries(&ingest).is_empty() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(50));
        sigkill(child);
        if !entries(&ingest).is_empty() {
            left = true;
            break;
        }
    }
    assert!(left, "no import was killed while writing: test is void");
    s.ok(["image", "prune"]);
    assert_eq!(entries(&ingest), Vec::<String>::new(), "temp files left in ingest/");
    let out = s.ok(["system", "check"]);
    assert!(!out.contains("temp file"), "{out}");
}

// `image prune -a` keeps the images of containers, drops every other one.
#[test]
fn image_prune_all_keeps_only_the_images_of_containers() {
    if !privileged("image_prune_all_keeps_only_the_images_of_containers") {
        return;
    }
    let (s, marker) = setup();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "-m".as_ref(), "other".as_ref(), "other:1".as_ref()]);
    let script = format!("echo ready-$((6*7)); sleep 600; : {marker}");
    let child = spawn_until(&s, &["run", "--rm", "bb:1", "sh", "-c", &script].map(std::ffi::OsStr::new), "ready-42");
    let out = s.ok(["image", "prune", "-a"]);
    assert!(out.contains("Deleted 1 image(s)"), "{out}");
    let images = s.ok(["images"]);
    assert!(images.contains("bb") && !images.contains("other"), "{images}");
    sigkill(child);
    let ids = container_ids(&s);
    // The container outlives its killed run (as Docker's): the user removes it.
    let id = &ids[0].1;
    s.ok(["rm", "-f", id.as_str()]);
    s.ok(["system", "prune", "-f"]);
    assert_nothing_left(&s, &marker, &ids);
}

// Broke: a SIGKILLed `wharf run --rm -v /path` left its anonymous volume
// forever (the sweep did not know the container had one, nor about --rm).
#[test]
fn run_rm_killed_leaves_no_anonymous_volume() {
    if !privileged("run_rm_killed_leaves_no_anonymous_volume") {
        return;
    }
    let (s, marker) = setup();
    let script = format!("echo ready-$((6*7)); sleep 600; : {marker}");
    let volumes = || s.ok(["volume", "ls", "-q"]).lines().map(str::to_string).collect::<Vec<_>>();
    let args = |rm: &[&'static str]| {
        let mut a = vec!["run"];
        a.extend_from_slice(rm);
        a.extend_from_slice(&["-v", "/anon", "bb:1", "sh", "-c", &script]);
        a.into_iter().map(std::ffi::OsStr::new).collect::<Vec<_>>()
    };
    // Without --rm the anonymous volume outlives the container, as Docker's
    // (this run's container is swept by the next run).
    sigkill(spawn_until(&s, &args(&[]), "ready-42"));
    kill_monitors(&s);
    let kept = volumes();
    sigkill(spawn_until(&s, &args(&["--rm"]), "ready-42"));
    let ids = container_ids(&s);
    kill_monitors(&s);
    // The first one's record stays (exited), as a Docker container's would.
    assert_eq!((kept.len(), volumes().len(), ids.len()), (1, 2, 2), "the kills left no volumes: test is void");
    s.ok(["system", "prune", "-f"]);
    assert_nothing_left(&s, &marker, &ids);
    assert_eq!(volumes(), kept, "only the --rm run's volume goes");
}

// Broke: `image prune -a` read the images of containers before taking the
// gc lock, so the image of a `run` starting meanwhile was deleted.
#[test]
fn image_prune_all_keeps_the_image_of_a_starting_run() {
    let (s, _) = setup();
    let store = wharf_image::Store::open(&s.root).unwrap();
    let digest = store.resolve("bb:1").unwrap().target.digest().to_string();
    // A starting run: it holds the content lock, has resolved its image and
    // not yet written its container dir's `image` file.
    let content = store.content_lock().unwrap();
    let prune = s.cmd().args(["image", "prune", "-a"]).stdout(Stdio::piped()).spawn().unwrap();
    // Time for a prune that reads the in-use set before the gc lock to read it.
    std::thread::sleep(Duration::from_secs(1));
    let ctr = wharf_image::OwnedDir::create(&s.root.join("containers"), "starting").unwrap();
    std::fs::write(ctr.path().join("image"), &digest).unwrap();
    drop(content);
    let out = prune.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let images = s.ok(["images"]);
    assert!(images.contains("bb"), "the starting run's image was pruned: {images}");
    ctr.remove().unwrap();
    s.assert_consistent();
}
