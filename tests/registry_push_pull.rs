//! Push and pull against Debian's docker-registry on a loopback port, with
//! the request log of a pass-through proxy to see what the client did.

use std::process::Command;
use wharf_tests::proxy::FaultProxy;
use wharf_tests::registry::{Auth, TestRegistry};
use wharf_tests::{busybox_tar, privileged, require_tool, RawTar, TestStore};

fn store_with_busybox() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "-c".as_ref(), "CMD [\"/bin/sh\"]".as_ref(), "busybox".as_ref()]);
    s
}

fn uploads(reqs: &[String]) -> usize {
    reqs.iter().filter(|r| (r.starts_with("PUT ") || r.starts_with("PATCH ")) && r.contains("/blobs/uploads/")).count()
}

fn pings(reqs: &[String]) -> usize {
    reqs.iter().filter(|r| r.as_str() == "GET /v2/").count()
}

#[test]
fn push_pull_roundtrip_and_a_second_push_uploads_nothing() {
    if !privileged("push_pull_roundtrip_and_a_second_push_uploads_nothing") {
        return;
    }
    let reg = TestRegistry::start(Auth::None);
    let proxy = FaultProxy::start(&reg.addr);
    let a = store_with_busybox();
    let dest = format!("{}/lib/bb:1", proxy.addr);
    let out = a.ok(["push", "busybox", &dest]);
    assert!(out.contains("digest: sha256:"), "{out}");
    assert_eq!(pings(&proxy.requests()), 1, "one /v2/ ping per push: {:?}", proxy.requests());
    assert_eq!(uploads(&proxy.requests()), 2, "config and layer uploaded: {:?}", proxy.requests());
    proxy.clear();
    a.ok(["push", "busybox", &dest]);
    assert_eq!(uploads(&proxy.requests()), 0, "second push uploaded: {:?}", proxy.requests());

    let b = TestStore::new();
    proxy.clear();
    let out = b.ok(["pull", &dest]);
    assert!(out.contains("Digest: sha256:"), "{out}");
    // An anonymous registry was pinged at `/v2/` again before every blob GET.
    assert_eq!(pings(&proxy.requests()), 1, "one /v2/ ping per pull: {:?}", proxy.requests());
    assert_eq!(a.ok(["images", "-q"]), b.ok(["images", "-q"]), "same image ID");
    assert_eq!(std::fs::read_dir(b.root.join("layers/sha256")).unwrap().count(), 1, "pull unpacks");
    b.assert_consistent();
    proxy.clear();
    b.ok(["pull", "-q", &dest]);
    let blob_gets = proxy.requests().iter().filter(|r| r.starts_with("GET ") && r.contains("/blobs/")).count();
    assert_eq!(blob_gets, 0, "layers in the store are not downloaded again");
    let err = b.fails(["pull", &format!("{}/lib/bb:missing", proxy.addr)]);
    assert!(err.contains("not found") && err.contains("lib/bb:missing"), "{err}");
}

#[test]
fn cross_repo_mount_uploads_nothing() {
    if !privileged("cross_repo_mount_uploads_nothing") {
        return;
    }
    let reg = TestRegistry::start(Auth::None);
    let proxy = FaultProxy::start(&reg.addr);
    let a = store_with_busybox();
    a.ok(["push", "busybox", &format!("{}/team-a/bb:1", proxy.addr)]);
    proxy.clear();
    let out = a.ok(["push", "busybox", &format!("{}/team-b/bb:1", proxy.addr)]);
    let reqs = proxy.requests();
    assert!(
        reqs.iter().any(|r| r.starts_with("POST ") && r.contains("mount=") && r.contains("from=team-a")),
        "{reqs:?}\n{out}"
    );
    assert_eq!(uploads(&reqs), 0, "mounted blobs were uploaded: {reqs:?}");
    let b = TestStore::new();
    b.ok(["pull", &format!("{}/team-b/bb:1", reg.addr)]);
    b.assert_consistent();
}

/// An index with the host's image and an arm64 one, pushed and pulled per platform.
#[test]
fn multi_platform_index_push_and_platform_selection() {
    if !privileged("multi_platform_index_push_and_platform_selection") {
        return;
    }
    use wharf_image::{ImportOptions, Reference, Store};
    let reg = TestRegistry::start(Auth::None);
    let a = TestStore::new();
    let store = Store::open(&a.root).unwrap();
    let host =
        store.import(&mut &RawTar::default().file("arch", b"host").finish()[..], &ImportOptions::default()).unwrap();
    let arm = RawTar::default().file("arch", b"arm64").finish();
    let (ld, lsize) = store.blobs().put_reader(&mut &arm[..], None).unwrap();
    let cfg = serde_json::json!({"architecture": "arm64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [wharf_image::digest::of_bytes(&arm).to_string()]}});
    let arm_m = store
        .put_image(&cfg, vec![wharf_image::spec::Descriptor::new(wharf_image::spec::MediaType::ImageLayer, lsize, ld)])
        .unwrap();
    let entry = |d: &wharf_image::spec::Descriptor, arch: &str| {
        serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d.digest().to_string(), "size": d.size(),
        "platform": {"os": "linux", "architecture": arch}})
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&host.target, wharf_image::host_arch()), entry(&arm_m, "arm64")]});
    let ib = serde_json::to_vec(&index).unwrap();
    let idig = store.blobs().put_bytes(&ib).unwrap();
    let idesc =
        wharf_image::spec::Descriptor::new(wharf_image::spec::MediaType::ImageIndex, ib.len() as u64, idig.clone());
    store.set_tag(&Reference::parse("multi:1").unwrap(), &idesc).unwrap();

    let dest = format!("{}/multi/app:1", reg.addr);
    a.ok(["push", "multi:1", &dest]);
    let b = TestStore::new();
    b.ok(["pull", &dest]);
    assert_eq!(b.ok(["images", "-q"]).trim(), &host.config_digest.digest()[..12], "host platform by default");
    let c = TestStore::new();
    c.ok(["pull", "--platform", "linux/arm64", &dest]);
    let arm_id =
        serde_json::from_str::<serde_json::Value>(&c.ok(["inspect", &dest])).unwrap()[0]["Architecture"].clone();
    assert_eq!(arm_id, "arm64");
    let d = TestStore::new();
    d.ok(["pull", "--all-platforms", &dest]);
    let v: serde_json::Value = serde_json::from_str(&d.ok(["images", "--format", "json"])).unwrap();
    assert_eq!(v[0]["digest"], idig.to_string(), "--all-platforms keeps the index");
    d.assert_consistent();
    let err = TestStore::new().fails(["pull", "--platform", "linux/s390x", &dest]);
    assert!(err.contains("s390x"), "{err}");
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new(require_tool("skopeo")).args(args).output().unwrap();
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn skopeo_interop_with_identical_manifests() {
    if !privileged("skopeo_interop_with_identical_manifests") {
        return;
    }
    let reg = TestRegistry::start(Auth::None);
    let a = store_with_busybox();
    a.ok(["push", "busybox", &format!("{}/w/bb:1", reg.addr)]);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{}/w/bb:1", reg.addr)]);
    let digest = wharf_image::digest::of_bytes(&raw);
    assert!(a.root.join("blobs/sha256").join(digest.digest()).exists(), "skopeo sees the manifest bytes wharf pushed");
    let layout = a.path("skopeo-out");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/w/bb:1", reg.addr),
        &format!("oci:{}:x", layout.display()),
    ]);

    // skopeo pushes (gzip layers), wharf pulls: the manifest wharf stores is skopeo's, byte for byte.
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:x", layout.display()),
        &format!("docker://{}/sk/bb:2", reg.addr),
    ]);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &format!("docker://{}/sk/bb:2", reg.addr)]);
    let b = TestStore::new();
    let out = b.ok(["pull", &format!("{}/sk/bb:2", reg.addr)]);
    let d = wharf_image::digest::of_bytes(&raw);
    assert!(out.contains(&d.to_string()), "{out}");
    assert_eq!(std::fs::read(b.root.join("blobs/sha256").join(d.digest())).unwrap(), raw);
    b.assert_consistent();
}
