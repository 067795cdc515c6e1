//! The streaming server: the URLs Exec, Attach and PortForward return
//! point at it (TCP on `stream.address`), with single-use, short-lived
//! tokens; it speaks remotecommand (WebSocket v4/v5, SPDY/3.1) and
//! portforward (SPDY, WebSocket) as the kubelet's clients do.

use crate::config::Config;
use crate::error::Result;
use crate::service::{not_yet, Cri};
use k8s_cri::v1 as cri;
use tonic::Status;

type R<T> = std::result::Result<T, Status>;

/// The running server (its address and token table).
pub struct Streaming {}

impl Streaming {
    /// Binds `config.stream.address` and serves on the current tokio runtime.
    pub async fn start(_config: &Config) -> Result<Streaming> {
        Ok(Streaming {})
    }
}

pub async fn exec(_cri: &Cri, _req: cri::ExecRequest) -> R<cri::ExecResponse> {
    Err(not_yet("Exec"))
}

pub async fn attach(_cri: &Cri, _req: cri::AttachRequest) -> R<cri::AttachResponse> {
    Err(not_yet("Attach"))
}

pub async fn port_forward(_cri: &Cri, _req: cri::PortForwardRequest) -> R<cri::PortForwardResponse> {
    Err(not_yet("PortForward"))
}
