//! The request pipeline: what happens to one request between the client and
//! the upstream.
//!
//! ```text
//! validate ─► strip hop-by-hop, x-request-id, x-forwarded-* ─► route ─► hooks.request_headers
//!   ─► (direct response | redirect | forward: header ops, rewrite, send under the route timeout)
//!   ─► strip hop-by-hop ─► response header ops ─► hooks.response_headers ─► stream body ─► hooks.done
//! ```
//!
//! Bodies stream both ways with backpressure. The one exception: when a
//! filter buffers a body whole anyway, the head waits for the buffered body
//! so it carries the final `content-length` (see `buffered`).
//! Every error becomes a response in [`crate::error`].

mod buffered;
mod callouts;
mod exchange;
pub mod headers;
mod runtime;
mod tracked_body;
mod upgrade;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use hyper::body::Incoming;
use tracing::Instrument;

use crate::server::{ConnState, DrainGuard, ShutdownSignal};

pub use callouts::UpstreamCallouts;
pub use runtime::{NoFilters, Runtime, RuntimeError};
pub use tracked_body::{CountingBody, ResponseBody};
pub use validate::validate_request;

/// The client connection a request arrived on, as the pipeline sees it.
#[derive(Debug, Clone)]
pub struct Downstream {
    /// The client's address.
    pub peer: SocketAddr,
    /// `http` (or `https` once listeners terminate TLS).
    pub scheme: &'static str,
    /// `peer`'s address as an `x-forwarded-for` entry (made once per connection).
    pub client_address: HeaderValue,
    /// Per-connection bookkeeping shared with the server.
    pub conn: Arc<ConnState>,
    /// The server's shutdown phase (tunnels close when the server stops).
    pub shutdown: ShutdownSignal,
    /// Keeps a shutdown's drain waiting while this connection, or a tunnel
    /// made from it, is open (one guard per client connection).
    pub drain: Arc<DrainGuard>,
}

/// Serve one request: the whole pipeline, from the request head to the
/// response whose body streams the rest. Never fails: every error is already
/// a response.
pub async fn handle(
    runtime: Arc<Runtime>,
    request: Request<Incoming>,
    downstream: Arc<Downstream>,
) -> Response<ResponseBody> {
    let in_flight = downstream.conn.start_exchange();
    let (mut head, body) = request.into_parts();
    let ambiguous_length =
        head.version <= Version::HTTP_11 && downstream.conn.next_h1_request_is_ambiguous();
    let checked = validate_request(&head, ambiguous_length, &runtime.config.limits);

    let upgrade = head.version == Version::HTTP_11 && headers::is_upgrade_request(&head.headers);
    // After a head that may switch protocols, the server stops following
    // HTTP/1 framing on the connection (what comes next could be a tunnel),
    // so unless it does switch, the connection ends with this exchange.
    let close_unless_switched = head.version <= Version::HTTP_11
        && (head.headers.contains_key(header::UPGRADE) || head.method == Method::CONNECT);
    headers::strip_hop_by_hop(&mut head.headers, upgrade);
    // Room for the three headers added next: hyper sized the map to the
    // fields it parsed, and growing it one insert at a time took two
    // reallocations of its table and entries.
    head.headers.reserve(3);
    let request_id = headers::ensure_request_id(&mut head.headers);
    headers::set_forwarded(
        &mut head.headers,
        &downstream.client_address,
        downstream.scheme,
    );

    let span = tracing::debug_span!(
        "exchange",
        request_id = %request_id,
        method = %head.method,
        uri = %head.uri,
    );
    let mut exchange = exchange::Exchange::new(&runtime, downstream, request_id, in_flight);
    let mut response = match checked {
        Ok(()) => exchange.run(head, body, upgrade).instrument(span).await,
        Err(err) => span.in_scope(|| err.into_response()),
    };
    if close_unless_switched && response.status() != StatusCode::SWITCHING_PROTOCOLS {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    exchange.finish(response)
}
