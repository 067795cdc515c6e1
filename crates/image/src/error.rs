use std::path::PathBuf;

/// What a caller may want to match on, whatever the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    NotFound,
    InvalidInput,
    Conflict,
    Corrupt,
    Io,
    Unsupported,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest { digest: String, reason: String },
    #[error("image not found: {0}")]
    ImageNotFound(String),
    #[error("blob not found: {0}")]
    BlobNotFound(String),
    #[error("{what} {digest}: expected {expected}, got {actual}")]
    DigestMismatch { what: &'static str, digest: String, expected: String, actual: String },
    #[error("{0}")]
    Conflict(String),
    #[error("layer entry {entry:?}: {reason}")]
    LayerEntry { entry: String, reason: String },
    #[error("layer entry {entry:?}: {source}")]
    LayerEntryIo {
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed {what}: {reason}")]
    Malformed { what: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
    /// Bad input that is not a reference or digest (a platform, a list edit).
    #[error("{0}")]
    InvalidInput(String),
    #[error("{context} {path}: {source}", path = path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    IoOther {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::ImageNotFound(_) | Error::BlobNotFound(_) => ErrorKind::NotFound,
            Error::InvalidReference { .. } | Error::InvalidDigest { .. } | Error::InvalidInput(_) => {
                ErrorKind::InvalidInput
            }
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::DigestMismatch { .. }
            | Error::LayerEntry { .. }
            | Error::LayerEntryIo { .. }
            | Error::Malformed { .. } => ErrorKind::Corrupt,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Io { .. } | Error::IoOther { .. } => ErrorKind::Io,
        }
    }

    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { context, path: path.into(), source }
    }

    /// An I/O error with what was being done, for callers outside the crate.
    pub fn from_io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::IoOther { context: context.into(), source }
    }

    pub(crate) fn other(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::IoOther { context: context.into(), source }
    }

    pub(crate) fn malformed(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Malformed { what: what.into(), reason: reason.to_string() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(context, path, e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, context: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(context, path, e.into()))
    }
}
