//! RUN: a container on an overlay of the stage's layers, through the
//! runtime library in-process; its layer is the overlay's upper dir.

use super::error::{BuildError, BuildResult};
use super::state::ImageState;
use super::Ctx;
use crate::{Command, MountType, Network, Run, Sharing, Step};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wharf_runtime::{Container, CreateOptions};

/// The spec's mount destinations (and their parents) that do not exist in
/// the rootfs yet, shallowest first: the runtime will create them, and they
/// are dropped from the layer if still empty afterwards (buildah does too).
fn mount_targets(spec: &Value, rootfs: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in spec["mounts"].as_array().into_iter().flatten() {
        let Some(dest) = m["destination"].as_str() else { continue };
        let mut path = String::new();
        for comp in dest.split('/').filter(|c| !c.is_empty() && *c != "." && *c != "..") {
            path = if path.is_empty() { comp.to_string() } else { format!("{path}/{comp}") };
            if std::fs::symlink_metadata(rootfs.join(&path)).is_err() && !out.contains(&path) {
                out.push(path.clone());
            }
        }
    }
    out.sort_by_key(|p| p.matches('/').count());
    out
}

/// Mode, owner of a path, to tell a copied-up directory from a changed one.
type DirMeta = (u32, u32, u32);

fn dir_meta(p: &Path) -> Option<DirMeta> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p).ok().filter(|m| m.is_dir()).map(|m| (m.mode(), m.uid(), m.gid()))
}

/// The existing directories that hold `targets` (e.g. /etc for /etc/hosts):
/// creating a target copies them up, so they are recorded as they were.
fn target_parents(targets: &[String], rootfs: &Path) -> Vec<(String, DirMeta)> {
    let mut out: Vec<(String, DirMeta)> = Vec::new();
    for t in targets {
        let mut p = Path::new(t);
        while let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
            let s = parent.to_string_lossy().into_owned();
            if !targets.contains(&s) && !out.iter().any(|(o, _)| *o == s) {
                if let Some(m) = dir_meta(&rootfs.join(parent)) {
                    out.push((s, m));
                }
            }
            p = parent;
        }
    }
    out.sort_by_key(|(p, _)| std::cmp::Reverse(p.matches('/').count()));
    out
}

/// Removes from the upper dir what only the runtime's mounts put there: mount
/// targets still empty, then the directories copied up to hold them if they
/// are empty, not opaque, and have the mode and owner they had before.
fn drop_runtime_stubs(upper: &Path, targets: &[String], parents: &[(String, DirMeta)]) {
    for t in targets.iter().rev() {
        let p = upper.join(t);
        let empty_dir = std::fs::read_dir(&p).is_ok_and(|mut d| d.next().is_none());
        let empty_file = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file() && m.len() == 0);
        if empty_dir {
            let _ = std::fs::remove_dir(&p);
        } else if empty_file {
            let _ = std::fs::remove_file(&p);
        }
    }
    for (path, before) in parents {
        let p = upper.join(path);
        let empty = std::fs::read_dir(&p).is_ok_and(|mut d| d.next().is_none());
        let opaque = crate::layer::is_opaque(&p).unwrap_or(true);
        if empty && !opaque && dir_meta(&p) == Some(*before) {
            let _ = std::fs::remove_dir(&p);
        }
    }
}
/// RUN containers are named this and their workspace dir is named after
/// them, so the leftovers of a killed build lead to its containers.
pub(crate) const CONTAINER_PREFIX: &str = "wharf-build-";

/// A mounted overlay of a stage's layers with a fresh upper dir.
pub(crate) struct Workspace {
    pub dir: PathBuf,
    pub merged: PathBuf,
    pub upper: PathBuf,
}

impl Workspace {
    pub(crate) fn mount(ctx: &Ctx, state: &ImageState, name: &str) -> BuildResult<Workspace> {
        Self::mount_with(ctx, state, name, false)
    }

    /// A view whose upper dir is thrown away (a COPY's source stage or
    /// destination, a RUN mount's `from=`): `volatile`, so that its unmount
    /// does not sync the filesystem holding the work dir, which waits for
    /// every dirty page there (other builds' included).
    pub(crate) fn mount_view(ctx: &Ctx, state: &ImageState, name: &str) -> BuildResult<Workspace> {
        Self::mount_with(ctx, state, name, true)
    }

    fn mount_with(ctx: &Ctx, state: &ImageState, name: &str, volatile: bool) -> BuildResult<Workspace> {
        let mut lowers = ctx.lowers(state)?;
        let dir = ctx.work_dir.join(name);
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).map_err(|e| BuildError::io(format!("create {}", d.display()), e))?;
        }
        let ws = Workspace { dir: dir.clone(), merged: merged.clone(), upper: upper.clone() };
        if lowers.is_empty() {
            let empty = dir.join("empty");
            std::fs::create_dir_all(&empty).map_err(|e| BuildError::io("create empty lower", e))?;
            lowers.push(empty);
        }
        let links = ctx.store.root().join("l");
        wharf_image::rootfs::mount_overlay_with(&lowers, &upper, &work, &merged, &links, volatile)?;
        Ok(ws)
    }

    /// Unmounts, keeping the upper dir for the layer.
    pub(crate) fn unmount(&self) {
        let _ = rustix::mount::unmount(&self.merged, rustix::mount::UnmountFlags::DETACH);
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = wharf_image::Rootfs::remove(&self.dir);
    }
}

/// The argv of a RUN: exec form as is; shell form (heredocs included) through SHELL.
fn argv(run: &Run, shell: &[String]) -> Vec<String> {
    let script = match &run.command {
        Command::Exec(v) => return v.clone(),
        Command::Shell(s) => s.clone(),
    };
    let script = match run.heredocs.as_slice() {
        [] => script,
        // `RUN <<EOF` alone: the body is the script.
        [h] if script.trim() == format!("<<{}", h.name) || script.trim() == format!("<<-{}", h.name) => h.body(),
        docs => {
            let mut s = script;
            for h in docs {
                s.push('\n');
                s.push_str(&h.content);
                s.push_str(&h.name);
            }
            s
        }
    };
    shell.iter().cloned().chain(std::iter::once(script)).collect()
}

/// Runs `run` on `state`; returns the upper dir as a new layer (none when empty).
pub(crate) fn run_step(
    ctx: &Ctx,
    state: &ImageState,
    env: Vec<String>,
    run: &Run,
    (step, step_id): (&Step, usize),
    shell: &[String],
    roots: &HashMap<String, PathBuf>,
) -> BuildResult<super::NewLayer> {
    if let Some(p) = state.platform() {
        super::emulation::check(&p).map_err(|e| BuildError::step(step, e))?;
    }
    let id = format!("{CONTAINER_PREFIX}{}", super::unique());
    let ws = Workspace::mount(ctx, state, &id)?;
    // WORKDIR exists, root-owned 0755, as Docker makes it (the runtime would
    // make it with the container's umask).
    if let Some(wd) = state.get("WorkingDir").and_then(Value::as_str).filter(|w| !w.is_empty()) {
        wharf_image::unpack::ensure_dir_in_root(&ws.merged, wd)?;
    }
    // Cache-mount locks (sharing=locked|private) and ssh relays are held until the RUN ends.
    let (mut spec, _held) = spec_for(ctx, state, env, run, &ws.merged, shell, roots)?;
    // Named after the container, so what a killed build leaves is found.
    spec["linux"]["cgroupsPath"] = json!(format!("/wharf-build/{id}"));
    let targets = mount_targets(&spec, &ws.merged);
    let parents = target_parents(&targets, &ws.merged);
    std::fs::write(ws.dir.join("config.json"), serde_json::to_vec(&spec).unwrap_or_default())
        .map_err(|e| BuildError::io("write RUN bundle", e))?;
    let stdio = Stdio::new(ctx, step_id).map_err(|e| BuildError::step(step, e))?;
    let opts = CreateOptions { exec_fifo: false, stdio: Some(stdio.fds()), ..Default::default() };
    let state_dir = ctx.run_root.join("runtime");
    let created = Container::create(&state_dir, &id, &ws.dir, &opts);
    // The container has its copies now: ours must go for the reader to see EOF.
    let output = stdio.detach();
    let mut ctr = created.map_err(|e| BuildError::step(step, e))?;
    let status = ctr.start().and_then(|()| ctr.wait());
    let deleted = ctr.delete(true);
    output.finish();
    let status = status.map_err(|e| BuildError::step(step, e))?;
    deleted?;
    if status.code() != 0 {
        return Err(BuildError::step(step, format!("the command returned a non-zero code: {}", status.code())));
    }
    ws.unmount();
    // Mount targets the runtime had to create are not the command's doing.
    drop_runtime_stubs(&ws.upper, &targets, &parents);
    // A RUN that changed nothing adds no layer, only history (`empty_layer`),
    // as BuildKit does.
    if std::fs::read_dir(&ws.upper).map_err(|e| BuildError::io("read RUN upper dir", e))?.next().is_none() {
        return Ok(None);
    }
    ctx.write_upper_layer(&ws.upper)
}

/// The OCI spec of a RUN container: the runtime's default spec, the stage's
/// image config, the RUN's environment, network and mounts.
fn spec_for(
    ctx: &Ctx,
    state: &ImageState,
    env: Vec<String>,
    run: &Run,
    rootfs: &Path,
    shell: &[String],
    roots: &HashMap<String, PathBuf>,
) -> BuildResult<(Value, Held)> {
    let mut locks = Vec::new();
    let (ssh, forwards, env) = ssh_mounts(ctx, run, env)?;
    let mut spec = wharf_runtime::spec::default_spec();
    let user = state.get("User").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string);
    let workdir = state.get("WorkingDir").and_then(Value::as_str).filter(|w| !w.is_empty()).map(str::to_string);
    let overrides = wharf_runtime::spec::ImageOverrides {
        entrypoint: Some(Vec::new()),
        cmd: Some(argv(run, shell)),
        user,
        workdir,
        env,
    };
    wharf_runtime::spec::apply_image_config(&mut spec, None, rootfs, &overrides)?;
    let mut v = serde_json::to_value(&spec).map_err(|e| BuildError::Invalid(e.to_string()))?;
    v["root"] = json!({"path": rootfs, "readonly": false});
    v["process"]["terminal"] = json!(false);
    v["hostname"] = json!("buildkitsandbox");
    if run.network != Network::None {
        if let Some(ns) = v["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
        }
        let resolv = Path::new("/etc/resolv.conf");
        if resolv.exists() && rootfs.join("etc").is_dir() {
            push_mount(
                &mut v,
                json!({"destination": "/etc/resolv.conf", "type": "bind", "source": resolv, "options": ["rbind", "ro"]}),
            );
        }
    }
    for m in run.mounts.iter().filter(|m| m.kind != MountType::Ssh) {
        let (mount, lock) = ctx.run_mount(m, roots)?;
        push_mount(&mut v, mount);
        locks.extend(lock);
    }
    ssh.into_iter().for_each(|m| push_mount(&mut v, m));
    host_options(ctx, &mut v, rootfs)?;
    Ok((v, (locks, forwards)))
}

/// What a RUN holds while it runs: cache-mount locks, ssh relays.
type Held = (Vec<wharf_image::FileLock>, Vec<super::ssh::Forward>);

/// `--mount=type=ssh`: a relay socket each (BuildKit's default target
/// `/run/buildkit/ssh_agent.N`), and `SSH_AUTH_SOCK` naming the first for
/// this RUN (unless the environment sets it). An agent `--ssh` did not
/// give is an error if the mount is `required`, else the mount is left out.
fn ssh_mounts(
    ctx: &Ctx,
    run: &Run,
    mut env: Vec<String>,
) -> BuildResult<(Vec<Value>, Vec<super::ssh::Forward>, Vec<String>)> {
    let (mut mounts, mut forwards) = (Vec::new(), Vec::new());
    for (i, m) in run.mounts.iter().filter(|m| m.kind == MountType::Ssh).enumerate() {
        let target = m.target.clone().unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{i}"));
        if i == 0 && !env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
            env.push(format!("SSH_AUTH_SOCK={target}"));
        }
        let id = m.id.as_deref().unwrap_or(super::ssh::DEFAULT_ID);
        let Some(agent) = ctx.ssh.socket(id) else {
            if m.required {
                return Err(BuildError::Invalid(format!("no SSH key {id:?} forwarded from the client")));
            }
            continue;
        };
        // Short: a socket's path has at most 107 bytes.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let sock = ctx.work_dir.join(format!("ssh{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        let (uid, gid) = (m.uid.unwrap_or(0), m.gid.unwrap_or(0));
        forwards.push(super::ssh::Forward::start(agent, sock.clone(), m.mode.unwrap_or(0o600), uid, gid)?);
        mounts.push(json!({"destination": target, "type": "bind", "source": sock, "options": ["rbind"]}));
    }
    Ok((mounts, forwards, env))
}

/// `--add-host`, `--ulimit` and `--shm-size` applied to a RUN's spec.
fn host_options(ctx: &Ctx, v: &mut Value, rootfs: &Path) -> BuildResult<()> {
    let o = ctx.opts;
    if !o.add_hosts.is_empty() && rootfs.join("etc").is_dir() {
        // BuildKit's hosts file for RUN, then the extra names.
        let mut text =
            String::from("127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for (name, ip) in &o.add_hosts {
            text.push_str(&format!("{ip}\t{name}\n"));
        }
        let file = ctx.work_dir.join(format!("hosts-{}", super::unique()));
        std::fs::write(&file, text).map_err(|e| BuildError::io("write RUN hosts file", e))?;
        push_mount(v, json!({"destination": "/etc/hosts", "type": "bind", "source": file, "options": ["rbind", "ro"]}));
    }
    for (typ, soft, hard) in &o.ulimits {
        let entry = json!({"type": typ, "soft": soft, "hard": hard});
        match v["process"]["rlimits"].as_array_mut() {
            Some(a) => {
                a.retain(|r| r["type"] != typ.as_str());
                a.push(entry);
            }
            None => v["process"]["rlimits"] = json!([entry]),
        }
    }
    if let Some(size) = o.shm_size {
        for m in v["mounts"].as_array_mut().into_iter().flatten().filter(|m| m["destination"] == "/dev/shm") {
            let mut opts: Vec<String> =
                m["options"].as_array().into_iter().flatten().filter_map(|o| o.as_str().map(String::from)).collect();
            opts.retain(|o| !o.starts_with("size="));
            opts.push(format!("size={size}"));
            m["options"] = json!(opts);
        }
    }
    Ok(())
}

fn push_mount(spec: &mut Value, m: Value) {
    if let Some(a) = spec["mounts"].as_array_mut() {
        a.retain(|x| x["destination"] != m["destination"]);
        a.push(m);
    }
}

impl Ctx<'_> {
    /// One `RUN --mount`: cache dirs persist under `<root>/build-mounts/`.
    fn run_mount(
        &self,
        m: &crate::Mount,
        roots: &HashMap<String, PathBuf>,
    ) -> BuildResult<(Value, Option<wharf_image::FileLock>)> {
        // Docker: a secret without target= appears at /run/secrets/<id>.
        let target = match (&m.target, m.kind, &m.id) {
            (Some(t), _, _) => t.clone(),
            (None, MountType::Secret, Some(id)) => format!("/run/secrets/{id}"),
            _ => return Err(BuildError::Invalid("--mount needs target=".into())),
        };
        Ok((
            match m.kind {
                MountType::Cache => {
                    let id = m.id.clone().unwrap_or_else(|| target.clone());
                    let (dir, lock) = self.cache_dir(&id, m.sharing)?;
                    let mode = m.mode.unwrap_or(0o755);
                    let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(mode));
                    if let (Some(u), g) = (m.uid, m.gid) {
                        let _ = std::os::unix::fs::chown(&dir, Some(u), Some(g.unwrap_or(0)));
                    }
                    return Ok((
                        json!({"destination": target, "type": "bind", "source": dir, "options": ["rbind", "rw"]}),
                        lock,
                    ));
                }
                MountType::Tmpfs => {
                    let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                    if let Some(s) = m.size {
                        opts.push(format!("size={s}"));
                    }
                    json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts})
                }
                MountType::Secret => {
                    let id = m.id.clone().unwrap_or_else(|| target.rsplit('/').next().unwrap_or_default().to_string());
                    let src = self.secrets.get(&id).ok_or_else(|| {
                        BuildError::Invalid(format!("secret {id:?} was not given with --secret id={id},src=FILE"))
                    })?;
                    json!({"destination": target, "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]})
                }
                // Relays, made by `ssh_mounts`.
                MountType::Ssh => return Err(BuildError::Invalid("an ssh mount is not a file system".into())),
                MountType::Bind => {
                    let root = match &m.from {
                        Some(f) => roots
                            .get(f)
                            .cloned()
                            .ok_or_else(|| BuildError::Invalid(format!("--mount from={f}: not mounted")))?,
                        None => self.context.clone(),
                    };
                    let rel = m.source.clone().unwrap_or_default();
                    let src = super::inside(&root, &rel)?;
                    // Read-only even with `rw`: Docker discards such writes; we
                    // must never let a build write into the user's context.
                    json!({"destination": target, "type": "bind", "source": src, "options": ["rbind", "ro"]})
                }
            },
            None,
        ))
    }
}

impl Ctx<'_> {
    /// A cache mount's directory under `<root>/build-mounts/cache/`.
    /// `locked`: builds using it take turns; `private`: a build that finds
    /// it in use gets a fresh directory of its own; `shared`: no lock.
    fn cache_dir(&self, id: &str, sharing: Sharing) -> BuildResult<(PathBuf, Option<wharf_image::FileLock>)> {
        let base = self.store.root().join("build-mounts/cache");
        let dir = base.join(super::cache::key("", &[id]));
        let create =
            |d: &Path| std::fs::create_dir_all(d).map_err(|e| BuildError::io(format!("create {}", d.display()), e));
        create(&dir)?;
        let lock_path = dir.with_extension("lock");
        match sharing {
            Sharing::Shared => Ok((dir, None)),
            Sharing::Locked => Ok((dir, Some(wharf_image::FileLock::exclusive(&lock_path)?))),
            Sharing::Private => match wharf_image::FileLock::try_exclusive(&lock_path)? {
                Some(l) => Ok((dir, Some(l))),
                None => {
                    let own = self.work_dir.join(format!("cache-{}", super::unique()));
                    create(&own)?;
                    Ok((own, None))
                }
            },
        }
    }
}

/// stdin /dev/null (as Docker gives RUN), stdout and stderr into one pipe
/// whose lines become progress events — or /dev/null when quiet.
struct Stdio {
    null: std::fs::File,
    write: Option<std::os::fd::OwnedFd>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The reading end's thread, once the container holds the write end.
struct OutputReader(Option<std::thread::JoinHandle<()>>);

impl Stdio {
    fn new(ctx: &Ctx, step_id: usize) -> std::io::Result<Stdio> {
        let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
        let Some(progress) = ctx.opts.progress.clone() else {
            return Ok(Stdio { null, write: None, reader: None });
        };
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut r = std::io::BufReader::new(std::fs::File::from(read));
            let mut buf = Vec::new();
            while matches!(r.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                progress.emit(&super::progress::Event::Output { id: step_id, line });
                buf.clear();
            }
        });
        Ok(Stdio { null, write: Some(write), reader: Some(reader) })
    }

    fn fds(&self) -> [std::os::fd::RawFd; 3] {
        use std::os::fd::AsRawFd;
        let out = self.write.as_ref().map_or(self.null.as_raw_fd(), |w| w.as_raw_fd());
        [self.null.as_raw_fd(), out, out]
    }

    fn detach(self) -> OutputReader {
        OutputReader(self.reader)
    }
}

impl OutputReader {
    /// Waits until every line the container wrote has been reported.
    fn finish(mut self) {
        if let Some(t) = self.0.take() {
            let _ = t.join();
        }
    }
}
