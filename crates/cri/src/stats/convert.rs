//! The pod crate's readings as the CRI's stats messages.

use super::attrs;
use super::sampler::CpuSamples;
use k8s_cri::v1 as cri;
use std::path::Path;
use wharf_pod::container::{NetDev, Usage};
use wharf_pod::{Container, Pod};

fn v(value: u64) -> Option<cri::UInt64Value> {
    Some(cri::UInt64Value { value })
}

/// The sampler's key of a pod.
pub(crate) fn pod_key(id: &str) -> String {
    format!("pod:{id}")
}

pub(crate) fn cpu(u: &Usage, samples: &CpuSamples, key: &str) -> cri::CpuUsage {
    cri::CpuUsage {
        timestamp: u.timestamp_ns,
        usage_core_nano_seconds: v(u.cpu_ns),
        usage_nano_cores: v(samples.nano_cores(key, u.timestamp_ns, u.cpu_ns).unwrap_or(0)),
    }
}

pub(crate) fn memory(u: &Usage) -> cri::MemoryUsage {
    cri::MemoryUsage {
        timestamp: u.timestamp_ns,
        working_set_bytes: v(u.working_set),
        // containerd's: the limit less the working set, 0 without a limit.
        available_bytes: v(u.memory_limit.map_or(0, |l| l.saturating_sub(u.working_set))),
        usage_bytes: v(u.memory),
        rss_bytes: v(u.rss),
        page_faults: v(u.page_faults),
        major_page_faults: v(u.major_page_faults),
    }
}

fn swap(u: &Usage) -> cri::SwapUsage {
    cri::SwapUsage { timestamp: u.timestamp_ns, swap_available_bytes: v(0), swap_usage_bytes: v(u.swap) }
}

/// The container's writable layer (`upper/`), on the filesystem ImageFsInfo
/// reports for containers (the store's root).
pub(crate) fn writable_layer(root: &Path, c: &Container) -> cri::FilesystemUsage {
    let timestamp = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let u = crate::imagefs_info::usage(root, &[c.dir.join("upper")]);
    cri::FilesystemUsage {
        timestamp,
        fs_id: Some(cri::FilesystemIdentifier { mountpoint: root.display().to_string() }),
        used_bytes: v(u.bytes),
        inodes_used: v(u.inodes),
    }
}

/// A container's stats; CPU, memory and swap only while it runs.
pub(crate) fn container_stats(
    root: &Path,
    c: &Container,
    usage: Option<&Usage>,
    samples: &CpuSamples,
) -> cri::ContainerStats {
    cri::ContainerStats {
        attributes: Some(attrs::container_attributes(c)),
        cpu: usage.map(|u| cpu(u, samples, c.id())),
        memory: usage.map(memory),
        writable_layer: Some(writable_layer(root, c)),
        swap: usage.map(swap),
    }
}

fn interface(d: &NetDev) -> cri::NetworkInterfaceUsage {
    cri::NetworkInterfaceUsage {
        name: d.name.clone(),
        rx_bytes: v(d.rx_bytes),
        rx_errors: v(d.rx_errors),
        tx_bytes: v(d.tx_bytes),
        tx_errors: v(d.tx_errors),
    }
}

/// The pod's interfaces but loopback, `eth0` (the CNI's default) as the default one.
pub(crate) fn network(devs: &[NetDev], timestamp: i64) -> Option<cri::NetworkUsage> {
    let ifs: Vec<&NetDev> = devs.iter().filter(|d| d.name != "lo").collect();
    if ifs.is_empty() {
        return None;
    }
    let default = ifs.iter().find(|d| d.name == "eth0").unwrap_or(&ifs[0]);
    Some(cri::NetworkUsage {
        timestamp,
        default_interface: Some(interface(default)),
        interfaces: ifs.iter().filter(|d| d.name != default.name).map(|d| interface(d)).collect(),
    })
}

/// A pod's stats: its cgroup's totals, its network, its containers'.
pub(crate) fn pod_stats(
    p: &Pod,
    usage: Option<&Usage>,
    devs: &[NetDev],
    containers: Vec<cri::ContainerStats>,
    samples: &CpuSamples,
) -> cri::PodSandboxStats {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let key = pod_key(&p.id);
    cri::PodSandboxStats {
        attributes: Some(attrs::pod_attributes(p)),
        linux: Some(cri::LinuxPodSandboxStats {
            cpu: usage.map(|u| cpu(u, samples, &key)),
            memory: usage.map(memory),
            network: network(devs, usage.map_or(now, |u| u.timestamp_ns)),
            process: usage.map(|u| cri::ProcessUsage { timestamp: u.timestamp_ns, process_count: v(u.pids) }),
            containers,
        }),
        windows: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(name: &str, rx: u64) -> NetDev {
        NetDev { name: name.into(), rx_bytes: rx, ..Default::default() }
    }

    #[test]
    fn network_leaves_out_loopback_and_prefers_eth0() {
        assert_eq!(network(&[dev("lo", 5)], 1), None);
        let n = network(&[dev("lo", 5), dev("net1", 7), dev("eth0", 9)], 1).unwrap();
        assert_eq!(
            n.default_interface.as_ref().map(|d| (d.name.as_str(), d.rx_bytes.unwrap().value)),
            Some(("eth0", 9))
        );
        assert_eq!(n.interfaces.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["net1"]);
    }

    #[test]
    fn memory_available_is_the_limit_less_the_working_set() {
        let u = Usage { memory: 100, working_set: 60, memory_limit: Some(1000), ..Default::default() };
        assert_eq!(memory(&u).available_bytes.unwrap().value, 940);
        let u = Usage { memory_limit: None, ..u };
        assert_eq!(memory(&u).available_bytes.unwrap().value, 0);
    }
}
