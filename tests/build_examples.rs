//! `wharf build` of examples/Dockerfiles, end to end: each image is built,
//! run, and checked; the cache, reproducibility and failures too.

use std::path::{Path, PathBuf};
use wharf_tests::{mounts_under, privileged, TestStore};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/Dockerfiles")
}

/// A copy of an example's context (the busybox one gets /bin/busybox).
fn context(s: &TestStore, name: &str) -> PathBuf {
    let dst = s.path(&format!("ctx-{name}"));
    let out = std::process::Command::new("cp").arg("-a").arg(examples().join(name)).arg(&dst).output().unwrap();
    assert!(out.status.success());
    if name == "busybox" {
        std::fs::copy("/bin/busybox", dst.join("busybox")).unwrap();
    }
    dst
}

fn build(s: &TestStore, name: &str, extra: &[&str]) -> String {
    let ctx = context(s, name);
    let mut args: Vec<String> = vec!["build".into(), "-t".into(), format!("wharf-examples/{name}")];
    args.extend(extra.iter().map(|a| a.to_string()));
    args.push(ctx.display().to_string());
    s.ok(&args).trim().to_string()
}

fn run(s: &TestStore, args: &[&str]) -> String {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    s.ok(all)
}

fn base() -> TestStore {
    let s = TestStore::new();
    build(&s, "busybox", &[]);
    s
}

fn inspect(s: &TestStore, name: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(&s.ok(["inspect", name])).unwrap()[0].clone()
}

#[test]
fn busybox_from_scratch() {
    if !privileged("busybox_from_scratch") {
        return;
    }
    let s = base();
    let n: usize = run(&s, &["wharf-examples/busybox", "sh", "-c", "ls /bin | wc -l"]).trim().parse().unwrap();
    assert!(n > 100, "applets installed: {n}");
    let v = inspect(&s, "wharf-examples/busybox");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 3, "COPY + 2 RUN layers");
    let hist = v["History"].as_array().unwrap();
    assert!(hist.iter().any(|h| h["empty_layer"] == true && h["created_by"].as_str().unwrap().starts_with("ENV")));
    s.assert_consistent();
}

#[test]
fn website_with_dockerignore_serves_pages() {
    if !privileged("website_with_dockerignore_serves_pages") {
        return;
    }
    let s = base();
    build(&s, "website", &[]);
    let v = inspect(&s, "wharf-examples/website");
    assert_eq!(v["Config"]["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(v["Config"]["Labels"]["org.opencontainers.image.title"], "wharf example site");
    let out = run(
        &s,
        &[
            "wharf-examples/website",
            "sh",
            "-c",
            "ls /www; httpd -p 8080 -h /www; sleep 0.3; wget -qO- http://127.0.0.1:8080/",
        ],
    );
    assert!(out.contains("index.html") && out.contains("style.css"), "{out}");
    assert!(!out.contains("draft.html"), ".dockerignore'd file was copied: {out}");
    assert!(out.contains("Served by busybox httpd"), "{out}");
}

#[test]
fn heredocs_and_a_cache_mount() {
    if !privileged("heredocs_and_a_cache_mount") {
        return;
    }
    let s = base();
    build(&s, "heredoc-cache", &[]);
    assert_eq!(run(&s, &["wharf-examples/heredoc-cache"]).trim(), "Built by wharf from a heredoc.");
    assert_eq!(run(&s, &["wharf-examples/heredoc-cache", "cat", "/tabs"]).trim(), "tabs stripped");
    assert_eq!(run(&s, &["wharf-examples/heredoc-cache", "cat", "/builds-seen"]).trim(), "1");
    build(&s, "heredoc-cache", &["--no-cache"]);
    assert_eq!(
        run(&s, &["wharf-examples/heredoc-cache", "cat", "/builds-seen"]).trim(),
        "2",
        "the cache mount persists"
    );
}

#[test]
fn args_env_user_workdir() {
    if !privileged("args_env_user_workdir") {
        return;
    }
    let s = base();
    build(&s, "args-env-user", &["--build-arg", "WHO=ci"]);
    assert_eq!(run(&s, &["wharf-examples/args-env-user"]).trim(), "hello ci from app in /srv/app");
    let v = inspect(&s, "wharf-examples/args-env-user");
    assert_eq!(v["Config"]["User"], "app");
    assert_eq!(v["Config"]["WorkingDir"], "/srv/app");
    let env = v["Config"]["Env"].to_string();
    assert!(env.contains("APP_HOME=/srv/app") && !env.contains("GREETING"), "ARGs are not stored: {env}");
}

#[test]
fn multi_stage_ships_only_the_artifact() {
    if !privileged("multi_stage_ships_only_the_artifact") {
        return;
    }
    let s = base();
    build(&s, "multi-stage", &[]);
    let out = run(&s, &["wharf-examples/multi-stage"]);
    assert!(out.contains("built in stage 'build'") && out.contains("line 3"), "{out}");
    let listing = run(&s, &["--entrypoint", "/bin/busybox", "wharf-examples/multi-stage", "ls", "/"]);
    for want in ["bin", "out.txt", "out.txt.sha256", "report.sh"] {
        assert!(listing.split_whitespace().any(|w| w == want), "{want} missing: {listing}");
    }
    assert!(!listing.contains("src"), "the build stage's files stay out: {listing}");
}

#[test]
fn cache_hits_and_misses() {
    if !privileged("cache_hits_and_misses") {
        return;
    }
    let s = base();
    let ctx = context(&s, "website");
    let b = |extra: &[&str]| {
        let mut args = vec!["build", "-t", "site"];
        args.extend_from_slice(extra);
        let ctx = ctx.display().to_string();
        let out = s.cmd().args(&args).arg(&ctx).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stdout).trim().to_string(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (id1, _) = b(&[]);
    let blobs = std::fs::read_dir(s.root.join("blobs/sha256")).unwrap().count();
    let (id2, log2) = b(&[]);
    assert_eq!(id1, id2, "a rebuild with nothing changed gives the same image");
    assert_eq!(log2.matches("CACHED").count(), 4, "{log2}");
    assert_eq!(
        std::fs::read_dir(s.root.join("blobs/sha256")).unwrap().count(),
        blobs,
        "a cached rebuild writes no layer"
    );
    std::thread::sleep(std::time::Duration::from_millis(10));
    std::fs::write(ctx.join("site/index.html"), "changed").unwrap();
    let (id3, log3) = b(&[]);
    assert_ne!(id1, id3);
    assert_eq!(log3.matches("CACHED").count(), 1, "only LABEL before the COPY is cached: {log3}");
    // An mtime-only change is no change (content hashes, as BuildKit).
    let f = std::fs::File::options().write(true).open(ctx.join("site/style.css")).unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    let (id4, _) = b(&[]);
    assert_eq!(id3, id4);
    assert!(s.ok(["builder", "prune"]).contains("Deleted"));
}

#[test]
fn reproducible_across_roots_with_source_date_epoch() {
    if !privileged("reproducible_across_roots_with_source_date_epoch") {
        return;
    }
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let s = TestStore::new();
            let ctx = context(&s, "busybox");
            let out = s
                .cmd()
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .args(["build", "-q", "-t", "bb"])
                .arg(&ctx)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let v = inspect(&s, "bb");
            assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
            v["Digest"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids[0], ids[1], "same manifest digest from two roots");
}

#[test]
fn a_failing_run_leaves_nothing() {
    if !privileged("a_failing_run_leaves_nothing") {
        return;
    }
    let s = base();
    let ctx = s.path("bad");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM wharf-examples/busybox\nRUN echo before\nRUN echo failing && \\\n    exit 7\n",
    )
    .unwrap();
    let err = s.fails(["build".as_ref(), "-t".as_ref(), "bad".as_ref(), ctx.as_os_str()]);
    assert!(err.contains("lines 3-4") && err.contains("7"), "{err}");
    assert!(!s.ok(["images"]).contains("bad"), "no image named after a failed build");
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked");
    let runtime = std::fs::read_dir(s.dir.path().join("run/runtime")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(runtime, 0, "container state leaked");
    std::fs::write(ctx.join("Dockerfile"), "FROM wharf-examples/busybox\nFROOM x\n").unwrap();
    let err = s.fails(["build".as_ref(), ctx.as_os_str()]);
    assert!(err.contains("line 2") && err.to_lowercase().contains("froom"), "{err}");
    std::fs::write(ctx.join("Dockerfile"), "FROM wharf-examples/busybox\nCOPY ../../etc/passwd /x\n").unwrap();
    let err = s.fails(["build".as_ref(), ctx.as_os_str()]);
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn outputs_and_push() {
    if !privileged("outputs_and_push") {
        return;
    }
    use wharf_tests::registry::{Auth, TestRegistry};
    let s = base();
    let reg = TestRegistry::start(Auth::None);
    let ctx = context(&s, "website");
    let (local, archive) = (s.path("out-local"), s.path("out.tar"));
    let tag = format!("{}/site/web:1", reg.addr);
    let out = s
        .cmd()
        .args(["build", "-q", "--push", "-t", &tag])
        .arg("-o")
        .arg(format!("type=local,dest={}", local.display()))
        .arg("-o")
        .arg(format!("type=docker,dest={}", archive.display()))
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        local.join("www/index.html").exists() && local.join("bin/busybox").exists(),
        "type=local holds the filesystem"
    );
    let t = TestStore::new();
    assert!(t.ok(["load".as_ref(), "-i".as_ref(), archive.as_os_str()]).contains("Loaded image"));
    let p = TestStore::new();
    p.ok(["pull", &tag]);
    let pulled = p.ok(["images", "-q"]);
    assert!(s.ok(["images", "-q"]).contains(pulled.trim()), "the pulled image is the one built");
    assert!(run(&p, &[&tag, "ls", "/www"]).contains("index.html"));
    // A base only the registry has is pulled; --pull pulls even when present.
    let fresh = TestStore::new();
    let o = build_text(&fresh, "on-pushed", &format!("FROM {tag}\nRUN ls /www > /listing\n"), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(run(&fresh, &["on-pushed", "cat", "/listing"]).contains("index.html"));
    let o = build_text(&fresh, "on-pushed", &format!("FROM {tag}\nRUN ls /www > /listing\n"), &["--pull"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("pulling"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Serves `body` at any path on a loopback port, for `ADD <url>`.
fn serve(body: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(body);
        }
    });
    addr
}

#[test]
fn add_url_with_checksum() {
    if !privileged("add_url_with_checksum") {
        return;
    }
    let s = base();
    let addr = serve(b"remote content\n");
    let sum = wharf_image::digest::of_bytes(b"remote content\n");
    let ctx = s.path("url");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM wharf-examples/busybox\nADD --checksum={sum} http://{addr}/files/data.txt /srv/\n"),
    )
    .unwrap();
    s.ok(["build".as_ref(), "-t".as_ref(), "url".as_ref(), ctx.as_os_str()]);
    assert_eq!(run(&s, &["url", "cat", "/srv/data.txt"]), "remote content\n");
    let bad = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM wharf-examples/busybox\nADD --checksum={bad} http://{addr}/data.txt /srv/\n"),
    )
    .unwrap();
    let err = s.fails(["build".as_ref(), "-t".as_ref(), "url2".as_ref(), ctx.as_os_str()]);
    assert!(err.contains("line 2") && err.contains("checksum"), "{err}");
}

#[test]
fn c_program_compiled_in_a_build_stage() {
    if !privileged("c_program_compiled_in_a_build_stage") {
        return;
    }
    let s = TestStore::new();
    let tc = s.path("toolchain.tar");
    let out = std::process::Command::new("bash")
        .arg(examples().join("c-program/make-toolchain.sh"))
        .arg(&tc)
        .output()
        .unwrap();
    assert!(out.status.success(), "make-toolchain.sh: {}", String::from_utf8_lossy(&out.stderr));
    s.ok(["import".as_ref(), tc.as_os_str(), "wharf-examples/gcc".as_ref()]);
    build(&s, "c-program", &[]);
    assert_eq!(run(&s, &["wharf-examples/c-program"]).trim(), "hello, wharf, from a static C binary built by wharf");
    let v = inspect(&s, "wharf-examples/c-program");
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 1, "only the binary ships");
    assert!(v["Size"].as_u64().unwrap() < 2_000_000, "no toolchain in the final image");
}

fn build_text(s: &TestStore, name: &str, dockerfile: &str, extra: &[&str]) -> std::process::Output {
    let ctx = s.path(&format!("ctx-{}", name.replace(['/', ':'], "_")));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let mut c = s.cmd();
    c.args(["build", "-t", name]).args(extra).arg(&ctx);
    c.output().unwrap()
}

#[test]
fn instructions_and_flags() {
    if !privileged("instructions_and_flags") {
        return;
    }
    let s = base();
    // ONBUILD runs in the child, then is gone; CMD inherited, reset by a new ENTRYPOINT.
    let o = build_text(
        &s,
        "parent",
        "FROM wharf-examples/busybox\nONBUILD RUN echo triggered > /onbuild\nCMD [\"echo\", \"parent-cmd\"]\n",
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let secret = s.path("token");
    std::fs::write(&secret, "s3cr3t").unwrap();
    let iid = s.path("iid");
    let df = "FROM parent AS main\nSHELL [\"/bin/sh\", \"-e\", \"-c\"]\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen-secret\n\
              HEALTHCHECK --interval=5s --retries=2 CMD true\nVOLUME /data\nSTOPSIGNAL SIGINT\nENTRYPOINT [\"cat\"]\n\n\
              FROM wharf-examples/busybox AS other\nRUN echo other > /other\n";
    let o = build_text(
        &s,
        "child",
        df,
        &[
            "--target",
            "main",
            "--secret",
            &format!("id=tok,src={}", secret.display()),
            "--label",
            "team=wharf",
            "--iidfile",
            iid.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("[other"), "--target 0 does not build the other stage: {err}");
    let v = inspect(&s, "child");
    let c = &v["Config"];
    assert_eq!(c["Cmd"], serde_json::Value::Null, "ENTRYPOINT resets an inherited CMD");
    assert_eq!(c["Entrypoint"], serde_json::json!(["cat"]));
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-e", "-c"]));
    assert_eq!(c["Healthcheck"]["Test"], serde_json::json!(["CMD-SHELL", "true"]));
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["Labels"]["team"], "wharf");
    assert!(c.get("OnBuild").is_none_or(|o| o.is_null()), "triggers are not inherited");
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), v["Id"].as_str().unwrap());
    assert_eq!(run(&s, &["child", "/onbuild"]).trim(), "triggered");
    assert_eq!(run(&s, &["child", "/seen-secret"]).trim(), "s3cr3t");
    // The secret itself is in no layer.
    let layers = s.root.join("layers/sha256");
    let out = std::process::Command::new("grep").args(["-rl", "s3cr3t"]).arg(&layers).output().unwrap();
    let hits = String::from_utf8_lossy(&out.stdout);
    assert!(hits.lines().all(|l| l.ends_with("seen-secret")), "secret leaked into a layer: {hits}");
}

#[test]
fn independent_stages_and_cache_keys() {
    if !privileged("independent_stages_and_cache_keys") {
        return;
    }
    let s = base();
    let df = "ARG V=1\nFROM wharf-examples/busybox AS a\nRUN sleep 1; echo a > /a\n\
              FROM wharf-examples/busybox AS b\nRUN sleep 1; echo b > /b\n\
              FROM wharf-examples/busybox\nARG V\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nRUN echo $V > /v\n";
    let o = build_text(&s, "par", df, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(run(&s, &["par", "cat", "/a", "/b", "/v"]), "a\nb\n1\n");
    // A --build-arg the RUN sees re-runs it (and only what follows it).
    let o = build_text(&s, "par", df, &["--build-arg", "V=2"]);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    assert_eq!(log.matches("CACHED").count(), 4, "stages a and b and both COPYs cached, the RUN re-ran: {log}");
    assert_eq!(run(&s, &["par", "cat", "/v"]), "2\n");
    let o = build_text(&s, "arm", "FROM --platform=linux/arm64 wharf-examples/busybox\nRUN true\n", &[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("linux/arm64"));
}

#[test]
fn locked_cache_mounts_take_turns() {
    if !privileged("locked_cache_mounts_take_turns") {
        return;
    }
    let s = base();
    let df = |n: u32| {
        format!("FROM wharf-examples/busybox\nRUN --mount=type=cache,id=shared-log,target=/c,sharing=locked sh -c 'echo start >> /c/log; sleep 0.5; echo end {n} >> /c/log; cp /c/log /log'\n")
    };
    let children: Vec<_> = (0..2)
        .map(|n| {
            let ctx = s.path(&format!("lock{n}"));
            std::fs::create_dir_all(&ctx).unwrap();
            std::fs::write(ctx.join("Dockerfile"), df(n)).unwrap();
            s.cmd()
                .args(["build", "-q", "-t", &format!("lock{n}")])
                .arg(&ctx)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        assert!(c.wait_with_output().unwrap().status.success());
    }
    let log = std::fs::read_dir(s.root.join("build-mounts/cache"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| std::fs::read_to_string(e.path().join("log")).unwrap_or_default())
        .find(|l| !l.is_empty())
        .unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(lines[0] == "start" && lines[1].starts_with("end") && lines[2] == "start", "the builds overlapped: {log}");
}
