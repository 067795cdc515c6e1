//! Pods: containers that share one network namespace (one IP, one port
//! space, `localhost` between them), IPC and UTS namespaces, /etc/hosts,
//! resolv.conf and hostname, and a parent cgroup with the pod's limits.
//!
//! # Design
//!
//! - **Namespaces are pinned, not held by a process.** The net, ipc and uts
//!   namespaces are nsfs bind mounts made at `pod create` (a bridge pod's
//!   netns is its network attachment's, `<run-root>/netns/<pod-id>`; the
//!   others live under `<run-root>/pods/<id>/ns/`). A pinned namespace has
//!   no process to die: a `kill -9` of the infra process, of a container or
//!   of any `wharf` never takes the pod's IP away, and a container's restart
//!   joins the same netns again (the pod IP is stable). CNI ADD runs once,
//!   for the pod, with its `-p` ports; the attachment record is marked
//!   `pod` so that the network sweep keeps it for as long as `pod.json`
//!   exists, though no process holds its lock.
//! - **The infra process** (`wharf-infra`, a tiny std+libc binary of this
//!   crate; no image) is what `ps` shows for the pod and what `--share pid`
//!   needs: a pid namespace cannot be pinned usefully (once its PID 1 dies
//!   no process can join it), so the infra is PID 1 of the pod's pid
//!   namespace and reaps its zombies. It joins the pinned namespaces and
//!   the pod cgroup (`/wharf/pod-<id>/infra`), and holds `infra.lock`: the
//!   lock is the truth about whether it lives, `infra.pid` only says which
//!   process to signal. `--share pid` without an infra is refused, as
//!   podman does.
//! - **Records as containers keep them** (see `container::record`):
//!   `<root>/pods/<id>/pod.json` written once the pod exists whole (write +
//!   rename), a `lock` flocked by whoever changes the pod (create, start,
//!   stop, rm: they take turns), names as `<root>/pod-names/<name>`
//!   symlinks claimed with symlink(2). A dir without `pod.json` (a create
//!   killed half way) or with `removing` (an rm killed half way) and a free
//!   lock is finished off by the next pod command's sweep, from paths
//!   derived from the ID alone. The status is derived from the members'
//!   locks and processes, never stored.
//! - **The pod cgroup** `/wharf/pod-<id>` is a parent: `--cpus`/`--memory`
//!   are written there (runtime's cgroup code: v1, v2 and hybrid are
//!   detected, not assumed), each container's cgroup is
//!   `/wharf/pod-<id>/<ctr-id>` with its own limits beneath. It is made
//!   again (idempotently) before any member starts, since a container's
//!   cleanup may remove empty parents. A pod given a `cgroup_parent` (the
//!   kubelet's `/kubepods/…/pod<uid>`) uses it instead: members at
//!   `<parent>/<ctr-id>`, the infra at `<parent>/<pod-id>`; the limits are
//!   written, and the parent removed with the pod, only if the pod made it.
//! - **The OCI runtime** of the members is wharf-runtime, or the pod's
//!   `runtime` binary (runc's CLI: runc, crun; `container::oci`).
//!
//! - **Published ports are held by the infra** (see `infra`): `-p` needs
//!   it, as podman's infra container (its conmon holds them).
//!
//! Files: `record` (pod.json, names, status), `setup` (namespaces,
//! network, cgroup, and the spec of a member), `infra` (the infra
//! process), `lifecycle` (start/stop/kill/pause/rm/prune/sweep), `view`
//! (ls/inspect JSON, top, stats, logs), `usage` (the pod cgroup's and
//! network namespace's figures, for the CRI's sandbox stats).

mod infra;
mod lifecycle;
mod record;
mod setup;
mod usage;
pub mod view;

pub(crate) use record::RECORD;
pub use record::{Pod, PodStatus};
pub(crate) use setup::{member_spec, prepare_member};

use crate::container::{Container, Containers};
use crate::error::{Error, Result};
use crate::run::NetworkMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which namespaces the pod's containers share (`--share`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
    pub pid: bool,
}

impl Default for Share {
    /// podman's default: net, ipc and uts (not pid).
    fn default() -> Self {
        Share { net: true, ipc: true, uts: true, pid: false }
    }
}

impl Share {
    /// `net,ipc,uts[,pid]` (podman's `--share`; `none` or empty: nothing).
    pub fn parse(s: &str) -> Result<Share> {
        let mut out = Share { net: false, ipc: false, uts: false, pid: false };
        for w in s.split(',').map(str::trim).filter(|w| !w.is_empty() && *w != "none") {
            match w {
                "net" => out.net = true,
                "ipc" => out.ipc = true,
                "uts" => out.uts = true,
                "pid" => out.pid = true,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "--share {other:?}: only net, ipc, uts and pid can be shared"
                    )))
                }
            }
        }
        Ok(out)
    }

    /// `net,ipc,uts` as `--share` takes it.
    pub fn to_list(self) -> String {
        let all = [("net", self.net), ("ipc", self.ipc), ("uts", self.uts), ("pid", self.pid)];
        all.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect::<Vec<_>>().join(",")
    }
}

/// What `pod create` is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodOptions {
    pub name: Option<String>,
    /// `-p [IP:][HOST:]CTR[/PROTO]`, published at the pod.
    pub publish: Vec<String>,
    /// None (only `lo`), Host, or Bridge(network name; `bridge` is the default network).
    pub network: NetworkMode,
    pub hostname: Option<String>,
    pub add_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub share: Share,
    pub cpus: Option<f64>,
    /// Bytes.
    pub memory: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Run the infra process (default true).
    pub infra: bool,
    /// With `network: None`: CNI ADD from the kubelet's configuration into
    /// the pod's netns (`wharf cri`).
    pub cni: Option<crate::network::external::ExternalCni>,
    /// The pod cgroup, given by its maker (the kubelet's `cgroup_parent`,
    /// e.g. `/kubepods/burstable/pod<uid>`): the members' parent instead of
    /// `/wharf/pod-<id>`; removed with the pod only if the pod made it.
    pub cgroup_parent: Option<String>,
    /// The OCI runtime binary of every member (a CRI runtime handler's:
    /// runc, crun); None: wharf-runtime.
    pub runtime: Option<std::path::PathBuf>,
}

impl Default for PodOptions {
    fn default() -> Self {
        PodOptions {
            name: None,
            publish: Vec::new(),
            network: NetworkMode::Bridge("bridge".into()),
            hostname: None,
            add_hosts: Vec::new(),
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
            share: Share::default(),
            cpus: None,
            memory: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            infra: true,
            cni: None,
            cgroup_parent: None,
            runtime: None,
        }
    }
}

/// The pods of one store (`--root`) and run root (`--run-root`).
#[derive(Debug, Clone)]
pub struct Pods {
    root: PathBuf,
    run_root: PathBuf,
}

impl Pods {
    pub fn new(root: &Path, run_root: &Path) -> Self {
        Pods { root: root.to_path_buf(), run_root: run_root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn run_root(&self) -> &Path {
        &self.run_root
    }

    pub(crate) fn containers_api(&self) -> Containers {
        Containers::new(&self.root, &self.run_root)
    }

    pub(crate) fn pods_dir(&self) -> PathBuf {
        record::pods_dir(&self.root)
    }

    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.pods_dir().join(id)
    }

    /// `<run-root>/pods/<id>`: the pinned namespaces.
    pub(crate) fn run_dir(&self, id: &str) -> PathBuf {
        self.run_root.join("pods").join(id)
    }

    /// Every pod, newest first.
    pub fn list(&self) -> Result<Vec<Pod>> {
        let rd = match std::fs::read_dir(self.pods_dir()) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list pods", e)),
        };
        let cs = self.containers_api().list()?;
        let mut out: Vec<Pod> = rd
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| record::load(&e.path(), &cs).ok())
            .collect();
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// A pod by full ID, name, or unique ID prefix.
    pub fn get(&self, name_or_id: &str) -> Result<Pod> {
        let id = self.resolve(name_or_id)?;
        let cs = self.containers_api().list()?;
        record::load(&self.dir(&id), &cs)
    }

    /// The ID of a pod by ID, name or unique ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<String> {
        let s = name_or_id;
        let missing = || Error::NoSuchPod(name_or_id.to_string());
        if s.is_empty() || s.contains('/') || s.starts_with('.') {
            return Err(missing());
        }
        let exists = |id: &str| self.dir(id).join(RECORD).exists();
        if s.len() == 64 && exists(s) {
            return Ok(s.to_string());
        }
        if let Ok(id) = std::fs::read_link(record::name_link(&self.root, s)) {
            let id = id.to_string_lossy().into_owned();
            if exists(&id) {
                return Ok(id);
            }
        }
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(missing());
        }
        let rd = std::fs::read_dir(self.pods_dir()).map_err(|_| missing())?;
        let hits: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(s) && exists(n))
            .collect();
        match hits.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(missing()),
            _ => Err(Error::InvalidArgument(format!("more than one pod ID starts with {s}"))),
        }
    }

    /// The pod's containers in creation (= start) order.
    pub fn containers(&self, name_or_id: &str) -> Result<Vec<Container>> {
        let id = self.resolve(name_or_id)?;
        Ok(members(&self.containers_api().list()?, &id))
    }
}

/// The containers of pod `id` among `all`, oldest first.
pub(crate) fn members(all: &[Container], id: &str) -> Vec<Container> {
    let mut out: Vec<Container> = all.iter().filter(|c| c.record.options.pod.as_deref() == Some(id)).cloned().collect();
    out.sort_by(|a, b| a.record.created.cmp(&b.record.created));
    out
}

/// A container's options with `pod` resolved to the pod's ID (`new:NAME`
/// first creates the pod, with the container's network and `-p`); the
/// flags the pod owns are refused. The ID of a pod made here, for the
/// caller to remove if the container's creation fails.
pub(crate) fn join_options(cs: &Containers, o: &crate::RunOptions) -> Result<(crate::RunOptions, Option<String>)> {
    let Some(want) = &o.pod else { return Ok((o.clone(), None)) };
    let pods = Pods::new(cs.root(), cs.run_root());
    let mut o = o.clone();
    let mut made = None;
    let id = match want.strip_prefix("new:") {
        Some(name) => {
            // As asked (`--network none`: a pod with no network, as podman's).
            let network = std::mem::take(&mut o.network);
            let po = PodOptions {
                name: Some(name.to_string()),
                publish: std::mem::take(&mut o.publish),
                network,
                ..Default::default()
            };
            let p = pods.create(&po)?;
            made = Some(p.id.clone());
            p.id
        }
        None => pods.resolve(want)?,
    };
    let refused = [
        ("--network", o.network != NetworkMode::None),
        ("-p/--publish", !o.publish.is_empty() || o.publish_all),
        ("--hostname", o.hostname.is_some()),
        ("--add-host", !o.add_hosts.is_empty()),
        ("--dns", !o.dns.is_empty()),
        ("--dns-search", !o.dns_search.is_empty()),
        ("--dns-option", !o.dns_options.is_empty()),
        ("--network-alias", !o.network_aliases.is_empty()),
    ];
    if let Some((flag, _)) = refused.iter().find(|(_, set)| *set) {
        if let Some(p) = &made {
            let _ = pods.rm(p, true);
        }
        return Err(Error::InvalidArgument(format!(
            "{flag} cannot be set for a container in a pod: the pod owns its network, hostname and DNS (set them at `pod create`)"
        )));
    }
    if o.runtime.is_none() {
        o.runtime = record::load_record(&pods.dir(&id)).ok().and_then(|r| r.options.runtime);
    }
    o.pod = Some(id);
    Ok((o, made))
}

/// `--memory 512m` → bytes (the one size parser `run -m` uses).
pub fn parse_size(s: &str) -> Result<i64> {
    crate::spec::parse_bytes(s)
}
