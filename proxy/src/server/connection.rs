//! Serving one client connection: HTTP/1.1 or h2c (detected from the first
//! bytes), limits, header read and idle timeouts, and graceful close on
//! shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;

use super::Shared;
use super::conn_io::{ConnState, TrackedIo};
use super::h1_framing::H1Framing;
use super::head_timeout::HeadTimeout;
use super::shutdown::{DrainGuard, Phase, ShutdownSignal};
use crate::config::LimitsConfig;
use crate::proxy::{self, Downstream};

/// hyper's smallest allowed HTTP/1 read buffer.
const MIN_HEAD_BUFFER: usize = 8192;

/// How every client connection of a server is served.
pub(crate) struct ConnSettings {
    builder: auto::Builder<TokioExecutor>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_head_bytes: usize,
    max_headers: usize,
}

impl ConnSettings {
    /// Settings from the config's limits.
    pub(crate) fn new(limits: &LimitsConfig) -> Self {
        let max_head_bytes = limits.max_request_header_bytes.max(MIN_HEAD_BUFFER);
        if max_head_bytes != limits.max_request_header_bytes {
            tracing::warn!(
                configured = limits.max_request_header_bytes,
                used = max_head_bytes,
                "limits.max_request_header_bytes is below the HTTP/1 minimum; raised"
            );
        }
        let mut builder = auto::Builder::new(TokioExecutor::new());
        let mut http1 = builder.http1();
        http1
            .timer(TokioTimer::new())
            .keep_alive(true)
            // Timed here instead, from a head's first byte (see `head_timeout`).
            .header_read_timeout(None)
            .max_buf_size(max_head_bytes);
        if limits.max_request_headers != 100 {
            // hyper's default is 100 on the stack; any other value allocates.
            http1.max_headers(limits.max_request_headers);
        }
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.http2_max_concurrent_streams)
            .max_header_list_size(u32::try_from(max_head_bytes).unwrap_or(u32::MAX));
        Self {
            builder,
            // The config loader rejects zero; a hand-built config must not panic the timers.
            header_read_timeout: limits.header_read_timeout.max(Duration::from_millis(1)),
            idle_timeout: limits.idle_timeout.max(Duration::from_millis(1)),
            max_head_bytes,
            max_headers: limits.max_request_headers,
        }
    }
}

/// Serve `stream` until the client closes it, it idles out, or the server
/// stops. Holds `guard` (and lends it to tunnels) so a drain waits for it.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    settings: Arc<ConnSettings>,
    shared: Arc<Shared>,
    signal: ShutdownSignal,
    guard: DrainGuard,
) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %err, "could not set TCP_NODELAY");
    }
    let state = Arc::new(ConnState::default());
    let framing = H1Framing::new(settings.max_head_bytes, settings.max_headers);
    let io = TokioIo::new(TrackedIo::new(stream, Arc::clone(&state), framing));
    // Shared by the connection's exchanges: one reference count per request
    // rather than a clone of each field.
    let downstream = Arc::new(Downstream {
        peer,
        scheme: "http",
        client_address: proxy::headers::client_address_value(peer.ip()),
        conn: Arc::clone(&state),
        shutdown: signal.clone(),
        drain: Arc::new(guard),
    });
    let service = service_fn(move |request| {
        let runtime = shared.runtime.load_full();
        // Boxed: hyper keeps a slot for the service future in every HTTP/1
        // connection for the connection's whole life, idle or not, and an
        // exchange's state is about 5 KB. Boxed, it exists only while a
        // request is in flight (10,000 idle connections: 50 MB less).
        let exchange = Box::pin(proxy::handle(runtime, request, Arc::clone(&downstream)));
        async move { Ok::<_, Infallible>(exchange.await) }
    });

    let connection = settings.builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    // One shutdown future, kept across the loop's turns: the select polls
    // every branch on each wake-up (twice per request), and a future made
    // afresh each turn registers with and leaves the phase's notifier every
    // time.
    let shutdown = signal.clone().next_phase(Phase::Running);
    tokio::pin!(shutdown);
    let idle_period = settings.idle_timeout;
    let mut idle_check =
        tokio::time::interval_at(tokio::time::Instant::now() + idle_period, idle_period);
    idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_io = state.io_events();
    let mut closing = false;
    let mut head_timeout = HeadTimeout::new(settings.header_read_timeout);
    loop {
        tokio::select! {
            // The connection first: the head timeout reads what its last
            // read left behind.
            biased;
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "client connection ended with an error");
                }
                return;
            }
            phase = &mut shutdown => {
                if phase == Phase::Stopped {
                    tracing::debug!(%peer, "closing client connection: server stopped");
                    return;
                }
                // Draining: finish what is in flight, then close; and
                // watch for the stop.
                if !closing {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                shutdown.set(signal.clone().next_phase(phase));
            }
            _ = head_timeout.expired(&state) => {
                tracing::debug!(
                    %peer,
                    timeout = ?settings.header_read_timeout,
                    "closing client connection: request head incomplete at the header read timeout"
                );
                return;
            }
            _ = idle_check.tick(), if !closing => {
                let io = state.io_events();
                if io == last_io && state.in_flight() == 0 {
                    tracing::debug!(%peer, ?idle_period, "closing idle client connection");
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                last_io = io;
            }
        }
    }
}
