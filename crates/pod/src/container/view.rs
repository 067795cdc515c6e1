//! What `ps` and `inspect` show of a container, with Docker's field names.

use super::record::{Container, Status};
use super::Containers;
use crate::network::AttachmentRecord;
use serde_json::{json, Map, Value};

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&chrono::Utc))
}

/// "5 seconds", "About a minute", "3 hours" — Docker's human durations.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86_400),
        1_209_600..=5_183_999 => format!("{} weeks", s / 604_800),
        _ => format!("{} months", s / 2_592_000),
    }
}

fn since(t: &str) -> String {
    parse_time(t).map_or_else(String::new, |t| human_duration((chrono::Utc::now() - t).num_seconds()))
}

/// The health check's status: `starting`, `healthy`, `unhealthy`, or
/// `none` for a container without a check (or never started).
pub fn health_status(c: &Container) -> String {
    if c.record.healthcheck.is_none() {
        return "none".into();
    }
    match crate::health::read_state(&c.dir) {
        Some(h) => h.get("Status").and_then(Value::as_str).unwrap_or("starting").to_string(),
        // Never started: Docker has no health state yet.
        None if !c.is_running() => "none".into(),
        None => "starting".into(),
    }
}

/// `ps`'s STATUS column: "Up 5 seconds", "Exited (0) 3 seconds ago", …
pub fn status_text(c: &Container) -> String {
    match c.status {
        Status::Created => "Created".into(),
        Status::Running => match health_status(c).as_str() {
            "none" => format!("Up {}", since(&c.state.started_at)),
            "starting" => format!("Up {} (health: starting)", since(&c.state.started_at)),
            h => format!("Up {} ({h})", since(&c.state.started_at)),
        },
        Status::Paused => format!("Up {} (Paused)", since(&c.state.started_at)),
        Status::Restarting => format!("Restarting ({}) {} ago", c.state.exit_code, since(&c.state.finished_at)),
        Status::Exited if c.state.finished_at.is_empty() => format!("Exited ({})", c.state.exit_code),
        Status::Exited => format!("Exited ({}) {} ago", c.state.exit_code, since(&c.state.finished_at)),
    }
}

impl Containers {
    /// The network attachment of a running container, if any.
    pub fn attachment(&self, id: &str) -> Option<AttachmentRecord> {
        crate::network::record::load(&self.run_root.join("containers").join(id))
    }

    /// `0.0.0.0:8080->80/tcp, …` for `ps` and `port`.
    pub fn ports(&self, c: &Container) -> Vec<String> {
        if !c.is_running() {
            return Vec::new();
        }
        let Some(a) = self.attachment(c.id()) else { return Vec::new() };
        a.networks
            .iter()
            .flat_map(|e| e.ports.iter())
            .map(|p| {
                let ip = if p.host_ip.is_empty() { "0.0.0.0" } else { p.host_ip.as_str() };
                format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol)
            })
            .collect()
    }

    /// One `ps --format json` object (Docker's keys).
    pub fn ps_entry(&self, c: &Container, no_trunc: bool) -> Map<String, Value> {
        let cmd = c.record.command.join(" ");
        let command = if no_trunc || cmd.chars().count() <= 20 {
            format!("\"{cmd}\"")
        } else {
            format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
        };
        let id = if no_trunc { c.id().to_string() } else { c.id()[..12].to_string() };
        let labels = c.record.options.labels.join(",");
        let network = match &c.record.options.network {
            crate::NetworkMode::None => "none".to_string(),
            crate::NetworkMode::Host => "host".to_string(),
            crate::NetworkMode::Bridge(n) => n.clone(),
            crate::NetworkMode::Container(n) => format!("container:{n}"),
        };
        let created = parse_time(&c.record.created).map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string());
        let mut m = Map::new();
        m.insert("Command".into(), json!(command));
        m.insert("CreatedAt".into(), json!(created.unwrap_or_default()));
        m.insert("ID".into(), json!(id));
        m.insert("Image".into(), json!(c.record.image));
        m.insert("Labels".into(), json!(labels));
        m.insert("Names".into(), json!(c.name()));
        m.insert("Networks".into(), json!(network));
        m.insert("Ports".into(), json!(self.ports(c).join(", ")));
        let pod = c.record.options.pod.as_deref().unwrap_or("");
        m.insert("Pod".into(), json!(if no_trunc { pod } else { &pod[..pod.len().min(12)] }));
        m.insert("RunningFor".into(), json!(format!("{} ago", since(&c.record.created))));
        m.insert("State".into(), json!(c.status.to_string()));
        m.insert("Status".into(), json!(status_text(c)));
        m
    }

    /// `inspect` of a container, with Docker's field names where they exist.
    pub fn inspect(&self, c: &Container) -> Value {
        let o = &c.record.options;
        let (policy, max) = match o.restart.as_deref().unwrap_or("no").split_once(':') {
            Some((p, n)) => (p.to_string(), n.parse::<u32>().unwrap_or(0)),
            None => (o.restart.clone().unwrap_or_else(|| "no".into()), 0),
        };
        let labels: Map<String, Value> = o
            .labels
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), json!(v)),
                None => (l.clone(), json!("")),
            })
            .collect();
        let annotations: Map<String, Value> =
            o.annotations.iter().filter_map(|a| a.split_once('=')).map(|(k, v)| (k.to_string(), json!(v))).collect();
        let att = self.attachment(c.id()).filter(|_| c.is_running());
        let mut networks = Map::new();
        for e in att.iter().flat_map(|a| a.networks.iter()) {
            networks.insert(
                e.network.clone(),
                json!({
                    "IPAddress": e.ip.map(|i| i.to_string()).unwrap_or_default(),
                    "Gateway": e.gateway.map(|i| i.to_string()).unwrap_or_default(),
                    "MacAddress": e.mac.clone().unwrap_or_default(),
                    "Aliases": e.aliases,
                    "NetworkID": e.network_id,
                }),
            );
        }
        let (path, args) =
            c.record.command.split_first().map_or((String::new(), Vec::new()), |(p, a)| (p.clone(), a.to_vec()));
        let s = &c.state;
        let mut state = json!({
            "Status": c.status.to_string(),
            "Running": c.is_running(),
            "Paused": c.status == Status::Paused,
            "Restarting": c.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": false,
            "Pid": if c.is_running() { s.pid } else { 0 },
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": if s.started_at.is_empty() { "0001-01-01T00:00:00Z" } else { s.started_at.as_str() },
            "FinishedAt": if s.finished_at.is_empty() { "0001-01-01T00:00:00Z" } else { s.finished_at.as_str() },
        });
        // As Docker: no State.Health before the first start.
        if c.record.healthcheck.is_some() {
            match crate::health::read_state(&c.dir) {
                Some(h) => state["Health"] = h,
                None if c.is_running() => {
                    state["Health"] = json!({"Status": "starting", "FailingStreak": 0, "Log": []})
                }
                None => {}
            }
        }
        if c.status == Status::Restarting && s.back_off_ms > 0 {
            // Kubernetes' waiting reason while the back-off runs.
            state["BackOff"] = json!({"Reason": "CrashLoopBackOff", "DelaySeconds": s.back_off_ms / 1000});
        }
        for role in ["liveness", "readiness", "startup"] {
            if o.probes.iter().any(|p| p.role == role) {
                let st = crate::health::read_probe(&c.dir, role)
                    .unwrap_or_else(|| json!({"Status": "starting", "FailingStreak": 0, "Log": []}));
                state["Probes"][role] = st;
            }
        }
        let mut out = json!({
            "Id": c.id(),
            "Created": c.record.created,
            "Path": path,
            "Args": args,
            "State": state,
            "Image": c.record.image_id,
            "ResolvConfPath": c.dir.join("resolv.conf"),
            "HostnamePath": c.dir.join("hostname"),
            "HostsPath": c.dir.join("hosts"),
            "LogPath": c.log_path(),
            "Name": format!("/{}", c.name()),
            "Pod": c.record.options.pod.clone().unwrap_or_default(),
            "RestartCount": s.restart_count,
            "Driver": "overlay",
            "HostConfig": {
                "NetworkMode": self.ps_entry(c, true).get("Networks").cloned().unwrap_or_default(),
                "RestartPolicy": {"Name": policy, "MaximumRetryCount": max},
                "AutoRemove": o.rm,
                "PortBindings": o.publish,
                "PublishAllPorts": o.publish_all,
                "Binds": o.volumes,
                "Tmpfs": o.tmpfs,
                "ReadonlyRootfs": o.read_only,
                "Memory": o.memory.as_deref().and_then(|m| crate::spec::parse_bytes(m).ok()).unwrap_or(0),
                "NanoCpus": o.cpus.map_or(0, |c| (c * 1e9) as i64),
                "PidsLimit": o.pids_limit,
                "LogConfig": {"Type": "k8s-file", "Config": o.log_opts},
            },
            "Mounts": c.record.anonymous_volumes.iter().map(|(t, n)| json!({"Type": "volume", "Name": n, "Destination": t})).collect::<Vec<_>>(),
            "Config": {
                "Hostname": o.hostname.clone().unwrap_or_else(|| c.id()[..12].to_string()),
                "User": o.user.clone().unwrap_or_default(),
                "Tty": o.tty,
                "OpenStdin": o.interactive,
                "Env": o.env,
                "Cmd": if o.cmd.is_empty() { Value::Null } else { json!(o.cmd) },
                "Image": c.record.image,
                "WorkingDir": o.workdir.clone().unwrap_or_default(),
                "Entrypoint": o.entrypoint.as_ref().map(|e| json!([e])).unwrap_or(Value::Null),
                "Labels": labels,
                "Annotations": annotations,
                "StopSignal": o.stop_signal,
                "StopTimeout": o.stop_timeout,
            },
            "NetworkSettings": {
                "Networks": networks,
                "Ports": self.ports(c),
                "IPAddress": att.as_ref().and_then(|a| a.networks.first()).and_then(|e| e.ip).map(|i| i.to_string()).unwrap_or_default(),
            },
        });
        if let Some(h) = &c.record.healthcheck {
            out["Config"]["Healthcheck"] = json!(h);
        }
        out
    }
}
