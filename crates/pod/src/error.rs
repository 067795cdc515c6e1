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
    /// Docker's wording.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// podman's wording.
    #[error("no pod with name or ID {0} found: no such pod")]
    NoSuchPod(String),
    /// `network connect` of a container already on the network (Docker's wording).
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    /// `network disconnect` of a container not on the network (Docker's wording).
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    /// Its attachment is being (or has been) torn down: no process owns it.
    #[error("container {0} is not running")]
    NotRunning(String),
    /// Another live process owns the attachment (holds its `network.lock`).
    #[error("the network of container {0} is owned by a live process")]
    AttachmentBusy(String),
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// Docker's wording: `remove NAME: volume is in use - [ID, …]`.
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    VolumeInUse { name: String, containers: Vec<String> },
    /// The request conflicts with the container's state or a name in use.
    #[error("{0}")]
    Conflict(String),
    /// The container's monitor failed or reported an error.
    #[error("{0}")]
    Monitor(String),
    /// An OCI runtime binary (runc, crun) failed: its command and stderr.
    #[error("{0}")]
    OciRuntime(String),
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
