//! `kill -9` of `wharf load` at random moments: the store stays consistent
//! every time, and a retry succeeds.

use std::io::Read;
use std::time::{Duration, Instant};
use wharf_tests::{privileged, RawTar, TestStore};

fn pseudo_random(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn kill_9_during_load_keeps_the_store_consistent() {
    if !privileged("kill_9_during_load_keeps_the_store_consistent") {
        return;
    }
    let src = TestStore::new();
    let mut noise = vec![0u8; 48 << 20];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut noise).unwrap();
    let mut tar = RawTar::default();
    tar.file("big", &noise);
    for i in 0..200 {
        tar.file(&format!("small/{i}"), format!("{i}").as_bytes());
    }
    let layer = src.path("layer.tar");
    std::fs::write(&layer, tar.finish()).unwrap();
    drop(noise);
    src.ok(["import".as_ref(), layer.as_os_str(), "big:1".as_ref()]);
    let archive = src.path("big.tar");
    src.ok(["save".as_ref(), "-o".as_ref(), archive.as_os_str(), "big:1".as_ref()]);

    // How long an undisturbed load takes, to spread the kills over it.
    let probe = TestStore::new();
    let t0 = Instant::now();
    probe.ok(["load".as_ref(), "-i".as_ref(), archive.as_os_str()]);
    let full = t0.elapsed().as_millis().max(20) as u64;

    let s = TestStore::new();
    let mut seed = 0x9e3779b97f4a7c15u64 ^ u64::from(std::process::id());
    for attempt in 0..6 {
        let at = Duration::from_millis(pseudo_random(&mut seed) % full);
        let mut child = s.cmd().args(["load".as_ref(), "-i".as_ref(), archive.as_os_str()]).spawn().unwrap();
        std::thread::sleep(at);
        // SAFETY: kill(2) of the child we spawned, by its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        let out = s.run(["system", "check"]);
        assert!(
            out.status.success(),
            "attempt {attempt} (killed after {at:?}): {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    s.ok(["load".as_ref(), "-i".as_ref(), archive.as_os_str()]);
    assert!(s.ok(["images"]).contains("docker.io/library/big"));
    s.assert_consistent();
    // Leftovers of killed writers go with the next prune.
    std::thread::sleep(Duration::from_secs(6));
    s.ok(["image", "prune"]);
    assert_eq!(std::fs::read_dir(s.root.join("ingest")).unwrap().count(), 0, "temp files of killed loads remain");
    s.assert_consistent();
}
