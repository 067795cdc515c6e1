//! # Layout
//!
//! The Kubernetes CRI `runtime.v1` RuntimeService and ImageService over a
//! unix socket, one file per RPC (`sandbox_run.rs`, `container_create.rs`,
//! ...), and the streaming server for exec/attach/port-forward.
//!
//! Filled by the CRI issue; empty until then.
