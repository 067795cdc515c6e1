//! Spec helpers for callers that build bundles: what `runc spec` writes
//! ([`runc_spec`]), the default spec of a Docker-like run ([`default_spec`]:
//! Docker's capabilities, seccomp profile, masked and read-only paths) and
//! merging an OCI image config into it with Docker's rules.

use std::io::Read;
use std::path::Path;

use oci_spec::image::Config as ImageConfig;
use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

pub const DEFAULT_PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Paths Docker hides from containers.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Docker's default capability set.
pub const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn runc_json() -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [DEFAULT_PATH_ENV, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "wharf",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS
        }
    })
}

/// The spec `wharf-runtime spec` writes: runc's, with its three capabilities.
pub fn runc_spec() -> Spec {
    serde_json::from_value(runc_json()).expect("the built-in runc spec is valid")
}

/// The base of a Docker-like container: runc's spec with Docker's default
/// capabilities (bounding, effective, permitted) and seccomp profile, and
/// Docker's `noNewPrivileges: false`, so setuid and file-capability
/// binaries in images (su, ping) work as under `docker run`.
pub fn default_spec() -> Spec {
    let mut v = runc_json();
    v["process"]["noNewPrivileges"] = serde_json::json!(false);
    v["process"]["capabilities"] =
        serde_json::json!({"bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS});
    let caps: Vec<_> = DOCKER_CAPS.iter().filter_map(|c| crate::caps::parse(c).ok()).collect();
    v["linux"]["seccomp"] = serde_json::to_value(docker_seccomp(&caps)).expect("seccomp profile serializes");
    serde_json::from_value(v).expect("the built-in default spec is valid")
}

/// Docker's default seccomp profile for a container whose bounding set is
/// `caps`: call again after changing the capabilities (`--cap-add`).
pub fn docker_seccomp(caps: &[oci_spec::runtime::Capability]) -> oci_spec::runtime::LinuxSeccomp {
    crate::seccomp::docker_default::profile(caps)
}

/// `spec --rootless`: a user namespace mapping `uid`/`gid` to root, no
/// network namespace, no cgroup limits, /sys bound from the host.
pub fn rootless_spec(uid: u32, gid: u32) -> Spec {
    let mut v = runc_json();
    let linux = &mut v["linux"];
    linux["resources"] = serde_json::Value::Null;
    linux["namespaces"] = serde_json::json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}
    ]);
    linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    let mounts = v["mounts"].as_array_mut().expect("mounts is an array");
    mounts.retain(|m| m["destination"] != "/sys/fs/cgroup" && m["destination"] != "/sys");
    mounts.push(serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys",
        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}));
    for m in mounts.iter_mut().filter(|m| m["destination"] == "/dev/pts") {
        m["options"] = serde_json::json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]);
    }
    serde_json::from_value(v).expect("the built-in rootless spec is valid")
}

/// What a `docker run`-like caller overrides on top of the image config.
#[derive(Debug, Clone, Default)]
pub struct ImageOverrides {
    /// `--entrypoint`: replaces the image's and drops the image's Cmd.
    pub entrypoint: Option<Vec<String>>,
    /// Arguments after the image name: replace the image's Cmd.
    pub cmd: Option<Vec<String>>,
    /// `-u`: `user[:group]`, names or numbers.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-e KEY=VALUE`, applied after the image's Env.
    pub env: Vec<String>,
}

/// Docker's rule for the process args.
pub fn command(img: Option<&ImageConfig>, o: &ImageOverrides) -> Result<Vec<String>> {
    let (ep, cmd) = match &o.entrypoint {
        Some(ep) => (ep.clone(), o.cmd.clone().unwrap_or_default()),
        None => (
            img.and_then(|c| c.entrypoint().clone()).unwrap_or_default(),
            o.cmd.clone().or_else(|| img.and_then(|c| c.cmd().clone())).unwrap_or_default(),
        ),
    };
    let args: Vec<String> = ep.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::InvalidArgument("no command specified: the image has no Entrypoint or Cmd".into()));
    }
    Ok(args)
}

/// Sets `KEY=VALUE` entries; a later key replaces an earlier one.
pub fn merge_env(base: &mut Vec<String>, extra: &[String]) {
    for e in extra {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        base.retain(|b| b.split_once('=').map_or(b.as_str(), |(k, _)| k) != key);
        base.push(e.clone());
    }
}

/// Merges an image config (and overrides) into `spec`, resolving user names
/// from the rootfs's /etc/passwd and /etc/group.
pub fn apply_image_config(spec: &mut Spec, img: Option<&ImageConfig>, rootfs: &Path, o: &ImageOverrides) -> Result<()> {
    let mut process = spec.process().clone().unwrap_or_default();
    let mut env: Vec<String> = img.and_then(|c| c.env().clone()).unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH_ENV.to_string());
    }
    merge_env(&mut env, &o.env);
    process.set_env(Some(env));
    process.set_args(Some(command(img, o)?));
    let wd = o.workdir.clone().or_else(|| img.and_then(|c| c.working_dir().clone())).filter(|w| !w.is_empty());
    process.set_cwd(wd.unwrap_or_else(|| "/".into()).into());
    let user = o.user.clone().or_else(|| img.and_then(|c| c.user().clone())).filter(|u| !u.is_empty());
    if let Some(u) = user {
        let (uid, gid, groups) = resolve_user(rootfs, &u)?;
        let pu = process.user_mut();
        pu.set_uid(uid);
        pu.set_gid(gid);
        pu.set_additional_gids((!groups.is_empty()).then_some(groups));
    }
    spec.set_process(Some(process));
    if let Some(sig) = img.and_then(|c| c.stop_signal().clone()) {
        let mut ann = spec.annotations().clone().unwrap_or_default();
        ann.insert("org.opencontainers.image.stopSignal".into(), sig);
        spec.set_annotations(Some(ann));
    }
    Ok(())
}

/// The image's StopSignal, default SIGTERM.
pub fn stop_signal(img: Option<&ImageConfig>) -> String {
    img.and_then(|c| c.stop_signal().clone()).unwrap_or_else(|| "SIGTERM".into())
}

/// Reads a file of the rootfs with symlinks resolved inside it.
fn read_in_root(rootfs: &Path, p: &str) -> Option<String> {
    let root = crate::rootfs::path::RootDir::open(rootfs).ok()?;
    let fd = root.resolve(Path::new(p)).ok()?;
    let mut s = String::new();
    std::fs::File::open(crate::sys::fd_path(&fd)).ok()?.read_to_string(&mut s).ok()?;
    Some(s)
}

/// Resolves `user[:group]` (names or ids) → (uid, gid, supplementary gids).
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<(u32, u32, Vec<u32>)> {
    let passwd = read_in_root(rootfs, "/etc/passwd").unwrap_or_default();
    let group = read_in_root(rootfs, "/etc/group").unwrap_or_default();
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let pw = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| {
        f.len() >= 4 && (f[0] == u || u.parse::<u32>().ok() == f[2].parse().ok() && u.parse::<u32>().is_ok())
    });
    let uid: u32 = match (&pw, u.parse::<u32>()) {
        (_, Ok(n)) => n,
        (Some(f), _) => f[2].parse().map_err(|_| Error::InvalidArgument(format!("bad /etc/passwd entry for {u}")))?,
        (None, _) => {
            return Err(Error::InvalidArgument(format!("unable to find user {u}: no matching entries in passwd file")))
        }
    };
    let gid: u32 = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("unable to find group {g}: no matching entries in group file"))
                })?,
        },
        None => pw.as_ref().and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    let name = pw.as_ref().map(|f| f[0]).unwrap_or("");
    let groups: Vec<u32> = if g.is_none() && !name.is_empty() {
        group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .filter(|&x| x != gid)
            .collect()
    } else {
        vec![]
    };
    Ok((uid, gid, groups))
}

/// The namespace a sysctl belongs to; anything else would change the host.
pub fn sysctl_namespace(key: &str) -> Option<oci_spec::runtime::LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if key.starts_with("net.") {
        Some(oci_spec::runtime::LinuxNamespaceType::Network)
    } else if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(oci_spec::runtime::LinuxNamespaceType::Ipc)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(oci_spec::runtime::LinuxNamespaceType::Uts)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_and_has_docker_paths() {
        let s = default_spec();
        let l = s.linux().as_ref().unwrap();
        assert!(l.seccomp().is_some());
        let caps = s.process().as_ref().unwrap().capabilities().clone().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
        assert!(caps.ambient().is_none());
        let r = runc_spec();
        assert_eq!(
            r.process().as_ref().unwrap().capabilities().as_ref().unwrap().bounding().as_ref().unwrap().len(),
            3
        );
        assert!(r.linux().as_ref().unwrap().seccomp().is_none());
        assert!(l.masked_paths().as_ref().unwrap().contains(&"/proc/kcore".to_string()));
        assert_eq!(s.mounts().as_ref().unwrap().len(), 7);
        let r = rootless_spec(1000, 1000);
        assert!(r.linux().as_ref().unwrap().uid_mappings().is_some());
    }

    #[test]
    fn docker_command_rules() {
        let img: ImageConfig = serde_json::from_str(r#"{"Entrypoint":["/ep"],"Cmd":["a"]}"#).unwrap();
        let o = ImageOverrides::default();
        assert_eq!(command(Some(&img), &o).unwrap(), vec!["/ep", "a"]);
        let o = ImageOverrides { cmd: Some(vec!["b".into()]), ..Default::default() };
        assert_eq!(command(Some(&img), &o).unwrap(), vec!["/ep", "b"]);
        let o = ImageOverrides { entrypoint: Some(vec!["/x".into()]), ..Default::default() };
        assert_eq!(command(Some(&img), &o).unwrap(), vec!["/x"]);
        assert!(command(None, &ImageOverrides::default()).is_err());
    }

    #[test]
    fn resolves_users_from_rootfs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n")
            .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nbob:x:1000:\nwheel:x:10:bob\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_user(d.path(), "bob").unwrap(), (1000, 1000, vec![10]));
        assert_eq!(resolve_user(d.path(), "bob:staff").unwrap(), (1000, 50, vec![]));
        assert_eq!(resolve_user(d.path(), "4242").unwrap(), (4242, 0, vec![]));
        assert_eq!(resolve_user(d.path(), "0:10").unwrap(), (0, 10, vec![]));
        assert!(resolve_user(d.path(), "nobody").is_err());
        let mut env = vec!["PATH=/bin".to_string(), "A=1".into()];
        merge_env(&mut env, &["A=2".into()]);
        assert_eq!(env, vec!["PATH=/bin".to_string(), "A=2".into()]);
    }
}
