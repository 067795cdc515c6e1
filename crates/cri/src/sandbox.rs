//! Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
//! PodSandboxStatus, ListPodSandbox — on the pod crate's `Pods` (a CRI
//! sandbox is a wharf pod; its id is the pod's id).
//!
//! What the kubelet asked that the pod record does not hold as such (its
//! metadata, labels, annotations, namespace options, sysctls, log
//! directory, handler) is kept in pod.json as the annotation [`META`]
//! (never shown to the kubelet): a restarted daemon reads it all from disk.
//! The network: CNI ADD from the configured conf dir into the pod's pinned
//! netns with the port mappings and the `K8S_POD_*` CNI args
//! (`wharf_pod::network::external`), DEL at StopPodSandbox as containerd
//! (again, idempotent, at RemovePodSandbox and by the pod crate's sweep);
//! `NODE` network: the host's.
//!
//! The kubelet's `cgroup_parent` is the pod cgroup (else `/wharf/pod-<id>`,
//! with the sandbox resources as its limits); a runtime handler other than
//! `wharf` runs every container of the pod through its binary (runc, crun).
//!
//! Known limits: systemd slices as `cgroup_parent` are refused; the infra
//! is wharf-infra whatever the handler (it is no OCI container).

use crate::owner;
use crate::service::{blocking, Cri};
use k8s_cri::v1 as cri;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use tonic::Status;
use wharf_pod::network::external::ExternalCni;
use wharf_pod::{NetworkMode, Pod, PodOptions, Pods, Share};

type R<T> = std::result::Result<T, Status>;

/// The pod annotation that holds [`SandboxMeta`].
pub(crate) const META: &str = "io.wharf.cri.sandbox";

/// NamespaceMode values (POD = 0, CONTAINER = 1, NODE = 2, TARGET = 3).
pub(crate) const NS_POD: i32 = 0;
pub(crate) const NS_NODE: i32 = 2;
pub(crate) const NS_TARGET: i32 = 3;

/// What the kubelet gave at RunPodSandbox, kept with the pod.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct SandboxMeta {
    pub name: String,
    pub uid: String,
    pub namespace: String,
    pub attempt: u32,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub log_directory: String,
    pub runtime_handler: String,
    pub network: i32,
    pub pid: i32,
    pub ipc: i32,
    pub target_id: String,
    pub sysctls: BTreeMap<String, String>,
    pub hostname: String,
}

/// The gRPC status of a pod crate error, with containerd's codes.
pub(crate) fn pod_err(e: wharf_pod::Error) -> Status {
    use wharf_pod::Error as E;
    match &e {
        E::NoSuchPod(_) | E::NoSuchContainer(_) => Status::not_found(e.to_string()),
        E::InvalidArgument(_) => Status::invalid_argument(e.to_string()),
        E::Image(i) if i.kind() == wharf_image::ErrorKind::NotFound => Status::not_found(e.to_string()),
        E::Conflict(_) | E::NotRunning(_) => Status::failed_precondition(e.to_string()),
        _ => Status::unknown(e.to_string()),
    }
}

pub(crate) fn meta_of(p: &Pod) -> SandboxMeta {
    p.annotations.get(META).and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default()
}

/// The kubelet's pods (those with the CRI label).
pub(crate) fn cri_pods(pods: &Pods) -> R<Vec<Pod>> {
    Ok(pods.list().map_err(pod_err)?.into_iter().filter(owner::is_cri_pod).collect())
}

/// A kubelet's pod by full id or unique prefix; NotFound otherwise.
pub(crate) fn find_pod(pods: &Pods, id: &str) -> R<Pod> {
    let missing = || Status::not_found(format!("an error occurred when try to find sandbox {id:?}: not found"));
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(missing());
    }
    let p = pods.get(id).map_err(|_| missing())?;
    if owner::is_cri_pod(&p) {
        Ok(p)
    } else {
        Err(missing())
    }
}

pub(crate) fn pods(c: &Cri) -> Pods {
    Pods::new(&c.root, &c.run_root)
}

/// The handler's name and, for one other than wharf-runtime, its binary
/// (every container of the pod runs through it).
fn check_handler(c: &Cri, handler: &str) -> R<(String, Option<PathBuf>)> {
    let name = if handler.is_empty() { c.config.runtime.default_handler.as_str() } else { handler };
    let Some(h) = c.handlers.iter().find(|h| h.name == name) else {
        return Err(Status::not_found(format!("no runtime for {name:?} is configured")));
    };
    let own = name == crate::config::WHARF_HANDLER && !c.config.runtime.handlers.contains_key(name);
    Ok((name.to_string(), (!own).then(|| h.binary.clone())))
}

fn ns_options(cfg: &cri::PodSandboxConfig) -> cri::NamespaceOption {
    cfg.linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default()
}

/// The pod's options from the kubelet's config.
fn pod_options(c: &Cri, cfg: &cri::PodSandboxConfig, meta: &SandboxMeta, runtime: Option<PathBuf>) -> R<PodOptions> {
    let host_net = meta.network == NS_NODE;
    let dns = cfg.dns_config.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = meta.labels.clone();
    labels.insert(owner::LABEL.into(), "true".into());
    let mut annotations = meta.annotations.clone();
    annotations.insert(META.into(), serde_json::to_string(meta).map_err(|e| Status::internal(e.to_string()))?);
    let cni = if host_net {
        None
    } else {
        let net = crate::status::cni_network(&c.config.cni.conf_dir).map_err(Status::failed_precondition)?;
        let port_mappings = cfg
            .port_mappings
            .iter()
            .filter(|p| p.host_port > 0)
            .map(|p| wharf_pod::network::PortMapping {
                host_ip: p.host_ip.clone(),
                host_port: p.host_port as u16,
                container_port: p.container_port as u16,
                protocol: match p.protocol {
                    1 => "udp".into(),
                    2 => "sctp".into(),
                    _ => "tcp".into(),
                },
            })
            .collect();
        let args = vec![
            ("K8S_POD_NAMESPACE".to_string(), meta.namespace.clone()),
            ("K8S_POD_NAME".to_string(), meta.name.clone()),
            ("K8S_POD_INFRA_CONTAINER_ID".to_string(), String::new()),
            ("K8S_POD_UID".to_string(), meta.uid.clone()),
        ];
        Some(ExternalCni { conf_file: net.file, bin_dirs: c.config.cni.bin_dirs.clone(), args, port_mappings })
    };
    let res = cfg.linux.as_ref().and_then(|l| l.resources.clone()).unwrap_or_default();
    let cpus = (res.cpu_quota > 0 && res.cpu_period > 0).then(|| res.cpu_quota as f64 / res.cpu_period as f64);
    let memory = (res.memory_limit_in_bytes >= 6 << 20).then_some(res.memory_limit_in_bytes);
    Ok(PodOptions {
        name: Some(pod_name(meta)),
        publish: Vec::new(),
        network: if host_net { NetworkMode::Host } else { NetworkMode::None },
        hostname: (!cfg.hostname.is_empty() && !host_net).then(|| cfg.hostname.clone()),
        add_hosts: Vec::new(),
        dns: dns.servers,
        dns_search: dns.searches,
        dns_options: dns.options,
        share: Share { net: true, ipc: meta.ipc != NS_NODE, uts: !host_net, pid: meta.pid == NS_POD },
        cpus,
        memory,
        labels,
        annotations,
        infra: true,
        cni,
        cgroup_parent: cgroup_parent(c, cfg)?,
        runtime,
    })
}

/// The kubelet's `cgroup_parent` (cgroupfs: an absolute path such as
/// `/kubepods/burstable/pod<uid>`); the pod crate checks it further.
fn cgroup_parent(c: &Cri, cfg: &cri::PodSandboxConfig) -> R<Option<String>> {
    let p = cfg.linux.as_ref().map(|l| l.cgroup_parent.as_str()).unwrap_or_default();
    if p.is_empty() {
        return Ok(None);
    }
    if c.config.cgroup_driver == crate::config::CgroupDriver::Systemd || !p.starts_with('/') {
        return Err(Status::invalid_argument(format!(
            "cgroup_parent {p:?}: only cgroupfs paths (absolute) are supported; systemd slices are not"
        )));
    }
    Ok(Some(p.to_string()))
}

/// `k8s_A_B_…` from `parts`: characters a wharf name allows, and at most
/// 200 bytes (a name is a file name): a longer one keeps its start and
/// gets a hash of the whole, so distinct names stay distinct.
pub(crate) fn wharf_name(parts: &[&str]) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect()
    };
    let full = format!("k8s_{}", parts.iter().map(|p| clean(p)).collect::<Vec<_>>().join("_"));
    if full.len() <= 200 {
        return full;
    }
    // FNV-1a: stable across daemons and versions.
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{}-{hash:016x}", &full[..180])
}

/// The pod's wharf name: unique per (name, namespace, uid, attempt), as
/// containerd reserves it.
fn pod_name(m: &SandboxMeta) -> String {
    wharf_name(&[&m.name, &m.namespace, &m.uid, &m.attempt.to_string()])
}

pub async fn run_pod_sandbox(c: &Cri, req: cri::RunPodSandboxRequest) -> R<cri::RunPodSandboxResponse> {
    let cfg = req.config.ok_or_else(|| Status::invalid_argument("RunPodSandbox: no config"))?;
    let md = cfg.metadata.clone().ok_or_else(|| Status::invalid_argument("RunPodSandbox: no metadata"))?;
    if md.name.is_empty() || md.namespace.is_empty() || md.uid.is_empty() {
        return Err(Status::invalid_argument("RunPodSandbox: metadata needs name, namespace and uid"));
    }
    let (handler, runtime) = check_handler(c, &req.runtime_handler)?;
    let ns = ns_options(&cfg);
    let linux = cfg.linux.clone().unwrap_or_default();
    let meta = SandboxMeta {
        name: md.name,
        uid: md.uid,
        namespace: md.namespace,
        attempt: md.attempt,
        labels: cfg.labels.clone().into_iter().collect(),
        annotations: cfg.annotations.clone().into_iter().collect(),
        log_directory: cfg.log_directory.clone(),
        runtime_handler: handler,
        network: ns.network,
        pid: ns.pid,
        ipc: ns.ipc,
        target_id: ns.target_id.clone(),
        sysctls: linux.sysctls.into_iter().collect(),
        hostname: cfg.hostname.clone(),
    };
    let opts = pod_options(c, &cfg, &meta, runtime)?;
    if !cfg.log_directory.is_empty() {
        std::fs::create_dir_all(&cfg.log_directory)
            .map_err(|e| Status::internal(format!("create log directory {}: {e}", cfg.log_directory)))?;
    }
    let pods = pods(c);
    let id = blocking(move || {
        // The infra starts while the CNI ADD runs.
        let p = pods.create_started(&opts).map_err(|e| match e {
            wharf_pod::Error::Conflict(m) => Status::already_exists(m),
            e => pod_err(e),
        })?;
        Ok(p.id)
    })
    .await?;
    Ok(cri::RunPodSandboxResponse { pod_sandbox_id: id })
}

pub async fn stop_pod_sandbox(c: &Cri, req: cri::StopPodSandboxRequest) -> R<cri::StopPodSandboxResponse> {
    let pods = pods(c);
    let p = {
        let pods = pods.clone();
        // Not found: nothing to stop (containerd 2 and critest's idempotence specs).
        match blocking(move || find_pod(&pods, &req.pod_sandbox_id)).await {
            Ok(p) => p,
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(cri::StopPodSandboxResponse {}),
            Err(s) => return Err(s),
        }
    };
    let running: Vec<String> = p.containers.iter().filter(|m| m.is_running()).map(|m| m.id().to_string()).collect();
    let id = p.id.clone();
    // Stop and CNI DEL side by side (the kubelet's contract: the IP and
    // ports are released at stop; the network namespace stays until
    // RemovePodSandbox).
    blocking(move || pods.stop_and_release_cni(&id, Some(0)).map_err(pod_err)).await?;
    for cid in running {
        crate::container::publish(c, &cid, cri::ContainerEventType::ContainerStoppedEvent).await;
    }
    Ok(cri::StopPodSandboxResponse {})
}

pub async fn remove_pod_sandbox(c: &Cri, req: cri::RemovePodSandboxRequest) -> R<cri::RemovePodSandboxResponse> {
    let pods = pods(c);
    let p = {
        let pods = pods.clone();
        match blocking(move || find_pod(&pods, &req.pod_sandbox_id)).await {
            Ok(p) => p,
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(cri::RemovePodSandboxResponse {}),
            Err(s) => return Err(s),
        }
    };
    let members: Vec<String> = p.containers.iter().map(|m| m.id().to_string()).collect();
    let id = p.id.clone();
    blocking(move || match pods.rm(&id, true) {
        Ok(()) | Err(wharf_pod::Error::NoSuchPod(_)) => Ok(()),
        Err(e) => Err(pod_err(e)),
    })
    .await?;
    for cid in members {
        c.events.publish(cri::ContainerEventResponse {
            container_id: cid,
            container_event_type: cri::ContainerEventType::ContainerDeletedEvent as i32,
            created_at: crate::container::now_ns(),
            pod_sandbox_status: None,
            containers_statuses: Vec::new(),
        });
    }
    Ok(cri::RemovePodSandboxResponse {})
}

/// RFC 3339 → ns since the epoch (0 if empty or bad).
pub(crate) fn ns_of(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).ok().and_then(|d| d.timestamp_nanos_opt()).unwrap_or(0)
}

fn state_of(p: &Pod) -> cri::PodSandboxState {
    if p.infra.running {
        cri::PodSandboxState::SandboxReady
    } else {
        cri::PodSandboxState::SandboxNotready
    }
}

/// The kubelet's labels and annotations (ours taken out).
fn visible(p: &Pod, m: &SandboxMeta) -> (HashMap<String, String>, HashMap<String, String>) {
    let mut labels: HashMap<String, String> = p.labels.clone().into_iter().collect();
    labels.remove(owner::LABEL);
    let annotations = m.annotations.clone().into_iter().collect();
    (labels, annotations)
}

fn metadata(m: &SandboxMeta) -> cri::PodSandboxMetadata {
    cri::PodSandboxMetadata {
        name: m.name.clone(),
        uid: m.uid.clone(),
        namespace: m.namespace.clone(),
        attempt: m.attempt,
    }
}

/// The status of `p` (what GetContainerEvents also sends).
pub(crate) fn sandbox_status(p: &Pod) -> cri::PodSandboxStatus {
    let m = meta_of(p);
    let (labels, annotations) = visible(p, &m);
    let ip = p.ip.clone().unwrap_or_default();
    let ns = cri::NamespaceOption {
        network: m.network,
        pid: m.pid,
        ipc: m.ipc,
        target_id: m.target_id.clone(),
        ..Default::default()
    };
    cri::PodSandboxStatus {
        id: p.id.clone(),
        metadata: Some(metadata(&m)),
        state: state_of(p) as i32,
        created_at: ns_of(&p.created),
        network: Some(cri::PodSandboxNetworkStatus { ip, additional_ips: Vec::new() }),
        linux: Some(cri::LinuxPodSandboxStatus { namespaces: Some(cri::Namespace { options: Some(ns) }) }),
        labels,
        annotations,
        runtime_handler: m.runtime_handler,
    }
}

pub async fn pod_sandbox_status(c: &Cri, req: cri::PodSandboxStatusRequest) -> R<cri::PodSandboxStatusResponse> {
    let pods = pods(c);
    let verbose = req.verbose;
    blocking(move || {
        let p = find_pod(&pods, &req.pod_sandbox_id)?;
        let status = sandbox_status(&p);
        let info = if verbose {
            let v = serde_json::json!({
                "pid": p.infra.pid,
                "name": p.name,
                "cgroupParent": p.record.cgroup_parent,
                "namespaces": p.record.namespaces,
                "hostname": p.record.hostname,
                "runtimeHandler": status.runtime_handler,
            });
            HashMap::from([("info".to_string(), v.to_string())])
        } else {
            HashMap::new()
        };
        let containers_statuses = Vec::new();
        Ok(cri::PodSandboxStatusResponse { status: Some(status), info, containers_statuses, timestamp: 0 })
    })
    .await
}

fn matches(p: &Pod, f: &cri::PodSandboxFilter) -> bool {
    if !f.id.is_empty() && !p.id.starts_with(&f.id) {
        return false;
    }
    if let Some(s) = &f.state {
        if state_of(p) as i32 != s.state {
            return false;
        }
    }
    let m = meta_of(p);
    f.label_selector.iter().all(|(k, v)| m.labels.get(k) == Some(v))
}

pub async fn list_pod_sandbox(c: &Cri, req: cri::ListPodSandboxRequest) -> R<cri::ListPodSandboxResponse> {
    let pods = pods(c);
    blocking(move || {
        let f = req.filter.unwrap_or_default();
        let items = cri_pods(&pods)?
            .iter()
            .filter(|p| matches(p, &f))
            .map(|p| {
                let m = meta_of(p);
                let (labels, annotations) = visible(p, &m);
                cri::PodSandbox {
                    id: p.id.clone(),
                    metadata: Some(metadata(&m)),
                    state: state_of(p) as i32,
                    created_at: ns_of(&p.created),
                    labels,
                    annotations,
                    runtime_handler: m.runtime_handler,
                }
            })
            .collect();
        Ok(cri::ListPodSandboxResponse { items })
    })
    .await
}
