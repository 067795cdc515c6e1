//! Which pods and containers are the kubelet's. Those made through CRI
//! carry the label [`LABEL`]` = "true"` (never shown to the kubelet: the
//! labels it gave are returned without it); those made by the CLI do not,
//! and CRI lists never show them.

/// The label that marks a pod or a container as made through CRI.
pub const LABEL: &str = "io.wharf.cri";

pub fn is_cri_container(c: &wharf_pod::Container) -> bool {
    c.record.options.labels.iter().any(|l| l.split_once('=') == Some((LABEL, "true")))
}

pub fn is_cri_pod(p: &wharf_pod::Pod) -> bool {
    p.labels.get(LABEL).is_some_and(|v| v == "true")
}
