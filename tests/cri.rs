//! `wharf cri` as the kubelet's image and runtime-status endpoint, driven
//! by the real `crictl` (shared/tools) and by a tonic client on the same
//! protos, against Debian's docker-registry on loopback ports of our own:
//! version/info/images/pull/inspecti/rmi/imagefsinfo, pulls through a
//! configured mirror (a dead one first), credentials from the request and
//! from the docker config, the status codes containerd gives, `kill -9`
//! and restart, and the socket's life cycle. Pods and containers: see
//! `cri_runtime.rs`.

use base64::Engine as _;
use k8s_cri::v1 as cri;
use serde_json::Value;
use std::path::Path;
use wharf_tests::cri::CriDaemon;
use wharf_tests::registry::{free_port, Auth, TestRegistry};
use wharf_tests::{busybox_tar, privileged, TestStore};

/// A store holding busybox imported as `name`, pushed to each of `dests`.
fn push_busybox(changes: &[&str], dests: &[String]) -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    let mut args: Vec<String> = vec!["import".into()];
    for c in changes {
        args.extend(["-c".to_string(), c.to_string()]);
    }
    args.extend([tar.display().to_string(), "bb:src".into()]);
    s.ok(&args);
    for d in dests {
        s.ok(["push", "bb:src", d]);
    }
    s
}

fn config(net_d: &Path, mirrors: &str) -> String {
    format!("[cni]\nconf_dir = \"{}\"\nbin_dirs = [\"/usr/lib/cni\"]\n[registry.mirrors]\n{mirrors}\n", net_d.display())
}

fn condition(info: &Value, kind: &str) -> Value {
    info["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind).cloned())
        .unwrap_or_else(|| panic!("no {kind} condition in {info}"))
}

/// "Image is up to date for sha256:…" → the ID.
fn pulled_id(out: &str) -> String {
    out.split_whitespace().find(|w| w.starts_with("sha256:")).unwrap_or_else(|| panic!("no ID in {out:?}")).into()
}

/// A protojson uint64 (a string) or a number.
fn num(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn crictl_version_info_pull_through_mirror_inspect_rmi() {
    if !privileged("crictl_version_info_pull_through_mirror_inspect_rmi") {
        return;
    }
    let reg = TestRegistry::start(Auth::None);
    let _src = push_busybox(
        &["USER 1002:1003"],
        &[format!("{}/library/bb:1", reg.addr), format!("{}/e2e-test-images/busybox:1.29-2", reg.addr)],
    );
    let tmp = tempfile::Builder::new().prefix("wharf-cri-").tempdir().unwrap();
    let net_d = tmp.path().join("net.d");
    std::fs::create_dir(&net_d).unwrap();
    // A dead mirror first: the pull must go on to the next one.
    let dead = format!("127.0.0.1:{}", free_port());
    let mut d = CriDaemon::start(
        tmp.path(),
        &config(&net_d, &format!("\"registry.k8s.io\" = [\"{dead}\", \"http://{}\"]", reg.addr)),
    );

    let v = d.crictl_ok(&["version"]);
    assert!(v.contains("RuntimeName:  wharf") && v.contains("RuntimeApiVersion:  v1"), "{v}");

    let info = d.crictl_json(&["info"]);
    assert_eq!(condition(&info, "RuntimeReady")["status"], true, "{info}");
    let net = condition(&info, "NetworkReady");
    assert_eq!(
        (net["status"].as_bool(), net["reason"].as_str()),
        (Some(false), Some("NetworkPluginNotReady")),
        "{info}"
    );
    assert!(info["config"]["root"].as_str().is_some_and(|r| r.ends_with("/root")), "verbose config: {info}");
    std::fs::write(
        net_d.join("10-k8s.conflist"),
        r#"{"cniVersion":"1.0.0","name":"k8s","plugins":[{"type":"bridge"}]}"#,
    )
    .unwrap();
    let info = d.crictl_json(&["info"]);
    assert_eq!(condition(&info, "NetworkReady")["status"], true, "a CNI config makes the network ready: {info}");
    assert_eq!(info["cniconfig"]["network"]["name"], "k8s", "{info}");

    let direct = format!("{}/library/bb:1", reg.addr);
    let id = pulled_id(&d.crictl_ok(&["pull", &direct]));
    let mirrored = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
    assert_eq!(pulled_id(&d.crictl_ok(&["pull", mirrored])), id, "the same image through the mirror");
    assert!(d.log().contains(&format!("mirror {dead}")), "the dead mirror was tried first:\n{}", d.log());

    let images = d.crictl_json(&["images"]);
    let list = images["images"].as_array().unwrap();
    assert_eq!(list.len(), 1, "one image ID, two names: {images}");
    let img = &list[0];
    assert_eq!(img["id"], id.as_str());
    let tags: Vec<&str> = img["repoTags"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(tags.contains(&direct.as_str()) && tags.contains(&mirrored), "{tags:?}");
    let digests: Vec<&str> = img["repoDigests"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(digests.iter().any(|x| x.starts_with("registry.k8s.io/e2e-test-images/busybox@sha256:")), "{digests:?}");
    assert!(num(&img["size"]) > 100_000, "{img}");
    assert_eq!(num(&img["uid"]["value"]), 1002, "USER 1002:1003 → uid 1002: {img}");
    let table = d.crictl_ok(&["images"]);
    assert!(table.contains("registry.k8s.io/e2e-test-images/busybox") && table.contains("1.29-2"), "{table}");
    // The CLI sees what the daemon pulled: one store.
    let cli = std::process::Command::new(wharf_tests::bin("wharf"))
        .arg("--root")
        .arg(&d.root)
        .arg("images")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&cli.stdout).contains("registry.k8s.io/e2e-test-images/busybox"));

    let st = d.crictl_json(&["inspecti", mirrored]);
    assert_eq!(st["status"]["id"], id.as_str(), "{st}");
    assert_eq!(st["info"]["imageSpec"]["config"]["User"], "1002:1003", "verbose info has the image config: {st}");
    let err = d.crictl_fails(&["inspecti", "registry.k8s.io/e2e-test-images/absent:1"]);
    assert!(err.contains("no such image"), "{err}");

    let fs = d.crictl_json(&["imagefsinfo"]);
    let ifs = &fs["status"]["imageFilesystems"][0];
    assert!(num(&ifs["usedBytes"]["value"]) > 100_000 && num(&ifs["inodesUsed"]["value"]) > 10, "{fs}");
    assert_eq!(ifs["fsId"]["mountpoint"], d.root.display().to_string().as_str(), "{fs}");

    let err = d.crictl_fails(&["pull", "registry.k8s.io/e2e-test-images/absent:1"]);
    assert!(
        err.contains("not found") && err.contains(&format!("mirror {dead}")),
        "says what each endpoint said: {err}"
    );
    let pods = d.crictl_json(&["pods"]);
    assert_eq!(pods["items"].as_array().map_or(0, Vec::len), 0, "no pods yet: {pods}");

    d.crictl_ok(&["rmi", mirrored]);
    let images = d.crictl_json(&["images"]);
    assert!(
        images["images"].as_array().is_none_or(|l| l.is_empty()),
        "rmi removes the image and all its names: {images}"
    );
    assert!(d.crictl_fails(&["rmi", mirrored]).contains("no such image"));

    let sock = d.socket.clone();
    let st = d.stop_with(libc::SIGTERM);
    assert!(st.success(), "SIGTERM: a clean exit ({st}):\n{}", d.log());
    assert!(!sock.exists(), "the socket is removed on SIGTERM");
    let check = std::process::Command::new(wharf_tests::bin("wharf"))
        .arg("--root")
        .arg(&d.root)
        .args(["system", "check"])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let left = wharf_tests::leaks::processes_mentioning(&tmp.path().display().to_string());
    assert!(left.is_empty(), "left running: {left:?}");
}

/// The tonic client side of the test: one call on a fresh connection.
fn grpc<T>(
    sock: &Path,
    f: impl AsyncFnOnce(
        cri::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>,
        cri::image_service_client::ImageServiceClient<tonic::transport::Channel>,
    ) -> T,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let ch = wharf_tests::cri::channel(sock).await;
        f(
            cri::runtime_service_client::RuntimeServiceClient::new(ch.clone()),
            cri::image_service_client::ImageServiceClient::new(ch),
        )
        .await
    })
}

fn image(name: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec { image: name.into(), ..Default::default() })
}

#[test]
fn status_codes_runtime_config_kill9_restart() {
    if !privileged("status_codes_runtime_config_kill9_restart") {
        return;
    }
    let reg = TestRegistry::start(Auth::None);
    let _src = push_busybox(&[], &[format!("{}/library/bb:1", reg.addr)]);
    let tmp = tempfile::Builder::new().prefix("wharf-cri-").tempdir().unwrap();
    let mut d = CriDaemon::start(tmp.path(), &config(&tmp.path().join("net.d"), ""));
    let sock = d.socket.clone();
    let codes = grpc(&sock, async |mut rs, mut is| {
        let mut codes = Vec::new();
        let st = is.image_status(cri::ImageStatusRequest { image: image("absent:1"), verbose: true }).await.unwrap();
        assert!(st.get_ref().image.is_none(), "not found is an empty answer, as containerd's");
        is.remove_image(cri::RemoveImageRequest { image: image("absent:1") }).await.expect("RemoveImage is idempotent");
        for bad in ["", "Busybox:1", "bb:-x"] {
            let e = is.pull_image(cri::PullImageRequest { image: image(bad), ..Default::default() }).await.unwrap_err();
            codes.push((format!("pull {bad:?}"), e.code()));
        }
        let e = is.image_status(cri::ImageStatusRequest { image: image(""), verbose: false }).await.unwrap_err();
        codes.push(("status \"\"".into(), e.code()));
        let e = rs.run_pod_sandbox(cri::RunPodSandboxRequest::default()).await.unwrap_err();
        assert!(e.message().contains("no config"), "{e:?}");
        codes.push(("RunPodSandbox".into(), e.code()));
        let rc = rs.runtime_config(cri::RuntimeConfigRequest {}).await.unwrap().into_inner();
        assert_eq!(rc.linux.unwrap().cgroup_driver, cri::CgroupDriver::Cgroupfs as i32);
        let cidr = |c: &str| cri::UpdateRuntimeConfigRequest {
            runtime_config: Some(cri::RuntimeConfig {
                network_config: Some(cri::NetworkConfig { pod_cidr: c.into() }),
            }),
        };
        let e = rs.update_runtime_config(cidr("10.244.0.0/33")).await.unwrap_err();
        codes.push(("pod CIDR /33".into(), e.code()));
        rs.update_runtime_config(cidr("10.244.1.0/24,fd00:1::/64")).await.unwrap();
        rs.update_runtime_config(cidr("")).await.expect("an empty CIDR changes nothing");
        codes
    });
    use tonic::Code::*;
    let want = [InvalidArgument, InvalidArgument, InvalidArgument, InvalidArgument, InvalidArgument, InvalidArgument];
    assert_eq!(codes.iter().map(|c| c.1).collect::<Vec<_>>(), want, "{codes:?}");

    let id = pulled_id(&d.crictl_ok(&["pull", &format!("{}/library/bb:1", reg.addr)]));
    let filtered = grpc(&sock, async |_, mut is| {
        let mut n = Vec::new();
        for f in [format!("{}/library/bb:1", reg.addr), id.clone(), "absent:1".into(), "Bad:1".into()] {
            let filter = Some(cri::ImageFilter { image: image(&f) });
            n.push(is.list_images(cri::ListImagesRequest { filter }).await.unwrap().into_inner().images.len());
        }
        n
    });
    assert_eq!(filtered, [1, 1, 0, 0], "ListImages with a filter: by name, by ID, absent, malformed");
    // kill -9: the socket file stays; nothing of the state was only in memory.
    let st = d.stop_with(libc::SIGKILL);
    assert!(!st.success());
    assert!(sock.exists(), "a killed daemon leaves its socket");
    d.spawn();
    assert_eq!(d.crictl_json(&["images"])["images"][0]["id"], id.as_str(), "images survive kill -9");
    let info = d.crictl_json(&["info"]);
    assert_eq!(info["config"]["podCIDR"], "10.244.1.0/24,fd00:1::/64", "the pod CIDR survives too: {info}");

    // A second daemon on a live socket is refused and leaves it alone.
    let out = d.command().output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another server is listening"), "{out:?}");
    d.crictl_ok(&["version"]);

    // Bad configuration: a clear error, nothing served.
    let other = tmp.path().join("other.sock");
    let mut bad = vec![
        ("cgroup_driver = \"cgroupv3\"", "unknown variant"),
        ("[runtime.handlers]\nkata = \"/nonexistent/kata-runtime\"", "\"kata\""),
        // It was accepted, and pods ran wharf-infra all the same.
        ("[sandbox]\ninfra = \"pause\"", "sandbox.infra = \"pause\" is not supported"),
    ];
    if !Path::new("/run/systemd/system").exists() {
        bad.push(("cgroup_driver = \"systemd\"", "systemd is not running"));
    }
    for (text, want) in bad {
        std::fs::write(tmp.path().join("bad.toml"), text).unwrap();
        let out = std::process::Command::new(wharf_tests::bin("wharf"))
            .arg("--root")
            .arg(&d.root)
            .arg("--run-root")
            .arg(&d.run_root)
            .arg("cri")
            .arg("--listen")
            .arg(&other)
            .arg("--config")
            .arg(tmp.path().join("bad.toml"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{text}: {err}");
        assert!(!other.exists());
    }
    assert!(d.stop_with(libc::SIGINT).success(), "SIGINT: a clean exit too");
    assert!(!sock.exists());
    let left = wharf_tests::leaks::processes_mentioning(&tmp.path().display().to_string());
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn pull_with_credentials_from_the_request_and_the_docker_config() {
    if !privileged("pull_with_credentials_from_the_request_and_the_docker_config") {
        return;
    }
    let reg = TestRegistry::start(Auth::Htpasswd { user: "alice".into(), password: "s3cret".into() });
    let src = TestStore::new();
    let tar = busybox_tar(src.dir.path());
    src.ok(["import".as_ref(), tar.as_os_str(), "bb:src".as_ref()]);
    let out = src.run_stdin(["login", "-u", "alice", "--password-stdin", &reg.addr], b"s3cret\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dest = format!("{}/private/bb:1", reg.addr);
    src.ok(["push", "bb:src", &dest]);

    let tmp = tempfile::Builder::new().prefix("wharf-cri-").tempdir().unwrap();
    let d = CriDaemon::start(tmp.path(), &config(&tmp.path().join("net.d"), ""));
    let err = d.crictl_fails(&["pull", &dest]);
    assert!(err.contains("Unauthenticated"), "no credentials: {err}");
    assert!(d.crictl_fails(&["pull", "--creds", "alice:wrong", &dest]).contains("Unauthenticated"));
    d.crictl_ok(&["pull", "--creds", "alice:s3cret", &dest]);
    d.crictl_ok(&["rmi", &dest]);
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    d.crictl_ok(&["pull", "--auth", &auth, &dest]);
    d.crictl_ok(&["rmi", &dest]);
    // No credentials in the request: the docker config's, read at each pull.
    std::fs::create_dir_all(&d.docker_config).unwrap();
    std::fs::write(
        d.docker_config.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.addr),
    )
    .unwrap();
    d.crictl_ok(&["pull", &dest]);
    assert_eq!(d.crictl_json(&["images"])["images"].as_array().map(Vec::len), Some(1));
}

/// critest's image and runtime-info specs (v1.32.0) against `wharf cri`,
/// offline: shared/tools/critest-lab's look-alike images built and pushed
/// to our own registry under the original repository paths, and
/// registry.k8s.io, gcr.io and docker.io mirrored to it. Left out: the
/// digest-pinned image, which cannot be reproduced (~3 min, most of it
/// building the images). A server that answered `Cancelled` to a client
/// deadline failed "public image should timeout if requested".
#[test]
fn critest_image_manager_and_runtime_info() {
    if !privileged("critest_image_manager_and_runtime_info") {
        return;
    }
    let tools = wharf_tests::cri::tools_dir();
    let reg = TestRegistry::start(Auth::None);
    let tmp = tempfile::Builder::new().prefix("wharf-cri-").tempdir().unwrap();
    wharf_tests::cri::build_critest_images(tmp.path(), &reg.addr);
    let net_d = tmp.path().join("net.d");
    std::fs::create_dir(&net_d).unwrap();
    // critest wants RuntimeReady and NetworkReady both true.
    std::fs::write(
        net_d.join("10-critest.conflist"),
        r#"{"cniVersion":"1.0.0","name":"critest","plugins":[{"type":"bridge"}]}"#,
    )
    .unwrap();
    let mirrors: String = ["registry.k8s.io", "gcr.io", "docker.io"]
        .iter()
        .map(|h| format!("\"{h}\" = [\"http://{}\"]\n", reg.addr))
        .collect();
    let d = CriDaemon::start(tmp.path(), &config(&net_d, &mirrors));
    let ep = format!("unix://{}", d.socket.display());
    let out = std::process::Command::new(tools.join("critest"))
        .args(["-runtime-endpoint", &ep, "-image-endpoint", &ep, "-ginkgo.no-color"])
        .arg(r"-ginkgo.focus=\[k8s.io\] (Image Manager|Runtime info|Idempotence RemoveImage)")
        .arg("-ginkgo.skip=public image with digest")
        .current_dir(tmp.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let summary = log.lines().filter(|l| l.contains("Passed |") || l.contains("[FAIL]")).collect::<Vec<_>>().join("\n");
    eprintln!("critest: {summary}");
    assert!(out.status.success() && summary.contains("10 Passed | 0 Failed"), "{log}\ndaemon log:\n{}", d.log());
}
