//! `wharf build --annotation TYPE[PLATFORM]:KEY=VALUE` of a two-platform
//! build, as buildx: `index:` on the image index, `manifest-descriptor:` on
//! its entries (all, or one platform's), `manifest:` (and
//! `manifest[PLATFORM]:`) on the manifests, `index-descriptor:` on the
//! index's entry of an OCI layout's `index.json` — read back from
//! `-o type=oci` and from a local docker-registry the index is pushed to.

use serde_json::Value;
use std::io::Read;
use std::process::Command;
use wharf_tests::registry::{Auth, TestRegistry};
use wharf_tests::{mounts_under, privileged, require_tool, TestStore};

/// The files of an OCI archive, by path.
fn untar(path: &std::path::Path) -> std::collections::HashMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut out = std::collections::HashMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().trim_start_matches("./").to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(name, data);
    }
    out
}

fn blob(files: &std::collections::HashMap<String, Vec<u8>>, digest: &Value) -> Value {
    let d = digest.as_str().unwrap().trim_start_matches("sha256:");
    serde_json::from_slice(&files[&format!("blobs/sha256/{d}")]).unwrap()
}

/// `skopeo inspect --raw` of a registry's manifest or index.
fn raw(reference: &str) -> Value {
    let o = Command::new(require_tool("skopeo"))
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{reference}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Checks an index and its manifests (read with `manifest`) carry the test's annotations.
fn check_index(index: &Value, manifest: &dyn Fn(&Value) -> Value) {
    assert_eq!(index["annotations"]["org.opencontainers.image.description"], "two platforms", "{index}");
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    for e in entries {
        let arch = e["platform"]["architecture"].as_str().unwrap();
        assert_eq!(e["annotations"]["com.example.entry"], "every", "{e}");
        let only_arm = e["annotations"].get("com.example.arm").cloned();
        assert_eq!(only_arm.is_some(), arch == "arm64", "manifest-descriptor[linux/arm64]: {e}");
        let m = manifest(&e["digest"]);
        assert_eq!(m["annotations"]["org.opencontainers.image.source"], "https://example.com/src", "{m}");
        assert_eq!(m["annotations"]["com.example.plain"], "yes", "a key without type is the manifest's");
        let amd = m["annotations"].get("com.example.amd").cloned();
        assert_eq!(amd.is_some(), arch == "amd64", "manifest[linux/amd64]: {m}");
        assert!(index["annotations"].get("org.opencontainers.image.source").is_none());
    }
}

#[test]
fn annotations_of_a_two_platform_build() {
    if !privileged("annotations_of_a_two_platform_build") {
        return;
    }
    let s = TestStore::new();
    let reg = TestRegistry::start(Auth::None);
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY hello /hello\n").unwrap();
    std::fs::write(ctx.join("hello"), "hi\n").unwrap();
    let name = format!("{}/ann/app:1", reg.addr);
    let oci = s.path("out.tar");
    let ann = [
        "index:org.opencontainers.image.description=two platforms",
        "index-descriptor:com.example.desc=of the index",
        "manifest-descriptor:com.example.entry=every",
        "manifest-descriptor[linux/arm64]:com.example.arm=only",
        "manifest:org.opencontainers.image.source=https://example.com/src",
        "com.example.plain=yes",
        "manifest[linux/amd64]:com.example.amd=only",
    ];
    let mut args = vec!["build", "-q", "--platform", "linux/amd64,linux/arm64", "-t", &name, "--push"];
    let out = format!("type=oci,dest={}", oci.display());
    args.extend(["-o", &out]);
    for a in &ann {
        args.extend(["--annotation", a]);
    }
    args.push(ctx.to_str().unwrap());
    s.ok(&args);
    // The OCI layout: its index.json names the image index, with the descriptor's annotations.
    let files = untar(&oci);
    let top: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let desc = &top["manifests"][0];
    assert_eq!(desc["mediaType"], "application/vnd.oci.image.index.v1+json", "{top}");
    assert_eq!(desc["annotations"]["com.example.desc"], "of the index", "{top}");
    let index = blob(&files, &desc["digest"]);
    check_index(&index, &|d| blob(&files, d));
    // The registry has the same index and manifests.
    let pushed = raw(&name);
    assert_eq!(pushed, index);
    let repo = format!("{}/ann/app", reg.addr);
    check_index(&pushed, &|d| raw(&format!("{repo}@{}", d.as_str().unwrap())));
    // Bad input: clear errors, nothing stored.
    for (bad, want) in [
        ("layer:a=b", "unknown annotation type"),
        ("index[linux/arm64]:a=b", "not per platform"),
        ("manifest[linux/nope/x/y]:a=b", "platform"),
    ] {
        let err = s.fails([
            "build",
            "-q",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "bad:1",
            "--annotation",
            bad,
            ctx.to_str().unwrap(),
        ]);
        assert!(err.contains(want), "{bad}: {err}");
        assert!(!s.run(["inspect", "bad:1"]).status.success());
    }
    // One platform: index annotations have nowhere to go.
    let err = s.fails(["build", "-q", "-t", "bad:1", "--annotation", "index:a=b", ctx.to_str().unwrap()]);
    assert!(err.contains("need an image index"), "{err}");
    assert!(mounts_under(s.dir.path()).is_empty());
    s.assert_consistent();
}

// Broke: `-o type=local` of a multi-platform build wrote only the host's
// platform; buildx writes one `DIR/os_arch[_variant]` per platform.
#[test]
fn local_output_of_a_two_platform_build_has_a_dir_per_platform() {
    if !privileged("local_output_of_a_two_platform_build_has_a_dir_per_platform") {
        return;
    }
    let s = TestStore::new();
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nARG TARGETARCH\nCOPY hello-$TARGETARCH /hello\n").unwrap();
    for arch in ["amd64", "arm64", "arm"] {
        std::fs::write(ctx.join(format!("hello-{arch}")), format!("{arch}\n")).unwrap();
    }
    let dest = s.path("out");
    let out = format!("type=local,dest={}", dest.display());
    let platforms = "linux/amd64,linux/arm64,linux/arm/v7";
    s.ok(["build", "-q", "--platform", platforms, "-o", &out, ctx.to_str().unwrap()]);
    let mut dirs: Vec<String> =
        std::fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    dirs.sort();
    assert_eq!(dirs, ["linux_amd64", "linux_arm64", "linux_arm_v7"]);
    for (dir, arch) in [("linux_amd64", "amd64"), ("linux_arm64", "arm64"), ("linux_arm_v7", "arm")] {
        assert_eq!(std::fs::read_to_string(dest.join(dir).join("hello")).unwrap(), format!("{arch}\n"), "{dir}");
    }
    assert!(mounts_under(s.dir.path()).is_empty());
    s.assert_consistent();
}
