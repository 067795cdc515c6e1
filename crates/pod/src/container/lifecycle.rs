//! stop, kill, wait, remove, pause; and the cleanup after a container
//! exited (its resources released, its record kept unless `--rm`).

use super::attach::Client;
use super::record::{self, Container, MonitorState, ACTIVE, STOPPED};
use super::Containers;
use crate::error::{Error, Result};
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct StopOptions {
    /// Seconds before SIGKILL (Docker's default: 10).
    pub timeout: Option<u64>,
    /// Overrides the container's stop signal.
    pub signal: Option<String>,
}

/// The owner lock, waiting while the holder is only cleaning up after an
/// exit (a monitor's last moments, its exit command); None if the
/// container runs.
pub(crate) fn lock_for_cleanup(dir: &Path) -> Result<Option<File>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(f) = record::try_owner_lock(dir)? {
            return Ok(Some(f));
        }
        let exited = record::load_monitor_state(dir).is_some_and(|s| s.status == "exited");
        if !exited || Instant::now() > deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal_number(s: &str) -> Result<i32> {
    wharf_runtime::signal::parse_number(s).map_err(|_| Error::InvalidArgument(format!("invalid signal: {s}")))
}

impl Containers {
    fn runtime(&self, id: &str) -> Option<wharf_runtime::Container> {
        wharf_runtime::Container::load(&self.state_root(), id).ok()
    }

    /// Signals the container: through the runtime's state, or (that state
    /// wiped with the run root) by the init pid its monitor recorded, if
    /// that process is still the monitor's child.
    fn signal(&self, c: &Container, sig: i32, all: bool) -> Result<()> {
        if let Some(oci) = self.oci(&c.record) {
            match oci.kill(c.id(), sig, all) {
                Ok(()) => return Ok(()),
                Err(e) => tracing::debug!("{e}: by the pid then"),
            }
        } else if let Some(rt) = self.runtime(c.id()) {
            return Ok(rt.signal(sig, all)?);
        }
        let pid = c.state.pid;
        let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| {
            s.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse::<i32>().ok())
        });
        if pid > 0 && ppid == Some(c.state.monitor_pid) {
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).ok_or_else(|| Error::Conflict("bad pid".into()))?,
                rustix::process::Signal::from_named_raw(sig)
                    .ok_or_else(|| Error::InvalidArgument(format!("signal {sig}")))?,
            )
            .map_err(|e| Error::io(format!("kill {pid}"), e.into()))?;
            return Ok(());
        }
        Err(Error::Conflict(format!("container {} is not running", c.id())))
    }

    /// The signal `stop` sends: `--stop-signal`, the image's StopSignal, SIGTERM.
    fn stop_signal(&self, c: &Container) -> String {
        c.record.options.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into())
    }

    /// Docker's `stop`: the stop signal, then SIGKILL after the timeout;
    /// returns once the container is cleaned up. A stopped one is fine.
    pub fn stop(&self, c: &Container, o: &StopOptions) -> Result<()> {
        if !c.is_running() {
            return Ok(());
        }
        mark_stopped(&c.dir)?;
        let client = Client::connect(self, c.id()).ok();
        let sig = signal_number(o.signal.as_deref().unwrap_or(&self.stop_signal(c)))?;
        let _ = self.signal(c, sig, false);
        self.event(&c.record, "kill", &[("signal", sig.to_string())]);
        let timeout = Duration::from_secs(o.timeout.or(c.record.options.stop_timeout).unwrap_or(10));
        if !self.wait_exit(c, client, Some(timeout)) {
            let _ = self.signal(c, libc::SIGKILL, true);
            let client = Client::connect(self, c.id()).ok();
            self.wait_exit(c, client, Some(Duration::from_secs(30)));
        }
        self.wait_cleaned(&c.dir);
        self.event(&c.record, "stop", &[]);
        Ok(())
    }

    /// `kill -s SIG`: no restart follows (as Docker's).
    pub fn kill(&self, c: &Container, signal: &str) -> Result<()> {
        let sig = signal_number(signal)?;
        if !c.is_running() || c.status == super::Status::Restarting {
            return Err(Error::Conflict(format!(
                "Cannot kill container: {}: container {} is not running",
                c.name(),
                c.id()
            )));
        }
        if sig == libc::SIGKILL || sig == libc::SIGTERM || sig == libc::SIGINT {
            mark_stopped(&c.dir)?;
        }
        self.signal(c, sig, false)?;
        self.event(&c.record, "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    /// Waits for the container to exit and its exit to be recorded whole
    /// (OOMKilled is known only once cleaned up); its exit code.
    pub fn wait(&self, c: &Container) -> Result<i32> {
        if c.is_running() || c.owned {
            let client = Client::connect(self, c.id()).ok();
            self.wait_exit(c, client, None);
            let exited = record::load_monitor_state(&c.dir);
            self.wait_cleaned(&c.dir);
            if let (false, Some(s)) = (c.dir.exists(), exited) {
                return Ok(s.exit_code); // --rm removed it
            }
        }
        let now = record::load(&c.dir)?;
        Ok(now.state.exit_code)
    }

    /// True once the monitor reported the exit (or is gone) within `limit`.
    fn wait_exit(&self, c: &Container, client: Option<Client>, limit: Option<Duration>) -> bool {
        let deadline = limit.map(|l| Instant::now() + l);
        if let Some(mut cl) = client {
            if cl.wait_exit(deadline).is_some() {
                return true;
            }
        }
        // No socket (a monitor just finishing): poll the record.
        loop {
            let exited = record::load_monitor_state(&c.dir).is_none_or(|s| s.status == "exited");
            if exited || !record::lock_held(&c.dir) {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Until the exit's cleanup is done (or 30 s).
    fn wait_cleaned(&self, dir: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while dir.join(ACTIVE).exists() && Instant::now() < deadline {
            if !record::lock_held(dir) {
                self.cleanup(dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default().as_str());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `rm [-f] [-v]`.
    pub fn remove(&self, c: &Container, force: bool, volumes: bool) -> Result<()> {
        // Created but held by its monitor (its starter killed): no -f needed,
        // as for any created one. A monitor still creating it (its lock held,
        // no state yet: a starter killed early on a loaded host) is waited for.
        let held = c.status == super::Status::Created && super::setup::wait_held(&c.dir);
        if c.is_running() || held {
            if !force && !held {
                return Err(Error::Conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    c.id()
                )));
            }
            mark_stopped(&c.dir)?;
            let client = Client::connect(self, c.id()).ok();
            let _ = self.signal(c, libc::SIGKILL, true);
            self.wait_exit(c, client, Some(Duration::from_secs(30)));
        }
        let Some(lock) = lock_for_cleanup(&c.dir)? else {
            return Err(Error::Conflict(format!("container {} is still running", c.id())));
        };
        if c.dir.join(ACTIVE).exists() {
            self.cleanup_locked(c.id(), true)?;
        }
        if !c.dir.exists() {
            return Ok(()); // --rm did it
        }
        self.remove_locked(&record::load_record(&c.dir)?, volumes, lock)
    }

    /// Removes the record, name and dir; anonymous volumes with `volumes`.
    fn remove_locked(&self, rec: &record::Record, volumes: bool, lock: File) -> Result<()> {
        let dir = self.dir(&rec.id);
        record::release_name(&self.root, &rec.name, &rec.id);
        let gone = dir.with_file_name(format!(".tmp-{}-{}", std::process::id(), rec.id));
        std::fs::rename(&dir, &gone).map_err(|e| record::io("rename", &dir, e))?;
        let removed = wharf_image::Rootfs::remove(&gone);
        self.event(rec, "destroy", &[]);
        drop(lock);
        removed?;
        if volumes || rec.options.rm {
            let vols = crate::volume::Volumes::new(&self.root);
            for (_, name) in &rec.anonymous_volumes {
                match vols.remove(name) {
                    Ok(()) | Err(Error::NoSuchVolume(_)) => {}
                    Err(e) => tracing::warn!("removing anonymous volume {name}: {e}"),
                }
            }
        }
        Ok(())
    }

    /// `container cleanup ID` (the monitor's exit command) and the sweep:
    /// releases what an exited container held. Quiet and idempotent.
    pub fn cleanup(&self, id: &str) {
        let dir = self.dir(id);
        let Ok(Some(_lock)) = lock_for_cleanup(&dir) else { return };
        if dir.join(ACTIVE).exists() {
            if let Err(e) = self.cleanup_locked(id, false) {
                tracing::warn!("cleaning up container {id}: {e}");
            }
        }
    }

    /// With the owner lock held: runtime state, network, rootfs mount and
    /// sockets go; a dead monitor's exit is recorded; `--rm` removes all.
    /// `removing`: the caller removes the container next.
    pub(crate) fn cleanup_locked(&self, id: &str, removing: bool) -> Result<()> {
        let dir = self.dir(id);
        let mut state = record::load_monitor_state(&dir).unwrap_or_default();
        // The monitor records an OOM kill with the exit it saw; only an exit
        // it did not see (it was killed) is asked of the cgroup here.
        let oom =
            state.status != "exited" && self.runtime(id).is_some_and(|rt| rt.stats().is_ok_and(|s| s.oom_kills > 0));
        // From the state, else from the bundle's cgroupsPath (a wiped run root).
        self.remove_runtime_state(id, &dir)?;
        crate::network::sweep_orphans(&crate::network::Networks::new(&self.root, &self.run_root));
        let merged = dir.join("merged");
        match rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(record::io("unmount", &merged, e.into())),
        }
        let _ = std::fs::remove_file(self.socket(id));
        crate::volume::Volumes::new(&self.root).container_exited(id);
        if state.status != "exited" || oom {
            if state.status != "exited" {
                state.status = "exited".into();
                state.exit_code = 137;
                state.pid = 0;
                state.error = "the container's monitor was killed (or the host restarted)".into();
                state.finished_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            }
            state.oom_killed |= oom;
            record::save_monitor_state(&dir, &state)?;
        }
        std::fs::remove_file(dir.join(ACTIVE)).map_err(|e| record::io("remove", &dir.join(ACTIVE), e))?;
        let rec = record::load_record(&dir)?;
        self.event(&rec, "die", &[("exitCode", state.exit_code.to_string())]);
        if rec.options.rm && !removing {
            let lock = std::fs::File::open(dir.join("lock")).map_err(|e| record::io("open", &dir, e))?;
            // Our lock is held on another fd; this one only keeps the API honest.
            return self.remove_locked(&rec, true, lock);
        }
        Ok(())
    }

    /// The runtime's state of container `id` (bundle `dir`) and what it
    /// held: `delete --force` through a runtime binary of its own (runc,
    /// crun), then what is left of it as wharf-runtime's leftovers.
    fn remove_runtime_state(&self, id: &str, dir: &Path) -> Result<()> {
        let oci = self.oci_of_id(id);
        if let Some(o) = &oci {
            if let Err(e) = o.delete(id) {
                tracing::warn!("{e}");
            }
        }
        let root = oci.map_or_else(|| self.state_root(), |o| o.root);
        Ok(wharf_runtime::leftover::remove(&root, id, dir)?)
    }

    /// Cleans up after every container whose monitor or setup was killed,
    /// and removes dirs of creations killed before their record existed.
    /// Cheap when there are none: a readdir and a flock per container.
    pub fn sweep(&self) -> usize {
        let Ok(dead) = wharf_image::leftovers(&self.containers_dir()) else { return 0 };
        let mut n = 0;
        for d in dead {
            if d.path.join(record::RECORD).exists()
                && !d.path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                if d.path.join(ACTIVE).exists() {
                    match self.cleanup_locked(&d.name, false) {
                        Ok(()) => n += 1,
                        Err(e) => tracing::warn!("cleaning up container {}: {e}", d.name),
                    }
                }
                continue;
            }
            let res = self.remove_runtime_state(&d.name, &d.path).and_then(|()| Ok(d.remove()?));
            match res {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!("removing container {}: {e}", d.name),
            }
        }
        record::sweep_names(&self.root);
        crate::network::sweep_orphans(&crate::network::Networks::new(&self.root, &self.run_root));
        n
    }

    /// `container prune` (and `system prune`): removes every container that
    /// is not running and not held by anyone; their IDs.
    pub fn prune(&self) -> Result<Vec<String>> {
        self.sweep();
        let mut removed = Vec::new();
        for c in self.list()? {
            // Not `owned`: an exit still being cleaned up holds the lock a moment
            // (remove waits for it); a created one held by its starter stays.
            let held = c.owned && c.status == super::Status::Created;
            if !c.is_running() && !held && self.remove(&c, false, false).is_ok() {
                removed.push(c.id().to_string());
            }
        }
        Ok(removed)
    }

    /// `pause`/`unpause`: the runtime's freezer, and a marker for `ps`.
    pub fn pause(&self, c: &Container, pause: bool) -> Result<()> {
        if let Some(oci) = self.oci(&c.record).filter(|_| c.is_running()) {
            let marker = c.dir.join("paused");
            if (c.status == super::Status::Paused) == pause {
                let now = if pause { "already paused" } else { "not paused" };
                return Err(Error::Conflict(format!("Container {} is {now}", c.id())));
            }
            oci.set_paused(c.id(), pause)?;
            self.event(&c.record, if pause { "pause" } else { "unpause" }, &[]);
            return if pause {
                std::fs::write(&marker, b"").map_err(|e| record::io("write", &marker, e))
            } else {
                std::fs::remove_file(&marker).map_err(|e| record::io("remove", &marker, e))
            };
        }
        let rt = self
            .runtime(c.id())
            .filter(|_| c.is_running())
            .ok_or_else(|| Error::Conflict(format!("Container {} is not running", c.id())))?;
        let marker = c.dir.join("paused");
        if pause {
            if c.status == super::Status::Paused {
                return Err(Error::Conflict(format!("Container {} is already paused", c.id())));
            }
            rt.pause()?;
            self.event(&c.record, "pause", &[]);
            std::fs::write(&marker, b"").map_err(|e| record::io("write", &marker, e))
        } else {
            if c.status != super::Status::Paused {
                return Err(Error::Conflict(format!("Container {} is not paused", c.id())));
            }
            rt.resume()?;
            self.event(&c.record, "unpause", &[]);
            std::fs::remove_file(&marker).map_err(|e| record::io("remove", &marker, e))
        }
    }

    /// The monitor's state, for `inspect`.
    pub fn monitor_state(&self, c: &Container) -> MonitorState {
        c.state.clone()
    }
}

fn mark_stopped(dir: &Path) -> Result<()> {
    std::fs::write(dir.join(STOPPED), b"").map_err(|e| record::io("write", &dir.join(STOPPED), e))
}
