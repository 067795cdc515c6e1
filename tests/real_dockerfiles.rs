//! Dockerfiles as people write them (`tests/data/dockerfiles/`, sources in
//! its README): each built by wharf and by Debian's buildah on the same
//! Debian base (debootstrap minbase, imported), then the config fields and
//! every file of the rootfs compared. The only accepted differences are
//! listed below with their reason.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use wharf_tests::buildah::{image_view, Buildah};
use wharf_tests::{mounts_under, privileged, TestStore};

/// Mount targets buildah's chroot isolation leaves behind as empty files.
const BUILDAH_STUBS: &[&str] = &["/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/run/.containerenv"];

/// Files whose content records when a command ran, not what it did, or
/// that a package writes differently each time: both builders must have
/// them, with the same type, mode and owner; only the bytes may differ.
fn time_stamped(path: &str) -> bool {
    // git-lfs's postinst (`git lfs install --system`) writes its four keys
    // in Go map order: 8 runs in one container gave 4 different files.
    path == "/etc/gitconfig"
        || path.starts_with("/var/log/")
        || path == "/var/cache/ldconfig/aux-cache"
        || path.starts_with("/var/cache/debconf/")
        || path.starts_with("/var/cache/apt/")
}

/// "file <digest> mode owner" without the digest.
fn without_content(entry: &str) -> Vec<&str> {
    entry.split(' ').enumerate().filter(|(i, _)| *i != 1).map(|(_, p)| p).collect()
}

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/dockerfiles")
}

/// Builds `case` with both; returns the differences not accepted above.
fn compare(s: &TestStore, b: &Buildah, case: &str, tag: &str) -> Vec<String> {
    let ctx = data().join(case);
    s.ok(["build", "-q", "-t", tag, ctx.to_str().unwrap()]);
    b.ok(&["bud", "-q", "--isolation", "chroot", "--layers=false", "-t", tag, ctx.to_str().unwrap()]);
    let layout = b.dir.path().join(format!("out-{case}"));
    b.ok(&["push", "-q", tag, &format!("oci:{}:b", layout.display())]);
    let work = s.path(&format!("views-{case}"));
    let (wt, wc) = image_view(&s.root, tag, &work);
    let (bt, bc) = image_view(&layout, "b", &work);
    let mut diffs = Vec::new();
    if wc != bc {
        diffs.push(format!("config: wharf {wc} buildah {bc}"));
    }
    for k in wt.keys().chain(bt.keys()).collect::<BTreeSet<_>>() {
        let (w, bb) = (wt.get(k), bt.get(k));
        if w == bb {
            continue;
        }
        let stub = BUILDAH_STUBS.contains(&k.as_str()) && w.is_none_or(|w| w.starts_with("file "));
        let same_but_bytes = match (w, bb) {
            (Some(w), Some(bb)) => time_stamped(k) && without_content(w) == without_content(bb),
            _ => false,
        };
        if !stub && !same_but_bytes {
            diffs.push(format!("{k}: wharf {w:?} buildah {bb:?}"));
        }
    }
    diffs
}

#[test]
fn real_world_dockerfiles_match_buildah() {
    if !privileged("real_world_dockerfiles_match_buildah") {
        return;
    }
    let base = wharf_tests::debian_base(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let s = TestStore::new();
    s.ok(["import".as_ref(), base.as_os_str(), "debian:bookworm".as_ref()]);
    let b = Buildah::new();
    let archive = s.path("base-archive.tar");
    s.ok(["save", "--format", "docker-archive", "-o", archive.to_str().unwrap(), "debian:bookworm"]);
    let id = b.ok(&["pull", "-q", &format!("docker-archive:{}", archive.display())]);
    // buildah finds short names under localhost/ (no search registries).
    b.ok(&["tag", &id, "localhost/debian:bookworm"]);

    let mut report = Vec::new();
    // scm is built FROM the curl image, named as upstream names it.
    for (case, tag) in [
        ("buildpack-deps-bookworm-curl", "buildpack-deps:bookworm-curl"),
        ("buildpack-deps-bookworm-scm", "buildpack-deps:bookworm-scm"),
    ] {
        let diffs = compare(&s, &b, case, tag);
        eprintln!("{case}: {} difference(s)", diffs.len());
        report.extend(diffs.into_iter().map(|d| format!("{case}: {d}")));
    }
    assert!(report.is_empty(), "wharf and buildah differ:\n{}", report.join("\n"));
    assert!(mounts_under(s.dir.path()).is_empty());
}
