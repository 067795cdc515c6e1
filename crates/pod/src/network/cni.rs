//! Runs CNI plugins as the CNI 1.0 spec says: one exec per plugin of the
//! list, the config on stdin with `name`, `cniVersion`, the `runtimeConfig`
//! its capabilities ask for and the previous plugin's result as
//! `prevResult`; ADD in list order, DEL in reverse with the ADD result.
//!
//! A plugin outlives a caller killed by SIGKILL and goes on with its ADD.
//! So it inherits the caller's locks ([`Invocation::hold`]): a flock is
//! released only when every process holding it is gone, and the sweep that
//! waits for the lock never runs DEL while an orphaned ADD still runs.

use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where Debian (and others) put the plugins.
const PLUGIN_DIRS: &[&str] = &["/usr/lib/cni", "/usr/libexec/cni", "/opt/cni/bin"];

/// The per-container arguments of one invocation.
pub(crate) struct Invocation<'a> {
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
    /// Capability arguments, e.g. `{"portMappings": [...]}`.
    pub runtime_config: &'a Value,
    /// Flocked fds the plugin inherits (the caller's owner or networks lock).
    pub hold: &'a [RawFd],
}

/// Where plugins are looked for and the `CNI_ARGS` they get: wharf's own
/// networks use [`PLUGIN_DIRS`] and none; `wharf cri` the kubelet's.
pub(crate) struct Env<'a> {
    pub dirs: &'a [PathBuf],
    pub args: &'a str,
}

fn default_dirs() -> Vec<PathBuf> {
    PLUGIN_DIRS.iter().map(PathBuf::from).collect()
}

/// ADD through the whole list; the last plugin's result.
pub(crate) fn add(list: &Value, inv: &Invocation) -> Result<Value> {
    add_with(list, inv, &Env { dirs: &default_dirs(), args: "" })
}

/// [`add`] with the plugins of `env`.
pub(crate) fn add_with(list: &Value, inv: &Invocation, env: &Env) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for plugin in plugins(list)? {
        let conf = plugin_config(list, plugin, prev.as_ref(), inv.runtime_config);
        prev = Some(exec("ADD", &conf, inv, env)?);
    }
    prev.ok_or_else(|| Error::Network("the conflist has no plugins".into()))
}

/// DEL through the list in reverse. Every plugin is called even when one
/// fails (a later one may still hold rules); the first error is returned.
pub(crate) fn del(list: &Value, inv: &Invocation, result: Option<&Value>) -> Result<()> {
    del_with(list, inv, result, &Env { dirs: &default_dirs(), args: "" })
}

/// [`del`] with the plugins of `env`.
pub(crate) fn del_with(list: &Value, inv: &Invocation, result: Option<&Value>, env: &Env) -> Result<()> {
    let mut first = None;
    for plugin in plugins(list)?.iter().rev() {
        let conf = plugin_config(list, plugin, result, inv.runtime_config);
        if let Err(e) = exec("DEL", &conf, inv, env) {
            tracing::warn!("CNI DEL: {e}");
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

fn plugins(list: &Value) -> Result<&Vec<Value>> {
    list["plugins"].as_array().ok_or_else(|| Error::Network("conflist without plugins".into()))
}

fn plugin_config(list: &Value, plugin: &Value, prev: Option<&Value>, runtime_config: &Value) -> Value {
    let mut conf = plugin.clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    conf["name"] = list["name"].clone();
    if let Some(caps) = plugin["capabilities"].as_object() {
        let mut rc = json!({});
        for (cap, on) in caps {
            if on.as_bool() == Some(true) && !runtime_config[cap].is_null() {
                rc[cap] = runtime_config[cap].clone();
            }
        }
        conf["runtimeConfig"] = rc;
    }
    if let Some(p) = prev {
        conf["prevResult"] = p.clone();
    }
    conf
}

fn find_plugin(kind: &str, dirs: &[PathBuf]) -> Result<PathBuf> {
    if kind.contains('/') || kind.is_empty() {
        return Err(Error::Network(format!("bad CNI plugin type {kind:?}")));
    }
    dirs.iter().map(|d| d.join(kind)).find(|p| p.is_file()).ok_or_else(|| {
        let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        Error::Network(format!(
            "CNI plugin {kind} not found in {}: apt-get install containernetworking-plugins",
            names.join(", ")
        ))
    })
}

fn exec(command: &str, conf: &Value, inv: &Invocation, env: &Env) -> Result<Value> {
    let kind = conf["type"].as_str().unwrap_or_default();
    let bin = find_plugin(kind, env.dirs)?;
    let cni_path = std::env::join_paths(env.dirs).unwrap_or_default();
    // The plugins run iptables and ip: make sure the sbin dirs are searched.
    let path = format!("{}:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin", std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new(&bin);
    let hold = inv.hold.to_vec();
    // SAFETY: between fork and exec only fcntl, async-signal-safe, on fds
    // the caller keeps open until the child is waited for.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &hold {
                let fd = std::os::fd::BorrowedFd::borrow_raw(*fd);
                rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            }
            Ok(())
        });
    }
    let mut child = cmd
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", inv.container_id)
        .env("CNI_NETNS", inv.netns)
        .env("CNI_IFNAME", inv.ifname)
        .env("CNI_PATH", cni_path)
        .env("CNI_ARGS", env.args)
        .env("PATH", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("run CNI plugin {}", bin.display()), e))?;
    let body = serde_json::to_vec(conf).map_err(|e| Error::Network(format!("encode CNI config: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body);
    }
    let out = child.wait_with_output().map_err(|e| Error::io(format!("wait for CNI plugin {kind}"), e))?;
    if !out.status.success() {
        // Errors come on stdout as {"code", "msg", "details"}.
        let msg = serde_json::from_slice::<Value>(&out.stdout)
            .ok()
            .map(|v| {
                let m = v["msg"].as_str().unwrap_or_default().to_string();
                match v["details"].as_str() {
                    Some(d) if !d.is_empty() => format!("{m}: {d}"),
                    _ => m,
                }
            })
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string());
        return Err(Error::Network(format!("CNI {command} {kind}: {msg}")));
    }
    if command != "ADD" {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| Error::Network(format!("CNI ADD {kind}: bad result: {e}")))
}

/// The container side of a result: its first IPv4 address (`10.90.0.2/24`)
/// and the MAC of the interface that has it.
pub(crate) fn container_address(result: &Value) -> Option<(std::net::Ipv4Addr, String)> {
    let ifaces = result["interfaces"].as_array()?;
    for ip in result["ips"].as_array()? {
        let addr = ip["address"].as_str()?.split('/').next()?.parse().ok();
        let iface = ip["interface"].as_u64().and_then(|i| ifaces.get(i as usize));
        if let Some(addr) = addr {
            let mac = iface.and_then(|i| i["mac"].as_str()).unwrap_or_default().to_string();
            return Some((addr, mac));
        }
    }
    None
}
