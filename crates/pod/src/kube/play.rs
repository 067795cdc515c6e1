//! Plans made real, and undone. Per pod: `<root>/kube/pods/<pod>/` holds
//! `play.json` (what was played, for `down`), the files of its ConfigMap
//! and Secret volumes (the dir is 0700; Secret files 0600 unless the
//! manifest sets a mode) and its emptyDirs (`medium: Memory`: a tmpfs
//! mounted there); PVCs are named volumes. Then the pod (the pods
//! module), its init containers one by one to completion, then its
//! containers. A failure undoes everything this play made.

use super::plan::{ContainerPlan, PodPlan, Source};
use crate::container::Containers;
use crate::error::{Error, Result};
use crate::pod::{PodOptions, Pods};
use crate::run::NetworkMode;
use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wharf_image::Store;

/// How long `play` retries a failing init container by default.
const INIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Label of the volumes `play` made for claims.
pub const LABEL_CLAIM: &str = "io.wharf.kube.claim";

#[derive(Debug, Clone, Default)]
pub struct PlayOptions {
    /// The network of the pods (`bridge` is the default network).
    pub network: Option<String>,
    /// Remove the pods (and Deployment pods) of the same names first.
    pub replace: bool,
    /// Start the containers (false: created only).
    pub start: bool,
    /// Told what the user should know on the way.
    pub notice: Option<fn(&str)>,
    /// How long a failing init container is retried (with the kubelet's
    /// back-off) before play gives up and undoes the pod; None: 2 min.
    pub init_timeout: Option<std::time::Duration>,
}

/// What `play.json` records of a pod.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Played {
    pub pod: String,
    pub deployment: Option<String>,
    /// emptyDirs mounted as tmpfs, to unmount at `down`.
    pub tmpfs: Vec<PathBuf>,
    /// Named volumes this play created for claims.
    pub claims: Vec<String>,
    /// The pod's volumes as the manifest wrote them (for `generate`).
    pub volumes: Vec<k8s_openapi::api::core::v1::Volume>,
    /// The pod's `securityContext.fsGroup` (for `generate`).
    pub fs_group: Option<i64>,
    /// Per container: variables from Secrets (variable, secret, key).
    pub secret_env: BTreeMap<String, Vec<(String, String, String)>>,
}

pub struct Kube<'a> {
    store: &'a Store,
    run_root: PathBuf,
}

fn io(what: impl std::fmt::Display, p: &Path, e: std::io::Error) -> Error {
    Error::io(format!("{what} {}", p.display()), e)
}

impl<'a> Kube<'a> {
    pub fn new(store: &'a Store, run_root: &Path) -> Self {
        Kube { store, run_root: run_root.to_path_buf() }
    }

    fn pods(&self) -> Pods {
        Pods::new(self.store.root(), &self.run_root)
    }

    fn containers(&self) -> Containers {
        Containers::new(self.store.root(), &self.run_root)
    }

    fn dir(&self, pod: &str) -> PathBuf {
        self.store.root().join("kube").join("pods").join(pod)
    }

    /// Every pod `play` made, as recorded.
    pub fn played(&self) -> Vec<Played> {
        let Ok(rd) = std::fs::read_dir(self.store.root().join("kube").join("pods")) else { return Vec::new() };
        rd.flatten()
            .filter_map(|e| std::fs::read(e.path().join("play.json")).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    /// Plays the pods; their names. All or nothing.
    pub fn play(&self, plans: &[PodPlan], o: &PlayOptions) -> Result<Vec<String>> {
        // Checks first: nothing is made while one can still fail.
        let deployments: Vec<&str> = plans.iter().filter_map(|p| p.deployment.as_deref()).collect();
        let pods = self.pods();
        for p in plans {
            if pods.get(&p.name).is_ok() && !(o.replace && p.deployment.is_none()) {
                return Err(Error::Conflict(format!(
                    "pod {:?} already exists (kube play --replace replaces it)",
                    p.name
                )));
            }
        }
        for d in &deployments {
            if !o.replace && self.played().iter().any(|x| x.deployment.as_deref() == Some(d)) {
                return Err(Error::Conflict(format!(
                    "deployment {d:?} is already played (kube play --replace replaces it)"
                )));
            }
        }
        for p in plans {
            for c in p.init.iter().chain(&p.containers) {
                self.image_ready(c, o)?;
            }
            for v in &p.volumes {
                if let Source::HostPath(h, kind) = &v.source {
                    if kind == "Directory" || kind == "File" {
                        host_path(h, kind)?;
                    }
                }
            }
        }
        if o.replace {
            let mut gone: Vec<String> =
                plans.iter().filter(|p| p.deployment.is_none()).map(|p| p.name.clone()).collect();
            gone.extend(
                self.played()
                    .into_iter()
                    .filter(|x| x.deployment.as_deref().is_some_and(|d| deployments.contains(&d)))
                    .map(|x| x.pod),
            );
            for name in gone {
                self.down_pod(&name, false)?;
            }
        }
        let mut made = Vec::new();
        for p in plans {
            made.push(p.name.clone());
            if let Err(e) = self.play_pod(p, o) {
                let mut claims = Vec::new();
                for name in made.iter().rev() {
                    claims.extend(self.down_pod(name, false).unwrap_or_default());
                }
                self.remove_volumes(&claims);
                return Err(e);
            }
        }
        Ok(made)
    }

    /// The image is there (pulled if the policy says so); `runAsNonRoot` holds.
    fn image_ready(&self, c: &ContainerPlan, o: &PlayOptions) -> Result<()> {
        if c.pull_always {
            let r = wharf_image::Reference::parse(&c.run.image)?;
            if let Some(n) = o.notice {
                n(&format!("Trying to pull {}...", r.familiar()));
            }
            let reg = wharf_registry::Registry::new(r.domain(), wharf_registry::RegistryOptions::default())?;
            wharf_registry::block_on(reg.pull(self.store, &r, &wharf_registry::PullOptions::default()))?;
        }
        let mut ro = c.run.clone();
        ro.notice = o.notice;
        let img = crate::run::image(self.store, &ro)?;
        if c.run_as_non_root && c.run.user.is_none() {
            let user = img.config.config().as_ref().and_then(|cfg| cfg.user().clone()).unwrap_or_default();
            let uid = user.split(':').next().unwrap_or("");
            if uid.is_empty() || uid == "0" || uid == "root" {
                return Err(Error::InvalidArgument(format!(
                    "container {:?}: container has runAsNonRoot and image will run as root",
                    c.name
                )));
            }
            if uid.parse::<u32>().is_err() {
                return Err(Error::InvalidArgument(format!(
                    "container {:?}: container has runAsNonRoot and image has non-numeric user ({uid}), cannot verify user is non-root",
                    c.name
                )));
            }
        }
        Ok(())
    }

    fn play_pod(&self, p: &PodPlan, o: &PlayOptions) -> Result<()> {
        let dir = self.dir(&p.name);
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| io("create", &dir, e))?;
        let mut played = Played { pod: p.name.clone(), deployment: p.deployment.clone(), ..Default::default() };
        for c in p.init.iter().chain(&p.containers) {
            played.secret_env.insert(c.name.clone(), c.secret_env.clone());
        }
        played.volumes = p.volumes.iter().map(|v| v.k8s.clone()).collect();
        played.fs_group = p.fs_group;
        self.record(&dir, &played)?;
        let sources = self.volumes(p, &dir, &mut played);
        self.record(&dir, &played)?;
        let sources = sources?;
        self.create_pod(p, o)?;
        for c in &p.init {
            let run = self.run_options(p, c, &sources)?;
            let id = crate::run::run_detached(self.store, &self.run_root, &run)?;
            self.wait_init(p, c, &id, o.init_timeout.unwrap_or(INIT_TIMEOUT))?;
        }
        for c in &p.containers {
            let mut run = self.run_options(p, c, &sources)?;
            if o.start {
                crate::run::run_detached(self.store, &self.run_root, &run)?;
            } else {
                run.notice = None;
                self.containers().create(self.store, &run)?;
            }
        }
        Ok(())
    }

    /// Until init container `id` completed: its monitor restarts it after
    /// a failure (restartPolicy OnFailure or Always) with the kubelet's
    /// back-off; a failure under Never, or no success within `limit`, is
    /// an error (play then undoes the pod, as a `podman kube play` whose
    /// init container fails reports it and starts nothing).
    fn wait_init(&self, p: &PodPlan, c: &ContainerPlan, id: &str, limit: std::time::Duration) -> Result<()> {
        let cs = self.containers();
        let deadline = std::time::Instant::now() + limit;
        loop {
            let ctr = cs.get(id)?;
            if ctr.status == crate::Status::Exited {
                let code = cs.wait(&ctr)?;
                if code == 0 {
                    return Ok(());
                }
                return Err(Error::Conflict(format!(
                    "pod {:?}: init container {:?} exited with code {code} (restartPolicy {})",
                    p.name, c.name, p.restart_policy
                )));
            }
            if std::time::Instant::now() >= deadline {
                let s = &ctr.state;
                return Err(Error::Conflict(format!(
                    "pod {:?}: init container {:?} did not complete within {}s (restartPolicy {}: {} restarts, last exit code {}, {}): the pod cannot start",
                    p.name,
                    c.name,
                    limit.as_secs(),
                    p.restart_policy,
                    s.restart_count,
                    s.exit_code,
                    if ctr.status == crate::Status::Restarting { "in CrashLoopBackOff" } else { "still running" },
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    fn record(&self, dir: &Path, played: &Played) -> Result<()> {
        let tmp = dir.join(".play.json.tmp");
        let body = serde_json::to_vec_pretty(played).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        std::fs::write(&tmp, body).map_err(|e| io("write", &tmp, e))?;
        std::fs::rename(&tmp, dir.join("play.json")).map_err(|e| io("rename", &tmp, e))
    }

    /// The pod sandbox: Kubernetes shares net, IPC and UTS, and pid with
    /// `shareProcessNamespace`; its cgroup limits are the sums of the
    /// containers' when every container has one.
    fn create_pod(&self, p: &PodPlan, o: &PlayOptions) -> Result<()> {
        let sum_mem: Option<i64> =
            p.containers.iter().map(|c| c.run.memory.as_deref().and_then(|m| m.parse::<i64>().ok())).sum();
        let sum_cpu: Option<f64> = p.containers.iter().map(|c| c.run.cpus).sum();
        let mut labels = p.labels.clone();
        if let Some(d) = &p.deployment {
            labels.insert(super::plan::LABEL_DEPLOYMENT.into(), d.clone());
        }
        let opts = PodOptions {
            name: Some(p.name.clone()),
            publish: p.publish.clone(),
            network: match o.network.as_deref() {
                _ if p.host_network => NetworkMode::Host,
                Some("none") => NetworkMode::None,
                Some("host") => NetworkMode::Host,
                n => NetworkMode::Bridge(n.unwrap_or("bridge").to_string()),
            },
            hostname: Some(p.hostname.clone().unwrap_or_else(|| p.name.clone())),
            add_hosts: p.add_hosts.clone(),
            dns: p.dns.clone(),
            dns_search: p.dns_search.clone(),
            dns_options: p.dns_options.clone(),
            share: pod_share(p.share_pid),
            cpus: sum_cpu,
            memory: sum_mem,
            labels,
            annotations: p.annotations.clone(),
            infra: true,
            cni: None,
            ..Default::default()
        };
        self.pods().create(&opts)?;
        Ok(())
    }

    /// Each volume's host side (made now): name → (path or volume name, is a named volume).
    fn volumes(&self, p: &PodPlan, dir: &Path, played: &mut Played) -> Result<BTreeMap<String, (String, bool)>> {
        let mut out = BTreeMap::new();
        let uid = p
            .containers
            .iter()
            .find_map(|c| c.run.user.as_deref())
            .and_then(|u| u.split(':').next()?.parse::<u32>().ok());
        for v in &p.volumes {
            let path = dir.join("volumes").join(&v.name);
            let host = match &v.source {
                Source::EmptyDir { memory, size } => {
                    mkdir(&path, 0o777)?;
                    if *memory {
                        let opts = match size {
                            Some(s) => format!("size={s},mode=1777"),
                            None => "mode=1777".to_string(),
                        };
                        rustix::mount::mount(
                            "tmpfs",
                            &path,
                            "tmpfs",
                            rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
                            Some(std::ffi::CString::new(opts).unwrap_or_default().as_c_str()),
                        )
                        .map_err(|e| io("mount tmpfs on", &path, e.into()))?;
                        played.tmpfs.push(path.clone());
                    }
                    if let Some(g) = p.fs_group {
                        chown_group(&path, g as u32, 0o2777)?;
                    }
                    (path.to_string_lossy().into_owned(), false)
                }
                Source::HostPath(h, kind) => {
                    host_path(h, kind)?;
                    (h.clone(), false)
                }
                Source::Claim { name, .. } => {
                    let vols = crate::volume::Volumes::new(self.store.root());
                    if vols.get(name).is_err() {
                        let mut labels = BTreeMap::new();
                        labels.insert(LABEL_CLAIM.to_string(), name.clone());
                        vols.create(&crate::volume::CreateVolume {
                            name: Some(name.clone()),
                            labels,
                            ..Default::default()
                        })?;
                        played.claims.push(name.clone());
                    }
                    (name.clone(), true)
                }
                Source::Files { secret, files, .. } => {
                    mkdir(&path, 0o755)?;
                    for (rel, bytes, mode) in files {
                        let f = path.join(rel);
                        if let Some(parent) = f.parent() {
                            mkdir(parent, 0o755)?;
                        }
                        // Kubernetes' default mode is 0644; a Secret's stays 0600 unless the manifest says.
                        let mode = if *secret && *mode == 0o644 { 0o600 } else { *mode };
                        std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .mode(mode)
                            .open(&f)
                            .and_then(|mut w| std::io::Write::write_all(&mut w, bytes))
                            .map_err(|e| io("write", &f, e))?;
                        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode))
                            .map_err(|e| io("chmod", &f, e))?;
                        if *secret {
                            if let Some(u) = uid {
                                let _ = std::os::unix::fs::chown(&f, Some(u), p.fs_group.map(|g| g as u32));
                            }
                        }
                    }
                    (path.to_string_lossy().into_owned(), false)
                }
            };
            out.insert(v.name.clone(), host);
        }
        Ok(out)
    }

    fn run_options(
        &self,
        p: &PodPlan,
        c: &ContainerPlan,
        sources: &BTreeMap<String, (String, bool)>,
    ) -> Result<crate::RunOptions> {
        let mut run = c.run.clone();
        run.pod = Some(p.name.clone());
        run.health.disable = true;
        for m in &c.mounts {
            let (host, named) = &sources[&m.volume];
            let src = match (&m.sub_path, named) {
                (Some(sp), false) => Path::new(host).join(sp).to_string_lossy().into_owned(),
                _ => host.clone(),
            };
            run.volumes.push(format!("{src}:{}{}", m.path, if m.read_only { ":ro" } else { "" }));
        }
        run.probes = [&c.startup, &c.liveness, &c.readiness].into_iter().flatten().cloned().collect();
        Ok(run)
    }

    /// `kube down`: the pod, its containers, its dir (tmpfs unmounted);
    /// the claims whose volumes should go: those `play` made, and with
    /// `volumes` every one the pod used.
    fn down_pod(&self, name: &str, volumes: bool) -> Result<Vec<String>> {
        // Read first: removing the pod forgets its kube dir too (`forget_pod`).
        let dir = self.dir(name);
        let played: Played =
            std::fs::read(dir.join("play.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let pods = self.pods();
        if pods.get(name).is_ok() {
            pods.rm(name, true)?;
        }
        for t in &played.tmpfs {
            let _ = rustix::mount::unmount(t, rustix::mount::UnmountFlags::DETACH);
        }
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove", &dir, e)),
            _ => {}
        }
        // The claims' volumes: those this play made (`volumes`), or every one
        // the pod used (`--force`), removed once no pod of the play uses them.
        let mut claims = played.claims.clone();
        if volumes {
            let used = played.volumes.iter().filter_map(|v| v.persistent_volume_claim.as_ref());
            claims.extend(used.map(|c| c.claim_name.clone()));
        }
        Ok(claims)
    }
}

/// A played pod removed without `kube down` (`pod rm`, `pod prune`, a
/// sweep): its Memory emptyDirs unmounted, its dir (ConfigMap and Secret
/// files, emptyDirs, the play record) removed. Nothing to do for other pods.
pub(crate) fn forget_pod(root: &Path, pod: &str) {
    let dir = root.join("kube").join("pods").join(pod);
    let Ok(bytes) = std::fs::read(dir.join("play.json")) else { return };
    let played: Played = serde_json::from_slice(&bytes).unwrap_or_default();
    for t in &played.tmpfs {
        let _ = rustix::mount::unmount(t, rustix::mount::UnmountFlags::DETACH);
    }
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::warn!("removing {}: {e}", dir.display());
    }
}

/// The kubelet's checks of a hostPath `type` (and what the `OrCreate` ones make).
fn host_path(h: &str, kind: &str) -> Result<()> {
    let p = Path::new(h);
    let bad = |what: &str| Error::InvalidArgument(format!("hostPath type check failed: {h} is not a {what}"));
    match kind {
        "Directory" if !p.is_dir() => Err(bad("directory")),
        "File" if !p.is_file() => Err(bad("file")),
        "DirectoryOrCreate" if !p.exists() => mkdir(p, 0o755),
        "FileOrCreate" if !p.exists() => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(p)
            .map(drop)
            .map_err(|e| io("create", p, e)),
        _ => Ok(()),
    }
}

fn mkdir(p: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(mode).create(p).map_err(|e| io("create", p, e))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(|e| io("chmod", p, e))
}

fn chown_group(p: &Path, gid: u32, mode: u32) -> Result<()> {
    std::os::unix::fs::chown(p, None, Some(gid)).map_err(|e| io("chown", p, e))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(|e| io("chmod", p, e))
}

fn pod_share(pid: bool) -> crate::pod::Share {
    crate::pod::Share { net: true, ipc: true, uts: true, pid }
}

impl Kube<'_> {
    /// `kube play FILE… [--configmap FILE…]`: the pods' names.
    pub fn play_files(
        &self,
        files: &[(String, String)],
        configmaps: &[(String, String)],
        o: &PlayOptions,
    ) -> Result<Vec<String>> {
        let mut extra = Vec::new();
        for (name, text) in configmaps {
            for (at, obj) in super::parse(name, text)? {
                if !matches!(obj, super::Object::ConfigMap(_) | super::Object::Secret(_)) {
                    return Err(Error::InvalidArgument(format!(
                        "{at}: --configmap takes ConfigMaps and Secrets, not a {}",
                        obj.kind()
                    )));
                }
                extra.push((at, obj));
            }
        }
        let mut names = super::deployment_pod_name;
        let (_, _, plans) = super::plan_with(files, extra, &mut names)?;
        self.play(&plans, o)
    }

    /// `kube down FILE…`: every pod of the files (a Deployment's: those
    /// `play` recorded for it) removed; with `volumes`, the named volumes
    /// `play` made for claims too. The pods removed.
    pub fn down_files(&self, files: &[(String, String)], volumes: bool) -> Result<Vec<String>> {
        let mut pods = Vec::new();
        let mut pvcs = Vec::new();
        let played = self.played();
        for (name, text) in files {
            for (_, obj) in super::parse(name, text)? {
                match obj {
                    super::Object::Pod(_) => pods.push(obj.name().to_string()),
                    super::Object::PersistentVolumeClaim(_) => pvcs.push(obj.name().to_string()),
                    super::Object::Deployment(_) => pods.extend(
                        played.iter().filter(|p| p.deployment.as_deref() == Some(obj.name())).map(|p| p.pod.clone()),
                    ),
                    _ => {}
                }
            }
        }
        let mut removed = Vec::new();
        let mut claims = Vec::new();
        for p in pods {
            let known = self.pods().get(&p).is_ok() || self.dir(&p).exists();
            if known {
                let made = self.down_pod(&p, volumes)?;
                // Without --force, the volumes of claims are kept (as podman).
                claims.extend(made.into_iter().filter(|_| volumes));
                removed.push(p);
            }
        }
        if volumes {
            claims.extend(pvcs);
            self.remove_volumes(&claims);
        }
        Ok(removed)
    }

    /// Named volumes removed (those gone already are no error; one in use is kept).
    fn remove_volumes(&self, names: &[String]) {
        let vols = crate::volume::Volumes::new(self.store.root());
        let mut seen = std::collections::BTreeSet::new();
        for n in names.iter().filter(|n| seen.insert(n.as_str())) {
            match vols.remove(n) {
                Ok(()) | Err(Error::NoSuchVolume(_)) => {}
                Err(e) => tracing::warn!("kube down: volume {n}: {e}"),
            }
        }
    }

    /// `kube generate POD`: its Pod manifest (YAML).
    pub fn generate(&self, pod: &str) -> Result<String> {
        let p = self.pods().get(pod)?;
        let dir = self.dir(&p.name);
        let played: Option<Played> =
            std::fs::read(dir.join("play.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        super::generate::generate(&p, played.as_ref(), &dir)
    }
}
