//! One container's attachment to its networks. Setup and teardown are
//! mirror images (netavark's model), and teardown reads only the record,
//! fresh from disk (`network connect` may have added networks since setup):
//!
//! | setup | teardown |
//! |---|---|
//! | host ports held | released |
//! | record written (intent), its lock held | record and lock removed |
//! | netns made | netns unmounted, removed |
//! | CNI ADD (result recorded) | CNI DEL per network, reverse, with the result |
//! | aardvark entry | entries removed |
//! | hosts, hostname, resolv.conf | (in the container dir, removed with it) |
//!
//! The record (see `record`) is written before CNI ADD; `network.lock`
//! beside it stays flocked by the process that owns the container. A lock
//! anyone can take means its owner died: [`sweep_orphans`] then tears the
//! attachment down from the record. Teardown first marks the record
//! `removing` under the networks lock, so no `connect` adds to it after.

use crate::error::{Error, Result};
use crate::network::record::{self, AttachmentRecord, Endpoint, EndpointState, OWNER_LOCK, RECORD};
use crate::network::{cni, conflist, connect, dns, hosts, link, netns, ports, Networks, PortMapping};
use serde_json::Value;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

const IFNAME: &str = "eth0";

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
    /// `--dns-search`: resolv.conf's `search` line.
    pub dns_search: Vec<String>,
    /// `--dns-option`: resolv.conf's `options` line.
    pub dns_options: Vec<String>,
    /// Where hosts, hostname and resolv.conf are written.
    pub files_dir: PathBuf,
    /// A pod's attachment (see [`AttachmentRecord::pod`]).
    pub pod: bool,
}

/// A live attachment; torn down by [`Attachment::teardown`] or on drop.
pub struct Attachment {
    networks: Networks,
    record: AttachmentRecord,
    held_ports: Vec<OwnedFd>,
    lock: Option<OwnedFd>,
    mounts: Vec<(String, PathBuf)>,
}

impl Attachment {
    /// Connects container `req.container_id` to its network: after this its
    /// netns (see [`Attachment::netns`]) has `eth0` with an address.
    pub fn setup(networks: &Networks, req: &AttachRequest) -> Result<Attachment> {
        sweep_orphans(networks);
        let net = networks.get_for_run(&req.network)?;
        check_request(req)?;
        let mut maps = req.publish.clone();
        maps.extend(ports::exposed(&req.expose)?);
        let held_ports = ports::reserve(&mut maps)?;
        let dir = record::dir(networks.run_root(), &req.container_id);
        let record = AttachmentRecord {
            container_id: req.container_id.clone(),
            name: req.name.clone(),
            netns: netns::path(networks.run_root(), &req.container_id),
            files_dir: req.files_dir.clone(),
            hostname: req.hostname.clone(),
            dns_servers: req.dns.clone(),
            networks: vec![Endpoint {
                network: net.name.clone(),
                network_id: net.id.clone(),
                ifname: IFNAME.into(),
                aliases: req.aliases.clone(),
                conflist: conflist::generate(&net, &networks.ipam_dir(), !maps.is_empty())?,
                ports: maps,
                dns: net.dns_enabled,
                result: None,
                ip: None,
                mac: None,
                gateway: net.dns_enabled.then_some(net.gateway),
                state: EndpointState::Up,
            }],
            removing: false,
            pod: req.pod,
        };
        let lock = {
            let _l = networks.lock()?;
            networks.get(&net.name)?;
            check_names_free(networks, &record.container_id, record.name.as_deref(), &record.networks[0])?;
            let lock = create_lock(&dir)?;
            record::save(&dir, &record)?;
            lock
        };
        let mut att =
            Attachment { networks: networks.clone(), record, held_ports, lock: Some(lock), mounts: Vec::new() };
        att.connect(&net, req)?;
        Ok(att)
    }

    fn connect(&mut self, net: &crate::network::Network, req: &AttachRequest) -> Result<()> {
        netns::create(&self.record.netns)?;
        ensure_bridge(net)?;
        let ep = &self.record.networks[0];
        let rc = ports::runtime_config(&ep.ports);
        let hold = self.lock.as_ref().map(|l| l.as_raw_fd());
        let result = cni::add(&ep.conflist, &invocation(&self.record, ep, &rc, hold.as_slice()))?;
        let (ip, mac) = cni::container_address(&result)
            .ok_or_else(|| Error::Network(format!("CNI ADD on {} gave the container no IPv4 address", net.name)))?;
        // Read-modify-write under the networks lock: a `network connect` may
        // have added an endpoint meanwhile.
        let id = self.record.container_id.clone();
        let fresh = record::update(&self.networks, &id, |r| {
            let Some(e) = r.networks.iter_mut().find(|e| e.ifname == IFNAME) else { return false };
            (e.result, e.ip, e.mac) = (Some(result.clone()), Some(ip), Some(mac.clone()));
            true
        })?;
        self.record = fresh.ok_or_else(|| Error::Network(format!("the attachment record of {id} is gone")))?;
        let mut names: Vec<String> = self.record.name.iter().chain(&req.aliases).cloned().collect();
        if net.dns_enabled {
            names.push(short_id(&id).to_string());
            let entry = dns::Entry { id: &id, ip, names: names.clone(), dns: &req.dns };
            dns::Aardvark::new(self.networks.run_root()).add(net, &entry)?;
        }
        let files = hosts::Files {
            hostname: &req.hostname,
            ip,
            names: &names,
            add_hosts: &req.add_hosts,
            dns_server: net.dns_enabled.then_some(net.gateway),
            dns: &req.dns,
            dns_search: &req.dns_search,
            dns_options: &req.dns_options,
        };
        self.mounts = hosts::write(&req.files_dir, &files)?;
        Ok(())
    }

    /// The network namespace to give the runtime.
    pub fn netns(&self) -> &Path {
        &self.record.netns
    }

    /// The record as setup left it (`network connect` may add to the one on disk).
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

    /// CNI DEL of every network the record names now, and the rest of the
    /// mirror image; the first error is returned after every step has been tried.
    pub fn teardown(mut self) -> Result<()> {
        self.teardown_inner()
    }

    fn teardown_inner(&mut self) -> Result<()> {
        let Some(lock) = self.lock.take() else { return Ok(()) };
        let res = teardown_owned(&self.networks, &self.record.container_id, &[lock.as_raw_fd()]);
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

fn check_request(req: &AttachRequest) -> Result<()> {
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
    hosts::check_resolv_words("--dns-search", &req.dns_search)?;
    hosts::check_resolv_words("--dns-option", &req.dns_options)
}

/// The bridge and the network's rules, made again if they are gone since
/// the network was made (a reboot, a flush of iptables), unless another run
/// did while this one waited for the lock.
pub(crate) fn ensure_bridge(net: &crate::network::Network) -> Result<()> {
    use crate::network::firewall;
    if !link::exists(&net.bridge) || !firewall::present(net) {
        let _host = crate::network::lock_file(Path::new(crate::network::HOST_LOCK), true)?;
        if !link::exists(&net.bridge) {
            link::create_bridge(&net.bridge, net.gateway, &net.subnet()?)?;
        }
        if !firewall::present(net) {
            firewall::install(net)?;
        }
    }
    Ok(())
}

pub(crate) fn invocation<'a>(
    r: &'a AttachmentRecord,
    ep: &'a Endpoint,
    rc: &'a Value,
    hold: &'a [RawFd],
) -> cni::Invocation<'a> {
    cni::Invocation { container_id: &r.container_id, netns: &r.netns, ifname: &ep.ifname, runtime_config: rc, hold }
}

/// A pod's attachment torn down by `pod rm` (or the pod sweep): nobody
/// holds its lock between pod commands, so take it here.
pub(crate) fn teardown_pod(networks: &Networks, id: &str) -> Result<()> {
    let dir = record::dir(networks.run_root(), id);
    if !dir.exists() {
        return Ok(());
    }
    let lock = crate::network::lock_file(&dir.join(OWNER_LOCK), true)?;
    teardown_owned(networks, id, &[lock.as_raw_fd()])
}

/// Teardown by the owner of the attachment (it holds `network.lock`,
/// `hold`): marks the record `removing` under the networks lock, then
/// undoes what the record, read fresh, names.
pub(crate) fn teardown_owned(networks: &Networks, id: &str, hold: &[RawFd]) -> Result<()> {
    let dir = record::dir(networks.run_root(), id);
    let Some(r) = record::update(networks, id, |r| !std::mem::replace(&mut r.removing, true))? else {
        // No record: nothing was set up (a setup killed while writing it
        // leaves its temp file), or a sweep finished it.
        remove_unrecorded(&dir);
        return Ok(());
    };
    undo(networks, &dir, &r, hold)
}

/// Teardown from a record alone (also after a crash): every endpoint, last
/// joined first, then the netns. The record stays until every step worked,
/// for the next sweep to retry.
fn undo(networks: &Networks, dir: &Path, r: &AttachmentRecord, hold: &[RawFd]) -> Result<()> {
    let mut res = Ok(());
    for ep in r.networks.iter().rev() {
        res = res.and(undo_endpoint(networks, r, ep, hold));
    }
    res.and(netns::remove(&r.netns))?;
    crate::network::remove_file(&dir.join(RECORD))?;
    remove_unrecorded(dir);
    Ok(())
}

/// Removes a record dir whose record is gone: the temp files of writes a
/// kill cut short, then the lock, last (a dir with no lock is one the
/// sweep removes on sight, see [`sweep_locked_with`]), then the dir.
fn remove_unrecorded(dir: &Path) {
    remove_temp_files(dir);
    let _ = crate::network::remove_file(&dir.join(OWNER_LOCK));
    let _ = std::fs::remove_dir(dir);
}

/// The temp files of record writes (and lock creations) a kill -9 cut
/// short; nobody writes the record any more once it is torn down.
fn remove_temp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&format!(".{RECORD}.tmp-")) || name.starts_with(&format!("{OWNER_LOCK}.tmp-")) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// DNS entry and CNI DEL of one endpoint; both tried, the first error returned.
pub(crate) fn undo_endpoint(networks: &Networks, r: &AttachmentRecord, ep: &Endpoint, hold: &[RawFd]) -> Result<()> {
    let rc = ports::runtime_config(&ep.ports);
    let dns =
        if ep.dns { dns::Aardvark::new(networks.run_root()).remove(&ep.network, &r.container_id) } else { Ok(()) };
    // A process killed during ADD recorded no result: the IP host-local
    // reserved for it stands in, so the firewall and portmap plugins find their rules.
    let found = if ep.result.is_none() { result_from_ipam(networks, r, ep) } else { None };
    let del = cni::del(&ep.conflist, &invocation(r, ep, &rc, hold), ep.result.as_ref().or(found.as_ref()));
    dns.and(del)
}

/// A CNI result naming the addresses host-local reserved for the
/// endpoint (its files `<ipam>/<network>/<ip>` hold the container ID, then the ifName).
fn result_from_ipam(networks: &Networks, r: &AttachmentRecord, ep: &Endpoint) -> Option<serde_json::Value> {
    let name = ep.conflist["name"].as_str()?;
    let prefix = networks.get(name).ok().and_then(|n| n.subnet.split_once('/').map(|(_, p)| p.to_string()))?;
    let ips: Vec<serde_json::Value> = std::fs::read_dir(networks.ipam_dir().join(name))
        .ok()?
        .flatten()
        .filter_map(|e| {
            let ip = e.file_name().to_str()?.parse::<std::net::IpAddr>().ok()?;
            let owner = std::fs::read_to_string(e.path()).ok()?;
            let mut lines = owner.lines().map(str::trim);
            let mine = lines.next()? == r.container_id && lines.next().is_none_or(|i| i == ep.ifname);
            mine.then(|| serde_json::json!({"address": format!("{ip}/{prefix}")}))
        })
        .collect();
    let version = &ep.conflist["cniVersion"];
    (!ips.is_empty()).then(|| serde_json::json!({"cniVersion": version, "interfaces": [], "ips": ips}))
}

/// The lock is made under a temp name and renamed into place already
/// locked, so a sweeper never sees it unlocked while its owner lives.
fn create_lock(dir: &Path) -> Result<OwnedFd> {
    let tmp = dir.join(format!("network.lock.tmp-{}", std::process::id()));
    let fd = crate::network::lock_file(&tmp, true)?;
    std::fs::rename(&tmp, dir.join(OWNER_LOCK)).map_err(|e| Error::io(format!("rename {}", tmp.display()), e))?;
    Ok(fd)
}

/// The 12-character short ID; a damaged record's shorter ID as it is.
pub(crate) fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

pub(crate) fn check_dns_name(n: &str) -> Result<()> {
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

/// The name is unique among attached containers; the endpoint's name and
/// aliases are no other container's alias on its network.
pub(crate) fn check_names_free(networks: &Networks, id: &str, name: Option<&str>, ep: &Endpoint) -> Result<()> {
    let mine: Vec<&str> = name.into_iter().chain(ep.aliases.iter().map(String::as_str)).collect();
    for other in record::records(networks.run_root()).into_iter().filter(|o| o.container_id != id) {
        if let Some(n) = name.filter(|n| other.name.as_deref() == Some(n)) {
            return Err(Error::InvalidArgument(format!(
                "the container name {n:?} is already in use by container {}",
                short_id(&other.container_id)
            )));
        }
        if let Some(o) = other.endpoint(&ep.network_id) {
            if let Some(n) = o.aliases.iter().find(|a| mine.contains(&a.as_str())) {
                return Err(Error::InvalidArgument(format!(
                    "the alias {n:?} is already in use on network {} by container {}",
                    ep.network,
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
    let hits: Vec<AttachmentRecord> = record::records(networks.run_root())
        .into_iter()
        .filter(|r| r.name.as_deref() == Some(target) || (target.len() >= 3 && r.container_id.starts_with(target)))
        .filter(|r| r.networks.iter().any(|e| e.result.is_some()) && r.netns.exists())
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

/// Tears down every attachment whose owner died (its lock is free), and
/// finishes the `connect`/`disconnect` a killed process left half done on
/// a live one; then what no record explains: netns files, IP reservations,
/// DNS entries, and an aardvark-dns with nothing to serve. Best effort: a
/// failing step is logged and retried by the next sweep.
///
/// Runs under the networks lock, the one [`Attachment::setup`] saves its
/// record under before it makes the netns, runs CNI ADD and adds the DNS
/// entry, and the one `connect`/`disconnect` hold throughout: whatever a
/// live process has made is explained by a record the sweep sees, so it
/// never removes another run's netns, IP or DNS entry.
pub fn sweep_orphans(networks: &Networks) {
    let Ok(lock) = networks.lock() else {
        tracing::warn!("network sweep skipped: the networks lock cannot be taken");
        return;
    };
    sweep_locked(networks, &lock);
}

/// [`sweep_orphans`] with the networks lock, `held`, already taken by the caller.
pub(crate) fn sweep_locked(networks: &Networks, held: &OwnedFd) {
    sweep_locked_with(networks, held, false)
}

/// [`sweep_locked`]; `thorough` (network rm and prune) also looks through
/// every process for an aardvark-dns whose pid file a wiped run root took
/// with it — too slow for the sweep every command does (hundreds of
/// /proc reads).
pub(crate) fn sweep_locked_with(networks: &Networks, held: &OwnedFd, thorough: bool) {
    let run_root = networks.run_root();
    for e in std::fs::read_dir(run_root.join("containers")).into_iter().flatten().flatten() {
        let dir = e.path();
        // No lock: no live process owns the dir (setup makes the lock before
        // the record, both under the networks lock we hold; teardown removes
        // the lock last): what a kill left, a temp file or a record, goes
        // below like a dead owner's (the lock is made to be taken).
        let Ok(lock) = crate::network::lock_file(&dir.join(OWNER_LOCK), false) else {
            // A live owner: only what a killed connect/disconnect left.
            if let Err(e) = connect::finish_interrupted(networks, &dir, held) {
                tracing::warn!("finishing an interrupted network change of {}: {e}", dir.display());
            }
            continue;
        };
        match record::load(&dir) {
            Some(r) if r.kept_by_pod() => {}
            Some(r) => {
                tracing::info!("tearing down the network of dead container {}", r.container_id);
                if let Err(e) = undo(networks, &dir, &r, &[held.as_raw_fd(), lock.as_raw_fd()]) {
                    tracing::warn!("sweeping {}: {e}", dir.display());
                }
            }
            None => remove_unrecorded(&dir),
        }
        drop(lock);
    }
    let records = record::records(run_root);
    let live: Vec<&str> = records.iter().map(|r| r.container_id.as_str()).collect();
    for e in std::fs::read_dir(run_root.join("netns")).into_iter().flatten().flatten() {
        if !live.iter().any(|id| e.file_name() == *id) {
            let _ = netns::remove(&e.path());
        }
    }
    // (network, container) pairs a record explains.
    let joined: Vec<(&str, &str)> = records
        .iter()
        .flat_map(|r| r.networks.iter().map(move |e| (e.network.as_str(), r.container_id.as_str())))
        .collect();
    sweep_ipam(&networks.ipam_dir(), &joined);
    let aardvark = dns::Aardvark::new(run_root);
    for (net, id) in aardvark.entries() {
        if !joined.contains(&(net.as_str(), id.as_str())) {
            let _ = aardvark.remove(&net, &id);
        }
    }
    aardvark.sweep(thorough);
}

/// Attachment record dirs whose owner died (its lock is free, or it has
/// none), found without changing them (`system check`); the next sweep
/// tears them down.
pub fn dead_attachments(run_root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(run_root.join("containers")).into_iter().flatten().flatten() {
        let dir = e.path();
        if !dir.join(OWNER_LOCK).exists() {
            // A record or the temp files of a killed write: swept on sight.
            out.push(dir);
            continue;
        }
        let kept = || record::load(&dir).is_some_and(|r| r.kept_by_pod());
        if !record::owner_alive(&dir) && dir.join(RECORD).exists() && !kept() {
            out.push(dir);
        }
    }
    out.sort();
    out
}

/// host-local's files are named by IP and hold the owner's container ID:
/// a reservation no record explains on that network goes.
fn sweep_ipam(ipam: &Path, joined: &[(&str, &str)]) {
    for net in std::fs::read_dir(ipam).into_iter().flatten().flatten() {
        let name = net.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(net.path()).into_iter().flatten().flatten() {
            if f.file_name().to_string_lossy().parse::<std::net::IpAddr>().is_err() {
                continue;
            }
            let owner = std::fs::read_to_string(f.path()).unwrap_or_default();
            let owner = owner.lines().next().unwrap_or_default().trim();
            if !owner.is_empty() && !joined.contains(&(name.as_str(), owner)) {
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
            netns: netns::path(run_root, id),
            files_dir: PathBuf::new(),
            hostname: String::new(),
            dns_servers: Vec::new(),
            networks: vec![Endpoint {
                network: "n".into(),
                network_id: "0".repeat(64),
                ifname: IFNAME.into(),
                aliases: Vec::new(),
                conflist: Value::Null,
                ports: Vec::new(),
                dns: false,
                result: None,
                ip: None,
                mac: None,
                gateway: None,
                state: EndpointState::Up,
            }],
            removing: false,
            pod: false,
        }
    }

    /// What a kill of `pod create` during its attachment's record write
    /// (the fsync of `.network.json.tmp-<pid>`) leaves: the lock, free, and
    /// the temp file; no record.
    fn killed_record_write(nets: &Networks, id: &str) -> PathBuf {
        let dir = record::dir(nets.run_root(), id);
        drop(create_lock(&dir).unwrap());
        std::fs::write(dir.join(format!(".{RECORD}.tmp-4242")), b"{").unwrap();
        dir
    }

    // Broke: the pod sweep's teardown of a create killed while writing its
    // attachment record removed the lock but not the temp file, and no sweep
    // looked at a dir without a lock again (a leaked <run-root>/containers/<id>).
    #[test]
    fn a_pod_teardown_after_a_killed_record_write_leaves_no_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let nets = Networks::new(&tmp.path().join("root"), &tmp.path().join("run"));
        let id = "ab".repeat(32);
        let dir = killed_record_write(&nets, &id);
        teardown_pod(&nets, &id).unwrap();
        assert!(!dir.exists(), "left: {:?}", std::fs::read_dir(&dir).map(|r| r.flatten().count()));
    }

    // Broke: the sweep skipped attachment dirs without `network.lock` (what
    // the teardown above left, or a kill in `create_lock`), so they stayed forever.
    #[test]
    fn the_sweep_removes_attachment_dirs_without_a_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let nets = Networks::new(&tmp.path().join("root"), &tmp.path().join("run"));
        let mut dirs = Vec::new();
        for (i, leftover) in
            [format!(".{RECORD}.tmp-4242"), format!("{OWNER_LOCK}.tmp-4242"), String::new()].iter().enumerate()
        {
            let dir = record::dir(nets.run_root(), &format!("{i:064x}"));
            std::fs::create_dir_all(&dir).unwrap();
            if !leftover.is_empty() {
                std::fs::write(dir.join(leftover), b"").unwrap();
            }
            dirs.push(dir);
        }
        assert_eq!(dead_attachments(nets.run_root()).len(), 3, "system check reports them");
        sweep_orphans(&nets);
        for d in &dirs {
            assert!(!d.exists(), "{} left", d.display());
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
                    // flock is not fair: a sweeper that takes the lock back at
                    // once would starve the setups (commands sweep once each).
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            })
        };
        let mut held = Vec::new();
        // As setup does: record and owner lock under the networks lock, then the reservation.
        for i in 0..150u32 {
            let id = format!("{i:064x}");
            let dir = record::dir(nets.run_root(), &id);
            let _l = nets.lock().unwrap();
            held.push(create_lock(&dir).unwrap());
            record::save(&dir, &record(&id, nets.run_root())).unwrap();
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
