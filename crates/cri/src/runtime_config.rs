//! RuntimeConfig (the cgroup driver the kubelet must match) and
//! UpdateRuntimeConfig (the node's pod CIDR, kept under the run root so a
//! restarted daemon still knows it; the kubelet sends it again at its start).

use crate::config::CgroupDriver;
use crate::service::Cri;
use k8s_cri::v1 as cri;
use std::path::{Path, PathBuf};
use tonic::Status;

fn cidr_file(run_root: &Path) -> PathBuf {
    run_root.join("cri").join("pod-cidr")
}

pub(crate) fn load_pod_cidr(run_root: &Path) -> String {
    std::fs::read_to_string(cidr_file(run_root)).map(|s| s.trim().to_string()).unwrap_or_default()
}

pub(crate) fn runtime_config(cri: &Cri) -> cri::RuntimeConfigResponse {
    let driver = match cri.config.cgroup_driver {
        CgroupDriver::Cgroupfs => cri::CgroupDriver::Cgroupfs,
        CgroupDriver::Systemd => cri::CgroupDriver::Systemd,
    };
    cri::RuntimeConfigResponse { linux: Some(cri::LinuxRuntimeConfiguration { cgroup_driver: driver as i32 }) }
}

/// An empty CIDR changes nothing (containerd's rule); a malformed one is refused.
pub(crate) fn update_runtime_config(cri: &Cri, r: &cri::UpdateRuntimeConfigRequest) -> Result<(), Status> {
    let cidr = r.runtime_config.as_ref().and_then(|c| c.network_config.as_ref()).map(|n| n.pod_cidr.trim());
    let Some(cidr) = cidr.filter(|c| !c.is_empty()) else { return Ok(()) };
    for part in cidr.split(',') {
        if !valid_cidr(part.trim()) {
            return Err(Status::invalid_argument(format!("pod CIDR {part:?} is not ADDRESS/PREFIX")));
        }
    }
    let mut cur = cri.pod_cidr.lock().unwrap_or_else(|e| e.into_inner());
    if *cur != cidr {
        let f = cidr_file(&cri.run_root);
        write_atomic(&f, cidr).map_err(|e| Status::internal(format!("write {}: {e}", f.display())))?;
        tracing::info!("pod CIDR: {cidr}");
        *cur = cidr.to_string();
    }
    Ok(())
}

fn valid_cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else { return false };
    let Ok(prefix) = prefix.parse::<u8>() else { return false };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix <= 32,
        Ok(std::net::IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, format!("{text}\n"))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cidrs() {
        for ok in ["10.244.0.0/24", "fd00::/64", "0.0.0.0/0"] {
            assert!(super::valid_cidr(ok), "{ok}");
        }
        for bad in ["10.244.0.0", "10.244.0.0/33", "x/24", "fd00::/129", ""] {
            assert!(!super::valid_cidr(bad), "{bad}");
        }
    }
}
