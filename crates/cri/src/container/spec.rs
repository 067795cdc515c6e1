//! A CRI ContainerConfig → the engine's `RunOptions` (with the kubelet's
//! additions in `KubeSpec`): what maps onto `docker run`'s flags goes
//! there (user, caps, privileged, seccomp, devices, sysctls, read-only
//! rootfs, tty/stdin, env), the rest into `KubeSpec` (log path, pid/ipc/uts
//! joins, masked paths, resources, bind mounts with propagation).

use crate::sandbox::{SandboxMeta, NS_NODE, NS_POD, NS_TARGET};
use k8s_cri::v1 as cri;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tonic::Status;
use wharf_pod::hostconfig::{DeviceMapping, HostConfig, SecurityOpt};
use wharf_pod::kubelet::{Join, KubeSpec};
use wharf_pod::{Pod, RunOptions};

type R<T> = std::result::Result<T, Status>;

/// What the kubelet gave at CreateContainer that ContainerStatus returns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ContainerMeta {
    pub name: String,
    pub attempt: u32,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// (container path, host path, readonly, propagation)
    pub mounts: Vec<(String, String, bool, i32)>,
    pub log_path: String,
    pub resources: Option<ResourcesMeta>,
    /// The container's stdin is closed when the first attach's input ends.
    pub stdin_once: bool,
}

/// LinuxContainerResources, kept (and updated by UpdateContainerResources).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct ResourcesMeta {
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_shares: i64,
    pub memory_limit_in_bytes: i64,
    pub oom_score_adj: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub memory_swap_limit_in_bytes: i64,
}

impl ResourcesMeta {
    pub fn from_cri(r: &cri::LinuxContainerResources) -> Self {
        ResourcesMeta {
            cpu_period: r.cpu_period,
            cpu_quota: r.cpu_quota,
            cpu_shares: r.cpu_shares,
            memory_limit_in_bytes: r.memory_limit_in_bytes,
            oom_score_adj: r.oom_score_adj,
            cpuset_cpus: r.cpuset_cpus.clone(),
            cpuset_mems: r.cpuset_mems.clone(),
            memory_swap_limit_in_bytes: r.memory_swap_limit_in_bytes,
        }
    }

    pub fn to_cri(&self) -> cri::LinuxContainerResources {
        cri::LinuxContainerResources {
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpu_shares: self.cpu_shares,
            memory_limit_in_bytes: self.memory_limit_in_bytes,
            oom_score_adj: self.oom_score_adj,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            memory_swap_limit_in_bytes: self.memory_swap_limit_in_bytes,
            ..Default::default()
        }
    }

    /// OCI `linux.resources` (only what is set).
    pub fn to_oci(&self) -> Value {
        let mut res = json!({});
        let mut cpu = json!({});
        if self.cpu_shares > 0 {
            cpu["shares"] = json!(self.cpu_shares);
        }
        if self.cpu_quota > 0 {
            cpu["quota"] = json!(self.cpu_quota);
        }
        if self.cpu_period > 0 {
            cpu["period"] = json!(self.cpu_period);
        }
        if !self.cpuset_cpus.is_empty() {
            cpu["cpus"] = json!(self.cpuset_cpus);
        }
        if !self.cpuset_mems.is_empty() {
            cpu["mems"] = json!(self.cpuset_mems);
        }
        if cpu.as_object().is_some_and(|o| !o.is_empty()) {
            res["cpu"] = cpu;
        }
        if self.memory_limit_in_bytes > 0 {
            res["memory"] = json!({"limit": self.memory_limit_in_bytes});
            if self.memory_swap_limit_in_bytes > 0 {
                res["memory"]["swap"] = json!(self.memory_swap_limit_in_bytes);
            }
        }
        res
    }
}

fn security(cfg: &cri::ContainerConfig) -> cri::LinuxContainerSecurityContext {
    cfg.linux.as_ref().and_then(|l| l.security_context.clone()).unwrap_or_default()
}

/// The OCI mount of a CRI mount (the host dir made if missing, as containerd does).
fn mount(m: &cri::Mount) -> R<Value> {
    if m.container_path.is_empty() || !m.container_path.starts_with('/') {
        return Err(Status::invalid_argument(format!("mount {:?}: container path must be absolute", m.container_path)));
    }
    let src = PathBuf::from(&m.host_path);
    if !src.is_absolute() {
        return Err(Status::invalid_argument(format!("mount {:?}: host path must be absolute", m.host_path)));
    }
    if !src.exists() {
        std::fs::create_dir_all(&src).map_err(|e| Status::internal(format!("create {}: {e}", src.display())))?;
    }
    let propagation = match m.propagation {
        1 => "rslave",
        2 => "rshared",
        _ => "rprivate",
    };
    let mut options = vec!["rbind", propagation];
    if m.readonly {
        options.push("ro");
    }
    Ok(json!({"destination": m.container_path, "type": "bind", "source": src, "options": options}))
}

/// Seccomp: RuntimeDefault (the engine's default), Unconfined, Localhost
/// (the deprecated `seccomp_profile_path` too: older kubelets send it).
#[allow(deprecated)]
fn seccomp(sc: &cri::LinuxContainerSecurityContext) -> R<Option<SecurityOpt>> {
    let (kind, path) = match (&sc.seccomp, sc.seccomp_profile_path.as_str()) {
        (Some(p), _) => (p.profile_type, p.localhost_ref.clone()),
        // No profile at all: unconfined (the kubelet asks for RuntimeDefault explicitly).
        (None, "" | "unconfined") => (1, String::new()),
        (None, p) if p.starts_with("localhost/") => (2, p.trim_start_matches("localhost").to_string()),
        (None, _) => (0, String::new()),
    };
    match kind {
        1 => Ok(Some(SecurityOpt::SeccompUnconfined)),
        2 => SecurityOpt::parse(&format!("seccomp={path}"))
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("seccomp localhost profile: {e}"))),
        _ => Ok(None),
    }
}

fn host_config(cfg: &cri::ContainerConfig, sb: &SandboxMeta) -> R<HostConfig> {
    let sc = security(cfg);
    let caps = sc.capabilities.clone().unwrap_or_default();
    let cap = |which: &str, c: &str| {
        if c.eq_ignore_ascii_case("ALL") {
            return Ok("ALL".to_string());
        }
        wharf_pod::hostconfig::parse_capability(which, c).map_err(|e| Status::invalid_argument(e.to_string()))
    };
    let mut h = HostConfig {
        privileged: sc.privileged,
        cap_add: caps.add_capabilities.iter().map(|c| cap("--cap-add", c)).collect::<R<_>>()?,
        cap_drop: caps.drop_capabilities.iter().map(|c| cap("--cap-drop", c)).collect::<R<_>>()?,
        sysctls: sb.sysctls.clone(),
        group_add: sc.supplemental_groups.iter().map(|g| g.to_string()).collect(),
        devices: cfg
            .devices
            .iter()
            .map(|d| DeviceMapping {
                host: d.host_path.clone(),
                container: d.container_path.clone(),
                permissions: if d.permissions.is_empty() { "rwm".into() } else { d.permissions.clone() },
            })
            .collect(),
        ..Default::default()
    };
    if let Some(s) = seccomp(&sc)? {
        h.security_opt.push(s);
    }
    if sc.no_new_privs {
        h.security_opt.push(SecurityOpt::NoNewPrivileges(true));
    }
    let res = cfg.linux.as_ref().and_then(|l| l.resources.clone()).unwrap_or_default();
    if res.oom_score_adj != 0 {
        h.oom_score_adj = Some(res.oom_score_adj.clamp(-1000, 1000) as i32);
    }
    Ok(h)
}

/// `USER[:GROUP]` from run_as_user / run_as_username / run_as_group (a
/// group without a user is refused, as containerd does).
fn user(sc: &cri::LinuxContainerSecurityContext) -> R<Option<String>> {
    let u = match (&sc.run_as_user, sc.run_as_username.as_str()) {
        (Some(u), _) => u.value.to_string(),
        (None, n) if !n.is_empty() => n.to_string(),
        _ if sc.run_as_group.is_some() => {
            return Err(Status::invalid_argument("user group is specified without user"));
        }
        _ => return Ok(None),
    };
    Ok(Some(match &sc.run_as_group {
        Some(g) => format!("{u}:{}", g.value),
        None => u,
    }))
}

fn join_of(mode: i32, target: Option<PathBuf>) -> Join {
    match (mode, target) {
        (NS_NODE, _) => Join::Host,
        (NS_TARGET, Some(p)) => Join::Path(p),
        _ => Join::Own,
    }
}

/// The run options of a container of `pod` (its sandbox meta `sb`).
/// `target_pid`: the pid of the namespace TARGET container, if any.
pub(crate) fn run_options(
    cfg: &cri::ContainerConfig,
    pod: &Pod,
    sb: &SandboxMeta,
    name: &str,
    target_pid: Option<i32>,
    meta: &ContainerMeta,
) -> R<RunOptions> {
    let sc = security(cfg);
    let image = cfg.image.as_ref().map(|i| i.image.clone()).unwrap_or_default();
    let ns = sc.namespace_options.clone().unwrap_or_default();
    let target = target_pid.map(|p| PathBuf::from(format!("/proc/{p}/ns/pid")));
    // The pod's pid namespace (POD) is the pod's own: the pod crate joins it.
    let pid = if ns.pid == NS_POD || sb.pid == NS_POD { Join::Own } else { join_of(ns.pid, target) };
    let resources = cfg.linux.as_ref().and_then(|l| l.resources.as_ref()).map(ResourcesMeta::from_cri);
    let kube = KubeSpec {
        log_path: (!meta.log_path.is_empty()).then(|| PathBuf::from(&meta.log_path)),
        pid: if sb.pid == NS_NODE { Join::Host } else { pid },
        ipc: if sb.ipc == NS_NODE { Join::Host } else { Join::Own },
        uts: if sb.network == NS_NODE { Join::Host } else { Join::Own },
        masked_paths: (!sc.masked_paths.is_empty() || sc.privileged).then(|| sc.masked_paths.clone()),
        readonly_paths: (!sc.readonly_paths.is_empty() || sc.privileged).then(|| sc.readonly_paths.clone()),
        resources: resources.as_ref().map(ResourcesMeta::to_oci),
        mounts: cfg.mounts.iter().map(mount).collect::<R<_>>()?,
        rootfs_propagation: match cfg.mounts.iter().map(|m| m.propagation).max() {
            Some(2) => Some("rshared".into()),
            Some(1) => Some("rslave".into()),
            _ => None,
        },
        annotations: meta.annotations.clone(),
        cri: serde_json::to_value(meta).map_err(|e| Status::internal(e.to_string()))?,
        ..Default::default()
    };
    let mut labels: Vec<String> = meta.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.push(format!("{}=true", crate::owner::LABEL));
    let (entrypoint, cmd) = if cfg.command.is_empty() {
        (None, cfg.args.clone())
    } else {
        (Some(String::new()), cfg.command.iter().chain(&cfg.args).cloned().collect())
    };
    Ok(RunOptions {
        image,
        cmd,
        entrypoint,
        env: cfg.envs.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect(),
        workdir: (!cfg.working_dir.is_empty()).then(|| cfg.working_dir.clone()),
        user: user(&sc)?,
        read_only: sc.readonly_rootfs,
        name: Some(name.to_string()),
        tty: cfg.tty,
        interactive: cfg.stdin,
        restart: Some("no".into()),
        labels,
        host: host_config(cfg, sb)?,
        pod: Some(pod.id.clone()),
        kubelet: Some(kube),
        ..Default::default()
    })
}
