//! `wharf run` in the foreground: the image's overlay rootfs, an OCI spec
//! from the runtime's spec helper + the image config + the flags, the
//! runtime library in-process, the exit status, and nothing left after.

use crate::console::Console;
use crate::error::{Error, Result};
use crate::network::{self, AttachRequest, Attachment};
use std::path::{Path, PathBuf};
use wharf_image::Store;
use wharf_runtime::spec::ImageOverrides;
use wharf_runtime::{Container, CreateOptions};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// A new network namespace with only `lo`.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// A network by name (`bridge` is the default network, `wharf`).
    Bridge(String),
    /// Another container's network namespace (`container:NAME`).
    Container(String),
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub image: String,
    /// Replaces the image's Cmd.
    pub cmd: Vec<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub read_only: bool,
    pub memory: Option<String>,
    pub pids_limit: Option<i64>,
    pub cpus: Option<f64>,
    pub network: NetworkMode,
    /// The container's name (DNS on user networks; unique among running containers).
    pub name: Option<String>,
    pub network_aliases: Vec<String>,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<String>,
    /// `--dns IP`.
    pub dns: Vec<String>,
    /// `-p [IP:][HOST:]CTR[/PROTO]`.
    pub publish: Vec<String>,
    /// `-P`: every EXPOSEd port to a free host port.
    pub publish_all: bool,
    /// `-v`: `HOST:CONTAINER[:OPTS]`, `NAME:CONTAINER[:OPTS]`, `CONTAINER`.
    pub volumes: Vec<String>,
    /// `--mount type=bind|volume|tmpfs,…`.
    pub mounts: Vec<String>,
    /// `--tmpfs PATH[:OPTIONS]`.
    pub tmpfs: Vec<String>,
    /// `--rm`: the container's anonymous volumes go with it.
    pub rm: bool,
    pub tty: bool,
    pub interactive: bool,
    /// Pull the image when the store lacks it.
    pub pull_missing: bool,
    /// Told what the user should know on the way (`Unable to find image …`).
    pub notice: Option<fn(&str)>,
    pub host: crate::hostconfig::HostConfig,
}

/// A container's directory and the cleanup it needs, whatever happens.
/// Its lock is held until then: a later command that can take it knows
/// this process was killed (see `leftover`).
struct ContainerDir {
    dir: PathBuf,
    owner: Option<wharf_image::OwnedDir>,
}

impl ContainerDir {
    /// Leaves the dir for the leftover sweep; its lock is held until exit.
    fn abandon(mut self) {
        std::mem::forget(self.owner.take());
    }
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        let Some(owner) = self.owner.take() else { return };
        if let Err(e) = owner.remove() {
            tracing::warn!("removing {}: {e}", self.dir.display());
        }
    }
}

/// A new container ID: 64 hex characters, as Docker's.
pub(crate) fn new_id() -> String {
    let mut b = [0u8; 32];
    if rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        b[..16].copy_from_slice(&t.to_le_bytes());
        b[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn image(store: &Store, o: &RunOptions) -> Result<wharf_image::Image> {
    match store.resolve(&o.image) {
        Ok(i) => Ok(i),
        Err(e) if e.kind() == wharf_image::ErrorKind::NotFound && o.pull_missing => {
            let r = wharf_image::Reference::parse(&o.image)?;
            if let Some(notice) = o.notice {
                notice(&format!("Unable to find image '{}' locally", r.familiar()));
            }
            let reg = wharf_registry::Registry::new(r.domain(), wharf_registry::RegistryOptions::default())?;
            wharf_registry::block_on(reg.pull(store, &r, &wharf_registry::PullOptions::default()))?;
            Ok(store.resolve(&o.image)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Builds the bundle's config.json for `img` under `o`.
fn write_spec(
    img: &wharf_image::Image,
    o: &RunOptions,
    bundle: &Path,
    merged: &Path,
    id: &str,
    (net, mounts): (Option<&Attachment>, &[serde_json::Value]),
    (store_root, run_root): (&Path, &Path),
) -> Result<()> {
    let mut spec = wharf_runtime::spec::default_spec();
    let overrides = ImageOverrides {
        entrypoint: o.entrypoint.as_ref().map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] }),
        cmd: (!o.cmd.is_empty()).then(|| o.cmd.clone()),
        user: o.user.clone(),
        workdir: o.workdir.clone(),
        env: o.env.clone(),
    };
    wharf_runtime::spec::apply_image_config(&mut spec, img.config.config().as_ref(), merged, &overrides)?;
    let mut v = serde_json::to_value(&spec).map_err(|e| Error::InvalidArgument(format!("spec: {e}")))?;
    crate::spec::apply_flags(&mut v, o, merged, &format!("/wharf/{id}"), mounts)?;
    if let Some(a) = net {
        crate::spec::join_network(&mut v, a.netns(), a.mounts(), o.hostname.as_deref().unwrap_or(&id[..12]));
    } else if let NetworkMode::Container(c) = &o.network {
        let j = network::joined(&network::Networks::new(store_root, run_root), c)?;
        crate::spec::join_network(&mut v, &j.netns, &j.files, o.hostname.as_deref().unwrap_or(&j.hostname));
    }
    let bytes = serde_json::to_vec_pretty(&v).map_err(|e| Error::InvalidArgument(format!("spec: {e}")))?;
    std::fs::write(bundle.join("config.json"), bytes).map_err(|e| Error::io(format!("write {}", bundle.display()), e))
}

/// Runs `o.image` in the foreground with the caller's stdio; returns the
/// container's exit code (128+N when killed by signal N).
///
/// Setup: container dir → rootfs → volumes → network → container; an error
/// before the container exists undoes it in reverse (the guards drop in
/// reverse order), and [`teardown`] mirrors it after.
pub fn run_foreground(store: &Store, run_root: &Path, o: &RunOptions) -> Result<i32> {
    if let Err(e) = crate::leftover::remove_leftovers(store.root(), run_root) {
        tracing::warn!("removing containers of killed runs: {e}");
    }
    let specs = crate::volume::mounts::parse_run_flags(&o.volumes, &o.mounts, &o.tmpfs)?;
    let id = new_id();
    let (img, plan, guard, merged) = {
        // Held shared from resolve until the `image` file is written and the
        // rootfs mounted: `image prune -a` (exclusive) cannot drop the image
        // in between, and it sees the container once it gets the lock.
        let _content = store.content_lock()?;
        let img = image(store, o)?;
        let plan = crate::volume::attach::plan(&specs, &crate::volume::attach::image_volumes(&img))?;
        let owner = wharf_image::OwnedDir::create(&crate::leftover::containers_dir(store.root()), &id)?;
        let guard = ContainerDir { dir: owner.path().to_path_buf(), owner: Some(owner) };
        let image_file = guard.dir.join(crate::leftover::IMAGE_FILE);
        std::fs::write(&image_file, img.target.digest().to_string())
            .map_err(|e| Error::io(format!("write {}", image_file.display()), e))?;
        let merged = store.mount_rootfs(&img, &guard.dir)?.merged;
        (img, plan, guard, merged)
    };
    let dir = guard.dir.clone();
    let volumes = crate::volume::Volumes::new(store.root());
    // Dropped on an error before the container exists: its anonymous volumes go.
    let mounts = crate::volume::attach::attach(&volumes, &plan, &merged, &id)?;
    // For the leftover sweep, should this process be killed.
    mounts.record(&dir, o.rm)?;
    let net = attach_network(store, run_root, o, &img, &id, &dir)?;
    write_spec(&img, o, &dir, &merged, &id, (net.as_ref(), &mounts.oci), (store.root(), run_root))?;
    let state = run_root.join("runtime");
    let console = if o.tty { Some(Console::listen(run_root, &id)?) } else { None };
    if !o.interactive {
        detach_stdin()?;
    }
    let opts = CreateOptions {
        console_socket: console.as_ref().map(|c| c.path().to_path_buf()),
        exec_fifo: false,
        ..Default::default()
    };
    let mut ctr = Container::create(&state, &id, &dir, &opts)?;
    let code = (|| -> Result<i32> {
        if o.network == NetworkMode::None {
            crate::net::loopback_up(ctr.pid())?;
        }
        // After create (the init must not inherit a blocked mask), before any thread.
        crate::console::forward_signals(&state, &id);
        let relay = match &console {
            Some(c) => Some(c.attach(o.interactive)?),
            None => None,
        };
        ctr.start()?;
        let status = ctr.wait()?;
        drop(relay);
        Ok(status.code())
    })();
    drop(console);
    let torn = teardown(ctr, net, mounts, guard, o.rm);
    let code = code?;
    torn?;
    Ok(code)
}

/// Setup undone in reverse, once the container existed: container →
/// network → volumes (anonymous ones only with `--rm`, as Docker) → dir.
/// If the container cannot be deleted it may still run: nothing else is
/// touched, and the next command's leftover sweep removes it all once this
/// process (and with it the dir's owner lock) is gone.
fn teardown(
    ctr: Container,
    net: Option<Attachment>,
    mounts: crate::volume::attach::AttachedMounts,
    guard: ContainerDir,
    rm: bool,
) -> Result<()> {
    if let Err(e) = ctr.delete(true) {
        // Their locks stay held until exit, so nobody sweeps them before.
        std::mem::forget(net);
        mounts.abandon();
        guard.abandon();
        return Err(e.into());
    }
    let detached = net.map_or(Ok(()), Attachment::teardown);
    let released = mounts.release(rm);
    drop(guard);
    detached.and(released)
}

/// `--network NAME`: the container's netns, CNI ADD, DNS and /etc files,
/// before the container exists; `None` for the other modes.
fn attach_network(
    store: &Store,
    run_root: &Path,
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
        files_dir: dir.to_path_buf(),
    };
    Attachment::setup(&network::Networks::new(store.root(), run_root), &req).map(Some)
}

/// Without `-i` the container's stdin is /dev/null, as Docker's.
fn detach_stdin() -> Result<()> {
    let null = std::fs::File::open("/dev/null").map_err(|e| Error::io("open /dev/null", e))?;
    rustix::stdio::dup2_stdin(&null).map_err(|e| Error::io("redirect stdin", e.into()))
}
