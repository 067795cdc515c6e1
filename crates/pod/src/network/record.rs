//! A container's attachment record, `<run-root>/containers/<id>/network.json`:
//! the container-wide part (name, netns, /etc files) and one [`Endpoint`]
//! per network, in the order joined (the first at `run`, the others by
//! `network connect`). Every change after setup is a read-modify-write under
//! the networks lock, written by temp + rename, so a process that is not the
//! owner (`network connect` while the owner runs the container) never loses
//! another's change, and teardown always reads the record fresh from disk.
//!
//! Records written before networks could be connected (one network, its
//! fields at the top level) are read as a record with one endpoint.

use crate::error::{Error, Result};
use crate::network::{Networks, PortMapping};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub(crate) const RECORD: &str = "network.json";
pub(crate) const OWNER_LOCK: &str = "network.lock";

/// What teardown needs, written before CNI ADD.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachmentRecord {
    pub container_id: String,
    pub name: Option<String>,
    pub netns: PathBuf,
    /// Where its hosts, hostname and resolv.conf are (`--network container:` shares them).
    #[serde(default)]
    pub files_dir: PathBuf,
    #[serde(default)]
    pub hostname: String,
    /// `--dns`: the upstream servers of the container's DNS entries.
    #[serde(default)]
    pub dns_servers: Vec<String>,
    /// Its networks, in the order joined.
    pub networks: Vec<Endpoint>,
    /// Teardown has begun (set under the networks lock): no connect or
    /// disconnect may change the record any more.
    #[serde(default)]
    pub removing: bool,
    /// A pod's attachment: it outlives every process (no monitor holds its
    /// lock) for as long as the pod's record (`files_dir/pod.json`) exists;
    /// `pod rm` tears it down, the sweep only once the pod is gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pod: bool,
}

impl AttachmentRecord {
    /// A pod's attachment whose pod still exists: not dead, lock or not.
    pub(crate) fn kept_by_pod(&self) -> bool {
        self.pod && self.files_dir.join(crate::pod::RECORD).exists()
    }
}

/// One network of a container: its interface in the container's netns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub network_id: String,
    /// The CNI ifName: `eth0` for the first network, then `eth1`, `eth2` …
    pub ifname: String,
    pub aliases: Vec<String>,
    /// The exact list ADD ran (DEL must see the same).
    pub conflist: Value,
    pub ports: Vec<PortMapping>,
    /// An aardvark entry may exist.
    pub dns: bool,
    pub result: Option<Value>,
    pub ip: Option<Ipv4Addr>,
    pub mac: Option<String>,
    /// The network's gateway: the nameserver `connect` added to resolv.conf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub state: EndpointState,
}

/// Where a `connect`/`disconnect` is. Both hold the networks lock from
/// start to end, so a sweep (which takes it) seeing one of the transient
/// states knows that process died, and finishes its work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    #[default]
    Up,
    Connecting,
    Disconnecting,
}

impl AttachmentRecord {
    /// The endpoint on the network with this ID.
    pub fn endpoint(&self, network_id: &str) -> Option<&Endpoint> {
        self.networks.iter().find(|e| e.network_id == network_id)
    }
}

/// The one-network record of before `network connect`.
#[derive(Deserialize)]
struct Legacy {
    container_id: String,
    name: Option<String>,
    aliases: Vec<String>,
    network: String,
    network_id: String,
    netns: PathBuf,
    ifname: String,
    conflist: Value,
    ports: Vec<PortMapping>,
    dns: bool,
    result: Option<Value>,
    ip: Option<Ipv4Addr>,
    mac: Option<String>,
    #[serde(default)]
    files_dir: PathBuf,
    #[serde(default)]
    hostname: String,
}

impl From<Legacy> for AttachmentRecord {
    fn from(l: Legacy) -> Self {
        AttachmentRecord {
            container_id: l.container_id,
            name: l.name,
            netns: l.netns,
            files_dir: l.files_dir,
            hostname: l.hostname,
            dns_servers: Vec::new(),
            networks: vec![Endpoint {
                network: l.network,
                network_id: l.network_id,
                ifname: l.ifname,
                aliases: l.aliases,
                conflist: l.conflist,
                ports: l.ports,
                dns: l.dns,
                result: l.result,
                ip: l.ip,
                mac: l.mac,
                gateway: None,
                state: EndpointState::Up,
            }],
            pod: false,
            removing: false,
        }
    }
}

pub(crate) fn parse(bytes: &[u8]) -> Option<AttachmentRecord> {
    serde_json::from_slice::<AttachmentRecord>(bytes)
        .ok()
        .or_else(|| serde_json::from_slice::<Legacy>(bytes).ok().map(Into::into))
}

pub(crate) fn dir(run_root: &Path, id: &str) -> PathBuf {
    run_root.join("containers").join(id)
}

/// The record in `dir`; `None` when there is none (or it is unreadable).
pub(crate) fn load(dir: &Path) -> Option<AttachmentRecord> {
    parse(&std::fs::read(dir.join(RECORD)).ok()?)
}

pub(crate) fn save(dir: &Path, r: &AttachmentRecord) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(r).map_err(|e| Error::Network(format!("encode attachment: {e}")))?;
    crate::network::write_atomic(&dir.join(RECORD), &bytes)
}

/// Every attachment record under `run_root`, live or not.
pub(crate) fn records(run_root: &Path) -> Vec<AttachmentRecord> {
    std::fs::read_dir(run_root.join("containers"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| load(&e.path()))
        .collect()
}

/// Whether the owner of the record in `dir` lives (holds `network.lock`).
/// Opened, not created: a lock gone means its owner tore down.
pub(crate) fn owner_alive(dir: &Path) -> bool {
    // A shared probe, as every reader's: an exclusive one would make the
    // owner's own try-locks fail for that instant.
    crate::flock::held(&dir.join(OWNER_LOCK))
}

/// The container attached under `run_root` whose ID, name or unique ID
/// prefix is `name_or_id` (Docker's order); its full ID.
pub fn find_attached(run_root: &Path, name_or_id: &str) -> Result<String> {
    let all = records(run_root);
    if let Some(r) = all.iter().find(|r| r.container_id == name_or_id) {
        return Ok(r.container_id.clone());
    }
    if let Some(r) = all.iter().find(|r| r.name.as_deref() == Some(name_or_id)) {
        return Ok(r.container_id.clone());
    }
    let hex = !name_or_id.is_empty() && name_or_id.bytes().all(|b| b.is_ascii_hexdigit());
    let hits: Vec<&AttachmentRecord> = all.iter().filter(|r| hex && r.container_id.starts_with(name_or_id)).collect();
    match hits.as_slice() {
        [r] => Ok(r.container_id.clone()),
        [] => Err(Error::NoSuchContainer(name_or_id.to_string())),
        _ => Err(Error::InvalidArgument(format!("multiple containers match ID prefix {name_or_id}"))),
    }
}

/// Runs `f` on the record of container `id` under the networks lock and
/// saves what it returns `true` for; `None` when there is no record.
pub(crate) fn update(
    networks: &Networks,
    id: &str,
    f: impl FnOnce(&mut AttachmentRecord) -> bool,
) -> Result<Option<AttachmentRecord>> {
    let _lock = networks.lock()?;
    let dir = dir(networks.run_root(), id);
    let Some(mut r) = load(&dir) else { return Ok(None) };
    if f(&mut r) {
        save(&dir, &r)?;
    }
    Ok(Some(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Records written before `network connect` had one network at the top level.
    #[test]
    fn a_legacy_record_reads_as_one_endpoint() {
        let old = serde_json::json!({
            "container_id": "c1", "name": "web", "aliases": ["db"], "network": "n", "network_id": "ab",
            "netns": "/run/x/netns/c1", "ifname": "eth0", "conflist": {"name": "n"}, "ports": [],
            "dns": true, "result": null, "ip": "10.90.0.2", "mac": "aa", "files_dir": "/f", "hostname": "h"
        });
        let r = parse(old.to_string().as_bytes()).unwrap();
        assert_eq!(r.networks.len(), 1);
        assert_eq!(r.networks[0].aliases, ["db"]);
        assert_eq!(r.networks[0].ip, Some(Ipv4Addr::new(10, 90, 0, 2)));
        assert_eq!(r.endpoint("ab").unwrap().ifname, "eth0");
        let again = parse(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(again.networks[0].network, "n");
    }

    #[test]
    fn find_by_id_name_and_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        for (id, name) in [("abc123", "web"), ("abd456", "db")] {
            let r = AttachmentRecord {
                container_id: id.into(),
                name: Some(name.into()),
                netns: PathBuf::new(),
                files_dir: PathBuf::new(),
                hostname: String::new(),
                dns_servers: Vec::new(),
                networks: Vec::new(),
                removing: false,
                pod: false,
            };
            save(&dir(tmp.path(), id), &r).unwrap();
        }
        assert_eq!(find_attached(tmp.path(), "db").unwrap(), "abd456");
        assert_eq!(find_attached(tmp.path(), "abc").unwrap(), "abc123");
        assert_eq!(find_attached(tmp.path(), "abd456").unwrap(), "abd456");
        assert!(matches!(find_attached(tmp.path(), "ab"), Err(Error::InvalidArgument(_))));
        assert!(matches!(find_attached(tmp.path(), "nope"), Err(Error::NoSuchContainer(_))));
    }
}
