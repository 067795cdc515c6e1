//! GetContainerEvents: the stream the kubelet's evented PLEG reads —
//! container created/started/stopped/deleted, from the RPCs that cause
//! them and from containers that exit by themselves.

use crate::service::{not_yet, Cri};
use k8s_cri::v1 as cri;
use tonic::Status;

type R<T> = std::result::Result<T, Status>;

/// The events hub: the RPCs publish, each GetContainerEvents stream reads.
#[derive(Default)]
pub struct Events {}

impl Events {
    pub fn new() -> Events {
        Events {}
    }

    /// Sends `ev` to every open GetContainerEvents stream.
    pub fn publish(&self, _ev: cri::ContainerEventResponse) {}
}

pub type EventStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = R<cri::ContainerEventResponse>> + Send>>;

pub async fn get_container_events(_cri: &Cri, _req: cri::GetEventsRequest) -> R<EventStream> {
    Err(not_yet("GetContainerEvents"))
}
