//! A pod on a network the kubelet's CNI configuration describes (`wharf
//! cri`): the first config of a conf dir, plugins from the configured bin
//! dirs, `CNI_ARGS` with the `K8S_POD_*` values, the pod's port mappings as
//! `runtimeConfig.portMappings`. ADD into the pod's pinned netns at `pod
//! create`; what DEL needs is kept in `<run-root>/pods/<id>/cni.json` so
//! that the teardown works from the ID alone (after a `kill -9` too).

use crate::error::{Error, Result};
use crate::network::{cni, hosts, ports, PortMapping};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

const STATE: &str = "cni.json";
const IFNAME: &str = "eth0";

/// The network a pod asks of an external CNI configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalCni {
    /// The network config: a `.conflist`, or a single-plugin `.conf`/`.json`.
    pub conf_file: PathBuf,
    pub bin_dirs: Vec<PathBuf>,
    /// `CNI_ARGS` pairs (`K8S_POD_NAMESPACE`, …).
    pub args: Vec<(String, String)>,
    pub port_mappings: Vec<PortMapping>,
}

/// What DEL needs, written after ADD.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    list: Value,
    result: Option<Value>,
    args: String,
    dirs: Vec<PathBuf>,
    netns: PathBuf,
    runtime_config: Value,
}

/// The config in `file` as a conflist (a `.conf` becomes a list of one).
pub fn load_conflist(file: &Path) -> Result<Value> {
    let text = std::fs::read(file).map_err(|e| Error::io(format!("read {}", file.display()), e))?;
    let v: Value = serde_json::from_slice(&text)
        .map_err(|e| Error::Network(format!("{}: not a CNI config: {e}", file.display())))?;
    if v["plugins"].is_array() {
        return Ok(v);
    }
    if v["type"].is_string() {
        let mut plugin = v.clone();
        if let Some(o) = plugin.as_object_mut() {
            o.remove("cniVersion");
            o.remove("name");
        }
        return Ok(json!({"cniVersion": v["cniVersion"], "name": v["name"], "plugins": [plugin]}));
    }
    Err(Error::Network(format!("{}: neither \"plugins\" nor \"type\"", file.display())))
}

/// `IgnoreUnknown=1;K=V;…`; an empty `K8S_POD_INFRA_CONTAINER_ID` is the pod's id.
fn args_string(c: &ExternalCni, id: &str) -> String {
    let mut out = vec!["IgnoreUnknown=1".to_string()];
    for (k, v) in &c.args {
        let v = if k == "K8S_POD_INFRA_CONTAINER_ID" && v.is_empty() { id } else { v };
        out.push(format!("{k}={v}"));
    }
    out.join(";")
}

/// The /etc files a pod on this network gets.
pub struct EtcFiles<'a> {
    pub hostname: &'a str,
    pub add_hosts: &'a [String],
    pub dns: &'a [String],
    pub dns_search: &'a [String],
    pub dns_options: &'a [String],
}

/// CNI ADD of pod `id` into `netns`; its IPv4 address and the /etc files
/// written in `files_dir` (path in the container, host file).
pub(crate) fn add(
    c: &ExternalCni,
    id: &str,
    netns: &Path,
    run_dir: &Path,
    files_dir: &Path,
    etc: &EtcFiles,
) -> Result<(Ipv4Addr, Vec<(String, PathBuf)>)> {
    let list = load_conflist(&c.conf_file)?;
    let args = args_string(c, id);
    let rc = ports::runtime_config(&c.port_mappings);
    let mut state = State {
        list: list.clone(),
        result: None,
        args: args.clone(),
        dirs: c.bin_dirs.clone(),
        netns: netns.to_path_buf(),
        runtime_config: rc.clone(),
    };
    // Written before ADD: a kill -9 during it still leaves DEL what it needs.
    save(run_dir, &state)?;
    let inv = cni::Invocation { container_id: id, netns, ifname: IFNAME, runtime_config: &rc, hold: &[] };
    let result = cni::add_with(&list, &inv, &cni::Env { dirs: &c.bin_dirs, args: &args })?;
    state.result = Some(result.clone());
    save(run_dir, &state)?;
    let (ip, _mac) =
        cni::container_address(&result).ok_or_else(|| Error::Network("CNI ADD gave the pod no IPv4 address".into()))?;
    let files = hosts::Files {
        hostname: etc.hostname,
        ip,
        names: &[],
        add_hosts: etc.add_hosts,
        dns_server: None,
        dns: etc.dns,
        dns_search: etc.dns_search,
        dns_options: etc.dns_options,
    };
    Ok((ip, hosts::write(files_dir, &files)?))
}

fn save(run_dir: &Path, s: &State) -> Result<()> {
    std::fs::create_dir_all(run_dir).map_err(|e| Error::io(format!("create {}", run_dir.display()), e))?;
    let bytes = serde_json::to_vec(s).map_err(|e| Error::Network(format!("encode CNI state: {e}")))?;
    // Renamed into place, not fsynced: the run root does not outlive a
    // reboot, and what a killed process wrote is in the page cache.
    crate::container::write_atomic(&run_dir.join(STATE), &bytes)
}

/// CNI DEL of pod `id` if an external network was added (idempotent: the
/// state file goes once DEL succeeded).
///
/// What the plugins leave after their last DEL stays, as containerd and
/// CRI-O leave it: `portmap`'s host-wide nat chains (`CNI-HOSTPORT-DNAT`,
/// `-MASQ`, `-SETMARK` and the jumps to them) belong to the kubelet's
/// network configuration, which other runtimes' pods on the host may share;
/// no pod's DEL can know it is the last user.
pub(crate) fn del(run_dir: &Path, id: &str) -> Result<()> {
    let p = run_dir.join(STATE);
    let s: State = match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Network(format!("{}: {e}", p.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("read {}", p.display()), e)),
    };
    let inv = cni::Invocation {
        container_id: id,
        netns: &s.netns,
        ifname: IFNAME,
        runtime_config: &s.runtime_config,
        hold: &[],
    };
    cni::del_with(&s.list, &inv, s.result.as_ref(), &cni::Env { dirs: &s.dirs, args: &s.args })?;
    crate::network::remove_file(&p)
}

/// The IPv4 address of pod `id` on its external network, if any.
pub fn address(run_dir: &Path) -> Option<Ipv4Addr> {
    let b = std::fs::read(run_dir.join(STATE)).ok()?;
    let s: State = serde_json::from_slice(&b).ok()?;
    cni::container_address(s.result.as_ref()?).map(|(ip, _)| ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_plugin_conf_becomes_a_list_and_args_name_the_pod() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("10-br.conf");
        std::fs::write(&f, r#"{"cniVersion":"0.4.0","name":"k8s","type":"bridge","bridge":"cni0"}"#).unwrap();
        let l = load_conflist(&f).unwrap();
        assert_eq!((l["name"].as_str(), l["cniVersion"].as_str()), (Some("k8s"), Some("0.4.0")));
        assert_eq!(l["plugins"][0]["type"], "bridge");
        assert!(l["plugins"][0].get("name").is_none());
        std::fs::write(&f, r#"{"name":"k8s"}"#).unwrap();
        assert!(load_conflist(&f).is_err());
        let c = ExternalCni {
            args: vec![("K8S_POD_NAME".into(), "web".into()), ("K8S_POD_INFRA_CONTAINER_ID".into(), String::new())],
            ..Default::default()
        };
        assert_eq!(args_string(&c, "abc"), "IgnoreUnknown=1;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc");
    }
}
