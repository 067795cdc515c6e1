//! The container engine through the `wharf` binary, as a Docker user drives
//! it: `run -d` outliving the CLI, `ps` and its filters and formats, lookup
//! by name and ID prefix, logs (chatty, rotated, followed), exit codes,
//! OOM, restart policies, and bad input. Each test has its own store and
//! names, removes its containers and checks that nothing is left.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use wharf_tests::engine::{stderr, stdout, unique, wait_for, Engine};
use wharf_tests::privileged;

#[test]
fn detached_containers_ps_filters_and_lookup() {
    if !privileged("detached_containers_ps_filters_and_lookup") {
        return;
    }
    let e = Engine::new();
    let (web, done) = (unique("web"), unique("done"));
    let id = e.ok(&["run", "-d", "--name", &web, "-l", "app=x", "-l", "tier", "bb", "sleep", "1000"]);
    assert_eq!(id.len(), 64, "run -d prints the full ID: {id}");
    // The CLI has exited; the container runs on under its monitor.
    assert_eq!(e.status(&web), "running");
    let pid = e.monitor_pid(&web, "Pid");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "init {pid} runs");
    e.ok(&["run", "-d", "--name", &done, "bb", "true"]);
    assert_eq!(e.ok(&["wait", &done]), "0");

    let ps = e.ok(&["ps"]);
    assert!(ps.contains(&web) && !ps.contains(&done), "ps shows running ones only:\n{ps}");
    assert!(ps.lines().next().unwrap().starts_with("CONTAINER ID"), "{ps}");
    let all = e.ok(&["ps", "-a"]);
    assert!(all.contains(&web) && all.contains(&done), "{all}");
    assert!(all.contains("Exited (0)") && all.contains("Up "), "{all}");
    assert_eq!(e.ok(&["ps", "-q"]), id[..12]);
    assert_eq!(e.ok(&["ps", "-q", "--no-trunc"]), id);
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "-a", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = e.ok(&a).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(names(&["--filter", "status=exited"]), [done.as_str()]);
    assert_eq!(names(&["--filter", "status=running"]), [web.as_str()]);
    assert_eq!(names(&["--filter", &format!("name={web}")]), [web.as_str()]);
    assert_eq!(names(&["--filter", "label=app=x"]), [web.as_str()]);
    assert_eq!(names(&["--filter", "label=tier"]), [web.as_str()]);
    assert_eq!(names(&["--filter", "label=app=y"]), Vec::<String>::new());
    let mut both = vec![web.clone(), done.clone()];
    both.sort();
    assert_eq!(names(&["--filter", "ancestor=bb"]), both);
    assert_eq!(names(&["--filter", "ancestor=bb", "--filter", "status=running"]), [web.as_str()]);
    let json = e.ok(&["ps", "-a", "--format", "json"]);
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2, "{json}");
    let w = rows.iter().find(|r| r["Names"] == web.as_str()).expect("web in json");
    assert_eq!(w["ID"], &id[..12]);
    assert_eq!(w["State"], "running", "{w}");
    assert!(w["Labels"].as_str().unwrap_or_default().contains("app=x"), "{w}");

    // Name, full ID, ID prefix and /name everywhere.
    for key in [web.as_str(), &id, &id[..7], &format!("/{web}")] {
        assert_eq!(e.inspect(key, "{{.Id}}"), id, "inspect {key}");
        assert_eq!(e.exec(key, &["echo", "in"]), "in", "exec {key}");
        e.ok(&["logs", key]);
        e.ok(&["port", key]);
    }
    let miss = e.wharf(&["inspect", "--type", "container", "nosuch-ctr"]);
    assert!(!miss.status.success() && stderr(&miss).contains("nosuch-ctr"), "{}", stderr(&miss));

    // Name conflicts: Docker's message, 125, nothing made.
    for verb in ["run", "create"] {
        let mut a = vec![verb];
        if verb == "run" {
            a.push("-d");
        }
        a.extend(["--name", web.as_str(), "bb", "true"]);
        let o = e.wharf(&a);
        assert_eq!(o.status.code(), Some(125), "{verb}: {}", stderr(&o));
        let want = format!("Conflict. The container name \"/{web}\" is already in use by container \"{id}\"");
        assert!(stderr(&o).contains(&want), "{verb}: {}", stderr(&o));
    }
    assert_eq!(e.ok(&["ps", "-a", "-q"]).lines().count(), 2, "a refused name makes no container");

    // Stop by ID prefix, rm by name, the name is free again.
    assert_eq!(e.ok(&["stop", "-t", "1", &id[..10]]), &id[..10]);
    assert_eq!(e.status(&web), "exited");
    assert_eq!(e.inspect(&web, "{{.State.Pid}}"), "0");
    e.ok(&["rm", &web]);
    e.ok(&["run", "-d", "--name", &web, "bb", "true"]);
    e.ok(&["wait", &web]);
    // system prune removes stopped containers, as Docker's does.
    let out = e.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert_eq!(e.ok(&["ps", "-a", "-q"]), "");
    e.clean_up();
}

/// `sh -c` that writes `n` numbered lines to stdout and to stderr.
fn chatty(n: u32) -> String {
    format!("i=0; while [ $i -lt {n} ]; do echo out$i; echo err$i >&2; i=$((i+1)); done")
}

#[test]
fn logs_of_a_chatty_container() {
    if !privileged("logs_of_a_chatty_container") {
        return;
    }
    let e = Engine::new();
    let name = unique("chatty");
    e.ok(&["run", "-d", "--name", &name, "bb", "sh", "-c", &chatty(3000)]);
    assert_eq!(e.ok(&["wait", &name]), "0");
    let o = e.wharf(&["logs", &name]);
    let want = |p: &str| (0..3000).map(|i| format!("{p}{i}\n")).collect::<String>();
    assert!(stdout(&o) == want("out"), "stdout: {} lines", stdout(&o).lines().count());
    assert!(stderr(&o) == want("err"), "stderr: {} lines", stderr(&o).lines().count());

    let o = e.wharf(&["logs", "--tail", "4", &name]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(out.lines().count() + err.lines().count(), 4, "{out}{err}");
    // The last lines as the monitor read them (stdout and stderr are two pipes).
    assert!(out.ends_with("out2999\n") || err.ends_with("err2999\n"), "{out}{err}");
    assert_eq!(e.ok(&["logs", "--tail", "0", &name]), "");

    let all = stdout(&e.wharf(&["logs", "-t", &name]));
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 3000);
    for l in &lines {
        let (ts, text) = l.split_once(' ').unwrap();
        assert!(chrono_like(ts) && text.starts_with("out"), "{l}");
    }
    // --since a line's own time: that line and what follows, nothing before.
    let (ts, _) = lines[1500].split_once(' ').unwrap();
    let o = e.wharf(&["logs", "-t", "--since", ts, &name]);
    let since: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert!(since.iter().all(|l| l.as_str() >= ts), "--since {ts} gave earlier lines");
    assert!(since.iter().any(|l| l == lines[1500]) && since.last().unwrap().ends_with("out2999"));
    let first = lines.iter().position(|l| l.split_once(' ').unwrap().0 == ts).unwrap();
    assert_eq!(since.len(), 3000 - first, "every line from the first with that time");
    assert_eq!(e.ok(&["logs", "--since", "2999-01-01T00:00:00Z", &name]), "");
    assert_eq!(e.ok(&["logs", "--until", "1", &name]), "", "nothing before 1970");
    e.clean_up();
}

/// `2026-11-28T18:20:06.123456789Z`.
fn chrono_like(ts: &str) -> bool {
    ts.len() >= 20 && ts.as_bytes()[4] == b'-' && ts.contains('T') && ts.ends_with('Z')
}

#[test]
fn logs_follow_across_rotation() {
    if !privileged("logs_follow_across_rotation") {
        return;
    }
    let e = Engine::new();
    let name = unique("rot");
    // ~1 MB of log in 16 KiB files, all kept: many rotations while followed.
    let script = "sleep 1; i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done";
    e.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--log-opt",
        "max-size=16k",
        "--log-opt",
        "max-file=200",
        "bb",
        "sh",
        "-c",
        script,
    ]);
    let mut f = e.s.cmd().args(["logs", "-f", &name]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let lines: Vec<String> = BufReader::new(f.stdout.take().unwrap()).lines().map_while(Result::ok).collect();
    // It ends by itself once the container has exited.
    assert!(f.wait().unwrap().success());
    assert_eq!(e.status(&name), "exited");
    let want: Vec<String> = (0..20000).map(|i| format!("line{i}")).collect();
    if lines != want {
        let missing = want.iter().filter(|w| !lines.contains(w)).count();
        panic!(
            "logs -f gave {} lines ({missing} missing, first differing at {:?})",
            lines.len(),
            lines.iter().zip(&want).position(|(a, b)| a != b)
        );
    }
    let rotated = wharf_tests::leaks::entries(&e.dir(&name)).iter().filter(|f| f.starts_with("ctr.log.")).count();
    assert!(rotated > 10, "the log rotated ({rotated} files)");
    // Read again whole, after the fact.
    assert_eq!(e.ok(&["logs", &name]).lines().count(), 20000);
    e.clean_up();
}

#[test]
fn logs_follow_ends_when_the_container_exits() {
    if !privileged("logs_follow_ends_when_the_container_exits") {
        return;
    }
    let e = Engine::new();
    let name = unique("short");
    e.ok(&["run", "-d", "--name", &name, "bb", "sh", "-c", "echo a; sleep 1; echo b"]);
    let o = e.wharf(&["logs", "-f", &name]);
    assert_eq!(stdout(&o), "a\nb\n");
    // Of an exited container: what there is, at once.
    assert_eq!(e.ok(&["logs", "-f", &name]), "a\nb");
    e.clean_up();
}

#[test]
fn exit_codes_oom_and_restart_policies() {
    if !privileged("exit_codes_oom_and_restart_policies") {
        return;
    }
    let e = Engine::new();
    let code = |args: &[&str]| e.wharf(args).status.code();
    assert_eq!(code(&["run", "--rm", "bb", "sh", "-c", "exit 3"]), Some(3));
    // Killed by a signal: 128+N, for the foreground `run` too.
    let k = unique("killed");
    let fg = e.s.cmd().args(["run", "--name", &k, "bb", "sleep", "1000"]).stdout(Stdio::null()).spawn().unwrap();
    wait_for(20, "the foreground container", || {
        e.wharf(&["inspect", "-f", "{{.State.Status}}", &k]).stdout == b"running\n"
    });
    e.ok(&["kill", &k]);
    assert_eq!(fg.wait_with_output().unwrap().status.code(), Some(137));
    assert_eq!(e.ok(&["wait", &k]), "137");
    e.ok(&["rm", &k]);
    // Docker's and podman's: 127 for a command not found, 126 for one not executable.
    let o = e.wharf(&["run", "--rm", "bb", "/no/such/binary"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("/no/such/binary"), "{}", stderr(&o));
    let o = e.wharf(&["run", "--rm", "bb", "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let o = e.wharf(&["run", "--rm", "bb", "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    // `wait` for a --rm container: its code, though it is gone at once.
    let gone = unique("gone");
    e.ok(&["run", "-d", "--rm", "--name", &gone, "bb", "sh", "-c", "sleep 1; exit 5"]);
    assert_eq!(e.ok(&["wait", &gone]), "5");
    // wharf's own errors: 125.
    assert_eq!(code(&["run", "--rm", "-m", "lots", "bb", "true"]), Some(125));
    assert_eq!(code(&["run", "--rm", "--pull", "sometimes", "bb", "true"]), Some(125));
    assert_eq!(code(&["run", "--rm", "-w", "relative", "bb", "true"]), Some(125));

    // OOM: 137 and OOMKilled, for a detached container.
    let hog = unique("hog");
    e.ok(&[
        "run",
        "-d",
        "--name",
        &hog,
        "-m",
        "16m",
        "bb",
        "sh",
        "-c",
        "a=$(head -c 200000000 /dev/zero | tr '\\0' x)",
    ]);
    assert_eq!(e.ok(&["wait", &hog]), "137");
    assert_eq!(e.inspect(&hog, "{{.State.OOMKilled}}"), "true");
    assert_eq!(e.inspect(&hog, "{{.State.ExitCode}}"), "137");
    let ok = unique("fine");
    e.ok(&["run", "-d", "--name", &ok, "-m", "16m", "bb", "true"]);
    e.ok(&["wait", &ok]);
    assert_eq!(e.inspect(&ok, "{{.State.OOMKilled}}"), "false");

    // on-failure:3 restarts exactly three times, then stays exited.
    let flaky = unique("flaky");
    e.ok(&["run", "-d", "--name", &flaky, "--restart", "on-failure:3", "bb", "sh", "-c", "echo try; exit 2"]);
    wait_for(30, "on-failure:3 to give up", || e.status(&flaky) == "exited" && !e.dir(&flaky).join("active").exists());
    assert_eq!(e.inspect(&flaky, "{{.RestartCount}}"), "3");
    assert_eq!(e.inspect(&flaky, "{{.State.ExitCode}}"), "2");
    assert_eq!(e.ok(&["logs", &flaky]), "try\ntry\ntry\ntry");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(e.inspect(&flaky, "{{.RestartCount}}"), "3", "no fourth restart");

    // always: restarts after an exit, but not after `stop`.
    let always = unique("always");
    e.ok(&["run", "-d", "--name", &always, "--restart", "always", "bb", "sh", "-c", "sleep 0.5; exit 1"]);
    wait_for(20, "a restart", || e.inspect(&always, "{{.RestartCount}}") != "0");
    e.ok(&["stop", "-t", "1", &always]);
    assert_eq!(e.status(&always), "exited");
    let count = e.inspect(&always, "{{.RestartCount}}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(e.status(&always), "exited", "stop is final under --restart always");
    assert_eq!(e.inspect(&always, "{{.RestartCount}}"), count);

    // restart: the same container runs again, each time.
    let again = unique("again");
    e.ok(&["run", "-d", "--name", &again, "bb", "sh", "-c", "echo up; sleep 1000"]);
    // (Right after the stop, the exit's cleanup may still hold the lock a moment.)
    for n in 2..=10 {
        let pid = e.monitor_pid(&again, "Pid");
        e.ok(&["restart", "-t", "0", &again]);
        assert_eq!(e.status(&again), "running", "after restart {n}");
        assert_ne!(e.monitor_pid(&again, "Pid"), pid, "a new process");
        wait_for(10, "its output", || e.ok(&["logs", &again]).lines().count() == n);
    }
    e.clean_up();
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    if !privileged("bad_input_is_refused_and_leaves_nothing") {
        return;
    }
    let e = Engine::new();
    let refused = |args: &[&str], code: i32, words: &[&str]| {
        let o = e.wharf(args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        for w in words {
            assert!(stderr(&o).contains(w), "{args:?}: {:?} lacks {w:?}", stderr(&o));
        }
        assert_eq!(stdout(&o), "", "{args:?} printed to stdout");
    };
    refused(&["run", "--rm", "--pull", "never", "nosuch:1", "true"], 125, &["nosuch"]);
    refused(&["run", "-d", "--pull", "never", "nosuch:1", "true"], 125, &["nosuch"]);
    refused(&["create", "--pull", "never", "nosuch:1"], 125, &["nosuch"]);
    let net = unique("nonet");
    refused(&["run", "--rm", "--network", &net, "bb", "true"], 125, &[&net, "not found"]);
    refused(&["run", "-d", "--network", &net, "bb", "true"], 125, &[&net, "not found"]);
    refused(&["run", "-d", "--restart", "sometimes", "bb", "true"], 125, &["invalid restart policy"]);
    refused(&["run", "-d", "--restart", "on-failure:x", "bb", "true"], 125, &["invalid restart policy"]);
    refused(&["run", "-d", "--log-opt", "max-file=3", "bb", "true"], 125, &["max-size"]);
    refused(&["run", "-d", "--name", "bad name!", "bb", "true"], 125, &["Invalid container name"]);
    assert_eq!(e.ok(&["ps", "-a", "-q"]), "", "refused runs leave no container");

    // A port already published by another container.
    let port = free_port();
    let p = format!("127.0.0.1:{port}:80");
    let first = unique("first");
    e.ok(&["run", "-d", "--name", &first, "-p", &p, "bb", "sleep", "1000"]);
    let o = e.wharf(&["run", "-d", "--name", &unique("second"), "-p", &p, "bb", "sleep", "1000"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains(&port.to_string()) && stderr(&o).contains("already"), "{}", stderr(&o));
    assert_eq!(e.ok(&["ps", "-a", "-q"]).lines().count(), 1, "the refused container is gone");
    assert_eq!(e.ok(&["port", &first, "80"]), format!("127.0.0.1:{port}"));

    // A stopped container: no exec, no attach, no kill; start works.
    let stopped = unique("stopped");
    e.ok(&["create", "--name", &stopped, "bb", "sleep", "1000"]);
    for args in
        [vec!["exec", &stopped, "true"], vec!["attach", &stopped], vec!["kill", &stopped], vec!["pause", &stopped]]
    {
        let o = e.wharf(&args);
        assert!(!o.status.success(), "{args:?} of a created container");
        assert!(
            stderr(&o).contains("not running") || stderr(&o).contains("stopped container"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = e.wharf(&["rm", "nosuch-ctr"]);
    assert!(!o.status.success() && stderr(&o).contains("No such container: nosuch-ctr"), "{}", stderr(&o));
    e.ok(&["rm", "-f", "nosuch-ctr"]);
    let o = e.wharf(&["rm", &first]);
    assert!(!o.status.success() && stderr(&o).contains("cannot remove a running container"), "{}", stderr(&o));
    assert_eq!(e.status(&first), "running", "a refused rm leaves it running");
    e.clean_up();
    e.s.assert_consistent();
}

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
