//! ContainerStats, ListContainerStats, PodSandboxStats,
//! ListPodSandboxStats, ListMetricDescriptors, ListPodSandboxMetrics:
//! what the kubelet's /stats/summary, metrics-server and the HPA read.
//!
//! Figures come from the pod crate's reader of the cgroups (v1, v2 or
//! hybrid, detected) and of the pod's network namespace; the writable
//! layer is the container's `upper/`. `usage_nano_cores` is the rate since
//! a sample of the daemon's housekeeping loop ([`sampler`], every second).
//!
//! - `attrs`: metadata, labels, lookups and filters.
//! - `convert`: readings → CRI messages.
//! - `metrics`: the cAdvisor-named metrics containerd 2.x serves.
//! - `sampler`: the CPU samples.

pub(crate) mod attrs;
mod convert;
mod metrics;
pub(crate) mod sampler;

use crate::service::{blocking, Cri};
use k8s_cri::v1 as cri;
use std::path::PathBuf;
use tonic::Status;
use wharf_pod::{Containers, Pod, Pods};

type R<T> = std::result::Result<T, Status>;

/// What a blocking stats read needs from the daemon.
struct Ctx {
    root: PathBuf,
    run_root: PathBuf,
    cpu: std::sync::Arc<sampler::CpuSamples>,
}

impl Ctx {
    fn of(cri: &Cri) -> Ctx {
        Ctx { root: cri.root.clone(), run_root: cri.run_root.clone(), cpu: cri.cpu.clone() }
    }

    fn pods(&self) -> Pods {
        Pods::new(&self.root, &self.run_root)
    }

    fn containers(&self) -> Containers {
        Containers::new(&self.root, &self.run_root)
    }

    fn cri_pods(&self) -> R<Vec<Pod>> {
        attrs::cri_pods(&self.pods())
    }

    /// Stats of every CRI container of `p` that `keep` accepts.
    fn containers_of(&self, p: &Pod, keep: impl Fn(&wharf_pod::Container) -> bool) -> Vec<cri::ContainerStats> {
        let cs = self.containers();
        p.containers
            .iter()
            .filter(|c| keep(c))
            .map(|c| convert::container_stats(&self.root, c, cs.usage(c).as_ref(), &self.cpu))
            .collect()
    }

    fn pod(&self, p: &Pod) -> cri::PodSandboxStats {
        let usage = self.pods().usage(p);
        let devs = self.pods().net_devs(p);
        convert::pod_stats(p, usage.as_ref(), &devs, self.containers_of(p, |_| true), &self.cpu)
    }
}

pub async fn container_stats(cri: &Cri, req: cri::ContainerStatsRequest) -> R<cri::ContainerStatsResponse> {
    let ctx = Ctx::of(cri);
    blocking(move || {
        let pods = ctx.cri_pods()?;
        let all = pods.iter().flat_map(|p| p.containers.iter().map(move |c| (p, c)));
        let id = attrs::resolve("container", &req.container_id, all.clone().map(|(_, c)| c.id()))?;
        let (p, _) = all.clone().find(|(_, c)| c.id() == id).expect("resolved");
        let stats = ctx.containers_of(p, |c| c.id() == id).pop();
        Ok(cri::ContainerStatsResponse { stats })
    })
    .await
}

pub async fn list_container_stats(
    cri: &Cri,
    req: cri::ListContainerStatsRequest,
) -> R<cri::ListContainerStatsResponse> {
    let ctx = Ctx::of(cri);
    let f = req.filter.unwrap_or_default();
    blocking(move || {
        let mut stats = Vec::new();
        for p in ctx.cri_pods()? {
            if !f.pod_sandbox_id.is_empty() && !p.id.starts_with(&f.pod_sandbox_id) {
                continue;
            }
            stats.extend(ctx.containers_of(&p, |c| {
                (f.id.is_empty() || c.id().starts_with(&f.id))
                    && attrs::selects(&f.label_selector, &attrs::container_labels(c))
            }));
        }
        Ok(cri::ListContainerStatsResponse { stats })
    })
    .await
}

pub async fn pod_sandbox_stats(cri: &Cri, req: cri::PodSandboxStatsRequest) -> R<cri::PodSandboxStatsResponse> {
    let ctx = Ctx::of(cri);
    blocking(move || {
        let pods = ctx.cri_pods()?;
        let id = attrs::resolve("pod sandbox", &req.pod_sandbox_id, pods.iter().map(|p| p.id.as_str()))?;
        let p = pods.iter().find(|p| p.id == id).expect("resolved");
        Ok(cri::PodSandboxStatsResponse { stats: Some(ctx.pod(p)) })
    })
    .await
}

pub async fn list_pod_sandbox_stats(
    cri: &Cri,
    req: cri::ListPodSandboxStatsRequest,
) -> R<cri::ListPodSandboxStatsResponse> {
    let ctx = Ctx::of(cri);
    let f = req.filter.unwrap_or_default();
    blocking(move || {
        let stats = ctx
            .cri_pods()?
            .iter()
            .filter(|p| f.id.is_empty() || p.id.starts_with(&f.id))
            .filter(|p| attrs::selects(&f.label_selector, &attrs::pod_labels(p)))
            .map(|p| ctx.pod(p))
            .collect();
        Ok(cri::ListPodSandboxStatsResponse { stats })
    })
    .await
}

pub async fn list_metric_descriptors(
    _cri: &Cri,
    _req: cri::ListMetricDescriptorsRequest,
) -> R<cri::ListMetricDescriptorsResponse> {
    Ok(cri::ListMetricDescriptorsResponse { descriptors: metrics::descriptors() })
}

pub async fn list_pod_sandbox_metrics(
    cri: &Cri,
    _req: cri::ListPodSandboxMetricsRequest,
) -> R<cri::ListPodSandboxMetricsResponse> {
    let ctx = Ctx::of(cri);
    blocking(move || {
        let (pods, cs) = (ctx.pods(), ctx.containers());
        let pod_metrics = ctx
            .cri_pods()?
            .iter()
            .filter(|p| attrs::pod_ready(p))
            .map(|p| metrics::pod(&ctx.root, p, &pods, &cs))
            .collect();
        Ok(cri::ListPodSandboxMetricsResponse { pod_metrics })
    })
    .await
}

/// One housekeeping round (blocking): a CPU sample of every running CRI
/// container and pod; samples of the gone are forgotten.
pub(crate) fn sample(samples: &sampler::CpuSamples, pods: &[Pod]) {
    let mut keys = std::collections::HashSet::new();
    for p in pods {
        let mut take = |key: String, cgroup: &str| {
            let at = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
            if let Some(cpu) = wharf_pod::container::cgroup_cpu_ns(cgroup) {
                samples.record(&key, at, cpu);
                keys.insert(key);
            }
        };
        take(convert::pod_key(&p.id), &p.record.cgroup_parent);
        for c in p.containers.iter().filter(|c| c.is_running()) {
            take(c.id().to_string(), &p.member_cgroup(c.id()));
        }
    }
    samples.retain(|k| keys.contains(k));
}
