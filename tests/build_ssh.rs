//! `RUN --mount=type=ssh` with `wharf build --ssh`: a real `ssh-agent`
//! holding a key made by `ssh-keygen`, talked to from inside the RUN by the
//! host's `ssh-add`/`ssh-keygen` (copied into the image with their
//! libraries): keys listed, a signature made through the relay, keys not
//! removable, the socket's owner and mode, `SSH_AUTH_SOCK` for that RUN only,
//! nothing of the socket in the layers; `--ssh ID=KEYFILE` (an agent the
//! build runs and stops); the cache key not depending on the agent; a
//! required mount without `--ssh` refused as BuildKit refuses it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use wharf_tests::leaks::processes_mentioning;
use wharf_tests::{busybox_tar, mounts_under, privileged, require_tool, TestStore};

/// A real ssh-agent on a socket in its own temp dir; stopped by its pid.
struct Agent {
    dir: tempfile::TempDir,
    child: Child,
}

impl Agent {
    fn start() -> Agent {
        let bin = require_tool("ssh-agent");
        let dir = tempfile::Builder::new().prefix("wharf-sshagent-").tempdir().unwrap();
        let child = Command::new(bin)
            .arg("-D")
            .arg("-a")
            .arg(dir.path().join("sock"))
            .stdout(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let t0 = std::time::Instant::now();
        while std::os::unix::net::UnixStream::connect(dir.path().join("sock")).is_err() {
            assert!(t0.elapsed().as_secs() < 10, "ssh-agent did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Agent { dir, child }
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn add(&self, key: &Path) {
        let o = Command::new("ssh-add").arg(key).env("SSH_AUTH_SOCK", self.sock()).output().unwrap();
        assert!(o.status.success(), "ssh-add: {}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ssh-keygen -t TYPE` without a passphrase: (private key, its fingerprint line).
fn keygen(dir: &Path, name: &str, typ: &str, comment: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let o = Command::new(require_tool("ssh-keygen"))
        .args(["-q", "-t", typ, "-N", "", "-C", comment, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&o.stderr));
    let fp = Command::new("ssh-keygen").arg("-lf").arg(&key).output().unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout).split_whitespace().nth(1).unwrap().to_string();
    (key, fp)
}

/// Copies `bins` and the shared libraries `ldd` names into `root`, at their paths.
fn copy_with_libs(bins: &[&str], root: &Path) {
    for bin in bins {
        let mut files = vec![PathBuf::from(bin)];
        let ldd = Command::new("ldd").arg(bin).output().expect("ldd");
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            let path = line.split("=>").last().unwrap_or_default().split_whitespace().next().unwrap_or_default();
            if path.starts_with('/') {
                files.push(PathBuf::from(path));
            }
        }
        for f in files {
            let dest = root.join(f.strip_prefix("/").unwrap());
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&f, &dest).unwrap();
        }
    }
}

/// A store with `bb` (busybox) and a context holding `ssh-add`, `ssh-keygen`, their libraries.
fn setup(dockerfile: &str) -> (TestStore, PathBuf) {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "bb".as_ref()]);
    let ctx = s.path("ctx");
    copy_with_libs(&["/usr/bin/ssh-add", "/usr/bin/ssh-keygen"], &ctx.join("tools"));
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    (s, ctx)
}

fn build(s: &TestStore, args: &[&str], auth_sock: Option<&Path>) -> std::process::Output {
    let mut c = s.cmd();
    c.arg("build").args(["--progress", "plain"]).args(args);
    match auth_sock {
        Some(p) => c.env("SSH_AUTH_SOCK", p),
        None => c.env_remove("SSH_AUTH_SOCK"),
    };
    c.output().unwrap()
}

fn ok(o: std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "build failed: {err}");
    err
}

/// What a build leaves running or mounted: nothing under the store's dir.
fn assert_no_leaks(s: &TestStore) {
    assert!(mounts_under(s.dir.path()).is_empty(), "{:?}", mounts_under(s.dir.path()));
    let procs = processes_mentioning(&s.dir.path().to_string_lossy());
    assert!(procs.is_empty(), "left running: {procs:?}");
    let builds = s.path("run/build");
    let left: Vec<_> = std::fs::read_dir(&builds).into_iter().flatten().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "build dirs left: {left:?}");
}

const DOCKERFILE: &str = r#"FROM bb
COPY tools/ /
COPY data key.pub /
RUN --mount=type=ssh ssh-add -l > /keys && echo "$SSH_AUTH_SOCK" > /sock && stat -c '%u:%g %a %F' "$SSH_AUTH_SOCK" > /stat \
 && ssh-keygen -q -Y sign -f /key.pub -n wharf /data && (ssh-add -D 2>/dev/null || echo refused > /remove) && ssh-add -l > /after
RUN --mount=type=ssh,id=other,target=/tmp/agent.sock,uid=65534,gid=65534,mode=0660 stat -c '%u:%g %a' /tmp/agent.sock > /stat2 \
 && ssh-add -L > /pub && echo "$SSH_AUTH_SOCK" > /sock2
RUN echo "${SSH_AUTH_SOCK:-unset}" > /later
"#;

#[test]
fn ssh_mount_forwards_an_agent_and_leaves_nothing() {
    if !privileged("ssh_mount_forwards_an_agent_and_leaves_nothing") {
        return;
    }
    let (s, ctx) = setup(DOCKERFILE);
    let (key, fp) = keygen(s.dir.path(), "id", "ed25519", "wharf-test-key");
    std::fs::copy(key.with_extension("pub"), ctx.join("key.pub")).unwrap();
    std::fs::write(ctx.join("data"), "signed through the agent\n").unwrap();
    let agent = Agent::start();
    agent.add(&key);
    let other = format!("other={}", agent.sock().display());
    let args = ["-t", "sshimg", "--ssh", "default", "--ssh", &other, ctx.to_str().unwrap()];
    ok(build(&s, &args, Some(&agent.sock())));
    let cat = |f: &str| s.ok(["run", "--rm", "sshimg", "cat", f]);
    let keys = cat("/keys");
    assert!(keys.contains(&fp) && keys.contains("wharf-test-key"), "{keys}");
    assert_eq!(cat("/sock"), "/run/buildkit/ssh_agent.0\n", "BuildKit's default target");
    assert_eq!(cat("/stat"), "0:0 600 socket\n");
    assert_eq!(cat("/remove"), "refused\n", "the relay is read-only");
    assert!(cat("/after").contains(&fp));
    assert_eq!(cat("/stat2"), "65534:65534 660\n");
    assert_eq!(cat("/sock2"), "/tmp/agent.sock\n", "SSH_AUTH_SOCK names the mount's target");
    assert!(cat("/pub").contains("ssh-ed25519 "));
    assert_eq!(cat("/later"), "unset\n", "SSH_AUTH_SOCK is for the RUN with the mount only");
    // The signature made through the relay verifies with the key.
    std::fs::write(s.path("sig"), cat("/data.sig")).unwrap();
    let allowed = s.path("allowed");
    std::fs::write(&allowed, format!("t@x {}", std::fs::read_to_string(key.with_extension("pub")).unwrap())).unwrap();
    let v = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", "wharf", "-I", "t@x", "-f"])
        .arg(&allowed)
        .arg("-s")
        .arg(s.path("sig"))
        .stdin(std::fs::File::open(ctx.join("data")).unwrap())
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    // Nothing of the sockets in the image: config or layers.
    let cfg: serde_json::Value = serde_json::from_str(&s.ok(["inspect", "sshimg"])).unwrap();
    assert!(!cfg[0]["Config"]["Env"].to_string().contains("SSH_AUTH_SOCK"), "{}", cfg[0]["Config"]["Env"]);
    let ls = s.ok(["run", "--rm", "sshimg", "sh", "-c", "ls -a /tmp; test -e /run && echo has-run; true"]);
    assert_eq!(ls.split_whitespace().collect::<Vec<_>>(), [".", ".."], "no mount point left: {ls}");
    assert_no_leaks(&s);
    // The agent is no part of the cache key: another one, every step cached.
    let (key2, _) = keygen(s.dir.path(), "id2", "ecdsa", "second");
    let err =
        ok(build(&s, &["--ssh", &format!("default={}", key2.display()), "--ssh", &other, ctx.to_str().unwrap()], None));
    assert_eq!(err.matches("CACHED").count(), 5, "{err}");
    assert_no_leaks(&s);
}

#[test]
fn ssh_keyfile_is_served_by_an_agent_the_build_runs() {
    if !privileged("ssh_keyfile_is_served_by_an_agent_the_build_runs") {
        return;
    }
    let (s, ctx) = setup("FROM bb\nCOPY tools/ /\nRUN --mount=type=ssh,id=deploy,required=true ssh-add -l > /keys\n");
    let (k1, fp1) = keygen(s.dir.path(), "k1", "ed25519", "first-key");
    let (k2, fp2) = keygen(s.dir.path(), "k2", "rsa", "second-key");
    // Readable by all: ssh-add would refuse it, BuildKit reads it anyway.
    std::fs::set_permissions(&k2, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let spec = format!("deploy={},{}", k1.display(), k2.display());
    ok(build(&s, &["-t", "keyimg", "--ssh", &spec, ctx.to_str().unwrap()], None));
    let keys = s.ok(["run", "--rm", "keyimg", "cat", "/keys"]);
    assert!(keys.contains(&fp1) && keys.contains(&fp2), "{keys}");
    // The agent the build ran is gone, with its socket and the keys' copies.
    assert_no_leaks(&s);
}

#[test]
fn ssh_mount_without_ssh_flag() {
    if !privileged("ssh_mount_without_ssh_flag") {
        return;
    }
    let (s, ctx) = setup("FROM bb\nRUN --mount=type=ssh,required=true echo never > /x\n");
    // BuildKit's words for a required agent nobody forwarded.
    let o = build(&s, &["-t", "req", ctx.to_str().unwrap()], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("no SSH key \"default\" forwarded from the client"), "{err}");
    assert!(!s.run(["inspect", "req"]).status.success(), "no image");
    assert_no_leaks(&s);
    // Not required: the RUN goes on without the socket.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb\nRUN --mount=type=ssh test ! -e \"$SSH_AUTH_SOCK\" && echo none > /x\n",
    )
    .unwrap();
    ok(build(&s, &["-t", "opt", ctx.to_str().unwrap()], None));
    assert_eq!(s.ok(["run", "--rm", "opt", "cat", "/x"]), "none\n");
    // Bad --ssh values: clear errors.
    let notakey = s.path("notakey");
    std::fs::write(&notakey, "hello\n").unwrap();
    for (spec, want) in [
        ("x=/nonexistent/sock".to_string(), "/nonexistent/sock"),
        (format!("x={}", notakey.display()), "failed to parse"),
    ] {
        let o = build(&s, &["--ssh", &spec, ctx.to_str().unwrap()], None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{spec}: {err}");
    }
    let o = build(&s, &["--ssh", "default", ctx.to_str().unwrap()], None);
    assert!(String::from_utf8_lossy(&o.stderr).contains("SSH_AUTH_SOCK is not set"));
    assert_no_leaks(&s);
}
