//! # Layout
//!
//! Containers made from images, and pods of them: a container's
//! directory `<root>/containers/<id>/` holds its bundle (`config.json`) and
//! its overlay rootfs (`upper/`, `work/`, `merged/`); its runtime state lives
//! under `<run-root>/runtime/`.
//!
//! - [`container`]: containers that outlive the CLI: records, setup, the
//!   per-container monitor (`wharf-monitor`, `src/bin/`), lifecycle,
//!   attach, logs, exec, ps/inspect views. Its docs say why records are
//!   files under flocks rather than SQLite.
//! - [`run`]: `wharf run` (foreground: create + start + attach, then the
//!   CLI cleans up; `-d`: create + start) and the OCI spec it writes.
//! - [`leftover`]: what killed commands left (a free owner lock): swept by
//!   the next command through [`Containers::sweep`].
//! - [`prune`]: `image prune` (`-a`: but the images of containers), after
//!   the leftovers of killed runs.
//! - `spec`: the `docker run` flags turned into OCI spec changes.
//! - [`hostconfig`]: the security, device, rlimit, sysctl, cgroup and
//!   `--init` flags of `docker run` (Docker's syntax, checks and messages).
//! - `net`: `--network none` is a namespace whose `lo` is up, as Docker's.
//! - [`network`](crate::network): networks (CNI bridge, IPAM, port mapping, isolation, DNS)
//!   and a container's attachment to one.
//! - [`volume`]: named and anonymous volumes (Docker's local driver), the
//!   one parser of `-v`/`--mount`/`--tmpfs`, copy-up, in-use locks.
//! - [`health`]: `HEALTHCHECK` and `--health-*` merged into the check the
//!   monitor runs; its `health.json`.
//! - `console`: signals sent to a foreground `wharf run` forwarded to the
//!   container (Docker's `--sig-proxy`).
//!
//! - [`kubelet`]: what `wharf cri` adds to a container (the kubelet's log
//!   path, namespaces, masked paths, resources, mounts), ExecSync's
//!   captured exec and ReopenContainerLog.
//! - [`pod`]: pods — containers sharing pinned net/ipc/uts namespaces,
//!   /etc files and a parent cgroup, with an optional infra process
//!   (`wharf-infra`); its docs say why namespaces are pinned.
//! - `kube`: `wharf kube play/down/generate` — Kubernetes manifests
//!   (k8s-openapi types) planned onto pods, containers and volumes;
//!   anything not supported is refused with its field path.

mod console;
pub mod container;
mod error;
mod flock;
pub mod health;
pub mod hostconfig;
pub mod kube;
pub mod kubelet;
pub mod leftover;
mod names;
mod net;
pub mod network;
pub mod pod;
pub mod prune;
pub mod run;
mod spec;
pub mod volume;

pub use container::{Container, Containers, Status};
pub use error::{Error, Result};
pub use health::{HealthOptions, Healthcheck};
pub use pod::{Pod, PodOptions, PodStatus, Pods, Share};
pub use run::{run_foreground, NetworkMode, RunOptions};
