//! The registry token flow: parse `WWW-Authenticate`, fetch a bearer token
//! (GET with Basic credentials, or POST `grant_type=refresh_token` with an
//! identity token), and cache it per scope set until shortly before expiry.

use super::config::Credential;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// What `GET /v2/` said about authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    None,
    Basic,
    Bearer { realm: String, service: Option<String> },
}

/// Parses a `WWW-Authenticate` value: `Bearer realm="…",service="…",scope="…"`.
pub fn parse_challenge(h: &str) -> Challenge {
    let h = h.trim();
    let (scheme, rest) = h.split_once(char::is_whitespace).unwrap_or((h, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::None;
    }
    let params = parse_params(rest);
    match params.get("realm") {
        Some(realm) => Challenge::Bearer { realm: realm.clone(), service: params.get("service").cloned() },
        None => Challenge::Basic,
    }
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else { break };
        let key = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key, val);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

#[derive(serde::Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Bearer tokens by (realm, service, scopes), reused until near expiry.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, Token>>,
}

/// One token request: where to ask, for what, with which credentials.
pub struct TokenRequest<'a> {
    pub http: &'a reqwest::Client,
    pub registry: &'a str,
    pub realm: &'a str,
    pub service: Option<&'a str>,
    pub scopes: &'a [String],
    pub cred: Option<&'a Credential>,
}

impl TokenCache {
    pub async fn get(&self, r: &TokenRequest<'_>) -> Result<String> {
        let (registry, realm, service, scopes) = (r.registry, r.realm, r.service, r.scopes);
        let key = format!("{realm}|{}|{}", service.unwrap_or(""), scopes.join(" "));
        if let Some(t) = self.tokens.lock().await.get(&key) {
            if t.expires > Instant::now() + Duration::from_secs(10) {
                return Ok(t.value.clone());
            }
        }
        let reply = fetch(r).await?;
        let value = if reply.token.is_empty() { reply.access_token } else { reply.token };
        if value.is_empty() {
            return Err(Error::Unauthorized {
                registry: registry.to_string(),
                reason: "token server sent no token".into(),
            });
        }
        // The distribution spec's default lifetime is 60 s.
        let ttl = Duration::from_secs(reply.expires_in.unwrap_or(60).max(1));
        self.tokens.lock().await.insert(key, Token { value: value.clone(), expires: Instant::now() + ttl });
        Ok(value)
    }
}

async fn fetch(r: &TokenRequest<'_>) -> Result<TokenReply> {
    let (http, registry, realm, service, scopes, cred) = (r.http, r.registry, r.realm, r.service, r.scopes, r.cred);
    let unauthorized = |reason: String| Error::Unauthorized { registry: registry.to_string(), reason };
    let req = match cred {
        Some(Credential::IdentityToken { token, .. }) => {
            let mut form: Vec<(&str, &str)> =
                vec![("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", "wharf")];
            if let Some(s) = service {
                form.push(("service", s));
            }
            let scope = scopes.join(" ");
            if !scope.is_empty() {
                form.push(("scope", &scope));
            }
            let body = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
            http.post(realm).header("Content-Type", "application/x-www-form-urlencoded").body(body)
        }
        other => {
            let mut q: Vec<(&str, &str)> = scopes.iter().map(|s| ("scope", s.as_str())).collect();
            if let Some(s) = service {
                q.push(("service", s));
            }
            let mut r = http.get(realm).query(&q);
            if let Some(Credential::Basic { username, password }) = other {
                r = r.basic_auth(username, Some(password));
            }
            r
        }
    };
    let res = req.send().await.map_err(|e| Error::Registry {
        registry: registry.to_string(),
        reason: format!("token server {realm}: {e}"),
        transient: true,
    })?;
    let status = res.status();
    let body = res.bytes().await.map_err(|e| unauthorized(e.to_string()))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        return Err(unauthorized(format!("token server {realm} answered {status}: {}", text.trim())));
    }
    serde_json::from_slice(&body).map_err(|e| unauthorized(format!("token server {realm}: bad reply: {e}")))
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            }
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Challenge::Basic);
        assert_eq!(
            parse_challenge("Bearer realm=http://x/token"),
            Challenge::Bearer { realm: "http://x/token".into(), service: None }
        );
        assert_eq!(parse_challenge("Negotiate"), Challenge::None);
    }
}
