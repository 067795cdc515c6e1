//! Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
//! PodSandboxStatus, ListPodSandbox — on the pod crate's `Pods` (a CRI
//! sandbox is a wharf pod; its id is the pod's id).

use crate::service::{not_yet, Cri};
use k8s_cri::v1 as cri;
use tonic::Status;

type R<T> = std::result::Result<T, Status>;

pub async fn run_pod_sandbox(_cri: &Cri, _req: cri::RunPodSandboxRequest) -> R<cri::RunPodSandboxResponse> {
    Err(not_yet("RunPodSandbox"))
}

pub async fn stop_pod_sandbox(_cri: &Cri, _req: cri::StopPodSandboxRequest) -> R<cri::StopPodSandboxResponse> {
    Err(not_yet("StopPodSandbox"))
}

pub async fn remove_pod_sandbox(_cri: &Cri, _req: cri::RemovePodSandboxRequest) -> R<cri::RemovePodSandboxResponse> {
    Err(not_yet("RemovePodSandbox"))
}

pub async fn pod_sandbox_status(_cri: &Cri, _req: cri::PodSandboxStatusRequest) -> R<cri::PodSandboxStatusResponse> {
    Err(not_yet("PodSandboxStatus"))
}

pub async fn list_pod_sandbox(_cri: &Cri, _req: cri::ListPodSandboxRequest) -> R<cri::ListPodSandboxResponse> {
    Err(not_yet("ListPodSandbox"))
}
