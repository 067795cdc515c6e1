//! `wharf build --cache-to/--cache-from`: BuildKit's cache format in Debian's
//! docker-registry (on a loopback port, behind a pass-through proxy that logs
//! every request), in an OCI layout directory, and inline in the image.

use std::path::{Path, PathBuf};
use wharf_tests::proxy::FaultProxy;
use wharf_tests::registry::{Auth, TestRegistry};
use wharf_tests::{busybox_tar, privileged, TestStore};

/// A context with /bin/busybox, a file, and `dockerfile`.
fn context(s: &TestStore, name: &str, dockerfile: &str) -> PathBuf {
    let ctx = s.path(name);
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
    std::fs::write(ctx.join("file.txt"), "from-context\n").unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// Runs `wharf build --progress plain ARGS CTX`; asserts success; returns stderr+stdout.
fn build(s: &TestStore, ctx: &Path, args: &[&str]) -> String {
    let mut c = s.cmd();
    c.args(["build", "--progress", "plain"]).args(args).arg(ctx);
    let out = c.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "build {args:?} failed: {text}");
    text
}

/// The image ID: the build's last line (its stdout).
fn last(text: &str) -> String {
    text.lines().last().unwrap_or_default().to_string()
}

/// Nothing a build mounted or started is left behind.
fn assert_no_leaks(stores: &[&TestStore]) {
    for s in stores {
        let dir = s.dir.path().to_string_lossy().into_owned();
        assert!(wharf_tests::mounts_under(s.dir.path()).is_empty(), "mounts left under {dir}");
        assert!(wharf_tests::leaks::processes_mentioning(&dir).is_empty(), "processes left for {dir}");
    }
}

fn cached(text: &str) -> usize {
    text.lines().filter(|l| l.ends_with(" CACHED")).count()
}

fn is_blob_get(r: &str) -> bool {
    r.starts_with("GET ") && r.contains("/blobs/sha256:")
}

fn uploads(reqs: &[String]) -> Vec<String> {
    reqs.iter()
        .filter(|r| (r.starts_with("PUT ") || r.starts_with("PATCH ")) && r.contains("/blobs/uploads/"))
        .cloned()
        .collect()
}

/// The manifest of image `name` in store `s`.
fn manifest(s: &TestStore, name: &str) -> serde_json::Value {
    serde_json::from_str(&s.ok(["manifest", "inspect", name])).unwrap()
}

/// Layer digests of image `name` in store `s`.
fn layers(s: &TestStore, name: &str) -> Vec<String> {
    let m = manifest(s, name);
    m["layers"].as_array().into_iter().flatten().filter_map(|l| l["digest"].as_str().map(String::from)).collect()
}

/// A busybox base image pushed to `{proxy}/lib/busybox:1` from a store of its own.
fn push_base(addr: &str) -> String {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "-c".as_ref(), "CMD [\"/bin/sh\"]".as_ref(), "busybox".as_ref()]);
    let base = format!("{addr}/lib/busybox:1");
    s.ok(["push", "busybox", &base]);
    base
}

fn app(base: &str, last: &str) -> String {
    format!(
        "FROM {base}\nRUN echo ran''-one && echo one > /one\nCOPY file.txt /file.txt\nRUN echo {last} && cat /file.txt > /two\nCMD [\"cat\", \"/two\"]\n"
    )
}

#[test]
fn registry_cache_rebuild_runs_nothing_pushes_nothing_and_fetches_only_what_the_changed_step_needs() {
    if !privileged("registry_cache_rebuild_runs_nothing_pushes_nothing_and_fetches_only_what_the_changed_step_needs") {
        return;
    }
    let reg = TestRegistry::start(Auth::None);
    let proxy = FaultProxy::start(&reg.addr);
    let base = push_base(&proxy.addr);
    let (cache, image) = (format!("{}/cache/app:buildcache", proxy.addr), format!("{}/team/app:1", proxy.addr));

    // A CI runner: fresh store, builds, exports the cache, pushes.
    let a = TestStore::new();
    let ctx = context(&a, "ctx", &app(&base, "ran''-two"));
    let out = build(&a, &ctx, &["-t", &image, "--push", "--cache-to", &format!("type=registry,ref={cache},mode=max")]);
    assert!(out.contains("ran-one") && out.contains("ran-two"), "{out}");
    assert!(out.contains(&format!("exported cache to {cache}")), "{out}");
    let id = last(&out);

    // The next runner: fresh store, warm registry cache, same Dockerfile, --push.
    let b = TestStore::new();
    proxy.clear();
    // A second name in a repository that holds nothing yet: its blobs are mounted.
    let other = format!("{}/other/app:1", proxy.addr);
    let out =
        build(&b, &ctx, &["-t", &image, "-t", &other, "--push", "--cache-from", &format!("type=registry,ref={cache}")]);
    assert!(!out.contains("ran-one") && !out.contains("ran-two"), "a step ran: {out}");
    assert_eq!(cached(&out), 4, "RUN, COPY, RUN, CMD cached: {out}");
    assert_eq!(last(&out), id, "the same image");
    let reqs = proxy.requests();
    let layer_set = layers(&a, &image);
    assert_eq!(layer_set.len(), 4, "base, RUN, COPY, RUN: {layer_set:?}");
    let fetched: Vec<&String> =
        reqs.iter().filter(|r| is_blob_get(r) && layer_set.iter().any(|l| r.contains(l.as_str()))).collect();
    assert!(fetched.is_empty(), "layers downloaded: {fetched:?}");
    assert!(uploads(&reqs).is_empty(), "blobs uploaded: {:?}", uploads(&reqs));
    let mounts = reqs.iter().filter(|r| r.starts_with("POST /v2/other/app/blobs/uploads/?mount=")).count();
    assert_eq!(mounts, 5, "4 layers and the config mounted: {reqs:?}");
    // As buildx --push: not loaded into the store, which stays whole.
    assert!(out.contains("not kept in the store"), "{out}");
    b.assert_consistent();

    // The last RUN changed: only it runs; it needs the layers below it, nothing else.
    let c = TestStore::new();
    let ctx2 = context(&c, "ctx", &app(&base, "ran''-three"));
    proxy.clear();
    let out = build(&c, &ctx2, &["-t", &image, "--cache-from", &format!("type=registry,ref={cache}")]);
    assert!(!out.contains("ran-one") && out.contains("ran-three"), "{out}");
    assert_eq!(cached(&out), 2, "RUN, COPY cached: {out}");
    let gets: Vec<String> = proxy.requests().into_iter().filter(|r| is_blob_get(r)).collect();
    for l in &layer_set[..3] {
        assert_eq!(gets.iter().filter(|g| g.contains(l.as_str())).count(), 1, "{l} fetched once: {gets:?}");
    }
    assert!(!gets.iter().any(|g| g.contains(layer_set[3].as_str())), "the old last layer was fetched: {gets:?}");
    // The image is whole in the store (not pushed): it runs.
    c.assert_consistent();
    assert_no_leaks(&[&a, &b, &c]);
}

const MULTI: &str = "FROM scratch AS tools\nCOPY busybox /bin/busybox\n\
    RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo ran''-tools; /bin/busybox --install -s /bin; echo built > /artifact\"]\n\
    FROM scratch\nCOPY --from=tools /artifact /artifact\n";

/// Records and layer digests of the cache tagged `latest` in layout `dir`.
fn layout_cache(dir: &Path) -> (usize, Vec<String>) {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| std::fs::read(dir.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(m["config"]["mediaType"], "application/vnd.buildkit.cacheconfig.v0");
    let cfg: serde_json::Value = serde_json::from_slice(&blob(m["config"]["digest"].as_str().unwrap())).unwrap();
    let layers = m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect();
    (cfg["records"].as_array().unwrap().len(), layers)
}

#[test]
fn local_cache_round_trip_and_mode_min_keeps_only_the_final_chain() {
    if !privileged("local_cache_round_trip_and_mode_min_keeps_only_the_final_chain") {
        return;
    }
    let a = TestStore::new();
    let ctx = context(&a, "ctx", MULTI);
    let (min, max) = (a.path("cache-min"), a.path("cache-max"));
    let dest = |d: &Path, m: &str| format!("type=local,dest={},mode={m}", d.display());
    let out = build(&a, &ctx, &["-t", "multi", "--cache-to", &dest(&min, "min"), "--cache-to", &dest(&max, "max")]);
    assert!(out.contains("ran-tools"), "{out}");
    let ((min_records, min_layers), (max_records, max_layers)) = (layout_cache(&min), layout_cache(&max));
    // min: scratch and the final COPY; max: the tools stage too (its COPY and RUN layers).
    assert_eq!(min_layers.len(), 1, "{min_layers:?}");
    assert_eq!(max_layers.len(), 3, "{max_layers:?}");
    assert!(max_records > min_records, "{max_records} vs {min_records}");
    let id = last(&out);

    let from = |d: &Path| format!("type=local,src={}", d.display());
    let b = TestStore::new();
    let out = build(&b, &ctx, &["-t", "multi", "--cache-from", &from(&max)]);
    assert!(!out.contains("ran-tools"), "max keeps the tools stage: {out}");
    assert_eq!(last(&out), id);
    b.assert_consistent();
    let c = TestStore::new();
    let out = build(&c, &ctx, &["-t", "multi", "--cache-from", &from(&min)]);
    assert!(out.contains("ran-tools"), "min has no tools stage: {out}");
    assert_no_leaks(&[&a, &b, &c]);
}

const SINGLE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo ran''-run; echo x > /x\"]\nENV A=b\n";

#[test]
fn inline_cache_is_read_back_from_the_pushed_image() {
    if !privileged("inline_cache_is_read_back_from_the_pushed_image") {
        return;
    }
    let reg = TestRegistry::start(Auth::None);
    let image = format!("{}/team/inline:1", reg.addr);
    let a = TestStore::new();
    let ctx = context(&a, "ctx", SINGLE);
    build(&a, &ctx, &["-t", &image, "--push", "--cache-to", "type=inline"]);
    let cd = manifest(&a, &image)["config"]["digest"].as_str().unwrap().replace("sha256:", "");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.root.join("blobs/sha256").join(cd)).unwrap()).unwrap();
    assert!(cfg["moby.buildkit.cache.v0"].is_string(), "{cfg}");
    let b = TestStore::new();
    let out = build(&b, &ctx, &["-t", "again", "--cache-from", &image]);
    assert!(!out.contains("ran-run"), "{out}");
    assert_eq!(cached(&out), 3, "{out}");
    b.assert_consistent();
}

#[test]
fn bad_caches_warn_and_the_build_goes_on() {
    if !privileged("bad_caches_warn_and_the_build_goes_on") {
        return;
    }
    let reg = TestRegistry::start(Auth::None);
    let s = TestStore::new();
    let ctx = context(&s, "ctx", SINGLE);
    // A layout whose cache config is not JSON.
    let garbage = s.path("garbage");
    std::fs::create_dir_all(garbage.join("blobs/sha256")).unwrap();
    let put = |b: &[u8]| {
        let d = wharf_image::digest::of_bytes(b).to_string();
        std::fs::write(garbage.join("blobs/sha256").join(d.trim_start_matches("sha256:")), b).unwrap();
        (d, b.len())
    };
    let (cd, cl) = put(b"this is not a cache config");
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.buildkit.cacheconfig.v0", "digest": cd, "size": cl}, "layers": []});
    let (md, ml) = put(m.to_string().as_bytes());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ml}]});
    std::fs::write(garbage.join("index.json"), index.to_string()).unwrap();
    let out = build(
        &s,
        &ctx,
        &[
            "-t",
            "bad",
            "--cache-from",
            &format!("type=registry,ref={}/no/such:cache", reg.addr),
            "--cache-from",
            &format!("type=local,src={}", garbage.display()),
            "--cache-from",
            &format!("type=local,src={}", s.path("missing").display()),
        ],
    );
    assert!(out.contains("ran-run"), "{out}");
    assert!(out.contains(&format!("warning: importing cache from {}/no/such:cache", reg.addr)), "{out}");
    assert!(out.contains("cache config is not BuildKit's v0"), "{out}");
    assert!(out.contains("missing/index.json"), "{out}");
    // Bad syntax is refused before building.
    let err = s.fails(["build", "--cache-to", "type=s3,ref=x", ctx.to_str().unwrap()]);
    assert!(err.contains("unknown type \"s3\""), "{err}");
    let err = s.fails(["build", "--cache-to", "type=registry,mode=max", ctx.to_str().unwrap()]);
    assert!(err.contains("type=registry needs ref="), "{err}");
    s.assert_consistent();
}

#[test]
fn cache_compression_converts_the_layers() {
    if !privileged("cache_compression_converts_the_layers") {
        return;
    }
    let a = TestStore::new();
    let ctx = context(&a, "ctx", SINGLE);
    let dir = a.path("zstd-cache");
    build(&a, &ctx, &["-t", "z", "--cache-to", &format!("type=local,dest={},compression=zstd", dir.display())]);
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(m)).unwrap()).unwrap();
    for l in m["layers"].as_array().unwrap() {
        assert!(l["mediaType"].as_str().unwrap().ends_with("+zstd"), "{m}");
    }
    let b = TestStore::new();
    let out = build(&b, &ctx, &["-t", "z", "--cache-from", &format!("type=local,src={}", dir.display())]);
    assert!(!out.contains("ran-run"), "{out}");
    b.assert_consistent();
}
