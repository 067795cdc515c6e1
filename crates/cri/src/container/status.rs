//! ContainerStatus and ListContainers from the container records and
//! monitor files (nothing held in memory: a restarted daemon answers the
//! same), the events sent to GetContainerEvents, resource updates.

use super::spec::ResourcesMeta;
use super::{find, meta};
use crate::sandbox::{ns_of, pod_err};
use crate::service::{blocking, Cri};
use k8s_cri::v1 as cri;
use std::collections::HashMap;
use tonic::Status;
use wharf_pod::{Container, Containers};

type R<T> = std::result::Result<T, Status>;

pub(crate) fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

fn state_of(c: &Container) -> cri::ContainerState {
    use wharf_pod::Status as S;
    match c.status {
        S::Created => cri::ContainerState::ContainerCreated,
        S::Running | S::Paused | S::Restarting => cri::ContainerState::ContainerRunning,
        S::Exited => cri::ContainerState::ContainerExited,
    }
}

fn labels_of(c: &Container) -> HashMap<String, String> {
    meta(c).labels.into_iter().collect()
}

fn metadata(c: &Container) -> cri::ContainerMetadata {
    let m = meta(c);
    cri::ContainerMetadata { name: m.name, attempt: m.attempt }
}

fn image_spec(c: &Container) -> cri::ImageSpec {
    let m = meta(c);
    let image = if m.image.is_empty() { c.record.image.clone() } else { m.image };
    cri::ImageSpec { image, ..Default::default() }
}

/// The reason containerd gives an exited container.
fn reason(c: &Container) -> String {
    if c.status != wharf_pod::Status::Exited {
        return String::new();
    }
    if c.state.oom_killed {
        "OOMKilled".into()
    } else if c.state.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    }
}

pub(crate) fn container_status_of(c: &Container) -> cri::ContainerStatus {
    let m = meta(c);
    let started = !matches!(c.status, wharf_pod::Status::Created);
    let exited = c.status == wharf_pod::Status::Exited;
    let mounts = m
        .mounts
        .iter()
        .map(|(ctr, host, ro, prop)| cri::Mount {
            container_path: ctr.clone(),
            host_path: host.clone(),
            readonly: *ro,
            propagation: *prop,
            ..Default::default()
        })
        .collect();
    let resources = m.resources.as_ref().map(|r| cri::ContainerResources { linux: Some(r.to_cri()), windows: None });
    cri::ContainerStatus {
        id: c.id().to_string(),
        metadata: Some(metadata(c)),
        state: state_of(c) as i32,
        created_at: ns_of(&c.record.created),
        started_at: if started { ns_of(&c.state.started_at) } else { 0 },
        finished_at: if exited { ns_of(&c.state.finished_at) } else { 0 },
        exit_code: if exited { c.state.exit_code } else { 0 },
        image: Some(image_spec(c)),
        image_ref: c.record.image_id.clone(),
        image_id: c.record.image_id.clone(),
        reason: reason(c),
        message: if exited { c.state.error.clone() } else { String::new() },
        labels: labels_of(c),
        annotations: m.annotations.into_iter().collect(),
        mounts,
        log_path: m.log_path,
        resources,
        user: None,
    }
}

pub(crate) fn verbose_info(c: &Container) -> HashMap<String, String> {
    let v = serde_json::json!({
        "pid": c.state.pid,
        "monitorPid": c.state.monitor_pid,
        "restartCount": c.state.restart_count,
        "sandboxID": c.record.options.pod,
        "name": c.name(),
        "command": c.record.command,
        "status": c.status.to_string(),
    });
    HashMap::from([("info".to_string(), v.to_string())])
}

pub(crate) fn list(cs: &Containers, f: &cri::ContainerFilter) -> R<cri::ListContainersResponse> {
    let all = cs.list().map_err(pod_err)?;
    let containers = all
        .iter()
        .filter(|c| crate::owner::is_cri_container(c))
        .filter(|c| f.id.is_empty() || c.id().starts_with(&f.id))
        .filter(|c| {
            f.pod_sandbox_id.is_empty()
                || c.record.options.pod.as_deref().is_some_and(|p| p.starts_with(&f.pod_sandbox_id))
        })
        .filter(|c| f.state.as_ref().is_none_or(|s| state_of(c) as i32 == s.state))
        .filter(|c| {
            let l = labels_of(c);
            f.label_selector.iter().all(|(k, v)| l.get(k) == Some(v))
        })
        .map(|c| cri::Container {
            id: c.id().to_string(),
            pod_sandbox_id: c.record.options.pod.clone().unwrap_or_default(),
            metadata: Some(metadata(c)),
            image: Some(image_spec(c)),
            image_ref: c.record.image_id.clone(),
            image_id: c.record.image_id.clone(),
            state: state_of(c) as i32,
            created_at: ns_of(&c.record.created),
            labels: labels_of(c),
            annotations: meta(c).annotations.into_iter().collect(),
        })
        .collect();
    Ok(cri::ListContainersResponse { containers })
}

/// Sends an event for container `id` with its sandbox's and its own status
/// (as containerd fills them).
pub(crate) async fn publish(c: &Cri, id: &str, kind: cri::ContainerEventType) {
    let (cs, pods, id2) = (super::containers(c), crate::sandbox::pods(c), id.to_string());
    let found = blocking(move || {
        let ctr = find(&cs, &id2)?;
        let pod = ctr.record.options.pod.as_deref().and_then(|p| crate::sandbox::find_pod(&pods, p).ok());
        let statuses: Vec<cri::ContainerStatus> = match &pod {
            Some(p) => {
                p.containers.iter().filter(|m| crate::owner::is_cri_container(m)).map(container_status_of).collect()
            }
            None => vec![container_status_of(&ctr)],
        };
        Ok((pod.as_ref().map(crate::sandbox::sandbox_status), statuses))
    })
    .await;
    let (sandbox, statuses) = found.unwrap_or((None, Vec::new()));
    c.events.publish(cri::ContainerEventResponse {
        container_id: id.to_string(),
        container_event_type: kind as i32,
        created_at: now_ns(),
        pod_sandbox_status: sandbox,
        containers_statuses: statuses,
    });
}

/// UpdateContainerResources: the cgroup now, the record for later.
pub(crate) fn update_resources(cs: &Containers, c: &Container, res: ResourcesMeta) -> R<()> {
    let mut m = meta(c);
    m.resources = Some(res.clone());
    let cri = serde_json::to_value(&m).map_err(|e| Status::internal(e.to_string()))?;
    cs.update_kubelet(c, res.to_oci(), cri).map_err(pod_err)
}
