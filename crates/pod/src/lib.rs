//! # Layout
//!
//! Containers made from images, and (later) pods of them: a container's
//! directory `<root>/containers/<id>/` holds its bundle (`config.json`) and
//! its overlay rootfs (`upper/`, `work/`, `merged/`); its runtime state lives
//! under `<run-root>/runtime/`.
//!
//! - [`run`]: `wharf run` in the foreground: image → overlay rootfs → OCI
//!   spec (the runtime's spec helper + image config + flags) → the runtime
//!   library in-process → exit status → everything removed.
//! - [`leftover`]: containers whose `wharf run` was killed (the owner lock
//!   of their dir is free), killed and removed by the next command.
//! - [`prune`]: `image prune` (`-a`: but the images of containers), after
//!   the leftovers of killed runs.
//! - `spec`: the `docker run` flags turned into OCI spec changes.
//! - `net`: `--network none` is a namespace whose `lo` is up, as Docker's.
//! - [`network`](crate::network): networks (CNI bridge, IPAM, port mapping, isolation, DNS)
//!   and a container's attachment to one.
//! - [`volume`]: named and anonymous volumes (Docker's local driver), the
//!   one parser of `-v`/`--mount`/`--tmpfs`, copy-up, in-use locks.
//! - [`health`]: `HEALTHCHECK` and `--health-*` merged into the check the
//!   monitor runs; its `health.json`.
//! - `console`: `-t`: the pty master received over a console socket, relayed
//!   to the user's terminal.
//!
//! Detached containers with a per-container monitor process, logs and `ps`
//! come with the engine, pods after it; `run` is shaped for them (the
//! container directory and state layout are the ones a monitor will use).

mod console;
pub mod container;
mod error;
pub mod health;
pub mod leftover;
mod net;
pub mod network;
pub mod prune;
pub mod run;
mod spec;
pub mod volume;

pub use container::{Container, Containers, Status};
pub use error::{Error, Result};
pub use health::{HealthOptions, Healthcheck};
pub use run::{run_foreground, NetworkMode, RunOptions};
