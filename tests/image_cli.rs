//! The image commands end to end through the `wharf` binary.

use serde_json::Value;
use wharf_tests::{busybox_tar, privileged, TestStore};

fn import_busybox(s: &TestStore, name: &str) -> String {
    let tar = busybox_tar(s.dir.path());
    s.ok([
        "import".as_ref(),
        tar.as_os_str(),
        "-c".as_ref(),
        "CMD [\"/bin/sh\"]".as_ref(),
        "-c".as_ref(),
        "ENV A=1".as_ref(),
        name.as_ref(),
    ])
    .trim()
    .to_string()
}

#[test]
fn import_list_inspect_tag_rmi() {
    if !privileged("import_list_inspect_tag_rmi") {
        return;
    }
    let s = TestStore::new();
    let id = import_busybox(&s, "busybox");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let table = s.ok(["images"]);
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert!(table.contains("docker.io/library/busybox") && table.contains(&id[7..19]), "{table}");
    assert_eq!(s.ok(["images", "-q"]).trim(), &id[7..19]);

    let v: Value = serde_json::from_str(&s.ok(["inspect", "busybox:latest"])).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(v[0]["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(v[0]["RepoTags"], serde_json::json!(["docker.io/library/busybox:latest"]));
    // By ID prefix too.
    let v2: Value = serde_json::from_str(&s.ok(["inspect", &id[7..15]])).unwrap();
    assert_eq!(v2[0]["Id"], id.as_str());

    s.ok(["tag", "busybox", "localhost:5000/team/bb:v1"]);
    let json: Value = serde_json::from_str(&s.ok(["images", "--format", "json"])).unwrap();
    assert_eq!(json[0]["names"].as_array().unwrap().len(), 2);
    let err = s.fails(["rmi", &id[7..19]]);
    assert!(err.contains("multiple repositories"), "{err}");
    assert_eq!(s.ok(["rmi", "busybox"]).trim(), "Untagged: docker.io/library/busybox:latest");
    let out = s.ok(["rmi", "localhost:5000/team/bb:v1"]);
    assert!(out.contains("Untagged: localhost:5000/team/bb:v1") && out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(s.ok(["images", "-q"]).trim().is_empty());
    assert_eq!(std::fs::read_dir(s.root.join("blobs/sha256")).unwrap().count(), 0, "rmi left blobs");
    assert_eq!(std::fs::read_dir(s.root.join("layers/sha256")).unwrap().count(), 0, "rmi left snapshots");
    s.assert_consistent();
}

#[test]
fn rmi_force_and_prune_of_dangling() {
    if !privileged("rmi_force_and_prune_of_dangling") {
        return;
    }
    let s = TestStore::new();
    let id = import_busybox(&s, "a:1");
    s.ok(["tag", "a:1", "b:1"]);
    let out = s.ok(["rmi", "-f", &id]);
    assert_eq!(out.matches("Untagged").count(), 2, "{out}");
    // Moving a tag leaves the old image dangling, as Docker does; prune removes it.
    import_busybox(&s, "c:1");
    let other = s.dir.path().join("other.tar");
    std::fs::write(&other, wharf_tests::RawTar::default().file("x", b"y").finish()).unwrap();
    s.ok(["import".as_ref(), other.as_os_str(), "c:1".as_ref()]);
    let table = s.ok(["images"]);
    assert!(table.contains("<none>"), "{table}");
    let out = s.ok(["image", "prune"]);
    assert!(out.contains("Deleted 1 dangling"), "{out}");
    assert!(!s.ok(["images"]).contains("<none>"));
    s.assert_consistent();
}

#[test]
fn bad_names_get_clear_errors() {
    let s = TestStore::new();
    let err = s.fails(["tag", "busybox", "Bad/Name"]);
    assert!(err.contains("lowercase"), "{err}");
    let err = s.fails(["inspect", "nosuch"]);
    assert!(err.contains("not found") && err.contains("nosuch"), "{err}");
    assert!(!err.contains("panicked") && err.lines().count() == 1, "one clear line: {err}");
    let err = s.fails(["rmi", "busybox@sha256:abc"]);
    assert!(err.contains("64"), "{err}");
}

#[test]
fn save_and_load_roundtrip_both_formats() {
    if !privileged("save_and_load_roundtrip_both_formats") {
        return;
    }
    let s = TestStore::new();
    let id = import_busybox(&s, "busybox");
    s.ok(["tag", "busybox", "example.com/x/y:2"]);
    for fmt in ["oci", "docker-archive"] {
        let file = s.path(&format!("{fmt}.tar"));
        s.ok([
            "save".as_ref(),
            "-o".as_ref(),
            file.as_os_str(),
            "--format".as_ref(),
            fmt.as_ref(),
            "busybox".as_ref(),
            "example.com/x/y:2".as_ref(),
        ]);
        let t = TestStore::new();
        let out = t.ok(["load".as_ref(), "-i".as_ref(), file.as_os_str()]);
        assert!(
            out.contains("Loaded image: busybox:latest") && out.contains("Loaded image: example.com/x/y:2"),
            "{fmt}: {out}"
        );
        assert_eq!(t.ok(["images", "-q"]).trim(), &id[7..19], "{fmt}: same image ID after the round trip");
        let v: Value = serde_json::from_str(&t.ok(["inspect", "example.com/x/y:2"])).unwrap();
        assert_eq!(v[0]["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
        assert_eq!(std::fs::read_dir(t.root.join("layers/sha256")).unwrap().count(), 1, "{fmt}: load unpacks");
        t.assert_consistent();
    }
}

#[test]
fn bad_archives_are_refused_and_leave_nothing() {
    if !privileged("bad_archives_are_refused_and_leave_nothing") {
        return;
    }
    let s = TestStore::new();
    import_busybox(&s, "busybox");
    let good = s.path("good.tar");
    s.ok(["save".as_ref(), "-o".as_ref(), good.as_os_str(), "busybox".as_ref()]);
    let bytes = std::fs::read(&good).unwrap();

    // Truncated mid-way: a clear error, nothing stays.
    let cut = s.path("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // A blob whose content does not match its name.
    let mut flipped = bytes.clone();
    let at = bytes.windows(7).position(|w| w == b"busybox").unwrap_or(bytes.len() / 3);
    flipped[at + 600] ^= 0xff;
    let bad = s.path("bad.tar");
    std::fs::write(&bad, &flipped).unwrap();
    let junk = s.path("junk.tar");
    std::fs::write(&junk, wharf_tests::RawTar::default().file("hello", b"world").finish()).unwrap();
    for f in [&cut, &bad, &junk] {
        let t = TestStore::new();
        let err = t.fails(["load".as_ref(), "-i".as_ref(), f.as_os_str()]);
        assert!(!err.is_empty() && !err.contains("panicked"), "{err}");
        assert!(t.ok(["images", "-q"]).trim().is_empty());
        assert_eq!(
            std::fs::read_dir(t.root.join("blobs/sha256")).unwrap().count(),
            0,
            "{}: blobs left: {err}",
            f.display()
        );
        assert_eq!(std::fs::read_dir(t.root.join("layers/sha256")).unwrap().count(), 0);
        t.assert_consistent();
    }
}

#[test]
fn system_check_finds_damage() {
    if !privileged("system_check_finds_damage") {
        return;
    }
    let s = TestStore::new();
    import_busybox(&s, "busybox");
    s.assert_consistent();
    let blobs: Vec<_> = std::fs::read_dir(s.root.join("blobs/sha256")).unwrap().map(|e| e.unwrap().path()).collect();
    let biggest = blobs.iter().max_by_key(|p| std::fs::metadata(p).unwrap().len()).unwrap();
    let mut data = std::fs::read(biggest).unwrap();
    data[1000] ^= 1;
    std::fs::write(biggest, &data).unwrap();
    let out = s.run(["system", "check"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ERROR blob") && text.contains("DAMAGED"), "{text}");
    std::fs::remove_file(biggest).unwrap();
    let out = s.run(["system", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("missing"), "{text}");
}
