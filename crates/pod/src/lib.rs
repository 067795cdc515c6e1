//! # Layout
//!
//! Pod sandboxes (shared network, IPC and UTS namespaces), CNI networking,
//! volumes, the per-container monitor process, logs, exit status, and the
//! container/pod metadata store under `<root>/containers` and `<root>/pods`.
//!
//! Filled by the pod issue; empty until then.
