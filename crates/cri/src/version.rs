//! Version: who we are, and which CRI version we speak.

use k8s_cri::v1 as cri;

/// The kubelet checks only `runtime_api_version`; `version` is the CRI
/// server's own API version, as containerd reports it.
pub(crate) fn version(_: &cri::VersionRequest) -> cri::VersionResponse {
    cri::VersionResponse {
        version: "0.1.0".into(),
        runtime_name: "wharf".into(),
        runtime_version: env!("CARGO_PKG_VERSION").into(),
        runtime_api_version: "v1".into(),
    }
}
