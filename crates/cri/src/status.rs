//! Status: RuntimeReady, NetworkReady (a usable CNI network config in the
//! conf dir, as libcni picks it: the first `*.conf`, `*.conflist` or
//! `*.json` by name), the runtime handlers, and with `verbose` the
//! configuration the daemon runs with (`crictl info`).

use crate::service::Cri;
use k8s_cri::v1 as cri;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A CNI network config found in the conf dir.
#[derive(Debug, PartialEq)]
pub(crate) struct CniNetwork {
    pub file: PathBuf,
    pub name: String,
}

/// The network the conf dir gives, or why there is none (containerd's
/// message for an empty dir is "cni plugin not initialized").
pub(crate) fn cni_network(conf_dir: &Path) -> Result<CniNetwork, String> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(conf_dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf" || x == "conflist" || x == "json"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("read {}: {e}", conf_dir.display())),
    };
    files.sort();
    let mut why = format!("cni plugin not initialized: no network config found in {}", conf_dir.display());
    for file in files {
        match parse_network(&file) {
            Ok(name) => return Ok(CniNetwork { file, name }),
            // libcni skips configs it cannot load and takes the next.
            Err(e) => why = format!("{}: {e}", file.display()),
        }
    }
    Err(why)
}

fn parse_network(file: &Path) -> Result<String, String> {
    let text = std::fs::read(file).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| format!("not JSON: {e}"))?;
    let name = v.get("name").and_then(|n| n.as_str()).filter(|n| !n.is_empty()).ok_or("no \"name\"")?;
    let plugins = v.get("plugins").and_then(|p| p.as_array());
    match (plugins, v.get("type").and_then(|t| t.as_str())) {
        (Some(p), _) if !p.is_empty() => Ok(name.to_string()),
        (None, Some(t)) if !t.is_empty() => Ok(name.to_string()),
        _ => Err("neither \"plugins\" nor \"type\"".into()),
    }
}

fn condition(kind: &str, ok: Result<(), String>, reason: &str) -> cri::RuntimeCondition {
    match ok {
        Ok(()) => {
            cri::RuntimeCondition { r#type: kind.into(), status: true, reason: String::new(), message: String::new() }
        }
        Err(message) => cri::RuntimeCondition { r#type: kind.into(), status: false, reason: reason.into(), message },
    }
}

pub(crate) fn status(c: &Cri, r: &cri::StatusRequest) -> cri::StatusResponse {
    let net = cni_network(&c.config.cni.conf_dir);
    let conditions = vec![
        condition("RuntimeReady", Ok(()), "RuntimeNotReady"),
        condition("NetworkReady", net.as_ref().map(|_| ()).map_err(Clone::clone), "NetworkPluginNotReady"),
    ];
    let features = cri::RuntimeHandlerFeatures { recursive_read_only_mounts: false, user_namespaces: false };
    let mut runtime_handlers: Vec<cri::RuntimeHandler> =
        c.handlers.iter().map(|h| cri::RuntimeHandler { name: h.name.clone(), features: Some(features) }).collect();
    // The handler of pods with no RuntimeClass, listed under "" as containerd does.
    runtime_handlers.insert(0, cri::RuntimeHandler { name: String::new(), features: Some(features) });
    let info = if r.verbose { verbose_info(c, &net) } else { HashMap::new() };
    cri::StatusResponse {
        status: Some(cri::RuntimeStatus { conditions }),
        info,
        runtime_handlers,
        features: Some(cri::RuntimeFeatures { supplemental_groups_policy: false }),
    }
}

fn verbose_info(c: &Cri, net: &Result<CniNetwork, String>) -> HashMap<String, String> {
    let handlers: serde_json::Map<String, serde_json::Value> =
        c.handlers.iter().map(|h| (h.name.clone(), json!({ "binary": h.binary }))).collect();
    let config = json!({
        "root": c.root,
        "runRoot": c.run_root,
        "cgroupDriver": c.config.cgroup_driver,
        "cni": c.config.cni,
        "sandbox": c.config.sandbox,
        "registry": c.config.registry,
        "defaultRuntimeHandler": c.config.runtime.default_handler,
        "runtimeHandlers": handlers,
        "logs": c.config.logs,
        "podCIDR": *c.pod_cidr.lock().unwrap_or_else(|e| e.into_inner()),
    });
    let cniconfig = json!({
        "confDir": c.config.cni.conf_dir,
        "binDirs": c.config.cni.bin_dirs,
        "network": net.as_ref().ok().map(|n| json!({ "name": n.name, "file": n.file })),
    });
    let last = match net {
        Ok(_) => "OK".to_string(),
        Err(e) => e.clone(),
    };
    HashMap::from([
        ("config".to_string(), config.to_string()),
        ("cniconfig".to_string(), cniconfig.to_string()),
        ("lastCNILoadStatus".to_string(), last),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_from_conf_dir() {
        let d = tempfile::tempdir().unwrap();
        assert!(cni_network(&d.path().join("absent")).unwrap_err().contains("not initialized"));
        assert!(cni_network(d.path()).unwrap_err().contains("not initialized"));
        std::fs::write(d.path().join("README"), "not a config").unwrap();
        std::fs::write(d.path().join("05-bad.conf"), "{").unwrap();
        assert!(cni_network(d.path()).unwrap_err().contains("not JSON"));
        std::fs::write(
            d.path().join("10-net.conflist"),
            r#"{"cniVersion":"1.0.0","name":"k8s","plugins":[{"type":"bridge"}]}"#,
        )
        .unwrap();
        std::fs::write(d.path().join("20-other.conf"), r#"{"name":"other","type":"bridge"}"#).unwrap();
        let n = cni_network(d.path()).unwrap();
        assert_eq!((n.name.as_str(), n.file.file_name().unwrap().to_str().unwrap()), ("k8s", "10-net.conflist"));
    }
}
