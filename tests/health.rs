//! Health checks end to end: `run --health-*` and a Dockerfile's
//! `HEALTHCHECK` run by the container's monitor, seen through `inspect`
//! (`State.Health`) and `ps` (STATUS and `--filter health=`); a probe that
//! hangs past its timeout is killed with everything it started;
//! `--no-healthcheck` turns the image's check off. Every test removes its
//! containers and checks that no process, mount or cgroup is left.

use std::time::{Duration, Instant};
use wharf_tests::leaks::{cgroups_named, processes_mentioning};
use wharf_tests::{busybox_tar, mounts_under, privileged, TestStore};

fn store() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "-c".as_ref(), "CMD [\"/bin/sh\"]".as_ref(), "bb".as_ref()]);
    s
}

fn health(s: &TestStore, name: &str) -> String {
    s.ok(["inspect", "-f", "{{.State.Health.Status}}", name]).trim().to_string()
}

fn inspect(s: &TestStore, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&s.ok(["inspect", name])).unwrap();
    v[0].clone()
}

/// Waits (up to 30 s) for the container's health status to be `want`.
fn wait_health(s: &TestStore, name: &str, want: &str) {
    let t = Instant::now();
    loop {
        let now = health(s, name);
        if now == want {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{name}: health still {now:?}, waiting for {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ps_status(s: &TestStore, name: &str) -> String {
    s.ok(["ps", "-a", "--filter", &format!("name={name}"), "--format", "{{.Status}}"]).trim().to_string()
}

fn ps_filter(s: &TestStore, filter: &str) -> Vec<String> {
    s.ok(["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]).lines().map(str::to_string).collect()
}

/// Processes whose command line is exactly `argv` (a probe's leftovers).
fn processes_running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            !stat.rsplit(')').next().is_some_and(|s| s.trim_start().starts_with('Z'))
        })
        .collect()
}

/// Removes the containers; then nothing of theirs may be left.
fn remove_and_check(s: &TestStore, names: &[&str]) {
    let ids: Vec<String> = names.iter().map(|n| inspect(s, n)["Id"].as_str().unwrap().to_string()).collect();
    let mut args = vec!["rm", "-f"];
    args.extend_from_slice(names);
    s.ok(args);
    let marker = s.dir.path().to_str().unwrap().to_string();
    let t = Instant::now();
    while !processes_mentioning(&marker).is_empty() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processes_mentioning(&marker), Vec::<String>::new(), "processes left");
    assert_eq!(mounts_under(s.dir.path()), Vec::<String>::new(), "mounts left");
    for id in &ids {
        assert_eq!(cgroups_named("/wharf", id), Vec::<std::path::PathBuf>::new(), "cgroups left");
    }
    assert!(s.ok(["ps", "-aq"]).trim().is_empty());
}

#[test]
fn health_cmd_starting_unhealthy_then_healthy() {
    if !privileged("health_cmd_starting_unhealthy_then_healthy") {
        return;
    }
    let s = store();
    let run = [
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "hc1",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "bb",
        "sleep",
        "300",
    ];
    s.ok(run);
    // The first probe is an interval after the start: starting until then.
    let first = health(&s, "hc1");
    assert!(first == "starting" || first == "unhealthy", "{first}");
    wait_health(&s, "hc1", "unhealthy");
    let h = &inspect(&s, "hc1")["State"]["Health"];
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    assert_eq!(log.last().unwrap()["ExitCode"], 1, "{h}");
    assert!(log[0]["Start"].as_str().unwrap().ends_with('Z'), "{h}");
    let status = ps_status(&s, "hc1");
    assert!(status.starts_with("Up ") && status.ends_with("(unhealthy)"), "{status}");
    assert_eq!(ps_filter(&s, "health=unhealthy"), ["hc1"]);
    assert!(ps_filter(&s, "health=healthy").is_empty());
    s.ok(["exec", "hc1", "touch", "/tmp/ok"]);
    wait_health(&s, "hc1", "healthy");
    let h = &inspect(&s, "hc1")["State"]["Health"];
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert_eq!(h["Log"].as_array().unwrap().last().unwrap()["ExitCode"], 0, "{h}");
    let status = ps_status(&s, "hc1");
    assert!(status.ends_with("(healthy)"), "{status}");
    assert_eq!(ps_filter(&s, "health=healthy"), ["hc1"]);
    assert!(ps_filter(&s, "health=none").is_empty());
    // The resolved check is in the container's config; Docker never restarts it.
    let cfg = &inspect(&s, "hc1")["Config"]["Healthcheck"];
    assert_eq!(cfg["Test"], serde_json::json!(["CMD-SHELL", "test -f /tmp/ok"]), "{cfg}");
    assert_eq!(cfg["Interval"], 200_000_000u64, "{cfg}");
    assert_eq!(inspect(&s, "hc1")["RestartCount"], 0);
    let err = s.fails(["ps", "--filter", "health=sick"]);
    assert!(err.contains("health"), "{err}");
    remove_and_check(&s, &["hc1"]);
}

#[test]
fn dockerfile_healthcheck_and_no_healthcheck() {
    if !privileged("dockerfile_healthcheck_and_no_healthcheck") {
        return;
    }
    let s = store();
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb\nHEALTHCHECK --interval=200ms --timeout=2s --retries=1 CMD [\"test\", \"-f\", \"/tmp/ok\"]\n",
    )
    .unwrap();
    s.ok(["build", "-q", "-t", "hcimg", ctx.to_str().unwrap()]);
    let img: serde_json::Value = serde_json::from_str(&s.ok(["inspect", "hcimg"])).unwrap();
    let hc = &img[0]["Config"]["Healthcheck"];
    assert_eq!(hc["Test"], serde_json::json!(["CMD", "test", "-f", "/tmp/ok"]), "{img}");
    assert_eq!(hc["Interval"], 200_000_000u64, "{hc}");
    assert_eq!(hc["Retries"], 1, "{hc}");

    s.ok(["run", "-d", "--network", "none", "--name", "img1", "hcimg", "sleep", "300"]);
    s.ok(["run", "-d", "--network", "none", "--name", "off1", "--no-healthcheck", "hcimg", "sleep", "300"]);
    // A flag overrides one field of the image's check, the rest is kept.
    s.ok(["run", "-d", "--network", "none", "--name", "mix1", "--health-retries", "1000", "hcimg", "sleep", "300"]);
    wait_health(&s, "img1", "unhealthy");
    s.ok(["exec", "img1", "touch", "/tmp/ok"]);
    wait_health(&s, "img1", "healthy");
    let mix = &inspect(&s, "mix1")["Config"]["Healthcheck"];
    assert_eq!((mix["Retries"].as_u64(), mix["Interval"].as_u64()), (Some(1000), Some(200_000_000)), "{mix}");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(health(&s, "mix1"), "starting", "1000 retries are not used up in 0.7 s");

    let off = inspect(&s, "off1");
    assert!(off["State"].get("Health").is_none(), "{off}");
    assert!(off["Config"].get("Healthcheck").is_none(), "{off}");
    let status = ps_status(&s, "off1");
    assert!(status.starts_with("Up ") && !status.contains('('), "{status}");
    assert_eq!(ps_filter(&s, "health=none"), ["off1"]);
    assert_eq!(ps_filter(&s, "health=starting"), ["mix1"]);
    assert!(ps_status(&s, "mix1").ends_with("(health: starting)"));
    // --no-healthcheck with a check of one's own is refused, and nothing made.
    let err = s.fails(["run", "-d", "--no-healthcheck", "--health-cmd", "true", "hcimg"]);
    assert!(err.contains("conflicts"), "{err}");
    let err = s.fails(["run", "-d", "--health-interval", "soon", "hcimg"]);
    assert!(err.contains("invalid duration"), "{err}");
    assert_eq!(s.ok(["ps", "-aq"]).lines().count(), 3);
    remove_and_check(&s, &["img1", "off1", "mix1"]);
}

#[test]
fn a_probe_past_its_timeout_is_killed_with_what_it_started() {
    if !privileged("a_probe_past_its_timeout_is_killed_with_what_it_started") {
        return;
    }
    let s = store();
    // `sleep` is the shell's child: killing the shell alone would leave it.
    let probe = "sleep 7431; true";
    s.ok([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "hang1",
        "--health-cmd",
        probe,
        "--health-interval",
        "300ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "bb",
        "sleep",
        "300",
    ]);
    wait_health(&s, "hang1", "unhealthy");
    let t = Instant::now();
    loop {
        let h = &inspect(&s, "hang1")["State"]["Health"];
        let log = h["Log"].as_array().unwrap();
        if log.len() >= 3 {
            for e in log {
                assert_eq!(e["ExitCode"], -1, "{h}");
                assert_eq!(e["Output"], "Health check exceeded timeout (300ms)", "{h}");
            }
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{h}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Three probes timed out; at most the one running now may be alive.
    let left = processes_running(&["sleep", "7431"]);
    assert!(left.len() <= 1, "probes left behind: {left:?}");
    remove_and_check(&s, &["hang1"]);
    assert_eq!(processes_running(&["sleep", "7431"]), Vec::<i32>::new());
}

#[test]
fn the_containers_exit_is_seen_while_probes_run() {
    if !privileged("the_containers_exit_is_seen_while_probes_run") {
        return;
    }
    let s = store();
    // Probes end (and are reaped) all the time around the init's exit.
    s.ok([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "ends1",
        "--health-cmd",
        "sleep 0.1",
        "--health-interval",
        "20ms",
        "bb",
        "sh",
        "-c",
        "sleep 1.5; exit 3",
    ]);
    wait_health(&s, "ends1", "healthy");
    assert_eq!(s.ok(["wait", "ends1"]).trim(), "3");
    let st = &inspect(&s, "ends1")["State"];
    assert_eq!((st["Status"].as_str(), st["ExitCode"].as_i64()), (Some("exited"), Some(3)), "{st}");
    assert!(ps_status(&s, "ends1").starts_with("Exited (3)"));
    // The last word of the check is kept, as Docker keeps it.
    assert_eq!(st["Health"]["Status"], "healthy", "{st}");
    remove_and_check(&s, &["ends1"]);
}
