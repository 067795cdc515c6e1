//! Containers in sandboxes: CreateContainer … ExecSync — on the pod
//! crate's `Containers` (a CRI container is a wharf container in the
//! sandbox's pod; its id is the container's id).

use crate::service::{not_yet, Cri};
use k8s_cri::v1 as cri;
use tonic::Status;

type R<T> = std::result::Result<T, Status>;

pub async fn create_container(_cri: &Cri, _req: cri::CreateContainerRequest) -> R<cri::CreateContainerResponse> {
    Err(not_yet("CreateContainer"))
}

pub async fn start_container(_cri: &Cri, _req: cri::StartContainerRequest) -> R<cri::StartContainerResponse> {
    Err(not_yet("StartContainer"))
}

pub async fn stop_container(_cri: &Cri, _req: cri::StopContainerRequest) -> R<cri::StopContainerResponse> {
    Err(not_yet("StopContainer"))
}

pub async fn remove_container(_cri: &Cri, _req: cri::RemoveContainerRequest) -> R<cri::RemoveContainerResponse> {
    Err(not_yet("RemoveContainer"))
}

pub async fn list_containers(_cri: &Cri, _req: cri::ListContainersRequest) -> R<cri::ListContainersResponse> {
    Err(not_yet("ListContainers"))
}

pub async fn container_status(_cri: &Cri, _req: cri::ContainerStatusRequest) -> R<cri::ContainerStatusResponse> {
    Err(not_yet("ContainerStatus"))
}

pub async fn update_container_resources(
    _cri: &Cri,
    _req: cri::UpdateContainerResourcesRequest,
) -> R<cri::UpdateContainerResourcesResponse> {
    Err(not_yet("UpdateContainerResources"))
}

pub async fn reopen_container_log(
    _cri: &Cri,
    _req: cri::ReopenContainerLogRequest,
) -> R<cri::ReopenContainerLogResponse> {
    Err(not_yet("ReopenContainerLog"))
}

pub async fn exec_sync(_cri: &Cri, _req: cri::ExecSyncRequest) -> R<cri::ExecSyncResponse> {
    Err(not_yet("ExecSync"))
}
