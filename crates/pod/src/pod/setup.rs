//! What a pod is made of, and how a member joins it.
//!
//! `create` makes, in order: the record dir (owner lock held) → the name →
//! the pinned ipc/uts namespaces (hostname set inside) → the network (a
//! bridge network's attachment: netns, CNI ADD with the pod's ports, DNS
//! entry, /etc files in the pod dir; `none`: a netns with `lo` up; `host`:
//! nothing) → the pod cgroup with its limits → `pod.json`. A failure undoes
//! it all through [`teardown`], which works from the ID alone, so the
//! sweep can run it too for a create that was killed.

use super::record::{self, PodRecord};
use super::{PodOptions, Pods};
use crate::error::{Error, Result};
use crate::network::{self, AttachRequest, Attachment};
use crate::run::NetworkMode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The pod cgroup (the members' parent).
pub(crate) fn cgroup_parent(id: &str) -> String {
    format!("/wharf/pod-{id}")
}

/// The infra process's own cgroup, beneath the pod's (cgroup v2 allows no
/// process in a cgroup whose children have controllers): `infra`, or the
/// pod's id beneath a given parent (a kubelet's is shared by the attempts
/// of a pod, as containerd's sandbox cgroup is named by its id).
pub(crate) fn infra_cgroup(rec: &PodRecord) -> String {
    match rec.options.cgroup_parent {
        Some(_) => format!("{}/{}", rec.cgroup_parent, rec.id),
        None => format!("{}/infra", rec.cgroup_parent),
    }
}

fn check(o: &PodOptions) -> Result<()> {
    if o.share.pid && !o.infra {
        return Err(Error::InvalidArgument(
            "--share pid needs the infra process (it is PID 1 of the shared pid namespace): drop --infra=false".into(),
        ));
    }
    if !o.publish.is_empty() && !o.infra {
        return Err(Error::InvalidArgument(
            "-p needs the infra process (it holds the published host ports): drop --infra=false".into(),
        ));
    }
    let bridge = matches!(o.network, NetworkMode::Bridge(_));
    if !o.publish.is_empty() && (!bridge || !o.share.net) {
        return Err(Error::InvalidArgument("-p needs a pod on a bridge network that shares net".into()));
    }
    if let NetworkMode::Container(_) = o.network {
        return Err(Error::InvalidArgument("--network container:NAME is not supported for pods".into()));
    }
    if o.cpus.is_some_and(|c| c.is_nan() || c <= 0.0) {
        return Err(Error::InvalidArgument("--cpus must be positive".into()));
    }
    if let Some(p) = &o.cgroup_parent {
        let path = Path::new(p);
        let ok = path.is_absolute()
            && path.components().count() > 1
            && !path.components().any(|c| matches!(c, std::path::Component::ParentDir));
        if !ok {
            return Err(Error::InvalidArgument(format!("cgroup parent {p:?}: not an absolute cgroup path")));
        }
    }
    if o.memory.is_some_and(|m| m < 6 << 20) {
        return Err(Error::InvalidArgument("--memory: the minimum is 6 MiB".into()));
    }
    for p in &o.publish {
        network::parse_publish(p)?;
    }
    if let Some(h) = &o.hostname {
        let ok = !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
        if !ok {
            return Err(Error::InvalidArgument(format!("invalid --hostname {h:?}")));
        }
    }
    Ok(())
}

impl Pods {
    /// `pod create`: namespaces, network, cgroup and record; nothing runs
    /// until `start` (or a member's start).
    pub fn create(&self, o: &PodOptions) -> Result<super::Pod> {
        self.create_with(o, false)
    }

    /// [`Self::create`] with the infra process started while a kubelet's
    /// CNI network is added (CRI's RunPodSandbox: the two take about as
    /// long); a failure stops it and undoes the rest.
    pub fn create_started(&self, o: &PodOptions) -> Result<super::Pod> {
        self.create_with(o, true)
    }

    fn create_with(&self, o: &PodOptions, start: bool) -> Result<super::Pod> {
        self.sweep();
        check(o)?;
        let id = crate::run::new_id();
        let owner = wharf_image::OwnedDir::create(&self.pods_dir(), &id)?;
        let mut claimed = None;
        let made = (|| {
            let name = self.claim_name(o.name.as_deref(), &id)?;
            claimed = Some(name.clone());
            let rec = self.make(o, &id, &name, owner.path(), start)?;
            record::save(owner.path(), &rec)
        })();
        if let Err(e) = made {
            if start {
                let grace = std::time::Duration::from_secs(10);
                if let Err(t) = super::infra::stop(owner.path(), libc::SIGKILL, grace) {
                    tracing::warn!("undoing pod {id}: {t}");
                }
            }
            if let Some(name) = &claimed {
                record::release_name(&self.root, name, &id);
            }
            if let Err(t) = teardown(self, &id) {
                tracing::warn!("undoing pod {id}: {t}");
            }
            let _ = std::fs::remove_dir_all(self.dir(&id));
            return Err(e);
        }
        drop(owner);
        self.get(&id)
    }

    fn claim_name(&self, name: Option<&str>, id: &str) -> Result<String> {
        crate::names::PODS.claim_or_random(&self.root, name, id)
    }

    /// Everything but the record file. The CNI ADD of a kubelet's network
    /// (plugins taking tens of ms) runs in a thread of its own, into the
    /// netns made first, while the rest is made (and, with `start`, the
    /// infra started).
    fn make(&self, o: &PodOptions, id: &str, name: &str, dir: &Path, start: bool) -> Result<PodRecord> {
        let hostname = o.hostname.clone().unwrap_or_else(|| name.chars().take(63).collect());
        let (run, net) = (self.run_dir(id), self.run_dir(id).join("ns").join("net"));
        let own_netns = o.share.net && o.network == NetworkMode::None;
        if own_netns {
            crate::network::netns::create(&net)?;
        }
        let etc = network::external::EtcFiles {
            hostname: &hostname,
            add_hosts: &o.add_hosts,
            dns: &o.dns,
            dns_search: &o.dns_search,
            dns_options: &o.dns_options,
        };
        let external = o.cni.as_ref().filter(|_| own_netns);
        let (run, net, etc) = (&run, &net, &etc);
        std::thread::scope(|s| {
            let added = external.map(|cni| s.spawn(move || network::external::add(cni, id, net, run, dir, etc)));
            let rec = self.make_rest(o, id, name, &hostname, dir).and_then(|rec| {
                if start && o.infra {
                    super::infra::start(self, &rec)?;
                }
                Ok(rec)
            });
            let added =
                added.map(|t| t.join().unwrap_or_else(|_| Err(Error::Network("CNI ADD: thread panicked".into()))));
            let mut rec = rec?;
            if let Some(added) = added {
                let (addr, files) = added?;
                (rec.ip, rec.files) = (Some(addr.to_string()), files);
            }
            Ok(rec)
        })
    }

    /// [`Self::make`] but an external CNI ADD: pinned ipc/uts, /dev/shm, a
    /// bridge network, the cgroup.
    fn make_rest(&self, o: &PodOptions, id: &str, name: &str, hostname: &str, dir: &Path) -> Result<PodRecord> {
        let nsdir = self.run_dir(id).join("ns");
        let mut namespaces = Vec::new();
        if o.share.ipc || o.share.uts {
            pin(&nsdir, o.share.ipc, o.share.uts, hostname)?;
            if o.share.ipc {
                namespaces.push(("ipc".to_string(), nsdir.join("ipc")));
            }
            if o.share.uts {
                namespaces.push(("uts".to_string(), nsdir.join("uts")));
            }
        }
        let shm = if o.share.ipc { Some(mount_shm(&self.run_dir(id))?) } else { None };
        let (mut files, mut ip) = (Vec::new(), None);
        if o.share.net {
            match &o.network {
                NetworkMode::Bridge(net) => {
                    let att = self.attach(o, id, name, hostname, net, dir)?;
                    ip = att.record().networks.first().and_then(|e| e.ip).map(|i| i.to_string());
                    files = att.mounts().to_vec();
                    namespaces.push(("network".to_string(), att.netns().to_path_buf()));
                    // The record marks it a pod's: the sweep keeps it while pod.json exists.
                    att.forget();
                }
                // Made by `make` (an external CNI network is added there too).
                NetworkMode::None => namespaces.push(("network".to_string(), nsdir.join("net"))),
                _ => {} // host: the members drop their network namespace
            }
        }
        let rec = PodRecord {
            id: id.to_string(),
            name: name.to_string(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            options: PodOptions { name: Some(name.to_string()), ..o.clone() },
            hostname: hostname.to_string(),
            cgroup_parent: o.cgroup_parent.clone().unwrap_or_else(|| cgroup_parent(id)),
            cgroup_made: o
                .cgroup_parent
                .as_ref()
                .is_some_and(|p| wharf_runtime::cgroups::existing(Path::new(p)).is_none()),
            namespaces,
            files,
            ip,
            shm,
        };
        ensure_cgroup(&rec)?;
        Ok(rec)
    }

    fn attach(&self, o: &PodOptions, id: &str, name: &str, host: &str, net: &str, dir: &Path) -> Result<Attachment> {
        let publish = o.publish.iter().map(|p| network::parse_publish(p)).collect::<Result<Vec<_>>>()?;
        let req = AttachRequest {
            container_id: id.to_string(),
            network: net.to_string(),
            name: Some(name.to_string()),
            aliases: Vec::new(),
            hostname: host.to_string(),
            publish,
            expose: Vec::new(),
            add_hosts: o.add_hosts.clone(),
            dns: o.dns.clone(),
            dns_search: o.dns_search.clone(),
            dns_options: o.dns_options.clone(),
            files_dir: dir.to_path_buf(),
            pod: true,
        };
        Attachment::setup(&network::Networks::new(&self.root, &self.run_root), &req)
    }
}

/// New ipc and/or uts namespaces (hostname set in the uts one), pinned as
/// `<nsdir>/ipc` and `<nsdir>/uts`.
fn pin(nsdir: &Path, ipc: bool, uts: bool, hostname: &str) -> Result<()> {
    std::fs::create_dir_all(nsdir).map_err(|e| record::io("create", nsdir, e))?;
    let mut flags = rustix::thread::UnshareFlags::empty();
    for (on, f, n) in
        [(ipc, rustix::thread::UnshareFlags::NEWIPC, "ipc"), (uts, rustix::thread::UnshareFlags::NEWUTS, "uts")]
    {
        if on {
            flags |= f;
            let p = nsdir.join(n);
            std::fs::File::create(&p).map_err(|e| record::io("create", &p, e))?;
        }
    }
    let (dir, host) = (nsdir.to_path_buf(), hostname.to_string());
    // unshare changes only the calling thread: a thread of its own, which
    // ends with the namespaces held by the bind mounts alone.
    std::thread::spawn(move || -> std::io::Result<()> {
        // SAFETY: NEWIPC/NEWUTS touch no state this process shares between threads.
        unsafe { rustix::thread::unshare_unsafe(flags) }?;
        if uts {
            rustix::system::sethostname(host.as_bytes())?;
            rustix::mount::mount_bind("/proc/thread-self/ns/uts", dir.join("uts"))?;
        }
        if ipc {
            rustix::mount::mount_bind("/proc/thread-self/ns/ipc", dir.join("ipc"))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| Error::io("pin the pod's namespaces", std::io::Error::other("thread panicked")))?
    .map_err(|e| Error::io(format!("pin the pod's namespaces in {}", nsdir.display()), e))
}

/// The pod's /dev/shm: a tmpfs at `<run>/shm` (Docker's default size and
/// flags), so that POSIX shared memory is shared as SysV IPC is.
fn mount_shm(run: &Path) -> Result<PathBuf> {
    use rustix::mount::{mount, MountFlags};
    let shm = run.join("shm");
    std::fs::create_dir_all(&shm).map_err(|e| record::io("create", &shm, e))?;
    let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    mount("shm", &shm, "tmpfs", flags, c"mode=1777,size=65536k")
        .map_err(|e| Error::io(format!("mount a tmpfs on {}", shm.display()), e.into()))?;
    Ok(shm)
}

/// The pod cgroup made (again: a member's cleanup may have removed it
/// empty) with the pod's limits written; idempotent.
pub(crate) fn ensure_cgroup(rec: &PodRecord) -> Result<()> {
    let o = &rec.options;
    let mgr = wharf_runtime::cgroups::create(Some(Path::new(&rec.cgroup_parent)), &rec.id, false)?;
    if rec.options.cgroup_parent.is_some() && !rec.cgroup_made {
        return Ok(()); // its maker's (the kubelet's): so are its limits
    }
    let mut res = json!({});
    if let Some(m) = o.memory {
        res["memory"] = json!({"limit": m});
    }
    if let Some(c) = o.cpus {
        res["cpu"] = json!({"quota": (c * 100_000.0) as i64, "period": 100_000});
    }
    if res.as_object().is_some_and(|m| !m.is_empty()) {
        let r = serde_json::from_value(res).map_err(|e| Error::InvalidArgument(format!("pod resources: {e}")))?;
        mgr.apply(&r)?;
    }
    Ok(())
}

/// Undoes [`Pods::create`] from the ID alone (rm, a failed create, the
/// sweep): CNI DEL, pinned namespaces, cgroups. Every step is tried and
/// idempotent; the first error is returned.
pub(crate) fn teardown(pods: &Pods, id: &str) -> Result<()> {
    let nets = network::Networks::new(&pods.root, &pods.run_root);
    let mut res = network::attach::teardown_pod(&nets, id);
    let run = pods.run_dir(id);
    res = res.and(network::external::del(&run, id));
    res = res.and(unmount_pinned(&run));
    let _ = std::fs::remove_dir(run.join("ns"));
    let _ = std::fs::remove_dir(&run);
    match record::load_record(&pods.dir(id)).ok().filter(|r| r.options.cgroup_parent.is_some()) {
        Some(rec) => res = res.and(remove_given_cgroups(&rec)),
        None => {
            for cg in [format!("{}/infra", cgroup_parent(id)), cgroup_parent(id)] {
                res = res.and(wharf_runtime::cgroups::remove_leftover(Some(Path::new(&cg)), id).map_err(Error::from));
            }
            remove_named_hierarchy_dir(&cgroup_parent(id));
        }
    }
    res
}

/// The pod cgroup in the named v1 hierarchies (`name=systemd`), where a
/// runtime binary such as runc makes its members' cgroups too (and
/// removes only their own): rmdir if empty, never a kill.
fn remove_named_hierarchy_dir(cgroup: &str) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return };
    for l in info.lines() {
        let Some((pre, post)) = l.split_once(" - ") else { continue };
        let mut f = post.split_whitespace();
        let (fstype, opts) = (f.next(), f.nth(1).unwrap_or(""));
        if fstype != Some("cgroup") || !opts.split(',').any(|o| o.starts_with("name=")) {
            continue;
        }
        if let Some(mnt) = pre.split_whitespace().nth(4) {
            let _ = std::fs::remove_dir(Path::new(mnt).join(cgroup.trim_start_matches('/')));
        }
    }
}

/// Beneath a given parent: the infra's cgroup, and the parent itself only
/// if the pod made it and nothing else is in it (never its ancestors).
fn remove_given_cgroups(rec: &PodRecord) -> Result<()> {
    if let Some(mut cg) = wharf_runtime::cgroups::existing(Path::new(&infra_cgroup(rec))) {
        cg.created = cg.paths.iter().map(|(_, d)| d.clone()).collect();
        cg.created.sort();
        cg.created.dedup();
        wharf_runtime::cgroups::from_record(cg).destroy()?;
    }
    if rec.cgroup_made {
        remove_named_hierarchy_dir(&rec.cgroup_parent);
        if let Some(cg) = wharf_runtime::cgroups::existing(Path::new(&rec.cgroup_parent)) {
            for (_, d) in &cg.paths {
                match std::fs::remove_dir(d) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        tracing::debug!("keeping {}: {e}", d.display()) // still holds another member
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// The pinned namespaces and the /dev/shm tmpfs unmounted, each in a
/// thread of its own: an unmount waits for an RCU grace period (up to tens
/// of ms on a busy host), and waits made together end together.
fn unmount_pinned(run: &Path) -> Result<()> {
    let shm = run.join("shm");
    let shm_umount = || -> Result<()> {
        match rustix::mount::unmount(&shm, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(Error::io(format!("unmount {}", shm.display()), e.into())),
        }
        let _ = std::fs::remove_dir(&shm);
        Ok(())
    };
    let ns = |n: &str| run.join("ns").join(n);
    let (net, ipc, uts) = (ns("net"), ns("ipc"), ns("uts"));
    let steps: [&(dyn Fn() -> Result<()> + Sync); 5] = [
        &|| super::infra::unpin_pid_ns(run),
        &|| crate::network::netns::remove(&net),
        &|| crate::network::netns::remove(&ipc),
        &|| crate::network::netns::remove(&uts),
        &shm_umount,
    ];
    std::thread::scope(|s| {
        let threads: Vec<_> = steps.iter().map(|f| s.spawn(f)).collect();
        let joined: Vec<Result<()>> = threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err(Error::io("unmount", std::io::Error::other("thread panicked")))))
            .collect();
        joined.into_iter().collect::<Result<Vec<()>>>().map(drop)
    })
}

/// Before a member of pod `pod_id` starts: the pod cgroup, and the infra
/// process if the pod has one and it is not running.
pub(crate) fn prepare_member(root: &Path, run_root: &Path, pod_id: &str) -> Result<()> {
    let pods = Pods::new(root, run_root);
    let dir = pods.dir(pod_id);
    let rec = record::load_record(&dir).map_err(|_| Error::NoSuchPod(pod_id.to_string()))?;
    ensure_cgroup(&rec)?;
    if rec.options.infra {
        super::infra::start(&pods, &rec)?;
    }
    Ok(())
}

/// A member's spec joined to its pod: cgroup parent, pinned namespaces,
/// the infra's pid namespace (`--share pid`), hostname, /etc files.
pub(crate) fn member_spec(
    spec: &mut Value,
    (root, run_root): (&Path, &Path),
    pod_id: &str,
    ctr_id: &str,
) -> Result<()> {
    let dir = super::record::pods_dir(root).join(pod_id);
    let rec = record::load_record(&dir).map_err(|_| Error::NoSuchPod(pod_id.to_string()))?;
    spec["linux"]["cgroupsPath"] = json!(format!("{}/{ctr_id}", rec.cgroup_parent));
    let mut join: Vec<(String, PathBuf)> = rec.namespaces.clone();
    if rec.options.share.pid {
        let infra = record::infra_state(&dir, true);
        if !infra.running || infra.pid <= 0 {
            return Err(Error::Conflict(format!("the infra process of pod {} is not running", rec.name)));
        }
        // The pinned path, not /proc/<pid>: a restart by the member's monitor
        // (same spec) then joins whichever infra runs.
        join.push(("pid".into(), super::infra::pid_ns_path(&Pods::new(root, run_root).run_dir(pod_id))));
    }
    let host_net = rec.options.share.net && rec.options.network == NetworkMode::Host;
    if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
        for (t, p) in &join {
            ns.retain(|n| n["type"] != t.as_str());
            ns.push(json!({"type": t, "path": p}));
        }
        if host_net {
            ns.retain(|n| n["type"] != "network");
        }
    }
    if rec.options.share.uts {
        spec["hostname"] = json!(rec.hostname);
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        let shm = rec.shm.iter().map(|s| ("/dev/shm".to_string(), s.clone()));
        for (dst, src) in rec.files.iter().cloned().chain(shm) {
            mounts.retain(|m| m["destination"] != dst.as_str());
            mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
        }
    }
    Ok(())
}
