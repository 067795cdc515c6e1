//! Faults the real registry cannot produce, through the harness's proxy: a
//! cut connection, a truncated body, wrong bytes, a 503. Each either
//! recovers or fails clearly and leaves nothing in the store.

use wharf_tests::proxy::{Fault, FaultProxy};
use wharf_tests::registry::{Auth, TestRegistry};
use wharf_tests::{privileged, RawTar, TestStore};

/// A registry holding an image with one 3 MiB layer; the proxy in front.
fn setup() -> (TestRegistry, FaultProxy, String, String) {
    let reg = TestRegistry::start(Auth::None);
    let a = TestStore::new();
    let mut data = vec![0u8; 3 << 20];
    let mut x = 12345u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let tar = a.path("big.tar");
    std::fs::write(&tar, RawTar::default().file("big", &data).finish()).unwrap();
    a.ok(["import".as_ref(), tar.as_os_str(), "big:1".as_ref()]);
    a.ok(["push", "big:1", &format!("{}/f/big:1", reg.addr)]);
    let layer = serde_json::from_str::<serde_json::Value>(&a.ok(["inspect", "big:1"])).unwrap()[0]["Layers"][0]
        ["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let proxy = FaultProxy::start(&reg.addr);
    let name = format!("{}/f/big:1", proxy.addr);
    (reg, proxy, name, layer)
}

fn assert_empty(s: &TestStore) {
    assert!(s.ok(["images", "-q"]).trim().is_empty());
    for d in ["blobs/sha256", "layers/sha256", "ingest"] {
        let n = std::fs::read_dir(s.root.join(d)).map(|r| r.count()).unwrap_or(0);
        assert_eq!(n, 0, "{d} not empty after a failed pull");
    }
    s.assert_consistent();
}

#[test]
fn a_connection_cut_mid_blob_is_resumed() {
    if !privileged("a_connection_cut_mid_blob_is_resumed") {
        return;
    }
    let (_reg, proxy, name, layer) = setup();
    proxy.add("GET", &layer, Fault::CutAfter(1 << 20), 2);
    let s = TestStore::new();
    s.ok(["pull", &name]);
    let gets = proxy.requests().iter().filter(|r| r.starts_with("GET") && r.contains(&layer)).count();
    assert!(gets >= 3, "two cuts, then the rest: {:?}", proxy.requests());
    s.assert_consistent();
}

#[test]
fn a_truncated_body_fails_clearly_and_leaves_nothing() {
    if !privileged("a_truncated_body_fails_clearly_and_leaves_nothing") {
        return;
    }
    let (_reg, proxy, name, layer) = setup();
    proxy.add("GET", &layer, Fault::CutAfter(0), usize::MAX);
    let s = TestStore::new();
    let err = s.fails(["pull", &name]);
    assert!(err.contains(&layer[7..]) || err.contains("closed"), "{err}");
    assert_empty(&s);
}

#[test]
fn a_blob_with_the_wrong_digest_is_refused() {
    if !privileged("a_blob_with_the_wrong_digest_is_refused") {
        return;
    }
    let (_reg, proxy, name, layer) = setup();
    proxy.add("GET", &layer, Fault::Corrupt, usize::MAX);
    let s = TestStore::new();
    let err = s.fails(["pull", &name]);
    assert!(err.to_lowercase().contains("digest"), "{err}");
    assert_empty(&s);
}

#[test]
fn service_unavailable_then_ok_succeeds() {
    if !privileged("service_unavailable_then_ok_succeeds") {
        return;
    }
    let (_reg, proxy, name, layer) = setup();
    proxy.add("GET", "/manifests/", Fault::Status(503), 1);
    proxy.add("GET", &layer, Fault::Status(503), 2);
    let s = TestStore::new();
    s.ok(["pull", &name]);
    s.assert_consistent();
    let a = TestStore::new();
    let tar = a.path("x.tar");
    std::fs::write(&tar, RawTar::default().file("x", b"y").finish()).unwrap();
    a.ok(["import".as_ref(), tar.as_os_str(), "x:1".as_ref()]);
    proxy.add("HEAD", "/blobs/", Fault::Status(503), 1);
    a.ok(["push", "x:1", &format!("{}/f/x:1", proxy.addr)]);
}
