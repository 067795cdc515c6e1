//! Hostile layer tars: every escape class from the image-store issue must be
//! contained inside the snapshot (as a container would see the path) or
//! refused with an error naming the entry, and nothing outside may change.

use std::path::{Path, PathBuf};
use tar::EntryType;
use wharf_image::unpack::apply_layer;
use wharf_tests::{privileged, tree_fingerprint, RawTar, TestStore};

struct Lab {
    _dir: tempfile::TempDir,
    base: PathBuf,
    snap: PathBuf,
    outside: PathBuf,
}

impl Lab {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("wharf-hostile-").tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let (snap, outside) = (base.join("snap"), base.join("outside"));
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(outside.join("sub")).unwrap();
        std::fs::write(outside.join("victim"), b"original").unwrap();
        std::fs::write(outside.join("sub/victim"), b"original").unwrap();
        Lab { _dir: dir, base, snap, outside }
    }

    /// Applies `tar`, then checks that nothing outside the snapshot changed.
    fn apply(&self, tar: Vec<u8>) -> Result<(), String> {
        let before = tree_fingerprint(&self.base.join("outside"));
        let parent_before = list(&self.base);
        let res = apply_layer(&tar[..], &self.snap).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(before, tree_fingerprint(&self.outside), "the outside dir changed");
        assert_eq!(parent_before, list(&self.base), "something appeared beside the snapshot");
        assert!(!Path::new("/victim").exists() && !Path::new("/escaped").exists(), "wrote at the host root");
        let md = std::fs::metadata(self.outside.join("victim")).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::nlink(&md), 1, "outside file got a hard link");
        res
    }

    fn inside(&self, rel: &str) -> PathBuf {
        self.snap.join(rel.trim_start_matches('/'))
    }
}

fn list(p: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn abs(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn dotdot_paths_stay_inside() {
    if !privileged("dotdot_paths_stay_inside") {
        return;
    }
    let lab = Lab::new();
    let tar = RawTar::default().file("../../../../outside/victim", b"pwned").file("a/../../escaped", b"x").finish();
    lab.apply(tar).unwrap();
    assert_eq!(std::fs::read(lab.inside("outside/victim")).unwrap(), b"pwned");
    assert!(lab.inside("escaped").exists());
}

#[test]
fn absolute_paths_stay_inside() {
    if !privileged("absolute_paths_stay_inside") {
        return;
    }
    let lab = Lab::new();
    let target = format!("{}/victim", abs(&lab.outside));
    lab.apply(RawTar::default().file(&target, b"pwned").finish()).unwrap();
    assert_eq!(std::fs::read(lab.inside(&target)).unwrap(), b"pwned");
}

#[test]
fn absolute_symlink_is_resolved_inside() {
    if !privileged("absolute_symlink_is_resolved_inside") {
        return;
    }
    // The link's target exists inside the snapshot: the write lands there.
    let lab = Lab::new();
    let out = abs(&lab.outside);
    let tar = RawTar::default()
        .dir(&out)
        .symlink("l", &out)
        .file("l/victim", b"pwned")
        .symlink("root", "/")
        .file("root/escaped", b"x")
        .finish();
    lab.apply(tar).unwrap();
    assert_eq!(std::fs::read(lab.inside(&format!("{out}/victim"))).unwrap(), b"pwned");
    assert!(lab.inside("escaped").exists());
    // It does not: refused, naming the entry (GNU tar refuses too).
    let lab = Lab::new();
    let err =
        lab.apply(RawTar::default().symlink("l", &abs(&lab.outside)).file("l/victim", b"pwned").finish()).unwrap_err();
    assert!(err.contains("\"l/victim\"") && err.contains("dangling"), "{err}");
}

#[test]
fn relative_and_chained_symlinks_are_resolved_inside() {
    if !privileged("relative_and_chained_symlinks_are_resolved_inside") {
        return;
    }
    let lab = Lab::new();
    let tar = RawTar::default()
        .dir("outside/sub")
        .symlink("rel", "../outside")
        .file("rel/victim", b"pwned")
        .symlink("a", "b")
        .symlink("b", "c/../../../..")
        .dir("c")
        .file("a/outside/sub/victim", b"pwned")
        .finish();
    lab.apply(tar).unwrap();
    assert_eq!(std::fs::read(lab.inside("outside/victim")).unwrap(), b"pwned");
    assert_eq!(std::fs::read(lab.inside("outside/sub/victim")).unwrap(), b"pwned");
    let lab = Lab::new();
    let tar = RawTar::default().symlink("a", "b").symlink("b", "../../outside").file("a/victim", b"pwned").finish();
    let err = lab.apply(tar).unwrap_err();
    assert!(err.contains("\"a/victim\""), "{err}");
}

#[test]
fn hardlinks_to_outside_are_refused() {
    if !privileged("hardlinks_to_outside_are_refused") {
        return;
    }
    let lab = Lab::new();
    let err = lab.apply(RawTar::default().hardlink("hl", "../outside/victim").finish()).unwrap_err();
    assert!(err.contains("\"hl\""), "{err}");
    let lab = Lab::new();
    let victim = format!("{}/victim", abs(&lab.outside));
    let err = lab.apply(RawTar::default().hardlink("hl", &victim).finish()).unwrap_err();
    assert!(err.contains("\"hl\""), "{err}");
    let lab = Lab::new();
    let tar = RawTar::default().symlink("l", &abs(&lab.outside)).hardlink("hl", "l/victim").finish();
    let err = lab.apply(tar).unwrap_err();
    assert!(err.contains("\"hl\""), "{err}");
}

#[test]
fn hardlink_inside_the_layer_works() {
    if !privileged("hardlink_inside_the_layer_works") {
        return;
    }
    let lab = Lab::new();
    lab.apply(RawTar::default().file("f", b"data").hardlink("../../g", "/f").finish()).unwrap();
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (std::fs::metadata(lab.inside("f")).unwrap(), std::fs::metadata(lab.inside("g")).unwrap());
    assert_eq!(a.ino(), b.ino());
}

#[test]
fn directory_replaced_by_symlink_then_written_beneath() {
    if !privileged("directory_replaced_by_symlink_then_written_beneath") {
        return;
    }
    let lab = Lab::new();
    let tar = RawTar::default()
        .dir(&abs(&lab.outside))
        .dir("d")
        .file("d/keep", b"k")
        .symlink("d", &abs(&lab.outside))
        .file("d/victim", b"pwned")
        .symlink("e", "../..")
        .file("e/escaped", b"x")
        .finish();
    lab.apply(tar).unwrap();
    assert_eq!(std::fs::read(lab.inside(&format!("{}/victim", abs(&lab.outside)))).unwrap(), b"pwned");
    assert!(std::fs::symlink_metadata(lab.inside("d")).unwrap().file_type().is_symlink());
}

#[test]
fn long_names_carrying_escapes_stay_inside() {
    if !privileged("long_names_carrying_escapes_stay_inside") {
        return;
    }
    let lab = Lab::new();
    let deep = format!("{}outside/victim", "../".repeat(60));
    let pax_link = format!("{}{}", "../".repeat(50), abs(&lab.outside));
    let tar = RawTar::default()
        .dir(&format!("{}/sub", abs(&lab.outside)))
        .gnu_long_file(&deep, b"gnu")
        .pax_entry(&[("path", format!("{}escaped", "../".repeat(70)).as_bytes())], EntryType::Regular, b"pax")
        .pax_entry(&[("path", b"plink"), ("linkpath", pax_link.as_bytes())], EntryType::Symlink, b"")
        .file("plink/sub/victim", b"pwned")
        .finish();
    lab.apply(tar).unwrap();
    assert_eq!(std::fs::read(lab.inside("outside/victim")).unwrap(), b"gnu");
    assert_eq!(std::fs::read(lab.inside("escaped")).unwrap(), b"pax");
    assert_eq!(std::fs::read(lab.inside(&format!("{}/sub/victim", abs(&lab.outside)))).unwrap(), b"pwned");
}

#[test]
fn whiteouts_never_delete_outside() {
    if !privileged("whiteouts_never_delete_outside") {
        return;
    }
    let lab = Lab::new();
    let err = lab.apply(RawTar::default().file("dir/.wh..", b"").finish()).unwrap_err();
    assert!(err.contains("dir/.wh.."), "{err}");
    let lab = Lab::new();
    let tar = RawTar::default()
        .dir(&abs(&lab.outside))
        .file("../outside/.wh.victim", b"")
        .symlink("l", &abs(&lab.outside))
        .file("l/.wh.victim", b"")
        .file("l/sub/.wh..wh..opq", b"")
        .finish();
    lab.apply(tar).unwrap();
    use std::os::unix::fs::FileTypeExt;
    let wh = std::fs::symlink_metadata(lab.inside("outside/victim")).unwrap();
    assert!(wh.file_type().is_char_device());
}

#[test]
fn refused_layer_leaves_nothing_in_the_store() {
    if !privileged("refused_layer_leaves_nothing_in_the_store") {
        return;
    }
    let s = TestStore::new();
    let bad = s.path("bad.tar");
    std::fs::write(&bad, RawTar::default().file("ok", b"fine").hardlink("hl", "missing").finish()).unwrap();
    let err = s.fails(["import".as_ref(), bad.as_os_str(), "bad:1".as_ref()]);
    assert!(err.contains("\"hl\""), "{err}");
    assert!(std::fs::read_dir(s.root.join("layers/sha256")).unwrap().next().is_none(), "a partial snapshot stayed");
    assert!(
        std::fs::read_dir(s.root.join("blobs/sha256")).unwrap().next().is_none(),
        "the refused layer's blob stayed"
    );
    assert!(std::fs::read_dir(s.root.join("ingest")).unwrap().next().is_none(), "temp files stayed");
    assert!(s.ok(["images", "-q"]).trim().is_empty());
    s.assert_consistent();
}

#[test]
fn garbage_is_a_clear_error() {
    if !privileged("garbage_is_a_clear_error") {
        return;
    }
    let lab = Lab::new();
    let err = lab.apply(b"this is not a tar archive at all, not even close................".repeat(20)).unwrap_err();
    assert!(err.contains("tar") || err.contains("layer"), "{err}");
    let err = lab.apply(vec![0x1f, 0x8b, 0x08, 0x00, 1, 2, 3]).unwrap_err();
    assert!(!err.is_empty());
}
