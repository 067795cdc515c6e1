//! # Layout
//!
//! The local image store. It **is** an OCI image layout at `--root`
//! (`oci-layout`, `index.json`, `blobs/sha256/`), so skopeo and umoci read
//! it directly; wharf adds `layers/sha256/<diffID>/` (each layer unpacked
//! once, in overlayfs format), `ingest/` (temp files) and two lock files.
//!
//! - [`reference`]: image names, parsed and normalised as Docker does.
//! - [`digest`]: sha256 digests and hashing while streaming.
//! - [`blobs`]: content-addressed blobs, written by temp file + fsync + rename.
//! - `layout`: the [`Store`], `index.json` under an exclusive lock.
//! - `images`: listing, resolving names/IDs, tagging.
//! - `gc`: `rmi` and `image prune`.
//! - [`unpack`]: applying hostile layer tars safely (openat2 RESOLVE_IN_ROOT).
//! - [`snapshot`]: unpacked layers, keyed by diffID.
//! - [`rootfs`]: overlay mounts of an image's snapshots.
//! - `import`, [`archive`]: `import`, `save` and `load`.
//! - [`platform`]: `os/arch[/variant]`, and picking one in an index.
//! - [`manifest_list`]: indexes made by hand (`wharf manifest`) and by builds.
//! - [`attestation`]: in-toto statements attached in an index, as BuildKit does.
//! - `check`: `system check`.
//! - `lock`: flock files, and [`OwnedDir`]: a dir whose owner holds its lock
//!   for life, so that [`leftovers`] finds the dirs of killed processes
//!   (used by the builder's work dirs and pod's container dirs).
//!
//! Locks: `index.lock` orders writers of `index.json`; `gc.lock` is shared
//! by anything that adds content and exclusive for garbage collection, so a
//! blob written but not yet referenced is never collected.

pub mod archive;
pub mod attestation;
pub mod blobs;
mod check;
pub mod compression;
pub mod digest;
mod error;
mod gc;
mod images;
mod import;
mod layout;
mod lock;
pub mod manifest_list;
pub mod platform;
pub mod reference;
pub mod rootfs;
pub mod snapshot;
pub mod unpack;

pub use archive::{ArchiveFormat, LoadedImage};
pub use check::CheckReport;
pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use gc::{GcReport, Removed};
pub use images::{host_arch, Image, ImageSummary, REF_NAME};
pub use import::ImportOptions;
pub use layout::Store;
pub use lock::{dead_dirs, leftovers, FileLock, Leftover, OwnedDir, OWNER_LOCK};
pub use oci_spec::image as spec;
pub use platform::Platform;
pub use reference::Reference;
pub use rootfs::Rootfs;
