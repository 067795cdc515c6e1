//! Volumes end to end: `wharf volume create|ls|inspect|rm|prune`, named
//! volumes that outlive containers, copy-up from the image, anonymous
//! volumes for the image's `VOLUME`s, bind and tmpfs mounts, and a volume in
//! use that cannot be removed. After each test no mount is left.

use std::os::unix::fs::MetadataExt;
use std::process::Output;
use wharf_tests::{busybox_tar, mounts_under, privileged, TestStore};

fn store() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "-c".as_ref(), "CMD [\"/bin/sh\"]".as_ref(), "bb".as_ref()]);
    s
}

/// `bb` plus an image with content at /data and `VOLUME /data`.
fn seeded_store() -> TestStore {
    let s = store();
    let ctx = s.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb\n\
         RUN mkdir -p /data/sub && echo seed > /data/f && ln -s f /data/link && ln /data/f /data/hard \
         && mknod /data/fifo p && chown 1:2 /data/f && chmod 640 /data/f && chown 5:6 /data && chmod 711 /data \
         && ln -s ../../../../../../../etc /esc\n\
         VOLUME /data\n",
    )
    .unwrap();
    s.ok(["build", "-q", "-t", "seeded", ctx.to_str().unwrap()]);
    s
}

fn run(s: &TestStore, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    s.run(all)
}

fn out(o: &Output) -> String {
    assert!(
        o.status.success(),
        "wharf failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn names(s: &TestStore) -> Vec<String> {
    s.ok(["volume", "ls", "-q"]).lines().map(str::to_string).collect()
}

fn data(s: &TestStore, name: &str) -> std::path::PathBuf {
    s.root.join("volumes").join(name).join("_data")
}

/// No mount, container dir or half-made volume remains.
fn assert_clean(s: &TestStore) {
    assert!(mounts_under(s.dir.path()).is_empty(), "mounts leaked: {:?}", mounts_under(s.dir.path()));
    let ctrs = std::fs::read_dir(s.root.join("containers")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(ctrs, 0, "container dirs leaked");
    let tmp: Vec<_> = std::fs::read_dir(s.root.join("volumes"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with(".tmp-")
                || e.file_name().to_string_lossy().starts_with(".removing-")
        })
        .collect();
    assert!(tmp.is_empty(), "temp volume dirs leaked: {tmp:?}");
}

#[test]
fn create_ls_inspect_rm_prune() {
    let s = TestStore::new();
    assert_eq!(s.ok(["volume", "create", "v1"]).trim(), "v1");
    assert_eq!(s.ok(["volume", "create", "v1"]).trim(), "v1", "creating an existing volume returns it");
    s.ok(["volume", "create", "--label", "team=a", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "v2"]);
    let random = s.ok(["volume", "create"]).trim().to_string();
    assert_eq!(random.len(), 64, "{random}");
    let ls = s.ok(["volume", "ls"]);
    assert!(ls.starts_with("DRIVER") && ls.contains("local") && ls.contains("v1"), "{ls}");
    assert_eq!(s.ok(["volume", "ls", "-q", "--filter", "label=team=a"]).trim(), "v2");
    assert_eq!(s.ok(["volume", "ls", "-q", "--filter", "name=v"]).lines().count(), 2);
    assert_eq!(s.ok(["volume", "ls", "-q", "--filter", "dangling=true"]).lines().count(), 3);
    let j: serde_json::Value =
        serde_json::from_str(s.ok(["volume", "ls", "--format", "json", "-f", "name=v2"]).trim()).unwrap();
    assert_eq!(j["Labels"], "team=a");
    let v: serde_json::Value = serde_json::from_str(&s.ok(["volume", "inspect", "v2"])).unwrap();
    let v = &v[0];
    assert_eq!(v["Name"], "v2");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Options"]["type"], "tmpfs");
    assert_eq!(v["Labels"]["team"], "a");
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["Mountpoint"].as_str().unwrap(), data(&s, "v2").to_str().unwrap());
    // Bad input: clear errors, nothing made.
    let err = s.fails(["volume", "create", "a/b"]);
    assert!(err.contains("includes invalid characters for a local volume name"), "{err}");
    let err = s.fails(["volume", "create", "-o", "bogus=1", "v3"]);
    assert!(err.contains("invalid option key"), "{err}");
    let err = s.fails(["volume", "create", "-d", "nfs", "v3"]);
    assert!(err.contains("only local"), "{err}");
    assert_eq!(names(&s).len(), 3);
    let err = s.fails(["volume", "inspect", "nosuch"]);
    assert!(err.contains("get nosuch: no such volume"), "{err}");
    let err = s.fails(["volume", "rm", "nosuch"]);
    assert!(err.contains("no such volume"), "{err}");
    s.ok(["volume", "rm", "-f", "nosuch"]);
    assert_eq!(s.ok(["volume", "rm", &random]).trim(), random);
    // Docker 23+: prune takes only anonymous volumes unless -a.
    assert!(!s.ok(["volume", "prune", "-f"]).contains("v1"));
    let p = s.ok(["volume", "prune", "-f", "-a"]);
    assert!(p.starts_with("Deleted Volumes:\n") && p.contains("v1\n") && p.contains("Total reclaimed space:"), "{p}");
    assert!(names(&s).is_empty());
    assert_clean(&s);
}

#[test]
fn named_volume_persists_across_containers() {
    if !privileged("named_volume_persists_across_containers") {
        return;
    }
    let s = store();
    out(&run(&s, &["-v", "keep:/data", "bb", "sh", "-c", "echo kept > /data/f"]));
    assert_eq!(names(&s), ["keep"], "-v NAME creates the volume");
    let o = run(
        &s,
        &[
            "--mount",
            "type=volume,source=keep,target=/other,readonly",
            "bb",
            "sh",
            "-c",
            "cat /other/f; touch /other/x 2>&1 || true",
        ],
    );
    let text = out(&o);
    assert!(text.starts_with("kept\n") && text.contains("Read-only file system"), "{text}");
    assert_eq!(std::fs::read_to_string(data(&s, "keep").join("f")).unwrap(), "kept\n");
    s.ok(["volume", "rm", "keep"]);
    assert_clean(&s);
}

#[test]
fn copy_up_from_the_image() {
    if !privileged("copy_up_from_the_image") {
        return;
    }
    let s = seeded_store();
    assert_eq!(out(&run(&s, &["-v", "seeded:/data", "seeded", "cat", "/data/f"])), "seed\n");
    let d = data(&s, "seeded");
    let f = std::fs::symlink_metadata(d.join("f")).unwrap();
    assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (1, 2, 0o640), "owner and mode kept");
    assert_eq!(std::fs::read_link(d.join("link")).unwrap().to_str(), Some("f"));
    assert_eq!(std::fs::metadata(d.join("hard")).unwrap().ino(), f.ino(), "hardlink kept");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&std::fs::symlink_metadata(d.join("fifo")).unwrap().file_type()));
    assert!(d.join("sub").is_dir());
    let root = std::fs::metadata(&d).unwrap();
    assert_eq!((root.uid(), root.gid(), root.mode() & 0o7777), (5, 6, 0o711), "the dir's owner and mode too");
    // No second copy-up: not over changed data, nor into a volume emptied by its user.
    out(&run(&s, &["-v", "seeded:/data", "seeded", "sh", "-c", "echo changed > /data/f"]));
    assert_eq!(out(&run(&s, &["-v", "seeded:/data", "seeded", "cat", "/data/f"])), "changed\n");
    out(&run(&s, &["-v", "seeded:/data", "seeded", "sh", "-c", "rm -rf /data/* /data/.[!.]*"]));
    assert_eq!(out(&run(&s, &["-v", "seeded:/data", "seeded", "ls", "-A", "/data"])), "");
    // A volume that already has data is not copied into.
    out(&run(&s, &["-v", "mine:/data", "bb", "sh", "-c", "echo mine > /data/mine"]));
    assert_eq!(out(&run(&s, &["-v", "mine:/data", "seeded", "ls", "/data"])), "mine\n");
    // nocopy, in both syntaxes.
    assert_eq!(out(&run(&s, &["-v", "bare:/data:nocopy", "seeded", "ls", "-A", "/data"])), "");
    assert_eq!(out(&run(&s, &["--mount", "src=bare2,dst=/data,volume-nocopy", "seeded", "ls", "-A", "/data"])), "");
    // A copy cut short by kill -9 (its staging dir left behind) is redone whole.
    s.ok(["volume", "create", "cut"]);
    let staging = s.root.join("volumes/cut/.copyup");
    std::fs::create_dir_all(staging.join("half")).unwrap();
    assert_eq!(out(&run(&s, &["-v", "cut:/data", "seeded", "ls", "/data"])), "f\nfifo\nhard\nlink\nsub\n");
    assert!(!staging.exists());
    // An image symlink is resolved inside the rootfs: the container's /etc is copied, not the host's.
    out(&run(&s, &["-v", "esc:/esc", "seeded", "true"]));
    let copied: Vec<String> = std::fs::read_dir(data(&s, "esc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(copied.contains(&"passwd".to_string()) && !copied.contains(&"os-release".to_string()), "{copied:?}");
    for v in ["seeded", "mine", "bare", "bare2", "esc", "cut"] {
        s.ok(["volume", "rm", v]);
    }
    assert_clean(&s);
}

#[test]
fn anonymous_volumes_for_image_volumes() {
    if !privileged("anonymous_volumes_for_image_volumes") {
        return;
    }
    let s = seeded_store();
    // The image's VOLUME gets an anonymous volume with copy-up; --rm removes it.
    assert_eq!(out(&run(&s, &["seeded", "cat", "/data/f"])), "seed\n");
    assert!(names(&s).is_empty(), "run --rm removes anonymous volumes: {:?}", names(&s));
    // -v /path is anonymous too.
    assert_eq!(out(&run(&s, &["-v", "/anon", "bb", "sh", "-c", "grep -c ' /anon ' /proc/self/mountinfo"])), "1\n");
    assert!(names(&s).is_empty());
    // A container that cannot start leaves no anonymous volume, even without --rm.
    let o = s.run(["run", "seeded", "/no/such/binary"]);
    assert_eq!(o.status.code(), Some(127), "Docker's code for a command not found");
    assert!(names(&s).is_empty(), "{:?}", names(&s));
    // Without --rm the container stays (exited), and its volume in use by it, as Docker's.
    out(&s.run(["run", "--name", "kept", "seeded", "true"]));
    let left = names(&s);
    assert_eq!(left.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&s.ok(["volume", "inspect", &left[0]])).unwrap();
    assert_eq!(v[0]["Labels"]["com.docker.volume.anonymous"], "");
    s.ok(["volume", "create", "named"]);
    let p = s.ok(["volume", "prune", "-f"]);
    assert!(!p.contains(&left[0]), "a stopped container's volume is in use: {p}");
    // Removed without -v, the container leaves it dangling.
    s.ok(["rm", "kept"]);
    let p = s.ok(["volume", "prune", "-f"]);
    assert!(p.contains(&left[0]) && !p.contains("named"), "{p}");
    assert_eq!(names(&s), ["named"]);
    // A mount on the VOLUME's path replaces the anonymous volume.
    let host = s.path("host");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/data", host.display());
    assert_eq!(out(&run(&s, &["-v", &bind, "seeded", "ls", "-A", "/data"])), "");
    assert_eq!(names(&s), ["named"]);
    assert_clean(&s);
}

#[test]
fn bind_mounts() {
    if !privileged("bind_mounts") {
        return;
    }
    let s = store();
    let host = s.path("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "host\n").unwrap();
    let ro = format!("{}:/h:ro,rslave", host.display());
    let o =
        out(&run(&s, &["-v", &ro, "bb", "sh", "-c", "cat /h/f; touch /h/x 2>&1; grep ' /h ' /proc/self/mountinfo"]));
    // (rslave gets a master only when the host mount is shared: not asserted.)
    assert!(o.starts_with("host\n") && o.contains("Read-only file system") && o.contains(" /h ro,"), "{o}");
    let m = format!("type=bind,source={},target=/h,bind-propagation=rprivate", host.display());
    assert_eq!(out(&run(&s, &["--mount", &m, "bb", "sh", "-c", "echo w > /h/w; cat /h/w"])), "w\n");
    // -v makes a missing host dir, --mount refuses it (as Docker).
    let missing = s.path("missing/dir");
    let v = format!("{}:/m", missing.display());
    out(&run(&s, &["-v", &v, "bb", "true"]));
    assert!(missing.is_dir());
    let gone = s.path("gone");
    let m = format!("type=bind,source={},target=/m", gone.display());
    let o = run(&s, &["--mount", &m, "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bind source path does not exist"));
    assert!(!gone.exists());
    assert_clean(&s);
}

#[test]
fn tmpfs_mounts_and_tmpfs_volumes() {
    if !privileged("tmpfs_mounts_and_tmpfs_volumes") {
        return;
    }
    let s = store();
    let o = out(&run(
        &s,
        &[
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
            "bb",
            "sh",
            "-c",
            "grep ' /t ' /proc/mounts; stat -c %a /t",
        ],
    ));
    assert!(o.contains("tmpfs /t tmpfs") && o.contains("size=1024k") && o.ends_with("1770\n"), "{o}");
    s.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", "tv"]);
    let o = out(&run(&s, &["-v", "tv:/v", "bb", "sh", "-c", "grep ' /v ' /proc/mounts; echo x > /v/f"]));
    assert!(o.contains("tmpfs") && o.contains("size=2048k"), "{o}");
    // The last user out unmounts the volume's tmpfs: its data is gone.
    assert!(mounts_under(s.dir.path()).is_empty(), "{:?}", mounts_under(s.dir.path()));
    assert_eq!(out(&run(&s, &["-v", "tv:/v", "bb", "ls", "-A", "/v"])), "");
    s.ok(["volume", "rm", "tv"]);
    // A bind volume (-o type=none,o=bind,device=DIR): data lands in DIR, which rm leaves alone.
    let dir = s.path("bindsrc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep"), "kept\n").unwrap();
    let device = format!("device={}", dir.display());
    s.ok(["volume", "create", "-o", "type=none", "-o", "o=bind", "-o", &device, "bv"]);
    assert_eq!(out(&run(&s, &["-v", "bv:/b", "bb", "sh", "-c", "cat /b/keep; echo new > /b/new"])), "kept\n");
    assert!(mounts_under(s.dir.path()).is_empty(), "{:?}", mounts_under(s.dir.path()));
    s.ok(["volume", "rm", "bv"]);
    assert_eq!(std::fs::read_to_string(dir.join("keep")).unwrap(), "kept\n");
    assert_eq!(std::fs::read_to_string(dir.join("new")).unwrap(), "new\n");
    assert_clean(&s);
}

#[test]
fn a_volume_in_use_cannot_be_removed() {
    if !privileged("a_volume_in_use_cannot_be_removed") {
        return;
    }
    let s = store();
    let mut child = s
        .cmd()
        .args([
            "run",
            "--rm",
            "-v",
            "busy:/data",
            "bb",
            "sh",
            "-c",
            "trap 'exit 0' TERM; touch /data/ready; while :; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = data(&s, "busy").join("ready");
    let t0 = std::time::Instant::now();
    while !ready.exists() {
        assert!(t0.elapsed().as_secs() < 30, "the container never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = s.run(["volume", "rm", "busy"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("remove busy: volume is in use - ["), "{err}");
    let id = err.split('[').nth(1).unwrap().trim_end().trim_end_matches(']');
    assert_eq!(id.len(), 64, "the user is named: {err}");
    assert!(!s.ok(["volume", "prune", "-f", "-a"]).contains("busy"));
    assert_eq!(s.ok(["volume", "ls", "-q", "-f", "dangling=false"]).trim(), "busy");
    assert!(ready.exists(), "a failed rm leaves the data");
    // End the container through its `wharf run`, then the volume may go.
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::TERM).unwrap();
    assert!(child.wait().unwrap().success());
    s.ok(["volume", "rm", "busy"]);
    assert_clean(&s);
}

#[test]
fn bad_mount_flags_are_clear_errors_and_leave_nothing() {
    if !privileged("bad_mount_flags_are_clear_errors_and_leave_nothing") {
        return;
    }
    let s = store();
    for (args, want) in [
        (vec!["--mount", "type=bogus,target=/x"], "mount type unknown"),
        (vec!["--mount", "type=volume,target=/x,nope=1"], "unexpected key 'nope'"),
        (vec!["--mount", "type=volume,source=ok1"], "field Target must not be empty"),
        (vec!["--mount", "type=tmpfs,source=x,target=/t"], "field Source must not be specified"),
        (vec!["-v", "bad/name:/x"], "invalid characters for a local volume name"),
        (vec!["-v", "ok2:relative"], "must be absolute"),
        (vec!["-v", "ok3:/x:bogus"], "invalid mode: bogus"),
        (vec!["-v", "ok4:/x", "-v", "ok5:/x"], "Duplicate mount point: /x"),
    ] {
        let mut all = args.clone();
        all.extend(["bb", "true"]);
        let o = run(&s, &all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(names(&s).is_empty(), "nothing created: {:?}", names(&s));
    assert_clean(&s);
}
