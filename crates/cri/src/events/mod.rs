//! GetContainerEvents: the stream the kubelet's evented PLEG reads —
//! container created/started/stopped/deleted, from the RPCs that cause
//! them and from containers that exit by themselves ([`watch`]).
//!
//! The hub is a tokio broadcast channel: publishing never waits, and a
//! subscriber that falls more than [`CAPACITY`] events behind loses the
//! oldest ones, with a warning in the log (containerd drops them too).

pub(crate) mod watch;

pub(crate) use watch::spawn_housekeeping;

use crate::service::Cri;
use k8s_cri::v1 as cri;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::StreamExt;
use tonic::Status;

type R<T> = std::result::Result<T, Status>;

/// Events a subscriber may fall behind before it loses some.
pub const CAPACITY: usize = 1024;

/// The events hub: the RPCs publish, each GetContainerEvents stream reads.
pub struct Events {
    tx: broadcast::Sender<cri::ContainerEventResponse>,
    /// The last event type published per container, so that one exit is
    /// one CONTAINER_STOPPED_EVENT whether StopContainer or the watcher
    /// saw it first.
    last: Mutex<HashMap<String, i32>>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    pub fn new() -> Events {
        Events { tx: broadcast::channel(CAPACITY).0, last: Mutex::new(HashMap::new()) }
    }

    /// Sends `ev` to every open GetContainerEvents stream; never waits.
    /// A CONTAINER_STOPPED_EVENT right after another for the same
    /// container (no start between) is dropped.
    pub fn publish(&self, ev: cri::ContainerEventResponse) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let kind = ev.container_event_type;
        let stopped = cri::ContainerEventType::ContainerStoppedEvent as i32;
        if kind == stopped && last.get(&ev.container_id) == Some(&stopped) {
            return;
        }
        if kind == cri::ContainerEventType::ContainerDeletedEvent as i32 {
            last.remove(&ev.container_id);
        } else {
            last.insert(ev.container_id.clone(), kind);
        }
        // Err: nobody listens, which is no error.
        let _ = self.tx.send(ev);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<cri::ContainerEventResponse> {
        self.tx.subscribe()
    }

    /// Forgets containers `keep` refuses (removed without an event).
    fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).retain(|id, _| keep(id));
    }
}

pub type EventStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = R<cri::ContainerEventResponse>> + Send>>;

pub async fn get_container_events(cri: &Cri, _req: cri::GetEventsRequest) -> R<EventStream> {
    let rx = cri.events.subscribe();
    let stream = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(|r| match r {
        Ok(ev) => Some(Ok(ev)),
        Err(BroadcastStreamRecvError::Lagged(n)) => {
            tracing::warn!("GetContainerEvents: a slow subscriber lost {n} events");
            None
        }
    });
    Ok(Box::pin(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, kind: cri::ContainerEventType) -> cri::ContainerEventResponse {
        cri::ContainerEventResponse { container_id: id.into(), container_event_type: kind as i32, ..Default::default() }
    }

    #[test]
    fn one_stop_is_one_event_and_a_slow_subscriber_blocks_nobody() {
        use cri::ContainerEventType::*;
        let hub = Events::new();
        let mut rx = hub.subscribe();
        hub.publish(ev("a", ContainerStartedEvent));
        hub.publish(ev("a", ContainerStoppedEvent));
        hub.publish(ev("a", ContainerStoppedEvent));
        hub.publish(ev("a", ContainerStartedEvent));
        hub.publish(ev("a", ContainerStoppedEvent));
        let kinds: Vec<i32> = std::iter::from_fn(|| rx.try_recv().ok()).map(|e| e.container_event_type).collect();
        let want = [ContainerStartedEvent, ContainerStoppedEvent, ContainerStartedEvent, ContainerStoppedEvent];
        assert_eq!(kinds, want.map(|k| k as i32));
        // Nobody reads `rx`: publishing goes on, and the reader is told it lagged.
        for i in 0..CAPACITY + 10 {
            hub.publish(ev(&format!("c{i}"), ContainerCreatedEvent));
        }
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(10))));
        assert_eq!(rx.try_recv().unwrap().container_id, "c10");
    }
}
