//! The `docker run` flags that change the OCI spec beyond the basics of
//! `spec`: capabilities, `--privileged`, `--security-opt`, rlimits, devices,
//! sysctls, /dev/shm, extra groups, swap/cpuset/shares, `--init`
//! (`--stop-signal`, `--stop-timeout` and labels are the engine's, in `RunOptions`).
//! [`parse`] holds Docker's syntax and messages; [`apply`] the spec changes.

mod parse;
mod seccomp;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};
pub use parse::{
    check_oom_score_adj, parse_capability, parse_cpuset, parse_label, parse_size, parse_swap, parse_sysctl,
    read_env_file, read_label_file, DeviceMapping, SecurityOpt, Ulimit,
};

/// Debian's static tini (package `tini`), Docker's `docker-init`.
pub const INIT_BINARY: &str = "/usr/bin/tini-static";
/// Where Docker puts its init in the container.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Every option of this module, parsed and validated (see [`parse`]'s functions).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostConfig {
    /// `--cap-add`: `CAP_*` names or `ALL`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`: `CAP_*` names or `ALL`.
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security_opt: Vec<SecurityOpt>,
    pub ulimits: Vec<Ulimit>,
    pub devices: Vec<DeviceMapping>,
    pub sysctls: BTreeMap<String, String>,
    /// `--shm-size` in bytes.
    pub shm_size: Option<i64>,
    /// `--group-add`: group names (resolved in the image's /etc/group) or numbers.
    pub group_add: Vec<String>,
    /// `--memory-swap` in bytes (memory + swap), -1 for unlimited.
    pub memory_swap: Option<i64>,
    /// `--memory-reservation` in bytes.
    pub memory_reservation: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub oom_score_adj: Option<i32>,
    /// `--init`: tini as pid 1.
    pub init: bool,
}

/// Applies `h` to a spec already holding the image config and the basic
/// flags (user, memory limit): called by `spec::apply_flags`.
pub(crate) fn apply(spec: &mut Value, h: &HostConfig, rootfs: &Path, network_is_host: bool) -> Result<()> {
    apply_security(spec, h)?;
    apply_devices(spec, h)?;
    apply_process(spec, h, rootfs)?;
    apply_sysctls(spec, h, network_is_host)?;
    apply_resources(spec, h)
}

/// What `create` can check before the container has a rootfs: all of
/// [`apply`] but the `--group-add` names (the image's /etc/group decides).
pub(crate) fn check(h: &HostConfig, memory_limit: Option<i64>, network_is_host: bool) -> Result<()> {
    let mut spec =
        serde_json::to_value(wharf_runtime::spec::default_spec()).map_err(|e| invalid(format!("spec: {e}")))?;
    if let Some(m) = memory_limit {
        spec["linux"]["resources"]["memory"]["limit"] = json!(m);
    }
    let h = HostConfig {
        group_add: h.group_add.iter().filter(|g| g.parse::<u32>().is_ok()).cloned().collect(),
        ..h.clone()
    };
    apply(&mut spec, &h, Path::new("/nonexistent"), network_is_host)
}

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

/// "All capabilities": those of our own bounding set (what podman uses:
/// a runtime cannot grant what it lacks, e.g. in a container without
/// CAP_SYS_RESOURCE), by name.
fn all_capabilities() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(u64::MAX);
    parse::CAPABILITIES.iter().enumerate().filter(|(i, _)| bnd & (1 << i) != 0).map(|(_, c)| c.to_string()).collect()
}

/// Docker's `TweakCapabilities`: privileged gets all; `--cap-add ALL` all
/// but the dropped; `--cap-drop ALL` only the added; else base − drop + add.
fn tweak_capabilities(base: &[String], h: &HostConfig) -> Vec<String> {
    let has_all = |l: &[String]| l.iter().any(|c| c == "ALL");
    let mut caps: Vec<String> = if h.privileged {
        all_capabilities()
    } else if has_all(&h.cap_add) {
        all_capabilities().into_iter().filter(|c| !h.cap_drop.contains(c)).collect()
    } else if has_all(&h.cap_drop) {
        h.cap_add.clone()
    } else {
        base.iter().filter(|c| !h.cap_drop.contains(c)).chain(&h.cap_add).cloned().collect()
    };
    let mut seen = std::collections::HashSet::new();
    caps.retain(|c| seen.insert(c.clone()));
    caps
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
}

/// Capabilities, seccomp, no-new-privileges, masked paths and the
/// privileged mounts, as Docker's `WithCapabilities`/`WithSeccomp`/… do.
fn apply_security(spec: &mut Value, h: &HostConfig) -> Result<()> {
    let base = strings(&spec["process"]["capabilities"]["bounding"]);
    let caps = tweak_capabilities(&base, h);
    // Docker's SetCapabilities: a non-root process starts with no effective
    // or permitted capabilities, as execve would leave it.
    if spec["process"]["user"]["uid"].as_u64().unwrap_or(0) == 0 {
        spec["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    } else {
        spec["process"]["capabilities"] = json!({"bounding": caps});
    }
    let mut seccomp_done = false;
    for o in &h.security_opt {
        match o {
            SecurityOpt::SeccompUnconfined => {
                remove_key(&mut spec["linux"], "seccomp");
                seccomp_done = true;
            }
            SecurityOpt::SeccompProfile(p) => {
                spec["linux"]["seccomp"] = seccomp::to_oci(p, &caps)?;
                seccomp_done = true;
            }
            SecurityOpt::NoNewPrivileges(b) => spec["process"]["noNewPrivileges"] = json!(b),
            SecurityOpt::SystemPathsUnconfined => unconfine_paths(spec),
            SecurityOpt::AppArmor(p) => ignored_or_set_apparmor(spec, p),
            SecurityOpt::Label(l) => {
                if Path::new("/sys/fs/selinux/enforce").exists() {
                    return Err(invalid(format!("--security-opt label={l}: SELinux labels are not supported yet")));
                }
                tracing::warn!("--security-opt label={l} ignored: SELinux is not enabled on this host");
            }
        }
    }
    if h.privileged {
        // Docker: no seccomp for a privileged container, even with a profile.
        remove_key(&mut spec["linux"], "seccomp");
        unconfine_paths(spec);
        for m in spec["mounts"].as_array_mut().into_iter().flatten() {
            if m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup" {
                if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o != "ro");
                }
            }
        }
    } else if !seccomp_done && caps != base && spec["linux"]["seccomp"].is_object() {
        // The default profile allows some syscalls by capability (mount with CAP_SYS_ADMIN).
        let parsed: Vec<_> = caps.iter().filter_map(|c| wharf_runtime::caps::parse(c).ok()).collect();
        spec["linux"]["seccomp"] = serde_json::to_value(wharf_runtime::spec::docker_seccomp(&parsed))
            .map_err(|e| invalid(format!("seccomp profile: {e}")))?;
    }
    Ok(())
}

fn remove_key(v: &mut Value, key: &str) {
    if let Some(o) = v.as_object_mut() {
        o.remove(key);
    }
}

fn unconfine_paths(spec: &mut Value) {
    spec["linux"]["maskedPaths"] = json!([]);
    spec["linux"]["readonlyPaths"] = json!([]);
}

fn ignored_or_set_apparmor(spec: &mut Value, profile: &str) {
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'));
    if enabled && profile != "unconfined" {
        spec["process"]["apparmorProfile"] = json!(profile);
    } else if !enabled {
        tracing::warn!("--security-opt apparmor={profile} ignored: AppArmor is not enabled on this host");
    }
}

/// One host device node as a spec device and its cgroup rule.
fn device_entry(host: &Path, ctr: &str, perms: &str) -> Result<Option<(Value, Value)>> {
    let md = std::fs::metadata(host).map_err(|e| {
        invalid(format!(
            "error gathering device information while adding custom device {:?}: {e}",
            host.display().to_string()
        ))
    })?;
    let typ = if md.file_type().is_char_device() {
        "c"
    } else if md.file_type().is_block_device() {
        "b"
    } else {
        return Ok(None);
    };
    let (major, minor) = (libc::major(md.rdev()) as i64, libc::minor(md.rdev()) as i64);
    let dev = json!({"path": ctr, "type": typ, "major": major, "minor": minor,
        "fileMode": md.mode() & 0o777, "uid": md.uid(), "gid": md.gid()});
    let rule = json!({"allow": true, "type": typ, "major": major, "minor": minor, "access": perms});
    Ok(Some((dev, rule)))
}

/// The device nodes under `dir` (Docker's walk: the pseudo-fs dirs and the console skipped).
fn devices_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    const SKIP: [&str; 8] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev", "console"];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        if SKIP.iter().any(|s| name == *s) {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => devices_under(&e.path(), out),
            Ok(t) if t.is_char_device() || t.is_block_device() => out.push(e.path()),
            _ => {}
        }
    }
}

/// `--device` and `--privileged`'s host devices: nodes and cgroup rules.
fn apply_devices(spec: &mut Value, h: &HostConfig) -> Result<()> {
    let mut devs = Vec::new();
    let mut rules = Vec::new();
    let mut add = |host: &Path, ctr: &str, perms: &str| -> Result<bool> {
        let Some((d, r)) = device_entry(host, ctr, perms)? else { return Ok(false) };
        devs.push(d);
        rules.push(r);
        Ok(true)
    };
    if h.privileged {
        let mut found = Vec::new();
        devices_under(Path::new("/dev"), &mut found);
        for p in found {
            let ctr = p.to_string_lossy().into_owned();
            add(&p, &ctr, "rwm")?;
        }
    }
    for m in &h.devices {
        let host = Path::new(&m.host);
        if host.is_dir() {
            let mut found = Vec::new();
            devices_under(host, &mut found);
            for p in found {
                let rel = p.strip_prefix(host).unwrap_or(&p);
                add(&p, &Path::new(&m.container).join(rel).to_string_lossy(), &m.permissions)?;
            }
        } else if !add(host, &m.container, &m.permissions)? {
            return Err(invalid(format!(
                "error gathering device information while adding custom device {:?}: not a device node",
                m.host
            )));
        }
    }
    if h.privileged {
        rules = vec![json!({"allow": true, "access": "rwm"})];
    }
    let linux = &mut spec["linux"];
    match linux.get_mut("devices").and_then(Value::as_array_mut) {
        Some(a) => {
            a.retain(|d| !devs.iter().any(|n| n["path"] == d["path"]));
            a.extend(devs);
        }
        None if !devs.is_empty() => linux["devices"] = json!(devs),
        None => {}
    }
    if !rules.is_empty() {
        match linux["resources"]["devices"].as_array_mut() {
            Some(a) => a.extend(rules),
            None => linux["resources"]["devices"] = json!(rules),
        }
    }
    Ok(())
}

/// rlimits, extra groups, OOM score and `--init`.
fn apply_process(spec: &mut Value, h: &HostConfig, rootfs: &Path) -> Result<()> {
    let p = &mut spec["process"];
    for u in &h.ulimits {
        let typ = u.rlimit_type();
        // The kernel's RLIM_INFINITY for -1.
        let lim = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        let entry = json!({"type": typ, "soft": lim(u.soft), "hard": lim(u.hard)});
        match p["rlimits"].as_array_mut() {
            Some(a) => {
                a.retain(|r| r["type"] != typ.as_str());
                a.push(entry);
            }
            None => p["rlimits"] = json!([entry]),
        }
    }
    if !h.group_add.is_empty() {
        let mut gids: Vec<u64> =
            p["user"]["additionalGids"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect();
        for g in &h.group_add {
            let gid = match g.parse::<u32>() {
                Ok(n) => n,
                // The runtime's resolver reads the image's /etc/group inside the rootfs (symlinks contained).
                Err(_) => wharf_runtime::spec::resolve_user(rootfs, &format!("0:{g}"))?.1,
            };
            if !gids.contains(&u64::from(gid)) {
                gids.push(gid.into());
            }
        }
        p["user"]["additionalGids"] = json!(gids);
    }
    if let Some(v) = h.oom_score_adj {
        p["oomScoreAdj"] = json!(check_oom_score_adj(v)?);
    }
    if h.init {
        if !Path::new(INIT_BINARY).is_file() {
            return Err(invalid(format!("--init: {INIT_BINARY} not found: install Debian's tini package")));
        }
        let args = strings(&p["args"]);
        p["args"] = json!([INIT_PATH, "--"].iter().map(|s| s.to_string()).chain(args).collect::<Vec<_>>());
        let m = json!({"destination": INIT_PATH, "type": "bind", "source": INIT_BINARY,
            "options": ["rbind", "ro", "nosuid", "nodev", "rprivate"]});
        match spec["mounts"].as_array_mut() {
            Some(a) => a.push(m),
            None => spec["mounts"] = json!([m]),
        }
    }
    Ok(())
}

/// `--sysctl` (net.* needs the container's own network namespace) and `--shm-size`.
fn apply_sysctls(spec: &mut Value, h: &HostConfig, network_is_host: bool) -> Result<()> {
    for (k, v) in &h.sysctls {
        parse_sysctl(&format!("{k}={v}"))?;
        if network_is_host && k.starts_with("net.") {
            return Err(invalid(format!("sysctl {k:?} is not allowed in the host network namespace (--network host)")));
        }
        spec["linux"]["sysctl"][k] = json!(v);
    }
    if let Some(size) = h.shm_size {
        if size <= 0 {
            return Err(invalid("SHM size must be greater than 0".into()));
        }
        for m in spec["mounts"].as_array_mut().into_iter().flatten().filter(|m| m["destination"] == "/dev/shm") {
            let mut opts = strings(&m["options"]);
            opts.retain(|o| !o.starts_with("size="));
            opts.push(format!("size={size}"));
            m["options"] = json!(opts);
        }
    }
    Ok(())
}

/// Online CPUs or memory nodes of the host ("0-3,6").
fn online(what: &str) -> String {
    let f = if what == "cpus" { "/sys/devices/system/cpu/online" } else { "/sys/devices/system/node/online" };
    std::fs::read_to_string(f).map(|s| s.trim().to_string()).unwrap_or_else(|_| "0".into())
}

fn check_cpuset(what: &str, asked: &str) -> Result<()> {
    let want = parse_cpuset(what, asked)?;
    let have = online(what);
    let avail = parse_cpuset(what, &have).unwrap_or_default();
    if want.iter().any(|c| !avail.contains(c)) {
        let noun = if what == "cpus" { "CPUs" } else { "memory nodes" };
        return Err(invalid(format!("Requested {noun} are not available - requested {asked}, available: {have}")));
    }
    Ok(())
}

/// Swap, reservation, CPU shares and cpusets, with Docker's checks against `-m`.
fn apply_resources(spec: &mut Value, h: &HostConfig) -> Result<()> {
    let res = &mut spec["linux"]["resources"];
    let limit = res["memory"]["limit"].as_i64().filter(|&l| l > 0);
    match (limit, h.memory_swap) {
        (None, Some(s)) if s > 0 => {
            return Err(invalid("You should always set the Memory limit when using Memoryswap limit, see usage".into()))
        }
        (Some(l), Some(s)) if s > 0 && s < l => {
            return Err(invalid("Minimum memoryswap limit should be larger than memory limit, see usage".into()))
        }
        (Some(_), Some(s)) => res["memory"]["swap"] = json!(s),
        // Docker: without --memory-swap, as much swap as memory.
        (Some(l), None) => res["memory"]["swap"] = json!(l.saturating_mul(2)),
        (None, _) => {}
    }
    if let Some(r) = h.memory_reservation {
        if limit.is_some_and(|l| l < r) {
            return Err(invalid(
                "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
            ));
        }
        res["memory"]["reservation"] = json!(r);
    }
    if let Some(s) = h.cpu_shares.filter(|&s| s != 0) {
        let clamped = s.clamp(2, 262_144);
        if clamped != s {
            tracing::warn!("Changing requested CPUShares of {s} to the allowed {clamped}");
        }
        res["cpu"]["shares"] = json!(clamped);
    }
    if let Some(c) = &h.cpuset_cpus {
        check_cpuset("cpus", c)?;
        res["cpu"]["cpus"] = json!(c);
    }
    if let Some(m) = &h.cpuset_mems {
        check_cpuset("mems", m)?;
        res["cpu"]["mems"] = json!(m);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
