//! Volume in-use locks against real processes: a holder killed with -9
//! lets its volume go once its container is cleaned up (and a tmpfs volume it left mounted starts afresh for
//! the next user), and lock fds never reach child processes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use wharf_pod::volume::{CreateVolume, Volumes};

const HOLDER_ENV: &str = "WHARF_TEST_VOLUME_HOLDER";

/// Not a test of its own: the holder process the tests below kill with -9.
#[test]
fn holder_process() {
    let Ok(spec) = std::env::var(HOLDER_ENV) else { return };
    let (root, name) = spec.split_once('|').unwrap();
    let vols = Volumes::new(Path::new(root));
    let u = vols.acquire(name, "holder").unwrap();
    std::fs::write(u.volume.mountpoint.join("written"), "by the holder").unwrap();
    println!("holder-ready");
    std::thread::sleep(std::time::Duration::from_secs(120));
}

/// Starts a holder of `name` and waits until it holds the volume.
fn holder(root: &Path, name: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "holder_process", "--nocapture", "--test-threads=1"])
        .env(HOLDER_ENV, format!("{}|{name}", root.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    for line in out.lines() {
        if line.unwrap().contains("holder-ready") {
            return child;
        }
    }
    panic!("the holder exited before holding the volume: {:?}", child.wait());
}

fn kill9(child: &mut Child) {
    rustix::process::kill_process(rustix::process::Pid::from_child(child), rustix::process::Signal::KILL).unwrap();
    child.wait().unwrap();
}

fn create(vols: &Volumes, name: &str, opts: &[(&str, &str)]) {
    let options = opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    vols.create(&CreateVolume { name: Some(name.into()), options, ..Default::default() }).unwrap();
}

/// `remove`, retried for a moment: the other tests of this process fork
/// too, and a fork holds a copy of every fd until its exec (ms, not the
/// 60 s of a process that really kept a lock).
fn remove_soon(vols: &Volumes, name: &str) -> wharf_pod::Result<()> {
    let t0 = std::time::Instant::now();
    loop {
        match vols.remove(name) {
            Err(wharf_pod::Error::VolumeInUse { .. }) if t0.elapsed().as_secs() < 5 => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            r => return r,
        }
    }
}

#[test]
fn kill_9_releases_the_volume() {
    let dir = tempfile::tempdir().unwrap();
    let vols = Volumes::new(dir.path());
    create(&vols, "held", &[]);
    let mut child = holder(dir.path(), "held");
    match vols.remove("held") {
        Err(wharf_pod::Error::VolumeInUse { containers, .. }) => assert_eq!(containers, ["holder"]),
        other => panic!("a held volume must not be removable: {other:?}"),
    }
    assert!(vols.prune(true).unwrap().removed.is_empty());
    // Killed, but its container is not cleaned up (it may still run): still a user.
    let ctr_dir = dir.path().join("containers/holder");
    std::fs::create_dir_all(&ctr_dir).unwrap();
    kill9(&mut child);
    assert_eq!(vols.users("held").unwrap(), ["holder"]);
    assert!(matches!(vols.remove("held"), Err(wharf_pod::Error::VolumeInUse { .. })));
    std::fs::remove_dir(&ctr_dir).unwrap();
    assert!(vols.users("held").unwrap().is_empty(), "a killed holder whose container is gone is no user");
    vols.remove("held").unwrap();
    assert!(vols.list().unwrap().is_empty());
}

#[test]
fn lock_fds_are_not_inherited() {
    let dir = tempfile::tempdir().unwrap();
    let vols = Volumes::new(dir.path());
    create(&vols, "plain", &[]);
    let u = vols.acquire("plain", "ctr").unwrap();
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    drop(u);
    let removed = remove_soon(&vols, "plain");
    kill9(&mut sleeper);
    removed.expect("a child process must not keep the volume in use");
}

#[test]
fn a_killed_users_tmpfs_volume_starts_afresh() {
    if !rustix::process::geteuid().is_root() {
        if std::env::var("WHARF_SKIP_PRIVILEGED").as_deref() == Ok("1") {
            eprintln!("SKIPPED a_killed_users_tmpfs_volume_starts_afresh: needs root (WHARF_SKIP_PRIVILEGED=1)");
            return;
        }
        panic!("a_killed_users_tmpfs_volume_starts_afresh needs root (mount); set WHARF_SKIP_PRIVILEGED=1 to skip it");
    }
    let dir = tempfile::tempdir().unwrap();
    let vols = Volumes::new(dir.path());
    create(&vols, "tv", &[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]);
    let mut child = holder(dir.path(), "tv");
    kill9(&mut child);
    let data = vols.get("tv").unwrap().mountpoint;
    assert!(data.join("written").exists(), "the killed holder's tmpfs is still mounted");
    let u = vols.acquire("tv", "next").unwrap();
    assert!(u.fresh_mount && !data.join("written").exists(), "the next user gets a fresh tmpfs");
    drop(u);
    remove_soon(&vols, "tv").unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(dir.path().to_str().unwrap()), "mount leaked: {mountinfo}");
}
