#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Image(#[from] wharf_image::Error),
    #[error(transparent)]
    Runtime(#[from] wharf_runtime::Error),
    #[error(transparent)]
    Registry(#[from] wharf_registry::Error),
    #[error("{0}")]
    InvalidArgument(String),
    /// A network operation failed (CNI plugin, bridge, DNS server).
    #[error("{0}")]
    Network(String),
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// Docker's wording: `remove NAME: volume is in use - [ID, …]`.
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    VolumeInUse { name: String, containers: Vec<String> },
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// The request conflicts with the container's state or a name in use.
    #[error("{0}")]
    Conflict(String),
    /// The container's monitor failed or reported an error.
    #[error("{0}")]
    Monitor(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
