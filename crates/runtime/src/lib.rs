//! # Layout
//!
//! OCI runtime spec → a running process: namespaces, mounts, pivot_root,
//! cgroups v1 and v2, rlimits, hooks, console and the state directory, and
//! the runc-compatible command line of the `wharf-runtime` binary.
//!
//! Filled by the runtime issue.
