//! A connection to one registry: transport (oci-client over reqwest with
//! rustls), TLS and plain-HTTP policy, and authorization. Tokens are fetched
//! here, not by oci-client, because we need what it lacks: the refresh-token
//! POST flow and extra `repository:OTHER:pull` scopes for cross-repo mounts.
//! The token is then handed to oci-client as `RegistryAuth::Bearer`.

use crate::auth::{parse_challenge, Challenge, Credential, DockerConfig, TokenCache, TokenRequest};
use crate::error::{Error, Result};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::OnceCell;

/// How to reach registries: which may use plain HTTP, extra CAs, limits.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Hosts reached over plain HTTP (loopback hosts always are), as Docker's `--insecure-registry`.
    pub insecure: Vec<String>,
    /// Directories of per-host CA certificates (`<dir>/<host>/*.crt`), as Docker's certs.d.
    pub cert_dirs: Vec<PathBuf>,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
    /// Credentials to use instead of the docker config's (login verification).
    pub credentials: Option<Credential>,
    /// The docker config to read credentials from (default: `DockerConfig::default_path`).
    pub docker_config: Option<PathBuf>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: std::env::var("WHARF_INSECURE_REGISTRIES")
                .map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default(),
            cert_dirs: vec!["/etc/docker/certs.d".into(), "/etc/containers/certs.d".into()],
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 3,
            credentials: None,
            docker_config: None,
        }
    }
}

/// The API host for a registry name: Docker Hub's is registry-1.docker.io.
pub fn api_host(host: &str) -> String {
    if crate::auth::config::normalize_host(host) == "docker.io" {
        "registry-1.docker.io".into()
    } else {
        host.into()
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h.ends_with(".localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One registry, authorized lazily per repository and operation.
pub struct Registry {
    pub(crate) host: String,
    pub(crate) api_host: String,
    scheme: &'static str,
    pub(crate) http: reqwest::Client,
    /// oci-client, built on a thread of its own (see [`Registry::oci`]).
    oci: std::sync::OnceLock<oci_client::Client>,
    oci_build: std::sync::Mutex<Option<std::thread::JoinHandle<oci_client::Client>>>,
    oci_config: Box<dyn Fn() -> ClientConfig + Send + Sync>,
    cred: Option<Credential>,
    tokens: TokenCache,
    challenge: OnceCell<Challenge>,
    pub(crate) opts: RegistryOptions,
}

impl Registry {
    pub fn new(host: &str, opts: RegistryOptions) -> Result<Self> {
        // ring, not aws-lc: no C toolchain or cmake needed to build us.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let host = crate::auth::config::normalize_host(host);
        let api = api_host(&host);
        let insecure = is_loopback(&host) || opts.insecure.iter().any(|i| *i == host || *i == api);
        let certs = extra_certs(&opts.cert_dirs, &host)?;
        let cred = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => {
                let cfg = match &opts.docker_config {
                    Some(p) => DockerConfig::load_from(p.clone())?,
                    None => DockerConfig::load()?,
                };
                cfg.credentials_for(&host)?
            }
        };
        let loopback = is_loopback(&host);
        let mut http = reqwest::Client::builder().connect_timeout(Duration::from_secs(30)).user_agent("wharf");
        if loopback && certs.is_empty() {
            // Plain HTTP: skip loading the system's ~150 root certificates
            // (about 10 ms of every command's start-up).
            http = http.tls_certs_only(Vec::new());
        }
        for c in &certs {
            let cert = reqwest::Certificate::from_pem(&c.data)
                .map_err(|e| Error::InvalidInput(format!("CA certificate: {e}")))?;
            http = http.add_root_certificate(cert);
        }
        let http = http.build().map_err(|e| Error::InvalidInput(format!("http client: {e}")))?;
        let (max_down, max_up) = (opts.max_concurrent_downloads.max(1), opts.max_concurrent_uploads.max(1));
        let (api2, no_tls) = (api.clone(), loopback && certs.is_empty());
        let oci_config = move || ClientConfig {
            protocol: if insecure { ClientProtocol::HttpsExcept(vec![api2.clone()]) } else { ClientProtocol::Https },
            tls_certs_only: if no_tls { vec![no_tls_root()] } else { Vec::new() },
            extra_root_certificates: certs.clone(),
            use_monolithic_push: true,
            max_concurrent_download: max_down,
            max_concurrent_upload: max_up,
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: "wharf",
            ..Default::default()
        };
        // oci-client also builds a default reqwest client, which loads the
        // system's root certificates whatever its config says (several ms of
        // CPU): done beside the first requests (the /v2/ ping, the manifest),
        // which need only our own client.
        let build = oci_config.clone();
        let oci_build =
            std::thread::Builder::new().name("oci-client".into()).spawn(move || oci_client::Client::new(build())).ok();
        Ok(Registry {
            scheme: if insecure { "http" } else { "https" },
            oci: std::sync::OnceLock::new(),
            oci_build: std::sync::Mutex::new(oci_build),
            oci_config: Box::new(oci_config),
            host,
            api_host: api,
            http,
            cred,
            tokens: TokenCache::default(),
            challenge: OnceCell::new(),
            opts,
        })
    }

    /// The oci-client, waiting for the thread that builds it (or building
    /// it here if that thread could not start or died).
    pub(crate) fn oci(&self) -> &oci_client::Client {
        self.oci.get_or_init(|| {
            let handle = self.oci_build.lock().unwrap_or_else(|e| e.into_inner()).take();
            handle.and_then(|h| h.join().ok()).unwrap_or_else(|| oci_client::Client::new((self.oci_config)()))
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.api_host)
    }

    /// An oci-client reference for `repo` at `tag` or `digest`.
    pub(crate) fn oci_ref(&self, repo: &str, tag: Option<&str>, digest: Option<&str>) -> oci_client::Reference {
        match (tag, digest) {
            (_, Some(d)) => oci_client::Reference::with_digest(self.api_host.clone(), repo.to_string(), d.to_string()),
            (Some(t), None) => oci_client::Reference::with_tag(self.api_host.clone(), repo.to_string(), t.to_string()),
            (None, None) => {
                oci_client::Reference::with_tag(self.api_host.clone(), repo.to_string(), "latest".to_string())
            }
        }
    }

    /// What `GET /v2/` asks for; asked once per registry.
    async fn challenge(&self) -> Result<&Challenge> {
        self.challenge
            .get_or_try_init(|| async {
                let res = self.http.get(self.url("/v2/")).send().await.map_err(|e| Error::Registry {
                    registry: self.host.clone(),
                    reason: format!("cannot reach {}: {e}", self.url("/v2/")),
                    transient: true,
                })?;
                if res.status().is_success() {
                    return Ok(Challenge::None);
                }
                let h =
                    res.headers().get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or("");
                Ok(match parse_challenge(h) {
                    Challenge::None if res.status() == 401 => Challenge::Basic,
                    c => c,
                })
            })
            .await
    }

    /// Makes oci-client's calls on `repo` authorized for pull (and push),
    /// with pull access to `mount_from` repositories for cross-repo mounts.
    pub(crate) async fn authorize(
        &self,
        oref: &oci_client::Reference,
        push: bool,
        mount_from: &[String],
    ) -> Result<RegistryAuth> {
        let auth = match self.challenge().await?.clone() {
            Challenge::None => RegistryAuth::Anonymous,
            Challenge::Basic => match &self.cred {
                Some(Credential::Basic { username, password }) => {
                    RegistryAuth::Basic(username.clone(), password.clone())
                }
                _ => {
                    return Err(Error::Unauthorized {
                        registry: self.host.clone(),
                        reason: "the registry wants a username and password: run `wharf login`".into(),
                    })
                }
            },
            Challenge::Bearer { realm, service } => {
                let mut scopes =
                    vec![format!("repository:{}:{}", oref.repository(), if push { "pull,push" } else { "pull" })];
                scopes.extend(
                    mount_from.iter().filter(|r| *r != oref.repository()).map(|r| format!("repository:{r}:pull")),
                );
                let t = self.tokens.get(&self.token_request(&realm, service.as_deref(), &scopes)).await?;
                RegistryAuth::Bearer(t)
            }
        };
        // oci-client keeps no token for an anonymous registry: told of one,
        // it pings `/v2/` again before every blob request (a second round
        // trip per layer). Told nothing, it sends the requests bare.
        if matches!(auth, RegistryAuth::Anonymous) {
            return Ok(auth);
        }
        let ops: &[RegistryOperation] =
            if push { &[RegistryOperation::Pull, RegistryOperation::Push] } else { &[RegistryOperation::Pull] };
        for op in ops {
            self.oci().auth(oref, &auth, *op).await.map_err(|e| Error::from_oci(&self.host, &oref.whole(), e))?;
        }
        Ok(auth)
    }

    /// Adds `auth` to a request of our own (manifest GETs with a size limit).
    pub(crate) fn with_auth(req: reqwest::RequestBuilder, auth: &RegistryAuth) -> reqwest::RequestBuilder {
        match auth {
            RegistryAuth::Anonymous => req,
            RegistryAuth::Basic(u, p) => req.basic_auth(u, Some(p)),
            RegistryAuth::Bearer(t) => req.bearer_auth(t),
        }
    }

    fn token_request<'a>(&'a self, realm: &'a str, service: Option<&'a str>, scopes: &'a [String]) -> TokenRequest<'a> {
        TokenRequest { http: &self.http, registry: &self.host, realm, service, scopes, cred: self.cred.as_ref() }
    }

    /// Checks credentials against the registry, as `docker login` does.
    pub async fn verify_login(&self) -> Result<()> {
        match self.challenge().await?.clone() {
            Challenge::None => Ok(()),
            Challenge::Basic => {
                let Some(Credential::Basic { username, password }) = &self.cred else {
                    return Err(Error::Unauthorized { registry: self.host.clone(), reason: "no credentials".into() });
                };
                let res =
                    self.http.get(self.url("/v2/")).basic_auth(username, Some(password)).send().await.map_err(|e| {
                        Error::Registry { registry: self.host.clone(), reason: e.to_string(), transient: true }
                    })?;
                if res.status().is_success() {
                    Ok(())
                } else {
                    Err(Error::Unauthorized { registry: self.host.clone(), reason: format!("{}", res.status()) })
                }
            }
            Challenge::Bearer { realm, service } => {
                self.tokens.get(&self.token_request(&realm, service.as_deref(), &[])).await.map(|_| ())
            }
        }
    }
}

/// A certificate whose private key was thrown away when it was made: it can
/// verify no server. oci-client loads the system roots unless given a list
/// of its own; a loopback registry speaks plain HTTP and needs none.
fn no_tls_root() -> Certificate {
    Certificate { encoding: CertificateEncoding::Pem, data: include_bytes!("no-tls-root.pem").to_vec() }
}

/// CA certificates for `host` from `<dir>/<host>/*.crt` (Docker's certs.d layout).
fn extra_certs(dirs: &[PathBuf], host: &str) -> Result<Vec<Certificate>> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d.join(host)) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "crt") {
                let data = std::fs::read(&p).map_err(|e| Error::io(format!("read {}", p.display()), e))?;
                out.push(Certificate { encoding: CertificateEncoding::Pem, data });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts() {
        for h in ["localhost", "localhost:5000", "127.0.0.1:5050", "[::1]:5000", "127.9.9.9"] {
            assert!(super::is_loopback(h), "{h}");
        }
        for h in ["docker.io", "10.0.0.1:5000", "example.com:5000"] {
            assert!(!super::is_loopback(h), "{h}");
        }
    }
}
