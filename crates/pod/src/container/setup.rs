//! `start`: what a container needs to run, made in order — owner lock →
//! rootfs → volumes → network → OCI spec → monitor — and undone in reverse
//! if a step fails. Once the monitor runs, it holds the locks that guard
//! those resources (inherited fds), and this process lets go of its copies.

use super::record::{self, Container, ACTIVE, STOPPED};
use super::{monitor, Containers};
use crate::error::{Error, Result};
use crate::network::{self, AttachRequest, Attachment};
use crate::run::{NetworkMode, RunOptions};
use std::os::fd::OwnedFd;
use std::path::Path;
use wharf_image::Store;

/// How `start` leaves the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Running (`run -d`, `start`).
    Now,
    /// Created, its process held until a client sends START on the attach
    /// socket (`run` in the foreground attaches first, so no output is missed).
    OnAttach,
}

/// Undoes a failed setup: `active` goes, the lock is released by drop.
struct Active<'a>(&'a Path);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0.join(ACTIVE));
    }
}

impl Containers {
    /// Starts `c` (created or exited); Ok(false) if it already runs.
    pub fn start(&self, store: &Store, c: &Container, how: Start) -> Result<bool> {
        self.sweep();
        self.start_swept(store, c, how)
    }

    /// [`Containers::start`] right after [`Containers::create`], which swept
    /// already (`run`: once per command on the start-up path).
    pub(crate) fn start_swept(&self, store: &Store, c: &Container, how: Start) -> Result<bool> {
        let lock = match record::try_owner_lock(&c.dir)? {
            Some(l) => l,
            None => {
                // Set up and held by its monitor, but whoever was to let it go
                // was killed (a `run -d` or `start`): let it go now.
                if how == Start::Now && wait_held(&c.dir) {
                    if let Ok(mut cl) = super::attach::Client::connect(self, c.id()) {
                        cl.start()?;
                        return Ok(true);
                    }
                }
                // An exit still being cleaned up (`restart` right after `stop`): wait for it.
                match super::lifecycle::lock_for_cleanup(&c.dir)? {
                    Some(l) => l,
                    None => return Ok(false),
                }
            }
        };
        // A dead monitor's leftovers first (the sweep may have lost a race).
        if c.dir.join(ACTIVE).exists() {
            self.cleanup_locked(c.id(), false)?;
        }
        let c = record::load(&c.dir)?;
        std::fs::write(c.dir.join(ACTIVE), b"").map_err(|e| record::io("write", &c.dir.join(ACTIVE), e))?;
        let active = Active(&c.dir);
        let _ = std::fs::remove_file(c.dir.join(STOPPED));
        let _ = std::fs::remove_file(c.dir.join("paused"));
        let mut rec = c.record.clone();
        let o = &rec.options;
        let specs = crate::volume::mounts::parse_run_flags(&o.volumes, &o.mounts, &o.tmpfs)?;
        let (img, plan, merged) = {
            let _content = store.content_lock()?;
            let img = store.resolve(&rec.image_digest).or_else(|_| store.resolve(&rec.image))?;
            let mut plan = crate::volume::attach::plan(&specs, &crate::volume::attach::image_volumes(&img))?;
            reuse_anonymous(&mut plan, &rec.anonymous_volumes);
            let merged = store.mount_rootfs_with(&img, &c.dir, rec.options.rm)?.merged;
            (img, plan, merged)
        };
        let rootfs = Mounted(&merged);
        let volumes = crate::volume::Volumes::new(&self.root);
        let mounts = crate::volume::attach::attach(&volumes, &plan, &merged, c.id())?;
        if rec.anonymous_volumes.is_empty() && !mounts.anonymous().is_empty() {
            rec.anonymous_volumes = anonymous_targets(&plan, mounts.anonymous());
            record::save_record(&c.dir, &rec)?;
        }
        mounts.record(&c.dir, rec.options.rm)?;
        let o = &rec.options;
        if let Some(p) = &o.pod {
            crate::pod::prepare_member(&self.root, &self.run_root, p)?;
        }
        let net = attach_network(self, o, &img, c.id(), &c.dir)?;
        crate::run::write_spec(
            &img,
            o,
            &c.dir,
            &merged,
            c.id(),
            (net.as_ref(), &mounts.oci),
            (&self.root, &self.run_root),
        )?;
        let mut fds: Vec<OwnedFd> = vec![OwnedFd::from(lock)];
        fds.extend(mounts.hand_over()?);
        let net_fds = match &net {
            Some(a) => a.lock_fds()?,
            None => Vec::new(),
        };
        fds.extend(net_fds);
        let spawn = monitor::Spawn {
            containers: self,
            id: c.id(),
            dir: &c.dir,
            log: &c.log_path(),
            tty: o.tty,
            stdin: o.interactive,
            start: false,
            restart: o.restart.as_deref().unwrap_or("no"),
            restart_count: 0,
            log_opts: &o.log_opts,
            health: rec.healthcheck.as_ref(),
            probes: &o.probes,
            backoff: o.restart_backoff,
            fds,
            stop: stop_of(o),
            oci: self.oci(&rec),
        };
        let mut spawned = monitor::spawn(spawn);
        if let Ok(pid) = &spawned {
            if o.network == NetworkMode::None && o.pod.is_none() {
                if let Err(e) = crate::net::loopback_up(*pid) {
                    tracing::warn!("--network none: bringing lo up: {e}");
                }
            }
            if how == Start::Now {
                spawned = super::attach::Client::connect(self, c.id()).and_then(|mut cl| cl.start());
            }
        }
        match spawned {
            Ok(_) => {
                self.event(&rec, "start", &[]);
                // The monitor holds the locks now; ours close without undoing anything.
                std::mem::forget(active);
                rootfs.keep();
                mounts.forget();
                if let Some(a) = net {
                    a.forget();
                }
                Ok(true)
            }
            Err(e) => {
                match self.oci(&rec) {
                    Some(oci) => drop(oci.delete(c.id())),
                    None => drop(wharf_runtime::Container::delete_by_id(&self.state_root(), c.id(), true)),
                }
                drop(net);
                drop(mounts);
                drop(rootfs);
                drop(active);
                Err(e)
            }
        }
    }
}

/// A live monitor holds the container created, its process waiting for START.
pub(crate) fn held(dir: &Path) -> bool {
    record::lock_held(dir) && record::load_monitor_state(dir).is_some_and(|s| s.status == "created")
}

/// Whether the container is [`held`], waiting (10 s at most) while its
/// owner is still setting it up: no monitor state yet, the lock held.
pub(crate) fn wait_held(dir: &Path) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while record::load_monitor_state(dir).is_none() && record::lock_held(dir) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    held(dir)
}

/// Unmounts the rootfs unless kept.
struct Mounted<'a>(&'a Path);

impl Mounted<'_> {
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

/// The anonymous volumes of an earlier start, by target, used again.
fn reuse_anonymous(plan: &mut [crate::volume::mounts::MountSpec], known: &[(String, String)]) {
    use crate::volume::mounts::MountKind;
    for m in plan.iter_mut() {
        if let MountKind::Volume { name: name @ None, labels, .. } = &mut m.kind {
            if let Some((_, n)) = known.iter().find(|(t, _)| *t == m.target) {
                *name = Some(n.clone());
                labels.insert(crate::volume::ANONYMOUS_LABEL.into(), String::new());
            }
        }
    }
}

/// `plan`'s anonymous volumes, in plan order, paired with the names made.
fn anonymous_targets(plan: &[crate::volume::mounts::MountSpec], names: &[String]) -> Vec<(String, String)> {
    use crate::volume::mounts::MountKind;
    let targets =
        plan.iter().filter(|m| matches!(m.kind, MountKind::Volume { name: None, .. })).map(|m| m.target.clone());
    targets.zip(names.iter().cloned()).collect()
}

/// `--network NAME`: the container's netns, CNI ADD, DNS and /etc files,
/// before the container exists; `None` for the other modes.
fn attach_network(
    cs: &Containers,
    o: &RunOptions,
    img: &wharf_image::Image,
    id: &str,
    dir: &Path,
) -> Result<Option<Attachment>> {
    let network = match &o.network {
        NetworkMode::Bridge(n) => n,
        _ if !o.publish.is_empty() || o.publish_all => {
            return Err(Error::InvalidArgument("-p/-P need a bridge network, not --network none or host".into()))
        }
        _ => return Ok(None),
    };
    let publish = o.publish.iter().map(|p| network::parse_publish(p)).collect::<Result<Vec<_>>>()?;
    let expose = match (o.publish_all, img.config.config()) {
        (true, Some(c)) => c.exposed_ports().clone().unwrap_or_default(),
        _ => Vec::new(),
    };
    let req = AttachRequest {
        container_id: id.to_string(),
        network: network.clone(),
        name: o.name.clone(),
        aliases: o.network_aliases.clone(),
        hostname: o.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
        publish,
        expose,
        add_hosts: o.add_hosts.clone(),
        dns: o.dns.clone(),
        dns_search: o.dns_search.clone(),
        dns_options: o.dns_options.clone(),
        files_dir: dir.to_path_buf(),
        pod: false,
    };
    Attachment::setup(&network::Networks::new(&cs.root, &cs.run_root), &req).map(Some)
}

/// The container's stop signal (the image's, else SIGTERM) and timeout
/// (10 s, Docker's; `kube play`: terminationGracePeriodSeconds).
fn stop_of(o: &crate::RunOptions) -> (i32, u64) {
    let sig = o.stop_signal.as_deref().and_then(|s| wharf_runtime::signal::parse_number(s).ok());
    (sig.unwrap_or(libc::SIGTERM), o.stop_timeout.unwrap_or(10))
}
