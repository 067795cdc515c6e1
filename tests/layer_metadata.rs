//! What a layer carries survives unpacking: modes (setuid, sticky), owners,
//! mtimes, xattrs, hardlinks, symlinks, fifos, devices, and OCI whiteouts
//! turned into overlayfs ones.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use tar::EntryType;
use wharf_image::unpack::apply_layer;
use wharf_tests::{privileged, RawTar};

fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn metadata_is_preserved() {
    if !privileged("metadata_is_preserved") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap");
    std::fs::create_dir(&snap).unwrap();
    let tar = RawTar::default()
        .with_header("./", EntryType::Directory, b"", |h| h.set_mode(0o755))
        .with_header("bin/", EntryType::Directory, b"", |h| {
            h.set_mode(0o751);
            h.set_mtime(1_234_567_890);
        })
        .with_header("bin/su", EntryType::Regular, b"setuid", |h| {
            h.set_mode(0o4755);
            h.set_uid(0);
        })
        .with_header("tmp/", EntryType::Directory, b"", |h| h.set_mode(0o1777))
        .with_header("home/u/file", EntryType::Regular, b"owned", |h| {
            h.set_uid(1234);
            h.set_gid(5678);
            h.set_mode(0o640);
            h.set_mtime(1_000_000_000);
        })
        .pax_entry(
            &[
                ("path", b"cap"),
                ("SCHILY.xattr.user.note", b"hello"),
                ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ],
            EntryType::Regular,
            b"x",
        )
        .hardlink("bin/su-link", "bin/su")
        .symlink("bin/sh", "busybox")
        .with_header("dev/fifo", EntryType::Fifo, b"", |h| h.set_mode(0o600))
        .with_header("dev/null", EntryType::Char, b"", |h| {
            h.set_mode(0o666);
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        })
        .file("etc/.wh.shadow", b"")
        .file("var/.wh..wh..opq", b"")
        .file("var/kept", b"k")
        .finish();
    let applied = apply_layer(&tar[..], &snap).unwrap();
    assert_eq!(applied.diff_id, wharf_image::digest::of_bytes(&tar));

    let md = |p: &str| std::fs::symlink_metadata(snap.join(p)).unwrap();
    assert_eq!(md("bin/su").mode() & 0o7777, 0o4755);
    assert_eq!(md("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(md("bin").mode() & 0o7777, 0o751);
    assert_eq!(md("bin").mtime(), 1_234_567_890, "directory mtime is set after its children");
    let f = md("home/u/file");
    assert_eq!((f.uid(), f.gid(), f.mode() & 0o777, f.mtime()), (1234, 5678, 0o640, 1_000_000_000));
    assert_eq!(md("bin/su").ino(), md("bin/su-link").ino());
    assert_eq!(std::fs::read_link(snap.join("bin/sh")).unwrap().to_str(), Some("busybox"));
    assert!(md("dev/fifo").file_type().is_fifo());
    let null = md("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    let wh = md("etc/shadow");
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "whiteout is a 0/0 char device");
    assert!(!snap.join("etc/.wh.shadow").exists());
    assert_eq!(xattr(&snap.join("var"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert!(snap.join("var/kept").exists());
    assert_eq!(xattr(&snap.join("cap"), "user.note").as_deref(), Some(&b"hello"[..]));
    assert_eq!(xattr(&snap.join("cap"), "trusted.overlay.redirect"), None, "overlay xattrs from a layer are dropped");
}

#[test]
fn gzip_and_zstd_layers_unpack_with_the_same_diff_id() {
    if !privileged("gzip_and_zstd_layers_unpack_with_the_same_diff_id") {
        return;
    }
    use std::io::Write;
    let tar = RawTar::default().file("a", b"hello").dir("d").finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = {
        let out = std::process::Command::new("zstd")
            .args(["-q", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn();
        let mut child = out.expect("zstd is installed (apt-get install zstd)");
        child.stdin.take().unwrap().write_all(&tar).unwrap();
        child.wait_with_output().unwrap().stdout
    };
    let want = wharf_image::digest::of_bytes(&tar);
    for (name, bytes) in [("plain", tar.clone()), ("gzip", gz), ("zstd", zst)] {
        let dir = tempfile::tempdir().unwrap();
        let a = apply_layer(&bytes[..], dir.path()).unwrap();
        assert_eq!(a.diff_id, want, "{name}");
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"hello", "{name}");
    }
}
