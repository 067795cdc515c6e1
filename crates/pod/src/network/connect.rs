//! `network connect`/`disconnect` of a running container, and teardown by
//! a process that is not the attachment's owner.
//!
//! They run in another process than the owner (which holds `network.lock`
//! while the container lives), so they never take that lock: each holds
//! the networks lock from start to end and changes the record by temp +
//! rename. The owner's teardown marks the record `removing` under the same
//! lock and then reads it fresh, so it also undoes networks connected after
//! setup, and no connect adds to a record being torn down.
//!
//! Kill -9 at any moment: the endpoint is recorded (`connecting`, or
//! `disconnecting`) before CNI ADD/DEL, and a sweep that sees one of these
//! states under the networks lock knows its process died; it undoes the
//! endpoint (CNI DEL with what host-local reserved, DNS entry, /etc lines).
//!
//! | connect | disconnect (its mirror) |
//! |---|---|
//! | endpoint recorded `connecting` | endpoint marked `disconnecting` |
//! | CNI ADD as `ethN` (result recorded) | CNI DEL with the result |
//! | aardvark entry (same ID: names of every network resolve) | entry removed |
//! | `IP hostname` in /etc/hosts, the gateway in resolv.conf | lines removed |
//! | endpoint `up` | endpoint removed from the record |

use crate::error::{Error, Result};
use crate::network::attach::{self, check_dns_name, check_names_free, short_id};
use crate::network::record::{self, AttachmentRecord, Endpoint, EndpointState, OWNER_LOCK, RECORD};
use crate::network::{cni, conflist, dns, hosts, Network, Networks};
use serde_json::json;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Connects running container `container_id` (a full ID, see
/// [`record::find_attached`]) to `network`, as `eth1`, `eth2` … with
/// `aliases` on it and, when given, the address `ipv4`.
pub fn connect(
    networks: &Networks,
    container_id: &str,
    network: &str,
    aliases: &[String],
    ipv4: Option<Ipv4Addr>,
) -> Result<()> {
    for a in aliases {
        check_dns_name(a)?;
    }
    // Outside the networks lock: the default network may be made here.
    let net = networks.get_for_run(network)?;
    if let Some(ip) = ipv4 {
        check_static_ip(&net, ip)?;
    }
    let lock = networks.lock()?;
    attach::sweep_locked(networks, &lock);
    let hold = [lock.as_raw_fd()];
    let net = networks.get(&net.name)?;
    let dir = record::dir(networks.run_root(), container_id);
    let mut r = load_running(&dir, container_id)?;
    if r.endpoint(&net.id).is_some() {
        return Err(Error::AlreadyConnected { container: display_name(&r), network: net.name });
    }
    let mut list = conflist::generate(&net, &networks.ipam_dir(), false)?;
    if ipv4.is_some() {
        list["plugins"][0]["capabilities"] = json!({"ips": true});
    }
    let ep = Endpoint {
        network: net.name.clone(),
        network_id: net.id.clone(),
        ifname: next_ifname(&r),
        aliases: aliases.to_vec(),
        conflist: list,
        ports: Vec::new(),
        dns: net.dns_enabled,
        result: None,
        ip: None,
        mac: None,
        gateway: net.dns_enabled.then_some(net.gateway),
        state: EndpointState::Connecting,
    };
    check_names_free(networks, &r.container_id, r.name.as_deref(), &ep)?;
    if !r.netns.exists() {
        return Err(Error::NotRunning(r.container_id));
    }
    r.networks.push(ep);
    record::save(&dir, &r)?;
    if let Err(e) = bring_up(networks, &net, &dir, &mut r, (ipv4, &hold)) {
        let ep = r.networks.pop().unwrap_or_else(|| unreachable!());
        // Left `connecting` on failure: the next sweep tries again.
        if remove_endpoint(networks, &r, &ep, &hold).is_ok() {
            record::save(&dir, &r)?;
        }
        return Err(e);
    }
    Ok(())
}

/// CNI ADD of the last endpoint of `r`, then its DNS entry and /etc lines.
fn bring_up(
    networks: &Networks,
    net: &Network,
    dir: &Path,
    r: &mut AttachmentRecord,
    (ipv4, hold): (Option<Ipv4Addr>, &[RawFd]),
) -> Result<()> {
    attach::ensure_bridge(net)?;
    let prefix = net.subnet()?.prefix;
    let rc = match ipv4 {
        Some(ip) => json!({"ips": [format!("{ip}/{prefix}")]}),
        None => json!({}),
    };
    let ep = r.networks.last().ok_or_else(|| Error::Network("no endpoint to connect".into()))?;
    let result = cni::add(&ep.conflist, &attach::invocation(r, ep, &rc, hold))?;
    let (ip, mac) = cni::container_address(&result)
        .ok_or_else(|| Error::Network(format!("CNI ADD on {} gave the container no IPv4 address", net.name)))?;
    let ep = r.networks.last_mut().ok_or_else(|| Error::Network("no endpoint to connect".into()))?;
    (ep.result, ep.ip, ep.mac) = (Some(result), Some(ip), Some(mac));
    record::save(dir, r)?;
    let ep = &r.networks[r.networks.len() - 1];
    let mut names: Vec<String> = r.name.iter().chain(&ep.aliases).cloned().collect();
    if ep.dns {
        let mut dns_names = names.clone();
        dns_names.push(short_id(&r.container_id).to_string());
        let entry = dns::Entry { id: &r.container_id, ip, names: dns_names, dns: &r.dns_servers };
        dns::Aardvark::new(networks.run_root()).add(net, &entry)?;
    }
    if !r.files_dir.as_os_str().is_empty() {
        // Docker's line for each of the container's addresses: its hostname.
        names.insert(0, r.hostname.clone());
        names.dedup();
        hosts::add_host_line(&r.files_dir, ip, &names)?;
        if let Some(gw) = ep.gateway {
            hosts::add_nameserver(&r.files_dir, gw)?;
        }
    }
    if let Some(ep) = r.networks.last_mut() {
        ep.state = EndpointState::Up;
    }
    record::save(dir, r)
}

/// Disconnects running container `container_id` from `network`. With
/// `force`, a network whose record is gone is still found by its name in
/// the container's record.
pub fn disconnect(networks: &Networks, container_id: &str, network: &str, force: bool) -> Result<()> {
    let lock = networks.lock()?;
    attach::sweep_locked(networks, &lock);
    let dir = record::dir(networks.run_root(), container_id);
    let mut r = load_running(&dir, container_id)?;
    let idx = match networks.get(network) {
        Ok(n) => r.networks.iter().position(|e| e.network_id == n.id),
        Err(Error::NetworkNotFound(_)) if force => r.networks.iter().position(|e| e.network == network),
        Err(e) => return Err(e),
    };
    let Some(idx) = idx else {
        return Err(Error::NotConnected { container: r.container_id, network: network.to_string() });
    };
    r.networks[idx].state = EndpointState::Disconnecting;
    record::save(&dir, &r)?;
    let ep = r.networks[idx].clone();
    // On failure the endpoint stays `disconnecting`: the next sweep retries.
    remove_endpoint(networks, &r, &ep, &[lock.as_raw_fd()])?;
    r.networks.remove(idx);
    record::save(&dir, &r)
}

/// Tears down everything the record of `container_id` names, from a
/// process that is not its owner (a cleanup after the owner is gone). It
/// takes `network.lock` itself; [`Error::AttachmentBusy`] when a live
/// process holds it. No record: nothing to do.
pub fn teardown_recorded(networks: &Networks, container_id: &str) -> Result<()> {
    let dir = record::dir(networks.run_root(), container_id);
    if !dir.join(RECORD).exists() && !dir.join(OWNER_LOCK).exists() {
        return Ok(());
    }
    let lock = match crate::network::lock_file(&dir.join(OWNER_LOCK), false) {
        Ok(l) => l,
        Err(Error::Io { source, .. })
            if source.raw_os_error() == Some(rustix::io::Errno::WOULDBLOCK.raw_os_error()) =>
        {
            return Err(Error::AttachmentBusy(container_id.to_string()))
        }
        Err(e) => return Err(e),
    };
    let res = attach::teardown_owned(networks, container_id, &[lock.as_raw_fd()]);
    drop(lock);
    res
}

/// What a killed `connect`/`disconnect` left on the live attachment in
/// `dir`: its endpoint is undone and dropped. The networks lock is held.
pub(crate) fn finish_interrupted(networks: &Networks, dir: &Path, held: &OwnedFd) -> Result<()> {
    let Some(mut r) = record::load(dir) else { return Ok(()) };
    if r.removing || r.networks.iter().all(|e| e.state == EndpointState::Up) {
        return Ok(());
    }
    let mut first = Ok(());
    for ep in r.networks.clone().iter().rev().filter(|e| e.state != EndpointState::Up) {
        tracing::info!("undoing the interrupted network change of {} on {}", r.container_id, ep.network);
        match remove_endpoint(networks, &r, ep, &[held.as_raw_fd()]) {
            Ok(()) => r.networks.retain(|e| e.ifname != ep.ifname),
            Err(e) => first = first.and(Err(e)),
        }
    }
    record::save(dir, &r)?;
    first
}

/// DNS entry, CNI DEL, then the container's /etc lines of one endpoint.
fn remove_endpoint(networks: &Networks, r: &AttachmentRecord, ep: &Endpoint, hold: &[RawFd]) -> Result<()> {
    attach::undo_endpoint(networks, r, ep, hold)?;
    if r.files_dir.as_os_str().is_empty() {
        return Ok(());
    }
    if let Some(ip) = ep.ip {
        hosts::remove_host_line(&r.files_dir, ip)?;
    }
    let shared = |gw| r.networks.iter().any(|o| o.ifname != ep.ifname && o.gateway == Some(gw));
    match ep.gateway {
        Some(gw) if !shared(gw) => hosts::remove_nameserver(&r.files_dir, gw),
        _ => Ok(()),
    }
}

/// The record of a container whose owner lives and is not tearing down.
fn load_running(dir: &Path, id: &str) -> Result<AttachmentRecord> {
    let r = record::load(dir).ok_or_else(|| Error::NoSuchContainer(id.to_string()))?;
    if r.removing || !record::owner_alive(dir) {
        return Err(Error::NotRunning(r.container_id));
    }
    Ok(r)
}

fn display_name(r: &AttachmentRecord) -> String {
    r.name.clone().unwrap_or_else(|| short_id(&r.container_id).to_string())
}

/// `eth<N>` with the lowest N no endpoint has.
fn next_ifname(r: &AttachmentRecord) -> String {
    (0..).map(|i| format!("eth{i}")).find(|n| r.networks.iter().all(|e| &e.ifname != n)).unwrap_or_default()
}

/// `--ip`: a host address of the network's subnet, not its gateway.
fn check_static_ip(net: &Network, ip: Ipv4Addr) -> Result<()> {
    let s = net.subnet()?;
    if !s.contains(ip) || ip == s.network() || ip == s.broadcast() || ip == net.gateway {
        return Err(Error::InvalidArgument(format!(
            "invalid --ip {ip}: not a free host address of network {}'s subnet {}",
            net.name, net.subnet
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::netns;

    fn empty_record(nets: &Networks, id: &str) -> AttachmentRecord {
        AttachmentRecord {
            container_id: id.into(),
            name: Some("web".into()),
            netns: netns::path(nets.run_root(), id),
            files_dir: Default::default(),
            hostname: String::new(),
            dns_servers: Vec::new(),
            networks: Vec::new(),
            removing: false,
            pod: false,
        }
    }

    // A cleanup process must not block on (or steal) an attachment a live process owns.
    #[test]
    fn teardown_recorded_is_busy_while_the_owner_lives() {
        let tmp = tempfile::tempdir().unwrap();
        let nets = Networks::new(&tmp.path().join("root"), &tmp.path().join("run"));
        let id = "c".repeat(64);
        let dir = record::dir(nets.run_root(), &id);
        record::save(&dir, &empty_record(&nets, &id)).unwrap();
        let owner = crate::network::lock_file(&dir.join(OWNER_LOCK), true).unwrap();
        assert!(matches!(teardown_recorded(&nets, &id), Err(Error::AttachmentBusy(_))));
        assert!(matches!(connect(&nets, &id, "nonet", &[], None), Err(Error::NetworkNotFound(_))));
        drop(owner);
        teardown_recorded(&nets, &id).unwrap();
        assert!(!dir.exists(), "the record dir is gone");
        teardown_recorded(&nets, &id).unwrap();
        assert!(matches!(disconnect(&nets, &id, "nonet", false), Err(Error::NoSuchContainer(_))));
    }

    #[test]
    fn interfaces_are_numbered_from_the_first_free() {
        let nets = Networks::new(Path::new("/nonexistent"), Path::new("/nonexistent"));
        let mut r = empty_record(&nets, "x");
        assert_eq!(next_ifname(&r), "eth0");
        let ep = |ifname: &str| Endpoint {
            network: String::new(),
            network_id: String::new(),
            ifname: ifname.into(),
            aliases: Vec::new(),
            conflist: serde_json::Value::Null,
            ports: Vec::new(),
            dns: false,
            result: None,
            ip: None,
            mac: None,
            gateway: None,
            state: EndpointState::Up,
        };
        r.networks = vec![ep("eth0"), ep("eth2")];
        assert_eq!(next_ifname(&r), "eth1");
    }
}
