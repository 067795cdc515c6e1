//! Containers that outlive the `wharf` process that made them.
//!
//! A container is a record (`record`) plus, while it runs, a monitor
//! process (`wharf-monitor`, spawned by `monitor`) that holds its stdio,
//! log and exit status. `setup` makes what a container needs to run (rootfs,
//! volumes, network, OCI spec, monitor) and hands the locks that guard
//! those resources to the monitor; `lifecycle` stops, kills, waits for and
//! removes containers and cleans up after one that exited (run by the
//! monitor as its exit command, by a foreground `run`, or by the next
//! command when a monitor was killed). `attach` is the client side of the
//! monitor's socket, `logs` reads the CRI-format log.
//!
//! The CLI and `wharf cri` both drive this module.

pub mod attach;
mod copy;
mod df;
pub mod events;
mod exec;
mod lifecycle;
pub mod logs;
mod monitor;
mod oci;
pub mod proto;
mod record;
mod setup;
mod stats;
mod tty;
pub mod view;

pub use copy::{split_container_arg, CopyOptions, HostEnd};
pub use df::DiskUsage;
pub use exec::{ExecIo, ExecRequest, Spawned};
pub use lifecycle::StopOptions;
pub(crate) use monitor::{check_restart, helper, log_limits};
pub(crate) use record::{check_name, random_name, write_atomic};
pub use record::{Container, MonitorState, Record, Status};
pub use setup::Start;
pub use stats::{cgroup_cpu_ns, net_devs, NetDev, Sample, Top, Update, Usage};

use crate::error::{Error, Result};
use crate::run::RunOptions;
use std::path::{Path, PathBuf};
use wharf_image::Store;

/// The containers of one store (`--root`) and run root (`--run-root`).
#[derive(Debug, Clone)]
pub struct Containers {
    root: PathBuf,
    run_root: PathBuf,
}

impl Containers {
    pub fn new(root: &Path, run_root: &Path) -> Self {
        Containers { root: root.to_path_buf(), run_root: run_root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn run_root(&self) -> &Path {
        &self.run_root
    }

    pub(crate) fn containers_dir(&self) -> PathBuf {
        crate::leftover::containers_dir(&self.root)
    }

    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    pub(crate) fn state_root(&self) -> PathBuf {
        self.run_root.join("runtime")
    }

    /// The attach socket (short: a unix socket path has 108 bytes).
    pub(crate) fn socket(&self, id: &str) -> PathBuf {
        self.run_root.join("attach").join(&id[..id.len().min(24)])
    }

    /// Every container with a record, newest first.
    pub fn list(&self) -> Result<Vec<Container>> {
        let rd = match std::fs::read_dir(self.containers_dir()) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list containers", e)),
        };
        let mut out: Vec<Container> = rd
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| record::load(&e.path()).ok())
            .collect();
        out.sort_by(|a, b| b.record.created.cmp(&a.record.created));
        Ok(out)
    }

    /// A container by full ID, name, or unique ID prefix (Docker's order).
    pub fn get(&self, name_or_id: &str) -> Result<Container> {
        let s = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        let missing = || Error::NoSuchContainer(name_or_id.to_string());
        if s.is_empty() || s.contains('/') || s.starts_with('.') {
            return Err(missing());
        }
        if s.len() == 64 {
            if let Ok(c) = record::load(&self.dir(s)) {
                return Ok(c);
            }
        }
        if let Ok(id) = std::fs::read_link(record::name_link(&self.root, s)) {
            if let Ok(c) = record::load(&self.dir(&id.to_string_lossy())) {
                return Ok(c);
            }
        }
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(missing());
        }
        let rd = std::fs::read_dir(self.containers_dir()).map_err(|_| missing())?;
        let hits: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(s) && self.dir(n).join(record::RECORD).exists())
            .collect();
        match hits.as_slice() {
            [id] => record::load(&self.dir(id)),
            [] => Err(missing()),
            _ => Err(Error::InvalidArgument(format!("multiple IDs found with provided prefix: {s}"))),
        }
    }

    /// `create`: the record only (and the name); `start` sets it up.
    pub fn create(&self, store: &Store, o: &RunOptions) -> Result<Container> {
        self.sweep();
        let (o, new_pod) = &crate::pod::join_options(self, o)?;
        let made = self.create_in(store, o);
        if let (Err(_), Some(p)) = (&made, new_pod) {
            let _ = crate::pod::Pods::new(&self.root, &self.run_root).rm(p, true);
        }
        made
    }

    fn create_in(&self, store: &Store, o: &RunOptions) -> Result<Container> {
        crate::volume::mounts::parse_run_flags(&o.volumes, &o.mounts, &o.tmpfs)?;
        crate::spec::check_options(o)?;
        let health_flags = o.health.to_healthcheck()?;
        let img = {
            let _content = store.content_lock()?;
            crate::run::image(store, o)?
        };
        let id = crate::run::new_id();
        let mut claimed = None;
        let made = (|| {
            let owner = wharf_image::OwnedDir::create(&self.containers_dir(), &id)?;
            // The name after the dir: a name whose dir is gone is stale (a
            // creation killed in between), for claim_name and the sweep.
            let name = self.claim_name(o.name.as_deref(), &id)?;
            claimed = Some(name.clone());
            let image_file = owner.path().join(crate::leftover::IMAGE_FILE);
            let digest = img.target.digest().to_string();
            std::fs::write(&image_file, &digest)
                .map_err(|e| Error::io(format!("write {}", image_file.display()), e))?;
            // Read after the image file marks the image as in use: no prune takes its config now.
            let healthcheck = crate::health::resolve(crate::health::of_image(store, &img)?, health_flags.clone())?;
            let cfg = img.config.config().as_ref();
            let overrides = wharf_runtime::spec::ImageOverrides {
                entrypoint: o.entrypoint.as_ref().map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] }),
                cmd: (!o.cmd.is_empty()).then(|| o.cmd.clone()),
                ..Default::default()
            };
            let command = wharf_runtime::spec::command(cfg, &overrides).unwrap_or_default();
            let stop_signal = o.stop_signal.clone().unwrap_or_else(|| wharf_runtime::spec::stop_signal(cfg));
            let rec = Record {
                id: id.clone(),
                name: name.clone(),
                created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                image: o.image.clone(),
                image_digest: digest,
                image_id: img.config_digest.to_string(),
                options: RunOptions {
                    name: Some(name.clone()),
                    stop_signal: Some(stop_signal),
                    notice: None,
                    ..o.clone()
                },
                command,
                anonymous_volumes: Vec::new(),
                healthcheck,
            };
            record::save_record(owner.path(), &rec)?;
            self.event(&rec, "create", &[]);
            // The lock goes with `owner`: a stopped container owns nothing.
            record::load(owner.path())
        })();
        if made.is_err() {
            if let Some(name) = &claimed {
                record::release_name(&self.root, name, &id);
            }
            let _ = wharf_image::Rootfs::remove(&self.dir(&id));
        }
        made
    }

    fn claim_name(&self, name: Option<&str>, id: &str) -> Result<String> {
        crate::names::CONTAINERS.claim_or_random(&self.root, name, id)
    }

    /// Renames a container (its DNS name on networks changes at its next start).
    pub fn rename(&self, name_or_id: &str, new: &str) -> Result<()> {
        let c = self.get(name_or_id)?;
        if c.name() == new {
            return Err(Error::InvalidArgument("Renaming a container with the same name as its current name".into()));
        }
        record::claim_name(&self.root, new, c.id())?;
        let mut rec = c.record.clone();
        rec.name = new.to_string();
        rec.options.name = Some(new.to_string());
        if let Err(e) = record::save_record(&c.dir, &rec) {
            record::release_name(&self.root, new, c.id());
            return Err(e);
        }
        record::release_name(&self.root, c.name(), c.id());
        self.event(&rec, "rename", &[("oldName", c.name().to_string())]);
        Ok(())
    }
}

/// The record of `c` as it is on disk now.
pub(crate) fn record_of(c: &Container) -> Result<Record> {
    record::load_record(&c.dir)
}

/// Replaces the record of `c` (write + rename).
pub(crate) fn save(c: &Container, r: &Record) -> Result<()> {
    record::save_record(&c.dir, r)
}
