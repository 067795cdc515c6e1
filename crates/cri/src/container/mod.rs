//! Containers: CreateContainer, StartContainer, StopContainer,
//! RemoveContainer, ListContainers, ContainerStatus,
//! UpdateContainerResources, ReopenContainerLog, ExecSync — on the pod
//! crate's `Containers` (a CRI container is a wharf container in the
//! sandbox's pod; its id is the container's id). `spec` maps the
//! kubelet's config onto the engine's options, `status` answers
//! ContainerStatus/ListContainers from the records and monitors on disk
//! (so a restarted daemon sees the same thing), and every change is
//! published to GetContainerEvents.

mod spec;
mod status;

pub(crate) use status::{container_status_of, now_ns, publish};

use crate::sandbox::{find_pod, meta_of, pod_err, pods};
use crate::service::{blocking, Cri};
use k8s_cri::v1 as cri;
use spec::{ContainerMeta, ResourcesMeta};
use std::time::Duration;
use tonic::Status;
use wharf_pod::{Container, Containers};

type R<T> = std::result::Result<T, Status>;

pub(crate) fn containers(c: &Cri) -> Containers {
    Containers::new(&c.root, &c.run_root)
}

/// A kubelet's container by full id or unique prefix; NotFound otherwise.
pub(crate) fn find(cs: &Containers, id: &str) -> R<Container> {
    let missing = || Status::not_found(format!("an error occurred when try to find container {id:?}: not found"));
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(missing());
    }
    let c = cs.get(id).map_err(|_| missing())?;
    if crate::owner::is_cri_container(&c) {
        Ok(c)
    } else {
        Err(missing())
    }
}

pub(crate) fn meta(c: &Container) -> ContainerMeta {
    c.record.options.kubelet.as_ref().and_then(|k| serde_json::from_value(k.cri.clone()).ok()).unwrap_or_default()
}

pub async fn create_container(c: &Cri, req: cri::CreateContainerRequest) -> R<cri::CreateContainerResponse> {
    let cfg = req.config.ok_or_else(|| Status::invalid_argument("CreateContainer: no config"))?;
    let md = cfg.metadata.clone().ok_or_else(|| Status::invalid_argument("CreateContainer: no metadata"))?;
    if md.name.is_empty() {
        return Err(Status::invalid_argument("CreateContainer: metadata needs a name"));
    }
    let image = cfg.image.as_ref().map(|i| i.image.clone()).unwrap_or_default();
    if image.is_empty() {
        return Err(Status::invalid_argument("CreateContainer: no image"));
    }
    let (pods, cs, store) = (pods(c), containers(c), c.store.clone());
    let logs = c.config.logs.clone();
    let id = blocking(move || {
        let pod = find_pod(&pods, &req.pod_sandbox_id)?;
        let sb = meta_of(&pod);
        let log_path = match (sb.log_directory.as_str(), cfg.log_path.as_str()) {
            (_, "") => String::new(),
            ("", p) => p.to_string(),
            (d, p) => std::path::Path::new(d).join(p).to_string_lossy().into_owned(),
        };
        if let Some(parent) = std::path::Path::new(&log_path).parent().filter(|_| !log_path.is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Status::internal(format!("create {}: {e}", parent.display())))?;
        }
        let meta = ContainerMeta {
            name: md.name.clone(),
            attempt: md.attempt,
            image: image.clone(),
            labels: cfg.labels.clone().into_iter().collect(),
            annotations: cfg.annotations.clone().into_iter().collect(),
            mounts: cfg
                .mounts
                .iter()
                .map(|m| (m.container_path.clone(), m.host_path.clone(), m.readonly, m.propagation))
                .collect(),
            log_path,
            resources: cfg.linux.as_ref().and_then(|l| l.resources.as_ref()).map(ResourcesMeta::from_cri),
            stdin_once: cfg.stdin && cfg.stdin_once,
        };
        let sc = cfg.linux.as_ref().and_then(|l| l.security_context.as_ref());
        let target = sc.and_then(|s| s.namespace_options.as_ref()).filter(|n| n.pid == crate::sandbox::NS_TARGET);
        let target_pid = match target {
            Some(n) => Some(find(&cs, &n.target_id)?.state.pid),
            None => None,
        };
        let attempt = md.attempt.to_string();
        let name = crate::sandbox::wharf_name(&[&md.name, &sb.name, &sb.namespace, &sb.uid, &attempt]);
        let mut o = spec::run_options(&cfg, &pod, &sb, &name, target_pid, &meta)?;
        // logs.max_size: the monitor rotates the kubelet's file (`0.log.1`, …).
        if logs.max_size > 0 {
            o.log_opts = vec![format!("max-size={}", logs.max_size), format!("max-file={}", logs.max_files)];
        }
        // logs.max_line_size: longer lines become `P` records (-1: none).
        if logs.max_line_size > 0 {
            o.log_opts.push(format!("max-line-size={}", logs.max_line_size));
        }
        let made = cs.create(&store, &o).map_err(|e| match e {
            wharf_pod::Error::Conflict(m) => Status::already_exists(m),
            e => pod_err(e),
        })?;
        Ok(made.id().to_string())
    })
    .await?;
    publish(c, &id, cri::ContainerEventType::ContainerCreatedEvent).await;
    Ok(cri::CreateContainerResponse { container_id: id })
}

pub async fn start_container(c: &Cri, req: cri::StartContainerRequest) -> R<cri::StartContainerResponse> {
    let (cs, pods, store) = (containers(c), pods(c), c.store.clone());
    let id = blocking(move || {
        let ctr = find(&cs, &req.container_id)?;
        if ctr.status != wharf_pod::Status::Created {
            return Err(Status::failed_precondition(format!(
                "container {} is in {} state, not created",
                ctr.id(),
                ctr.status
            )));
        }
        let pod_id = ctr.record.options.pod.clone().unwrap_or_default();
        let pod = find_pod(&pods, &pod_id)?;
        if !pod.infra.running {
            return Err(Status::failed_precondition(format!("sandbox container {pod_id} is not running")));
        }
        cs.start(&store, &ctr, wharf_pod::container::Start::Now).map_err(pod_err)?;
        Ok(ctr.id().to_string())
    })
    .await?;
    publish(c, &id, cri::ContainerEventType::ContainerStartedEvent).await;
    Ok(cri::StartContainerResponse {})
}

pub async fn stop_container(c: &Cri, req: cri::StopContainerRequest) -> R<cri::StopContainerResponse> {
    let cs = containers(c);
    let timeout = req.timeout.max(0) as u64;
    let (id, was_running) = blocking(move || {
        // Not found: nothing to stop (containerd 2 and critest's idempotence specs).
        let ctr = match find(&cs, &req.container_id) {
            Ok(c) => c,
            Err(s) if s.code() == tonic::Code::NotFound => return Ok((String::new(), false)),
            Err(s) => return Err(s),
        };
        let running = ctr.is_running();
        let o = wharf_pod::container::StopOptions { timeout: Some(timeout), signal: None };
        cs.stop(&ctr, &o).map_err(pod_err)?;
        // As containerd deletes the task before StopContainer answers: the
        // rootfs, cgroup and runtime state go now (the monitor's exit
        // command may be doing it too; whoever comes second finds it done),
        // not at RemoveContainer.
        cs.cleanup(ctr.id());
        Ok((ctr.id().to_string(), running))
    })
    .await?;
    if was_running {
        publish(c, &id, cri::ContainerEventType::ContainerStoppedEvent).await;
    }
    Ok(cri::StopContainerResponse {})
}

pub async fn remove_container(c: &Cri, req: cri::RemoveContainerRequest) -> R<cri::RemoveContainerResponse> {
    let cs = containers(c);
    let id = blocking(move || {
        let ctr = match find(&cs, &req.container_id) {
            Ok(ctr) => ctr,
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
            Err(s) => return Err(s),
        };
        match cs.remove(&ctr, true, true) {
            Ok(()) | Err(wharf_pod::Error::NoSuchContainer(_)) => Ok(Some(ctr.id().to_string())),
            Err(e) => Err(pod_err(e)),
        }
    })
    .await?;
    if let Some(id) = id {
        c.events.publish(cri::ContainerEventResponse {
            container_id: id,
            container_event_type: cri::ContainerEventType::ContainerDeletedEvent as i32,
            created_at: now_ns(),
            pod_sandbox_status: None,
            containers_statuses: Vec::new(),
        });
    }
    Ok(cri::RemoveContainerResponse {})
}

pub async fn list_containers(c: &Cri, req: cri::ListContainersRequest) -> R<cri::ListContainersResponse> {
    let cs = containers(c);
    blocking(move || status::list(&cs, &req.filter.unwrap_or_default())).await
}

pub async fn container_status(c: &Cri, req: cri::ContainerStatusRequest) -> R<cri::ContainerStatusResponse> {
    let cs = containers(c);
    blocking(move || {
        let ctr = find(&cs, &req.container_id)?;
        let st = container_status_of(&ctr);
        let info = if req.verbose { status::verbose_info(&ctr) } else { Default::default() };
        Ok(cri::ContainerStatusResponse { status: Some(st), info })
    })
    .await
}

pub async fn update_container_resources(
    c: &Cri,
    req: cri::UpdateContainerResourcesRequest,
) -> R<cri::UpdateContainerResourcesResponse> {
    let cs = containers(c);
    blocking(move || {
        let ctr = find(&cs, &req.container_id)?;
        let Some(r) = req.linux.as_ref() else { return Ok(cri::UpdateContainerResourcesResponse {}) };
        status::update_resources(&cs, &ctr, ResourcesMeta::from_cri(r))?;
        Ok(cri::UpdateContainerResourcesResponse {})
    })
    .await
}

pub async fn reopen_container_log(c: &Cri, req: cri::ReopenContainerLogRequest) -> R<cri::ReopenContainerLogResponse> {
    let cs = containers(c);
    blocking(move || {
        let ctr = find(&cs, &req.container_id)?;
        if ctr.status != wharf_pod::Status::Running {
            return Err(Status::failed_precondition(format!("container {} is not running", ctr.id())));
        }
        cs.reopen_log(&ctr).map_err(pod_err)?;
        Ok(cri::ReopenContainerLogResponse {})
    })
    .await
}

pub async fn exec_sync(c: &Cri, req: cri::ExecSyncRequest) -> R<cri::ExecSyncResponse> {
    if req.cmd.is_empty() {
        return Err(Status::invalid_argument("ExecSync: no command"));
    }
    let cs = containers(c);
    let timeout = (req.timeout > 0).then(|| Duration::from_secs(req.timeout as u64));
    blocking(move || {
        let ctr = find(&cs, &req.container_id)?;
        if ctr.status != wharf_pod::Status::Running {
            return Err(Status::failed_precondition(format!("container {} is not running", ctr.id())));
        }
        let r = wharf_pod::container::ExecRequest { cmd: req.cmd.clone(), ..Default::default() };
        let out = cs.exec_capture(&ctr, &r, timeout, wharf_pod::kubelet::MAX_EXEC_OUTPUT).map_err(pod_err)?;
        if out.timed_out {
            return Err(Status::deadline_exceeded(format!(
                "command {:?} timed out after {}s",
                req.cmd.join(" "),
                req.timeout
            )));
        }
        Ok(cri::ExecSyncResponse { stdout: out.stdout, stderr: out.stderr, exit_code: out.exit_code })
    })
    .await
}
