//! The kubelet's view of a wharf pod or container: its CRI metadata,
//! labels (without [`LABEL`](crate::owner::LABEL)) and annotations, and
//! the lookups and filters the stats RPCs share.
//!
//! The metadata is what RunPodSandbox and CreateContainer recorded
//! (`sandbox::meta_of`, `container::meta`); for a pod or container
//! labelled by hand it comes from the kubelet's usual labels
//! (`io.kubernetes.pod.name`, `…pod.namespace`, `…pod.uid`,
//! `io.kubernetes.container.name`), wharf's own name standing in without them.

use crate::owner::{is_cri_container, is_cri_pod, LABEL};
use k8s_cri::v1 as cri;
use std::collections::HashMap;
use tonic::Status;
use wharf_pod::{Container, Pod, Pods};

/// The label of a CRI container's restart count (the kubelet's `attempt`).
pub(crate) const ATTEMPT: &str = "io.wharf.cri.attempt";

/// Every CRI pod with its CRI containers (a blocking read of the store).
pub(crate) fn cri_pods(pods: &Pods) -> Result<Vec<Pod>, Status> {
    let mut list = pods.list().map_err(|e| Status::internal(format!("list pods: {e}")))?;
    list.retain(is_cri_pod);
    for p in &mut list {
        p.containers.retain(is_cri_container);
    }
    Ok(list)
}

/// The one of `ids` that is `want` or that `want` uniquely begins
/// (containerd's truncated IDs); NotFound otherwise.
pub(crate) fn resolve<'a>(
    what: &str,
    want: &str,
    ids: impl Iterator<Item = &'a str> + Clone,
) -> Result<&'a str, Status> {
    if want.is_empty() {
        return Err(Status::invalid_argument(format!("{what} ID is empty")));
    }
    if let Some(id) = ids.clone().find(|id| *id == want) {
        return Ok(id);
    }
    let hits: Vec<&str> = ids.filter(|id| id.starts_with(want)).collect();
    match hits.as_slice() {
        [id] => Ok(id),
        [] => Err(Status::not_found(format!("{what} {want:?} not found"))),
        _ => Err(Status::invalid_argument(format!("{what} ID prefix {want:?} is ambiguous"))),
    }
}

/// A container's labels as the kubelet gave them: those CreateContainer
/// recorded, else (a container labelled by hand) its own labels.
pub(crate) fn container_labels(c: &Container) -> HashMap<String, String> {
    let m = crate::container::meta(c);
    if !m.name.is_empty() {
        return m.labels.into_iter().collect();
    }
    c.record
        .options
        .labels
        .iter()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| *k != LABEL && *k != ATTEMPT)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn pod_labels(p: &Pod) -> HashMap<String, String> {
    p.labels.iter().filter(|(k, _)| *k != LABEL).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Every `selector` pair is among `labels`.
pub(crate) fn selects(selector: &HashMap<String, String>, labels: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub(crate) fn container_metadata(c: &Container) -> cri::ContainerMetadata {
    let m = crate::container::meta(c);
    if !m.name.is_empty() {
        return cri::ContainerMetadata { name: m.name, attempt: m.attempt };
    }
    let label = |k: &str| c.record.options.labels.iter().find_map(|l| l.strip_prefix(k)?.strip_prefix('='));
    cri::ContainerMetadata {
        name: label("io.kubernetes.container.name").unwrap_or(c.name()).to_string(),
        attempt: label(ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or(0),
    }
}

pub(crate) fn pod_metadata(p: &Pod) -> cri::PodSandboxMetadata {
    let m = crate::sandbox::meta_of(p);
    if !m.name.is_empty() {
        return cri::PodSandboxMetadata { name: m.name, uid: m.uid, namespace: m.namespace, attempt: m.attempt };
    }
    let label = |k: &str| p.labels.get(k).cloned().unwrap_or_default();
    let name = p.labels.get("io.kubernetes.pod.name").cloned().unwrap_or_else(|| p.name.clone());
    cri::PodSandboxMetadata {
        name,
        uid: label("io.kubernetes.pod.uid"),
        namespace: label("io.kubernetes.pod.namespace"),
        attempt: p.labels.get(ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or(0),
    }
}

pub(crate) fn container_attributes(c: &Container) -> cri::ContainerAttributes {
    cri::ContainerAttributes {
        id: c.id().to_string(),
        metadata: Some(container_metadata(c)),
        labels: container_labels(c),
        annotations: crate::container::meta(c).annotations.into_iter().collect(),
    }
}

pub(crate) fn pod_attributes(p: &Pod) -> cri::PodSandboxAttributes {
    cri::PodSandboxAttributes {
        id: p.id.clone(),
        metadata: Some(pod_metadata(p)),
        labels: pod_labels(p),
        annotations: match crate::sandbox::meta_of(p) {
            m if !m.name.is_empty() => m.annotations.into_iter().collect(),
            _ => p
                .annotations
                .iter()
                .filter(|(k, _)| *k != crate::sandbox::META)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
    }
}

/// SANDBOX_READY: its infra or a container runs (containerd lists
/// metrics of ready sandboxes only).
pub(crate) fn pod_ready(p: &Pod) -> bool {
    p.infra.running || p.containers.iter().any(Container::is_running)
}

/// An RFC 3339 time as ns since the epoch; 0 for none or the zero time.
pub(crate) fn ns(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).ok().and_then(|d| d.timestamp_nanos_opt()).unwrap_or(0).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_by_full_or_unique_prefix() {
        let ids = ["abc123", "abd456", "abc"];
        assert_eq!(resolve("container", "abc", ids.iter().copied()).unwrap(), "abc");
        assert_eq!(resolve("container", "abd", ids.iter().copied()).unwrap(), "abd456");
        assert_eq!(resolve("container", "zz", ids.iter().copied()).unwrap_err().code(), tonic::Code::NotFound);
        assert_eq!(resolve("container", "ab", ids.iter().copied()).unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(resolve("container", "", ids.iter().copied()).unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn selectors_need_every_pair() {
        let labels: HashMap<String, String> = [("a", "1"), ("b", "2")].map(|(k, v)| (k.into(), v.into())).into();
        let sel = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(selects(&sel(&[]), &labels));
        assert!(selects(&sel(&[("a", "1")]), &labels));
        assert!(!selects(&sel(&[("a", "1"), ("b", "3")]), &labels));
        assert!(!selects(&sel(&[("c", "1")]), &labels));
    }
}
