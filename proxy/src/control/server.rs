//! Serving the control API: binding (TCP or unix socket), the token policy,
//! health and reflection services, graceful shutdown.
//!
//! Policy: the API binds 127.0.0.1 by default. Any bind that other machines
//! can reach (not loopback, not a unix socket) refuses to start without a
//! bearer token. When a token is configured, every call is checked.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::InterceptorLayer;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use super::address::ControlAddress;
use super::auth::{BearerToken, RequireToken};
use super::limit::{ENVELOPE_BYTES, UploadLimit};
use super::pb;
use super::plane::ControlPlane;
use super::service::ControlService;

/// Default largest module (or configuration) a client may upload: 64 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// How the control API is served.
#[derive(Debug, Clone)]
pub struct ControlServerConfig {
    /// Where to listen.
    pub bind: ControlAddress,
    /// Required on every call when set; mandatory for non-local binds.
    pub token: Option<BearerToken>,
    /// Largest module or configuration a client may upload, in bytes.
    pub max_upload_bytes: usize,
}

impl ControlServerConfig {
    /// Listen on `bind`, no token, default upload limit.
    pub fn new(bind: ControlAddress) -> Self {
        Self {
            bind,
            token: None,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
        }
    }
}

/// Why the control API could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A bind other machines can reach, without a token.
    #[error(
        "refusing to serve the control API on {bind} without a bearer token: it is reachable \
         from other machines. Bind 127.0.0.1 or a unix socket, or configure a token \
         (a token file, or ${env})",
        env = super::auth::TOKEN_ENV
    )]
    TokenRequired {
        /// The address asked for.
        bind: ControlAddress,
    },
    /// The socket could not be bound.
    #[error("cannot bind the control API on {bind}: {source}")]
    Bind {
        /// The address asked for.
        bind: ControlAddress,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another process serves on the unix socket already.
    #[error("cannot bind the control API on unix:{}: another process is listening there", path.display())]
    SocketInUse {
        /// The socket path.
        path: PathBuf,
    },
    /// The path exists and is not a socket; it is not ours to delete.
    #[error("cannot bind the control API on unix:{}: the path exists and is not a socket", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The reflection service could not be built from the descriptor set.
    #[error("cannot build the gRPC reflection service: {0}")]
    Reflection(String),
    /// The server failed while running.
    #[error("control API server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A control API server running in the background.
#[derive(Debug)]
pub struct RunningControlServer {
    address: ControlAddress,
    task: JoinHandle<Result<(), ServeError>>,
}

impl RunningControlServer {
    /// Where it listens (with the real port when port 0 was asked for).
    pub fn address(&self) -> &ControlAddress {
        &self.address
    }

    /// The TCP address it listens on; `None` for a unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.address {
            ControlAddress::Tcp(addr) => Some(*addr),
            ControlAddress::Unix(_) => None,
        }
    }

    /// Waits until the server has shut down (after the shutdown signal and
    /// the end of in-flight calls).
    pub async fn wait(self) -> Result<(), ServeError> {
        match self.task.await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Ok(()),
        }
    }
}

/// Serves the control API for `plane` on `bind` until `shutdown` resolves,
/// with the default upload limit. See [`serve_with`].
pub async fn serve(
    plane: Arc<dyn ControlPlane>,
    bind: ControlAddress,
    token: Option<BearerToken>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningControlServer, ServeError> {
    serve_with(
        plane,
        ControlServerConfig {
            token,
            ..ControlServerConfig::new(bind)
        },
        shutdown,
    )
    .await
}

/// Binds and starts serving in the background: the control service, the
/// standard health service (`grpc.health.v1.Health`, SERVING for "" and
/// `weir.control.v1.Control`) and reflection (v1 and v1alpha). Errors in
/// binding or policy are returned here, before anything is served.
pub async fn serve_with(
    plane: Arc<dyn ControlPlane>,
    config: ControlServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningControlServer, ServeError> {
    if !config.bind.is_local() && config.token.is_none() {
        return Err(ServeError::TokenRequired { bind: config.bind });
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let control = UploadLimit::new(
        pb::control_server::ControlServer::new(ControlService::new(
            plane,
            config.max_upload_bytes,
            stop_rx,
        ))
        .max_decoding_message_size(config.max_upload_bytes.saturating_add(ENVELOPE_BYTES)),
        config.max_upload_bytes,
    );

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::control_server::ControlServer<ControlService>>()
        .await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;

    // The check runs before every service, health and reflection included.
    let router = Server::builder()
        .layer(InterceptorLayer::new(RequireToken::new(
            config.token.as_ref(),
        )))
        .add_service(control)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    // Watchers end their streams first, then tonic drains in-flight calls.
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };

    match &config.bind {
        ControlAddress::Tcp(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind {
                    bind: config.bind.clone(),
                    source,
                })?;
            let local = listener.local_addr().map_err(|source| ServeError::Bind {
                bind: config.bind.clone(),
                source,
            })?;
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            let task = tokio::spawn(async move {
                router
                    .serve_with_incoming_shutdown(incoming, signal)
                    .await?;
                Ok(())
            });
            Ok(RunningControlServer {
                address: ControlAddress::Tcp(local),
                task,
            })
        }
        ControlAddress::Unix(path) => {
            let listener = bind_unix(path).map_err(|e| {
                e.unwrap_or_else(|source| ServeError::Bind {
                    bind: config.bind.clone(),
                    source,
                })
            })?;
            let path = path.clone();
            let socket = path.clone();
            let task = tokio::spawn(async move {
                let result = router
                    .serve_with_incoming_shutdown(unix_incoming(listener), signal)
                    .await;
                let _ = std::fs::remove_file(&socket);
                result?;
                Ok(())
            });
            Ok(RunningControlServer {
                address: ControlAddress::Unix(path),
                task,
            })
        }
    }
}

/// Binds a unix socket, replacing a stale socket file left by a crashed run.
/// `Err(Ok(e))`: a policy error; `Err(Err(io))`: the bind failed.
fn bind_unix(path: &Path) -> Result<UnixListener, Result<ServeError, std::io::Error>> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(Ok(ServeError::NotASocket {
                path: path.to_path_buf(),
            }));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Ok(ServeError::SocketInUse {
                path: path.to_path_buf(),
            }));
        }
        std::fs::remove_file(path).map_err(Err)?;
    }
    let listener = UnixListener::bind(path).map_err(Err)?;
    // Only the owner may talk to the proxy through it.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(Err)?;
    Ok(listener)
}

/// Accepted unix connections. After an accept error (e.g. out of file
/// descriptors) it pauses briefly instead of spinning.
fn unix_incoming(
    listener: UnixListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::UnixStream>> {
    stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        if accepted.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some((accepted, listener))
    })
}
