//! Multi-platform builds and manifest lists (issue 14 §2), end to end:
//! a two-platform image from a cross-compiled stage (the host's
//! gcc-12-aarch64-linux-gnu in a `FROM --platform=$BUILDPLATFORM` stage) and
//! from an emulated RUN (Debian's busybox-static:arm64 under qemu-user-static
//! registered in binfmt_misc), pushed to a local Debian docker-registry and
//! checked manifest by manifest; `wharf manifest` round trips against the
//! same registry, read back with skopeo.
//!
//! binfmt_misc: a test that needs QEMU registers `qemu-aarch64` (with the F
//! flag, from Debian's /usr/lib/binfmt.d) only when the host has no such
//! handler, and unregisters only what it added; the tests that touch it run
//! one at a time.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use wharf_tests::registry::{Auth, TestRegistry};
use wharf_tests::{busybox_tar, mounts_under, privileged, require_tool, tar_dir, TestStore};

const BINFMT: &str = "/proc/sys/fs/binfmt_misc";

/// Serialises the tests that register (and unregister) a binfmt handler.
static BINFMT_LOCK: Mutex<()> = Mutex::new(());

/// What a test added to binfmt_misc, undone on drop.
struct Binfmt {
    mounted: bool,
    registered: bool,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl Binfmt {
    /// qemu-aarch64 registered with F, as a host with qemu-user-static has it.
    fn aarch64() -> Binfmt {
        let lock = BINFMT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let conf = Path::new("/usr/lib/binfmt.d/qemu-aarch64.conf");
        assert!(conf.exists(), "{} missing: apt-get install qemu-user-static", conf.display());
        let mut g = Binfmt { mounted: false, registered: false, _lock: lock };
        if !Path::new(BINFMT).join("register").exists() {
            let st = Command::new("mount").args(["-t", "binfmt_misc", "binfmt_misc", BINFMT]).status().unwrap();
            assert!(st.success(), "mount binfmt_misc");
            g.mounted = true;
        }
        let entry = Path::new(BINFMT).join("qemu-aarch64");
        match std::fs::read_to_string(&entry) {
            Ok(t) => {
                let flags = t.lines().find_map(|l| l.strip_prefix("flags: ")).unwrap_or("");
                assert!(
                    flags.contains('F'),
                    "the host's qemu-aarch64 handler lacks the F flag ({flags}); not touching it"
                );
            }
            Err(_) => {
                let line = std::fs::read_to_string(conf).unwrap();
                std::fs::write(Path::new(BINFMT).join("register"), line.trim()).expect("register qemu-aarch64");
                g.registered = true;
            }
        }
        g
    }
}

impl Drop for Binfmt {
    fn drop(&mut self) {
        if self.registered {
            let _ = std::fs::write(Path::new(BINFMT).join("qemu-aarch64"), "-1");
        }
        if self.mounted {
            let _ = Command::new("umount").arg(BINFMT).status();
        }
    }
}

/// Debian's busybox-static for arm64 (scripts/deps.sh downloads the .deb).
fn arm64_busybox_tar(dir: &Path) -> PathBuf {
    let deb = std::fs::read_dir("/var/cache/wharf-deps")
        .ok()
        .and_then(|rd| {
            rd.flatten().map(|e| e.path()).find(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with("busybox-static_") && n.ends_with("_arm64.deb")
            })
        })
        .expect("/var/cache/wharf-deps/busybox-static_*_arm64.deb missing: run scripts/deps.sh");
    let x = dir.join("bb-arm64-deb");
    let st = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x).status().unwrap();
    assert!(st.success());
    let root = dir.join("bb-arm64-rootfs");
    for d in ["bin", "etc", "tmp", "root", "dev", "proc", "sys"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(x.join("bin/busybox"), root.join("bin/busybox")).unwrap();
    for a in ["sh", "echo", "cat", "uname", "ls", "mkdir", "true", "test"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let out = dir.join("bb-arm64.tar");
    tar_dir(&root, &out);
    out
}

fn skopeo_raw(reference: &str) -> (Vec<u8>, Value) {
    let skopeo = require_tool("skopeo");
    let out = Command::new(skopeo).args(["inspect", "--raw", "--tls-verify=false", reference]).output().unwrap();
    assert!(out.status.success(), "skopeo inspect --raw {reference}: {}", String::from_utf8_lossy(&out.stderr));
    let v = serde_json::from_slice(&out.stdout).unwrap();
    (out.stdout, v)
}

fn sha256(b: &[u8]) -> String {
    use ring::digest::{digest, SHA256};
    let d = digest(&SHA256, b);
    format!("sha256:{}", d.as_ref().iter().map(|x| format!("{x:02x}")).collect::<String>())
}

fn blob(reg: &TestRegistry, repo: &str, digest: &str) -> Vec<u8> {
    let out = Command::new(require_tool("curl"))
        .args(["-fsS", &format!("http://{}/v2/{repo}/blobs/{digest}", reg.addr)])
        .output()
        .unwrap();
    assert!(out.status.success(), "GET blob {digest}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A file of an image: its path and content.
type Files = Vec<(String, Vec<u8>)>;

/// Each platform of the pushed index `repo:tag`: (platform, config, files of all layers).
fn platforms(reg: &TestRegistry, repo: &str, tag: &str) -> Vec<(String, Value, Files)> {
    let (_, index) = skopeo_raw(&format!("docker://{}/{repo}:{tag}", reg.addr));
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
    let mut out = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let p = &m["platform"];
        let plat = format!("{}/{}", p["os"].as_str().unwrap(), p["architecture"].as_str().unwrap());
        let (_, man) = skopeo_raw(&format!("docker://{}/{repo}@{}", reg.addr, m["digest"].as_str().unwrap()));
        let cfg: Value = serde_json::from_slice(&blob(reg, repo, man["config"]["digest"].as_str().unwrap())).unwrap();
        let mut files = Vec::new();
        for l in man["layers"].as_array().unwrap() {
            let b = blob(reg, repo, l["digest"].as_str().unwrap());
            // Built layers are gzip; imported ones are plain tars.
            let r: Box<dyn std::io::Read> = if b.starts_with(&[0x1f, 0x8b]) {
                Box::new(flate2::read::GzDecoder::new(&b[..]))
            } else {
                Box::new(&b[..])
            };
            let mut ar = tar::Archive::new(r);
            for e in ar.entries().unwrap() {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().trim_start_matches("./").to_string();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                files.push((name, data));
            }
        }
        out.push((plat, cfg, files));
    }
    out
}

fn file_kind(data: &[u8], dir: &Path) -> String {
    let p = dir.join(format!("probe-{}", sha256(data).trim_start_matches("sha256:")));
    std::fs::write(&p, data).unwrap();
    let out = Command::new(require_tool("file")).arg("-b").arg(&p).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn find<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files.iter().rev().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} in the image")).1
}

fn assert_no_leaks(s: &TestStore) {
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    s.assert_consistent();
}

#[test]
fn cross_compiled_stage_two_platforms_pushed() {
    if !privileged("cross_compiled_stage_two_platforms_pushed") {
        return;
    }
    let s = TestStore::new();
    let reg = TestRegistry::start(Auth::None);
    // The build stage's base: the host's C toolchains (amd64 and aarch64).
    let tc = s.path("toolchain");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("multiplatform/toolchain-rootfs.sh");
    let st = Command::new("bash").arg(&script).arg(&tc).status().unwrap();
    assert!(st.success(), "toolchain-rootfs.sh");
    let tar = s.path("toolchain.tar");
    let st = Command::new("tar").arg("-C").arg(&tc).arg("-cf").arg(&tar).arg(".").status().unwrap();
    assert!(st.success());
    s.ok(["import".as_ref(), tar.as_os_str(), "wharf-test/toolchain:1".as_ref()]);
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.c"), "#include <stdio.h>\nint main(void){puts(\"hello from \" ARCH);return 0;}\n")
        .unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        r#"ARG BUILDPLATFORM
ARG TARGETPLATFORM
FROM --platform=$BUILDPLATFORM wharf-test/toolchain:1 AS build
ARG TARGETARCH
ARG BUILDARCH
ARG TARGETPLATFORM
COPY hello.c /src/
RUN cd /src && case "$TARGETARCH" in amd64) CC=gcc-12;; arm64) CC=aarch64-linux-gnu-gcc-12;; esac \
 && $CC -static -O2 -DARCH="\"$TARGETARCH\"" -o /hello hello.c \
 && echo "$BUILDARCH->$TARGETPLATFORM" > /built-on
FROM scratch
COPY --from=build /hello /built-on /
ENTRYPOINT ["/hello"]
"#,
    )
    .unwrap();
    let name = format!("{}/hello:1", reg.addr);
    let oci = s.path("hello-oci.tar");
    let id = s.ok([
        "build",
        "--progress",
        "plain",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        &name,
        "--push",
        "-o",
        &format!("type=oci,dest={}", oci.display()),
        ctx.to_str().unwrap(),
    ]);
    // The store's tag is the index; the ID printed is the index digest.
    let list: Value = serde_json::from_str(&s.ok(["manifest", "inspect", &name])).unwrap();
    assert_eq!(list["manifests"].as_array().unwrap().len(), 2, "{list}");
    let (raw, _) = skopeo_raw(&format!("docker://{name}"));
    assert_eq!(sha256(&raw), id.trim(), "the pushed index is the built one");
    let got = platforms(&reg, "hello", "1");
    let mut seen: Vec<&str> = got.iter().map(|(p, _, _)| p.as_str()).collect();
    seen.sort();
    assert_eq!(seen, ["linux/amd64", "linux/arm64"]);
    for (plat, cfg, files) in &got {
        let arch = plat.trim_start_matches("linux/");
        assert_eq!(cfg["architecture"], arch, "{plat}: config");
        let kind = file_kind(find(files, "hello"), s.dir.path());
        let want = if arch == "arm64" { "ARM aarch64" } else { "x86-64" };
        assert!(kind.contains("ELF") && kind.contains(want) && kind.contains("statically linked"), "{plat}: {kind}");
        let host = wharf_image::host_arch();
        assert_eq!(String::from_utf8_lossy(find(files, "built-on")).trim(), format!("{host}->{plat}"));
    }
    // The build stage's steps before `ARG TARGETARCH` matters run once for
    // both platforms, even with --no-cache (they ran once per platform).
    let out = s.run([
        "build",
        "--progress",
        "plain",
        "--no-cache",
        "--platform",
        "linux/amd64,linux/arm64",
        ctx.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = String::from_utf8_lossy(&out.stderr);
    let ids: Vec<&str> =
        log.lines().filter(|l| l.contains("] COPY hello.c /src/")).filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(ids.len(), 2, "{log}");
    let cached = ids.iter().filter(|id| log.lines().any(|l| l == format!("{id} CACHED"))).count();
    assert_eq!(cached, 1, "one platform reuses the other's COPY: {log}");
    // -o type=oci wrote the index with both platforms.
    let out = Command::new("tar").arg("-xOf").arg(&oci).arg("index.json").output().unwrap();
    let idx: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(idx["manifests"][0]["digest"], id.trim(), "{idx}");
    // A fresh store pulls and runs the host's platform from the index.
    let s2 = TestStore::new();
    s2.ok(["pull", "-q", &name]);
    assert_eq!(
        s2.ok(["run", "--rm", "--network", "none", &name]).trim(),
        format!("hello from {}", wharf_image::host_arch())
    );
    let s3 = TestStore::new();
    s3.ok(["pull", "-q", "--platform", "linux/arm64", &name]);
    let img: Value = serde_json::from_str(&s3.ok(["inspect", &name])).unwrap();
    assert!(img.to_string().contains("arm64"), "{img}");
    assert_no_leaks(&s);
    assert_no_leaks(&s2);
}

/// Imports the amd64 and arm64 busybox images and lists them as `wharf-test/bb:1`.
fn busybox_list(s: &TestStore) {
    let amd = busybox_tar(s.dir.path());
    let arm = arm64_busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), amd.as_os_str(), "wharf-test/bb-amd64:1".as_ref()]);
    s.ok([
        "import".as_ref(),
        "--platform".as_ref(),
        "linux/arm64".as_ref(),
        arm.as_os_str(),
        "wharf-test/bb-arm64:1".as_ref(),
    ]);
    s.ok(["manifest", "create", "wharf-test/bb:1", "wharf-test/bb-amd64:1", "wharf-test/bb-arm64:1"]);
}

#[test]
fn emulated_run_two_platforms_pushed() {
    if !privileged("emulated_run_two_platforms_pushed") {
        return;
    }
    assert_eq!(wharf_image::host_arch(), "amd64", "this test builds arm64 under emulation on an amd64 host");
    let _binfmt = Binfmt::aarch64();
    let s = TestStore::new();
    let reg = TestRegistry::start(Auth::None);
    busybox_list(&s);
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM wharf-test/bb:1\nARG TARGETARCH\nRUN uname -m > /arch && echo \"built for $TARGETARCH\" > /proof\n",
    )
    .unwrap();
    let name = format!("{}/emu:1", reg.addr);
    s.ok(["build", "-q", "--platform", "linux/amd64,linux/arm64", "-t", &name, "--push", ctx.to_str().unwrap()]);
    let got = platforms(&reg, "emu", "1");
    assert_eq!(got.len(), 2);
    for (plat, cfg, files) in &got {
        let arch = plat.trim_start_matches("linux/");
        assert_eq!(cfg["architecture"], arch);
        let uname = if arch == "arm64" { "aarch64" } else { "x86_64" };
        assert_eq!(String::from_utf8_lossy(find(files, "arch")).trim(), uname, "{plat}: the RUN ran as {arch}");
        assert_eq!(String::from_utf8_lossy(find(files, "proof")).trim(), format!("built for {arch}"));
        let kind = file_kind(find(files, "bin/busybox"), s.dir.path());
        assert!(kind.contains(if arch == "arm64" { "aarch64" } else { "x86-64" }), "{plat}: {kind}");
    }
    // One foreign platform alone: a plain arm64 image, not an index.
    s.ok(["build", "-q", "--platform", "linux/arm64", "-t", "wharf-test/emu-arm64:1", ctx.to_str().unwrap()]);
    let m: Value = serde_json::from_str(&s.ok(["manifest", "inspect", "wharf-test/emu-arm64:1"])).unwrap();
    assert!(m.get("layers").is_some(), "{m}");
    let img: Value = serde_json::from_str(&s.ok(["inspect", "wharf-test/emu-arm64:1"])).unwrap();
    assert!(img.to_string().contains("\"arm64\""), "{img}");
    // FROM an index in a registry, for arm64 only: that platform is pulled,
    // the index kept under the name; the host's image comes when run.
    let bb = format!("{}/bb:multi", reg.addr);
    s.ok(["manifest", "push", "wharf-test/bb:1", &bb]);
    let s2 = TestStore::new();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {bb}\nRUN uname -m > /arch\n")).unwrap();
    s2.ok(["build", "-q", "--platform", "linux/arm64", "-t", "wharf-test/from-reg:1", ctx.to_str().unwrap()]);
    s2.assert_consistent();
    let listed: Value = serde_json::from_str(&s2.ok(["manifest", "inspect", &bb])).unwrap();
    assert_eq!(listed["manifests"].as_array().unwrap().len(), 2, "the index is kept: {listed}");
    assert_eq!(s2.ok(["run", "--rm", "--network", "none", &bb, "uname", "-m"]).trim(), "x86_64");
    assert_eq!(s2.ok(["run", "--rm", "--network", "none", "wharf-test/from-reg:1", "cat", "/arch"]).trim(), "aarch64");
    assert_no_leaks(&s);
    assert_no_leaks(&s2);
}

#[test]
fn manifest_lists_round_trip() {
    if !privileged("manifest_lists_round_trip") {
        return;
    }
    let s = TestStore::new();
    let reg = TestRegistry::start(Auth::None);
    busybox_list(&s);
    let list = format!("{}/bb:list", reg.addr);
    s.ok(["manifest", "create", &list, "wharf-test/bb-amd64:1"]);
    // Creating it again is refused; --amend adds.
    let e = s.fails(["manifest", "create", &list, "wharf-test/bb-arm64:1"]);
    assert!(e.contains("already exists"), "{e}");
    s.ok(["manifest", "add", "--variant", "v8", "--annotation", "org.example/who=arm", &list, "wharf-test/bb-arm64:1"]);
    s.ok(["manifest", "annotate", "--annotation", "org.example/list=yes", &list]);
    s.ok([
        "manifest",
        "annotate",
        "--os",
        "linux",
        "--annotation",
        "org.example/who=amd",
        &list,
        "wharf-test/bb-amd64:1",
    ]);
    let local: Value = serde_json::from_str(&s.ok(["manifest", "inspect", &list])).unwrap();
    let m = local["manifests"].as_array().unwrap();
    assert_eq!(m.len(), 2, "{local}");
    assert_eq!(local["annotations"]["org.example/list"], "yes");
    let arm = m.iter().find(|e| e["platform"]["architecture"] == "arm64").expect("arm64 entry");
    assert_eq!(arm["platform"]["variant"], "v8");
    assert_eq!(arm["annotations"]["org.example/who"], "arm");
    let amd = m.iter().find(|e| e["platform"]["architecture"] == "amd64").expect("amd64 entry");
    assert_eq!(amd["annotations"]["org.example/who"], "amd");
    // An image is not a list.
    let e = s.fails(["manifest", "add", "wharf-test/bb-amd64:1", "wharf-test/bb-arm64:1"]);
    assert!(e.contains("not a manifest list"), "{e}");
    let digest = s.ok(["manifest", "push", "--all", &list]).trim().to_string();
    let (raw, remote) = skopeo_raw(&format!("docker://{list}"));
    assert_eq!(sha256(&raw), digest);
    assert_eq!(remote, local, "skopeo reads back what the store holds");
    for e in m {
        skopeo_raw(&format!("docker://{}/bb@{}", reg.addr, e["digest"].as_str().unwrap()));
    }
    // inspect of a registry reference (not in this store).
    let s2 = TestStore::new();
    let remote2: Value = serde_json::from_str(&s2.ok(["manifest", "inspect", &list])).unwrap();
    assert_eq!(remote2, local);
    s.ok(["manifest", "rm", &list]);
    assert!(s.fails(["inspect", &list]).contains("not found"), "the list left the store");
    s.ok(["inspect", "wharf-test/bb-arm64:1"]);
    let e = s.fails(["manifest", "rm", "wharf-test/bb-amd64:1"]);
    assert!(e.contains("not a manifest list"), "{e}");
    assert_no_leaks(&s);
}

#[test]
fn missing_emulation_is_a_clear_error() {
    if !privileged("missing_emulation_is_a_clear_error") {
        return;
    }
    let _lock = BINFMT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // s390x: no handler here unless the host registered one (then there is nothing to test).
    if Path::new(BINFMT).join("qemu-s390x").exists() {
        eprintln!("SKIPPED missing_emulation_is_a_clear_error: the host has a qemu-s390x handler");
        return;
    }
    let s = TestStore::new();
    let amd = busybox_tar(s.dir.path());
    s.ok([
        "import".as_ref(),
        "--platform".as_ref(),
        "linux/s390x".as_ref(),
        amd.as_os_str(),
        "wharf-test/bb-s390x:1".as_ref(),
    ]);
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM wharf-test/bb-s390x:1\nRUN true\n").unwrap();
    let e = s.fails(["build", "-q", "--platform", "linux/s390x", "-t", "wharf-test/x:1", ctx.to_str().unwrap()]);
    assert!(e.contains("needs QEMU user emulation") && e.contains("qemu-user-static"), "{e}");
    assert!(e.contains("binfmt_misc"), "{e}");
    assert!(s.fails(["inspect", "wharf-test/x:1"]).contains("not found"));
    assert_no_leaks(&s);
}
