//! ListMetricDescriptors and ListPodSandboxMetrics: the cAdvisor-named
//! metrics containerd 2.x serves (`internal/cri/server/
//! list_metric_descriptors.go`), with the same label keys; wharf lists only
//! the metrics it fills. A metric ending in `_total` is a counter, the
//! others gauges. Pod-level metrics (network) carry an empty container
//! name and image and the pod's ID, as containerd's.

use super::attrs;
use k8s_cri::v1 as cri;
use std::path::Path;
use wharf_pod::container::Usage;
use wharf_pod::{Container, Containers, Pod, Pods};

const BASE: &[&str] = &["pod", "namespace", "container", "id", "image"];

/// (name, help, label keys after [`BASE`]).
const DESCRIPTORS: &[(&str, &str, &[&str])] = &[
    ("container_cpu_user_seconds_total", "Cumulative user CPU time consumed in seconds.", &[]),
    ("container_cpu_system_seconds_total", "Cumulative system CPU time consumed in seconds.", &[]),
    ("container_cpu_usage_seconds_total", "Cumulative CPU time consumed in seconds.", &[]),
    ("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", &[]),
    ("container_cpu_cfs_throttled_periods_total", "Number of CPU throttled period intervals.", &[]),
    ("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", &[]),
    ("container_memory_cache", "Number of bytes of memory used by the container for caching purposes.", &[]),
    (
        "container_memory_rss",
        "Size of RSS in bytes, total anonymous memory and swap cache memory used by the container.",
        &[],
    ),
    ("container_memory_mapped_file", "Size of container's memory mapped files in bytes.", &[]),
    ("container_memory_swap", "Container swap usage in bytes.", &[]),
    (
        "container_memory_failcnt",
        "Number of times container memory usage has hit its cgroup v1 upper memory limit.",
        &[],
    ),
    (
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
        &[],
    ),
    ("container_memory_max_usage_bytes", "Maximum container memory usage recorded in bytes", &[]),
    (
        "container_memory_working_set_bytes",
        "Amount of memory that is actively used by the container, excluding cached memory.",
        &[],
    ),
    (
        "container_memory_total_active_file_bytes",
        "Amount of cache memory bytes, in use by the container, in file on disk.",
        &[],
    ),
    (
        "container_memory_total_inactive_file_bytes",
        "Amount of inactive cache memory bytes, for the container, in file on disk.",
        &[],
    ),
    ("container_network_receive_bytes_total", "Cumulative count of bytes received", &["interface"]),
    ("container_network_receive_packets_total", "Cumulative count of packets received", &["interface"]),
    (
        "container_network_receive_packets_dropped_total",
        "Cumulative count of packets dropped while receiving",
        &["interface"],
    ),
    (
        "container_network_receive_errors_total",
        "Cumulative count of errors encountered while receiving",
        &["interface"],
    ),
    ("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", &["interface"]),
    ("container_network_transmit_packets_total", "Cumulative count of packets transmitted", &["interface"]),
    (
        "container_network_transmit_packets_dropped_total",
        "Cumulative count of packets dropped while transmitting",
        &["interface"],
    ),
    (
        "container_network_transmit_errors_total",
        "Cumulative count of errors encountered while transmitting",
        &["interface"],
    ),
    ("container_fs_inodes_free", "Number of available Inodes", &["device"]),
    ("container_fs_inodes_total", "Number of Inodes", &["device"]),
    (
        "container_fs_limit_bytes",
        "Number of bytes that can be consumed by the container on this filesystem.",
        &["device"],
    ),
    ("container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", &["device"]),
    ("container_fs_reads_bytes_total", "Cumulative count of bytes read", &["device"]),
    ("container_fs_reads_total", "Cumulative count of reads completed", &["device"]),
    ("container_fs_writes_bytes_total", "Cumulative count of bytes written", &["device"]),
    ("container_fs_writes_total", "Cumulative count of writes completed", &["device"]),
    ("container_processes", "Number of processes running inside the container.", &[]),
    ("container_last_seen", "Last time a container was seen by the exporter", &[]),
    ("container_start_time_seconds", "Start time of the container since unix epoch in seconds", &[]),
    ("container_spec_memory_limit_bytes", "Memory limit for the container", &[]),
];

pub(crate) fn descriptors() -> Vec<cri::MetricDescriptor> {
    DESCRIPTORS
        .iter()
        .map(|(name, help, extra)| cri::MetricDescriptor {
            name: name.to_string(),
            help: help.to_string(),
            label_keys: BASE.iter().chain(extra.iter()).map(|k| k.to_string()).collect(),
        })
        .collect()
}

/// Metrics sharing a timestamp and the base label values.
struct Out {
    at: i64,
    labels: Vec<String>,
    list: Vec<cri::Metric>,
}

impl Out {
    fn new(labels: Vec<String>) -> Out {
        Out { at: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0), labels, list: Vec::new() }
    }

    fn put(&mut self, name: &str, extra: &[&str], value: u64) {
        debug_assert!(DESCRIPTORS.iter().any(|d| d.0 == name), "{name} has no descriptor");
        let metric_type = if name.ends_with("_total") { cri::MetricType::Counter } else { cri::MetricType::Gauge };
        self.list.push(cri::Metric {
            name: name.to_string(),
            timestamp: self.at,
            metric_type: metric_type as i32,
            label_values: self.labels.iter().cloned().chain(extra.iter().map(|s| s.to_string())).collect(),
            value: Some(cri::UInt64Value { value }),
        });
    }
}

const SEC: u64 = 1_000_000_000;

fn cpu_and_memory(o: &mut Out, u: &Usage) {
    o.put("container_cpu_usage_seconds_total", &[], u.cpu_ns / SEC);
    o.put("container_cpu_user_seconds_total", &[], u.cpu_user_ns / SEC);
    o.put("container_cpu_system_seconds_total", &[], u.cpu_kernel_ns / SEC);
    o.put("container_cpu_cfs_periods_total", &[], u.cfs_periods);
    o.put("container_cpu_cfs_throttled_periods_total", &[], u.cfs_throttled_periods);
    o.put("container_cpu_cfs_throttled_seconds_total", &[], u.cfs_throttled_ns / SEC);
    o.put("container_memory_cache", &[], u.cache);
    o.put("container_memory_rss", &[], u.rss);
    o.put("container_memory_mapped_file", &[], u.mapped_file);
    o.put("container_memory_swap", &[], u.swap);
    o.put("container_memory_failcnt", &[], u.memory_failcnt);
    o.put("container_memory_usage_bytes", &[], u.memory);
    o.put("container_memory_max_usage_bytes", &[], u.memory_max_usage);
    o.put("container_memory_working_set_bytes", &[], u.working_set);
    o.put("container_memory_total_active_file_bytes", &[], u.active_file);
    o.put("container_memory_total_inactive_file_bytes", &[], u.inactive_file);
    o.put("container_spec_memory_limit_bytes", &[], u.memory_limit.unwrap_or(0));
    o.put("container_processes", &[], u.pids);
    o.put("container_fs_reads_bytes_total", &[""], u.io_read_bytes);
    o.put("container_fs_reads_total", &[""], u.io_reads);
    o.put("container_fs_writes_bytes_total", &[""], u.io_write_bytes);
    o.put("container_fs_writes_total", &[""], u.io_writes);
}

/// The writable layer's usage and its filesystem's size and inodes.
fn filesystem(o: &mut Out, root: &Path, c: &Container) {
    let dev = root.display().to_string();
    let layer = super::convert::writable_layer(root, c);
    o.put("container_fs_usage_bytes", &[&dev], layer.used_bytes.map_or(0, |v| v.value));
    if let Ok(st) = rustix::fs::statvfs(root) {
        o.put("container_fs_limit_bytes", &[&dev], st.f_blocks.saturating_mul(st.f_frsize));
        o.put("container_fs_inodes_total", &[&dev], st.f_files);
        o.put("container_fs_inodes_free", &[&dev], st.f_ffree);
    }
}

fn container(root: &Path, base: &[String], c: &Container, cs: &Containers) -> cri::ContainerMetrics {
    let name = attrs::container_metadata(c).name;
    let mut labels = base.to_vec();
    labels.extend([name, c.id().to_string(), c.record.image.clone()]);
    let mut o = Out::new(labels);
    o.put("container_last_seen", &[], (o.at as u64) / SEC);
    o.put("container_start_time_seconds", &[], (attrs::ns(&c.state.started_at) as u64) / SEC);
    if let Some(u) = cs.usage(c) {
        cpu_and_memory(&mut o, &u);
    }
    filesystem(&mut o, root, c);
    cri::ContainerMetrics { container_id: c.id().to_string(), metrics: o.list }
}

/// A pod's metrics (its network) and its containers'.
pub(crate) fn pod(root: &Path, p: &Pod, pods: &Pods, cs: &Containers) -> cri::PodSandboxMetrics {
    let md = attrs::pod_metadata(p);
    let base = vec![md.name, md.namespace];
    let mut labels = base.clone();
    labels.extend([String::new(), p.id.clone(), String::new()]);
    let mut o = Out::new(labels);
    for d in pods.net_devs(p).iter().filter(|d| d.name != "lo") {
        let i: &[&str] = &[&d.name];
        o.put("container_network_receive_bytes_total", i, d.rx_bytes);
        o.put("container_network_receive_packets_total", i, d.rx_packets);
        o.put("container_network_receive_packets_dropped_total", i, d.rx_dropped);
        o.put("container_network_receive_errors_total", i, d.rx_errors);
        o.put("container_network_transmit_bytes_total", i, d.tx_bytes);
        o.put("container_network_transmit_packets_total", i, d.tx_packets);
        o.put("container_network_transmit_packets_dropped_total", i, d.tx_dropped);
        o.put("container_network_transmit_errors_total", i, d.tx_errors);
    }
    cri::PodSandboxMetrics {
        pod_sandbox_id: p.id.clone(),
        metrics: o.list,
        // Running containers only, as containerd (it asks their tasks).
        container_metrics: p
            .containers
            .iter()
            .filter(|c| c.is_running())
            .map(|c| container(root, &base, c, cs))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn descriptors_are_unique_with_base_labels() {
        let d = super::descriptors();
        let mut names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), d.len());
        assert!(d
            .iter()
            .all(|d| d.label_keys.starts_with(&["pod", "namespace", "container", "id", "image"].map(String::from))));
        assert!(
            names.contains(&"container_memory_working_set_bytes")
                && names.contains(&"container_network_receive_bytes_total")
        );
    }
}
