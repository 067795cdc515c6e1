//! PullImage: the registry client's pull, through the configured mirrors
//! first (each tried in order, then the registry itself, as containerd's
//! `hosts.toml`), with the credentials the kubelet passes (from the pod's
//! imagePullSecrets) or else the docker config's. The image keeps the name
//! asked for whichever host served it. Answers the image ID, as containerd.

use crate::service::Cri;
use base64::Engine as _;
use k8s_cri::v1 as cri;
use std::sync::{Arc, Mutex, OnceLock};
use tonic::Status;
use wharf_image::Reference;
use wharf_registry::auth::config::normalize_host;
use wharf_registry::auth::{Credential, DockerConfig};
use wharf_registry::{PullOptions, Registry, RegistryOptions};

pub(crate) async fn pull_image(c: &Cri, r: &cri::PullImageRequest) -> Result<String, Status> {
    let name = r.image.as_ref().map(|s| s.image.as_str()).unwrap_or_default();
    if name.is_empty() {
        return Err(Status::invalid_argument("PullImage: no image given"));
    }
    let reference = Reference::parse(name).map_err(|e| Status::invalid_argument(format!("PullImage {name:?}: {e}")))?;
    let credentials = credential(r.auth.as_ref())?;
    let (store, config, auth) = (c.store.clone(), c.config.clone(), r.auth.clone());
    // The registry client's pull future is not Send (a higher-ranked
    // lifetime in its stream combinators), so it cannot run on the
    // server's workers: a blocking thread drives it on the pull runtime.
    crate::service::blocking(move || {
        runtime()?.block_on(pull_endpoints(&store, &config, &reference, credentials, auth.as_ref()))
    })
    .await
}

/// The runtime every pull runs on (made once, kept for the daemon's life:
/// the pooled connections of [`clients`] live on it).
fn runtime() -> Result<&'static tokio::runtime::Runtime, Status> {
    static RT: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("wharf-cri-pull").enable_all().build()
    })
    .as_ref()
    .map_err(|e| Status::internal(format!("PullImage: start the pull runtime: {e}")))
}

/// What makes two registry clients interchangeable.
#[derive(PartialEq)]
struct ClientKey {
    endpoint: String,
    credentials: Option<Credential>,
    insecure: Vec<String>,
}

/// The registry clients of this daemon, one per endpoint and credentials,
/// reused by every pull as containerd's resolver does: their connection
/// pools, `/v2/` challenges and bearer tokens (per scope set, until shortly
/// before they expire). A client that failed a pull is dropped, so the
/// next one asks again from scratch.
type Clients = Mutex<Vec<(ClientKey, Arc<Registry>)>>;

fn clients() -> &'static Clients {
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    CLIENTS.get_or_init(Mutex::default)
}

/// At most this many clients are kept (the oldest goes first).
const MAX_CLIENTS: usize = 32;

/// The kept client for `endpoint` with `opts`, or a new one. The docker
/// config is read at each pull, so a `docker login` is seen at once.
fn client(endpoint: &str, mut opts: RegistryOptions) -> wharf_registry::Result<Arc<Registry>> {
    if opts.credentials.is_none() {
        let cfg = match &opts.docker_config {
            Some(p) => DockerConfig::load_from(p.clone())?,
            None => DockerConfig::load()?,
        };
        opts.credentials = cfg.credentials_for(&normalize_host(endpoint))?;
    }
    let key = ClientKey {
        endpoint: endpoint.to_string(),
        credentials: opts.credentials.clone(),
        insecure: opts.insecure.clone(),
    };
    let mut kept = clients().lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, r)) = kept.iter().find(|(k, _)| *k == key) {
        return Ok(r.clone());
    }
    let r = Arc::new(Registry::new(endpoint, opts)?);
    if kept.len() >= MAX_CLIENTS {
        kept.remove(0);
    }
    kept.push((key, r.clone()));
    Ok(r)
}

/// Drops the kept client `r` (it failed).
fn forget(r: &Arc<Registry>) {
    clients().lock().unwrap_or_else(|e| e.into_inner()).retain(|(_, k)| !Arc::ptr_eq(k, r));
}

/// Each mirror of the image's registry in order, then the registry itself.
async fn pull_endpoints(
    store: &wharf_image::Store,
    config: &crate::Config,
    reference: &Reference,
    credentials: Option<Credential>,
    auth: Option<&cri::AuthConfig>,
) -> Result<String, Status> {
    let host = reference.domain().to_string();
    let mut endpoints: Vec<(String, bool)> = config.mirrors_of(&host);
    endpoints.push((host.clone(), false));
    let mut failures: Vec<String> = Vec::new();
    for (i, (endpoint, plain_http)) in endpoints.iter().enumerate() {
        let mut opts = RegistryOptions {
            credentials: credentials.clone().filter(|_| applies_to(auth, endpoint)),
            docker_config: config.registry.docker_config.clone(),
            ..RegistryOptions::default()
        };
        opts.insecure.extend(config.registry.insecure.iter().cloned());
        if *plain_http {
            opts.insecure.push(endpoint.clone());
        }
        let t0 = std::time::Instant::now();
        let res = match client(endpoint, opts) {
            Ok(reg) => {
                let res = reg.pull(store, reference, &PullOptions::default()).await;
                if res.is_err() {
                    forget(&reg);
                }
                res
            }
            Err(e) => Err(e),
        };
        match res {
            Ok(p) => {
                tracing::info!("PullImage {reference} from {endpoint}: {} in {:?}", p.id, t0.elapsed());
                return Ok(p.id);
            }
            Err(e) if i + 1 < endpoints.len() => {
                tracing::info!("PullImage {reference}: mirror {endpoint}: {e}; trying the next");
                failures.push(format!("mirror {endpoint}: {e}"));
            }
            Err(e) => {
                let s: Status = crate::Error::from(e).into();
                let after =
                    if failures.is_empty() { String::new() } else { format!(" (after {})", failures.join("; ")) };
                return Err(Status::new(s.code(), format!("PullImage {reference}: {}{after}", s.message())));
            }
        }
    }
    unreachable!("the registry itself is always the last endpoint")
}

/// Credentials given for one registry (`server_address`) go to that host
/// only, never to a mirror run by someone else; without an address they go
/// to every endpoint, as containerd does.
fn applies_to(a: Option<&cri::AuthConfig>, endpoint: &str) -> bool {
    use wharf_registry::auth::config::{key_host, normalize_host};
    a.is_none_or(|a| a.server_address.is_empty() || key_host(&a.server_address) == normalize_host(endpoint))
}

/// The kubelet's credentials: user and password, or `auth` (base64 of
/// `user:password`), or an identity token. None: the docker config's.
fn credential(a: Option<&cri::AuthConfig>) -> Result<Option<Credential>, Status> {
    let Some(a) = a else { return Ok(None) };
    if !a.identity_token.is_empty() {
        return Ok(Some(Credential::IdentityToken { username: a.username.clone(), token: a.identity_token.clone() }));
    }
    if !a.username.is_empty() || !a.password.is_empty() {
        return Ok(Some(Credential::Basic { username: a.username.clone(), password: a.password.clone() }));
    }
    if !a.auth.is_empty() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.auth.trim())
            .map_err(|e| Status::invalid_argument(format!("auth: not base64: {e}")))?;
        let text = String::from_utf8(raw).map_err(|_| Status::invalid_argument("auth: not UTF-8"))?;
        let (u, p) = text.split_once(':').ok_or_else(|| Status::invalid_argument("auth: not user:password"))?;
        return Ok(Some(Credential::Basic { username: u.to_string(), password: p.to_string() }));
    }
    if !a.registry_token.is_empty() {
        return Err(Status::invalid_argument(
            "auth: registry_token (a bearer token) is not supported; give a user and password",
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_the_kubelet() {
        assert_eq!(credential(None).unwrap(), None);
        assert_eq!(credential(Some(&cri::AuthConfig::default())).unwrap(), None);
        let basic = |u: &str, p: &str| Some(Credential::Basic { username: u.into(), password: p.into() });
        let a = cri::AuthConfig { username: "u".into(), password: "p".into(), ..Default::default() };
        assert_eq!(credential(Some(&a)).unwrap(), basic("u", "p"));
        let a = cri::AuthConfig { auth: "dTpwOnE=".into(), ..Default::default() }; // u:p:q
        assert_eq!(credential(Some(&a)).unwrap(), basic("u", "p:q"));
        let a = cri::AuthConfig { auth: "!!".into(), ..Default::default() };
        assert_eq!(credential(Some(&a)).unwrap_err().code(), tonic::Code::InvalidArgument);
        let a = cri::AuthConfig { registry_token: "t".into(), ..Default::default() };
        assert_eq!(credential(Some(&a)).unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn credentials_stay_with_their_registry() {
        let a = cri::AuthConfig { server_address: "https://index.docker.io/v1/".into(), ..Default::default() };
        assert!(applies_to(Some(&a), "docker.io"));
        assert!(!applies_to(Some(&a), "127.0.0.1:5000"));
        let a = cri::AuthConfig { server_address: "reg.lan:5000".into(), ..Default::default() };
        assert!(applies_to(Some(&a), "reg.lan:5000"));
        assert!(applies_to(Some(&cri::AuthConfig::default()), "127.0.0.1:5000"));
    }
}
