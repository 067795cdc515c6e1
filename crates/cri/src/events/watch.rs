//! The daemon's housekeeping loop, once a second: a CPU sample of every
//! CRI container and pod (for `usage_nano_cores`), and a
//! CONTAINER_STOPPED_EVENT for each container seen running that no longer
//! runs — one that exited by itself, was OOM-killed or killed from outside.
//! A poll of the records (two small files per container) rather than
//! inotify on every `monitor.json`: simpler, and cheap at kubelet scale.

use crate::service::Cri;
use crate::stats::attrs;
use k8s_cri::v1 as cri;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wharf_pod::{Container, Pod, Pods, Status};

const PERIOD: Duration = Duration::from_secs(1);

/// Starts the loop on the daemon's runtime; it ends with the runtime.
pub(crate) fn spawn_housekeeping(cri: Arc<Cri>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen: Option<HashMap<String, bool>> = None;
        loop {
            tick.tick().await;
            let (c, prev) = (cri.clone(), seen.take());
            match tokio::task::spawn_blocking(move || round(&c, prev)).await {
                Ok(next) => seen = Some(next),
                Err(e) => tracing::warn!("housekeeping: {e}"),
            }
        }
    });
}

/// One round; `prev` is which containers ran at the last one (none at the
/// first: containers that stopped while no daemon ran make no event).
fn round(cri: &Cri, prev: Option<HashMap<String, bool>>) -> HashMap<String, bool> {
    let pods = match attrs::cri_pods(&Pods::new(&cri.root, &cri.run_root)) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!("housekeeping: {}", e.message());
            return prev.unwrap_or_default();
        }
    };
    crate::stats::sample(&cri.cpu, &pods);
    let mut now = HashMap::new();
    for p in &pods {
        for c in &p.containers {
            let running = c.is_running();
            if prev.as_ref().is_some_and(|m| m.get(c.id()) == Some(&true)) && !running {
                cri.events.publish(event(p, c.id(), cri::ContainerEventType::ContainerStoppedEvent));
            }
            now.insert(c.id().to_string(), running);
        }
    }
    cri.events.retain(|id| now.contains_key(id));
    now
}

/// An event about container `id` of pod `p`, with the pod's status and
/// its containers' as the pod crate knows them (containerd's fields).
pub(crate) fn event(p: &Pod, id: &str, kind: cri::ContainerEventType) -> cri::ContainerEventResponse {
    cri::ContainerEventResponse {
        container_id: id.to_string(),
        container_event_type: kind as i32,
        created_at: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
        pod_sandbox_status: Some(pod_status(p)),
        containers_statuses: p.containers.iter().map(container_status).collect(),
    }
}

fn pod_status(p: &Pod) -> cri::PodSandboxStatus {
    let state =
        if attrs::pod_ready(p) { cri::PodSandboxState::SandboxReady } else { cri::PodSandboxState::SandboxNotready };
    cri::PodSandboxStatus {
        id: p.id.clone(),
        metadata: Some(attrs::pod_metadata(p)),
        state: state as i32,
        created_at: attrs::ns(&p.created),
        network: p.ip.as_ref().map(|ip| cri::PodSandboxNetworkStatus { ip: ip.clone(), additional_ips: Vec::new() }),
        labels: attrs::pod_labels(p),
        annotations: p.annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ..Default::default()
    }
}

fn container_status(c: &Container) -> cri::ContainerStatus {
    use cri::ContainerState as S;
    let state = match c.status {
        Status::Created => S::ContainerCreated,
        Status::Running | Status::Paused | Status::Restarting => S::ContainerRunning,
        Status::Exited => S::ContainerExited,
    };
    let st = &c.state;
    let reason = match state {
        S::ContainerExited if st.oom_killed => "OOMKilled",
        S::ContainerExited if st.exit_code == 0 => "Completed",
        S::ContainerExited => "Error",
        _ => "",
    };
    cri::ContainerStatus {
        id: c.id().to_string(),
        metadata: Some(attrs::container_metadata(c)),
        state: state as i32,
        created_at: attrs::ns(&c.record.created),
        started_at: attrs::ns(&st.started_at),
        finished_at: if state == S::ContainerExited { attrs::ns(&st.finished_at) } else { 0 },
        exit_code: st.exit_code,
        image: Some(cri::ImageSpec { image: c.record.image.clone(), ..Default::default() }),
        image_ref: c.record.image_id.clone(),
        image_id: c.record.image_id.clone(),
        reason: reason.to_string(),
        message: st.error.clone(),
        labels: attrs::container_labels(c),
        log_path: c.log_path().display().to_string(),
        ..Default::default()
    }
}
