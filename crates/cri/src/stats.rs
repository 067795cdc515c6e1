//! ContainerStats, ListContainerStats, PodSandboxStats,
//! ListPodSandboxStats, ListMetricDescriptors, ListPodSandboxMetrics:
//! what the kubelet's /stats/summary, metrics-server and the HPA read.

use crate::service::{not_yet, Cri};
use k8s_cri::v1 as cri;
use tonic::Status;

type R<T> = std::result::Result<T, Status>;

pub async fn container_stats(_cri: &Cri, _req: cri::ContainerStatsRequest) -> R<cri::ContainerStatsResponse> {
    Err(not_yet("ContainerStats"))
}

pub async fn list_container_stats(
    _cri: &Cri,
    _req: cri::ListContainerStatsRequest,
) -> R<cri::ListContainerStatsResponse> {
    Err(not_yet("ListContainerStats"))
}

pub async fn pod_sandbox_stats(_cri: &Cri, _req: cri::PodSandboxStatsRequest) -> R<cri::PodSandboxStatsResponse> {
    Err(not_yet("PodSandboxStats"))
}

pub async fn list_pod_sandbox_stats(
    _cri: &Cri,
    _req: cri::ListPodSandboxStatsRequest,
) -> R<cri::ListPodSandboxStatsResponse> {
    Err(not_yet("ListPodSandboxStats"))
}

pub async fn list_metric_descriptors(
    _cri: &Cri,
    _req: cri::ListMetricDescriptorsRequest,
) -> R<cri::ListMetricDescriptorsResponse> {
    Err(not_yet("ListMetricDescriptors"))
}

pub async fn list_pod_sandbox_metrics(
    _cri: &Cri,
    _req: cri::ListPodSandboxMetricsRequest,
) -> R<cri::ListPodSandboxMetricsResponse> {
    Err(not_yet("ListPodSandboxMetrics"))
}
