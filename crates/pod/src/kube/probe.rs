//! A container's probes (Kubernetes' defaults: every 10 s, 1 s timeout,
//! 3 failures, 1 success) as the monitor's checks.

use crate::error::{Error, Result};
pub use crate::health::{Probe, ProbeAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

fn bad(path: &str, msg: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{path}: {msg}"))
}

fn port(path: &str, p: &IntOrString, named: &BTreeMap<String, i32>) -> Result<u16> {
    let n = match p {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => match s.parse::<i32>() {
            Ok(n) => n,
            Err(_) => *named
                .get(s)
                .ok_or_else(|| bad(path, format!("Invalid value: {s:?}: no container port of that name")))?,
        },
    };
    u16::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad(path, format!("Invalid value: {n}: must be between 1 and 65535, inclusive")))
}

/// `at` is the probe's path (`spec.containers[0].livenessProbe`).
pub(crate) fn from_k8s(
    at: &str,
    p: &k8s_openapi::api::core::v1::Probe,
    named: &BTreeMap<String, i32>,
) -> Result<Probe> {
    let role = at.rsplit('.').next().unwrap_or("").trim_end_matches("Probe").to_string();
    let mut actions = Vec::new();
    if let Some(e) = &p.exec {
        let cmd = e.command.clone().unwrap_or_default();
        if cmd.is_empty() {
            return Err(bad(&format!("{at}.exec.command"), "Required value"));
        }
        actions.push(ProbeAction::Exec(cmd));
    }
    if let Some(h) = &p.http_get {
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(&format!("{at}.httpGet.path"), format!("Invalid value: {path:?}")));
        }
        let port = port(&format!("{at}.httpGet.port"), &h.port, named)?;
        actions.push(ProbeAction::HttpGet { host: h.host.clone().unwrap_or_default(), port, path });
    }
    if let Some(t) = &p.tcp_socket {
        let port = port(&format!("{at}.tcpSocket.port"), &t.port, named)?;
        actions.push(ProbeAction::TcpSocket { host: t.host.clone().unwrap_or_default(), port });
    }
    let action = match actions.len() {
        1 => actions.remove(0),
        0 => return Err(bad(at, "must specify a handler type")),
        _ => return Err(bad(at, "may not specify more than 1 handler type")),
    };
    let secs = |field: &str, v: Option<i32>, default: i32, min: i32| -> Result<u64> {
        let v = v.unwrap_or(default);
        if v < min {
            return Err(bad(
                &format!("{at}.{field}"),
                format!("Invalid value: {v}: must be greater than or equal to {min}"),
            ));
        }
        Ok(v as u64)
    };
    let success = secs("successThreshold", p.success_threshold, 1, 1)? as u32;
    if success != 1 && role != "readiness" {
        return Err(bad(&format!("{at}.successThreshold"), "Invalid value: must be 1"));
    }
    Ok(Probe {
        role,
        action,
        initial_delay_ns: secs("initialDelaySeconds", p.initial_delay_seconds, 0, 0)? * 1_000_000_000,
        period_ns: secs("periodSeconds", p.period_seconds, 10, 1)? * 1_000_000_000,
        timeout_ns: secs("timeoutSeconds", p.timeout_seconds, 1, 1)? * 1_000_000_000,
        failure_threshold: secs("failureThreshold", p.failure_threshold, 3, 1)? as u32,
        success_threshold: success,
    })
}
