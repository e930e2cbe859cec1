//! Listeners, connection limits, graceful shutdown and the admin endpoint
//! (`/ready`, `/config`, `/metrics`).
//!
//! [`start`] binds every listener of a [`Runtime`]'s config (and the admin
//! listener), then serves in background tasks; the returned [`ServerHandle`]
//! reports the bound addresses, swaps in new config generations
//! ([`ServerHandle::reload`]) and shuts the server down gracefully.
//!
//! Shutdown: listeners close at once (new connections are refused), HTTP/2
//! clients get GOAWAY and HTTP/1 responses `connection: close`, in-flight
//! requests get up to `limits.drain_timeout` to finish, then whatever is
//! left is closed.

mod admin;
mod conn_io;
mod connection;
mod h1_framing;
mod head_timeout;
mod listen;
mod prometheus;
mod shutdown;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::proxy::Runtime;

pub use conn_io::{ConnState, InFlight};
pub use shutdown::{DrainGuard, Phase, ShutdownOutcome, ShutdownSignal};

use connection::ConnSettings;
use shutdown::ShutdownController;

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener address is not `ip:port`.
    #[error("listener {name:?}: invalid address {address:?} (expected ip:port)")]
    InvalidAddress {
        /// The listener's name (or address).
        name: String,
        /// What was configured.
        address: String,
    },
    /// Binding a listener failed (address in use, permission denied, ...).
    #[error("listener {name:?}: cannot bind {address}: {source}")]
    Bind {
        /// The listener's name (or address).
        name: String,
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// State shared by every task of one server.
pub(crate) struct Shared {
    /// The live config generation; each request loads it once.
    pub(crate) runtime: ArcSwap<Runtime>,
    phase: watch::Sender<Phase>,
    /// Proxy listeners still accepting.
    open_listeners: watch::Sender<usize>,
}

impl Shared {
    pub(crate) fn phase(&self) -> Phase {
        *self.phase.borrow()
    }
}

/// Controls a running server. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    listen_addrs: Arc<[SocketAddr]>,
    admin_addr: Option<SocketAddr>,
    finished: watch::Receiver<Option<ShutdownOutcome>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("listen_addrs", &self.listen_addrs)
            .field("admin_addr", &self.admin_addr)
            .field("phase", &self.shared.phase())
            .finish()
    }
}

/// Bind the listeners of `runtime`'s config and start serving.
///
/// Returns once every socket is bound, so the addresses in the handle accept
/// connections immediately. Must be called inside a tokio runtime.
pub async fn start(runtime: Runtime) -> Result<ServerHandle, ServerError> {
    let config = Arc::clone(&runtime.config);
    let mut listeners = Vec::with_capacity(config.listeners.len());
    for listener in &config.listeners {
        let name = listener
            .name
            .clone()
            .unwrap_or_else(|| listener.address.clone());
        let bound = listen::bind(&name, &listener.address, listener.backlog)?;
        listeners.push((name, bound));
    }
    let admin = if config.admin.enabled {
        let backlog = crate::config::defaults::listen_backlog();
        Some((
            "admin".to_string(),
            listen::bind("admin", &config.admin.address, backlog)?,
        ))
    } else {
        None
    };

    let controller = ShutdownController::new();
    let shared = Arc::new(Shared {
        runtime: ArcSwap::from_pointee(runtime),
        phase: controller.phase_sender(),
        open_listeners: watch::Sender::new(listeners.len()),
    });
    let settings = Arc::new(ConnSettings::new(&config.limits));
    let mut listen_addrs = Vec::with_capacity(listeners.len());
    for (name, listener) in listeners {
        let addr = listener
            .local_addr()
            .expect("a bound socket has an address");
        tracing::info!(listener = %name, address = %addr, "listening");
        listen_addrs.push(addr);
        tokio::spawn(accept_loop(
            listener,
            Arc::clone(&settings),
            Arc::clone(&shared),
            controller.signal(),
            controller.guard(),
        ));
    }
    let admin_addr = admin.map(|(_, listener)| {
        let addr = listener
            .local_addr()
            .expect("a bound socket has an address");
        tracing::info!(address = %addr, "admin listening");
        tokio::spawn(admin::serve(
            listener,
            Arc::clone(&shared),
            controller.signal(),
        ));
        addr
    });

    let (finished_tx, finished) = watch::channel(None);
    let drain_timeout = config.limits.drain_timeout;
    tokio::spawn(async move {
        let outcome = controller.run(drain_timeout).await;
        tracing::info!(?outcome, "server stopped");
        finished_tx.send_replace(Some(outcome));
    });
    Ok(ServerHandle {
        shared,
        listen_addrs: listen_addrs.into(),
        admin_addr,
        finished,
    })
}

impl ServerHandle {
    /// The bound addresses of the proxy listeners, in config order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.listen_addrs
    }

    /// The bound address of the admin listener, if it is enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The config generation new requests use.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.shared.runtime.load_full()
    }

    /// Make `runtime` the generation for new requests. Requests in flight
    /// finish with the one they started with. Listener addresses and limits
    /// are fixed at start and do not change.
    pub fn reload(&self, runtime: Runtime) {
        self.shared.runtime.store(Arc::new(runtime));
        tracing::info!("configuration reloaded");
    }

    /// Where the server is: running, draining or stopped.
    pub fn phase(&self) -> Phase {
        self.shared.phase()
    }

    /// Start a graceful shutdown and return at once. Idempotent.
    pub fn begin_shutdown(&self) {
        self.shared.phase.send_if_modified(|phase| {
            let start = *phase == Phase::Running;
            if start {
                *phase = Phase::Draining;
            }
            start
        });
    }

    /// Wait until every proxy listener has closed its socket (after a
    /// shutdown was started): from then on new connections are refused.
    pub async fn listeners_closed(&self) {
        let mut open = self.shared.open_listeners.subscribe();
        // The sender lives in `shared`, which `self` keeps alive.
        let _ = open.wait_for(|open| *open == 0).await;
    }

    /// Wait until the server has stopped (after a shutdown was started).
    pub async fn wait(&self) -> ShutdownOutcome {
        let mut finished = self.finished.clone();
        let outcome = finished.wait_for(Option::is_some).await;
        match outcome {
            Ok(outcome) => outcome.expect("waited for Some"),
            // The supervisor task is gone (runtime shutting down): nothing is left running.
            Err(_) => ShutdownOutcome::Drained,
        }
    }

    /// Shut down gracefully and wait until done: stop accepting, let
    /// in-flight requests finish for up to `limits.drain_timeout`, close the rest.
    pub async fn shutdown(&self) -> ShutdownOutcome {
        self.begin_shutdown();
        self.wait().await
    }
}

/// Accept connections until the server starts draining, then drop the
/// listener so new connections are refused.
async fn accept_loop(
    listener: TcpListener,
    settings: Arc<ConnSettings>,
    shared: Arc<Shared>,
    signal: ShutdownSignal,
    guard: DrainGuard,
) {
    let mut draining = signal.clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    accept_failed(&err).await;
                    continue;
                }
            },
            _ = draining.draining() => break,
        };
        let (settings, shared, signal, guard) = (
            Arc::clone(&settings),
            Arc::clone(&shared),
            signal.clone(),
            guard.clone(),
        );
        crate::workers::spawn_connection(stream, move |stream| {
            connection::serve(stream, peer, settings, shared, signal, guard)
        });
    }
    let address = listener.local_addr().ok();
    drop(listener);
    shared.open_listeners.send_modify(|open| *open -= 1);
    tracing::debug!(?address, "listener closed");
}

/// After a failed accept: log, and back off briefly when out of file
/// descriptors so the loop does not spin.
pub(crate) async fn accept_failed(err: &std::io::Error) {
    tracing::warn!(error = %err, "accept failed");
    // EMFILE / ENFILE and friends clear only when connections close.
    if err.raw_os_error().is_some() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
