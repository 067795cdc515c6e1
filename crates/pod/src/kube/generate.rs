//! `kube generate POD`: a Pod manifest from a pod's records (its options
//! and each container's `RunOptions`) that `kube play` accepts back. Volumes
//! `play` made are named as they were (emptyDir, and ConfigMap/Secret
//! volumes by reference: their data is not written out, pass them again
//! with `--configmap`); other binds are hostPath, named volumes claims.

use super::plan::{LABEL_CONTAINER, LABEL_DEPLOYMENT, LABEL_INIT};
use super::play::Played;
use crate::error::{Error, Result};
use crate::health::{Probe, ProbeAction};
use crate::run::{NetworkMode, RunOptions};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::path::Path;

struct Vols<'a> {
    kube_dir: &'a Path,
    played: &'a [core::Volume],
    out: Vec<core::Volume>,
}

impl Vols<'_> {
    /// The volume behind a `-v SRC:DST[:ro]` source, and a subPath.
    fn source(&mut self, src: &str) -> (String, Option<String>) {
        if let Ok(rest) = Path::new(src).strip_prefix(self.kube_dir.join("volumes")) {
            let mut parts = rest.iter().map(|p| p.to_string_lossy().into_owned());
            let name = parts.next().unwrap_or_default();
            let sub: Vec<String> = parts.collect();
            if let Some(v) = self.played.iter().find(|v| v.name == name) {
                let v = v.clone();
                self.add(name.clone(), v);
                return (name, (!sub.is_empty()).then(|| sub.join("/")));
            }
        }
        // A hostPath or claim the manifest named: as it was.
        let same = |v: &&core::Volume| {
            v.host_path.as_ref().is_some_and(|h| h.path == src)
                || v.persistent_volume_claim.as_ref().is_some_and(|c| c.claim_name == src)
        };
        if let Some(v) = self.played.iter().find(same) {
            let v = v.clone();
            self.add(v.name.clone(), v.clone());
            return (v.name, None);
        }
        if src.starts_with('/') {
            let name = format!("host{}", src.replace(|c: char| !c.is_ascii_alphanumeric(), "-").to_ascii_lowercase());
            let name = name.trim_end_matches('-').chars().take(63).collect::<String>();
            let v = core::Volume {
                host_path: Some(core::HostPathVolumeSource { path: src.to_string(), type_: None }),
                ..Default::default()
            };
            self.add(name.clone(), v);
            return (name, None);
        }
        let v = core::Volume {
            persistent_volume_claim: Some(core::PersistentVolumeClaimVolumeSource {
                claim_name: src.to_string(),
                read_only: None,
            }),
            ..Default::default()
        };
        let name = src.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "-");
        self.add(name.clone(), v);
        (name, None)
    }

    fn add(&mut self, name: String, mut v: core::Volume) {
        if self.out.iter().all(|x| x.name != name) {
            v.name = name;
            self.out.push(v);
        }
    }
}

fn probe(p: &Probe) -> core::Probe {
    let mut out = core::Probe {
        initial_delay_seconds: Some((p.initial_delay_ns / 1_000_000_000) as i32),
        period_seconds: Some((p.period_ns / 1_000_000_000) as i32),
        timeout_seconds: Some((p.timeout_ns / 1_000_000_000) as i32),
        failure_threshold: Some(p.failure_threshold as i32),
        success_threshold: Some(p.success_threshold as i32),
        ..Default::default()
    };
    match &p.action {
        ProbeAction::Exec(cmd) => out.exec = Some(core::ExecAction { command: Some(cmd.clone()) }),
        ProbeAction::HttpGet { host, port, path } => {
            out.http_get = Some(core::HTTPGetAction {
                host: (!host.is_empty()).then(|| host.clone()),
                path: Some(path.clone()),
                port: IntOrString::Int(*port as i32),
                ..Default::default()
            })
        }
        ProbeAction::TcpSocket { host, port } => {
            out.tcp_socket = Some(core::TCPSocketAction {
                host: (!host.is_empty()).then(|| host.clone()),
                port: IntOrString::Int(*port as i32),
            })
        }
    }
    out
}

fn security(o: &RunOptions) -> Option<core::SecurityContext> {
    use crate::hostconfig::SecurityOpt;
    let mut sc = core::SecurityContext::default();
    if let Some(u) = &o.user {
        let (uid, gid) = u.split_once(':').map_or((u.as_str(), None), |(a, b)| (a, Some(b)));
        sc.run_as_user = uid.parse().ok();
        sc.run_as_group = gid.and_then(|g| g.parse().ok());
    }
    let h = &o.host;
    if !h.cap_add.is_empty() || !h.cap_drop.is_empty() {
        // Kubernetes writes capabilities without the CAP_ prefix.
        let names = |v: &Vec<String>| -> Option<Vec<String>> {
            (!v.is_empty()).then(|| v.iter().map(|c| c.strip_prefix("CAP_").unwrap_or(c).to_string()).collect())
        };
        sc.capabilities = Some(core::Capabilities { add: names(&h.cap_add), drop: names(&h.cap_drop) });
    }
    sc.privileged = h.privileged.then_some(true);
    sc.read_only_root_filesystem = o.read_only.then_some(true);
    for s in &h.security_opt {
        match s {
            SecurityOpt::NoNewPrivileges(true) => sc.allow_privilege_escalation = Some(false),
            SecurityOpt::SeccompUnconfined => {
                sc.seccomp_profile = Some(core::SeccompProfile { type_: "Unconfined".into(), localhost_profile: None })
            }
            _ => {}
        }
    }
    (sc != core::SecurityContext::default()).then_some(sc)
}

fn resources(o: &RunOptions) -> Option<core::ResourceRequirements> {
    let mut limits = BTreeMap::new();
    let mut requests = BTreeMap::new();
    if let Some(m) = o.memory.as_deref().and_then(|m| crate::spec::parse_bytes(m).ok()) {
        limits.insert("memory".to_string(), Quantity(m.to_string()));
    }
    if let Some(c) = o.cpus {
        limits.insert("cpu".to_string(), Quantity(format!("{}m", (c * 1000.0).round() as u64)));
    }
    if let Some(m) = o.host.memory_reservation {
        requests.insert("memory".to_string(), Quantity(m.to_string()));
    }
    if let Some(s) = o.host.cpu_shares {
        requests.insert("cpu".to_string(), Quantity(format!("{}m", s * 1000 / 1024)));
    }
    if limits.is_empty() && requests.is_empty() {
        return None;
    }
    Some(core::ResourceRequirements {
        limits: (!limits.is_empty()).then_some(limits),
        requests: (!requests.is_empty()).then_some(requests),
        ..Default::default()
    })
}

fn label<'a>(o: &'a RunOptions, key: &str) -> Option<&'a str> {
    o.labels.iter().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

fn container(pod: &str, o: &RunOptions, vols: &mut Vols, played: Option<&Played>) -> core::Container {
    let name = label(o, LABEL_CONTAINER).map(str::to_string).unwrap_or_else(|| {
        let n = o.name.clone().unwrap_or_default();
        n.strip_prefix(&format!("{pod}-")).map(str::to_string).unwrap_or(n)
    });
    let (command, args) = match &o.entrypoint {
        Some(e) if e.is_empty() => (Some(o.cmd.clone()), None),
        Some(e) => (Some(vec![e.clone()]), (!o.cmd.is_empty()).then(|| o.cmd.clone())),
        None => (None, (!o.cmd.is_empty()).then(|| o.cmd.clone())),
    };
    let secrets = played.and_then(|p| p.secret_env.get(&name));
    let env: Vec<core::EnvVar> = o
        .env
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            // A Secret's value is referenced, never written out.
            match secrets.and_then(|s| s.iter().find(|(var, _, _)| var == k)) {
                Some((_, secret, key)) => core::EnvVar {
                    name: k.to_string(),
                    value: None,
                    value_from: Some(core::EnvVarSource {
                        secret_key_ref: Some(core::SecretKeySelector {
                            name: secret.clone(),
                            key: key.clone(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                },
                None => core::EnvVar { name: k.to_string(), value: Some(v.to_string()), value_from: None },
            }
        })
        .collect();
    let mut mounts = Vec::new();
    for v in &o.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, opts] => (*s, *d, opts.split(',').any(|x| x == "ro")),
            _ => continue,
        };
        let (name, sub_path) = vols.source(src);
        mounts.push(core::VolumeMount {
            name,
            mount_path: dst.to_string(),
            read_only: ro.then_some(true),
            sub_path,
            ..Default::default()
        });
    }
    let role = |r: &str| o.probes.iter().find(|p| p.role == r).map(probe);
    core::Container {
        name,
        image: Some(o.image.clone()),
        command,
        args,
        working_dir: o.workdir.clone(),
        env: (!env.is_empty()).then_some(env),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        resources: resources(o),
        security_context: security(o),
        liveness_probe: role("liveness"),
        readiness_probe: role("readiness"),
        startup_probe: role("startup"),
        tty: o.tty.then_some(true),
        stdin: o.interactive.then_some(true),
        ..Default::default()
    }
}

/// Ports published at the pod (`[IP:]HOST:CTR[/PROTO]`), on the first container.
fn ports(publish: &[String]) -> Vec<core::ContainerPort> {
    publish
        .iter()
        .filter_map(|p| {
            let (spec, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
            let container_port = parts.first()?.parse().ok()?;
            let host_port = parts.get(1).and_then(|h| h.parse().ok());
            let host_ip = parts.get(2).map(|s| s.to_string());
            Some(core::ContainerPort {
                container_port,
                host_port,
                host_ip,
                protocol: Some(proto.to_ascii_uppercase()),
                name: None,
            })
        })
        .collect()
}

/// The Pod manifest of `pod` (YAML).
pub fn generate(pod: &crate::pod::Pod, played: Option<&Played>, kube_dir: &Path) -> Result<String> {
    let opts = &pod.record.options;
    let empty = Vec::new();
    let mut vols = Vols { kube_dir, played: played.map_or(&empty, |p| &p.volumes), out: Vec::new() };
    let mut init = Vec::new();
    let mut containers = Vec::new();
    let mut restart = None;
    let mut grace = None;
    let mut ctrs: Vec<&crate::Container> = pod.containers.iter().collect();
    ctrs.sort_by(|a, b| a.record.created.cmp(&b.record.created));
    for c in ctrs {
        let o = &c.record.options;
        let k = container(&pod.name, o, &mut vols, played);
        restart = restart.or(o.restart.clone());
        grace = grace.or(o.stop_timeout);
        if label(o, LABEL_INIT).is_some() {
            init.push(k);
        } else {
            containers.push(k);
        }
    }
    if containers.is_empty() {
        return Err(Error::InvalidArgument(format!("pod {} has no containers", pod.name)));
    }
    let p = ports(&opts.publish);
    if !p.is_empty() {
        containers[0].ports = Some(p);
    }
    let mut labels = opts.labels.clone();
    labels.remove(LABEL_DEPLOYMENT);
    let host_aliases: Vec<core::HostAlias> = opts
        .add_hosts
        .iter()
        .filter_map(|h| h.split_once(':'))
        .filter(|(n, _)| !n.contains(".svc.cluster.local"))
        .map(|(n, ip)| core::HostAlias { ip: ip.to_string(), hostnames: Some(vec![n.to_string()]) })
        .collect();
    let fs_group = played.and_then(|p| p.fs_group);
    let groups: Vec<i64> = pod
        .containers
        .first()
        .map(|c| {
            let g = &c.record.options.host.group_add;
            g.iter().filter_map(|g| g.parse().ok()).filter(|g| Some(*g) != fs_group).collect()
        })
        .unwrap_or_default();
    let psc = core::PodSecurityContext {
        fs_group,
        supplemental_groups: (!groups.is_empty()).then_some(groups),
        ..Default::default()
    };
    let spec = core::PodSpec {
        security_context: (psc != core::PodSecurityContext::default()).then_some(psc),
        containers,
        init_containers: (!init.is_empty()).then_some(init),
        restart_policy: Some(
            match restart.as_deref() {
                Some("always") | Some("unless-stopped") => "Always",
                Some(r) if r.starts_with("on-failure") => "OnFailure",
                _ => "Never",
            }
            .into(),
        ),
        termination_grace_period_seconds: grace.map(|g| g as i64),
        hostname: opts.hostname.clone().filter(|h| h != &pod.name),
        host_network: (opts.network == NetworkMode::Host).then_some(true),
        share_process_namespace: opts.share.pid.then_some(true),
        host_aliases: (!host_aliases.is_empty()).then_some(host_aliases),
        volumes: (!vols.out.is_empty()).then_some(vols.out),
        ..Default::default()
    };
    let manifest = core::Pod {
        metadata: ObjectMeta {
            name: Some(pod.name.clone()),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: (!opts.annotations.is_empty()).then(|| opts.annotations.clone()),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    };
    serde_yaml_ng::to_string(&manifest).map_err(|e| Error::InvalidArgument(format!("generate: {e}")))
}
