//! `docker run` flags → changes to the OCI spec.

use crate::error::{Error, Result};
use crate::run::{NetworkMode, RunOptions};
use serde_json::{json, Value};

/// `-m 512m`, `1g`, `100000` → bytes.
pub(crate) fn parse_bytes(s: &str) -> Result<i64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.trim_end_matches('b').chars().last() {
        Some('k') => (&s[..s.trim_end_matches('b').len() - 1], 1i64 << 10),
        Some('m') => (&s[..s.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&s[..s.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (s.trim_end_matches('b'), 1),
    };
    let n: f64 = num.parse().map_err(|_| Error::InvalidArgument(format!("invalid size {s:?}: use e.g. 512m or 1g")))?;
    if n <= 0.0 {
        return Err(Error::InvalidArgument(format!("invalid size {s:?}: must be positive")));
    }
    Ok((n * mult as f64) as i64)
}

/// Checks the options `create` records, so that `start` does not fail
/// later on what could be caught now.
pub(crate) fn check_options(o: &RunOptions) -> Result<()> {
    if let Some(m) = &o.memory {
        parse_bytes(m)?;
    }
    if o.cpus.is_some_and(|c| c <= 0.0) {
        return Err(Error::InvalidArgument("--cpus must be positive".into()));
    }
    let limit = o.memory.as_deref().map(parse_bytes).transpose()?;
    crate::hostconfig::check(&o.host, limit, o.network == NetworkMode::Host)?;
    if let Some(r) = &o.restart {
        crate::container::check_restart(r)?;
        if o.rm && r != "no" {
            return Err(Error::InvalidArgument("Conflicting options: --restart and --rm".into()));
        }
    }
    crate::container::log_limits(&o.log_opts)?;
    if let Some(s) = &o.stop_signal {
        wharf_runtime::signal::parse(s).map_err(|_| Error::InvalidArgument(format!("invalid signal: {s}")))?;
    }
    for l in &o.labels {
        if l.split('=').next().is_none_or(str::is_empty) {
            return Err(Error::InvalidArgument(format!("invalid label {l:?}: KEY=VALUE")));
        }
    }
    for a in &o.annotations {
        if a.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
            return Err(Error::InvalidArgument(format!("invalid annotation {a:?}: KEY=VALUE")));
        }
    }
    Ok(())
}

/// Applies the run flags to the spec's JSON.
pub(crate) fn apply_flags(
    spec: &mut Value,
    o: &RunOptions,
    rootfs: &std::path::Path,
    cgroup: &str,
    mounts: &[Value],
) -> Result<()> {
    spec["root"] = json!({"path": rootfs, "readonly": o.read_only});
    spec["process"]["terminal"] = json!(o.tty);
    for (k, v) in o.annotations.iter().filter_map(|a| a.split_once('=')) {
        spec["annotations"][k] = json!(v);
    }
    if let Some(h) = &o.hostname {
        spec["hostname"] = json!(h);
    }
    if o.network == NetworkMode::Host {
        if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
        }
        if o.hostname.is_none() {
            spec["hostname"] = json!(host_name());
        }
    }
    let linux = &mut spec["linux"];
    linux["cgroupsPath"] = json!(cgroup);
    let mut res = json!({});
    if let Some(m) = &o.memory {
        let b = parse_bytes(m)?;
        res["memory"] = json!({"limit": b});
    }
    if let Some(p) = o.pids_limit {
        res["pids"] = json!({"limit": p});
    }
    if let Some(c) = o.cpus {
        if c <= 0.0 {
            return Err(Error::InvalidArgument("--cpus must be positive".into()));
        }
        res["cpu"] = json!({"quota": (c * 100_000.0) as i64, "period": 100_000});
    }
    // Merged: replacing would drop the default device rules (deny all).
    for (k, v) in res.as_object().into_iter().flatten() {
        linux["resources"][k] = v.clone();
    }
    crate::hostconfig::apply(spec, &o.host, rootfs, o.network == NetworkMode::Host)?;
    add_mounts(spec, mounts)
}

/// A container on a network: its netns by path, hostname, and the
/// generated /etc files bind-mounted over the image's.
pub(crate) fn join_network(
    spec: &mut Value,
    netns: &std::path::Path,
    files: &[(String, std::path::PathBuf)],
    hostname: &str,
) {
    if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "network", "path": netns}));
    }
    spec["hostname"] = json!(hostname);
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for (dst, src) in files {
            mounts.retain(|m| m["destination"] != dst.as_str());
            mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
        }
    }
}

fn host_name() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// Adds the container's mounts (from `volume::attach`), replacing any
/// default mount on the same destination.
fn add_mounts(spec: &mut Value, extra: &[Value]) -> Result<()> {
    let mounts = spec["mounts"].as_array_mut().ok_or_else(|| Error::InvalidArgument("spec has no mounts".into()))?;
    for m in extra {
        mounts.retain(|d| d["destination"] != m["destination"]);
        mounts.push(m.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(super::parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(super::parse_bytes("64MB").unwrap(), 64 << 20);
        assert_eq!(super::parse_bytes("4096").unwrap(), 4096);
        assert!(super::parse_bytes("lots").is_err());
    }
}
