/// What a caller may want to match on, whatever the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    NotFound,
    Unauthorized,
    InvalidInput,
    Corrupt,
    Transient,
    Other,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{reference}: not found in the registry")]
    NotFound { reference: String },
    #[error("{registry}: authentication failed: {reason}")]
    Unauthorized { registry: String, reason: String },
    #[error("{registry}: {reason}")]
    Registry { registry: String, reason: String, transient: bool },
    #[error("{what}: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: String, actual: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("credentials: {0}")]
    Credentials(String),
    #[error(transparent)]
    Store(#[from] wharf_image::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Unauthorized { .. } | Error::Credentials(_) => ErrorKind::Unauthorized,
            Error::InvalidInput(_) | Error::Unsupported(_) => ErrorKind::InvalidInput,
            Error::DigestMismatch { .. } => ErrorKind::Corrupt,
            Error::Registry { transient: true, .. } => ErrorKind::Transient,
            Error::Io { .. } => ErrorKind::Transient,
            _ => ErrorKind::Other,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// Maps an oci-client error, keeping whether a retry may help.
    pub(crate) fn from_oci(registry: &str, reference: &str, e: oci_client::errors::OciDistributionError) -> Self {
        use oci_client::errors::OciDistributionError as E;
        let text = e.to_string();
        match e {
            E::ImageManifestNotFoundError(_) => Error::NotFound { reference: reference.to_string() },
            E::AuthenticationFailure(r) => Error::Unauthorized { registry: registry.to_string(), reason: r },
            E::DigestError(d) => {
                Error::DigestMismatch { what: reference.to_string(), expected: String::new(), actual: d.to_string() }
            }
            E::RequestError(r) => {
                let transient = r.is_connect()
                    || r.is_timeout()
                    || r.is_body()
                    || r.is_request()
                    || r.status().is_some_and(|s| s.is_server_error());
                if r.status().is_some_and(|s| s.as_u16() == 404) {
                    return Error::NotFound { reference: reference.to_string() };
                }
                if r.status().is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403) {
                    return Error::Unauthorized { registry: registry.to_string(), reason: text };
                }
                Error::Registry { registry: registry.to_string(), reason: text, transient }
            }
            E::IoError(io) => Error::io(format!("{registry}: {reference}"), io),
            E::ServerError { code, .. } => {
                let transient = code >= 500 || code == 429;
                if code == 404 {
                    return Error::NotFound { reference: reference.to_string() };
                }
                if code == 401 || code == 403 {
                    return Error::Unauthorized { registry: registry.to_string(), reason: text };
                }
                Error::Registry { registry: registry.to_string(), reason: text, transient }
            }
            E::RegistryError { envelope, .. } => {
                let unknown = envelope.errors.iter().any(|x| {
                    matches!(
                        x.code,
                        oci_client::errors::OciErrorCode::ManifestUnknown
                            | oci_client::errors::OciErrorCode::NameUnknown
                            | oci_client::errors::OciErrorCode::BlobUnknown
                    )
                });
                if unknown {
                    return Error::NotFound { reference: reference.to_string() };
                }
                let denied = envelope.errors.iter().any(|x| {
                    matches!(
                        x.code,
                        oci_client::errors::OciErrorCode::Unauthorized | oci_client::errors::OciErrorCode::Denied
                    )
                });
                if denied {
                    return Error::Unauthorized { registry: registry.to_string(), reason: text };
                }
                Error::Registry { registry: registry.to_string(), reason: text, transient: false }
            }
            _ => Error::Registry { registry: registry.to_string(), reason: text, transient: false },
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
