//! `wharf build` for CI and for Dockerfiles as people write them:
//! `--check`, BuildKit's tolerance of sloppy files, `--metadata-file`,
//! `--annotation`, `-o type=image|registry`, `--add-host`, `--ulimit`,
//! `--shm-size` and `--no-cache-filter`.

use std::path::PathBuf;
use wharf_tests::{busybox_tar, mounts_under, privileged, TestStore};

/// A store holding `bb` (busybox) and a context dir with `dockerfile`.
fn setup(dockerfile: &str) -> (TestStore, PathBuf) {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "bb".as_ref()]);
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    (s, ctx)
}

fn inspect(s: &TestStore, name: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(&s.ok(["inspect", name])).unwrap()[0].clone()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_prints_buildkit_warnings_and_builds_nothing() {
    // No root needed: --check only reads the Dockerfile (and the store).
    let s = TestStore::new();
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch as Build\nENV API_TOKEN=x\nCOPY $UNSET /x\nCMD echo hi\nfrom scratch\nCMD [\"echo\", \"unterminated\n",
    )
    .unwrap();
    let o = s.run(["build".as_ref(), "--check".as_ref(), ctx.as_os_str()]);
    let out = stdout(&o);
    assert!(o.status.success(), "warnings alone do not fail the check: {out}");
    for want in [
        "WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/\nStage name 'Build' should be lowercase",
        "WARNING: FromAsCasing",
        "Dockerfile:1\n",
        "WARNING: SecretsUsedInArgOrEnv",
        "Do not use ARG or ENV instructions for sensitive data (ENV \"API_TOKEN\")",
        "Usage of undefined variable '$UNSET'",
        "Dockerfile:3\n",
        "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals",
        "Command 'from' should match the case of the command majority (uppercase)",
        "not valid JSON",
        "Check complete, 8 warnings have been found!",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!s.root.join("index.json").exists(), "--check builds and stores nothing");
    // A broken Dockerfile is an error, with its line.
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nFROOM x\n").unwrap();
    let o = s.run(["build".as_ref(), "--check".as_ref(), ctx.as_os_str()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 2: unknown instruction: FROOM"));
    // `# check=error=true` turns warnings into a failure; skip= drops rules.
    std::fs::write(ctx.join("Dockerfile"), "# check=error=true\nFROM scratch\nCMD x\n").unwrap();
    assert!(!s.run(["build".as_ref(), "--check".as_ref(), ctx.as_os_str()]).status.success());
    std::fs::write(ctx.join("Dockerfile"), "# check=skip=JSONArgsRecommended;error=true\nFROM scratch\nCMD x\n")
        .unwrap();
    let o = s.run(["build".as_ref(), "--check".as_ref(), ctx.as_os_str()]);
    assert!(o.status.success() && stdout(&o).contains("no warnings found"), "{}", stdout(&o));
}

#[test]
fn sloppy_dockerfiles_build_as_with_buildkit() {
    if !privileged("sloppy_dockerfiles_build_as_with_buildkit") {
        return;
    }
    // Were refused: a continuation on the last line, and invalid JSON in CMD.
    let (s, ctx) = setup("FROM bb\nCMD [\"echo\", \"unterminated\nRUN echo a > /f \\\n  && echo b >> /f \\");
    let o = s.run(["build".as_ref(), "-t".as_ref(), "sloppy".as_ref(), ctx.as_os_str()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("not valid JSON"), "the fallback is warned about: {err}");
    let cfg = &inspect(&s, "sloppy")["Config"];
    assert_eq!(cfg["Cmd"], serde_json::json!(["/bin/sh", "-c", "[\"echo\", \"unterminated"]));
    assert_eq!(s.ok(["run", "--rm", "sloppy", "cat", "/f"]), "a\nb\n");
}

#[test]
fn metadata_file_annotations_labels_and_names() {
    if !privileged("metadata_file_annotations_labels_and_names") {
        return;
    }
    let (s, ctx) = setup("FROM bb\nLABEL from.file=1\n");
    let meta = s.path("meta.json");
    s.ok([
        "build".as_ref(),
        "-q".as_ref(),
        "-t".as_ref(),
        "one:1".as_ref(),
        "-t".as_ref(),
        "two:2".as_ref(),
        "-o".as_ref(),
        "type=image,name=three:3".as_ref(),
        "--label".as_ref(),
        "from.flag=2".as_ref(),
        "--annotation".as_ref(),
        "org.opencontainers.image.source=https://example.com/repo".as_ref(),
        "--annotation".as_ref(),
        "manifest:com.example.team=ci".as_ref(),
        "--metadata-file".as_ref(),
        meta.as_os_str(),
        ctx.as_os_str(),
    ]);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let digest = m["containerimage.digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{m}");
    assert_eq!(m["containerimage.descriptor"]["digest"], digest.as_str());
    assert_eq!(m["containerimage.descriptor"]["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{m}");
    assert_eq!(m["image.name"], "docker.io/library/one:1,docker.io/library/two:2,docker.io/library/three:3");
    let id = inspect(&s, "one:1")["Id"].clone();
    assert_eq!(m["containerimage.config.digest"], id);
    for n in ["two:2", "three:3"] {
        assert_eq!(inspect(&s, n)["Id"], id, "{n} names the same image");
    }
    let labels = &inspect(&s, "one:1")["Config"]["Labels"];
    assert_eq!((labels["from.file"].as_str(), labels["from.flag"].as_str()), (Some("1"), Some("2")));
    // The annotations are in the manifest blob the digest names.
    let blob = s.root.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
    assert_eq!(manifest["annotations"]["org.opencontainers.image.source"], "https://example.com/repo");
    assert_eq!(manifest["annotations"]["com.example.team"], "ci");
    // Bad input: a clear error, no file, no image.
    let bad = s.path("bad.json");
    for args in [
        vec!["--annotation", "index:a=b"],
        vec!["--annotation", "novalue"],
        vec!["--add-host", "nohost"],
        vec!["--ulimit", "bogus=1"],
        vec!["--shm-size", "lots"],
        vec!["-o", "type=image"],
    ] {
        let mut all = vec!["build", "-t", "bad:1", "--metadata-file", bad.to_str().unwrap()];
        all.extend(args.iter().copied());
        all.push(ctx.to_str().unwrap());
        let err = s.fails(&all);
        assert!(!err.is_empty(), "{args:?}");
        assert!(!bad.exists(), "{args:?}: no metadata file");
        assert!(!s.run(["inspect", "bad:1"]).status.success(), "{args:?}: no image");
    }
    assert!(mounts_under(s.dir.path()).is_empty());
}

#[test]
fn output_type_registry_pushes() {
    if !privileged("output_type_registry_pushes") {
        return;
    }
    use wharf_tests::registry::{Auth, TestRegistry};
    let reg = TestRegistry::start(Auth::None);
    let (s, ctx) = setup("FROM bb\nRUN echo pushed > /p\n");
    let (a, b) = (format!("{}/ci/app:a", reg.addr), format!("{}/ci/app:b", reg.addr));
    let meta = s.path("meta.json");
    s.ok([
        "build".as_ref(),
        "-q".as_ref(),
        "-o".as_ref(),
        format!("type=registry,name={a}").as_ref(),
        "--output".as_ref(),
        format!("type=image,name={b},push=true").as_ref(),
        "--metadata-file".as_ref(),
        meta.as_os_str(),
        ctx.as_os_str(),
    ]);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    for name in [&a, &b] {
        let p = TestStore::new();
        p.ok(["pull", "-q", name]);
        let pulled: serde_json::Value = serde_json::from_str(&p.ok(["inspect", name])).unwrap();
        assert_eq!(pulled[0]["Id"], m["containerimage.config.digest"], "{name}");
    }
}

#[test]
fn run_gets_add_host_ulimit_and_shm_size() {
    if !privileged("run_gets_add_host_ulimit_and_shm_size") {
        return;
    }
    let (s, ctx) = setup(
        "FROM bb\nRUN grep db.internal /etc/hosts > /hosts && ulimit -n > /nofile && df -k /dev/shm | tail -1 > /shm\n",
    );
    s.ok([
        "build".as_ref(),
        "-q".as_ref(),
        "-t".as_ref(),
        "hostopts".as_ref(),
        "--add-host".as_ref(),
        "db.internal:10.1.2.3".as_ref(),
        "--ulimit".as_ref(),
        "nofile=1234:2345".as_ref(),
        "--shm-size".as_ref(),
        "16m".as_ref(),
        ctx.as_os_str(),
    ]);
    let out = s.ok(["run", "--rm", "hostopts", "cat", "/hosts", "/nofile", "/shm"]);
    assert!(out.contains("10.1.2.3\tdb.internal"), "{out}");
    assert!(out.contains("\n1234\n"), "{out}");
    assert!(out.contains(" 16384 "), "/dev/shm is 16 MiB: {out}");
    // The hosts file is the build's, not the image's.
    let etc = s.ok(["run", "--rm", "hostopts", "sh", "-c", "cat /etc/hosts 2>/dev/null; true"]);
    assert!(!etc.contains("db.internal"), "{etc}");
}

#[test]
fn no_cache_filter_reruns_only_that_stage() {
    if !privileged("no_cache_filter_reruns_only_that_stage") {
        return;
    }
    let (s, ctx) = setup(
        "FROM bb AS deps\nRUN echo deps > /deps\nFROM bb AS gen\nRUN cat /proc/sys/kernel/random/uuid > /id\nFROM bb\nCOPY --from=deps /deps /\nCOPY --from=gen /id /\n",
    );
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "--progress", "plain", "-t", "ncf"];
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        let o = s.run(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    build(&[]);
    let first = s.ok(["run", "--rm", "ncf", "cat", "/id"]);
    let log = build(&["--no-cache-filter", "gen"]);
    let second = s.ok(["run", "--rm", "ncf", "cat", "/id"]);
    assert_ne!(first, second, "the gen stage ran again and the final image has its new result");
    assert!(cached(&log, "[deps 1/1] RUN echo deps"), "{log}");
    assert!(!cached(&log, "[gen 1/1] RUN cat"), "{log}");
    assert_eq!(s.ok(["run", "--rm", "ncf", "cat", "/deps"]), "deps\n");
}

/// Whether the step whose plain progress line contains `step` was a cache hit.
fn cached(log: &str, step: &str) -> bool {
    let line = log.lines().find(|l| l.contains(step)).unwrap_or_else(|| panic!("no step {step:?} in:\n{log}"));
    let id = line.split_whitespace().next().unwrap();
    log.lines().any(|l| l == format!("{id} CACHED"))
}

#[test]
fn named_build_contexts() {
    if !privileged("named_build_contexts") {
        return;
    }
    // `base` is not an image anywhere: the named context says which one it is.
    let (s, ctx) = setup(
        "FROM bb AS src\nRUN echo stage > /hello.txt\nFROM base\nCOPY --from=src hello.txt /copied\nRUN --mount=from=src,target=/m cat /m/hello.txt > /mounted\n",
    );
    let src = s.path("other");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello.txt"), "named dir\n").unwrap();
    let o = s.run([
        "build".as_ref(),
        "-t".as_ref(),
        "named".as_ref(),
        "--build-context".as_ref(),
        "base=docker-image://bb".as_ref(),
        "--build-context".as_ref(),
        format!("src={}", src.display()).as_ref(),
        ctx.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The named dir wins over the stage of the same name (as buildx).
    assert_eq!(s.ok(["run", "--rm", "named", "cat", "/copied", "/mounted"]), "named dir\nnamed dir\n");
    let err =
        s.fails(["build".as_ref(), "--build-context".as_ref(), "base=git://example.com/x".as_ref(), ctx.as_os_str()]);
    assert!(err.contains("not supported"), "{err}");
    assert!(mounts_under(s.dir.path()).is_empty());
}

#[test]
fn copy_link_layers_do_not_depend_on_the_base() {
    if !privileged("copy_link_layers_do_not_depend_on_the_base") {
        return;
    }
    let (s, ctx) = setup("FROM bb\nRUN mkdir -m 700 /opt && chown 1:1 /opt\n");
    s.ok(["build".as_ref(), "-q".as_ref(), "-t".as_ref(), "bb-opt".as_ref(), ctx.as_os_str()]);
    std::fs::write(ctx.join("data"), "payload\n").unwrap();
    let last_layer = |base: &str, link: &str| {
        std::fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nCOPY {link} data /opt/data\n")).unwrap();
        let o = s.run([
            "build".as_ref(),
            "--progress".as_ref(),
            "plain".as_ref(),
            "-t".as_ref(),
            "l".as_ref(),
            ctx.as_os_str(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let layers = inspect(&s, "l")["RootFS"]["Layers"].clone();
        let last = layers.as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
        (last, String::from_utf8_lossy(&o.stderr).into_owned())
    };
    // Without --link the layer records /opt as the base has it.
    assert_ne!(last_layer("bb", "").0, last_layer("bb-opt", "").0);
    // With --link it is the same layer on both bases, reused, not rewritten.
    let (on_bb, _) = last_layer("bb", "--link");
    let (on_opt, log) = last_layer("bb-opt", "--link");
    assert_eq!(on_bb, on_opt);
    assert!(log.contains("the layer is reused"), "{log}");
    assert_eq!(s.ok(["run", "--rm", "l", "cat", "/opt/data"]), "payload\n");
}
