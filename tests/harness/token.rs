//! A token issuer as Docker Hub runs one: `GET /token` with Basic
//! credentials, or `POST /token` with `grant_type=refresh_token`, answering
//! with an ES256 JWT whose `x5c` header carries a self-signed certificate
//! that the registry trusts (`rootcertbundle`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub const SERVICE: &str = "wharf-test-registry";
pub const ISSUER: &str = "wharf-test-issuer";
pub const REFRESH_TOKEN: &str = "wharf-refresh-token-0123";

pub struct TokenIssuer {
    pub realm: String,
    pub cert_pem: String,
    /// "GET"/"POST" and the query or form of every token request.
    pub requests: Arc<Mutex<Vec<(String, String)>>>,
}

struct Keys {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    user: String,
    password: String,
}

impl TokenIssuer {
    pub fn start(user: &str, password: &str) -> Self {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["wharf-token-issuer".to_string()]).unwrap();
        let cert = params.self_signed(&kp).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &kp.serialize_der(), &SystemRandom::new())
            .unwrap();
        let keys = Arc::new(Keys { key, cert_der: cert.der().to_vec(), user: user.into(), password: password.into() });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reqs = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (keys, reqs) = (keys.clone(), reqs.clone());
                std::thread::spawn(move || serve(conn, &keys, &reqs));
            }
        });
        TokenIssuer { realm, cert_pem: cert.pem(), requests }
    }
}

fn serve(conn: TcpStream, keys: &Keys, reqs: &Mutex<Vec<(String, String)>>) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let (mut auth, mut len) = (String::new(), 0usize);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or(("", ""));
        match k.to_ascii_lowercase().as_str() {
            "authorization" => auth = v.trim().to_string(),
            "content-length" => len = v.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut body = vec![0u8; len];
    let _ = r.read_exact(&mut body);
    let params = if method == "POST" {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        target.split_once('?').map(|x| x.1.to_string()).unwrap_or_default()
    };
    reqs.lock().unwrap().push((method.clone(), params.clone()));
    let kv: Vec<(String, String)> =
        params.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_string(), decode(v))).collect();
    let get = |k: &str| kv.iter().filter(|(x, _)| x == k).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let basic_ok = auth
        .strip_prefix("Basic ")
        .and_then(|b| STANDARD.decode(b).ok())
        .is_some_and(|b| b == format!("{}:{}", keys.user, keys.password).into_bytes());
    let refresh_ok = get("grant_type").first().map(String::as_str) == Some("refresh_token")
        && get("refresh_token").first().map(String::as_str) == Some(REFRESH_TOKEN);
    let reply = if basic_ok || refresh_ok {
        let scopes: Vec<String> =
            get("scope").iter().flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>()).collect();
        let jwt = sign(keys, &keys.user, &scopes);
        let json = format!(r#"{{"token":"{jwt}","access_token":"{jwt}","expires_in":300}}"#);
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}", json.len())
    } else {
        let msg = r#"{"details":"incorrect username or password"}"#;
        format!("HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}", msg.len())
    };
    let mut w = conn;
    let _ = w.write_all(reply.as_bytes());
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00"), 16).unwrap_or(0));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An ES256 JWT granting every requested `repository:NAME:ACTIONS` scope.
fn sign(keys: &Keys, sub: &str, scopes: &[String]) -> String {
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut it = s.splitn(3, ':');
            let (t, name, actions) = (it.next()?, it.next()?, it.next()?);
            Some(serde_json::json!({"type": t, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&keys.cert_der)]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": sub, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", scopes.len()), "access": access,
    });
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = keys.key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}
