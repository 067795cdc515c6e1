//! Eight `wharf` processes importing, tagging and removing images in one
//! store at once: no corruption, no lost tag.

use std::process::Child;
use wharf_tests::{privileged, RawTar, TestStore};

const WORKERS: usize = 8;
const ROUNDS: usize = 4;

#[test]
fn eight_processes_never_corrupt_the_store() {
    if !privileged("eight_processes_never_corrupt_the_store") {
        return;
    }
    let s = TestStore::new();
    // A layer shared by every worker (dedup under contention) and one each.
    let shared = s.path("shared.tar");
    std::fs::write(&shared, RawTar::default().file("shared", &vec![7u8; 200_000]).finish()).unwrap();
    for w in 0..WORKERS {
        std::fs::write(
            s.path(&format!("own{w}.tar")),
            RawTar::default().file("own", format!("{w}").as_bytes()).finish(),
        )
        .unwrap();
    }
    let script = |w: usize| {
        let wharf = format!("{} --root {}", wharf_tests::bin("wharf").display(), s.root.display());
        let mut sh = String::from("set -e\n");
        for r in 0..ROUNDS {
            sh += &format!("{wharf} import {} w{w}/shared:r{r} >/dev/null\n", s.path("shared.tar").display());
            sh += &format!("{wharf} import {} w{w}/own:r{r} >/dev/null\n", s.path(&format!("own{w}.tar")).display());
            sh += &format!("{wharf} tag w{w}/own:r{r} w{w}/keep:r{r}\n");
            sh += &format!("{wharf} rmi w{w}/own:r{r} >/dev/null\n");
            sh += &format!("{wharf} images -q >/dev/null\n");
        }
        sh
    };
    let children: Vec<Child> =
        (0..WORKERS).map(|w| std::process::Command::new("sh").arg("-c").arg(script(w)).spawn().unwrap()).collect();
    for (w, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "worker {w} failed");
    }
    let listed: serde_json::Value = serde_json::from_str(&s.ok(["images", "--format", "json"])).unwrap();
    let names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()))
        .collect();
    for w in 0..WORKERS {
        for r in 0..ROUNDS {
            for kind in ["shared", "keep"] {
                let want = format!("docker.io/w{w}/{kind}:r{r}");
                assert!(names.contains(&want), "lost tag {want}");
            }
            assert!(!names.contains(&format!("docker.io/w{w}/own:r{r}")), "removed tag came back");
        }
    }
    assert_eq!(names.len(), WORKERS * ROUNDS * 2);
    s.assert_consistent();
}
