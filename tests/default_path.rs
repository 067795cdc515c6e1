//! A base image without PATH in its Env (an imported rootfs, many images
//! of other tools): builds give it the default PATH, appended to the Env as
//! BuildKit and buildah do, and `wharf run` uses the default PATH too.

use std::process::Command;
use wharf_tests::{busybox_tar, privileged, require_tool, TestStore};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn env_of(s: &TestStore, image: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&s.ok(["inspect", image])).unwrap();
    v[0]["Config"]["Env"].clone()
}

/// A store with `bb` (no Env at all) and `bbenv` (Env without PATH).
fn store() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "bb".as_ref()]);
    s.ok(["import".as_ref(), "-c".as_ref(), "ENV FOO=bar".as_ref(), tar.as_os_str(), "bbenv".as_ref()]);
    assert_eq!(env_of(&s, "bb"), serde_json::Value::Null);
    s
}

fn build(s: &TestStore, base: &str, tag: &str) {
    let ctx = s.path(&format!("ctx-{tag}"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nRUN echo \"$PATH\" > /built-with\n")).unwrap();
    s.ok(["build".as_ref(), "-q".as_ref(), "-t".as_ref(), tag.as_ref(), ctx.as_os_str()]);
}

#[test]
fn build_from_a_base_without_path_gets_the_default_path() {
    if !privileged("build_from_a_base_without_path_gets_the_default_path") {
        return;
    }
    let s = store();
    build(&s, "bb", "from-bb");
    build(&s, "bbenv", "from-bbenv");
    // Broke: only FROM scratch got the default PATH; these had none in their config.
    assert_eq!(env_of(&s, "from-bb"), serde_json::json!([DEFAULT_PATH]));
    assert_eq!(env_of(&s, "from-bbenv"), serde_json::json!(["FOO=bar", DEFAULT_PATH]));
    let want = DEFAULT_PATH.trim_start_matches("PATH=");
    assert_eq!(s.ok(["run", "--rm", "from-bb", "cat", "/built-with"]).trim(), want, "RUN saw the default PATH");
    s.assert_consistent();
}

#[test]
fn run_of_an_image_without_path_uses_the_default_path() {
    if !privileged("run_of_an_image_without_path_uses_the_default_path") {
        return;
    }
    let s = store();
    let want = DEFAULT_PATH.trim_start_matches("PATH=");
    // Guards `wharf run`'s fallback (it already gave the default PATH).
    for image in ["bb", "bbenv"] {
        assert_eq!(s.ok(["run", "--rm", image, "sh", "-c", "echo $PATH"]).trim(), want, "{image}");
    }
    s.assert_consistent();
}

#[test]
fn buildah_gives_the_same_env_to_a_base_without_path() {
    if !privileged("buildah_gives_the_same_env_to_a_base_without_path") {
        return;
    }
    let buildah = require_tool("buildah");
    let s = store();
    build(&s, "bbenv", "from-bbenv");
    let dir = tempfile::Builder::new().prefix("wharf-buildah-").tempdir().unwrap();
    std::fs::write(dir.path().join("registries.conf"), "unqualified-search-registries = []\n").unwrap();
    let b = |args: &[&str]| {
        let out = Command::new(&buildah)
            .env("CONTAINERS_REGISTRIES_CONF", dir.path().join("registries.conf"))
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "buildah {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let archive = s.path("bbenv.tar");
    s.ok([
        "save".as_ref(),
        "--format".as_ref(),
        "docker-archive".as_ref(),
        "-o".as_ref(),
        archive.as_os_str(),
        "bbenv".as_ref(),
    ]);
    let id = b(&["pull", "-q", &format!("docker-archive:{}", archive.display())]);
    b(&["tag", &id, "localhost/bbenv:latest"]);
    let ctx = s.path("ctx-from-bbenv");
    std::fs::write(ctx.join("Dockerfile"), "FROM localhost/bbenv\nRUN echo \"$PATH\" > /built-with\n").unwrap();
    b(&["build", "-q", "--isolation", "chroot", "-t", "localhost/out", ctx.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&b(&["inspect", "--type", "image", "localhost/out"])).unwrap();
    assert_eq!(v["OCIv1"]["config"]["Env"], env_of(&s, "from-bbenv"), "buildah and wharf agree");
    let _ = b(&["rm", "--all"]);
}
