//! Hostile or broken bundles: clear errors, nothing left behind.

mod common;

use common::*;
use serde_json::json;

#[test]
fn mount_destination_symlink_to_root_is_refused() {
    if !privileged("mount_destination_symlink_to_root_is_refused") {
        return;
    }
    let mut lab = Lab::new("symlink");
    let rootfs = lab.dir.path().join("rootfs");
    make_rootfs(&rootfs);
    std::os::unix::fs::symlink("/", rootfs.join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../../../etc", rootfs.join("escape")).unwrap();
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut cfg = lab.config(&["true"]);
    cfg["root"]["path"] = json!(rootfs);
    let mut m = cfg["mounts"].as_array().unwrap().clone();
    m.push(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
    cfg["mounts"] = json!(m.clone());
    let (code, _, err) = lab.run("evil", &cfg);
    assert_eq!(code, 1);
    assert!(err.contains("/evil") && err.contains("root directory"), "{err}");
    // A symlink climbing out resolves inside the rootfs: the mount lands on <rootfs>/etc.
    m.pop();
    m.push(json!({"destination": "/escape/shadow", "type": "tmpfs", "source": "tmpfs"}));
    cfg["mounts"] = json!(m);
    cfg["process"]["args"] = json!(["sh", "-c", "grep -c ' /etc/shadow ' /proc/self/mountinfo"]);
    let (code, out, err) = lab.run("escape", &cfg);
    assert_eq!((code, out.trim()), (0, "1"), "{err}");
    assert!(!std::path::Path::new("/etc/shadow").is_dir(), "host /etc/shadow was touched");
    assert!(rootfs.join("etc/shadow").is_dir(), "mount point made inside the rootfs");
    assert_eq!(before.lines().count(), std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().count());
    lab.assert_clean();
}

#[test]
fn missing_rootfs_is_a_clear_error() {
    if !privileged("missing_rootfs_is_a_clear_error") {
        return;
    }
    let mut lab = Lab::new("norootfs");
    let mut cfg = lab.config(&["true"]);
    cfg["root"]["path"] = json!("does-not-exist");
    let (code, _, err) = lab.run("n", &cfg);
    assert_eq!(code, 1);
    assert!(err.contains("rootfs") && err.contains("does-not-exist"), "{err}");
    lab.assert_clean();
}

#[test]
fn malformed_config_is_a_clear_error() {
    if !privileged("malformed_config_is_a_clear_error") {
        return;
    }
    let mut lab = Lab::new("malformed");
    let id = lab.id("m");
    let b = lab.dir.path().join("bundle");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("config.json"), "{\"ociVersion\": \"1.0.2\", \"process\": [").unwrap();
    let out = lab.rt(&["run", "-b", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("invalid spec") && err.contains("config.json"), "{err}");
    std::fs::remove_file(b.join("config.json")).unwrap();
    let out = lab.rt(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(text(&out.stderr).contains("config.json"), "{}", text(&out.stderr));
    lab.assert_clean();
}

#[test]
fn duplicate_id_is_refused_and_first_container_survives() {
    if !privileged("duplicate_id_is_refused_and_first_container_survives") {
        return;
    }
    let mut lab = Lab::new("dup");
    let id = lab.id("d");
    let b = lab.bundle("d", &lab.config(&["sleep", "100"]));
    assert!(lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &id]).status.success());
    let out = lab.rt(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("already exists"), "{}", text(&out.stderr));
    assert_eq!(lab.state(&id)["status"], "running");
    let out = lab.rt(&["run", "-b", b.to_str().unwrap(), "../escape"]);
    assert!(text(&out.stderr).contains("invalid container id"), "{}", text(&out.stderr));
    assert!(lab.rt(&["delete", "-f", &id]).status.success());
    lab.assert_clean();
}

#[test]
fn failing_setup_leaves_nothing() {
    if !privileged("failing_setup_leaves_nothing") {
        return;
    }
    let mut lab = Lab::new("fail");
    // A bind source that does not exist fails inside init, after cgroups exist.
    let mut cfg = lab.config(&["true"]);
    let mut m = cfg["mounts"].as_array().unwrap().clone();
    m.push(json!({"destination": "/x", "type": "bind", "source": "/nonexistent/wharf", "options": ["bind"]}));
    cfg["mounts"] = json!(m);
    let (code, _, err) = lab.run("bind", &cfg);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/wharf"), "{err}");
    // A missing executable is reported by create, not after start.
    let cfg = lab.config(&["/no/such/binary"]);
    let (code, _, err) = lab.run("exe", &cfg);
    assert_eq!(code, 1);
    assert!(err.contains("/no/such/binary"), "{err}");
    lab.assert_clean();
}
