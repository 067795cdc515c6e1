//! # Layout
//!
//! Container networks, Docker's model on the CNI protocol and Debian's
//! `containernetworking-plugins`. No CLI logic here.
//!
//! - this file: the [`Network`] record and the [`Networks`] API (create, ls,
//!   inspect, rm, prune). One JSON file per network, `<root>/networks/<name>.json`
//!   (temp + fsync + rename), mutations under an flock on `<root>/networks/.lock`;
//!   the conflist beside it is generated from the record.
//! - `subnet`: IPv4 CIDR arithmetic and the host's routed subnets.
//! - `link`: the network's bridge on the host, made at `network create` (so
//!   the subnet is taken on the host at once) and deleted by `network rm`.
//! - `conflist`: bridge + host-local IPAM + portmap, from the record.
//! - `firewall`: the network's masquerade and isolation rules, made with its
//!   bridge and removed with it (and what the CNI firewall plugin left).
//! - `cni`: running the plugins per the CNI 1.0 spec (ADD chained through
//!   prevResult, DEL in reverse).
//! - `netns`: named network namespaces, bind-mounted nsfs files.
//! - `record`: a container's attachment record, one endpoint per network,
//!   changed under the networks lock by temp + rename; [`find_attached`].
//! - `attach`: one container's attachment, setup and teardown as mirror
//!   images, recorded before CNI ADD so that teardown works after a crash;
//!   [`sweep_orphans`] tears down what a killed process left.
//! - `connect`: [`connect`]/[`disconnect`] a running container from another
//!   process than its owner, and [`teardown_recorded`].
//! - `ports`: `-p`/`-P` parsing and host port reservation.
//! - `dns`: Debian's `aardvark-dns` (podman's), one per store, on each
//!   user network's gateway.
//! - `hosts`: `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` per container.
//!
//! Host resources (bridge names, subnets) are chosen under a host-wide flock,
//! `/run/lock/wharf-network.lock`, so that two stores never pick the same.

pub(crate) mod attach;
mod cni;
mod conflist;
mod connect;
mod dns;
pub mod external;
mod firewall;
mod hosts;
mod link;
pub(crate) mod netns;
pub(crate) mod ports;
pub(crate) mod record;
mod subnet;

pub use attach::{dead_attachments, joined, sweep_orphans, AttachRequest, Attachment, Joined};
pub use connect::{connect, disconnect, teardown_recorded};
pub use ports::{parse_publish, PortMapping};
pub use record::{find_attached, AttachmentRecord, Endpoint, EndpointState};
pub use subnet::Subnet;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// The default network's name; Docker's `bridge` is an alias for it.
pub const DEFAULT_NETWORK: &str = "wharf";
pub(crate) const HOST_LOCK: &str = "/run/lock/wharf-network.lock";
/// The pool new subnets come from, one /24 each: clear of podman's
/// 10.88.0.0/16 and 10.89.x.0/24 and Docker's 172.17.0.0/16.
const POOL_FIRST: [u8; 2] = [10, 90];

/// A network as recorded in `<root>/networks/<name>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: String,
    /// The host bridge, `wharf<N>`.
    pub bridge: String,
    pub subnet: String,
    pub gateway: Ipv4Addr,
    /// No masquerade and no default route out.
    pub internal: bool,
    /// Containers find each other by name through aardvark-dns (user networks).
    pub dns_enabled: bool,
    /// Where aardvark-dns forwards names it does not know (default: the host's resolvers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<std::net::IpAddr>,
    pub created: String,
}

impl Network {
    pub fn subnet(&self) -> Result<Subnet> {
        Subnet::parse(&self.subnet)
    }
}

/// `wharf network create` options.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    /// Upstream DNS servers for the network's aardvark-dns.
    pub dns: Vec<String>,
    /// Only `bridge`, the default.
    pub driver: Option<String>,
}

/// A store's networks: records under `<root>`, live state under `<run-root>`.
#[derive(Debug, Clone)]
pub struct Networks {
    root: PathBuf,
    run_root: PathBuf,
}

impl Networks {
    pub fn new(root: &Path, run_root: &Path) -> Self {
        Networks { root: root.to_path_buf(), run_root: run_root.to_path_buf() }
    }

    fn dir(&self) -> PathBuf {
        self.root.join("networks")
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}.json"))
    }

    /// host-local's reservations: `<root>/cni/ipam/<network>/<ip>`.
    pub(crate) fn ipam_dir(&self) -> PathBuf {
        self.root.join("cni").join("ipam")
    }

    pub(crate) fn run_root(&self) -> &Path {
        &self.run_root
    }

    pub(crate) fn lock(&self) -> Result<OwnedFd> {
        lock_file(&self.dir().join(".lock"), true)
    }

    /// Creates network `name`, its bridge and its conflist.
    pub fn create(&self, name: &str, o: &CreateOptions) -> Result<Network> {
        validate_name(name)?;
        if let Some(d) = o.driver.as_deref().filter(|d| *d != "bridge") {
            return Err(Error::InvalidArgument(format!("unknown driver {d:?}: only bridge")));
        }
        let _lock = self.lock()?;
        self.create_locked(name, o, true)
    }

    fn create_locked(&self, name: &str, o: &CreateOptions, dns_enabled: bool) -> Result<Network> {
        if self.record_path(name).exists() {
            return Err(Error::Network(format!("network with name {name} already exists")));
        }
        let others = self.list()?;
        let _host = lock_file(Path::new(HOST_LOCK), true)?;
        let routes = subnet::host_routes();
        let subnet = match &o.subnet {
            Some(s) => {
                let s = Subnet::parse(s)?;
                check_free(&s, &others, &routes)?;
                s
            }
            None => pick_subnet(&others, &routes)?,
        };
        let gateway = match &o.gateway {
            Some(g) => parse_gateway(g, &subnet)?,
            None => subnet.first_host(),
        };
        let net = Network {
            name: name.to_string(),
            id: crate::run::new_id(),
            driver: "bridge".into(),
            bridge: pick_bridge(&others)?,
            subnet: subnet.to_string(),
            gateway,
            internal: o.internal,
            dns_enabled,
            dns_servers: o
                .dns
                .iter()
                .map(|d| {
                    d.parse().map_err(|_| Error::InvalidArgument(format!("invalid --dns {d:?}: not an IP address")))
                })
                .collect::<Result<_>>()?,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        // Record first: a kill -9 after it leaves a network whose bridge is
        // made again on first use, never a bridge no record names.
        self.write_record(&net)?;
        if let Err(e) = link::create_bridge(&net.bridge, net.gateway, &subnet).and_then(|()| {
            firewall::install(&net).inspect_err(|_| {
                let _ = link::delete(&net.bridge);
            })
        }) {
            let _ = remove_file(&self.dir().join(format!("{}.conflist", net.name)));
            let _ = remove_file(&self.record_path(&net.name));
            return Err(e);
        }
        Ok(net)
    }

    fn write_record(&self, net: &Network) -> Result<()> {
        let dir = self.dir();
        let json = serde_json::to_vec_pretty(net).map_err(|e| Error::Network(format!("encode {}: {e}", net.name)))?;
        let list = conflist::generate(net, &self.ipam_dir(), true)?;
        let list = serde_json::to_vec_pretty(&list).map_err(|e| Error::Network(format!("encode conflist: {e}")))?;
        write_atomic(&dir.join(format!("{}.conflist", net.name)), &list)?;
        write_atomic(&self.record_path(&net.name), &json)
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<Network>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(self.dir()) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(format!("read {}", self.dir().display()), e)),
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                out.push(read_record(&p)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A network by name, `bridge` (the default's alias), or ID prefix.
    pub fn get(&self, name_or_id: &str) -> Result<Network> {
        let name = if name_or_id == "bridge" { DEFAULT_NETWORK } else { name_or_id };
        let p = self.record_path(name);
        if validate_name(name).is_ok() && p.exists() {
            return read_record(&p);
        }
        let hits: Vec<Network> = if name_or_id.len() >= 3 && name_or_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            self.list()?.into_iter().filter(|n| n.id.starts_with(name_or_id)).collect()
        } else {
            Vec::new()
        };
        match hits.len() {
            1 => Ok(hits.into_iter().next().unwrap_or_else(|| unreachable!())),
            0 => Err(Error::NetworkNotFound(name_or_id.to_string())),
            _ => Err(Error::Network(format!("network ID {name_or_id} is ambiguous"))),
        }
    }

    /// The network a container joins: `bridge`/`wharf` made on first use.
    pub fn get_for_run(&self, name: &str) -> Result<Network> {
        match self.get(name) {
            Err(Error::NetworkNotFound(_)) if name == "bridge" || name == DEFAULT_NETWORK => {
                let _lock = self.lock()?;
                match self.get(DEFAULT_NETWORK) {
                    Ok(n) => Ok(n),
                    Err(_) => self.create_locked(DEFAULT_NETWORK, &CreateOptions::default(), false),
                }
            }
            r => r,
        }
    }

    /// The attachments of live (or not yet swept) containers to `net`.
    pub fn containers(&self, net: &Network) -> Vec<AttachmentRecord> {
        record::records(&self.run_root).into_iter().filter(|r| r.endpoint(&net.id).is_some()).collect()
    }

    /// `network inspect`: Docker's JSON shape, with the attached containers.
    pub fn inspect(&self, n: &Network) -> serde_json::Value {
        let mut containers = serde_json::Map::new();
        for r in self.containers(n) {
            let Some(e) = r.endpoint(&n.id) else { continue };
            containers.insert(
                r.container_id.clone(),
                serde_json::json!({
                    "Name": r.name.clone().unwrap_or_default(),
                    "Aliases": e.aliases,
                    "IPv4Address": e.ip.map(|ip| format!("{ip}/{}", n.subnet.rsplit('/').next().unwrap_or("24"))),
                    "MacAddress": e.mac,
                    "Ports": e.ports,
                }),
            );
        }
        serde_json::json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": n.driver,
            "EnableIPv6": false,
            "IPAM": {"Driver": "host-local", "Config": [{"Subnet": n.subnet, "Gateway": n.gateway}]},
            "Internal": n.internal,
            "DNSEnabled": n.dns_enabled,
            "DNSServers": n.dns_servers,
            "Containers": containers,
            "Options": {"com.docker.network.bridge.name": n.bridge},
            "Labels": {},
        })
    }

    /// Removes a network no container uses: its bridge, IPAM state, DNS
    /// config and records. The default network too (it is made again on use).
    pub fn remove(&self, name_or_id: &str) -> Result<Network> {
        let lock = self.lock()?;
        attach::sweep_locked_with(self, &lock, true);
        let net = self.get(name_or_id)?;
        let users = self.containers(&net);
        if !users.is_empty() {
            let ids: Vec<&str> = users.iter().map(|r| attach::short_id(&r.container_id)).collect();
            return Err(Error::Network(format!(
                "network {} is in use by container(s) {}: stop them first",
                net.name,
                ids.join(", ")
            )));
        }
        self.remove_locked(&net)?;
        Ok(net)
    }

    /// Removes unused `net`; the networks lock is held.
    fn remove_locked(&self, net: &Network) -> Result<()> {
        {
            // Under the host lock: once the bridge is gone its name may be taken again.
            let _host = lock_file(Path::new(HOST_LOCK), true)?;
            firewall::remove(net)?;
            firewall::remove_bridge_rules(&net.bridge)?;
            link::delete(&net.bridge)?;
        }
        dns::Aardvark::new(&self.run_root).remove_network(&net.name)?;
        remove_all(&self.ipam_dir().join(&net.name))?;
        remove_file(&self.dir().join(format!("{}.conflist", net.name)))?;
        remove_file(&self.record_path(&net.name))
    }

    /// Tears down what killed processes left, then removes every user
    /// network no container uses (not the default, as Docker). Returns the
    /// names removed. Networks in use are skipped; a network that cannot be
    /// removed does not stop the others: the errors are returned after.
    pub fn prune(&self) -> Result<Vec<String>> {
        // One lock for all: no run can join a network between its check and its removal.
        let lock = self.lock()?;
        attach::sweep_locked_with(self, &lock, true);
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for n in self.list()? {
            if n.name == DEFAULT_NETWORK || !self.containers(&n).is_empty() {
                continue;
            }
            match self.remove_locked(&n) {
                Ok(()) => out.push(n.name),
                Err(e) => {
                    tracing::warn!("network prune: {}: {e}", n.name);
                    errors.push(format!("{}: {e}", n.name));
                }
            }
        }
        if !errors.is_empty() {
            let done = if out.is_empty() { String::new() } else { format!(" (removed: {})", out.join(", ")) };
            return Err(Error::Network(format!("cannot remove network(s) {}{done}", errors.join("; "))));
        }
        Ok(out)
    }
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; and the mode names are taken.
fn validate_name(name: &str) -> Result<()> {
    let ok = name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        return Err(Error::InvalidArgument(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    if ["none", "host", "bridge", "container", "default"].contains(&name) {
        return Err(Error::InvalidArgument(format!("network name {name:?} is reserved")));
    }
    Ok(())
}

fn check_free(s: &Subnet, others: &[Network], routes: &[Subnet]) -> Result<()> {
    for n in others {
        if n.subnet().is_ok_and(|o| o.overlaps(s)) {
            return Err(Error::Network(format!("subnet {s} overlaps with network {}'s {}", n.name, n.subnet)));
        }
    }
    if let Some(r) = routes.iter().find(|r| r.overlaps(s)) {
        return Err(Error::Network(format!("subnet {s} overlaps with {r}, already routed on this host")));
    }
    Ok(())
}

fn pick_subnet(others: &[Network], routes: &[Subnet]) -> Result<Subnet> {
    (0..=255u8)
        .map(|i| Subnet { addr: Ipv4Addr::new(POOL_FIRST[0], POOL_FIRST[1], i, 0), prefix: 24 })
        .find(|s| check_free(s, others, routes).is_ok())
        .ok_or_else(|| Error::Network("no free subnet left in 10.90.0.0/16: remove networks or pass --subnet".into()))
}

fn pick_bridge(others: &[Network]) -> Result<String> {
    (0..10_000)
        .map(|i| format!("wharf{i}"))
        .find(|b| !link::exists(b) && !others.iter().any(|n| &n.bridge == b))
        .ok_or_else(|| Error::Network("no free bridge name".into()))
}

fn parse_gateway(g: &str, s: &Subnet) -> Result<Ipv4Addr> {
    let ip: Ipv4Addr =
        g.parse().map_err(|_| Error::InvalidArgument(format!("invalid gateway {g:?}: not an IPv4 address")))?;
    if !s.contains(ip) || ip == s.network() || ip == s.broadcast() {
        return Err(Error::InvalidArgument(format!("gateway {ip} is not a host address of subnet {s}")));
    }
    Ok(ip)
}

fn read_record(p: &Path) -> Result<Network> {
    let bytes = std::fs::read(p).map_err(|e| Error::io(format!("read {}", p.display()), e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Network(format!("{} is damaged: {e}", p.display())))
}

/// Opens (creating) and flocks `path`, exclusive and blocking, or `None`-less
/// non-blocking when `wait` is false (then EWOULDBLOCK is an error).
pub(crate) fn lock_file(path: &Path, wait: bool) -> Result<OwnedFd> {
    use rustix::fs::{flock, FlockOperation, Mode, OFlags};
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io(format!("create {}", d.display()), e))?;
    }
    let fd = rustix::fs::open(path, OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC, Mode::from_raw_mode(0o600))
        .map_err(|e| Error::io(format!("open {}", path.display()), e.into()))?;
    let err = |e: std::io::Error| Error::io(format!("lock {}", path.display()), e);
    if wait {
        flock(&fd, FlockOperation::LockExclusive).map_err(|e| err(e.into()))?;
    } else if !crate::flock::try_exclusive(&fd, path).map_err(err)? {
        // An owner holds it (readers' passing shared locks are waited out).
        return Err(err(rustix::io::Errno::WOULDBLOCK.into()));
    }
    Ok(fd)
}

/// Writes `dest` by temp file, fsync and rename.
pub(crate) fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        dest.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e| Error::io(format!("write {}", dest.display()), e))
}

pub(crate) fn remove_file(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(format!("remove {}", p.display()), e)),
        _ => Ok(()),
    }
}

fn remove_all(p: &Path) -> Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(format!("remove {}", p.display()), e)),
        _ => Ok(()),
    }
}
