//! The daemon: the unix socket (a stale one replaced, a live one refused),
//! the gRPC server, and a clean stop on SIGTERM/SIGINT that removes the
//! socket. Nothing the daemon knows lives only in its memory: a `kill -9`
//! loses no image, and a restarted daemon serves the same state.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::service::Cri;
use k8s_cri::v1::image_service_server::ImageServiceServer;
use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The kubelet's default endpoint for containerd is `unix:///run/containerd/containerd.sock`; ours:
pub const DEFAULT_LISTEN: &str = "unix:///run/wharf/cri.sock";

/// How long in-flight calls may run on after SIGTERM before the daemon exits anyway.
const DRAIN: Duration = Duration::from_secs(10);

pub struct ServeOptions {
    /// `unix:///PATH` or an absolute path.
    pub listen: String,
    pub config: Config,
    /// The image store and container data (`--root`).
    pub root: PathBuf,
    /// Runtime state (`--run-root`).
    pub run_root: PathBuf,
    /// wharf's own OCI runtime, the `wharf` handler's binary.
    pub wharf_runtime: PathBuf,
}

/// The socket path of a `--listen` value.
pub fn socket_path(listen: &str) -> Result<PathBuf> {
    let p = listen.strip_prefix("unix://").unwrap_or(listen);
    if !p.starts_with('/') || listen.contains("://") && !listen.starts_with("unix://") {
        return Err(Error::Listen(listen.to_string()));
    }
    Ok(PathBuf::from(p))
}

/// wharf's runtime binary: `$WHARF_RUNTIME_BIN`, else next to this executable, else from PATH.
pub fn wharf_runtime_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("WHARF_RUNTIME_BIN") {
        return PathBuf::from(p);
    }
    let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("wharf-runtime")));
    match beside {
        Some(p) if p.is_file() => p,
        _ => PathBuf::from("wharf-runtime"),
    }
}

/// Serves until SIGTERM or SIGINT; then removes the socket and returns.
pub fn serve(opts: ServeOptions) -> Result<()> {
    opts.config.check_host(&opts.wharf_runtime)?;
    let path = socket_path(&opts.listen)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .thread_name("wharf-cri")
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime", e))?;
    rt.block_on(run(opts, path))
}

async fn run(opts: ServeOptions, path: PathBuf) -> Result<()> {
    let streaming = crate::stream::Streaming::start(&opts.config).await?;
    let cri = Arc::new(Cri::new(opts.config, opts.root, opts.run_root, &opts.wharf_runtime, streaming)?);
    let listener = bind(&path)?;
    crate::events::spawn_housekeeping(cri.clone());
    let ino = std::fs::metadata(&path).map(|m| m.ino()).ok();
    tracing::info!("wharf cri: serving runtime.v1 on unix://{}", path.display());
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .add_service(RuntimeServiceServer::from_arc(cri.clone()))
        .add_service(ImageServiceServer::from_arc(cri))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        });
    let mut server = std::pin::pin!(server);
    let outcome = tokio::select! {
        r = &mut server => Some(r),
        sig = shutdown_signal() => {
            tracing::info!("wharf cri: {sig}: stopping");
            let _ = stop_tx.send(());
            tokio::time::timeout(DRAIN, &mut server).await.ok()
        }
    };
    remove_socket(&path, ino);
    match outcome {
        Some(Err(e)) => Err(Error::Server(e.to_string())),
        Some(Ok(())) => Ok(()),
        None => {
            tracing::warn!("wharf cri: calls still running after {DRAIN:?}; exiting anyway");
            Ok(())
        }
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without handlers the default dispositions still end the process.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Binds the socket. A socket file nobody accepts on (a killed daemon's)
/// is replaced; one a live server accepts on is refused; any other file
/// is left alone.
fn bind(path: &Path) -> Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::SocketInUse { path: path.to_path_buf() });
            }
            tracing::info!("wharf cri: removing the stale socket {}", path.display());
            std::fs::remove_file(path).map_err(|e| Error::io(format!("remove stale {}", path.display()), e))?;
        }
        Ok(_) => return Err(Error::NotASocket { path: path.to_path_buf() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("stat {}", path.display()), e)),
    }
    let l = tokio::net::UnixListener::bind(path).map_err(|e| Error::io(format!("bind {}", path.display()), e))?;
    // Only root and the socket's group may talk to the runtime (containerd's 0660).
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
    Ok(l)
}

/// Removes the socket if it is still the one we bound (a successor may
/// have replaced it).
fn remove_socket(path: &Path, ino: Option<u64>) {
    if std::fs::metadata(path).map(|m| m.ino()).ok() == ino {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!("remove {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_values() {
        assert_eq!(socket_path("unix:///run/wharf/cri.sock").unwrap(), Path::new("/run/wharf/cri.sock"));
        assert_eq!(socket_path("/tmp/x.sock").unwrap(), Path::new("/tmp/x.sock"));
        for bad in ["tcp://127.0.0.1:1234", "unix://relative.sock", "relative.sock", ""] {
            assert!(socket_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stale_socket_replaced_live_refused_file_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.sock");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            // A bound socket nobody accepts on any more: what kill -9 leaves.
            drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
            let live = bind(&p).unwrap();
            assert!(matches!(bind(&p), Err(Error::SocketInUse { .. })));
            drop(live);
        });
        let f = d.path().join("file");
        std::fs::write(&f, "keep").unwrap();
        assert!(matches!(bind(&f), Err(Error::NotASocket { .. })));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "keep");
    }
}
