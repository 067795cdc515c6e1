//! # Layout
//!
//! The OCI distribution client: pull, push and cross-repository mount of
//! blobs and manifests, with the credentials users already have.
//!
//! - [`auth`]: `~/.docker/config.json`, credential helpers, the token flow.
//! - [`client`]: one registry: transport (oci-client's streaming calls over
//!   reqwest + rustls/ring), TLS and plain-HTTP policy, authorization.
//! - `pull`: manifests and indexes, platform selection, blobs streamed into
//!   the `wharf-image` store (hashed while written, Range-resumed, retried),
//!   each layer unpacked while it downloads, blobs published in one batch.
//! - `tee`: the channel from a download to its unpacking thread.
//! - `push`: HEAD-then-skip, cross-repo mount, streamed uploads, manifests last.
//! - `artifact`: small blobs, lazy layer fetches, base metadata without
//!   layers, and manifests over stored blobs (the builder's registry cache).
//! - `sources`: which repositories of which registry hold a blob (for mounts).
//! - [`progress`]: events for the CLI's progress display.
//! - `download`: plain HTTP(S) downloads, for the builder's `ADD <url>`.

mod artifact;
pub mod auth;
pub mod client;
mod download;
mod error;
pub mod progress;
mod pull;
mod push;
mod retry;
mod sources;
mod tee;

pub use artifact::record_sources;
pub use client::{Registry, RegistryOptions};
pub use download::{download, Downloaded};
pub use error::{Error, ErrorKind, Result};
pub use progress::{Progress, ProgressFn};
pub use pull::{PullOptions, Pulled};
pub use push::{PushOptions, Pushed};

/// Runs a registry operation to completion on a small multi-threaded runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}
