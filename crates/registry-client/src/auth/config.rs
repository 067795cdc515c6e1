//! The credentials users already have: `~/.docker/config.json` (or
//! `$DOCKER_CONFIG/config.json`) with `auths`, `credHelpers` and
//! `credsStore`, and `docker-credential-<name>` helpers called exactly as
//! docker calls them (`get`/`store`/`erase`, JSON on stdin and stdout).

use crate::error::{Error, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The key Docker Hub's credentials live under in config.json.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth refresh token (`identitytoken`), traded for access tokens.
    IdentityToken {
        username: String,
        token: String,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken { username, .. } => write!(f, "IdentityToken({username}, <redacted>)"),
        }
    }
}

/// The registry host a config key names: `https://index.docker.io/v1/` → `docker.io`.
pub fn key_host(key: &str) -> String {
    let k = key.trim_start_matches("https://").trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k);
    normalize_host(host)
}

/// Docker Hub goes by several names; everything else is itself.
pub fn normalize_host(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

/// What a helper is asked about: Docker Hub's historical URL, else the host.
fn server_url(host: &str) -> String {
    if normalize_host(host) == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        host.to_string()
    }
}

#[derive(Debug, Clone)]
pub struct DockerConfig {
    pub path: PathBuf,
    json: Map<String, Value>,
}

impl DockerConfig {
    pub fn default_path() -> PathBuf {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
            return PathBuf::from(d).join("config.json");
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".docker/config.json")
    }

    pub fn load() -> Result<Self> {
        Self::load_from(Self::default_path())
    }

    pub fn load_from(path: PathBuf) -> Result<Self> {
        let json = match std::fs::read(&path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(Error::Credentials(format!("{}: not a JSON object", path.display()))),
                Err(e) => return Err(Error::Credentials(format!("{}: {e}", path.display()))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        Ok(DockerConfig { path, json })
    }

    fn helper_for(&self, host: &str) -> Option<String> {
        let host = normalize_host(host);
        let helpers = self.json.get("credHelpers").and_then(Value::as_object);
        if let Some(h) = helpers.and_then(|m| m.iter().find(|(k, _)| key_host(k) == host)).and_then(|(_, v)| v.as_str())
        {
            return Some(h.to_string());
        }
        self.json.get("credsStore").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
    }

    /// Credentials for `host`: its credential helper, the credsStore, then `auths`.
    pub fn credentials_for(&self, host: &str) -> Result<Option<Credential>> {
        if let Some(helper) = self.helper_for(host) {
            if let Some(c) = helper_get(&helper, host)? {
                return Ok(Some(c));
            }
        }
        Ok(self.auths_entry(host))
    }

    fn auths_entry(&self, host: &str) -> Option<Credential> {
        let host = normalize_host(host);
        let auths = self.json.get("auths")?.as_object()?;
        let (_, entry) = auths.iter().find(|(k, _)| key_host(k) == host)?;
        let (mut user, mut pass) = (String::new(), String::new());
        if let Some(a) = entry.get("auth").and_then(Value::as_str).filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD.decode(a.trim()).ok()?;
            let s = String::from_utf8(raw).ok()?;
            let (u, p) = s.split_once(':')?;
            (user, pass) = (u.to_string(), p.to_string());
        }
        if let Some(u) = entry.get("username").and_then(Value::as_str) {
            user = u.to_string();
        }
        if let Some(p) = entry.get("password").and_then(Value::as_str) {
            pass = p.to_string();
        }
        if let Some(t) = entry.get("identitytoken").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            return Some(Credential::IdentityToken { username: user, token: t.to_string() });
        }
        (!user.is_empty() || !pass.is_empty()).then_some(Credential::Basic { username: user, password: pass })
    }

    /// Saves credentials: to the helper if one is configured, else into `auths`.
    pub fn store(&mut self, host: &str, cred: &Credential) -> Result<()> {
        if let Some(helper) = self.helper_for(host) {
            let (user, secret) = match cred {
                Credential::Basic { username, password } => (username.clone(), password.clone()),
                Credential::IdentityToken { token, .. } => ("<token>".to_string(), token.clone()),
            };
            let body = json!({"ServerURL": server_url(host), "Username": user, "Secret": secret});
            run_helper(&helper, "store", body.to_string().as_bytes())?;
            return Ok(());
        }
        let key = server_url(host);
        let entry = match cred {
            Credential::Basic { username, password } => {
                json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))})
            }
            Credential::IdentityToken { username, token } => json!({
                "auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:")),
                "identitytoken": token,
            }),
        };
        let auths = self.json.entry("auths").or_insert_with(|| json!({}));
        if let Some(m) = auths.as_object_mut() {
            let host_n = normalize_host(host);
            m.retain(|k, _| key_host(k) != host_n);
            m.insert(key, entry);
        }
        self.save()
    }

    /// Removes credentials for `host`; false when there were none.
    pub fn erase(&mut self, host: &str) -> Result<bool> {
        let mut found = false;
        if let Some(helper) = self.helper_for(host) {
            found |= run_helper(&helper, "erase", server_url(host).as_bytes()).is_ok();
        }
        let host_n = normalize_host(host);
        if let Some(m) = self.json.get_mut("auths").and_then(Value::as_object_mut) {
            let before = m.len();
            m.retain(|k, _| key_host(k) != host_n);
            if m.len() != before {
                found = true;
                self.save()?;
            }
        }
        Ok(found)
    }

    /// Writes config.json with mode 0600, by temp file and rename.
    fn save(&self) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(&Value::Object(self.json.clone())).unwrap_or_default();
        let res = (|| {
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res.map_err(|e| Error::io(format!("write {}", self.path.display()), e))
    }
}

fn run_helper(helper: &str, verb: &str, input: &[u8]) -> Result<Vec<u8>> {
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Credentials(format!("{prog} {verb}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child.wait_with_output().map_err(|e| Error::Credentials(format!("{prog} {verb}: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string() + String::from_utf8_lossy(&out.stderr).trim();
        return Err(Error::Credentials(format!("{prog} {verb}: {msg}")));
    }
    Ok(out.stdout)
}

fn helper_get(helper: &str, host: &str) -> Result<Option<Credential>> {
    let out = match run_helper(helper, "get", server_url(host).as_bytes()) {
        Ok(o) => o,
        Err(Error::Credentials(m)) if m.contains("not found") => return Ok(None),
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&out)
        .map_err(|e| Error::Credentials(format!("docker-credential-{helper} get: bad JSON: {e}")))?;
    let user = v.get("Username").and_then(Value::as_str).unwrap_or_default().to_string();
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or_default().to_string();
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if user == "<token>" {
        Credential::IdentityToken { username: String::new(), token: secret }
    } else {
        Credential::Basic { username: user, password: secret }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auths_like_docker() {
        let dir = std::env::temp_dir().join(format!("wharf-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("me:secret");
        std::fs::write(&p, format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.example:5000":{{"auth":"","identitytoken":"rt"}}}}}}"#)).unwrap();
        let c = DockerConfig::load_from(p.clone()).unwrap();
        assert_eq!(
            c.credentials_for("docker.io").unwrap(),
            Some(Credential::Basic { username: "me".into(), password: "secret".into() })
        );
        assert!(c.credentials_for("registry-1.docker.io").unwrap().is_some());
        assert!(matches!(c.credentials_for("reg.example:5000").unwrap(), Some(Credential::IdentityToken { .. })));
        assert_eq!(c.credentials_for("other.example").unwrap(), None);
        let mut c = c;
        c.store("other.example", &Credential::Basic { username: "u".into(), password: "p".into() }).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(c.erase("other.example").unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
