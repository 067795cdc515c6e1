//! # Layout
//!
//! OCI runtime spec → a running process. The library does the work; the
//! `wharf-runtime` binary (`src/main.rs`, one file per verb in `src/cli/`)
//! only parses runc's command line and calls it.
//!
//! - [`container`]: the lifecycle API — [`Container::create`], `start`,
//!   `state`, `kill`, `wait`, `delete`, `pause`, `resume`, `update`, `stats`.
//! - `create`: the runtime side of `create` (bundle checks, cgroups, fork,
//!   id maps, hooks) as named steps; `init`: what the forked processes do,
//!   step by step. Init is cloned straight from a single-threaded runtime
//!   when nothing has to happen in between; otherwise a forked intermediate
//!   joins namespaces by path and makes the user/time namespaces first.
//! - [`leftover`]: removing a container whose creator was killed.
//! - [`exec`]: a new process joining a running container's namespaces and cgroup.
//! - `rootfs`: mounts (resolved inside the rootfs with openat2), devices,
//!   pivot_root, read-only/masked paths. `namespaces`: new vs join-by-path.
//! - [`cgroups`]: v1 and v2 drivers behind one trait, host layout detected at run time.
//! - `caps`: the five capability sets; [`seccomp`]: OCI seccomp → BPF through
//!   libseccomp, and Docker's default profile; `security`: LSM labels,
//!   personality, I/O priority, scheduler.
//! - `process`: rlimits, user, cwd, privileges dropped in order, exec; `console`: pty + console socket;
//!   `hooks`: OCI hooks with timeouts; `sync`: runtime ↔ child messages.
//! - [`state`]: the state directory and OCI state JSON. [`log`]: `--log` sink.
//! - [`spec`]: the default spec (`runc spec`) and merging an OCI image config into it.
//! - [`features`]: the OCI features document. [`signal`]: signal names.
//! - [`error`]: the crate's one error type.

pub mod caps;
pub mod cgroups;
mod console;
pub mod container;
mod create;
pub mod error;
pub mod exec;
pub mod features;
mod hooks;
mod init;
pub mod leftover;
pub mod log;
mod namespaces;
mod process;
mod rootfs;
pub mod sealexe;
pub mod seccomp;
mod security;
pub mod signal;
pub mod spec;
pub mod state;
mod sync;
mod sys;

#[doc(inline)]
pub use container::{Container, CreateOptions, ExitStatus};
#[doc(inline)]
pub use error::{Error, ErrorKind, Result};
#[doc(inline)]
pub use exec::{ExecOptions, ExecProcess};
#[doc(inline)]
pub use state::{OciState, StateStore, Status};

/// Re-exported so callers build specs with the same types.
pub use oci_spec;
