//! Kubernetes objects → what wharf makes: a [`PodPlan`] per pod (a
//! Deployment's replicas are pods of its template), with each container's
//! [`RunOptions`] and the pod's volumes. Every reference (ConfigMap,
//! Secret, claim, volume, named port) is resolved here, so a bad manifest
//! fails before anything is made.

use super::parse::{Located, Object};
use super::probe::{self, Probe};
use super::quantity;
use crate::error::{Error, Result};
use crate::run::RunOptions;
use k8s_openapi::api::core::v1::{Container, PodSpec, SecurityContext};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// Labels wharf puts on what it plays.
pub const LABEL_DEPLOYMENT: &str = "io.wharf.kube.deployment";
pub const LABEL_CONTAINER: &str = "io.wharf.kube.container";
/// On init containers (`kube generate` puts them back in `initContainers`).
pub const LABEL_INIT: &str = "io.wharf.kube.init";

pub type Data = BTreeMap<String, Vec<u8>>;

/// The ConfigMaps, Secrets and claims of the manifests (and `--configmap` files).
#[derive(Debug, Default)]
pub struct Catalog {
    pub config_maps: BTreeMap<String, Data>,
    pub secrets: BTreeMap<String, Data>,
    pub claims: BTreeMap<String, BTreeMap<String, String>>,
}

impl Catalog {
    pub(crate) fn add(&mut self, o: &Object) {
        match o {
            Object::ConfigMap(c) => {
                let mut d: Data = c.data.iter().flatten().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect();
                d.extend(c.binary_data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())));
                self.config_maps.insert(o.name().to_string(), d);
            }
            Object::Secret(s) => {
                let mut d: Data = s.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
                d.extend(s.string_data.iter().flatten().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())));
                self.secrets.insert(o.name().to_string(), d);
            }
            Object::PersistentVolumeClaim(p) => {
                self.claims.insert(o.name().to_string(), p.metadata.labels.clone().unwrap_or_default());
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `medium: Memory` is a tmpfs; `sizeLimit` in bytes.
    EmptyDir { memory: bool, size: Option<i64> },
    /// A host path and its `type` (`""`, `Directory`, `DirectoryOrCreate`, `File`, `FileOrCreate`).
    HostPath(String, String),
    /// A named volume, made if missing.
    Claim { name: String, read_only: bool },
    /// A ConfigMap's or Secret's keys as files: (relative path, bytes, mode).
    Files { secret: bool, object: String, files: Vec<(String, Vec<u8>, u32)> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub name: String,
    pub source: Source,
    /// As the manifest wrote it (`kube generate` writes it back).
    pub k8s: k8s_openapi::api::core::v1::Volume,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub volume: String,
    pub path: String,
    pub sub_path: Option<String>,
    pub read_only: bool,
}

#[derive(Debug, Clone)]
pub struct ContainerPlan {
    /// The manifest's name (`spec.containers[].name`).
    pub name: String,
    /// `Always`: pulled before the pod is made.
    pub pull_always: bool,
    pub run: RunOptions,
    pub mounts: Vec<Mount>,
    pub run_as_non_root: bool,
    /// Variables from Secrets: (variable, secret, key), so that `generate`
    /// writes references, not values.
    pub secret_env: Vec<(String, String, String)>,
    pub liveness: Option<Probe>,
    pub readiness: Option<Probe>,
    pub startup: Option<Probe>,
}

#[derive(Debug, Clone)]
pub struct PodPlan {
    pub name: String,
    pub deployment: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub hostname: Option<String>,
    pub host_network: bool,
    pub share_pid: bool,
    pub publish: Vec<String>,
    pub add_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `Always`, `OnFailure` or `Never`.
    pub restart_policy: String,
    pub fs_group: Option<i64>,
    pub volumes: Vec<Volume>,
    pub init: Vec<ContainerPlan>,
    pub containers: Vec<ContainerPlan>,
}

fn bad(path: &str, msg: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{path}: {msg}"))
}

/// Every pod of `objects` (a Deployment: `replicas` pods named by `names`).
pub fn pods(
    objects: &[Located],
    cat: &Catalog,
    names: &mut dyn FnMut(&str, &PodSpec) -> String,
) -> Result<Vec<PodPlan>> {
    let mut out = Vec::new();
    for (at, o) in objects {
        let ctx = |e: Error| match e {
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{at}: {} {:?}: {m}", o.kind(), o.name())),
            e => e,
        };
        match o {
            Object::Pod(p) => {
                let spec = p.spec.as_ref().ok_or_else(|| ctx(bad("spec", "Required value")))?;
                let plan = pod(o.name(), &p.metadata, spec, cat).map_err(ctx)?;
                out.push(plan);
            }
            Object::Deployment(d) => {
                let at = |p: &str| p.to_string();
                let spec = d.spec.as_ref().ok_or_else(|| ctx(bad("spec", "Required value")))?;
                let tmpl =
                    spec.template.spec.as_ref().ok_or_else(|| ctx(bad("spec.template.spec", "Required value")))?;
                let tlabels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
                let selector = spec.selector.match_labels.clone().unwrap_or_default();
                if selector.is_empty() {
                    return Err(ctx(bad(
                        &at("spec.selector"),
                        "Invalid value: empty selector is invalid for deployment",
                    )));
                }
                if selector.iter().any(|(k, v)| tlabels.get(k) != Some(v)) {
                    return Err(ctx(bad(
                        &at("spec.template.metadata.labels"),
                        "Invalid value: `selector` does not match template `labels`",
                    )));
                }
                let replicas = spec.replicas.unwrap_or(1);
                if replicas < 0 {
                    return Err(ctx(bad(
                        &at("spec.replicas"),
                        format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                    )));
                }
                let mut meta = spec.template.metadata.clone().unwrap_or_default();
                meta.labels.get_or_insert_with(Default::default).insert(LABEL_DEPLOYMENT.into(), o.name().into());
                for _ in 0..replicas {
                    let name = names(o.name(), tmpl);
                    let mut plan = pod(&name, &meta, tmpl, cat).map_err(ctx)?;
                    plan.deployment = Some(o.name().to_string());
                    out.push(plan);
                }
            }
            _ => {}
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &out {
        if !seen.insert(&p.name) {
            return Err(Error::InvalidArgument(format!("Pod {:?}: metadata.name: Duplicate value", p.name)));
        }
    }
    Ok(out)
}

/// DNS-1123 label: what Kubernetes requires of pod and container names.
pub(crate) fn check_name(path: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(bad(path, format!("Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character")))
    }
}

fn pod(name: &str, meta: &ObjectMeta, spec: &PodSpec, cat: &Catalog) -> Result<PodPlan> {
    check_name("metadata.name", name)?;
    let restart_policy = spec.restart_policy.clone().unwrap_or_else(|| "Always".into());
    if !["Always", "OnFailure", "Never"].contains(&restart_policy.as_str()) {
        return Err(bad(
            "spec.restartPolicy",
            format!("Unsupported value: {restart_policy:?}: supported values: \"Always\", \"OnFailure\", \"Never\""),
        ));
    }
    if spec.containers.is_empty() {
        return Err(bad("spec.containers", "Required value"));
    }
    let volumes = spec
        .volumes
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, v)| volume(&format!("spec.volumes[{i}]"), v, cat))
        .collect::<Result<Vec<_>>>()?;
    let psc = spec.security_context.clone().unwrap_or_default();
    let mut plan = PodPlan {
        name: name.to_string(),
        deployment: None,
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        hostname: spec.hostname.clone(),
        host_network: spec.host_network.unwrap_or(false),
        share_pid: spec.share_process_namespace.unwrap_or(false),
        publish: Vec::new(),
        add_hosts: Vec::new(),
        dns: Vec::new(),
        dns_search: Vec::new(),
        dns_options: Vec::new(),
        restart_policy,
        fs_group: psc.fs_group,
        volumes,
        init: Vec::new(),
        containers: Vec::new(),
    };
    if let Some(h) = &plan.hostname {
        check_name("spec.hostname", h)?;
    }
    if let Some(sub) = &spec.subdomain {
        check_name("spec.subdomain", sub)?;
        // Kubernetes: the pod's FQDN is hostname.subdomain.<ns>.svc.<cluster>.
        plan.hostname = Some(plan.hostname.clone().unwrap_or_else(|| name.to_string()));
        plan.add_hosts
            .push(format!("{}.{sub}.default.svc.cluster.local:127.0.0.1", plan.hostname.as_deref().unwrap_or(name)));
    }
    for (i, h) in spec.host_aliases.iter().flatten().enumerate() {
        for n in h.hostnames.iter().flatten() {
            plan.add_hosts.push(format!("{n}:{}", h.ip));
        }
        if h.ip.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(
                &format!("spec.hostAliases[{i}].ip"),
                format!("Invalid value: {:?}: must be a valid IP address", h.ip),
            ));
        }
    }
    if let Some(d) = &spec.dns_config {
        plan.dns = d.nameservers.clone().unwrap_or_default();
        plan.dns_search = d.searches.clone().unwrap_or_default();
        for o in d.options.iter().flatten() {
            let n = o.name.clone().unwrap_or_default();
            plan.dns_options.push(match &o.value {
                Some(v) => format!("{n}:{v}"),
                None => n,
            });
        }
    }
    let mut names = std::collections::BTreeSet::new();
    let grace = spec.termination_grace_period_seconds;
    for (field, list) in
        [("initContainers", spec.init_containers.as_deref().unwrap_or(&[])), ("containers", &spec.containers[..])]
    {
        for (i, c) in list.iter().enumerate() {
            let at = format!("spec.{field}[{i}]");
            if !names.insert(c.name.clone()) {
                return Err(bad(&format!("{at}.name"), format!("Duplicate value: {:?}", c.name)));
            }
            let init = field == "initContainers";
            let cp = container(&at, c, spec, &plan, cat, init)?;
            if !init {
                for (j, p) in c.ports.iter().flatten().enumerate() {
                    if let Some(hp) = p.host_port {
                        let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                        if proto != "tcp" && proto != "udp" {
                            return Err(bad(
                                &format!("{at}.ports[{j}].protocol"),
                                format!("Unsupported value: {:?}", p.protocol),
                            ));
                        }
                        let ip = p.host_ip.as_deref().map(|ip| format!("{ip}:")).unwrap_or_default();
                        plan.publish.push(format!("{ip}{hp}:{}/{proto}", p.container_port));
                    }
                }
            }
            let mut cp = cp;
            // Kubernetes' default grace period: 30 s.
            cp.run.stop_timeout = Some(grace.unwrap_or(30).max(0) as u64);
            if init {
                plan.init.push(cp);
            } else {
                plan.containers.push(cp);
            }
        }
    }
    Ok(plan)
}

fn mode(path: &str, m: Option<i32>, default: u32) -> Result<u32> {
    match m {
        None => Ok(default),
        Some(m) if (0..=0o777).contains(&m) => Ok(m as u32),
        Some(m) => {
            Err(bad(path, format!("Invalid value: {m}: must be a number between 0 and 0777 (octal), both inclusive")))
        }
    }
}

/// A relative path inside a volume: no `..`, not absolute.
fn check_rel(path: &str, p: &str) -> Result<()> {
    if p.is_empty() || p.starts_with('/') || p.split('/').any(|c| c == "..") {
        return Err(bad(path, format!("Invalid value: {p:?}: must be a relative path without '..'")));
    }
    Ok(())
}

fn volume(at: &str, v: &k8s_openapi::api::core::v1::Volume, cat: &Catalog) -> Result<Volume> {
    check_name(&format!("{at}.name"), &v.name)?;
    let files = |secret: bool,
                 object: &str,
                 items: &Option<Vec<k8s_openapi::api::core::v1::KeyToPath>>,
                 default: Option<i32>,
                 optional: Option<bool>|
     -> Result<Source> {
        let kind = if secret { "secret" } else { "configmap" };
        let src = if secret { cat.secrets.get(object) } else { cat.config_maps.get(object) };
        let dm = mode(&format!("{at}.{}.defaultMode", if secret { "secret" } else { "configMap" }), default, 0o644)?;
        let empty = Data::new();
        let data = match src {
            Some(d) => d,
            None if optional == Some(true) => &empty,
            None => return Err(bad(at, format!("{kind} {object:?} not found"))),
        };
        let mut out = Vec::new();
        match items {
            None => out.extend(data.iter().map(|(k, v)| (k.clone(), v.clone(), dm))),
            Some(items) => {
                for (j, it) in items.iter().enumerate() {
                    let ip = format!("{at}.{}.items[{j}]", if secret { "secret" } else { "configMap" });
                    check_rel(&format!("{ip}.path"), &it.path)?;
                    let Some(b) = data.get(&it.key) else {
                        if optional == Some(true) {
                            continue;
                        }
                        return Err(bad(&format!("{ip}.key"), format!("{kind} {object:?} has no key {:?}", it.key)));
                    };
                    out.push((it.path.clone(), b.clone(), mode(&format!("{ip}.mode"), it.mode, dm)?));
                }
            }
        }
        for (k, _, _) in &out {
            check_rel(at, k)?;
        }
        Ok(Source::Files { secret, object: object.to_string(), files: out })
    };
    let mut sources = Vec::new();
    if let Some(e) = &v.empty_dir {
        let memory = match e.medium.as_deref() {
            None | Some("") => false,
            Some("Memory") => true,
            Some(m) => {
                return Err(bad(
                    &format!("{at}.emptyDir.medium"),
                    format!("Unsupported value: {m:?}: supported values: \"\", \"Memory\""),
                ))
            }
        };
        let size = match &e.size_limit {
            Some(q) => Some(
                quantity::bytes(&q.0)
                    .ok_or_else(|| bad(&format!("{at}.emptyDir.sizeLimit"), format!("Invalid value: {:?}", q.0)))?,
            ),
            None => None,
        };
        sources.push(Source::EmptyDir { memory, size });
    }
    if let Some(h) = &v.host_path {
        if !h.path.starts_with('/') {
            return Err(bad(
                &format!("{at}.hostPath.path"),
                format!("Invalid value: {:?}: must be an absolute path", h.path),
            ));
        }
        match h.type_.as_deref() {
            None | Some("") | Some("Directory") | Some("DirectoryOrCreate") | Some("File") | Some("FileOrCreate") => {}
            Some(t) => return Err(bad(&format!("{at}.hostPath.type"), format!("Unsupported value: {t:?}"))),
        }
        sources.push(Source::HostPath(h.path.clone(), h.type_.clone().unwrap_or_default()));
    }
    if let Some(c) = &v.persistent_volume_claim {
        sources.push(Source::Claim { name: c.claim_name.clone(), read_only: c.read_only.unwrap_or(false) });
    }
    if let Some(c) = &v.config_map {
        sources.push(files(false, &c.name, &c.items, c.default_mode, c.optional)?);
    }
    if let Some(s) = &v.secret {
        let name = s.secret_name.clone().ok_or_else(|| bad(&format!("{at}.secret.secretName"), "Required value"))?;
        sources.push(files(true, &name, &s.items, s.default_mode, s.optional)?);
    }
    match sources.len() {
        1 => Ok(Volume { name: v.name.clone(), source: sources.remove(0), k8s: v.clone() }),
        0 => Err(bad(at, "must specify a volume type")),
        _ => Err(bad(at, "may not specify more than 1 volume type")),
    }
}

fn container(
    at: &str,
    c: &Container,
    spec: &PodSpec,
    pod: &PodPlan,
    cat: &Catalog,
    init: bool,
) -> Result<ContainerPlan> {
    check_name(&format!("{at}.name"), &c.name)?;
    let image =
        c.image.clone().filter(|i| !i.is_empty()).ok_or_else(|| bad(&format!("{at}.image"), "Required value"))?;
    let pull_always = match c.image_pull_policy.as_deref() {
        Some("Always") => true,
        None | Some("IfNotPresent") | Some("Never") => false,
        Some(p) => {
            return Err(bad(
                &format!("{at}.imagePullPolicy"),
                format!("Unsupported value: {p:?}: supported values: \"Always\", \"IfNotPresent\", \"Never\""),
            ))
        }
    };
    let mut run = RunOptions {
        image,
        pull_missing: c.image_pull_policy.as_deref() != Some("Never"),
        name: Some(format!("{}-{}", pod.name, c.name)),
        workdir: c.working_dir.clone(),
        tty: c.tty.unwrap_or(false),
        interactive: c.stdin.unwrap_or(false),
        ..Default::default()
    };
    match (&c.command, &c.args) {
        (Some(cmd), args) => {
            run.entrypoint = Some(String::new());
            run.cmd = cmd.iter().chain(args.iter().flatten()).cloned().collect();
        }
        (None, Some(args)) => run.cmd = args.clone(),
        (None, None) => {}
    }
    let mut secret_env = Vec::new();
    run.env = env(at, c, cat, &mut secret_env)?;
    run.restart = Some(
        match (pod.restart_policy.as_str(), init) {
            ("Never", _) => "no",
            ("OnFailure", _) | (_, true) => "on-failure",
            _ => "always",
        }
        .to_string(),
    );
    run.restart_backoff = Some(crate::run::KUBE_BACKOFF);
    run.labels = vec![format!("{LABEL_CONTAINER}={}", c.name)];
    if init {
        run.labels.push(format!("{LABEL_INIT}=true"));
    }
    resources(at, c, &mut run)?;
    let run_as_non_root = security(at, c.security_context.as_ref(), spec, &mut run)?;
    let vols: BTreeMap<&str, &Volume> = pod.volumes.iter().map(|v| (v.name.as_str(), v)).collect();
    let mut mounts = Vec::new();
    for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
        let mp = format!("{at}.volumeMounts[{j}]");
        let Some(v) = vols.get(m.name.as_str()) else {
            return Err(bad(&format!("{mp}.name"), format!("Not found: {:?}", m.name)));
        };
        if !m.mount_path.starts_with('/') {
            return Err(bad(
                &format!("{mp}.mountPath"),
                format!("Invalid value: {:?}: must be an absolute path", m.mount_path),
            ));
        }
        if let Some(sp) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            check_rel(&format!("{mp}.subPath"), sp)?;
            if matches!(v.source, Source::Claim { .. }) {
                return Err(bad(&format!("{mp}.subPath"), "not supported for a persistentVolumeClaim volume"));
            }
        }
        let ro_source = matches!(v.source, Source::Files { .. } | Source::Claim { read_only: true, .. });
        mounts.push(Mount {
            volume: m.name.clone(),
            path: m.mount_path.clone(),
            sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
            read_only: m.read_only.unwrap_or(false) || ro_source,
        });
    }
    let ports: BTreeMap<String, i32> =
        c.ports.iter().flatten().filter_map(|p| p.name.clone().map(|n| (n, p.container_port))).collect();
    let mk = |which: &str, p: &Option<k8s_openapi::api::core::v1::Probe>| -> Result<Option<Probe>> {
        p.as_ref().map(|p| probe::from_k8s(&format!("{at}.{which}"), p, &ports)).transpose()
    };
    Ok(ContainerPlan {
        name: c.name.clone(),
        pull_always,
        run,
        mounts,
        run_as_non_root,
        secret_env,
        liveness: mk("livenessProbe", &c.liveness_probe)?,
        readiness: mk("readinessProbe", &c.readiness_probe)?,
        startup: mk("startupProbe", &c.startup_probe)?,
    })
}

fn lookup<'a>(cat: &'a Catalog, secret: bool, name: &str) -> Option<&'a Data> {
    if secret {
        cat.secrets.get(name)
    } else {
        cat.config_maps.get(name)
    }
}

fn text(path: &str, b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| bad(path, "the value is not UTF-8 text"))
}

fn env(at: &str, c: &Container, cat: &Catalog, secret_env: &mut Vec<(String, String, String)>) -> Result<Vec<String>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, e) in c.env_from.iter().flatten().enumerate() {
        let p = format!("{at}.envFrom[{i}]");
        let prefix = e.prefix.clone().unwrap_or_default();
        let (secret, name, optional) = match (&e.config_map_ref, &e.secret_ref) {
            (Some(r), None) => (false, r.name.clone(), r.optional),
            (None, Some(r)) => (true, r.name.clone(), r.optional),
            _ => return Err(bad(&p, "must specify one of: `configMapRef` or `secretRef`")),
        };
        match lookup(cat, secret, &name) {
            Some(d) => {
                for (k, v) in d {
                    if secret {
                        secret_env.push((format!("{prefix}{k}"), name.clone(), k.clone()));
                    }
                    out.push((format!("{prefix}{k}"), text(&p, v)?));
                }
            }
            None if optional == Some(true) => {}
            None => return Err(bad(&p, format!("{} {name:?} not found", if secret { "secret" } else { "configmap" }))),
        }
    }
    for (i, e) in c.env.iter().flatten().enumerate() {
        let p = format!("{at}.env[{i}]");
        if e.name.is_empty() || e.name.contains('=') {
            return Err(bad(
                &format!("{p}.name"),
                format!("Invalid value: {:?}: a valid environment variable name is required", e.name),
            ));
        }
        let value = match (&e.value, &e.value_from) {
            (Some(_), Some(_)) => return Err(bad(&p, "may not have both `value` and `valueFrom`")),
            (v, None) => v.clone().unwrap_or_default(),
            (None, Some(from)) => {
                let (secret, name, key, optional) = match (&from.config_map_key_ref, &from.secret_key_ref) {
                    (Some(r), None) => (false, r.name.clone(), r.key.clone(), r.optional),
                    (None, Some(r)) => (true, r.name.clone(), r.key.clone(), r.optional),
                    _ => {
                        return Err(bad(
                            &format!("{p}.valueFrom"),
                            "must specify one of: `configMapKeyRef` or `secretKeyRef`",
                        ))
                    }
                };
                let kind = if secret { "secret" } else { "configmap" };
                match lookup(cat, secret, &name).map(|d| d.get(&key)) {
                    Some(Some(v)) => {
                        if secret {
                            secret_env.push((e.name.clone(), name.clone(), key.clone()));
                        }
                        text(&p, v)?
                    }
                    _ if optional == Some(true) => continue,
                    None => return Err(bad(&format!("{p}.valueFrom"), format!("{kind} {name:?} not found"))),
                    Some(None) => {
                        return Err(bad(&format!("{p}.valueFrom"), format!("{kind} {name:?} has no key {key:?}")))
                    }
                }
            }
        };
        out.push((e.name.clone(), value));
    }
    Ok(out.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

fn resources(at: &str, c: &Container, run: &mut RunOptions) -> Result<()> {
    let Some(r) = &c.resources else { return Ok(()) };
    let get = |which: &str,
               m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
               k: &str| {
        m.as_ref().and_then(|m| m.get(k)).map(|q| (format!("{at}.resources.{which}.{k}"), q.0.clone()))
    };
    if let Some((p, q)) = get("limits", &r.limits, "memory") {
        let b = quantity::bytes(&q).filter(|b| *b > 0).ok_or_else(|| bad(&p, format!("Invalid value: {q:?}")))?;
        run.memory = Some(b.to_string());
    }
    if let Some((p, q)) = get("limits", &r.limits, "cpu") {
        let m = quantity::millis(&q).filter(|m| *m > 0).ok_or_else(|| bad(&p, format!("Invalid value: {q:?}")))?;
        run.cpus = Some(m as f64 / 1000.0);
    }
    if let Some((p, q)) = get("requests", &r.requests, "memory") {
        let b = quantity::bytes(&q).ok_or_else(|| bad(&p, format!("Invalid value: {q:?}")))?;
        if run.memory.as_deref().and_then(|m| m.parse::<i64>().ok()).is_some_and(|l| b > l) {
            return Err(bad(&p, format!("Invalid value: {q:?}: must be less than or equal to memory limit")));
        }
        run.host.memory_reservation = Some(b);
    }
    if let Some((p, q)) = get("requests", &r.requests, "cpu") {
        let m = quantity::millis(&q).ok_or_else(|| bad(&p, format!("Invalid value: {q:?}")))?;
        // The kubelet's shares: 1024 per CPU, at least 2.
        run.host.cpu_shares = Some((m * 1024 / 1000).max(2));
    }
    Ok(())
}

/// The container's security context over the pod's; whether it must not run as root.
fn security(at: &str, sc: Option<&SecurityContext>, spec: &PodSpec, run: &mut RunOptions) -> Result<bool> {
    use crate::hostconfig::SecurityOpt;
    let psc = spec.security_context.clone().unwrap_or_default();
    let sc = sc.cloned().unwrap_or_default();
    let uid = sc.run_as_user.or(psc.run_as_user);
    let gid = sc.run_as_group.or(psc.run_as_group);
    run.user = match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(_)) => {
            return Err(bad(&format!("{at}.securityContext.runAsGroup"), "not supported without runAsUser"))
        }
        (None, None) => None,
    };
    let non_root = sc.run_as_non_root.or(psc.run_as_non_root).unwrap_or(false);
    if non_root && uid == Some(0) {
        return Err(bad(&format!("{at}.securityContext.runAsNonRoot"), "Invalid value: runAsUser is 0 (root)"));
    }
    if let Some(g) = psc.fs_group {
        run.host.group_add.push(g.to_string());
    }
    run.host.group_add.extend(psc.supplemental_groups.iter().flatten().map(|g| g.to_string()));
    if let Some(caps) = &sc.capabilities {
        for (i, c) in caps.add.iter().flatten().enumerate() {
            run.host.cap_add.push(
                crate::hostconfig::parse_capability("cap-add", c)
                    .map_err(|e| bad(&format!("{at}.securityContext.capabilities.add[{i}]"), e))?,
            );
        }
        for (i, c) in caps.drop.iter().flatten().enumerate() {
            run.host.cap_drop.push(
                crate::hostconfig::parse_capability("cap-drop", c)
                    .map_err(|e| bad(&format!("{at}.securityContext.capabilities.drop[{i}]"), e))?,
            );
        }
    }
    run.host.privileged = sc.privileged.unwrap_or(false);
    run.read_only = sc.read_only_root_filesystem.unwrap_or(false);
    if sc.allow_privilege_escalation == Some(false) {
        if run.host.privileged {
            return Err(bad(
                &format!("{at}.securityContext"),
                "Invalid value: cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        run.host.security_opt.push(SecurityOpt::NoNewPrivileges(true));
    }
    let (seccomp, sp) = match (&sc.seccomp_profile, &psc.seccomp_profile) {
        (Some(s), _) => (Some(s), format!("{at}.securityContext.seccompProfile")),
        (None, Some(s)) => (Some(s), "spec.securityContext.seccompProfile".to_string()),
        _ => (None, String::new()),
    };
    if let Some(s) = seccomp {
        match s.type_.as_str() {
            "RuntimeDefault" => {}
            "Unconfined" => run.host.security_opt.push(SecurityOpt::SeccompUnconfined),
            "Localhost" => {
                let p = s
                    .localhost_profile
                    .as_deref()
                    .ok_or_else(|| bad(&format!("{sp}.localhostProfile"), "Required value"))?;
                run.host.security_opt.push(
                    SecurityOpt::parse(&format!("seccomp={p}"))
                        .map_err(|e| bad(&format!("{sp}.localhostProfile"), e))?,
                );
            }
            t => {
                return Err(bad(
                    &format!("{sp}.type"),
                    format!(
                        "Unsupported value: {t:?}: supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""
                    ),
                ))
            }
        }
    }
    Ok(non_root)
}
