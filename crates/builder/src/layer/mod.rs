//! Layer writing: the filesystem changes of one build step as an OCI layer.
//!
//! - [`upper_to_tar`]: a RUN step's overlayfs upper dir → layer tar
//!   (overlay whiteouts become `.wh.` entries).
//! - [`copy_to_tar`] / [`hash_sources`]: COPY/ADD with Docker's rules, written
//!   straight to a layer tar, and their content cache key.
//! - [`write_layer`]: compresses a tar stream into the store while hashing
//!   its diffID, and unpacks it as a snapshot; [`write_upper_layer`] does
//!   that for a RUN's upper dir and moves the dir itself into place as the
//!   snapshot instead of unpacking the blob again.
//!
//! Tars are deterministic whatever the host did: entries in path order
//! (depth first, siblings sorted bytewise, so parents come before children),
//! ustar headers with PAX records only when a value does not fit (long
//! names, big ids, sizes or times, xattrs), no atime/ctime, empty
//! uname/gname, mtimes clamped to SOURCE_DATE_EPOCH when it is set.
//!
//! API notes (beside the brief): functions return [`Result`] with
//! [`LayerError`] (it converts into [`crate::Error`]); the order is depth
//! first rather than a flat bytewise sort of whole paths (`a/b` before
//! `a-b`), as Go's `filepath.Walk` and BuildKit emit; [`write_layer`] also
//! unpacks the new layer into the store's snapshots.

mod adopt;
mod archive;
mod copy;
mod entry;
mod glob;
mod hash;
mod resolve;
mod upper;
mod walk;
mod write;

pub use copy::{copy_to_tar, CopyPlan, CopySource};
pub use hash::hash_sources;
pub use upper::{is_opaque, upper_to_tar};
pub use write::{write_layer, write_upper_layer, LayerCompression, WrittenLayer};

use std::io;
use std::path::PathBuf;

/// How layer tars are normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarOptions {
    /// SOURCE_DATE_EPOCH: every mtime is clamped to at most this.
    pub epoch: Option<i64>,
}

impl TarOptions {
    pub(crate) fn clamp(&self, mtime: i64) -> i64 {
        let t = mtime.max(0);
        self.epoch.map_or(t, |e| t.min(e.max(0)))
    }
}

pub type Result<T, E = LayerError> = std::result::Result<T, E>;

/// What went wrong while producing a layer.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A filesystem operation on a named path.
    #[error("{op} {}: {err}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        err: io::Error,
    },
    /// Writing the layer stream itself.
    #[error("write layer: {0}")]
    Write(#[source] io::Error),
    /// A COPY/ADD source that cannot be copied (missing, outside its root...).
    #[error("copy source {pattern:?}: {reason}")]
    Source { pattern: String, reason: String },
    /// A COPY/ADD destination that cannot be used.
    #[error("copy destination {dest:?}: {reason}")]
    Dest { dest: String, reason: String },
    /// Something the layer format or this builder cannot represent.
    #[error("{}: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] wharf_image::Error),
}

impl LayerError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LayerError {
        let path = path.into();
        move |err| LayerError::Io { op, path, err }
    }

    pub(crate) fn bad_source(pattern: &str, reason: impl Into<String>) -> LayerError {
        LayerError::Source { pattern: pattern.to_string(), reason: reason.into() }
    }
}

impl From<LayerError> for crate::Error {
    fn from(e: LayerError) -> Self {
        // The crate's error is Clone + Eq, an io::Error is neither: keep the text of the chain.
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            let s_text = s.to_string();
            if !msg.contains(&s_text) {
                msg.push_str(": ");
                msg.push_str(&s_text);
            }
            src = s.source();
        }
        crate::Error::Layer(msg)
    }
}
