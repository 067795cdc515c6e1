//! One container's attachment to a network. Setup and teardown are mirror
//! images (netavark's model), and teardown reads only the record:
//!
//! | setup | teardown |
//! |---|---|
//! | host ports held | released |
//! | record written (intent), its lock held | record and lock removed |
//! | netns made | netns unmounted, removed |
//! | CNI ADD (result recorded) | CNI DEL, reverse, with the result |
//! | aardvark entry | entry removed |
//! | hosts, hostname, resolv.conf | (in the container dir, removed with it) |
//!
//! The record, `<run-root>/containers/<id>/network.json`, is written before
//! CNI ADD; `network.lock` beside it stays flocked by the process that owns
//! the container. A lock anyone can take means its owner died:
//! [`sweep_orphans`] then tears the attachment down from the record.

use crate::error::{Error, Result};
use crate::network::{cni, conflist, dns, hosts, link, netns, ports, Networks, PortMapping};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

const IFNAME: &str = "eth0";

/// What teardown needs, written before CNI ADD.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachmentRecord {
    pub container_id: String,
    pub name: Option<String>,
    pub aliases: Vec<String>,
    pub network: String,
    pub network_id: String,
    pub netns: PathBuf,
    pub ifname: String,
    /// The exact list ADD ran (DEL must see the same).
    pub conflist: Value,
    pub ports: Vec<PortMapping>,
    /// An aardvark entry may exist.
    pub dns: bool,
    pub result: Option<Value>,
    pub ip: Option<Ipv4Addr>,
    pub mac: Option<String>,
    /// Where its hosts, hostname and resolv.conf are (`--network container:` shares them).
    #[serde(default)]
    pub files_dir: PathBuf,
    #[serde(default)]
    pub hostname: String,
}

/// What a container asks of its network.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub container_id: String,
    /// A network name, `bridge` for the default.
    pub network: String,
    pub name: Option<String>,
    pub aliases: Vec<String>,
    pub hostname: String,
    /// `-p`, parsed.
    pub publish: Vec<PortMapping>,
    /// `-P`: the image's EXPOSEd ports (`80/tcp`).
    pub expose: Vec<String>,
    pub add_hosts: Vec<String>,
    pub dns: Vec<String>,
    /// Where hosts, hostname and resolv.conf are written.
    pub files_dir: PathBuf,
}

/// A live attachment; torn down by [`Attachment::teardown`] or on drop.
pub struct Attachment {
    networks: Networks,
    dir: PathBuf,
    record: AttachmentRecord,
    held_ports: Vec<OwnedFd>,
    lock: Option<OwnedFd>,
    mounts: Vec<(String, PathBuf)>,
}

fn record_dir(run_root: &Path, id: &str) -> PathBuf {
    run_root.join("containers").join(id)
}

impl Attachment {
    /// Connects container `req.container_id` to its network: after this its
    /// netns (see [`Attachment::netns`]) has `eth0` with an address.
    pub fn setup(networks: &Networks, req: &AttachRequest) -> Result<Attachment> {
        sweep_orphans(networks);
        let net = networks.get_for_run(&req.network)?;
        for n in req.name.iter().chain(&req.aliases) {
            check_dns_name(n)?;
        }
        for h in &req.add_hosts {
            hosts::parse_add_host(h)?;
        }
        // A bad line would stop aardvark-dns from loading the whole network.
        if let Some(d) = req.dns.iter().find(|d| d.parse::<std::net::IpAddr>().is_err()) {
            return Err(Error::InvalidArgument(format!("invalid --dns {d:?}: not an IP address")));
        }
        let mut maps = req.publish.clone();
        maps.extend(ports::exposed(&req.expose)?);
        let held_ports = ports::reserve(&mut maps)?;
        let dir = record_dir(networks.run_root(), &req.container_id);
        let record = AttachmentRecord {
            container_id: req.container_id.clone(),
            name: req.name.clone(),
            aliases: req.aliases.clone(),
            network: net.name.clone(),
            network_id: net.id.clone(),
            netns: netns::path(networks.run_root(), &req.container_id),
            ifname: IFNAME.into(),
            conflist: conflist::generate(&net, &networks.ipam_dir(), !maps.is_empty())?,
            ports: maps,
            dns: net.dns_enabled,
            result: None,
            ip: None,
            mac: None,
            files_dir: req.files_dir.clone(),
            hostname: req.hostname.clone(),
        };
        let lock = {
            let _l = networks.lock()?;
            networks.get(&net.name)?;
            check_names_free(networks, &record)?;
            let lock = create_lock(&dir)?;
            save(&dir, &record)?;
            lock
        };
        let mut att =
            Attachment { networks: networks.clone(), dir, record, held_ports, lock: Some(lock), mounts: Vec::new() };
        att.connect(&net, req)?;
        Ok(att)
    }

    fn connect(&mut self, net: &crate::network::Network, req: &AttachRequest) -> Result<()> {
        netns::create(&self.record.netns)?;
        if !link::exists(&net.bridge) {
            // Gone since the network was made (a reboot): make it again,
            // unless another run did while this one waited for the lock.
            let _host = crate::network::lock_file(Path::new(crate::network::HOST_LOCK), true)?;
            if !link::exists(&net.bridge) {
                link::create_bridge(&net.bridge, net.gateway, &net.subnet()?)?;
            }
        }
        let rc = ports::runtime_config(&self.record.ports);
        let result = cni::add(&self.record.conflist, &self.invocation(&rc))?;
        let (ip, mac) = cni::container_address(&result)
            .ok_or_else(|| Error::Network(format!("CNI ADD on {} gave the container no IPv4 address", net.name)))?;
        self.record.result = Some(result);
        self.record.ip = Some(ip);
        self.record.mac = Some(mac);
        save(&self.dir, &self.record)?;
        let mut names: Vec<String> = self.record.name.iter().chain(&self.record.aliases).cloned().collect();
        if net.dns_enabled {
            names.push(short_id(&self.record.container_id).to_string());
            let entry = dns::Entry { id: &self.record.container_id, ip, names: names.clone(), dns: &req.dns };
            dns::Aardvark::new(self.networks.run_root()).add(net, &entry)?;
        }
        let files = hosts::Files {
            hostname: &req.hostname,
            ip,
            names: &names,
            add_hosts: &req.add_hosts,
            dns_server: net.dns_enabled.then_some(net.gateway),
            dns: &req.dns,
        };
        self.mounts = hosts::write(&req.files_dir, &files)?;
        Ok(())
    }

    fn invocation<'a>(&'a self, rc: &'a Value) -> cni::Invocation<'a> {
        cni::Invocation {
            container_id: &self.record.container_id,
            netns: &self.record.netns,
            ifname: &self.record.ifname,
            runtime_config: rc,
            hold: self.lock.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
        }
    }

    /// The network namespace to give the runtime.
    pub fn netns(&self) -> &Path {
        &self.record.netns
    }

    pub fn record(&self) -> &AttachmentRecord {
        &self.record
    }

    /// (path in the container, host file) bind mounts: hosts, hostname, resolv.conf.
    pub fn mounts(&self) -> &[(String, PathBuf)] {
        &self.mounts
    }

    /// Copies of the owner lock and the held host ports, for the
    /// container's monitor to keep.
    pub fn lock_fds(&self) -> Result<Vec<OwnedFd>> {
        let mut out = Vec::new();
        for fd in self.lock.iter().chain(&self.held_ports) {
            out.push(fd.try_clone().map_err(|e| Error::io("dup lock", e))?);
        }
        Ok(out)
    }

    /// Closes this process's fds without any teardown (the monitor holds
    /// the locks; the cleanup after the container tears down).
    pub fn forget(mut self) {
        self.lock = None;
        self.held_ports.clear();
    }

    /// CNI DEL and the rest of the mirror image; the first error is returned
    /// after every step has been tried.
    pub fn teardown(mut self) -> Result<()> {
        self.teardown_inner()
    }

    fn teardown_inner(&mut self) -> Result<()> {
        let Some(lock) = self.lock.take() else { return Ok(()) };
        let res = undo(&self.networks, &self.dir, &self.record);
        self.held_ports.clear();
        drop(lock);
        res
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Err(e) = self.teardown_inner() {
            tracing::warn!("network teardown of {}: {e}", self.record.container_id);
        }
    }
}

/// Teardown from a record alone (also after a crash).
fn undo(networks: &Networks, dir: &Path, r: &AttachmentRecord) -> Result<()> {
    let rc = ports::runtime_config(&r.ports);
    let inv = cni::Invocation {
        container_id: &r.container_id,
        netns: &r.netns,
        ifname: &r.ifname,
        runtime_config: &rc,
        hold: None,
    };
    let dns = if r.dns { dns::Aardvark::new(networks.run_root()).remove(&r.network, &r.container_id) } else { Ok(()) };
    // A run killed during ADD recorded no result: the IP host-local reserved
    // for it stands in, so the firewall and portmap plugins find their rules.
    let found = if r.result.is_none() { result_from_ipam(networks, r) } else { None };
    let del = cni::del(&r.conflist, &inv, r.result.as_ref().or(found.as_ref()));
    let ns = netns::remove(&r.netns);
    // The record stays until every step worked, for the next sweep to retry.
    dns.and(del).and(ns)?;
    crate::network::remove_file(&dir.join("network.json"))?;
    crate::network::remove_file(&dir.join("network.lock"))?;
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// A CNI result naming the addresses host-local reserved for the record's
/// container (its files `<ipam>/<network>/<ip>` hold the container ID).
fn result_from_ipam(networks: &Networks, r: &AttachmentRecord) -> Option<serde_json::Value> {
    let name = r.conflist["name"].as_str()?;
    let prefix = networks.get(name).ok().and_then(|n| n.subnet.split_once('/').map(|(_, p)| p.to_string()))?;
    let ips: Vec<serde_json::Value> = std::fs::read_dir(networks.ipam_dir().join(name))
        .ok()?
        .flatten()
        .filter_map(|e| {
            let ip = e.file_name().to_str()?.parse::<std::net::IpAddr>().ok()?;
            let owner = std::fs::read_to_string(e.path()).ok()?;
            (owner.lines().next()?.trim() == r.container_id)
                .then(|| serde_json::json!({"address": format!("{ip}/{prefix}")}))
        })
        .collect();
    (!ips.is_empty()).then(|| serde_json::json!({"cniVersion": r.conflist["cniVersion"], "interfaces": [], "ips": ips}))
}

/// The lock is made under a temp name and renamed into place already
/// locked, so a sweeper never sees it unlocked while its owner lives.
fn create_lock(dir: &Path) -> Result<OwnedFd> {
    let tmp = dir.join(format!("network.lock.tmp-{}", std::process::id()));
    let fd = crate::network::lock_file(&tmp, true)?;
    std::fs::rename(&tmp, dir.join("network.lock")).map_err(|e| Error::io(format!("rename {}", tmp.display()), e))?;
    Ok(fd)
}

fn save(dir: &Path, r: &AttachmentRecord) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(r).map_err(|e| Error::Network(format!("encode attachment: {e}")))?;
    crate::network::write_atomic(&dir.join("network.json"), &bytes)
}

/// The 12-character short ID; a damaged record's shorter ID as it is.
pub(crate) fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn check_dns_name(n: &str) -> Result<()> {
    let ok = n.len() <= 63
        && n.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid container name or alias {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

fn check_names_free(networks: &Networks, r: &AttachmentRecord) -> Result<()> {
    let mine: Vec<&String> = r.name.iter().chain(&r.aliases).collect();
    for other in records(networks.run_root()) {
        if let Some(n) = &r.name {
            if other.name.as_ref() == Some(n) {
                return Err(Error::InvalidArgument(format!(
                    "the container name {n:?} is already in use by container {}",
                    short_id(&other.container_id)
                )));
            }
        }
        if other.network_id == r.network_id {
            if let Some(n) = other.aliases.iter().find(|a| mine.contains(a)) {
                return Err(Error::InvalidArgument(format!(
                    "the alias {n:?} is already in use on network {} by container {}",
                    r.network,
                    short_id(&other.container_id)
                )));
            }
        }
    }
    Ok(())
}

/// What `--network container:NAME` shares of a running container.
#[derive(Debug, Clone)]
pub struct Joined {
    pub netns: PathBuf,
    pub hostname: String,
    /// (path in the container, host file): its hosts, hostname, resolv.conf.
    pub files: Vec<(String, PathBuf)>,
}

/// `--network container:NAME`: the network namespace, hostname and /etc
/// files of a running container (by name or ID prefix) to share.
pub fn joined(networks: &Networks, target: &str) -> Result<Joined> {
    let hits: Vec<AttachmentRecord> = records(networks.run_root())
        .into_iter()
        .filter(|r| r.name.as_deref() == Some(target) || (target.len() >= 3 && r.container_id.starts_with(target)))
        .filter(|r| r.result.is_some() && r.netns.exists())
        .collect();
    let [r] = hits.as_slice() else {
        return Err(Error::InvalidArgument(match hits.len() {
            0 => format!("--network container:{target}: no running container {target} with a network"),
            _ => format!("--network container:{target}: more than one container matches"),
        }));
    };
    let files = ["hosts", "hostname", "resolv.conf"]
        .iter()
        .map(|f| (format!("/etc/{f}"), r.files_dir.join(f)))
        .filter(|(_, p)| p.exists())
        .collect();
    Ok(Joined { netns: r.netns.clone(), hostname: r.hostname.clone(), files })
}

/// Every attachment record under `run_root`, live or not.
pub(crate) fn records(run_root: &Path) -> Vec<AttachmentRecord> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(run_root.join("containers")).into_iter().flatten().flatten() {
        if let Ok(bytes) = std::fs::read(e.path().join("network.json")) {
            if let Ok(r) = serde_json::from_slice(&bytes) {
                out.push(r);
            }
        }
    }
    out
}

/// Tears down every attachment whose owner died (its lock is free), then
/// what no record explains: netns files, IPAM reservations, DNS entries,
/// and an aardvark-dns with nothing to serve. Best effort: a failing step is
/// logged and retried by the next sweep.
///
/// Runs under the networks lock, the one [`Attachment::setup`] saves its
/// record under before it makes the netns, runs CNI ADD and adds the DNS
/// entry: whatever a live setup has made is explained by a record the sweep
/// sees, so it never removes another run's netns, IP or DNS entry.
pub fn sweep_orphans(networks: &Networks) {
    let Ok(_lock) = networks.lock() else {
        tracing::warn!("network sweep skipped: the networks lock cannot be taken");
        return;
    };
    sweep_locked(networks);
}

/// [`sweep_orphans`] with the networks lock already held by the caller.
pub(crate) fn sweep_locked(networks: &Networks) {
    let run_root = networks.run_root();
    for e in std::fs::read_dir(run_root.join("containers")).into_iter().flatten().flatten() {
        let dir = e.path();
        if !dir.join("network.lock").exists() {
            continue;
        }
        let Ok(lock) = crate::network::lock_file(&dir.join("network.lock"), false) else { continue };
        match std::fs::read(dir.join("network.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            Some(r) => {
                let r: AttachmentRecord = r;
                tracing::info!("tearing down the network of dead container {}", r.container_id);
                if let Err(e) = undo(networks, &dir, &r) {
                    tracing::warn!("sweeping {}: {e}", dir.display());
                }
            }
            None => {
                let _ = crate::network::remove_file(&dir.join("network.lock"));
                let _ = std::fs::remove_dir(&dir);
            }
        }
        drop(lock);
    }
    let live: Vec<String> = records(run_root).into_iter().map(|r| r.container_id).collect();
    for e in std::fs::read_dir(run_root.join("netns")).into_iter().flatten().flatten() {
        if !live.iter().any(|id| e.file_name() == id.as_str()) {
            let _ = netns::remove(&e.path());
        }
    }
    sweep_ipam(&networks.ipam_dir(), &live);
    let aardvark = dns::Aardvark::new(run_root);
    for (net, id) in aardvark.entries() {
        if !live.contains(&id) {
            let _ = aardvark.remove(&net, &id);
        }
    }
    aardvark.sweep();
}

/// Attachment record dirs whose owner died (its lock is free, or it has
/// none), found without changing them (`system check`); the next sweep
/// tears them down.
pub fn dead_attachments(run_root: &Path) -> Vec<PathBuf> {
    use rustix::fs::{flock, FlockOperation, Mode, OFlags};
    let mut out = Vec::new();
    for e in std::fs::read_dir(run_root.join("containers")).into_iter().flatten().flatten() {
        let dir = e.path();
        let lock = dir.join("network.lock");
        if !lock.exists() {
            if dir.join("network.json").exists() {
                out.push(dir);
            }
            continue;
        }
        // Opened, not created: a lock gone meanwhile was its owner's teardown.
        let Ok(fd) = rustix::fs::open(&lock, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else { continue };
        if flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok() && dir.join("network.json").exists() {
            out.push(dir);
        }
    }
    out.sort();
    out
}

/// host-local's files are named by IP and hold the owner's container ID.
fn sweep_ipam(ipam: &Path, live: &[String]) {
    for net in std::fs::read_dir(ipam).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(net.path()).into_iter().flatten().flatten() {
            if f.file_name().to_string_lossy().parse::<std::net::IpAddr>().is_err() {
                continue;
            }
            let owner = std::fs::read_to_string(f.path()).unwrap_or_default();
            let owner = owner.lines().next().unwrap_or_default().trim();
            if !owner.is_empty() && !live.iter().any(|id| id == owner) {
                let _ = std::fs::remove_file(f.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn record(id: &str, run_root: &Path) -> AttachmentRecord {
        AttachmentRecord {
            container_id: id.into(),
            name: None,
            aliases: Vec::new(),
            network: "n".into(),
            network_id: "0".repeat(64),
            netns: netns::path(run_root, id),
            ifname: IFNAME.into(),
            conflist: Value::Null,
            ports: Vec::new(),
            dns: false,
            result: None,
            ip: None,
            mac: None,
            files_dir: PathBuf::new(),
            hostname: String::new(),
        }
    }

    // A sweep without the networks lock listed the live containers, then
    // removed the IP reservation of a run that set up in between.
    #[test]
    fn a_concurrent_sweep_keeps_live_reservations() {
        let tmp = tempfile::tempdir().unwrap();
        let nets = Networks::new(&tmp.path().join("root"), &tmp.path().join("run"));
        let stop = Arc::new(AtomicBool::new(false));
        let sweeper = {
            let (nets, stop) = (nets.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    sweep_orphans(&nets);
                }
            })
        };
        let mut held = Vec::new();
        // As setup does: record and owner lock under the networks lock, then the reservation.
        for i in 0..150u32 {
            let id = format!("{i:064x}");
            let dir = record_dir(nets.run_root(), &id);
            let _l = nets.lock().unwrap();
            held.push(create_lock(&dir).unwrap());
            save(&dir, &record(&id, nets.run_root())).unwrap();
            drop(_l);
            let ip = nets.ipam_dir().join("n").join(format!("10.1.{}.{}", i / 100, i % 100 + 1));
            crate::network::write_atomic(&ip, format!("{id}\r\neth0").as_bytes()).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        sweeper.join().unwrap();
        let left = std::fs::read_dir(nets.ipam_dir().join("n"))
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count();
        assert_eq!(left, 150, "a sweep removed live IP reservations");
    }
}
