//! What the kubelet asks of a container beyond `docker run`'s flags, for
//! `wharf cri`: the log path it chose, host or shared pid/ipc namespaces,
//! masked and read-only paths, exact resources, bind mounts with
//! propagation, the process's args. Recorded in
//! [`RunOptions::kubelet`](crate::RunOptions) and applied last to the OCI
//! spec the engine wrote ([`apply`]); everything else a CRI container asks
//! for maps onto the engine's own options (user, caps, seccomp, devices,
//! sysctls, read-only rootfs, tty/stdin).
//!
//! Also here: [`Containers::exec_capture`] (ExecSync: output through pipes,
//! a timeout, a cap) and [`Containers::reopen_log`] (ReopenContainerLog).

mod exec;

pub use exec::{ExecOutput, MAX_EXEC_OUTPUT};

use crate::container::{Container, Containers};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::PathBuf;

/// A namespace the container does not get its own of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Join {
    /// Its own (the default).
    #[default]
    Own,
    /// The host's.
    Host,
    /// The one at this path (`/proc/PID/ns/pid` of a target container).
    Path(PathBuf),
}

/// The kubelet's additions to a container's spec.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KubeSpec {
    /// Where the monitor writes the CRI-format log (else `ctr.log` in the container dir).
    pub log_path: Option<PathBuf>,
    pub pid: Join,
    pub ipc: Join,
    /// Host: the host's uts namespace (a pod on the host's network).
    pub uts: Join,
    /// Replace the spec's masked / read-only paths when set.
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    /// OCI `linux.resources` fields (cpu, memory, …) merged over the spec's.
    pub resources: Option<Value>,
    /// OCI mounts added last (bind mounts with their propagation).
    pub mounts: Vec<Value>,
    /// `linux.rootfsPropagation` (`rshared` for a bidirectional mount, as containerd sets).
    pub rootfs_propagation: Option<String>,
    /// `process.noNewPrivileges`.
    pub no_new_privileges: bool,
    /// OCI annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// What `wharf cri` keeps of the kubelet's request (opaque here).
    pub cri: Value,
}

/// Applies `k` to the spec of a container (after the pod's own changes).
pub(crate) fn apply(spec: &mut Value, k: &KubeSpec) -> Result<()> {
    for (kind, join) in [("pid", &k.pid), ("ipc", &k.ipc), ("uts", &k.uts)] {
        let Some(ns) = spec["linux"]["namespaces"].as_array_mut() else { continue };
        match join {
            Join::Own => {}
            Join::Host => ns.retain(|n| n["type"] != kind),
            Join::Path(p) => {
                ns.retain(|n| n["type"] != kind);
                ns.push(json!({"type": kind, "path": p}));
            }
        }
    }
    if let Some(m) = &k.masked_paths {
        spec["linux"]["maskedPaths"] = json!(m);
    }
    if let Some(r) = &k.readonly_paths {
        spec["linux"]["readonlyPaths"] = json!(r);
    }
    if let Some(res) = k.resources.as_ref().and_then(Value::as_object) {
        for (key, v) in res {
            match (spec["linux"]["resources"][key].as_object_mut(), v.as_object()) {
                (Some(have), Some(new)) => have.extend(new.clone()),
                _ => spec["linux"]["resources"][key] = v.clone(),
            }
        }
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in &k.mounts {
            mounts.retain(|d| d["destination"] != m["destination"]);
            mounts.push(m.clone());
        }
    }
    if let Some(p) = &k.rootfs_propagation {
        spec["linux"]["rootfsPropagation"] = json!(p);
    }
    if k.no_new_privileges {
        spec["process"]["noNewPrivileges"] = json!(true);
    }
    for (key, v) in &k.annotations {
        spec["annotations"][key] = json!(v);
    }
    if k.uts == Join::Host {
        // The host's hostname: a runtime cannot set one without a uts namespace.
        if let Some(o) = spec.as_object_mut() {
            o.remove("hostname");
        }
    }
    Ok(())
}

impl Containers {
    /// UpdateContainerResources: `resources` (OCI `linux.resources`) to the
    /// running container's cgroup, and into its record (`cri` replaces the
    /// opaque CRI data) for its next start.
    pub fn update_kubelet(&self, c: &Container, resources: Value, cri: Value) -> Result<()> {
        if c.is_running() && resources.as_object().is_some_and(|r| !r.is_empty()) {
            let r: wharf_runtime::oci_spec::runtime::LinuxResources = serde_json::from_value(resources.clone())
                .map_err(|e| Error::InvalidArgument(format!("resources: {e}")))?;
            if let Some(oci) = self.oci(&c.record) {
                oci.update(&c.dir, c.id(), &r)?;
            } else if let Ok(rt) = wharf_runtime::Container::load(&self.state_root(), c.id()) {
                rt.update(&r)?;
            }
        }
        let mut rec = crate::container::record_of(c)?;
        let k = rec.options.kubelet.get_or_insert_with(KubeSpec::default);
        k.resources = Some(resources);
        k.cri = cri;
        crate::container::save(c, &rec)
    }

    /// Asks `c`'s monitor to open its log path again (after the kubelet
    /// renamed the file), and waits (2 s at most) for the new file.
    pub fn reopen_log(&self, c: &Container) -> Result<()> {
        if !c.is_running() || c.state.monitor_pid <= 0 || !c.owned {
            return Err(Error::Conflict(format!("container {} is not running", c.id())));
        }
        let pid = rustix::process::Pid::from_raw(c.state.monitor_pid)
            .ok_or_else(|| Error::Conflict(format!("container {} has no monitor", c.id())))?;
        rustix::process::kill_process(pid, rustix::process::Signal::USR1)
            .map_err(|e| Error::io(format!("signal the monitor of {}", c.id()), e.into()))?;
        let path = c.log_path();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !path.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if path.exists() {
            Ok(())
        } else {
            Err(Error::Monitor(format!("the monitor of {} did not reopen {}", c.id(), path.display())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths_resources_and_mounts() {
        let mut spec = json!({
            "process": {"user": {"uid": 0}},
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}],
                "resources": {"devices": [{"allow": false, "access": "rwm"}], "memory": {"limit": 1}},
                "maskedPaths": ["/proc/kcore"]
            },
            "mounts": [{"destination": "/data", "type": "tmpfs"}]
        });
        let k = KubeSpec {
            pid: Join::Host,
            ipc: Join::Path("/proc/7/ns/ipc".into()),
            masked_paths: Some(Vec::new()),
            resources: Some(json!({"memory": {"swap": 2}, "cpu": {"shares": 512}})),
            mounts: vec![json!({"destination": "/data", "type": "bind", "source": "/x"})],
            no_new_privileges: true,
            ..Default::default()
        };
        apply(&mut spec, &k).unwrap();
        let ns = spec["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "pid"), "host pid: no pid namespace");
        assert!(ns.iter().any(|n| n["type"] == "ipc" && n["path"] == "/proc/7/ns/ipc"));
        assert_eq!(spec["linux"]["maskedPaths"], json!([]));
        assert_eq!(spec["linux"]["resources"]["memory"], json!({"limit": 1, "swap": 2}), "merged, not replaced");
        assert_eq!(spec["linux"]["resources"]["cpu"]["shares"], 512);
        assert!(spec["linux"]["resources"]["devices"].is_array(), "the device rules stay");
        assert_eq!(spec["mounts"].as_array().unwrap().len(), 1);
        assert_eq!(spec["mounts"][0]["type"], "bind");
        assert_eq!(spec["process"]["noNewPrivileges"], true);
    }
}
