//! `create`: the runtime side of making a container, as named steps.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::caps::CapSets;
use crate::cgroups;
use crate::container::{Container, CreateOptions};
use crate::error::{Context, Error, Result};
use crate::init::{self, InitArgs};
use crate::namespaces::NsPlan;
use crate::seccomp::Filter;
use crate::state::{Phase, Record, StateStore, FIFO_FILE};
use crate::sync::{Channel, Msg};

/// A loaded, checked bundle.
pub(crate) struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

/// Reads `<bundle>/config.json` and checks what must hold before anything is made.
pub(crate) fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(bundle).ctx(|| format!("bundle {}", bundle.display()))?;
    let cfg = dir.join("config.json");
    let data = std::fs::read(&cfg).ctx(|| format!("read {}", cfg.display()))?;
    let spec: Spec =
        serde_json::from_slice(&data).map_err(|e| Error::Spec { path: cfg.clone(), reason: e.to_string() })?;
    let root =
        spec.root().as_ref().ok_or_else(|| Error::Spec { path: cfg.clone(), reason: "root is missing".into() })?;
    let rootfs = dir.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| Error::Spec { path: cfg.clone(), reason: format!("rootfs {}: {e}", rootfs.display()) })?;
    if !rootfs.is_dir() {
        return Err(Error::Spec { path: cfg, reason: format!("rootfs {} is not a directory", rootfs.display()) });
    }
    if spec.process().is_none() {
        return Err(Error::Spec { path: cfg, reason: "process is missing".into() });
    }
    Ok(Bundle { dir, spec, rootfs })
}

/// Things to undo if create fails half-way.
struct Cleanup<'a> {
    store: &'a StateStore,
    id: &'a str,
    cgroup: Option<cgroups::CgroupRecord>,
    pids: Vec<i32>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for &p in &self.pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(p), nix::sys::signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(p), None);
        }
        if let Some(rec) = self.cgroup.take() {
            let _ = cgroups::from_record(rec).destroy();
        }
        let _ = self.store.remove(self.id);
    }
}

pub(crate) fn create(store: &StateStore, id: &str, bundle: &Path, opts: &CreateOptions) -> Result<Container> {
    let b = load_bundle(bundle)?;
    let linux = b.spec.linux().clone().unwrap_or_default();
    let ns = NsPlan::from_spec(linux.namespaces().as_deref().unwrap_or_default())?;
    if !ns.has(oci_spec::runtime::LinuxNamespaceType::Mount) {
        crate::rootfs::check_without_mount_ns(&b.spec)?;
    }
    let (seccomp, caps) = privileges(store, &b)?;
    let dir = store.claim(id)?;
    let mut cleanup = Cleanup { store, id, cgroup: None, pids: vec![], armed: true };
    let cg = cgroups::create(linux.cgroups_path().as_deref(), id, opts.systemd_cgroup)?;
    cleanup.cgroup = Some(cg.record().clone());
    if let Some(r) = linux.resources() {
        cg.apply(r)?;
    }
    // A state written now lets `delete --force` find the cgroup (and init,
    // once known) should this process be killed half-way.
    let mut rec = new_record(id, &b, cg.record(), &ns, opts);
    store.save(&rec)?;
    let fifo = if opts.exec_fifo { Some(make_fifo(&dir)?) } else { None };
    let placement = cg.placement()?;
    let (parent_end, child_end) = Channel::pair().ctx(|| "socketpair")?;
    let console = opts.console_socket.as_deref().map(crate::console::connect).transpose()?;
    let args = InitArgs {
        id,
        spec: &b.spec,
        rootfs: &b.rootfs,
        bundle: &b.dir,
        ns: &ns,
        chan: &child_end,
        fifo: fifo.as_ref(),
        console: console.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
        stdio: opts.stdio,
        cgroup_paths: &cg.record().paths,
        placement: &placement,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds,
        hold: opts.exec_fifo || opts.hold_until_start,
        runtime_hooks: has_runtime_hooks(&b.spec),
        caps,
        seccomp: seccomp.as_ref(),
    };
    let (mid, init_pid) = if init::can_clone_directly(&ns) {
        (0, init::spawn_direct(&args, std::os::fd::AsRawFd::as_raw_fd(&parent_end.0))?)
    } else {
        // SAFETY: the child only runs init code and leaves with _exit; fork
        // (not a raw clone) keeps glibc's allocator consistent in
        // multi-threaded callers.
        match unsafe { nix::unistd::fork() }.ctx(|| "fork")? {
            nix::unistd::ForkResult::Child => {
                drop(parent_end);
                init::intermediate(&args)
            }
            nix::unistd::ForkResult::Parent { child } => (child.as_raw(), 0),
        }
    };
    drop(child_end);
    drop(console);
    cleanup.pids.push(mid.max(init_pid));
    cg.leave()?;
    if init_pid > 0 {
        rec.pid = init_pid;
        rec.pid_start = crate::sys::process_start_time(init_pid).unwrap_or(0);
        store.save(&rec)?;
    }
    drop(placement);
    drive_setup(store, &b, &linux, &parent_end, mid, &mut rec, &mut cleanup.pids)?;
    rec.phase = Phase::Created;
    store.save(&rec)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, rec.pid)?;
    }
    cleanup.armed = false;
    let hold = opts.exec_fifo || opts.hold_until_start;
    Ok(Container::from_parts(store.clone(), rec, Some(cg), (!opts.exec_fifo).then_some(parent_end), hold))
}

/// The state record of a container being created.
fn new_record(id: &str, b: &Bundle, cg: &cgroups::CgroupRecord, ns: &NsPlan, opts: &CreateOptions) -> Record {
    let mut rec = Record {
        id: id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: b.dir.clone(),
        rootfs: b.rootfs.clone(),
        created: crate::sys::rfc3339_now(),
        owner: String::new(),
        annotations: b.spec.annotations().clone().unwrap_or_default(),
        phase: Phase::Creating,
        cgroup: Some(cg.clone()),
        poststart: vec![],
        poststop: vec![],
        namespaces: ns.names(),
        own_pid_ns: ns.new.contains(nix::sched::CloneFlags::CLONE_NEWPID),
        no_pivot: opts.no_pivot,
        process: b.spec.process().clone(),
        seccomp: b.spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
        use_fifo: opts.exec_fifo,
    };
    if let Some(h) = b.spec.hooks() {
        rec.poststart = h.poststart().clone().unwrap_or_default();
        rec.poststop = h.poststop().clone().unwrap_or_default();
    }
    rec
}

/// LSM check, seccomp program and capability masks, resolved before
/// anything exists so that a bad profile or label leaves nothing behind.
fn privileges(store: &StateStore, b: &Bundle) -> Result<(Option<Filter>, Option<CapSets>)> {
    let process =
        b.spec.process().as_ref().ok_or_else(|| Error::InvalidArgument("config.json has no process".into()))?;
    crate::security::check_lsm(&b.spec, process)?;
    let profile = b.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let seccomp = crate::seccomp::compile_cached(profile, store.root())?;
    Ok((seccomp, process.capabilities().as_ref().map(CapSets::from_spec)))
}

#[allow(deprecated)]
fn has_runtime_hooks(spec: &Spec) -> bool {
    spec.hooks().as_ref().is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    })
}

fn make_fifo(dir: &Path) -> Result<OwnedFd> {
    let p = dir.join(FIFO_FILE);
    // 0622: the user process may run as any uid and must open it for writing.
    nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o622)).ctx(|| format!("mkfifo {}", p.display()))?;
    // mkfifo is subject to our umask; set the mode explicitly.
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .ctx(|| format!("chmod {}", p.display()))?;
    nix::fcntl::open(&p, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open {}", p.display()))
}

/// Answers the forked processes until init reports it is ready.
fn drive_setup(
    store: &StateStore,
    b: &Bundle,
    linux: &oci_spec::runtime::Linux,
    chan: &Channel,
    mid: i32,
    rec: &mut Record,
    pids: &mut Vec<i32>,
) -> Result<()> {
    // Init and the intermediate share the channel: init's messages can
    // overtake the intermediate's Pid; hold them until the pid is known.
    let mut held = std::collections::VecDeque::new();
    loop {
        let msg = match held.pop_front() {
            Some(m) if rec.pid > 0 => Some(m),
            Some(m) => {
                held.push_front(m);
                chan.recv().ctx(|| "sync with container init")?
            }
            None => chan.recv().ctx(|| "sync with container init")?,
        };
        if rec.pid == 0 && matches!(msg, Some(Msg::RunHooks) | Some(Msg::Ready)) {
            held.extend(msg);
            continue;
        }
        match msg {
            Some(Msg::NeedIdMaps) => {
                write_id_map(mid, "uid_map", linux.uid_mappings().as_deref())?;
                write_id_map(mid, "gid_map", linux.gid_mappings().as_deref())?;
                chan.send(&Msg::IdMapsDone).ctx(|| "sync")?;
            }
            Some(Msg::Pid(p)) => {
                rec.pid = p;
                rec.pid_start = crate::sys::process_start_time(p).unwrap_or(0);
                pids.insert(0, p);
                store.save(rec)?;
                let _ = nix::sys::wait::waitpid(Pid::from_raw(mid), None);
                pids.retain(|&x| x != mid);
            }
            Some(Msg::RunHooks) => {
                store.save(rec)?;
                let hooks = b.spec.hooks().clone().unwrap_or_default();
                let state = Container::oci_state_of(rec, crate::state::Status::Creating);
                #[allow(deprecated)]
                let prestart = hooks.prestart().clone().unwrap_or_default();
                crate::hooks::run_all("prestart", &prestart, &state)?;
                let cr = hooks.create_runtime().clone().unwrap_or_default();
                crate::hooks::run_all("createRuntime", &cr, &state)?;
                chan.send(&Msg::HooksDone).ctx(|| "sync")?;
            }
            Some(Msg::Ready) => return Ok(()),
            Some(Msg::Error(e)) => return Err(Error::Init(e)),
            Some(m) => return Err(Error::Init(format!("unexpected message {m:?}"))),
            None => return Err(Error::Init("container init exited during setup".into())),
        }
    }
}

fn write_id_map(pid: i32, file: &str, maps: Option<&[LinuxIdMapping]>) -> Result<()> {
    let maps = maps.unwrap_or_default();
    if maps.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "a new user namespace needs linux.{}",
            if file == "uid_map" { "uidMappings" } else { "gidMappings" }
        )));
    }
    let text: String = maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect();
    let p = format!("/proc/{pid}/{file}");
    std::fs::write(&p, text).ctx(|| format!("write {p}"))
}

pub(crate) fn write_pid_file(p: &Path, pid: i32) -> Result<()> {
    let tmp = p.with_extension("wharf-tmp");
    std::fs::write(&tmp, pid.to_string()).ctx(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, p).ctx(|| format!("write pid file {}", p.display()))
}
