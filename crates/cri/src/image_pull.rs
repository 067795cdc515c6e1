//! PullImage: the registry client's pull, through the configured mirrors
//! first (each tried in order, then the registry itself, as containerd's
//! `hosts.toml`), with the credentials the kubelet passes (from the pod's
//! imagePullSecrets) or else the docker config's. The image keeps the name
//! asked for whichever host served it. Answers the image ID, as containerd.

use crate::service::Cri;
use base64::Engine as _;
use k8s_cri::v1 as cri;
use tonic::Status;
use wharf_image::Reference;
use wharf_registry::auth::Credential;
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
    // server's workers: it gets a thread and a runtime of its own.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("wharf-cri-pull".into())
        .spawn(move || {
            let res = wharf_registry::block_on(pull_endpoints(&store, &config, &reference, credentials, auth.as_ref()));
            let _ = tx.send(res);
        })
        .map_err(|e| Status::internal(format!("PullImage: start a thread: {e}")))?;
    rx.await.map_err(|_| Status::internal("PullImage: the pull thread died"))?
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
        let res = match Registry::new(endpoint, opts) {
            Ok(reg) => reg.pull(store, reference, &PullOptions::default()).await,
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
