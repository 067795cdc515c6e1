use super::*;

fn spec() -> Value {
    serde_json::to_value(wharf_runtime::spec::default_spec()).unwrap()
}

fn applied(h: &HostConfig) -> Value {
    let mut s = spec();
    apply(&mut s, h, Path::new("/nonexistent-rootfs"), false).unwrap();
    s
}

fn bounding(s: &Value) -> Vec<String> {
    strings(&s["process"]["capabilities"]["bounding"])
}

/// The capability sets sorted (the spec's are sets).
fn sorted_caps(mut s: Value) -> Value {
    for set in s["process"]["capabilities"].as_object_mut().unwrap().values_mut() {
        let mut v = strings(set);
        v.sort();
        *set = json!(v);
    }
    s
}

#[test]
fn defaults_change_nothing_for_root() {
    assert_eq!(sorted_caps(applied(&HostConfig::default())), sorted_caps(spec()));
}

#[test]
fn cap_add_drop_all_and_privileged() {
    let h =
        HostConfig { cap_add: vec!["CAP_SYS_ADMIN".into()], cap_drop: vec!["CAP_CHOWN".into()], ..Default::default() };
    let s = applied(&h);
    let b = bounding(&s);
    assert!(b.contains(&"CAP_SYS_ADMIN".into()) && !b.contains(&"CAP_CHOWN".into()));
    assert_eq!(b.len(), 14);
    assert_eq!(strings(&s["process"]["capabilities"]["effective"]), b);
    // The default profile now allows mount (CAP_SYS_ADMIN).
    assert_ne!(s["linux"]["seccomp"], spec()["linux"]["seccomp"]);
    let s =
        applied(&HostConfig { cap_drop: vec!["ALL".into()], cap_add: vec!["CAP_KILL".into()], ..Default::default() });
    assert_eq!(bounding(&s), ["CAP_KILL"]);
    let s =
        applied(&HostConfig { cap_add: vec!["ALL".into()], cap_drop: vec!["CAP_KILL".into()], ..Default::default() });
    assert_eq!(bounding(&s).len(), all_capabilities().len() - 1);
    let s = applied(&HostConfig { privileged: true, ..Default::default() });
    assert_eq!(bounding(&s), all_capabilities());
    assert!(s["linux"]["seccomp"].is_null());
    assert_eq!(s["linux"]["maskedPaths"], json!([]));
    assert_eq!(s["linux"]["readonlyPaths"], json!([]));
    let sys = s["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/sys").unwrap();
    assert!(!strings(&sys["options"]).contains(&"ro".to_string()));
    assert!(s["linux"]["devices"].as_array().unwrap().iter().any(|d| d["path"] == "/dev/null"));
    let rules = s["linux"]["resources"]["devices"].as_array().unwrap();
    assert_eq!(rules.last().unwrap(), &json!({"allow": true, "access": "rwm"}));
}

#[test]
fn non_root_gets_only_a_bounding_set() {
    let mut s = spec();
    s["process"]["user"]["uid"] = json!(1000);
    apply(&mut s, &HostConfig::default(), Path::new("/"), false).unwrap();
    assert_eq!(s["process"]["capabilities"].as_object().unwrap().len(), 1);
    assert_eq!(bounding(&s).len(), 14);
}

#[test]
fn security_opts() {
    let h = HostConfig {
        security_opt: vec![
            SecurityOpt::SeccompUnconfined,
            SecurityOpt::NoNewPrivileges(true),
            SecurityOpt::SystemPathsUnconfined,
        ],
        ..Default::default()
    };
    let s = applied(&h);
    assert!(s["linux"]["seccomp"].is_null());
    assert_eq!(s["process"]["noNewPrivileges"], true);
    assert_eq!(s["linux"]["maskedPaths"], json!([]));
    let p = seccomp::from_json(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
    let s = applied(&HostConfig { security_opt: vec![SecurityOpt::SeccompProfile(p)], ..Default::default() });
    assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
}

#[test]
fn devices_and_rules() {
    let h =
        HostConfig { devices: vec![DeviceMapping::parse("/dev/null:/dev/mynull:r").unwrap()], ..Default::default() };
    let s = applied(&h);
    let d = &s["linux"]["devices"][0];
    assert_eq!(
        (d["path"].as_str(), d["type"].as_str(), d["major"].as_i64(), d["minor"].as_i64()),
        (Some("/dev/mynull"), Some("c"), Some(1), Some(3))
    );
    let rules = s["linux"]["resources"]["devices"].as_array().unwrap();
    assert_eq!(rules[0]["allow"], false, "the default deny stays first");
    assert_eq!(rules[1], json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}));
    let mut s = spec();
    let bad = HostConfig { devices: vec![DeviceMapping::parse("/dev/nope").unwrap()], ..Default::default() };
    let e = apply(&mut s, &bad, Path::new("/"), false).unwrap_err().to_string();
    assert!(e.starts_with("error gathering device information while adding custom device \"/dev/nope\""), "{e}");
    let file = HostConfig { devices: vec![DeviceMapping::parse("/etc/hostname").unwrap()], ..Default::default() };
    assert!(apply(&mut s, &file, Path::new("/"), false).unwrap_err().to_string().contains("not a device node"));
}

#[test]
fn rlimits_groups_oom_init() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("etc")).unwrap();
    std::fs::write(d.path().join("etc/group"), "root:x:0:\nwheel:x:10:\n").unwrap();
    let h = HostConfig {
        ulimits: vec![Ulimit::parse("nofile=100:200").unwrap(), Ulimit::parse("core=-1").unwrap()],
        group_add: vec!["wheel".into(), "4242".into(), "10".into()],
        oom_score_adj: Some(500),
        ..Default::default()
    };
    let mut s = spec();
    apply(&mut s, &h, d.path(), false).unwrap();
    let rl = s["process"]["rlimits"].as_array().unwrap();
    assert_eq!(rl.iter().filter(|r| r["type"] == "RLIMIT_NOFILE").count(), 1);
    assert!(rl.contains(&json!({"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200})));
    assert!(rl.contains(&json!({"type": "RLIMIT_CORE", "soft": u64::MAX, "hard": u64::MAX})));
    assert_eq!(s["process"]["user"]["additionalGids"], json!([10, 4242]));
    assert_eq!(s["process"]["oomScoreAdj"], 500);
    let e =
        apply(&mut spec(), &HostConfig { group_add: vec!["nogroup".into()], ..Default::default() }, d.path(), false)
            .unwrap_err()
            .to_string();
    assert!(e.contains("unable to find group nogroup"), "{e}");
    if Path::new(INIT_BINARY).exists() {
        let mut s = spec();
        s["process"]["args"] = json!(["sleep", "1"]);
        apply(&mut s, &HostConfig { init: true, ..Default::default() }, d.path(), false).unwrap();
        assert_eq!(s["process"]["args"], json!([INIT_PATH, "--", "sleep", "1"]));
        assert!(s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == INIT_PATH && m["source"] == INIT_BINARY));
    }
}

#[test]
fn sysctls_and_shm() {
    let h = HostConfig {
        sysctls: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
        shm_size: Some(128 << 20),
        ..Default::default()
    };
    let s = applied(&h);
    assert_eq!(s["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
    let shm = s["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/dev/shm").unwrap();
    let opts = strings(&shm["options"]);
    assert!(opts.contains(&format!("size={}", 128 << 20)) && !opts.contains(&"size=65536k".to_string()), "{opts:?}");
    let e = apply(&mut spec(), &h, Path::new("/"), true).unwrap_err().to_string();
    assert!(e.contains("not allowed in the host network namespace"), "{e}");
}

#[test]
fn resources_follow_dockers_rules() {
    let with_limit = |l: i64| {
        let mut s = spec();
        s["linux"]["resources"]["memory"]["limit"] = json!(l);
        s
    };
    let run = |mut s: Value, h: HostConfig| apply(&mut s, &h, Path::new("/"), false).map(|_| s);
    let s = run(with_limit(100), HostConfig::default()).unwrap();
    assert_eq!(s["linux"]["resources"]["memory"]["swap"], 200, "Docker: as much swap as memory");
    let s = run(with_limit(100), HostConfig { memory_swap: Some(-1), ..Default::default() }).unwrap();
    assert_eq!(s["linux"]["resources"]["memory"]["swap"], -1);
    let e = run(spec(), HostConfig { memory_swap: Some(100), ..Default::default() }).unwrap_err().to_string();
    assert!(e.starts_with("You should always set the Memory limit"), "{e}");
    let e = run(with_limit(100), HostConfig { memory_swap: Some(50), ..Default::default() }).unwrap_err().to_string();
    assert!(e.starts_with("Minimum memoryswap limit should be larger"), "{e}");
    let e = run(with_limit(100), HostConfig { memory_reservation: Some(200), ..Default::default() }).unwrap_err();
    assert!(e.to_string().starts_with("Minimum memory limit can not be less than memory reservation"));
    let h = HostConfig {
        cpu_shares: Some(1),
        cpuset_cpus: Some("0".into()),
        cpuset_mems: Some("0".into()),
        ..Default::default()
    };
    let s = run(spec(), h).unwrap();
    assert_eq!(s["linux"]["resources"]["cpu"], json!({"shares": 2, "cpus": "0", "mems": "0"}));
    assert!(s["linux"]["resources"]["devices"].is_array(), "the default device rules stay");
    let e = run(spec(), HostConfig { cpuset_cpus: Some("4000".into()), ..Default::default() }).unwrap_err();
    assert!(e.to_string().starts_with("Requested CPUs are not available - requested 4000, available: "), "{e}");
}

#[test]
fn a_device_dir_brings_its_nodes() {
    if !Path::new("/dev/net/tun").exists() {
        eprintln!("NOTE: no /dev/net/tun here: device directories not checked");
        return;
    }
    let s = applied(&HostConfig {
        devices: vec![DeviceMapping::parse("/dev/net:/dev/n:r").unwrap()],
        ..Default::default()
    });
    let d = s["linux"]["devices"].as_array().unwrap();
    assert!(d.iter().any(|d| d["path"] == "/dev/n/tun" && d["major"] == 10 && d["minor"] == 200), "{d:?}");
}

#[test]
fn the_config_round_trips_through_json() {
    let h = HostConfig {
        cap_add: vec!["CAP_NET_ADMIN".into()],
        security_opt: vec![SecurityOpt::NoNewPrivileges(true), SecurityOpt::SeccompUnconfined],
        ulimits: vec![Ulimit::parse("nofile=1:2").unwrap()],
        devices: vec![DeviceMapping::parse("/dev/null").unwrap()],
        ..Default::default()
    };
    let back: HostConfig = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
    assert_eq!(back, h);
}

#[test]
fn create_checks_what_needs_no_rootfs() {
    let ok = HostConfig { group_add: vec!["wheel".into()], memory_swap: Some(-1), ..Default::default() };
    check(&ok, Some(1 << 26), false).unwrap();
    let swap = HostConfig { memory_swap: Some(1 << 20), ..Default::default() };
    assert!(check(&swap, Some(1 << 26), false).is_err());
    let dev = HostConfig { devices: vec![DeviceMapping::parse("/dev/wharf-nope").unwrap()], ..Default::default() };
    assert!(check(&dev, None, false).is_err());
    let net =
        HostConfig { sysctls: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(), ..Default::default() };
    assert!(check(&net, None, true).is_err() && check(&net, None, false).is_ok());
}
