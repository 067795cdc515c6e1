//! The fields wharf implements, per kind: every other field of a manifest
//! is refused with its path (`spec.containers[1].volumeMounts[0].subPathExpr:
//! not supported`), never ignored. Patterns: `[]` is any element of a list,
//! `*` any key of a map; a pattern names its whole subtree.

use serde_json::Value;
use std::collections::BTreeSet;

const META: &[&str] =
    &["apiVersion", "kind", "metadata.name", "metadata.namespace", "metadata.labels.*", "metadata.annotations.*"];

/// A container's fields (under `containers[]` and `initContainers[]`).
const CONTAINER: &[&str] = &[
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "workingDir",
    "env[].name",
    "env[].value",
    "env[].valueFrom.configMapKeyRef.name",
    "env[].valueFrom.configMapKeyRef.key",
    "env[].valueFrom.configMapKeyRef.optional",
    "env[].valueFrom.secretKeyRef.name",
    "env[].valueFrom.secretKeyRef.key",
    "env[].valueFrom.secretKeyRef.optional",
    "envFrom[].prefix",
    "envFrom[].configMapRef.name",
    "envFrom[].configMapRef.optional",
    "envFrom[].secretRef.name",
    "envFrom[].secretRef.optional",
    "ports[].name",
    "ports[].containerPort",
    "ports[].hostPort",
    "ports[].hostIP",
    "ports[].protocol",
    "resources.limits.cpu",
    "resources.limits.memory",
    "resources.requests.cpu",
    "resources.requests.memory",
    "securityContext.runAsUser",
    "securityContext.runAsGroup",
    "securityContext.runAsNonRoot",
    "securityContext.capabilities.add",
    "securityContext.capabilities.drop",
    "securityContext.privileged",
    "securityContext.readOnlyRootFilesystem",
    "securityContext.allowPrivilegeEscalation",
    "securityContext.seccompProfile.type",
    "securityContext.seccompProfile.localhostProfile",
    "volumeMounts[].name",
    "volumeMounts[].mountPath",
    "volumeMounts[].readOnly",
    "volumeMounts[].subPath",
    "stdin",
    "tty",
];

/// A probe's fields (liveness, readiness, startup).
const PROBE: &[&str] = &[
    "exec.command",
    "httpGet.path",
    "httpGet.port",
    "httpGet.host",
    "tcpSocket.port",
    "tcpSocket.host",
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "failureThreshold",
    "successThreshold",
];

/// A pod spec's own fields.
const POD_SPEC: &[&str] = &[
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "hostname",
    "subdomain",
    "hostNetwork",
    "shareProcessNamespace",
    "hostAliases[].ip",
    "hostAliases[].hostnames",
    "dnsConfig.nameservers",
    "dnsConfig.searches",
    "dnsConfig.options[].name",
    "dnsConfig.options[].value",
    "securityContext.runAsUser",
    "securityContext.runAsGroup",
    "securityContext.runAsNonRoot",
    "securityContext.fsGroup",
    "securityContext.supplementalGroups",
    "securityContext.seccompProfile.type",
    "securityContext.seccompProfile.localhostProfile",
    "volumes[].name",
    "volumes[].configMap.name",
    "volumes[].configMap.items[].key",
    "volumes[].configMap.items[].path",
    "volumes[].configMap.items[].mode",
    "volumes[].configMap.defaultMode",
    "volumes[].configMap.optional",
    "volumes[].secret.secretName",
    "volumes[].secret.items[].key",
    "volumes[].secret.items[].path",
    "volumes[].secret.items[].mode",
    "volumes[].secret.defaultMode",
    "volumes[].secret.optional",
    "volumes[].persistentVolumeClaim.claimName",
    "volumes[].persistentVolumeClaim.readOnly",
    "volumes[].emptyDir.medium",
    "volumes[].emptyDir.sizeLimit",
    "volumes[].hostPath.path",
    "volumes[].hostPath.type",
];

fn pod_spec(prefix: &str, out: &mut Vec<String>) {
    out.extend(POD_SPEC.iter().map(|p| format!("{prefix}{p}")));
    for c in ["containers[]", "initContainers[]"] {
        out.extend(CONTAINER.iter().map(|p| format!("{prefix}{c}.{p}")));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        out.extend(PROBE.iter().map(|p| format!("{prefix}containers[].{probe}.{p}")));
    }
}

/// The allowed patterns of `kind`.
fn patterns(kind: &str) -> Vec<String> {
    let mut out: Vec<String> = META.iter().map(|s| s.to_string()).collect();
    match kind {
        "Pod" => pod_spec("spec.", &mut out),
        "Deployment" => {
            out.extend(
                [
                    "spec.replicas",
                    "spec.selector.matchLabels.*",
                    "spec.template.metadata.labels.*",
                    "spec.template.metadata.annotations.*",
                    "spec.template.metadata.name",
                ]
                .map(String::from),
            );
            pod_spec("spec.template.spec.", &mut out);
        }
        "ConfigMap" => out.extend(["data.*", "binaryData.*", "immutable"].map(String::from)),
        "Secret" => out.extend(["data.*", "stringData.*", "type", "immutable"].map(String::from)),
        "PersistentVolumeClaim" => {
            out.extend(["spec.accessModes", "spec.resources.requests.storage", "spec.volumeMode"].map(String::from))
        }
        _ => {}
    }
    out
}

/// Every allowed pattern and every prefix of one (a path to walk through).
struct Allow {
    whole: BTreeSet<String>,
    through: BTreeSet<String>,
}

impl Allow {
    fn new(kind: &str) -> Allow {
        let whole: BTreeSet<String> = patterns(kind).into_iter().collect();
        let mut through = BTreeSet::new();
        for p in &whole {
            for (i, ch) in p.char_indices() {
                if ch == '.' || ch == '[' {
                    through.insert(p[..i].to_string());
                }
            }
        }
        Allow { whole, through }
    }
}

/// The first field of `v` (a `kind` object) outside the allowlist.
pub(crate) fn check(kind: &str, v: &Value) -> Result<(), String> {
    let allow = Allow::new(kind);
    walk(&allow, v, "", "").map_or(Ok(()), |p| Err(format!("{p}: not supported")))
}

/// `pat` is the path as a pattern, `path` as written (with indices).
fn walk(a: &Allow, v: &Value, pat: &str, path: &str) -> Option<String> {
    if a.whole.contains(pat) || v.is_null() {
        return None;
    }
    if !pat.is_empty() && !a.through.contains(pat) {
        return Some(path.to_string());
    }
    match v {
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            let join = |s: &str| if s.is_empty() { k.clone() } else { format!("{s}.{k}") };
            let exact = join(pat);
            let any = if pat.is_empty() { "*".to_string() } else { format!("{pat}.*") };
            let p = if a.whole.contains(&exact) || a.through.contains(&exact) { exact } else { any };
            walk(a, v, &p, &join(path))
        }),
        Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| walk(a, v, &format!("{pat}[]"), &format!("{path}[{i}]")))
        }
        // A scalar where a mapping is expected: the typed decode said so already.
        _ => Some(path.to_string()),
    }
}
