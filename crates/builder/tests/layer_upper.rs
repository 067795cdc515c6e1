//! upper_to_tar against a real overlayfs: the layer made from a RUN-like
//! change, stacked on the lower, must look exactly like the merged view.

mod layer_common;

use layer_common::*;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use wharf_builder::layer::{upper_to_tar, TarOptions};

fn make_lower(lower: &Path) {
    write(&lower.join("a.txt"), "deleted later");
    write(&lower.join("keep.txt"), "kept");
    write(&lower.join("dir1/x"), "x");
    write(&lower.join("dir1/y"), "y");
    write(&lower.join("sub/deep/file"), "old");
    write(&lower.join("sub/gone/inner"), "inner");
}

/// What a RUN step might do: delete, replace a directory, add every kind of file.
fn change(merged: &Path) {
    std::fs::remove_file(merged.join("a.txt")).unwrap();
    std::fs::remove_dir_all(merged.join("dir1")).unwrap();
    write(&merged.join("dir1/new"), "recreated");
    std::fs::remove_dir_all(merged.join("sub/gone")).unwrap();
    write(&merged.join("sub/deep/file"), "modified");
    write(&merged.join("new.txt"), "new");
    symlink("new.txt", merged.join("link")).unwrap();
    symlink("/does/not/exist", merged.join("dangling")).unwrap();
    write(&merged.join("h1"), "hardlinked");
    std::fs::hard_link(merged.join("h1"), merged.join("h2")).unwrap();
    write(&merged.join("suid"), "#!/bin/sh\n");
    set_mode(&merged.join("suid"), 0o4755);
    write(&merged.join("owned/by/user"), "uid 1000");
    std::os::unix::fs::chown(merged.join("owned/by/user"), Some(1000), Some(1001)).unwrap();
    let long = "d".repeat(120);
    write(&merged.join(format!("{long}/{long}.txt")), "long name");
    rustix::fs::mknodat(rustix::fs::CWD, merged.join("fifo"), rustix::fs::FileType::Fifo, 0o644.into(), 0).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        merged.join("null"),
        rustix::fs::FileType::CharacterDevice,
        0o666.into(),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    rustix::fs::lsetxattr(merged.join("new.txt"), "user.note", b"hello", rustix::fs::XattrFlags::empty()).unwrap();
}

#[test]
fn upper_dir_becomes_a_layer_equal_to_the_merged_view() {
    if !privileged("upper_dir_becomes_a_layer_equal_to_the_merged_view") {
        return;
    }
    let tmp = tempfile::Builder::new().prefix("wharf-layer-upper").tempdir().unwrap();
    let t = tmp.path();
    let [lower, upper, work, merged, layer, check] = ["lower", "upper", "work", "merged", "layer", "check"].map(|d| {
        let p = t.join(d);
        std::fs::create_dir(&p).unwrap();
        p
    });
    make_lower(&lower);
    let mut mounts = Mounts(Vec::new());
    let d = |p: &Path| p.display().to_string();
    mounts.overlay(&merged, &format!("lowerdir={},upperdir={},workdir={}", d(&lower), d(&upper), d(&work)));
    change(&merged);
    let want = tree(&merged);
    mounts.unmount_all();

    let mut tar = Vec::new();
    upper_to_tar(&upper, &mut tar, &TarOptions::default()).unwrap();
    let entries = read_tar(&tar);
    let names = paths(&entries);
    assert!(names.contains(&".wh.a.txt"), "{names:?}");
    assert!(names.contains(&"sub/.wh.gone"), "{names:?}");
    let opq = names.iter().position(|p| *p == "dir1/.wh..wh..opq").expect("opaque marker");
    assert_eq!(names[opq - 1], "dir1/", "the marker follows its directory");
    assert!(!names.iter().any(|p| p.starts_with("dir1/x")));
    assert_eq!(find(&entries, "h2").kind, 'h');
    assert_eq!(find(&entries, "h2").link.as_deref(), Some("h1"));
    assert_eq!(find(&entries, "new.txt").xattrs, vec![("user.note".to_string(), b"hello".to_vec())]);
    assert!(entries.iter().all(|e| e.xattrs.iter().all(|(k, _)| !k.starts_with("trusted."))));

    // The layer as the store keeps it (overlay format), stacked on the lower.
    wharf_image::unpack::apply_layer(&tar[..], &layer).unwrap();
    assert_eq!(std::fs::metadata(layer.join("h1")).unwrap().nlink(), 2);
    assert_eq!(std::fs::metadata(layer.join("suid")).unwrap().permissions().mode() & 0o7777, 0o4755);
    // Two lowers and no upper: a read-only overlay of just the layer and the lower.
    mounts.overlay(&check, &format!("lowerdir={}:{}", d(&layer), d(&lower)));
    let got = tree(&check);
    mounts.unmount_all();
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (path, node) in &want {
        assert_eq!(&got[path], node, "{path}");
    }
    assert!(mounts_under(t).is_empty(), "mounts left: {:?}", mounts_under(t));
}

#[test]
fn other_mounts_inside_the_upper_dir_are_left_out() {
    if !privileged("other_mounts_inside_the_upper_dir_are_left_out") {
        return;
    }
    let tmp = tempfile::Builder::new().prefix("wharf-layer-upper").tempdir().unwrap();
    let upper = tmp.path().join("upper");
    write(&upper.join("kept"), "k");
    std::fs::create_dir(upper.join("mnt")).unwrap();
    let mut mounts = Mounts(Vec::new());
    let st = Command::new("mount").args(["-t", "tmpfs", "tmpfs"]).arg(upper.join("mnt")).status().unwrap();
    assert!(st.success());
    mounts.0.push(upper.join("mnt"));
    write(&upper.join("mnt/secret"), "from another filesystem");
    let mut tar = Vec::new();
    let r = upper_to_tar(&upper, &mut tar, &TarOptions::default());
    mounts.unmount_all();
    r.unwrap();
    assert_eq!(paths(&read_tar(&tar)), ["kept"]);
    assert!(mounts_under(tmp.path()).is_empty());
}
