//! # Layout
//!
//! `wharf cri`: the Kubernetes CRI `runtime.v1` RuntimeService and
//! ImageService over a unix socket (tonic; the protos from the `k8s-cri`
//! crate), on the same image store and registry client as the CLI.
//!
//! - [`server`]: the daemon: the socket (stale ones replaced), the gRPC
//!   server, SIGTERM/SIGINT.
//! - [`config`]: the TOML configuration file and its checks.
//! - `service`: the daemon's state and the routing of each RPC to its file;
//!   one file per RPC as containerd's `internal/cri/server`:
//!   `version`, `status`, `runtime_config` (RuntimeConfig and
//!   UpdateRuntimeConfig), `image_list`, `image_status`, `image_pull`,
//!   `image_remove`, `imagefs_info`; `images` maps the store's images to
//!   the CRI's.
//!
//! - `sandbox`: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
//!   PodSandboxStatus, ListPodSandbox. A sandbox is a wharf pod (same id)
//!   labelled `io.wharf.cri=true` (`owner`), its CNI network from the conf
//!   dir (ADD with the port mappings and `K8S_POD_*` args into the pod's
//!   pinned netns, DEL at remove), DNS config, hostname, sysctls, namespace
//!   options, the kubelet's `cgroup_parent` as the pod cgroup, the runtime
//!   handler's binary for every container (runc, crun); what the kubelet gave is kept in pod.json, so a restarted
//!   daemon (even after `kill -9`) answers the same from disk.
//! - `container` (`spec`, `status`): CreateContainer … ExecSync. A CRI
//!   container is a wharf container in the sandbox's pod (same id), its
//!   config mapped onto the engine's run options plus the pod crate's
//!   `kubelet::KubeSpec` (the kubelet's log path, written by the monitor in
//!   the CRI format, rotated at `logs.max_size` and reopened on
//!   ReopenContainerLog; pid/ipc/uts joins,
//!   masked paths, resources, bind mounts with propagation); ExecSync
//!   through `Containers::exec_capture` (timeout, 16 MiB cap). Created,
//!   started, stopped and deleted events go to `events`.
//! - `stream`: the exec/attach/port-forward streaming server.
//! - `stats`, `events`: stats and metrics RPCs; GetContainerEvents, and
//!   the daemon's 1 s housekeeping loop (CPU samples for
//!   `usage_nano_cores`, STOPPED events of containers that exit by themselves).

pub mod config;
mod container;
mod error;
mod events;
mod image_list;
mod image_pull;
mod image_remove;
mod image_status;
mod imagefs_info;
mod images;
mod owner;
mod runtime_config;
mod sandbox;
pub mod server;
mod service;
mod stats;
mod status;
mod stream;
mod version;

pub use config::Config;
pub use error::{Error, Result};
pub use server::{serve, ServeOptions};
pub use service::Cri;
