//! The streaming server: the URLs Exec, Attach and PortForward return
//! point at it (TCP on `stream.address`), with single-use, short-lived
//! tokens; it speaks remotecommand (WebSocket v4/v5, SPDY/3.1) and
//! portforward (SPDY, WebSocket) as the kubelet's clients do.
//!
//! - `tokens`: the token table (what each URL stands for).
//! - `http`: the TCP server: the request head, the token, the upgrade.
//! - `spdy`: SPDY/3.1 framing and header compression.
//! - `remote`: remotecommand (exec, attach) over WebSocket and SPDY.
//! - `backend`: exec and attach on the pod crate (its exec, the monitor's
//!   attach socket).
//! - `portforward`: port-forward over SPDY and WebSocket into the pod's netns.

mod backend;
mod http;
mod portforward;
mod remote;
mod spdy;
mod tokens;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::service::{blocking, Cri};
use k8s_cri::v1 as cri;
use std::net::SocketAddr;
use std::sync::Arc;
use tokens::{Job, StdioOpts, Target, Tokens};
use tonic::Status;

type R<T> = std::result::Result<T, Status>;

/// The running server (its address and token table).
pub struct Streaming {
    addr: SocketAddr,
    tokens: Arc<Tokens>,
}

impl Streaming {
    /// Binds `config.stream.address` and serves on the current tokio runtime.
    pub async fn start(config: &Config) -> Result<Streaming> {
        let want = &config.stream.address;
        let listener = tokio::net::TcpListener::bind(want)
            .await
            .map_err(|e| Error::io(format!("streaming server: bind {want}"), e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("streaming server address", e))?;
        let tokens = Arc::new(Tokens::new(std::time::Duration::from_secs(config.stream.token_ttl_secs)));
        tokio::spawn(http::serve(listener, tokens.clone()));
        tracing::info!("wharf cri: streaming server on http://{addr}");
        Ok(Streaming { addr, tokens })
    }

    fn url(&self, job: Job) -> R<String> {
        let kind = job.kind();
        let token = self.tokens.insert(job).map_err(|e| Status::internal(format!("random token: {e}")))?;
        Ok(format!("http://{}/{kind}/{token}", self.addr))
    }
}

/// The container an Exec or Attach names, which must be running. The one
/// place that decides which containers the streaming RPCs reach.
async fn running_container(cri: &Cri, id: &str) -> R<Target> {
    let (root, run_root, id) = (cri.root.clone(), cri.run_root.clone(), id.to_string());
    blocking(move || {
        if id.is_empty() {
            return Err(Status::invalid_argument("container_id is required"));
        }
        let cs = wharf_pod::Containers::new(&root, &run_root);
        let c = cs.get(&id).map_err(|e| Status::not_found(format!("container {id:?}: {e}")))?;
        // The CLI's containers are not the kubelet's.
        if !crate::owner::is_cri_container(&c) {
            return Err(Status::not_found(format!("container {id:?} not found")));
        }
        if c.status != wharf_pod::Status::Running {
            return Err(Status::failed_precondition(format!(
                "container {} is in {} state, not running",
                c.id(),
                c.status
            )));
        }
        let stdin_once = crate::container::meta(&c).stdin_once && !c.record.options.tty;
        Ok(Target { root, run_root, id: c.id().to_string(), stdin_once })
    })
    .await
}

/// kubelet's checks of the streams asked for.
fn stdio_opts(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> R<StdioOpts> {
    if !stdin && !stdout && !stderr {
        return Err(Status::invalid_argument("one of stdin, stdout, or stderr must be set"));
    }
    if tty && stderr {
        return Err(Status::invalid_argument("tty and stderr cannot both be true"));
    }
    Ok(StdioOpts { stdin, stdout, stderr, tty })
}

pub async fn exec(cri: &Cri, req: cri::ExecRequest) -> R<cri::ExecResponse> {
    let opts = stdio_opts(req.stdin, req.stdout, req.stderr, req.tty)?;
    if req.cmd.is_empty() {
        return Err(Status::invalid_argument("cmd is required"));
    }
    let target = running_container(cri, &req.container_id).await?;
    let url = cri.streaming.url(Job::Exec { target, cmd: req.cmd, opts })?;
    Ok(cri::ExecResponse { url })
}

pub async fn attach(cri: &Cri, req: cri::AttachRequest) -> R<cri::AttachResponse> {
    let opts = stdio_opts(req.stdin, req.stdout, req.stderr, req.tty)?;
    let target = running_container(cri, &req.container_id).await?;
    let url = cri.streaming.url(Job::Attach { target, opts })?;
    Ok(cri::AttachResponse { url })
}

pub async fn port_forward(cri: &Cri, req: cri::PortForwardRequest) -> R<cri::PortForwardResponse> {
    let (root, run_root, id) = (cri.root.clone(), cri.run_root.clone(), req.pod_sandbox_id.clone());
    let ports = req.port.iter().map(|&p| u16::try_from(p)).collect::<std::result::Result<Vec<_>, _>>();
    let ports = ports.map_err(|_| Status::invalid_argument(format!("ports {:?}: out of range", req.port)))?;
    let (pod, netns) = blocking(move || {
        if id.is_empty() {
            return Err(Status::invalid_argument("pod_sandbox_id is required"));
        }
        let pods = wharf_pod::Pods::new(&root, &run_root);
        let p = pods.get(&id).map_err(|e| Status::not_found(format!("pod sandbox {id:?}: {e}")))?;
        if !crate::owner::is_cri_pod(&p) {
            return Err(Status::not_found(format!("pod sandbox {id:?} not found")));
        }
        // No pinned netns: the host's network (a host-network pod).
        let netns = p.record.namespaces.iter().find(|(t, _)| t == "network").map(|(_, path)| path.clone());
        if netns.as_ref().is_some_and(|n| !n.exists()) {
            return Err(Status::failed_precondition(format!("pod sandbox {}: its network namespace is gone", p.id)));
        }
        Ok((p.id.clone(), netns))
    })
    .await?;
    let url = cri.streaming.url(Job::PortForward { pod, netns, ports })?;
    Ok(cri::PortForwardResponse { url })
}
