//! `wharf run`: the image's overlay rootfs, an OCI spec from the runtime's
//! spec helper + the image config + the flags, then the container started
//! under its monitor (`-d`: the ID is returned; in the foreground: attached
//! to the monitor's socket until the exit, then cleaned up by this process).

use crate::container::attach::{Client, End, RelayOptions};
use crate::container::proto::{self, Hello};
use crate::container::{Containers, Start};
use crate::error::{Error, Result};
use crate::network::{self, Attachment};
use std::path::{Path, PathBuf};
use wharf_image::Store;
use wharf_runtime::spec::ImageOverrides;

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
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
    /// `--dns-search DOMAIN`: resolv.conf's `search` (`.`: none).
    pub dns_search: Vec<String>,
    /// `--dns-option OPT`: resolv.conf's `options`.
    pub dns_options: Vec<String>,
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
    /// `--platform os/arch[/variant]`: that platform's image of an index
    /// (pulled if the store lacks it); the host's by default.
    pub platform: Option<String>,
    /// `--restart no|always|unless-stopped|on-failure[:N]`.
    pub restart: Option<String>,
    /// `--log-opt max-size=…`, `max-file=…`.
    pub log_opts: Vec<String>,
    /// The OCI runtime binary (runc's CLI: runc, crun); None: wharf-runtime.
    /// A pod member gets its pod's.
    pub runtime: Option<PathBuf>,
    /// `--stop-signal` (default: the image's StopSignal, else SIGTERM).
    pub stop_signal: Option<String>,
    /// `--stop-timeout` seconds (default 10).
    pub stop_timeout: Option<u64>,
    /// `--label KEY=VALUE`.
    pub labels: Vec<String>,
    /// `--annotation KEY=VALUE`: the OCI spec's annotations (and inspect's).
    pub annotations: Vec<String>,
    /// `--health-cmd`, `--health-interval`, … and `--no-healthcheck`.
    pub health: crate::health::HealthOptions,
    /// Kubernetes probes (`kube play`), run by the monitor.
    pub probes: Vec<crate::health::Probe>,
    /// The monitor's restart back-off `[first, max, reset after]` in ms;
    /// `None`: Docker's (100 ms doubling to 1 min, reset after 10 s up).
    pub restart_backoff: Option<[u64; 3]>,
    /// Told what the user should know on the way (`Unable to find image …`).
    #[serde(skip)]
    pub notice: Option<fn(&str)>,
    pub host: crate::hostconfig::HostConfig,
    /// `--pod NAME|ID|new:NAME`: the pod the container joins (its network,
    /// ipc, uts and cgroup); recorded as the pod's ID.
    pub pod: Option<String>,
    /// What the kubelet asks beyond these flags (`wharf cri`).
    pub kubelet: Option<crate::kubelet::KubeSpec>,
}

/// Kubernetes' CrashLoopBackOff: 10 s doubling to 5 min, reset after 10 min up.
pub const KUBE_BACKOFF: [u64; 3] = [10_000, 300_000, 600_000];

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

pub(crate) fn image(store: &Store, o: &RunOptions) -> Result<wharf_image::Image> {
    let platform = o.platform.as_deref().map(wharf_image::Platform::parse).transpose()?;
    let resolve = || match &platform {
        Some(p) => store.resolve_for(&o.image, p),
        None => store.resolve(&o.image),
    };
    match resolve() {
        Ok(i) => Ok(i),
        Err(e) if e.kind() == wharf_image::ErrorKind::NotFound && o.pull_missing => {
            let r = wharf_image::Reference::parse(&o.image)?;
            if let Some(notice) = o.notice {
                notice(&format!("Unable to find image '{}' locally", r.familiar()));
            }
            let reg = wharf_registry::Registry::new(r.domain(), wharf_registry::RegistryOptions::default())?;
            let popts = wharf_registry::PullOptions {
                platform: platform.as_ref().map(|p| p.to_string()),
                ..Default::default()
            };
            wharf_registry::block_on(reg.pull(store, &r, &popts))?;
            Ok(resolve()?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Builds the bundle's config.json for `img` under `o`.
pub(crate) fn write_spec(
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
    if let Some(pod) = &o.pod {
        crate::pod::member_spec(&mut v, (store_root, run_root), pod, id)?;
        if let Some(k) = &o.kubelet {
            crate::kubelet::apply(&mut v, k)?;
        }
    } else if let Some(a) = net {
        crate::spec::join_network(&mut v, a.netns(), a.mounts(), o.hostname.as_deref().unwrap_or(&id[..12]));
    } else if let NetworkMode::Container(c) = &o.network {
        let j = network::joined(&network::Networks::new(store_root, run_root), c)?;
        crate::spec::join_network(&mut v, &j.netns, &j.files, o.hostname.as_deref().unwrap_or(&j.hostname));
    }
    if o.runtime.is_some() {
        // A runtime handler's binary: crun (1.8) refuses any ociVersion
        // but 1.0.x ("unknown version specified"); runc takes any.
        v["ociVersion"] = "1.0.2".into();
    }
    let bytes = serde_json::to_vec_pretty(&v).map_err(|e| Error::InvalidArgument(format!("spec: {e}")))?;
    std::fs::write(bundle.join("config.json"), bytes).map_err(|e| Error::io(format!("write {}", bundle.display()), e))
}

/// `run -d`: the container created and started; its ID.
pub fn run_detached(store: &Store, run_root: &Path, o: &RunOptions) -> Result<String> {
    let cs = Containers::new(store.root(), run_root);
    let c = cs.create(store, o)?;
    if let Err(e) = cs.start_swept(store, &c, Start::Now) {
        let _ = cs.remove(&c, true, true);
        return Err(e);
    }
    Ok(c.id().to_string())
}

/// Runs `o.image` in the foreground with the caller's stdio; returns the
/// container's exit code (128+N when killed by signal N). The container
/// has a monitor like any other: `ps` shows it, and it lives on if this
/// process is killed; this process cleans up after the exit itself.
pub fn run_foreground(store: &Store, run_root: &Path, o: &RunOptions) -> Result<i32> {
    let cs = Containers::new(store.root(), run_root);
    let c = cs.create(store, o)?;
    if let Err(e) = cs.start_swept(store, &c, Start::OnAttach) {
        let _ = cs.remove(&c, true, true);
        return Err(e);
    }
    let hello = Hello { stdin: o.interactive, stdout: true, stderr: true, cleaner: true };
    let mut client = Client::connect_with(&cs, c.id(), hello)?;
    if !o.tty {
        crate::console::forward_signals(&cs.state_root(), c.id());
    }
    match client.relay(RelayOptions { stdin: o.interactive, tty: o.tty, start: true })? {
        End::Exited(code) => {
            cs.cleanup(c.id());
            let _ = client.send(proto::CLEANED, &[]);
            // Until the monitor hangs up (it exits at once): nothing of the
            // container outlives this command.
            let _ = client.wait_exit(Some(std::time::Instant::now() + std::time::Duration::from_secs(5)));
            Ok(code)
        }
        End::Detached => Ok(0),
    }
}
