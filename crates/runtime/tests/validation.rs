//! Behaviours the OCI runtime validation suites check and runc or crun
//! pass: no or a joined mount namespace, rootfsPropagation "unbindable",
//! labels without SELinux, capset failures at create, runc's mount options.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

/// `run` of `cfg` with the runtime started under `prefix` (unshare, setpriv).
fn run_under(lab: &mut Lab, prefix: &[&str], name: &str, cfg: &Value) -> (i32, String, String) {
    let id = lab.id(name);
    let b = lab.bundle(name, cfg);
    let out = Command::new(prefix[0])
        .args(&prefix[1..])
        .arg(BIN)
        .arg("--root")
        .arg(&lab.root)
        .args(["run", "-b", b.to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn runs_without_a_mount_namespace_chrooted_into_the_rootfs() {
    if !privileged("runs_without_a_mount_namespace_chrooted_into_the_rootfs") {
        return;
    }
    let mut lab = Lab::new("nomntns");
    let mut cfg = lab.config(&["cat", "/etc/passwd"]);
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "uts"}]);
    cfg["linux"]["maskedPaths"] = json!([]);
    cfg["linux"]["readonlyPaths"] = json!([]);
    cfg["root"]["readonly"] = json!(false);
    // Was refused ("must include a mount namespace").
    let (code, out, err) = lab.run("c", &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bob:x:1000"), "not the rootfs's /etc/passwd: {out}");
    // exec joins it there too, not in the host's root.
    cfg["process"]["args"] = json!(["sleep", "1000"]);
    let id = lab.id("d");
    let b = lab.bundle("d", &cfg);
    assert!(lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &id]).status.success());
    let out = lab.rt(&["exec", &id, "cat", "/etc/passwd"]);
    assert!(text(&out.stdout).contains("bob:x:1000"), "exec outside the rootfs: {}", text(&out.stderr));
    assert!(lab.rt(&["delete", "--force", &id]).status.success());
    cfg["process"]["args"] = json!(["true"]);
    // What needs a mount namespace is refused, before anything is made.
    cfg["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    let (code, _, err) = lab.run("masked", &cfg);
    assert_eq!(code, 1);
    assert!(err.contains("need a mount namespace"), "{err}");
    lab.assert_clean();
}

#[test]
fn joined_mount_namespace_still_pivots_into_the_rootfs() {
    if !privileged("joined_mount_namespace_still_pivots_into_the_rootfs") {
        return;
    }
    let mut lab = Lab::new("joinmnt");
    let mut holder = Command::new("unshare").args(["-m", "--propagation", "private", "sleep", "100"]).spawn().unwrap();
    let ns = format!("/proc/{}/ns/mnt", holder.id());
    for _ in 0..200 {
        if std::fs::read_link(&ns).is_ok_and(|l| l.to_string_lossy() != host_ns("mnt")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut cfg = lab.config(&["cat", "/etc/passwd"]);
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount", "path": ns}]);
    cfg["hostname"] = Value::Null;
    // Was the joined namespace's own root (the host's /etc/passwd).
    let (code, out, err) = lab.run("c", &cfg);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bob:x:1000"), "not the rootfs's /etc/passwd: {out}");
    lab.assert_clean();
}

#[test]
fn rootfs_propagation_unbindable_works() {
    if !privileged("rootfs_propagation_unbindable_works") {
        return;
    }
    let mut lab = Lab::new("unbindable");
    let mut cfg = lab.config(&["awk", "$5 == \"/\"", "/proc/self/mountinfo"]);
    cfg["linux"]["rootfsPropagation"] = json!("unbindable");
    // In a private mount namespace "/" is not shared, so nothing resets the
    // propagation before the rootfs bind: an unbindable "/" made it EINVAL.
    let (code, out, err) = run_under(&mut lab, &["unshare", "-m", "--propagation", "private"], "c", &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("unbindable"), "{out}");
    lab.assert_clean();
}

#[test]
fn mount_label_is_ignored_without_selinux() {
    if !privileged("mount_label_is_ignored_without_selinux") {
        return;
    }
    if Path::new("/sys/fs/selinux/enforce").exists() {
        skipped("mount_label_is_ignored_without_selinux", "SELinux is enabled on this host");
        return;
    }
    let mut lab = Lab::new("mountlabel");
    let mut cfg = lab.config(&["true"]);
    cfg["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2");
    // Was refused as unsupported.
    let (code, _, err) = lab.run("c", &cfg);
    assert_eq!(code, 0, "{err}");
    lab.assert_clean();
}

#[test]
fn capset_failure_fails_create() {
    if !privileged("capset_failure_fails_create") {
        return;
    }
    let mut lab = Lab::new("capset");
    let mut cfg = lab.config(&["true"]);
    for set in ["bounding", "permitted", "effective"] {
        cfg["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_SYS_TIME"));
    }
    let id = lab.id("c");
    let b = lab.bundle("c", &cfg);
    // The runtime's own bounding set lacks CAP_SYS_TIME, so capset fails.
    // Output through a file: a created init would hold a pipe open.
    let err = lab.dir.path().join("create-err");
    let status = Command::new("setpriv")
        .args(["--bounding-set", "-sys_time", BIN, "--root"])
        .arg(&lab.root)
        .args(["create", "-b", b.to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(&err).unwrap();
    // Was: create and start succeeded and the init died silently.
    assert_eq!(status.code(), Some(1), "create must fail");
    assert!(err.contains("capset") && err.contains("bounding set"), "{err}");
    lab.assert_clean();
}

#[test]
fn runc_mount_options_are_advertised_and_work() {
    if !privileged("runc_mount_options_are_advertised_and_work") {
        return;
    }
    let mut lab = Lab::new("mountopts");
    let runc = Command::new("runc").arg("features").output().expect("runc is not installed (apt-get install runc)");
    let runc: Value = serde_json::from_slice(&runc.stdout).unwrap();
    let ours: Value = serde_json::from_slice(&lab.rt(&["features"]).stdout).unwrap();
    let ours: Vec<&str> = ours["mountOptions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    // Was missing rro, nosymfollow, lazytime and the rest.
    for o in runc["mountOptions"].as_array().unwrap() {
        let o = o.as_str().unwrap();
        assert!(ours.contains(&o) || o == "idmap" || o == "ridmap", "features lacks {o}");
    }
    // A bind with a submount, made read-only recursively (mount_setattr).
    let src = lab.dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    assert!(Command::new("mount").args(["-t", "tmpfs", "sub"]).arg(src.join("sub")).status().unwrap().success());
    let mut cfg = lab.config(&[
        "sh",
        "-c",
        "touch /m/x 2>/dev/null && echo top-rw; touch /m/sub/x 2>/dev/null && echo sub-rw; \
         awk '$5 == \"/n\" {print $6}' /proc/self/mountinfo",
    ]);
    let mounts = cfg["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/m", "type": "bind", "source": src, "options": ["rbind", "rro"]}));
    mounts.push(json!({"destination": "/n", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosymfollow", "lazytime", "rnosuid", "rnodev"]}));
    let (code, out, err) = lab.run("c", &cfg);
    let _ = Command::new("umount").arg(src.join("sub")).status();
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("-rw"), "rro left a writable mount: {out}");
    let n = out.lines().last().unwrap_or_default();
    for f in ["nosuid", "nodev", "nosymfollow"] {
        assert!(n.split(',').any(|x| x == f), "/n lacks {f}: {out}");
    }
    lab.assert_clean();
}
