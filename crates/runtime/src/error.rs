//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while running a container.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("container {id} does not exist")]
    NotFound { id: String },
    #[error("container {id} already exists")]
    AlreadyExists { id: String },
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("container {id} is {state}: cannot {op}")]
    InvalidState { id: String, state: String, op: &'static str },
    /// runc's wording: containerd maps "container not running" to NotFound.
    #[error("container not running: {id} is stopped")]
    NotRunning { id: String },
    #[error("invalid spec {path}: {reason}")]
    Spec { path: PathBuf, reason: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("mount {what} on {target}: {source}")]
    Mount {
        what: String,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup {path}: {source}")]
    Cgroup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{kind} hook {path}: {reason}")]
    Hook { kind: &'static str, path: PathBuf, reason: String },
    #[error("container init: {0}")]
    Init(String),
    #[error("{0} is not supported")]
    Unsupported(String),
    #[error("systemd cgroup driver: {0}")]
    Systemd(String),
}

/// Broad classes of [`Error`] a caller can match on without caring about details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidState,
    InvalidInput,
    Other,
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::InvalidState { .. } | Error::NotRunning { .. } => ErrorKind::InvalidState,
            Error::InvalidId { .. } | Error::Spec { .. } | Error::InvalidArgument(_) => ErrorKind::InvalidInput,
            _ => ErrorKind::Other,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    pub(crate) fn sys(context: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::Io { context: context.into(), source: io::Error::from_raw_os_error(errno as i32) }
    }

    pub(crate) fn cgroup(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Cgroup { path: path.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a context string to io / errno results.
pub(crate) trait Context<T> {
    fn ctx<C: Into<String>, F: FnOnce() -> C>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn ctx<C: Into<String>, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, nix::errno::Errno> {
    fn ctx<C: Into<String>, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::sys(f(), e))
    }
}
