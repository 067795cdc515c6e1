//! The in-process library API the `wharf run` command and the builder use:
//! spec helper + image config merge, create/start/wait/delete without the CLI.

mod common;

use common::*;
use wharf_runtime::oci_spec::image::Config as ImageConfig;
use wharf_runtime::spec::{apply_image_config, ImageOverrides};
use wharf_runtime::{Container, CreateOptions, ExitStatus, Status};

#[test]
fn image_config_merge_and_in_process_lifecycle() {
    if !privileged("image_config_merge_and_in_process_lifecycle") {
        return;
    }
    let mut lab = Lab::new("library");
    let out_dir = lab.dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    // The image's user is bob (1000): let him write the result.
    std::fs::set_permissions(&out_dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let img: ImageConfig = serde_json::from_str(
        r#"{"User": "bob", "Env": ["FROM_IMAGE=1", "PATH=/bin"], "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["exit 9"], "WorkingDir": "/tmp", "StopSignal": "SIGQUIT"}"#,
    )
    .unwrap();
    let script = "{ id -u; id -G; pwd; echo $FROM_IMAGE $EXTRA; } > /out/result; exit 3";
    let overrides =
        ImageOverrides { cmd: Some(vec![script.to_string()]), env: vec!["EXTRA=2".into()], ..Default::default() };
    let mut spec = wharf_runtime::spec::default_spec();
    apply_image_config(&mut spec, Some(&img), shared_rootfs(), &overrides).unwrap();
    let mut cfg = serde_json::to_value(&spec).unwrap();
    cfg["process"]["terminal"] = serde_json::json!(false);
    cfg["root"]["path"] = serde_json::json!(shared_rootfs());
    let mut m = cfg["mounts"].as_array().unwrap().clone();
    m.push(serde_json::json!({"destination": "/out", "type": "bind", "source": out_dir, "options": ["bind"]}));
    cfg["mounts"] = serde_json::json!(m);
    assert_eq!(cfg["annotations"]["org.opencontainers.image.stopSignal"], "SIGQUIT");
    let bundle = lab.bundle("lib", &cfg);
    let id = lab.id("lib");
    let opts = CreateOptions { exec_fifo: false, ..Default::default() };
    let mut c = Container::create(&lab.root, &id, &bundle, &opts).unwrap();
    assert_eq!(c.status(), Status::Created);
    assert_eq!(c.state().id, id);
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(3));
    assert_eq!(c.status(), Status::Stopped);
    c.delete(false).unwrap();
    let result = std::fs::read_to_string(out_dir.join("result")).unwrap();
    assert_eq!(result.lines().collect::<Vec<_>>(), ["1000", "1000 10", "/tmp", "1 2"]);
    // The same store, seen through the CLI, is empty again.
    assert!(text(&lab.rt(&["list", "-q"]).stdout).trim().is_empty());
    lab.assert_clean();
}

#[test]
fn library_errors_have_kinds() {
    if !privileged("library_errors_have_kinds") {
        return;
    }
    let mut lab = Lab::new("kinds");
    let e = Container::load(&lab.root, "nope").unwrap_err();
    assert_eq!(e.kind(), wharf_runtime::ErrorKind::NotFound);
    let id = lab.id("k");
    let bundle = lab.bundle("k", &lab.config(&["sleep", "100"]));
    let c = Container::create(&lab.root, &id, &bundle, &CreateOptions::default()).unwrap();
    let e = Container::create(&lab.root, &id, &bundle, &CreateOptions::default()).unwrap_err();
    assert_eq!(e.kind(), wharf_runtime::ErrorKind::AlreadyExists);
    let e = c.pause().unwrap_err();
    assert_eq!(e.kind(), wharf_runtime::ErrorKind::InvalidState);
    // Deleting a created (never started) container is allowed, as with runc.
    c.delete(false).unwrap();
    lab.assert_clean();
}
