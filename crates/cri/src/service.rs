//! The daemon's state and the two gRPC services. Each RPC lives in its own
//! file (containerd's `internal/cri/server` layout); this file only routes.
//! Sandboxes (`sandbox`), containers (`container`), streaming (`stream`),
//! stats (`stats`) and events (`events`) each have their module.

use crate::config::{Config, Handler};
use crate::error::Result;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_server::ImageService;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tonic::{Request, Response, Status};
use wharf_image::Store;

/// What every RPC reads: the configuration, the store, the paths.
#[allow(dead_code)] // streaming and events: read once their RPCs land
pub struct Cri {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) root: PathBuf,
    pub(crate) run_root: PathBuf,
    pub(crate) handlers: Vec<Handler>,
    /// The kubelet's pod CIDR (UpdateRuntimeConfig), also kept on disk.
    pub(crate) pod_cidr: Mutex<String>,
    /// The exec/attach/port-forward server (crate::stream).
    pub(crate) streaming: crate::stream::Streaming,
    /// GetContainerEvents subscribers (crate::events).
    pub(crate) events: crate::events::Events,
    /// CPU samples for usage_nano_cores (crate::stats).
    pub(crate) cpu: std::sync::Arc<crate::stats::sampler::CpuSamples>,
}

impl Cri {
    pub fn new(
        config: Config,
        root: PathBuf,
        run_root: PathBuf,
        wharf_runtime: &Path,
        streaming: crate::stream::Streaming,
    ) -> Result<Self> {
        let store = Store::open(&root)?;
        let handlers = config.handlers(wharf_runtime);
        let pod_cidr = crate::runtime_config::load_pod_cidr(&run_root);
        let events = crate::events::Events::new();
        let cpu = Default::default();
        Ok(Cri { config, store, root, run_root, handlers, pod_cidr: Mutex::new(pod_cidr), streaming, events, cpu })
    }
}

type Rpc<T> = std::result::Result<Response<T>, Status>;

/// The client's `grpc-timeout` (digits and a unit: H, M, S, m, u, n).
fn client_timeout(md: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let v = md.get("grpc-timeout")?.to_str().ok()?;
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Runs blocking store work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, Status> + Send + 'static,
) -> std::result::Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Status::internal(format!("worker: {e}")))?
}

#[tonic::async_trait]
impl RuntimeService for Cri {
    async fn version(&self, r: Request<cri::VersionRequest>) -> Rpc<cri::VersionResponse> {
        Ok(Response::new(crate::version::version(r.get_ref())))
    }

    async fn status(&self, r: Request<cri::StatusRequest>) -> Rpc<cri::StatusResponse> {
        Ok(Response::new(crate::status::status(self, r.get_ref())))
    }

    async fn runtime_config(&self, _: Request<cri::RuntimeConfigRequest>) -> Rpc<cri::RuntimeConfigResponse> {
        Ok(Response::new(crate::runtime_config::runtime_config(self)))
    }

    async fn update_runtime_config(
        &self,
        r: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Rpc<cri::UpdateRuntimeConfigResponse> {
        crate::runtime_config::update_runtime_config(self, r.get_ref())?;
        Ok(Response::new(cri::UpdateRuntimeConfigResponse {}))
    }

    type GetContainerEventsStream = crate::events::EventStream;

    async fn get_container_events(&self, r: Request<cri::GetEventsRequest>) -> Rpc<Self::GetContainerEventsStream> {
        crate::events::get_container_events(self, r.into_inner()).await.map(Response::new)
    }

    async fn run_pod_sandbox(&self, r: Request<cri::RunPodSandboxRequest>) -> Rpc<cri::RunPodSandboxResponse> {
        crate::sandbox::run_pod_sandbox(self, r.into_inner()).await.map(Response::new)
    }

    async fn stop_pod_sandbox(&self, r: Request<cri::StopPodSandboxRequest>) -> Rpc<cri::StopPodSandboxResponse> {
        crate::sandbox::stop_pod_sandbox(self, r.into_inner()).await.map(Response::new)
    }

    async fn remove_pod_sandbox(&self, r: Request<cri::RemovePodSandboxRequest>) -> Rpc<cri::RemovePodSandboxResponse> {
        crate::sandbox::remove_pod_sandbox(self, r.into_inner()).await.map(Response::new)
    }

    async fn pod_sandbox_status(&self, r: Request<cri::PodSandboxStatusRequest>) -> Rpc<cri::PodSandboxStatusResponse> {
        crate::sandbox::pod_sandbox_status(self, r.into_inner()).await.map(Response::new)
    }

    async fn list_pod_sandbox(&self, r: Request<cri::ListPodSandboxRequest>) -> Rpc<cri::ListPodSandboxResponse> {
        crate::sandbox::list_pod_sandbox(self, r.into_inner()).await.map(Response::new)
    }

    async fn create_container(&self, r: Request<cri::CreateContainerRequest>) -> Rpc<cri::CreateContainerResponse> {
        crate::container::create_container(self, r.into_inner()).await.map(Response::new)
    }

    async fn start_container(&self, r: Request<cri::StartContainerRequest>) -> Rpc<cri::StartContainerResponse> {
        crate::container::start_container(self, r.into_inner()).await.map(Response::new)
    }

    async fn stop_container(&self, r: Request<cri::StopContainerRequest>) -> Rpc<cri::StopContainerResponse> {
        crate::container::stop_container(self, r.into_inner()).await.map(Response::new)
    }

    async fn remove_container(&self, r: Request<cri::RemoveContainerRequest>) -> Rpc<cri::RemoveContainerResponse> {
        crate::container::remove_container(self, r.into_inner()).await.map(Response::new)
    }

    async fn list_containers(&self, r: Request<cri::ListContainersRequest>) -> Rpc<cri::ListContainersResponse> {
        crate::container::list_containers(self, r.into_inner()).await.map(Response::new)
    }

    async fn container_status(&self, r: Request<cri::ContainerStatusRequest>) -> Rpc<cri::ContainerStatusResponse> {
        crate::container::container_status(self, r.into_inner()).await.map(Response::new)
    }

    async fn update_container_resources(
        &self,
        r: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Rpc<cri::UpdateContainerResourcesResponse> {
        crate::container::update_container_resources(self, r.into_inner()).await.map(Response::new)
    }

    async fn reopen_container_log(
        &self,
        r: Request<cri::ReopenContainerLogRequest>,
    ) -> Rpc<cri::ReopenContainerLogResponse> {
        crate::container::reopen_container_log(self, r.into_inner()).await.map(Response::new)
    }

    async fn exec_sync(&self, r: Request<cri::ExecSyncRequest>) -> Rpc<cri::ExecSyncResponse> {
        crate::container::exec_sync(self, r.into_inner()).await.map(Response::new)
    }

    async fn exec(&self, r: Request<cri::ExecRequest>) -> Rpc<cri::ExecResponse> {
        crate::stream::exec(self, r.into_inner()).await.map(Response::new)
    }

    async fn attach(&self, r: Request<cri::AttachRequest>) -> Rpc<cri::AttachResponse> {
        crate::stream::attach(self, r.into_inner()).await.map(Response::new)
    }

    async fn port_forward(&self, r: Request<cri::PortForwardRequest>) -> Rpc<cri::PortForwardResponse> {
        crate::stream::port_forward(self, r.into_inner()).await.map(Response::new)
    }

    async fn container_stats(&self, r: Request<cri::ContainerStatsRequest>) -> Rpc<cri::ContainerStatsResponse> {
        crate::stats::container_stats(self, r.into_inner()).await.map(Response::new)
    }

    async fn list_container_stats(
        &self,
        r: Request<cri::ListContainerStatsRequest>,
    ) -> Rpc<cri::ListContainerStatsResponse> {
        crate::stats::list_container_stats(self, r.into_inner()).await.map(Response::new)
    }

    async fn pod_sandbox_stats(&self, r: Request<cri::PodSandboxStatsRequest>) -> Rpc<cri::PodSandboxStatsResponse> {
        crate::stats::pod_sandbox_stats(self, r.into_inner()).await.map(Response::new)
    }

    async fn list_pod_sandbox_stats(
        &self,
        r: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Rpc<cri::ListPodSandboxStatsResponse> {
        crate::stats::list_pod_sandbox_stats(self, r.into_inner()).await.map(Response::new)
    }

    async fn checkpoint_container(
        &self,
        _: Request<cri::CheckpointContainerRequest>,
    ) -> Rpc<cri::CheckpointContainerResponse> {
        Err(Status::unimplemented("CheckpointContainer: wharf does not checkpoint containers"))
    }

    async fn list_metric_descriptors(
        &self,
        r: Request<cri::ListMetricDescriptorsRequest>,
    ) -> Rpc<cri::ListMetricDescriptorsResponse> {
        crate::stats::list_metric_descriptors(self, r.into_inner()).await.map(Response::new)
    }

    async fn list_pod_sandbox_metrics(
        &self,
        r: Request<cri::ListPodSandboxMetricsRequest>,
    ) -> Rpc<cri::ListPodSandboxMetricsResponse> {
        crate::stats::list_pod_sandbox_metrics(self, r.into_inner()).await.map(Response::new)
    }
}

#[tonic::async_trait]
impl ImageService for Cri {
    async fn list_images(&self, r: Request<cri::ListImagesRequest>) -> Rpc<cri::ListImagesResponse> {
        let (store, pause) = (self.store.clone(), self.config.sandbox.pause_image.clone());
        let filter = r.into_inner().filter.and_then(|f| f.image).map(|s| s.image).unwrap_or_default();
        let images = blocking(move || crate::image_list::list_images(&store, &pause, &filter)).await?;
        Ok(Response::new(cri::ListImagesResponse { images }))
    }

    async fn image_status(&self, r: Request<cri::ImageStatusRequest>) -> Rpc<cri::ImageStatusResponse> {
        let (store, pause) = (self.store.clone(), self.config.sandbox.pause_image.clone());
        let req = r.into_inner();
        let resp = blocking(move || crate::image_status::image_status(&store, &pause, &req)).await?;
        Ok(Response::new(resp))
    }

    async fn pull_image(&self, r: Request<cri::PullImageRequest>) -> Rpc<cri::PullImageResponse> {
        let pull = crate::image_pull::pull_image(self, r.get_ref());
        let image_ref = match client_timeout(r.metadata()) {
            // Answer DeadlineExceeded before tonic's own timer answers
            // Cancelled ("Timeout expired"): the code a grpc-go server such
            // as containerd's gives, which critest checks. The pull itself
            // goes on and stores the image.
            Some(t) => tokio::time::timeout(t.saturating_sub(t / 10 + Duration::from_millis(1)), pull)
                .await
                .map_err(|_| Status::deadline_exceeded("PullImage: the client's deadline passed"))??,
            None => pull.await?,
        };
        Ok(Response::new(cri::PullImageResponse { image_ref }))
    }

    async fn remove_image(&self, r: Request<cri::RemoveImageRequest>) -> Rpc<cri::RemoveImageResponse> {
        let store = self.store.clone();
        let name = r.into_inner().image.map(|s| s.image).unwrap_or_default();
        blocking(move || crate::image_remove::remove_image(&store, &name)).await?;
        Ok(Response::new(cri::RemoveImageResponse {}))
    }

    async fn image_fs_info(&self, _: Request<cri::ImageFsInfoRequest>) -> Rpc<cri::ImageFsInfoResponse> {
        let root = self.root.clone();
        let resp = blocking(move || Ok(crate::imagefs_info::image_fs_info(&root))).await?;
        Ok(Response::new(resp))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn grpc_timeouts() {
        use std::time::Duration;
        let mut md = tonic::metadata::MetadataMap::new();
        assert_eq!(super::client_timeout(&md), None);
        for (v, d) in [
            ("5S", Duration::from_secs(5)),
            ("100m", Duration::from_millis(100)),
            ("2M", Duration::from_secs(120)),
            ("7n", Duration::from_nanos(7)),
        ] {
            md.insert("grpc-timeout", v.parse().unwrap());
            assert_eq!(super::client_timeout(&md), Some(d), "{v}");
        }
        md.insert("grpc-timeout", "5X".parse().unwrap());
        assert_eq!(super::client_timeout(&md), None);
    }
}
