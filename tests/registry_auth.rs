//! Registry auth with the credentials users already have: htpasswd Basic,
//! the token flow (Docker Hub's), identity (refresh) tokens, credential
//! helpers and credsStore, login and logout.

use std::os::unix::fs::PermissionsExt;
use wharf_tests::registry::{Auth, TestRegistry};
use wharf_tests::token::{TokenIssuer, ISSUER, REFRESH_TOKEN, SERVICE};
use wharf_tests::{busybox_tar, privileged, TestStore};

fn store_with_busybox() -> TestStore {
    let s = TestStore::new();
    let tar = busybox_tar(s.dir.path());
    s.ok(["import".as_ref(), tar.as_os_str(), "busybox".as_ref()]);
    s
}

fn login(s: &TestStore, addr: &str, user: &str, pass: &str) -> std::process::Output {
    s.run_stdin(["login", "-u", user, "--password-stdin", addr], format!("{pass}\n").as_bytes())
}

#[test]
fn htpasswd_basic_login_push_pull_logout() {
    if !privileged("htpasswd_basic_login_push_pull_logout") {
        return;
    }
    let reg = TestRegistry::start(Auth::Htpasswd { user: "alice".into(), password: "s3cret".into() });
    let s = store_with_busybox();
    let dest = format!("{}/a/bb:1", reg.addr);
    let err = s.fails(["push", "busybox", &dest]);
    assert!(err.contains("wharf login"), "{err}");
    let out = login(&s, &reg.addr, "alice", "wrong");
    assert!(!out.status.success(), "a wrong password is refused");
    assert!(!s.docker_config().join("config.json").exists(), "nothing saved after a failed login");
    let out = login(&s, &reg.addr, "alice", "s3cret");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let cfg = s.docker_config().join("config.json");
    assert_eq!(std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o600);
    s.ok(["push", "busybox", &dest]);
    let t = TestStore::new();
    std::fs::create_dir_all(t.docker_config()).unwrap();
    std::fs::copy(&cfg, t.docker_config().join("config.json")).unwrap();
    t.ok(["pull", &dest]);
    assert!(s.ok(["logout", &reg.addr]).contains("Removing login credentials"));
    assert!(s.fails(["push", "busybox", &dest]).contains("wharf login"));
}

#[test]
fn token_flow_like_docker_hub() {
    if !privileged("token_flow_like_docker_hub") {
        return;
    }
    let issuer = TokenIssuer::start("bob", "tok-pass");
    let reg = TestRegistry::start(Auth::Token {
        realm: issuer.realm.clone(),
        service: SERVICE.into(),
        issuer: ISSUER.into(),
        cert_pem: issuer.cert_pem.clone(),
    });
    let s = store_with_busybox();
    let dest = format!("{}/bob/app:1", reg.addr);
    let err = s.fails(["push", "busybox", &dest]);
    assert!(err.contains("authentication failed") || err.contains("401"), "{err}");
    let out = login(&s, &reg.addr, "bob", "tok-pass");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.ok(["push", "busybox", &dest]);
    let reqs = issuer.requests.lock().unwrap().clone();
    assert!(reqs.iter().any(|(m, q)| m == "GET" && q.contains("repository%3Abob%2Fapp%3Apull%2Cpush")), "{reqs:?}");
    // A second repository: the mount asks pull on the first in the same token.
    s.ok(["push", "busybox", &format!("{}/bob/copy:1", reg.addr)]);
    let reqs = issuer.requests.lock().unwrap().clone();
    assert!(
        reqs.iter()
            .any(|(_, q)| q.contains("repository%3Abob%2Fcopy%3Apull%2Cpush")
                && q.contains("repository%3Abob%2Fapp%3Apull")),
        "{reqs:?}"
    );

    // An identity token in config.json: traded with POST grant_type=refresh_token.
    let t = TestStore::new();
    std::fs::create_dir_all(t.docker_config()).unwrap();
    let cfg = serde_json::json!({"auths": {reg.addr.clone(): {"auth": "", "identitytoken": REFRESH_TOKEN}}});
    std::fs::write(t.docker_config().join("config.json"), cfg.to_string()).unwrap();
    t.ok(["pull", &dest]);
    let reqs = issuer.requests.lock().unwrap().clone();
    assert!(reqs.iter().any(|(m, q)| m == "POST" && q.contains("grant_type=refresh_token")), "{reqs:?}");
    t.assert_consistent();
}

/// `docker-credential-wharftest`, a helper script keeping one secret in a file.
fn install_helper(s: &TestStore) -> std::path::PathBuf {
    let bin = s.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let db = s.path("helper-db");
    let script = format!(
        r#"#!/bin/sh
db={db}
case "$1" in
  get) read -r url; if [ -f "$db" ]; then cat "$db"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) cat > "$db" ;;
  erase) rm -f "$db" ;;
esac
"#,
        db = db.display()
    );
    let p = bin.join("docker-credential-wharftest");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn with_path(bin: &std::path::Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn credential_helpers_and_creds_store() {
    if !privileged("credential_helpers_and_creds_store") {
        return;
    }
    let reg = TestRegistry::start(Auth::Htpasswd { user: "carol".into(), password: "pw".into() });
    let s = store_with_busybox();
    let bin = install_helper(&s);
    std::fs::create_dir_all(s.docker_config()).unwrap();
    // credsStore: login stores through the helper, push reads through it.
    std::fs::write(s.docker_config().join("config.json"), r#"{"credsStore":"wharftest"}"#).unwrap();
    let mut c = s.cmd();
    c.env("PATH", with_path(&bin)).args(["login", "-u", "carol", "-p", "pw", &reg.addr]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stored = std::fs::read_to_string(s.path("helper-db")).unwrap();
    assert!(stored.contains("\"Username\":\"carol\""), "{stored}");
    assert!(
        !std::fs::read_to_string(s.docker_config().join("config.json")).unwrap().contains("auths\":{\""),
        "secret kept out of config.json"
    );
    let out = s
        .cmd()
        .env("PATH", with_path(&bin))
        .args(["push", "busybox", &format!("{}/c/bb:1", reg.addr)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // credHelpers for this one registry.
    std::fs::write(
        s.docker_config().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"wharftest"}}}}"#, reg.addr),
    )
    .unwrap();
    let out = s.cmd().env("PATH", with_path(&bin)).args(["pull", &format!("{}/c/bb:1", reg.addr)]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.cmd().env("PATH", with_path(&bin)).args(["logout", &reg.addr]).output().unwrap();
    assert!(out.status.success());
    assert!(!s.path("helper-db").exists(), "logout erased through the helper");
}
