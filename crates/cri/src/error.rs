use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    #[error("--listen {0:?}: expected unix:///PATH or an absolute path")]
    Listen(String),
    #[error("{path}: another server is listening on this socket", path = path.display())]
    SocketInUse { path: PathBuf },
    #[error("{path}: exists and is not a socket; refusing to replace it", path = path.display())]
    NotASocket { path: PathBuf },
    #[error(transparent)]
    Store(#[from] wharf_image::Error),
    #[error(transparent)]
    Registry(#[from] wharf_registry::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("gRPC server: {0}")]
    Server(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The gRPC status for an error, with the codes containerd gives for the
/// same situations.
impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        use tonic::Code;
        let code = match &e {
            Error::Store(s) => match s.kind() {
                wharf_image::ErrorKind::NotFound => Code::NotFound,
                wharf_image::ErrorKind::InvalidInput => Code::InvalidArgument,
                wharf_image::ErrorKind::Conflict => Code::FailedPrecondition,
                _ => Code::Internal,
            },
            Error::Registry(r) => match r.kind() {
                wharf_registry::ErrorKind::NotFound => Code::NotFound,
                wharf_registry::ErrorKind::Unauthorized => Code::Unauthenticated,
                wharf_registry::ErrorKind::InvalidInput => Code::InvalidArgument,
                wharf_registry::ErrorKind::Transient => Code::Unavailable,
                _ => Code::Unknown,
            },
            Error::Config(_) | Error::Listen(_) => Code::InvalidArgument,
            _ => Code::Internal,
        };
        tonic::Status::new(code, e.to_string())
    }
}
