//! What `pod ls` and `pod inspect` show (podman's field names where it has
//! them), and the pod-wide `top`, `stats` and `logs`.

use super::{Pod, Pods};
use crate::container::logs::LogOptions;
use crate::container::Container;
use crate::error::Result;
use serde_json::{json, Value};
use std::io::Write;

/// A member's entry; `BackOff` while its monitor waits to restart it
/// (Kubernetes' CrashLoopBackOff), as in `inspect`.
fn container_entry(c: &Container) -> Value {
    let mut v = json!({
        "Id": c.id(),
        "Name": c.name(),
        "State": c.status.to_string(),
        "Pid": if c.is_running() { c.state.pid } else { 0 },
        "RestartCount": c.state.restart_count,
        "ExitCode": c.state.exit_code,
    });
    if c.status == crate::Status::Restarting && c.state.back_off_ms > 0 {
        v["BackOff"] = json!({"Reason": "CrashLoopBackOff", "DelaySeconds": c.state.back_off_ms / 1000});
    }
    v
}

impl Pods {
    /// One `pod ls --format json` entry.
    pub fn ls_entry(&self, p: &Pod) -> Value {
        json!({
            "Id": p.id,
            "Name": p.name,
            "Status": p.status().to_string(),
            "Created": p.created,
            "Labels": p.labels,
            "Networks": network_name(p),
            "IP": p.ip,
            "InfraPid": p.infra.pid,
            "InfraRunning": p.infra.running,
            "NumberOfContainers": p.containers.len(),
            "Containers": p.containers.iter().map(container_entry).collect::<Vec<_>>(),
        })
    }

    /// `pod inspect`.
    pub fn inspect(&self, p: &Pod) -> Value {
        let o = &p.record.options;
        json!({
            "Id": p.id,
            "Name": p.name,
            "Created": p.created,
            "State": p.status().to_string(),
            "Hostname": p.record.hostname,
            "Labels": p.labels,
            "Annotations": p.annotations,
            "CgroupParent": p.record.cgroup_parent,
            "SharedNamespaces": o.share.to_list().split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
            "Namespaces": p.record.namespaces.iter().map(|(t, path)| json!({"Type": t, "Path": path})).collect::<Vec<_>>(),
            "InfraConfig": {
                "Enabled": p.infra.enabled,
                "Running": p.infra.running,
                "Paused": p.infra.paused,
                "Pid": p.infra.pid,
                "Network": network_name(p),
                "IP": p.ip,
                "PortBindings": o.publish,
                "HostAdd": o.add_hosts,
                "DNSServer": o.dns,
                "DNSSearch": o.dns_search,
                "DNSOption": o.dns_options,
            },
            "CPUQuota": o.cpus.map(|c| (c * 100_000.0) as i64),
            "CPUPeriod": o.cpus.map(|_| 100_000),
            "MemoryLimit": o.memory,
            "NumContainers": p.containers.len(),
            "Containers": p.containers.iter().map(container_entry).collect::<Vec<_>>(),
        })
    }

    /// `pod logs`: every member's log (or one's, `only`), lines prefixed
    /// with the container's name; interleaved by time when not following,
    /// polled file by file when following until no member runs.
    pub fn logs(&self, name_or_id: &str, only: Option<&str>, o: &LogOptions, out: &mut impl Write) -> Result<()> {
        let members = self.containers(name_or_id)?;
        let chosen: Vec<&Container> =
            members.iter().filter(|c| only.is_none_or(|n| c.name() == n || c.id().starts_with(n))).collect();
        if let Some(n) = only.filter(|_| chosen.is_empty()) {
            return Err(crate::Error::NoSuchContainer(n.to_string()));
        }
        let mut lines: Vec<(String, String, Vec<u8>)> = Vec::new();
        for c in &chosen {
            for l in crate::container::logs::read_lines(c, o)? {
                lines.push((l.time, c.name().to_string(), l.text));
            }
        }
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        let emit = |t: &str, name: &str, text: &[u8], out: &mut dyn Write| -> Result<()> {
            let ts = if o.timestamps { format!("{t} ") } else { String::new() };
            out.write_all(format!("{name} {ts}").as_bytes())
                .and_then(|()| out.write_all(text))
                .map_err(|e| crate::Error::io("write logs", e))
        };
        for (t, name, text) in &lines {
            emit(t, name, text, out)?;
        }
        if !o.follow {
            return Ok(());
        }
        let mut last = lines.last().map(|l| l.0.clone()).unwrap_or_default();
        loop {
            let now = self.containers(name_or_id)?;
            let live: Vec<&Container> = now.iter().filter(|c| chosen.iter().any(|k| k.id() == c.id())).collect();
            let mut fresh: Vec<(String, String, Vec<u8>)> = Vec::new();
            let since = LogOptions { since: Some(last.clone()), follow: false, tail: None, ..o.clone() };
            for c in &live {
                for l in crate::container::logs::read_lines(c, &since)? {
                    if l.time > last {
                        fresh.push((l.time, c.name().to_string(), l.text));
                    }
                }
            }
            fresh.sort_by(|a, b| a.0.cmp(&b.0));
            for (t, name, text) in &fresh {
                emit(t, name, text, out)?;
            }
            let _ = out.flush();
            if let Some(l) = fresh.last() {
                last = l.0.clone();
            }
            if !live.iter().any(|c| c.is_running()) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

fn network_name(p: &Pod) -> String {
    let o = &p.record.options;
    match &o.network {
        _ if !o.share.net => "none".into(),
        crate::NetworkMode::Bridge(n) => n.clone(),
        crate::NetworkMode::Host => "host".into(),
        _ => "none".into(),
    }
}
