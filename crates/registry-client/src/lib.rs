//! # Layout
//!
//! The OCI distribution client: pull, push and cross-repository mount of
//! blobs and manifests, registry auth (docker `config.json`, credential
//! helpers, bearer tokens) and retries. It streams blobs into and out of the
//! `wharf-image` store and never holds a whole layer in memory.
//!
//! Filled by the registry-client issue; empty until then.
