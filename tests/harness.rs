//! # Layout
//!
//! Shared harness for wharf's end-to-end tests: locating the built binaries,
//! the root requirement (`WHARF_SKIP_PRIVILEGED=1` skips loudly, never
//! silently), temp stores, busybox root filesystems from Debian's
//! busybox-static, raw tar writing for hostile layers, and leak checks.

#[path = "harness/buildah.rs"]
pub mod buildah;
#[path = "harness/cri.rs"]
pub mod cri;
#[path = "harness/engine.rs"]
pub mod engine;
#[path = "harness/leaks.rs"]
pub mod leaks;
#[path = "harness/proxy.rs"]
pub mod proxy;
#[path = "harness/registry.rs"]
pub mod registry;
#[path = "harness/token.rs"]
pub mod token;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A binary of this workspace, built by `cargo build` before the tests run.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("WHARF_BIN_DIR") {
        return Path::new(&dir).join(name);
    }
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let exe = std::env::current_exe().expect("current exe");
    let p = exe.parent().and_then(Path::parent).expect("target dir").join(name);
    assert!(p.exists(), "{} is not built: run `cargo build --workspace` first (or set WHARF_BIN_DIR)", p.display());
    p
}

/// True when this test may run as root. Without root it panics with a clear
/// message, unless WHARF_SKIP_PRIVILEGED=1 asks to skip (which it says).
pub fn privileged(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("WHARF_SKIP_PRIVILEGED").as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: needs root (WHARF_SKIP_PRIVILEGED=1)");
        return false;
    }
    panic!("{test} needs root (mknod, chown, overlay mounts); run as root or set WHARF_SKIP_PRIVILEGED=1 to skip it");
}

/// Fails clearly when a peer tool the test needs is missing.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: the README's test command installs it (apt-get install {name})");
}

/// A temp image store and a way to run `wharf` against it.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    /// Containers that publish ports (`-p`) go through the CNI portmap
    /// plugin, which leaves host-wide nat chains behind: as root every store
    /// counts as a user of them, and the last one gone removes them (only
    /// if they did not exist before). Last field: dropped after the store's
    /// pods and networks are removed.
    _portmap: Option<cri::PortmapUser>,
}

impl Default for TestStore {
    fn default() -> Self {
        Self::new()
    }
}

impl TestStore {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("wharf-test-").tempdir().expect("tempdir");
        let root = dir.path().join("store");
        let portmap = rustix::process::geteuid().is_root() && Path::new("/usr/lib/cni/portmap").exists();
        TestStore { dir, root, _portmap: portmap.then(cri::PortmapUser::begin) }
    }

    /// A store at ROOT (e.g. an OCI layout another tool wrote), its run
    /// root in DIR.
    pub fn at(dir: tempfile::TempDir, root: PathBuf) -> Self {
        TestStore { dir, root, _portmap: None }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin("wharf"));
        c.arg("--root").arg(&self.root).arg("--run-root").arg(self.dir.path().join("run"));
        // Never the user's ~/.docker: each store has its own docker config dir.
        c.env("DOCKER_CONFIG", self.docker_config());
        c
    }

    pub fn run<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Output {
        self.cmd().args(args).output().expect("spawn wharf")
    }

    /// Runs wharf, asserts success, returns stdout.
    pub fn ok<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> String {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "wharf {:?} failed: {}\n{}",
            args,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs wharf, asserts failure, returns stderr.
    pub fn fails<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> String {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        let out = self.run(&args);
        assert!(!out.status.success(), "wharf {:?} should have failed", args);
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker-config")
    }

    /// Runs wharf with `stdin` fed to it; returns the output.
    pub fn run_stdin<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I, stdin: &[u8]) -> Output {
        use std::process::Stdio;
        let mut child =
            self.cmd().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `wharf system check` passes.
    pub fn assert_consistent(&self) {
        let out = self.ok(["system", "check"]);
        assert!(out.contains("ok:"), "{out}");
    }
}

impl Drop for TestStore {
    /// A store's networks own host resources (a bridge, its iptables rules,
    /// an aardvark-dns): remove them with the store, whatever the test did.
    fn drop(&mut self) {
        // Pods first: a pod's network attachment keeps its network in use.
        let pods: Vec<String> = std::fs::read_dir(self.root.join("pods"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        if !pods.is_empty() {
            let mut args = vec!["pod".to_string(), "rm".to_string(), "-f".to_string()];
            args.extend(pods);
            let _ = self.run(&args);
        }
        let Ok(rd) = std::fs::read_dir(self.root.join("networks")) else { return };
        let names: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(str::to_string))
            .collect();
        if !names.is_empty() {
            let mut args = vec!["network".to_string(), "rm".to_string()];
            args.extend(names);
            let _ = self.run(&args);
        }
    }
}

/// A minimal root filesystem: Debian's static busybox and a few applet links.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.exists(), "/bin/busybox missing: apt-get install busybox-static");
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "tmp", "root", "dev", "proc", "sys"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().expect("busybox --list");
    for a in String::from_utf8_lossy(&list.stdout).lines().filter(|a| !a.is_empty() && *a != "busybox") {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    root
}

/// Tars a directory (its contents at the archive root).
pub fn tar_dir(dir: &Path, out: &Path) {
    let f = std::fs::File::create(out).unwrap();
    let mut b = tar::Builder::new(f);
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap().flush().unwrap();
}

/// A busybox rootfs tar in `dir`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let out = dir.join("busybox.tar");
    if out.exists() {
        return out;
    }
    let root = busybox_rootfs(dir);
    tar_dir(&root, &out);
    out
}

/// Writes raw tar entries, including names `tar::Builder` would refuse.
#[derive(Default)]
pub struct RawTar {
    pub bytes: Vec<u8>,
}

impl RawTar {
    fn header(name: &[u8], kind: tar::EntryType, size: u64, link: &[u8]) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        {
            let g = h.as_gnu_mut().unwrap();
            let n = name.len().min(100);
            g.name[..n].copy_from_slice(&name[..n]);
            let l = link.len().min(100);
            g.linkname[..l].copy_from_slice(&link[..l]);
        }
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        h
    }

    fn push(&mut self, h: &tar::Header, data: &[u8]) {
        self.bytes.extend_from_slice(h.as_bytes());
        self.bytes.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn entry(&mut self, name: &str, kind: tar::EntryType, data: &[u8], link: &str) -> &mut Self {
        let h = Self::header(name.as_bytes(), kind, data.len() as u64, link.as_bytes());
        self.push(&h, data);
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, tar::EntryType::Regular, data, "")
    }
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Directory, b"", "")
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Symlink, b"", target)
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Link, b"", target)
    }

    /// A GNU long-name entry ('L') carrying `name`, then the file.
    pub fn gnu_long_file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut long = name.as_bytes().to_vec();
        long.push(0);
        let h = Self::header(b"././@LongLink", tar::EntryType::GNULongName, long.len() as u64, b"");
        self.push(&h, &long);
        let h = Self::header(b"placeholder", tar::EntryType::Regular, data.len() as u64, b"");
        self.push(&h, data);
        self
    }

    /// A PAX header with `records` (e.g. `path`, `linkpath`, `SCHILY.xattr.user.x`), then the entry.
    pub fn pax_entry(&mut self, records: &[(&str, &[u8])], kind: tar::EntryType, data: &[u8]) -> &mut Self {
        let mut recs = Vec::new();
        for (k, v) in records {
            let body_len = 1 + k.len() + 1 + v.len() + 1; // " k=v\n"
            let mut len = body_len + 1;
            while len.to_string().len() + body_len != len {
                len += 1;
            }
            recs.extend_from_slice(format!("{len} {k}=").as_bytes());
            recs.extend_from_slice(v);
            recs.push(b'\n');
        }
        let h = Self::header(b"PaxHeaders/x", tar::EntryType::XHeader, recs.len() as u64, b"");
        self.push(&h, &recs);
        let h = Self::header(b"placeholder", kind, data.len() as u64, b"short");
        self.push(&h, data);
        self
    }

    /// Adds a ready-made header (for modes, owners, devices) and its data.
    pub fn with_header(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        data: &[u8],
        edit: impl FnOnce(&mut tar::Header),
    ) -> &mut Self {
        let mut h = Self::header(name.as_bytes(), kind, data.len() as u64, b"");
        edit(&mut h);
        h.set_cksum();
        self.push(&h, data);
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        self.bytes.extend(std::iter::repeat_n(0u8, 1024));
        std::mem::take(&mut self.bytes)
    }
}

/// Mount points under `dir` (leak check).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&d))
        .collect()
}

/// Every path under `dir`, relative, sorted, with file contents: a snapshot
/// to compare before and after (nothing outside may change).
pub fn tree_fingerprint(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(base: &Path, p: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(p) else { return };
        for e in rd.flatten() {
            let path = e.path();
            let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let md = std::fs::symlink_metadata(&path).unwrap();
            if md.is_dir() {
                out.push((rel + "/", Vec::new()));
                walk(base, &path, out);
            } else if md.file_type().is_symlink() {
                out.push((rel, std::fs::read_link(&path).unwrap().to_string_lossy().as_bytes().to_vec()));
            } else {
                out.push((rel, std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `debootstrap --variant=minbase bookworm` as a tar in `tmp` (a test's
/// `CARGO_TARGET_TMPDIR`), made once (it takes minutes) and shared by the
/// tests that need a real Debian base.
pub fn debian_base(tmp: &Path) -> PathBuf {
    let out = tmp.join("debian-bookworm-minbase.tar");
    if out.exists() {
        return out;
    }
    let work = tempfile::Builder::new().prefix("wharf-debootstrap-").tempdir_in(tmp).unwrap();
    let root = work.path().join("rootfs");
    let st = Command::new(require_tool("debootstrap"))
        .args(["--variant=minbase", "bookworm"])
        .arg(&root)
        .arg("http://deb.debian.org/debian")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "debootstrap failed");
    let tar = work.path().join("base.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["--numeric-owner", "--xattrs", "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of the debootstrap rootfs failed");
    std::fs::rename(&tar, &out).unwrap();
    out
}
