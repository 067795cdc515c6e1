//! Images whose layer list holds the same layer more than once (as images
//! built by other tools often do with the empty layer) load, run, save,
//! push, pull and build upon; a RUN that changes nothing adds no layer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use wharf_tests::registry::{Auth, TestRegistry};
use wharf_tests::{busybox_tar, mounts_under, privileged, require_tool, RawTar, TestStore};

fn sha256_hex(b: &[u8]) -> String {
    wharf_image::digest::of_bytes(b).to_string().trim_start_matches("sha256:").to_string()
}

/// A docker-archive (as `docker save` writes it) of busybox, then layers
/// A (/f = one), B (/f = two, /g), the empty layer, A again and the empty
/// layer again: the top A must win over B, and each repeat is listed by name.
fn repeated_archive(dir: &Path) -> PathBuf {
    let bb = std::fs::read(busybox_tar(dir)).unwrap();
    let a = RawTar::default().file("f", b"one\n").finish();
    let b = RawTar::default().file("f", b"two\n").file("g", b"gee\n").finish();
    let empty = vec![0u8; 1024];
    let order = [&bb, &a, &b, &empty, &a, &empty];
    let diff_ids: Vec<String> = order.iter().map(|l| format!("sha256:{}", sha256_hex(l))).collect();
    let history: Vec<_> = order.iter().map(|_| serde_json::json!({"created_by": "another tool"})).collect();
    let config = serde_json::json!({
        "architecture": wharf_image::host_arch(), "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    let names: Vec<String> = order.iter().map(|l| format!("{}/layer.tar", sha256_hex(l))).collect();
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": ["rep:latest"], "Layers": names}]);
    let out = dir.join("repeated.tar");
    let mut t = tar::Builder::new(std::fs::File::create(&out).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, name, data).unwrap();
    };
    let mut written = std::collections::HashSet::new();
    for (name, l) in names.iter().zip(order) {
        if written.insert(name.clone()) {
            add(name, l);
        }
    }
    add(&config_name, &config);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    t.into_inner().unwrap().flush().unwrap();
    out
}

fn assert_runs(s: &TestStore, image: &str) {
    let out = s.ok(["run", "--rm", image, "cat", "/f", "/g"]);
    assert_eq!(out, "one\ngee\n", "the topmost copy of a repeated layer wins");
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    assert_eq!(std::fs::read_dir(s.root.join("containers")).map(|r| r.count()).unwrap_or(0), 0);
    s.assert_consistent();
}

fn layer_count(s: &TestStore, image: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(&s.ok(["inspect", image])).unwrap();
    v[0]["RootFS"]["Layers"].as_array().unwrap().len()
}

#[test]
fn loaded_image_with_a_repeated_layer_runs_saves_and_reloads() {
    if !privileged("loaded_image_with_a_repeated_layer_runs_saves_and_reloads") {
        return;
    }
    let s = TestStore::new();
    let archive = repeated_archive(s.dir.path());
    s.ok(["load".as_ref(), "-i".as_ref(), archive.as_os_str()]);
    assert_eq!(layer_count(&s, "rep"), 6);
    assert_eq!(std::fs::read_dir(s.root.join("layers/sha256")).unwrap().count(), 4, "each layer unpacked once");
    // Broke: overlayfs refused the repeated lower dir ("conflicting lowerdir path").
    assert_runs(&s, "rep");
    for format in ["oci", "docker-archive"] {
        let out = s.path(&format!("saved-{format}.tar"));
        s.ok(["save".as_ref(), "--format".as_ref(), format.as_ref(), "-o".as_ref(), out.as_os_str(), "rep".as_ref()]);
        let t = TestStore::new();
        t.ok(["load".as_ref(), "-i".as_ref(), out.as_os_str()]);
        assert_eq!(t.ok(["images", "-q"]), s.ok(["images", "-q"]), "same image ID after {format} save/load");
        assert_runs(&t, "rep");
    }
}

#[test]
fn oci_archive_made_by_skopeo_with_a_repeated_layer_runs() {
    if !privileged("oci_archive_made_by_skopeo_with_a_repeated_layer_runs") {
        return;
    }
    let skopeo = require_tool("skopeo");
    let s = TestStore::new();
    let archive = repeated_archive(s.dir.path());
    let oci = s.path("skopeo.tar");
    let st = Command::new(skopeo)
        .args(["copy", "--quiet"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!("oci-archive:{}:rep:latest", oci.display()))
        .status()
        .unwrap();
    assert!(st.success(), "skopeo copy failed");
    s.ok(["load".as_ref(), "-i".as_ref(), oci.as_os_str()]);
    let id = s.ok(["images", "-q"]);
    let image = id.lines().next().expect("one image loaded");
    assert_eq!(layer_count(&s, image), 6);
    // Broke: overlayfs refused the repeated lower dir ("conflicting lowerdir path").
    assert_runs(&s, image);
}

#[test]
fn push_and_pull_an_image_with_a_repeated_layer() {
    if !privileged("push_and_pull_an_image_with_a_repeated_layer") {
        return;
    }
    let reg = TestRegistry::start(Auth::None);
    let s = TestStore::new();
    let archive = repeated_archive(s.dir.path());
    s.ok(["load".as_ref(), "-i".as_ref(), archive.as_os_str()]);
    let dest = format!("{}/lib/rep:1", reg.addr);
    s.ok(["push", "rep", &dest]);
    let t = TestStore::new();
    t.ok(["pull", &dest]);
    assert_eq!(t.ok(["images", "-q"]), s.ok(["images", "-q"]), "same image ID");
    assert_eq!(std::fs::read_dir(t.root.join("layers/sha256")).unwrap().count(), 4, "each layer unpacked once");
    // Broke: overlayfs refused the repeated lower dir ("conflicting lowerdir path").
    assert_runs(&t, &dest);
}

fn build(s: &TestStore, dockerfile: &str, tag: &str, epoch: bool) -> String {
    let ctx = s.path(&format!("ctx-{tag}"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let mut c = s.cmd();
    c.args(["build", "-q", "-t", tag]).arg(&ctx);
    if epoch {
        c.env("SOURCE_DATE_EPOCH", "1700000000");
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "build {tag}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn busybox_store() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "bb".as_ref()]);
    s
}

#[test]
fn runs_that_change_nothing_add_no_layer_and_the_image_runs() {
    if !privileged("runs_that_change_nothing_add_no_layer_and_the_image_runs") {
        return;
    }
    let s = busybox_store();
    // Broke: the third RUN failed to mount (the same empty layer twice below it).
    let id = build(&s, "FROM bb\nRUN true\nRUN true\nRUN true\n", "three", true);
    assert_eq!(s.ok(["run", "--rm", "three", "echo", "ok"]), "ok\n");
    let v: serde_json::Value = serde_json::from_str(&s.ok(["inspect", "three"])).unwrap();
    assert_eq!(v[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1, "no layer for a RUN that changes nothing");
    let h = v[0]["History"].as_array().unwrap();
    assert_eq!(h.len(), 4);
    assert!(h[1..].iter().all(|e| e["empty_layer"] == true), "{h:?}");
    // Same ID from the cache and from scratch.
    assert_eq!(build(&s, "FROM bb\nRUN true\nRUN true\nRUN true\n", "three", true), id);
    s.ok(["builder", "prune"]);
    assert_eq!(build(&s, "FROM bb\nRUN true\nRUN true\nRUN true\n", "three", true), id);
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    s.assert_consistent();
}

#[test]
fn a_build_that_repeats_a_layer_builds_and_runs() {
    if !privileged("a_build_that_repeats_a_layer_builds_and_runs") {
        return;
    }
    let s = busybox_store();
    // With mtimes clamped, writing the same file again gives the same layer.
    let df = "FROM bb\nRUN echo hi > /f\nRUN echo hi > /f\nRUN echo hi > /f\n";
    // Broke: the third RUN failed to mount (the same layer twice below it).
    build(&s, df, "same", true);
    let v: serde_json::Value = serde_json::from_str(&s.ok(["inspect", "same"])).unwrap();
    let layers: Vec<&str> = v[0]["RootFS"]["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(layers.len(), 4, "{layers:?}");
    assert!(layers[1] == layers[2] && layers[2] == layers[3], "one layer, three times: {layers:?}");
    assert_eq!(s.ok(["run", "--rm", "same", "cat", "/f"]), "hi\n");
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    s.assert_consistent();
}

/// Lower dirs top first: A, B, A, where A writes /f, whites out /g and
/// makes /d opaque; B writes /f, /g and /d/x. The top A decides everything.
fn check_mount(legacy: bool) {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [a.join("d"), b.join("d")] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(a.join("f"), "a").unwrap();
    std::fs::write(a.join("d/y"), "y").unwrap();
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: plain syscalls on paths this test made.
    unsafe {
        assert_eq!(libc::mknod(c(&a.join("g")).as_ptr(), libc::S_IFCHR, 0), 0, "whiteout");
        let rc =
            libc::setxattr(c(&a.join("d")).as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0);
        assert_eq!(rc, 0, "opaque xattr");
    }
    std::fs::write(b.join("f"), "b").unwrap();
    std::fs::write(b.join("g"), "gee").unwrap();
    std::fs::write(b.join("d/x"), "x").unwrap();
    let (upper, work, merged) = (dir.path().join("u"), dir.path().join("w"), dir.path().join("m"));
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).unwrap();
    }
    let lowers = vec![a.clone(), b, a];
    let links = dir.path().join("l");
    // Broke: overlayfs refused the repeated lower dir ("conflicting lowerdir path").
    if legacy {
        wharf_image::rootfs::mount_overlay_legacy(&lowers, &upper, &work, &merged, &links).unwrap();
    } else {
        wharf_image::rootfs::mount_overlay(&lowers, &upper, &work, &merged, &links).unwrap();
    }
    let f = std::fs::read_to_string(merged.join("f"));
    let g = merged.join("g").exists();
    let d: Vec<_> = std::fs::read_dir(merged.join("d")).unwrap().flatten().map(|e| e.file_name()).collect();
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::empty()).unwrap();
    assert_eq!(f.unwrap(), "a");
    assert!(!g, "the top layer's whiteout hides /g");
    assert_eq!(d, vec![std::ffi::OsString::from("y")], "the top layer's opaque /d hides /d/x");
    assert!(mounts_under(dir.path()).is_empty());
}

#[test]
fn a_repeated_lower_dir_mounts_once_new_mount_api() {
    if privileged("a_repeated_lower_dir_mounts_once_new_mount_api") {
        check_mount(false);
    }
}

#[test]
fn a_repeated_lower_dir_mounts_once_legacy_mount() {
    if privileged("a_repeated_lower_dir_mounts_once_legacy_mount") {
        check_mount(true);
    }
}
