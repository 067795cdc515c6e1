//! Reproducible layers: the same files give the same bytes, whatever their
//! mtimes (with SOURCE_DATE_EPOCH), creation order or store; cache keys
//! ignore mtimes but nothing else.

mod layer_common;

use layer_common::*;
use sha2::Digest as _;
use std::path::Path;
use wharf_builder::layer::{
    copy_to_tar, hash_sources, upper_to_tar, write_layer, CopyPlan, CopySource, LayerCompression, TarOptions,
};

const EPOCH: i64 = 1_700_000_000;

/// The same tree, created in a different order each time, with the given mtimes.
fn make_tree(root: &Path, reverse: bool, mtime: i64) {
    let mut files = vec![("b/z.txt", "z"), ("a.txt", "a"), ("b/c/d.txt", "d"), ("e.bin", "\u{0}\u{1}")];
    if reverse {
        files.reverse();
    }
    for (p, c) in &files {
        write(&root.join(p), c);
    }
    std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
    set_mode(&root.join("e.bin"), 0o755);
    for p in ["a.txt", "b/z.txt", "b/c/d.txt", "e.bin", "link", "b/c", "b"] {
        set_mtime(&root.join(p), mtime);
    }
}

fn plan_for(root: &Path) -> CopyPlan<'static> {
    CopyPlan {
        sources: vec![CopySource { root: root.to_path_buf(), path: ".".into() }],
        dest: "/app/".into(),
        workdir: "/".into(),
        context_root: Some(root.to_path_buf()),
        ..Default::default()
    }
}

fn copy_tar(root: &Path, opts: &TarOptions) -> Vec<u8> {
    let mut out = Vec::new();
    copy_to_tar(&plan_for(root), &mut out, opts).unwrap();
    out
}

#[test]
fn copy_tars_are_byte_identical_across_mtimes_and_creation_order() {
    let tmp = tempfile::Builder::new().prefix("wharf-layer-det").tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    make_tree(&one, false, EPOCH + 1000);
    make_tree(&two, true, EPOCH + 99_999);
    let opts = TarOptions { epoch: Some(EPOCH) };
    let (a, b) = (copy_tar(&one, &opts), copy_tar(&two, &opts));
    assert_eq!(a, b);
    let entries = read_tar(&a);
    assert!(entries.iter().all(|e| e.mtime <= EPOCH as u64), "mtimes clamped");
    assert!(entries.iter().all(|e| e.uid == 0 && e.gid == 0));
    // Old mtimes stay as they are: clamping never raises a time.
    set_mtime(&one.join("a.txt"), 5);
    assert_eq!(find(&read_tar(&copy_tar(&one, &opts)), "app/a.txt").mtime, 5);
}

#[test]
fn upper_tars_are_byte_identical_and_normalised() {
    let tmp = tempfile::Builder::new().prefix("wharf-layer-det").tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    make_tree(&one, false, EPOCH + 5);
    make_tree(&two, true, EPOCH + 7);
    let opts = TarOptions { epoch: Some(EPOCH) };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    upper_to_tar(&one, &mut a, &opts).unwrap();
    upper_to_tar(&two, &mut b, &opts).unwrap();
    assert_eq!(a, b);
    assert_eq!(paths(&read_tar(&a)), ["a.txt", "b/", "b/c/", "b/c/d.txt", "b/z.txt", "e.bin", "link"]);
    // ustar headers with empty user/group names, and no PAX header needed here.
    let mut ar = tar::Archive::new(&a[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        assert_ne!(e.header().entry_type(), tar::EntryType::XHeader);
        assert_eq!(e.header().username_bytes(), Some(&b""[..]));
        assert_eq!(e.header().groupname_bytes(), Some(&b""[..]));
    }
}

#[test]
fn long_names_and_big_ids_use_pax() {
    let tmp = tempfile::Builder::new().prefix("wharf-layer-det").tempdir().unwrap();
    let long = format!("{}/{}", "n".repeat(90), "m".repeat(90));
    write(&tmp.path().join(&long), "x");
    let plan = CopyPlan {
        sources: vec![CopySource { root: tmp.path().to_path_buf(), path: ".".into() }],
        dest: "/".into(),
        workdir: "/".into(),
        chown: Some((3_000_000, 4_000_000)),
        ..Default::default()
    };
    let mut out = Vec::new();
    copy_to_tar(&plan, &mut out, &TarOptions::default()).unwrap();
    let e = find(&read_tar(&out), &long).clone();
    assert_eq!((e.uid, e.gid, e.data), (3_000_000, 4_000_000, b"x".to_vec()));
}

#[test]
fn written_layers_are_identical_across_stores_for_gzip_and_zstd() {
    let tmp = tempfile::Builder::new().prefix("wharf-layer-det").tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    make_tree(&one, false, EPOCH + 3);
    make_tree(&two, true, EPOCH + 4);
    // Big enough to span several parallel gzip blocks.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for d in [&one, &two] {
        std::fs::write(d.join("big"), &big).unwrap();
        set_mtime(&d.join("big"), EPOCH + 9);
    }
    let opts = TarOptions { epoch: Some(EPOCH) };
    for (compression, media) in [
        (LayerCompression::Gzip, "application/vnd.oci.image.layer.v1.tar+gzip"),
        (LayerCompression::Zstd, "application/vnd.oci.image.layer.v1.tar+zstd"),
    ] {
        let mut written = Vec::new();
        for (i, src) in [&one, &two].into_iter().enumerate() {
            let store = wharf_image::Store::open(tmp.path().join(format!("store-{compression:?}-{i}"))).unwrap();
            let l = write_layer(&store, compression, &mut |w| copy_to_tar(&plan_for(src), w, &opts)).unwrap();
            assert_eq!(l.descriptor.media_type().to_string(), media);
            assert!(!l.empty);
            let blob = std::fs::read(store.blobs().path(l.descriptor.digest())).unwrap();
            assert_eq!(blob.len() as u64, l.descriptor.size());
            // The diffID is the sha256 of the tar copy_to_tar writes.
            let tar = copy_tar(src, &opts);
            assert_eq!(l.diff_id.digest(), hex::encode(sha2::Sha256::digest(&tar)));
            let snap = store.snapshots().path(&l.diff_id);
            assert_eq!(std::fs::read(snap.join("app/big")).unwrap(), big);
            written.push((l.descriptor.digest().clone(), l.diff_id));
        }
        assert_eq!(written[0], written[1], "{compression:?}");
    }
}

#[test]
fn an_empty_layer_is_flagged() {
    let tmp = tempfile::Builder::new().prefix("wharf-layer-det").tempdir().unwrap();
    let upper = tmp.path().join("upper");
    std::fs::create_dir(&upper).unwrap();
    let store = wharf_image::Store::open(tmp.path().join("store")).unwrap();
    let l =
        write_layer(&store, LayerCompression::Gzip, &mut |w| upper_to_tar(&upper, w, &TarOptions::default())).unwrap();
    assert!(l.empty);
}

#[test]
fn a_failing_producer_leaves_no_blob() {
    let tmp = tempfile::Builder::new().prefix("wharf-layer-det").tempdir().unwrap();
    let store = wharf_image::Store::open(tmp.path().join("store")).unwrap();
    let before = store.blobs().list().unwrap().0.len();
    let err = write_layer(&store, LayerCompression::Zstd, &mut |w| {
        w.write_all(&[0u8; 4096]).map_err(wharf_builder::layer::LayerError::Write)?;
        upper_to_tar(&tmp.path().join("missing"), w, &TarOptions::default())
    })
    .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(store.blobs().list().unwrap().0.len(), before);
    assert_eq!(std::fs::read_dir(tmp.path().join("store/ingest")).unwrap().count(), 0);
}

#[test]
fn hash_sources_ignores_mtimes_but_not_content_mode_or_names() {
    let tmp = tempfile::Builder::new().prefix("wharf-layer-det").tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    make_tree(&one, false, 1000);
    make_tree(&two, true, 2_000_000);
    let h = hash_sources(&plan_for(&one)).unwrap();
    assert_eq!(h.len(), 64);
    assert_eq!(h, hash_sources(&plan_for(&two)).unwrap(), "mtimes and creation order do not count");
    let changed = |f: &dyn Fn(&Path)| {
        let d = tmp.path().join("changed");
        let _ = std::fs::remove_dir_all(&d);
        make_tree(&d, false, 1000);
        f(&d);
        hash_sources(&plan_for(&d)).unwrap()
    };
    assert_eq!(changed(&|_| {}), h);
    assert_ne!(changed(&|d| write(&d.join("a.txt"), "A")), h, "content");
    assert_ne!(changed(&|d| set_mode(&d.join("a.txt"), 0o600)), h, "mode");
    assert_ne!(changed(&|d| std::fs::rename(d.join("a.txt"), d.join("a2.txt")).unwrap()), h, "name");
    assert_ne!(
        changed(&|d| {
            std::fs::remove_file(d.join("link")).unwrap();
            std::os::unix::fs::symlink("e.bin", d.join("link")).unwrap();
        }),
        h,
        "symlink target"
    );
    let mut chowned = plan_for(&one);
    chowned.chown = Some((1, 1));
    assert_ne!(hash_sources(&chowned).unwrap(), h, "owner after --chown");
}
