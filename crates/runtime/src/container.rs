//! The library's lifecycle API: create, start, state, kill, wait, delete,
//! pause, resume, update, stats. The CLI verbs are thin glue over this.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::cgroups::{self, CgroupManager, Stats};
use crate::error::{Context, Error, Result};
use crate::state::{OciState, Phase, Record, StateStore, Status, FIFO_FILE};
use crate::sync::{Channel, Msg};

/// Options of `create`/`run`, named as runc's flags.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Extra descriptors (3, 4, …) passed to the container process.
    pub preserve_fds: u32,
    /// Hold the process on an exec fifo so another process can `start` it.
    /// `false`: only this `Container` value can start it (cheaper; `run`).
    pub exec_fifo: bool,
    /// With `exec_fifo: false`: `false` lets the process run as soon as it
    /// is set up (`run` semantics, one round trip less); `start` then only
    /// waits for the exec and runs the poststart hooks.
    pub hold_until_start: bool,
    /// Descriptors for the process's stdin, stdout and stderr; `None`: it
    /// inherits the caller's (as `runc run` does). Ignored with a terminal.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
    /// Make the cgroup a systemd scope unit (`--systemd-cgroup`).
    pub systemd_cgroup: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            console_socket: None,
            pid_file: None,
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
            exec_fifo: true,
            hold_until_start: true,
            stdio: None,
            systemd_cgroup: false,
        }
    }
}

/// A container in a state directory.
pub struct Container {
    store: StateStore,
    rec: Record,
    cgroup: Option<Box<dyn CgroupManager>>,
    /// Held only by the process that created the container without a fifo.
    chan: Option<Channel>,
    /// Whether init waits for [`Msg::Start`] on `chan`.
    hold: bool,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container").field("id", &self.rec.id).field("pid", &self.rec.pid).finish()
    }
}

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
    /// Not our child (created by another process): the code is unknown.
    Unknown,
}

impl ExitStatus {
    /// The shell convention runc's `run` uses: code, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
            ExitStatus::Unknown => 255,
        }
    }
}

impl Container {
    /// Creates a container from `bundle` and leaves it `created`.
    ///
    /// The container's init becomes a child of the calling process: reap it
    /// with [`Container::wait`] (or [`Container::delete`]). Without a
    /// terminal it inherits the caller's stdin/stdout/stderr. Safe to call
    /// from a multi-threaded program (the first child is made with fork).
    pub fn create(root: &Path, id: &str, bundle: &Path, opts: &CreateOptions) -> Result<Container> {
        if !crate::sealexe::exe_is_sealed() {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                crate::log::warn(
                    "this program's binary is writable through /proc/self/exe of the containers it forks \
                     (CVE-2019-5736); call wharf_runtime::sealexe::ensure_sealed_exe() at the start of main",
                )
            });
        }
        crate::create::create(&StateStore::new(root), id, bundle, opts)
    }

    /// Loads an existing container.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        let store = StateStore::new(root);
        let rec = store.load(id)?;
        let cgroup = rec.cgroup.clone().map(cgroups::from_record);
        Ok(Container { store, rec, cgroup, chan: None, hold: true })
    }

    pub(crate) fn from_parts(
        store: StateStore,
        rec: Record,
        cgroup: Option<Box<dyn CgroupManager>>,
        chan: Option<Channel>,
        hold: bool,
    ) -> Container {
        Container { store, rec, cgroup, chan, hold }
    }

    pub fn id(&self) -> &str {
        &self.rec.id
    }

    /// Pid of the container's init process (host pid namespace).
    pub fn pid(&self) -> i32 {
        self.rec.pid
    }

    pub fn bundle(&self) -> &Path {
        &self.rec.bundle
    }

    fn alive(&self) -> bool {
        self.rec.pid > 0 && crate::sys::process_start_time(self.rec.pid) == Some(self.rec.pid_start)
    }

    pub fn status(&self) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        match self.rec.phase {
            Phase::Creating => Status::Creating,
            Phase::Created if !self.rec.use_fifo => Status::Created,
            Phase::Created if self.store.dir(&self.rec.id).join(FIFO_FILE).exists() => Status::Created,
            _ if self.cgroup.as_ref().is_some_and(|c| c.is_frozen()) => Status::Paused,
            _ => Status::Running,
        }
    }

    pub(crate) fn oci_state_of(rec: &Record, status: Status) -> OciState {
        OciState {
            oci_version: "1.2.0".into(),
            id: rec.id.clone(),
            status,
            pid: if status == Status::Stopped { 0 } else { rec.pid },
            bundle: rec.bundle.clone(),
            rootfs: rec.rootfs.clone(),
            created: rec.created.clone(),
            owner: rec.owner.clone(),
            annotations: rec.annotations.clone(),
        }
    }

    /// The OCI state document.
    pub fn state(&self) -> OciState {
        Self::oci_state_of(&self.rec, self.status())
    }

    fn require(&self, ok: &[Status], op: &'static str) -> Result<Status> {
        let s = self.status();
        if ok.contains(&s) {
            return Ok(s);
        }
        Err(Error::InvalidState { id: self.rec.id.clone(), state: s.to_string(), op })
    }

    /// Lets the user process run; runs the poststart hooks.
    pub fn start(&mut self) -> Result<()> {
        match self.chan.take() {
            // Our own fresh container: it may even have run to completion
            // already (not held), so no status check here.
            Some(chan) => start_by_channel(&chan, self.hold)?,
            None => {
                self.require(&[Status::Created], "start")?;
                self.start_by_fifo()?
            }
        }
        self.rec.phase = Phase::Started;
        self.store.save(&self.rec)?;
        // The process may already be gone; poststart still sees it as started.
        let state = Self::oci_state_of(&self.rec, Status::Running);
        crate::hooks::run_all_warn("poststart", &self.rec.poststart, &state);
        Ok(())
    }

    fn start_by_fifo(&self) -> Result<()> {
        let p = self.store.dir(&self.rec.id).join(FIFO_FILE);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&p)
            .ctx(|| format!("open exec fifo {}", p.display()))?;
        // The init opens its end when it reaches the wait; it may also die first.
        loop {
            let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
            let n = poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0);
            if n > 0 && fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN)) {
                let mut b = [0u8; 1];
                if (&f).read(&mut b).unwrap_or(0) == 1 {
                    break;
                }
            }
            if !self.alive() {
                return Err(Error::Init("container init exited before start".into()));
            }
        }
        std::fs::remove_file(&p).ctx(|| format!("remove {}", p.display()))
    }

    /// Sends `sig` to init, or with `all` to every process in the cgroup.
    pub fn kill(&self, sig: Signal, all: bool) -> Result<()> {
        self.signal(sig as i32, all)
    }

    /// Sends signal number `signo` (0 only checks) as runc's `kill`: to
    /// init while it lives, else "container not running"; with `all` to
    /// every process in the cgroup, even after init exited (children of a
    /// container sharing the host's pid namespace outlive it).
    pub fn signal(&self, signo: i32, all: bool) -> Result<()> {
        let status = self.status();
        if all {
            let Some(cg) = self.cgroup.as_ref() else {
                return if status == Status::Stopped { Err(self.not_running()) } else { self.signal_init(signo) };
            };
            // A frozen cgroup would hold the signal until thawed: SIGKILL
            // must act at once (runc freezes, signals, thaws the same way).
            let frozen = cg.is_frozen();
            let pids = match cg.pids() {
                Ok(p) => p,
                // Nothing left to signal once the cgroup itself is gone.
                Err(_) if status == Status::Stopped => vec![],
                Err(e) => return Err(e),
            };
            for p in pids {
                // SAFETY: plain kill(2) on a pid read from the container's cgroup.
                unsafe { libc::kill(p, signo) };
            }
            if frozen && signo == libc::SIGKILL {
                let _ = cg.set_frozen(false);
            }
            return Ok(());
        }
        if status == Status::Stopped {
            return Err(self.not_running());
        }
        self.signal_init(signo)
    }

    fn signal_init(&self, signo: i32) -> Result<()> {
        // SAFETY: plain kill(2); `alive()` checked the pid is still our init.
        if unsafe { libc::kill(self.rec.pid, signo) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Err(self.not_running());
            }
            return Err(Error::io(format!("kill {}", self.rec.pid), e));
        }
        Ok(())
    }

    fn not_running(&self) -> Error {
        Error::NotRunning { id: self.rec.id.clone() }
    }

    /// Waits for init to exit. The exit code is known only to the process
    /// that created the container (init is its child).
    pub fn wait(&self) -> Result<ExitStatus> {
        use nix::sys::wait::{waitpid, WaitStatus};
        loop {
            match waitpid(Pid::from_raw(self.rec.pid), None) {
                Ok(WaitStatus::Exited(_, c)) => return Ok(ExitStatus::Exited(c)),
                Ok(WaitStatus::Signaled(_, s, _)) => return Ok(ExitStatus::Signaled(s as i32)),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ECHILD) => {
                    while self.alive() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    return Ok(ExitStatus::Unknown);
                }
                Err(e) => return Err(Error::sys("wait for container", e)),
            }
        }
    }

    /// Removes the container: its processes (`force` when running), cgroups,
    /// state directory; runs the poststop hooks.
    pub fn delete(self, force: bool) -> Result<()> {
        let s = self.status();
        match s {
            Status::Stopped | Status::Created => {}
            _ if force => {}
            _ => {
                return Err(Error::InvalidState {
                    id: self.rec.id.clone(),
                    state: s.to_string(),
                    op: "delete (use --force)",
                })
            }
        }
        if s != Status::Stopped {
            let _ = nix::sys::signal::kill(Pid::from_raw(self.rec.pid), Signal::SIGKILL);
        }
        if let Some(cg) = &self.cgroup {
            cg.destroy()?;
        }
        self.reap_init();
        let state = Self::oci_state_of(&self.rec, Status::Stopped);
        crate::hooks::run_all_warn("poststop", &self.rec.poststop, &state);
        self.store.remove(&self.rec.id)
    }

    /// `delete [--force] ID` as runc: a directory left without a readable
    /// state (a `create` killed half-way, a corrupt state.json) is removed;
    /// with `force` an absent or half-made container is not an error.
    pub fn delete_by_id(root: &Path, id: &str, force: bool) -> Result<()> {
        let store = StateStore::new(root);
        match Container::load(root, id) {
            Ok(c) => c.delete(force),
            Err(e @ (Error::NotFound { .. } | Error::Spec { .. })) => {
                store.remove(id)?;
                if force {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Collects init if it is our child; otherwise waits for it to vanish.
    fn reap_init(&self) {
        if self.rec.pid <= 0 {
            return;
        }
        let _ = nix::sys::wait::waitpid(Pid::from_raw(self.rec.pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive() && Instant::now() < deadline {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(self.rec.pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub(crate) fn cgroup(&self) -> Result<&dyn CgroupManager> {
        self.cgroup.as_deref().ok_or_else(|| Error::Unsupported("this container has no cgroup".into()))
    }

    pub fn pause(&self) -> Result<()> {
        self.require(&[Status::Running], "pause")?;
        self.cgroup()?.set_frozen(true)
    }

    pub fn resume(&self) -> Result<()> {
        self.require(&[Status::Paused], "resume")?;
        self.cgroup()?.set_frozen(false)
    }

    /// Changes resource limits of a live container.
    pub fn update(&self, r: &LinuxResources) -> Result<()> {
        self.require(&[Status::Created, Status::Running, Status::Paused], "update")?;
        self.cgroup()?.apply(r)
    }

    /// Memory, CPU and pids usage.
    pub fn stats(&self) -> Result<Stats> {
        self.cgroup()?.stats()
    }

    /// `events --stats`: usage in runc's JSON schema; like runc, an error
    /// once the container has stopped.
    pub fn runc_stats(&self) -> Result<cgroups::runc_stats::RuncStats> {
        if self.status() == Status::Stopped {
            return Err(self.not_running());
        }
        Ok(cgroups::runc_stats::collect(self.cgroup()?.record()))
    }

    /// Pids of every process in the container.
    pub fn pids(&self) -> Result<Vec<i32>> {
        self.cgroup()?.pids()
    }

    pub(crate) fn store_root(&self) -> &std::path::Path {
        self.store.root()
    }

    pub(crate) fn record(&self) -> &Record {
        &self.rec
    }
}

use std::os::unix::fs::OpenOptionsExt;

fn start_by_channel(chan: &Channel, hold: bool) -> Result<()> {
    if hold {
        chan.send(&Msg::Start).ctx(|| "signal container start")?;
    }
    // The channel is close-on-exec in init: EOF means the exec happened.
    match chan.recv() {
        Ok(None) => Ok(()),
        Ok(Some(Msg::Error(e))) => Err(Error::Init(e)),
        Ok(Some(m)) => Err(Error::Init(format!("unexpected message {m:?}"))),
        Err(e) => Err(Error::io("wait for container start", e)),
    }
}
