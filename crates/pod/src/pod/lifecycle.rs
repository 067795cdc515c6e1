//! start, stop, restart, kill, pause, rm, prune, and the sweep of what a
//! killed `pod create` or `pod rm` left.
//!
//! Commands that change a pod take its `lock` (waiting: they take turns);
//! the members' own locks stay the containers' business. Start order is
//! creation order, infra first; stop is the reverse, infra last.

use super::record::{self, Pod, LOCK, RECORD, REMOVING};
use super::{infra, setup, Pods};
use crate::container::{Start, StopOptions};
use crate::error::{Error, Result};
use std::os::fd::OwnedFd;
use std::time::Duration;

impl Pods {
    fn op_lock(&self, id: &str) -> Result<OwnedFd> {
        crate::network::lock_file(&self.dir(id).join(LOCK), true)
    }

    /// The pod, loaded under its lock (the caller holds it).
    fn locked(&self, name_or_id: &str) -> Result<(Pod, OwnedFd)> {
        let id = self.resolve(name_or_id)?;
        let lock = self.op_lock(&id)?;
        Ok((self.get(&id)?, lock))
    }

    /// `pod start`: the infra, then every container not running, in
    /// creation order; every member is tried, the first error returned.
    pub fn start(&self, name_or_id: &str) -> Result<()> {
        self.sweep();
        let (pod, _lock) = self.locked(name_or_id)?;
        setup::ensure_cgroup(&pod.record)?;
        if pod.record.options.infra {
            infra::start(self, &pod.record)?;
        }
        if pod.containers.iter().all(|c| c.is_running()) {
            return Ok(());
        }
        let store = wharf_image::Store::open(&self.root)?;
        let cs = self.containers_api();
        let mut res = Ok(());
        for c in pod.containers.iter().filter(|c| !c.is_running()) {
            if let Err(e) = cs.start(&store, c, Start::Now) {
                res = res.and(Err(Error::Conflict(format!("starting container {}: {e}", c.name()))));
            }
        }
        res
    }

    /// `pod stop [-t]`: containers in reverse start order, each with its
    /// stop timeout (`timeout` overrides), then the infra.
    pub fn stop(&self, name_or_id: &str, timeout: Option<u64>) -> Result<()> {
        let (pod, _lock) = self.locked(name_or_id)?;
        self.stop_locked(&pod, timeout)
    }

    fn stop_locked(&self, pod: &Pod, timeout: Option<u64>) -> Result<()> {
        let cs = self.containers_api();
        let mut res = Ok(());
        for c in pod.containers.iter().rev() {
            res = res.and(cs.stop(c, &StopOptions { timeout, signal: None }));
        }
        let grace = Duration::from_secs(timeout.unwrap_or(10));
        res.and(infra::stop(&pod.dir, libc::SIGTERM, grace))
    }

    /// [`Pods::stop`] and the CNI DEL of the pod's network from an external
    /// CNI config (CRI's StopPodSandbox releases the pod's IP and ports
    /// there, as containerd does; `rm` then finds nothing left to do;
    /// idempotent), under one lock. The DEL (its plugins one after the
    /// other, as the spec wants) runs on a thread of its own while the
    /// members and the infra stop: the pinned netns it names outlives both.
    pub fn stop_and_release_cni(&self, name_or_id: &str, timeout: Option<u64>) -> Result<()> {
        let (pod, _lock) = self.locked(name_or_id)?;
        let run_dir = self.run_dir(&pod.id);
        std::thread::scope(|s| {
            let del = s.spawn(|| crate::network::external::del(&run_dir, &pod.id));
            let res = self.stop_locked(&pod, timeout);
            let del = del.join().unwrap_or_else(|_| Err(Error::Network("CNI DEL: its thread panicked".into())));
            res.and(del)
        })
    }

    /// `pod restart`: stop, then start.
    pub fn restart(&self, name_or_id: &str, timeout: Option<u64>) -> Result<()> {
        self.stop(name_or_id, timeout)?;
        self.start(name_or_id)
    }

    /// `pod kill [-s SIG]`: every running container, then the infra.
    pub fn kill(&self, name_or_id: &str, signal: &str) -> Result<()> {
        let (pod, _lock) = self.locked(name_or_id)?;
        let sig = wharf_runtime::signal::parse_number(signal)
            .map_err(|_| Error::InvalidArgument(format!("invalid signal: {signal}")))?;
        if !pod.is_running() {
            return Err(Error::Conflict(format!("pod {} has no running member to kill", pod.name)));
        }
        let cs = self.containers_api();
        let mut res = Ok(());
        for c in pod.containers.iter().rev().filter(|c| c.is_running()) {
            res = res.and(cs.kill(c, signal));
        }
        if pod.infra.running && pod.infra.pid > 0 {
            // SAFETY: a plain syscall on a pid whose lock says it lives.
            unsafe { libc::kill(pod.infra.pid, sig) };
        }
        res
    }

    /// `pod pause` / `pod unpause`: the whole pod frozen, as podman's: every
    /// running container, then the infra (its cgroup's freezer: v1
    /// `freezer.state` or v2 `cgroup.freeze`, as detected); thawed infra
    /// first.
    pub fn pause(&self, name_or_id: &str) -> Result<()> {
        self.set_paused(name_or_id, true)
    }

    pub fn unpause(&self, name_or_id: &str) -> Result<()> {
        self.set_paused(name_or_id, false)
    }

    fn set_paused(&self, name_or_id: &str, pause: bool) -> Result<()> {
        let (pod, _lock) = self.locked(name_or_id)?;
        let cs = self.containers_api();
        let want = if pause { crate::Status::Running } else { crate::Status::Paused };
        let targets: Vec<_> = pod.containers.iter().filter(|c| c.status == want).collect();
        let infra = pod.infra.running && pod.infra_paused() != pause;
        if targets.is_empty() && !infra {
            let what = if pause { "running" } else { "paused" };
            return Err(Error::Conflict(format!("pod {} has no {what} member", pod.name)));
        }
        if infra && !pause {
            infra::set_frozen(&pod.dir, &pod.id, false)?;
        }
        let mut res = Ok(());
        for c in targets {
            res = res.and(cs.pause(c, pause));
        }
        if infra && pause {
            res = res.and(infra::set_frozen(&pod.dir, &pod.id, true));
        }
        res
    }

    /// `pod rm [-f]`: its containers (and their anonymous volumes), the
    /// infra, CNI DEL, the pinned namespaces, the cgroup, the record and
    /// the name. Without `force` a pod with a running member is refused.
    pub fn rm(&self, name_or_id: &str, force: bool) -> Result<()> {
        let (pod, _lock) = self.locked(name_or_id)?;
        let running = pod.containers.iter().any(|c| c.is_running());
        if running && !force {
            return Err(Error::Conflict(format!(
                "pod {} has running containers: stop the pod first or use --force",
                pod.name
            )));
        }
        std::fs::write(pod.dir.join(REMOVING), b"").map_err(|e| record::io("write", &pod.dir, e))?;
        let cs = self.containers_api();
        for c in pod.containers.iter().rev() {
            match cs.remove(c, true, true) {
                Ok(()) | Err(Error::NoSuchContainer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        infra::stop(&pod.dir, libc::SIGKILL, Duration::from_secs(10))?;
        self.finish_rm(&pod.id, &pod.name)
    }

    /// The rest of an rm once no member is left: teardown, name, dir.
    fn finish_rm(&self, id: &str, name: &str) -> Result<()> {
        setup::teardown(self, id)?;
        crate::kube::forget_pod(&self.root, name);
        record::release_name(&self.root, name, id);
        let dir = self.dir(id);
        let gone = dir.with_file_name(format!(".gone-{}-{id}", std::process::id()));
        std::fs::rename(&dir, &gone).map_err(|e| record::io("rename", &dir, e))?;
        std::fs::remove_dir_all(&gone).map_err(|e| record::io("remove", &gone, e))
    }

    /// `pod prune`: every pod with no running member; their IDs.
    pub fn prune(&self) -> Result<Vec<String>> {
        self.sweep();
        let mut out = Vec::new();
        for p in self.list()? {
            if !p.is_running() && self.rm(&p.id, false).is_ok() {
                out.push(p.id);
            }
        }
        Ok(out)
    }

    /// Finishes what killed pod commands left: a create cut short (no
    /// `pod.json`), an rm cut short (`removing`), the pinned namespaces of a
    /// pod whose dir is gone, stale names and dirs of finished removals.
    /// Cheap when there is nothing: a readdir and a flock per pod.
    pub fn sweep(&self) {
        for e in std::fs::read_dir(self.pods_dir()).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            // `.tmp-<pid>-<id>`: a create killed before its dir got its name (nothing else made yet).
            if let Some(rest) = name.strip_prefix(".gone-").or_else(|| name.strip_prefix(".tmp-")) {
                let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()).unwrap_or(0);
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(&path);
                }
                continue;
            }
            let unfinished = !path.join(RECORD).exists() || path.join(REMOVING).exists();
            if !unfinished || name.starts_with('.') || record::held(&path, LOCK) {
                continue;
            }
            let Ok(_lock) = crate::network::lock_file(&path.join(LOCK), false) else { continue };
            if let Err(err) = self.sweep_one(&name) {
                tracing::warn!("sweeping pod {name}: {err}");
            }
        }
        // Pinned namespaces of pods whose dir is gone.
        for e in std::fs::read_dir(self.run_root.join("pods")).into_iter().flatten().flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if !self.dir(&id).exists() {
                let _ = setup::teardown(self, &id);
            }
        }
        record::sweep_names(&self.root);
    }

    fn sweep_one(&self, id: &str) -> Result<()> {
        let cs = self.containers_api();
        for c in super::members(&cs.list()?, id).iter().rev() {
            cs.remove(c, true, true)?;
        }
        infra::stop(&self.dir(id), libc::SIGKILL, Duration::from_secs(10))?;
        let name = record::load_record(&self.dir(id)).map(|r| r.name).unwrap_or_default();
        self.finish_rm(id, &name)
    }
}
