//! # Layout
//!
//! `wharf kube play FILE.yaml` / `kube down FILE.yaml` / `kube generate POD`:
//! Kubernetes manifests run locally, as `podman kube play` does, on the
//! pods of [`crate::pod`].
//!
//! - [`parse`]: YAML documents → `k8s-openapi` objects; wrong types,
//!   unknown fields and fields wharf does not implement ([`allow`]) are
//!   refused with their field path.
//! - [`plan`]: objects → [`plan::PodPlan`]s (each container's
//!   [`crate::RunOptions`], the pod's volumes); every reference is resolved
//!   here, so a bad manifest creates nothing.
//! - `probe`, `quantity`: probes and resource quantities.
//! - `play`: plans → pods (volumes, files of ConfigMaps and Secrets,
//!   init containers run to completion, then the app containers); `down`.
//! - `generate`: a running pod → a Pod manifest that `play` accepts back.

mod allow;
mod generate;
pub mod parse;
pub mod plan;
mod play;
mod probe;
mod quantity;

pub use parse::{parse, Located, Object};
pub use plan::{Catalog, PodPlan};
pub(crate) use play::forget_pod;
pub use play::{Kube, PlayOptions, Played};

use crate::error::Result;

/// Every object of the files (`(name, text)`), ConfigMaps/Secrets/claims
/// catalogued, then the pods planned; nothing is made.
pub fn plan_files(
    files: &[(String, String)],
    names: &mut dyn FnMut(&str, &k8s_openapi::api::core::v1::PodSpec) -> String,
) -> Result<(Vec<Located>, Catalog, Vec<PodPlan>)> {
    plan_with(files, Vec::new(), names)
}

/// [`plan_files`] with objects read elsewhere (`--configmap` files).
pub(crate) fn plan_with(
    files: &[(String, String)],
    extra: Vec<Located>,
    names: &mut dyn FnMut(&str, &k8s_openapi::api::core::v1::PodSpec) -> String,
) -> Result<(Vec<Located>, Catalog, Vec<PodPlan>)> {
    let mut objects = extra;
    for (name, text) in files {
        objects.extend(parse(name, text)?);
    }
    let mut cat = Catalog::default();
    for (_, o) in &objects {
        cat.add(o);
    }
    let pods = plan::pods(&objects, &cat, names)?;
    Ok((objects, cat, pods))
}

/// Kubernetes' alphabet for generated name suffixes (no vowels, no 0/1/3).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `n` random characters of Kubernetes' suffix alphabet.
pub fn random_suffix(n: usize) -> String {
    let mut b = vec![0u8; n];
    if rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        b.iter_mut().enumerate().for_each(|(i, x)| *x = (t >> (i % 4 * 8)) as u8);
    }
    b.iter().map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char).collect()
}

/// A Deployment's pod name as Kubernetes makes it:
/// `<deployment>-<pod-template-hash>-<5 random>`, the hash (10 characters
/// of the same alphabet) a function of the pod template.
pub fn deployment_pod_name(deployment: &str, template: &k8s_openapi::api::core::v1::PodSpec) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(template).unwrap_or_default().hash(&mut h);
    let mut x = h.finish();
    let mut hash = String::new();
    for _ in 0..10 {
        hash.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
        x /= ALPHABET.len() as u64;
    }
    format!("{deployment}-{hash}-{}", random_suffix(5))
}
