//! Interop with the tools users have: skopeo and oci-image-tool read a store
//! wharf wrote; wharf reads layouts skopeo and umoci wrote and skopeo's
//! docker-archive files.

use std::process::Command;
use wharf_image::Store;
use wharf_tests::{busybox_rootfs, busybox_tar, privileged, require_tool, TestStore};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn imported(s: &TestStore) {
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "-c".as_ref(), "CMD [\"/bin/sh\"]".as_ref(), "busybox".as_ref()]);
}

#[test]
fn skopeo_and_oci_image_tool_read_our_store() {
    if !privileged("skopeo_and_oci_image_tool_read_our_store") {
        return;
    }
    require_tool("skopeo");
    require_tool("oci-image-tool");
    let s = TestStore::new();
    imported(&s);
    let src = format!("oci:{}:docker.io/library/busybox:latest", s.root.display());
    let v: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &src]))).unwrap();
    assert_eq!(v["Os"], "linux");
    run(Command::new("oci-image-tool").args(["validate", "--type", "image"]).arg(&s.root));
    run(Command::new("oci-image-tool")
        .args(["validate", "--type", "image", "--ref", "name=docker.io/library/busybox:latest"])
        .arg(&s.root));
    // skopeo copies out of our store, byte for byte.
    let out = s.path("copy");
    run(Command::new("skopeo").args(["copy", "--preserve-digests", &src, &format!("oci:{}:bb", out.display())]));
}

#[test]
fn we_read_layouts_skopeo_and_umoci_wrote() {
    if !privileged("we_read_layouts_skopeo_and_umoci_wrote") {
        return;
    }
    require_tool("skopeo");
    require_tool("umoci");
    let s = TestStore::new();
    imported(&s);
    // skopeo copy (compresses layers to gzip) into a fresh layout.
    let sk = s.path("skopeo-layout");
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:docker.io/library/busybox:latest", s.root.display()),
        &format!("oci:{}:bb", sk.display()),
    ]));
    let t = TestStore::at(tempfile::tempdir().unwrap(), sk.clone());
    assert!(t.ok(["images"]).contains("bb"));
    let store = Store::open(&sk).unwrap();
    let img = store.resolve("bb").unwrap();
    let paths = store.layer_paths(&img).unwrap();
    assert!(paths[0].join("bin/busybox").exists(), "skopeo's gzip layer unpacked");
    t.assert_consistent();

    // umoci builds an image of its own.
    let um = s.path("umoci-layout");
    run(Command::new("umoci").args(["init", "--layout"]).arg(&um));
    run(Command::new("umoci").args(["new", "--image"]).arg(format!("{}:base", um.display())));
    let bundle = s.path("bundle");
    run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:base", um.display())).arg(&bundle));
    let rootfs = busybox_rootfs(&s.path("umoci-src"));
    run(Command::new("cp").arg("-a").arg(format!("{}/.", rootfs.display())).arg(bundle.join("rootfs")));
    run(Command::new("umoci").args(["repack", "--image"]).arg(format!("{}:base", um.display())).arg(&bundle));
    let store = Store::open(&um).unwrap();
    let img = store.resolve("base").unwrap();
    let paths = store.layer_paths(&img).unwrap();
    assert!(paths.iter().any(|p| p.join("bin/busybox").exists()), "umoci's layer unpacked");
    let u = TestStore::at(tempfile::tempdir().unwrap(), um);
    u.assert_consistent();
}

#[test]
fn we_load_skopeo_docker_archives() {
    if !privileged("we_load_skopeo_docker_archives") {
        return;
    }
    require_tool("skopeo");
    let s = TestStore::new();
    imported(&s);
    let archive = s.path("docker.tar");
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:docker.io/library/busybox:latest", s.root.display()),
        &format!("docker-archive:{}:example.org/bb:skopeo", archive.display()),
    ]));
    let t = TestStore::new();
    let out = t.ok(["load".as_ref(), "-i".as_ref(), archive.as_os_str()]);
    assert!(out.contains("Loaded image: example.org/bb:skopeo"), "{out}");
    assert_eq!(t.ok(["images", "-q"]), s.ok(["images", "-q"]), "same image ID as the source");
    t.assert_consistent();
    // And what wharf saves as docker-archive, skopeo reads.
    let ours = s.path("ours.tar");
    s.ok([
        "save".as_ref(),
        "--format".as_ref(),
        "docker-archive".as_ref(),
        "-o".as_ref(),
        ours.as_os_str(),
        "busybox".as_ref(),
    ]);
    run(Command::new("skopeo").args(["inspect", &format!("docker-archive:{}", ours.display())]));
}
