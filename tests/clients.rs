//! The clients users already run drive wharf-runtime in place of runc:
//! podman (`--runtime`) and containerd's runc shim (`BinaryName`, here
//! through `ctr --runc-binary`). Each runs with its own config, storage,
//! state and socket in a temp dir, never the host's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use wharf_tests::{bin, busybox_tar, mounts_under, privileged, require_tool, TestStore};

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A store holding a busybox image named `bb`.
fn store() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "-c".as_ref(), "CMD [\"sh\"]".as_ref(), "bb".as_ref()]);
    s
}

struct Podman {
    dir: PathBuf,
    /// Entries of /sys/fs/cgroup before podman ran.
    cgroup_entries: Vec<PathBuf>,
}

fn cgroup_entries() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten().map(|e| e.path()).collect()
}

impl Podman {
    fn new(dir: &Path) -> Self {
        let runtime = bin("wharf-runtime");
        // podman's default ulimits need CAP_SYS_RESOURCE, which these machines lack.
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\nevents_logfile_path = \"{}/events.log\"\nruntime = \"wharf\"\n[engine.runtimes]\nwharf = [\"{}\"]\n",
            dir.display(),
            runtime.display()
        );
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("containers.conf"), conf).unwrap();
        std::fs::write(dir.join("registries.conf"), "unqualified-search-registries = []\n").unwrap();
        Podman { dir: dir.to_path_buf(), cgroup_entries: cgroup_entries() }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(require_tool("podman"));
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", self.dir.join("registries.conf"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--storage-driver", "vfs"]);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(self.cmd().args(args).output().unwrap(), &format!("podman {args:?}"))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd().args(["rm", "-af", "-t", "0"]).output();
        // podman's cgroupfs manager leaves libpod_parent/conmon behind, empty:
        // rmdir removes only empty ones, so a live podman's stay.
        use std::os::unix::fs::MetadataExt;
        let tmpfs_dev = std::fs::metadata("/sys/fs/cgroup").map(|m| m.dev()).ok();
        for ctrl in cgroup_entries() {
            let parent = ctrl.join("libpod_parent");
            let _ = std::fs::remove_dir(parent.join("conmon"));
            let _ = std::fs::remove_dir(&parent);
            // On a hybrid host podman also mkdirs a "hugetlb" hierarchy that
            // is no mount, just a directory on /sys/fs/cgroup's tmpfs, and
            // writes a plain "tasks" file in it: remove what it made there.
            let plain = std::fs::metadata(&ctrl).map(|m| Some(m.dev()) == tmpfs_dev).unwrap_or(false);
            if plain && !self.cgroup_entries.contains(&ctrl) {
                let _ = std::fs::remove_dir_all(&ctrl);
            }
        }
    }
}

#[test]
fn podman_runs_containers_with_wharf_runtime() {
    if !privileged("podman_runs_containers_with_wharf_runtime") {
        return;
    }
    let s = store();
    let archive = s.path("bb.tar");
    s.ok([
        "save".as_ref(),
        "--format".as_ref(),
        "docker-archive".as_ref(),
        "-o".as_ref(),
        archive.as_os_str(),
        "bb".as_ref(),
    ]);
    let p = Podman::new(&s.path("podman"));
    p.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    let rt = bin("wharf-runtime");
    let rt = rt.to_str().unwrap();
    let image = "localhost/bb:latest";
    let out = p.ok(&["run", "--rm", "--pull=never", "--runtime", rt, "--network", "none", image, "echo", "hi"]);
    assert_eq!(out.trim(), "hi");
    p.ok(&["run", "-d", "--pull=never", "--name", "c1", "--runtime", rt, "--network", "none", image, "sleep", "300"]);
    assert_eq!(p.ok(&["exec", "c1", "echo", "from-exec"]).trim(), "from-exec");
    p.ok(&["stop", "-t", "1", "c1"]);
    p.ok(&["rm", "c1"]);
    assert!(p.ok(&["ps", "-aq"]).trim().is_empty());
    drop(p);
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    let left: Vec<_> = std::fs::read_dir("/sys/fs/cgroup/memory/libpod_parent")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "podman cgroups left: {left:?}");
}

struct Containerd {
    dir: PathBuf,
    child: Child,
}

impl Containerd {
    fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let conf = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n[debug]\n  address = \"\"\n",
            d = dir.display()
        );
        std::fs::write(dir.join("config.toml"), conf).unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new(require_tool("containerd"))
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stderr(log)
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while !dir.join("c.sock").exists() {
            assert!(t0.elapsed().as_secs() < 20, "containerd did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Containerd { dir: dir.to_path_buf(), child }
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new(require_tool("ctr"))
            .arg("--address")
            .arg(self.dir.join("c.sock"))
            .args(["-n", "wharftest"])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for t in ["t1", "t2"] {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", t]);
            let _ = self.ctr(&["task", "delete", "-f", t]);
            let _ = self.ctr(&["container", "delete", t]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn containerd_runc_shim_runs_wharf_runtime() {
    if !privileged("containerd_runc_shim_runs_wharf_runtime") {
        return;
    }
    let s = store();
    let archive = s.path("bb-oci.tar");
    s.ok(["save".as_ref(), "-o".as_ref(), archive.as_os_str(), "bb".as_ref()]);
    let c = Containerd::start(&s.path("containerd"));
    ok(c.ctr(&["images", "import", archive.to_str().unwrap()]), "ctr images import");
    let rt = bin("wharf-runtime");
    let rt = rt.to_str().unwrap();
    let image = "docker.io/library/bb:latest";
    let out = ok(c.ctr(&["run", "--rm", "--runc-binary", rt, image, "t1", "echo", "hi-from-containerd"]), "ctr run");
    assert_eq!(out.trim(), "hi-from-containerd");
    ok(c.ctr(&["run", "-d", "--runc-binary", rt, image, "t2", "sleep", "300"]), "ctr run -d");
    let out = ok(
        c.ctr(&["task", "exec", "--exec-id", "e1", "t2", "sh", "-c", "echo exec-ok; cat /proc/1/cmdline"]),
        "ctr task exec",
    );
    assert!(out.starts_with("exec-ok") && out.contains("sleep"), "{out}");
    ok(c.ctr(&["task", "kill", "-s", "SIGKILL", "t2"]), "ctr task kill");
    let t0 = std::time::Instant::now();
    while !String::from_utf8_lossy(&c.ctr(&["task", "ls"]).stdout).contains("STOPPED") && t0.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ok(c.ctr(&["task", "delete", "t2"]), "ctr task delete");
    ok(c.ctr(&["container", "delete", "t2"]), "ctr container delete");
    assert!(String::from_utf8_lossy(&c.ctr(&["task", "ls"]).stdout).lines().count() <= 1, "tasks left");
    drop(c);
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
}
