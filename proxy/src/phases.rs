//! The phases of one exchange, as the pipeline drives them.
//!
//! ```text
//!  client                         proxy                              upstream
//!    │ request head ──► route match ──► [request_headers] ─┬─► cluster pick ─► request head ──►│
//!    │                                                     └─► local response (skips upstream)
//!    │ request body ──────────────► [request_body]* ────────────────────────► request body ──►│
//!    │◄── response head ◄── [response_headers] (reverse chain order) ◄──────── response head ──│
//!    │◄── response body ◄── [response_body]*   (reverse chain order) ◄──────── response body ──│
//!    │                           [done] (after the last byte, or on failure)
//! ```
//!
//! Everything that extends the pipeline (today the Wasm filter chain)
//! implements [`ExchangeHooks`]; every hook defaults to "do nothing, go on",
//! so an implementation pays only for the phases it uses. The pipeline owns
//! the ordering; hooks never send responses themselves, they return a
//! [`Flow`] and the pipeline acts on it. Failures are [`HookError`]s, which
//! the pipeline turns into responses in `error.rs`, the one place that does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::body::ProxyBody;
use crate::proxy::headers::RequestId;

/// What the pipeline does after a hook.
#[derive(Debug)]
pub enum Flow {
    /// Go on with the exchange.
    Continue,
    /// Answer with this response instead (of the upstream's, or of the
    /// upstream response seen so far).
    Respond(http::Response<Bytes>),
}

/// Per-exchange state shared by the pipeline and every hook.
#[derive(Debug)]
pub struct ExchangeCtx {
    /// `x-request-id` of this exchange (generated when the client sent none).
    pub request_id: RequestId,
    /// The client's address.
    pub peer: SocketAddr,
    /// `http` or `https`, as the client connected.
    pub scheme: &'static str,
    /// The client's verified identity. Reserved for when TLS (mTLS) lands:
    /// the proxy speaks cleartext only today, so this is always `None`.
    pub peer_identity: Option<String>,
    /// The cluster the request goes to: set from the route, may be replaced by a hook.
    pub cluster: Option<Arc<str>>,
    /// True when a hook chose `cluster` (the route's choice no longer applies).
    pub cluster_overridden: bool,
    /// Set by a hook to make the pipeline match routes again after `request_headers`.
    pub reroute: bool,
    /// Values hooks share with each other for this exchange.
    pub properties: HashMap<String, String>,
    /// When the request head arrived.
    pub started: Instant,
}

impl ExchangeCtx {
    /// A fresh context for a request that has just arrived.
    pub fn new(request_id: RequestId, peer: SocketAddr, scheme: &'static str) -> Self {
        Self {
            request_id,
            peer,
            scheme,
            peer_identity: None,
            cluster: None,
            cluster_overridden: false,
            reroute: false,
            properties: HashMap::new(),
            started: Instant::now(),
        }
    }
}

/// The end of an exchange, for the `done` hook.
#[derive(Debug, Clone)]
pub struct ExchangeSummary {
    /// Status sent to the client.
    pub status: u16,
    /// Microseconds from request head to the end of the response.
    pub duration_us: u64,
    /// Request body bytes received.
    pub request_bytes: u64,
    /// Response body bytes sent.
    pub response_bytes: u64,
    /// Where the request went, if upstream.
    pub upstream_cluster: Option<Arc<str>>,
    /// True when answered without the upstream.
    pub local_response: bool,
}

/// A hook failed; the pipeline answers for it.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// A filter trapped, ran out of time or memory, or returned an error,
    /// and its failure mode is fail-closed: 503 naming the filter.
    #[error("filter `{filter}` failed: {reason}")]
    FilterFailed {
        /// The filter's configured name.
        filter: String,
        /// What went wrong (logged; the client sees only the filter name).
        reason: String,
    },
    /// A body was larger than a filter may buffer: 413 on requests.
    #[error("body larger than the {limit} bytes filter `{filter}` may buffer")]
    BodyTooLarge {
        /// The filter that asked for buffering.
        filter: String,
        /// The limit in bytes.
        limit: u64,
    },
}

/// Hooks into one exchange. One value is created per exchange (see
/// [`HooksFactory`]) and dropped when the exchange ends.
///
/// Body hooks wrap the body stream instead of being called per chunk by the
/// pipeline: the implementation decides whether to look at the body at all.
pub trait ExchangeHooks: Send {
    /// After routing, before the upstream is picked. May change the request
    /// head, choose the cluster (`ctx.cluster`), ask for re-routing, or answer.
    fn request_headers<'a>(
        &'a mut self,
        _head: &'a mut http::request::Parts,
        _ctx: &'a mut ExchangeCtx,
    ) -> BoxFuture<'a, Result<Flow, HookError>> {
        Box::pin(async { Ok(Flow::Continue) })
    }

    /// True when [`Self::request_body`] wraps the body (some hook looks at
    /// it). Only then does the pipeline call it, and watch the wrapped stream
    /// for a hook's failure to answer for. Asked after `request_headers`.
    /// Default: false.
    fn wraps_request_body(&self) -> bool {
        false
    }

    /// Wrap the request body on its way upstream; called only when
    /// [`Self::wraps_request_body`] says so. Default: unchanged.
    fn request_body(&mut self, body: ProxyBody) -> ProxyBody {
        body
    }

    /// True when the body [`Self::request_body`] returns holds everything
    /// back until the end (a filter buffers it whole). The pipeline then reads
    /// it to its end before sending the request head, so the head goes out
    /// with the final `content-length`. Asked after `request_headers`.
    fn buffers_request_body(&self) -> bool {
        false
    }

    /// The response head on its way to the client (upstream or local).
    fn response_headers<'a>(
        &'a mut self,
        _head: &'a mut http::response::Parts,
        _ctx: &'a mut ExchangeCtx,
    ) -> BoxFuture<'a, Result<Flow, HookError>> {
        Box::pin(async { Ok(Flow::Continue) })
    }

    /// Wrap the response body on its way to the client. Default: unchanged.
    fn response_body(&mut self, body: ProxyBody) -> ProxyBody {
        body
    }

    /// Like [`Self::buffers_request_body`], for the response: the pipeline
    /// holds the response head until the wrapped body ended, then sends it
    /// with the final `content-length`. Asked after `response_headers`.
    fn buffers_response_body(&self) -> bool {
        false
    }

    /// The exchange is over. Runs off the response path.
    fn done(self: Box<Self>, _ctx: ExchangeCtx, _summary: ExchangeSummary) {}
}

/// Hooks that do nothing: the pipeline without filters.
pub struct NoHooks;

impl ExchangeHooks for NoHooks {}

/// Makes the hooks for each exchange on a route.
pub trait HooksFactory: Send + Sync {
    /// Hooks for one exchange matched to `route` (the route's stable id from
    /// the router). `None` when nothing needs to run (the fast path).
    fn start(&self, route: crate::routing::RouteId) -> Option<Box<dyn ExchangeHooks>>;

    /// The metrics the hooks record, for the admin endpoint's `GET /metrics`.
    /// `None` (the default): they record none.
    fn metrics(&self) -> Option<crate::wasm::MetricsSnapshot> {
        None
    }
}
