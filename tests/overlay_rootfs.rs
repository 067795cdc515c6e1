//! Overlay root filesystems over an image's snapshots: mounted, writable,
//! whiteouts honoured, many layers (≥ 128) on both mount paths, and
//! removed without leaving a mount behind.

use std::path::PathBuf;
use wharf_image::rootfs::{mount_overlay, mount_overlay_legacy, Rootfs};
use wharf_image::{ImportOptions, Reference, Store};
use wharf_tests::{mounts_under, privileged, RawTar};

fn layers(dir: &std::path::Path, n: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for i in 0..n {
        let l = dir.join(format!("layers/{i:04}-{}", "x".repeat(56)));
        std::fs::create_dir_all(&l).unwrap();
        std::fs::write(l.join(format!("f{i}")), format!("{i}")).unwrap();
        std::fs::write(l.join("top"), format!("{i}")).unwrap();
        out.push(l);
    }
    out.reverse(); // top first
    out
}

fn check_many(legacy: bool) {
    let dir = tempfile::tempdir().unwrap();
    let lowers = layers(dir.path(), 140);
    let (upper, work, merged) = (dir.path().join("u"), dir.path().join("w"), dir.path().join("m"));
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).unwrap();
    }
    let links = dir.path().join("l");
    if legacy {
        mount_overlay_legacy(&lowers, &upper, &work, &merged, &links).unwrap();
    } else {
        mount_overlay(&lowers, &upper, &work, &merged, &links).unwrap();
    }
    assert_eq!(std::fs::read_to_string(merged.join("f0")).unwrap(), "0");
    assert_eq!(std::fs::read_to_string(merged.join("f139")).unwrap(), "139");
    assert_eq!(std::fs::read_to_string(merged.join("top")).unwrap(), "139", "the last layer wins");
    Rootfs::remove(&merged.parent().unwrap().join("nonexistent")).unwrap();
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::empty()).unwrap();
    assert!(mounts_under(dir.path()).is_empty());
}

#[test]
fn many_layers_new_mount_api() {
    if privileged("many_layers_new_mount_api") {
        check_many(false);
    }
}

#[test]
fn many_layers_legacy_mount_with_short_links() {
    if privileged("many_layers_legacy_mount_with_short_links") {
        check_many(true);
    }
}

#[test]
fn image_rootfs_is_writable_and_honours_whiteouts() {
    if !privileged("image_rootfs_is_writable_and_honours_whiteouts") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let base = RawTar::default().file("etc/hostname", b"base").file("etc/secret", b"s").file("var/a", b"a").finish();
    let img = store
        .import(
            &mut &base[..],
            &ImportOptions { reference: Some(Reference::parse("t/base").unwrap()), ..Default::default() },
        )
        .unwrap();
    // A second layer on top, with a whiteout and an opaque dir.
    let top = RawTar::default().file("etc/.wh.secret", b"").file("var/.wh..wh..opq", b"").file("var/b", b"b").finish();
    let (ld, lsize) = store.blobs().put_reader(&mut &top[..], None).unwrap();
    let mut cfg: serde_json::Value = serde_json::to_value(&img.config).unwrap();
    cfg["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(wharf_image::digest::of_bytes(&top).to_string()));
    let mut layers = img.manifest.layers().clone();
    layers.push(wharf_image::spec::Descriptor::new(wharf_image::spec::MediaType::ImageLayer, lsize, ld));
    let target = store.put_image(&cfg, layers).unwrap();
    store.set_tag(&Reference::parse("t/two").unwrap(), &target).unwrap();
    let two = store.resolve("t/two").unwrap();

    let rdir = dir.path().join("ctr");
    let rootfs = store.mount_rootfs(&two, &rdir).unwrap();
    let m = &rootfs.merged;
    assert_eq!(std::fs::read_to_string(m.join("etc/hostname")).unwrap(), "base");
    assert!(!m.join("etc/secret").exists(), "whiteout hides the lower file");
    assert!(!m.join("var/a").exists() && m.join("var/b").exists(), "opaque dir hides lower entries");
    std::fs::write(m.join("new"), "w").unwrap();
    assert!(rdir.join("upper/new").exists(), "writes go to the upper dir");
    Rootfs::remove(&rdir).unwrap();
    assert!(!rdir.exists());
    assert!(mounts_under(dir.path()).is_empty(), "mount leaked");
    // The snapshots are untouched by the container's writes.
    assert!(!store.snapshots().path(&img.diff_ids().unwrap()[0]).join("new").exists());
}
