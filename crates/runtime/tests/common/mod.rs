//! Shared test harness: busybox bundles in temp dirs, the built binary with
//! a private `--root`, and leak checks (mounts, cgroups, processes).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_wharf-runtime");

/// True if the test may run; panics (fails) without root unless
/// WHARF_SKIP_PRIVILEGED=1, in which case it prints why it skips.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("WHARF_SKIP_PRIVILEGED").as_deref() == Ok("1") {
        skipped(test, "needs root (WHARF_SKIP_PRIVILEGED=1)");
        return false;
    }
    panic!("{test} needs root: run as root, or set WHARF_SKIP_PRIVILEGED=1 to skip privileged tests");
}

/// Says a test is skipped, on the real stderr: libtest hides the captured
/// output of passing tests, and a skip must never be silent.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("SKIPPED {test}: {why}\n").as_bytes());
}

/// A busybox rootfs shared by all tests (read-only use only). It lives in
/// cargo's per-target temp dir, built once and reused, so nothing is left in
/// /tmp (a static TempDir would never be dropped).
pub fn shared_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wharf-runtime-busybox-rootfs");
        if !p.join("bin/sh").exists() {
            let tmp = p.with_extension(format!("tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            make_rootfs(&tmp);
            // Another test binary may have won the race: then use its copy.
            if std::fs::rename(&tmp, &p).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        p
    })
}

/// Writes a minimal busybox rootfs at `p`.
pub fn make_rootfs(p: &Path) {
    for d in ["bin", "proc", "sys", "dev", "etc", "root", "tmp"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", p.join("bin/busybox"))
        .expect("tests need a static /bin/busybox (apt-get install busybox-static)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", p.join("bin").join(applet));
        }
    }
    std::fs::write(p.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/tmp:/bin/sh\n").unwrap();
    std::fs::write(p.join("etc/group"), "root:x:0:\ntty:x:5:\nwheel:x:10:bob\nbob:x:1000:\n").unwrap();
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test's world: temp dir with state root, bundles; checks leaks on drop.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    ids: Vec<String>,
    name: String,
}

impl Lab {
    pub fn new(name: &str) -> Lab {
        let dir = tempfile::Builder::new().prefix(&format!("wharf-rt-{name}-")).tempdir().unwrap();
        let root = dir.path().join("state");
        Lab { dir, root, ids: vec![], name: name.to_string() }
    }

    /// A unique container id, remembered for the leak check.
    pub fn id(&mut self, what: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("wt{}-{}-{}", std::process::id(), n, what);
        self.ids.push(id.clone());
        id
    }

    /// The default config (our `spec` output) for non-interactive use.
    pub fn config(&self, args: &[&str]) -> Value {
        let mut v = serde_json::to_value(wharf_runtime::spec::default_spec()).unwrap();
        v["process"]["terminal"] = json!(false);
        v["process"]["args"] = json!(args);
        v["root"]["path"] = json!(shared_rootfs());
        v
    }

    /// Writes `config` into a new bundle dir and returns its path.
    pub fn bundle(&self, name: &str, config: &Value) -> PathBuf {
        let b = self.dir.path().join(format!("bundle-{name}"));
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(config).unwrap()).unwrap();
        b
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.root);
        c.stdin(Stdio::null());
        c
    }

    /// Runs the runtime with `args`, capturing output through files: a
    /// detached container inherits them, so pipes would never reach EOF.
    pub fn rt(&self, args: &[&str]) -> Output {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let (o, e) = (self.dir.path().join(format!("out-{n}")), self.dir.path().join(format!("err-{n}")));
        let status = self
            .cmd()
            .args(args)
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output { status, stdout: std::fs::read(&o).unwrap(), stderr: std::fs::read(&e).unwrap() }
    }

    /// `run` of a config; returns (exit code, stdout, stderr).
    pub fn run(&mut self, name: &str, config: &Value) -> (i32, String, String) {
        let id = self.id(name);
        let b = self.bundle(name, config);
        let out = self.rt(&["run", "--bundle", b.to_str().unwrap(), &id]);
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.rt(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Panics if anything of this test's containers is left on the host.
    pub fn assert_clean(&self) {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let d = self.dir.path().to_str().unwrap();
        let leaked: Vec<&str> = mi.lines().filter(|l| l.contains(d)).collect();
        assert!(leaked.is_empty(), "{}: mounts leaked: {leaked:#?}", self.name);
        for id in &self.ids {
            let cgs = cgroup_dirs_named(id);
            assert!(cgs.is_empty(), "{}: cgroups leaked: {cgs:?}", self.name);
            assert!(!self.root.join(id).exists(), "{}: state dir of {id} leaked", self.name);
            assert!(processes_with(id).is_empty(), "{}: processes of {id} leaked", self.name);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Best effort: never leave a container behind even when a test failed.
        for id in self.ids.clone() {
            let _ = self.cmd().args(["delete", "--force", &id]).stderr(Stdio::null()).output();
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every cgroup directory named `id` under any hierarchy.
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    let mut out = vec![];
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else { return out };
    for e in rd.flatten() {
        let p = e.path().join(id);
        if p.exists() {
            out.push(p);
        }
    }
    if Path::new("/sys/fs/cgroup").join(id).exists() {
        out.push(Path::new("/sys/fs/cgroup").join(id));
    }
    out
}

/// Pids whose cgroup path mentions `id` (container processes).
pub fn processes_with(id: &str) -> Vec<i32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if let Ok(cg) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
            if cg.lines().any(|l| l.ends_with(&format!("/{id}"))) {
                out.push(pid);
            }
        }
    }
    out
}

/// Host namespace inode link, e.g. "net:[4026531840]".
pub fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap().to_string_lossy().into_owned()
}
