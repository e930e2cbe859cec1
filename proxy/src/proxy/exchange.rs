//! One exchange: routing, hooks, the route's action, and the response.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use http::request::Parts;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use super::buffered;
use super::headers::strip_hop_by_hop;
use super::tracked_body::{
    Completion, CountingBody, HookErrorCapture, HookErrorSlot, ResponseBody,
};
use super::{Downstream, Runtime, upgrade};
use crate::body::{self, ProxyBody};
use crate::error::{ErrorKind, ProxyError};
use crate::phases::{ExchangeCtx, ExchangeHooks, Flow};
use crate::routing::{DirectResponse, Forward, Route, RouteAction};
use crate::server::InFlight;
use crate::upstream::{UpstreamBody, Upstreams};

/// The state of one request/response exchange.
pub(super) struct Exchange<'rt> {
    runtime: &'rt Runtime,
    downstream: Arc<Downstream>,
    ctx: ExchangeCtx,
    hooks: Option<Box<dyn ExchangeHooks>>,
    /// Set once a hook failed: response hooks are not run again.
    hooks_failed: bool,
    request_bytes: Arc<AtomicU64>,
    /// A hook failure seen in the request body stream (only with hooks).
    request_body_error: Option<HookErrorSlot>,
    upstream_cluster: Option<Arc<str>>,
    answered_by_upstream: bool,
    /// The request is a HEAD: a response body is never sent.
    head_request: bool,
    in_flight: InFlight,
}

impl<'rt> Exchange<'rt> {
    pub(super) fn new(
        runtime: &'rt Runtime,
        downstream: Arc<Downstream>,
        request_id: super::headers::RequestId,
        in_flight: InFlight,
    ) -> Self {
        let ctx = ExchangeCtx::new(request_id, downstream.peer, downstream.scheme);
        Self {
            runtime,
            downstream,
            ctx,
            hooks: None,
            hooks_failed: false,
            request_bytes: Arc::new(AtomicU64::new(0)),
            request_body_error: None,
            upstream_cluster: None,
            answered_by_upstream: false,
            head_request: false,
            in_flight,
        }
    }

    /// Route the request and carry out the route's action.
    pub(super) async fn run(
        &mut self,
        mut head: Parts,
        body: Incoming,
        upgrade: bool,
    ) -> Response<ProxyBody> {
        let runtime = self.runtime;
        self.head_request = head.method == http::Method::HEAD;
        let Some(matched) = runtime.router.route(&head) else {
            return ProxyError::new(ErrorKind::NoRoute).into_response();
        };
        let mut route = matched.route;
        tracing::debug!(route = ?route.name, virtual_host = matched.virtual_host, "matched");
        self.hooks = runtime.hooks.start(matched.id);
        self.ctx.cluster = cluster_of(route);

        if let Some(hooks) = self.hooks.as_mut() {
            match hooks.request_headers(&mut head, &mut self.ctx).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Respond(response)) => {
                    return self.response_phase(response.map(body::full)).await;
                }
                Err(err) => {
                    self.hooks_failed = true;
                    return ProxyError::from(err).into_response();
                }
            }
            if std::mem::take(&mut self.ctx.reroute) {
                let Some(rerouted) = runtime.router.route(&head) else {
                    return ProxyError::new(ErrorKind::NoRoute).into_response();
                };
                route = rerouted.route;
                tracing::debug!(route = ?route.name, "re-routed by a hook");
                if !self.ctx.cluster_overridden {
                    self.ctx.cluster = cluster_of(route);
                }
            }
        }

        // A hook that picked a cluster sends the request there, whatever the
        // route would have done.
        let overridden = self.ctx.cluster_overridden;
        let local = match &route.action {
            RouteAction::DirectResponse(direct) if !overridden => Some(direct_response(direct)),
            RouteAction::Redirect(redirect) if !overridden => Some(
                redirect
                    .response_for(&head, self.downstream.scheme)
                    .map(body::full),
            ),
            _ => None,
        };
        if let Some(mut response) = local {
            route.response_headers.apply(response.headers_mut());
            return self.response_phase(response).await;
        }
        let forward = forward_of(route);
        let Some(cluster) = self.ctx.cluster.clone() else {
            let err = ProxyError::new(ErrorKind::UnknownCluster).with_cause("no cluster chosen");
            return self.response_phase(err.into_response()).await;
        };
        self.forward(head, body, upgrade, route, forward, cluster)
            .await
    }

    /// Send the request to `cluster` and bring back its response.
    async fn forward(
        &mut self,
        mut head: Parts,
        body: Incoming,
        upgrade: bool,
        route: &Route,
        forward: Option<&Forward>,
        cluster: Arc<str>,
    ) -> Response<ProxyBody> {
        route.request_headers.apply(&mut head.headers);
        if let Some(forward) = forward {
            forward.rewrite(&mut head);
        }
        // The proxy answers `Expect: 100-continue` itself (hyper sends the
        // 100 when the body is first read), so the upstream must not.
        head.headers.remove(header::EXPECT);
        let client_upgrade = if upgrade {
            head.extensions.remove::<OnUpgrade>()
        } else {
            None
        };
        let timeout = forward
            .and_then(Forward::timeout)
            .unwrap_or(self.runtime.config.limits.request_timeout);

        let mut body = self.request_body(body);
        if self
            .hooks
            .as_ref()
            .is_some_and(|h| h.buffers_request_body())
        {
            // Boxed here and below: buffering is the rare path, and its state
            // would otherwise enlarge every exchange's future (moved, so
            // copied, on each request).
            match Box::pin(buffered::collect(body)).await {
                Ok(whole) => {
                    let carries_body = whole.length != Some(0)
                        || !matches!(
                            head.method,
                            http::Method::GET | http::Method::HEAD | http::Method::DELETE
                        );
                    if carries_body {
                        buffered::set_length(&mut head.headers, whole.length);
                    }
                    body = whole.body;
                }
                Err(err) => {
                    let taken = self
                        .request_body_error
                        .as_ref()
                        .and_then(|slot| slot.lock().ok().and_then(|mut kind| kind.take()));
                    let err = match taken {
                        Some(kind) => {
                            self.hooks_failed = true;
                            ProxyError::new(kind).with_cause(err)
                        }
                        None => ProxyError::new(ErrorKind::BadRequest("request body not received"))
                            .with_cause(err),
                    };
                    return self.response_phase(err.into_response()).await;
                }
            }
        }
        let request = Request::from_parts(head, body);
        let cluster: &str = self.upstream_cluster.insert(cluster);
        let response = match send(&self.runtime.upstreams, cluster, request, timeout).await {
            Ok(response) => response,
            Err(err) => {
                let taken = self
                    .request_body_error
                    .as_ref()
                    .and_then(|slot| slot.lock().ok().and_then(|mut kind| kind.take()));
                let err = match taken {
                    // A filter stopped the body: that is what the client hears about.
                    Some(kind) => {
                        self.hooks_failed = true;
                        ProxyError::new(kind).with_cause(err)
                    }
                    None => err,
                };
                return self.response_phase(err.into_response()).await;
            }
        };
        self.answered_by_upstream = true;

        let (mut parts, body) = response.into_parts();
        let switching = parts.status == StatusCode::SWITCHING_PROTOCOLS;
        if switching {
            match (client_upgrade, parts.extensions.remove::<OnUpgrade>()) {
                (Some(client), Some(upstream)) => upgrade::bridge(
                    client,
                    upstream,
                    self.downstream.shutdown.clone(),
                    Arc::clone(&self.downstream.drain),
                    self.ctx.request_id.clone(),
                ),
                _ => {
                    self.answered_by_upstream = false;
                    let err = ProxyError::new(ErrorKind::UpstreamProtocol)
                        .with_cause("101 Switching Protocols without an upgrade request");
                    return self.response_phase(err.into_response()).await;
                }
            }
        }
        strip_hop_by_hop(&mut parts.headers, switching);
        route.response_headers.apply(&mut parts.headers);
        self.response_phase(Response::from_parts(parts, body::boxed(body)))
            .await
    }

    /// The request body on its way upstream: counted, then wrapped by hooks
    /// that look at it.
    fn request_body(&mut self, body: Incoming) -> ProxyBody {
        let counted = body::boxed(CountingBody::new(body, Arc::clone(&self.request_bytes)));
        match self.hooks.as_mut() {
            Some(hooks) if hooks.wraps_request_body() => {
                let wrapped = hooks.request_body(counted);
                let slot = HookErrorSlot::default();
                self.request_body_error = Some(Arc::clone(&slot));
                body::boxed(HookErrorCapture::new(wrapped, slot))
            }
            _ => counted,
        }
    }

    /// Let the hooks see (and maybe replace) the response head and wrap its body.
    async fn response_phase(&mut self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        if self.hooks_failed {
            return response;
        }
        let Some(hooks) = self.hooks.as_mut() else {
            return response;
        };
        let (mut parts, body) = response.into_parts();
        match hooks.response_headers(&mut parts, &mut self.ctx).await {
            Ok(Flow::Continue) => {
                let body = hooks.response_body(body);
                if !hooks.buffers_response_body() {
                    return Response::from_parts(parts, body);
                }
                Box::pin(self.buffered_response(parts, body)).await
            }
            Ok(Flow::Respond(replacement)) => {
                self.answered_by_upstream = false;
                replacement.map(body::full)
            }
            Err(err) => {
                self.hooks_failed = true;
                self.answered_by_upstream = false;
                ProxyError::from(err).into_response()
            }
        }
    }

    /// A response whose body a filter buffers: read it through the filters
    /// first, then send the head with the final length. A filter failing on
    /// the body can still be answered for, since nothing was sent yet.
    async fn buffered_response(
        &mut self,
        mut parts: http::response::Parts,
        body: ProxyBody,
    ) -> Response<ProxyBody> {
        match buffered::collect(body).await {
            Ok(whole) => {
                let no_body = self.head_request
                    || parts.status.is_informational()
                    || parts.status == StatusCode::NO_CONTENT
                    || parts.status == StatusCode::NOT_MODIFIED;
                if !no_body {
                    buffered::set_length(&mut parts.headers, whole.length);
                }
                Response::from_parts(parts, whole.body)
            }
            Err(err) => {
                self.hooks_failed = true;
                self.answered_by_upstream = false;
                let kind = match ProxyError::find_hook_error(err.as_ref()) {
                    Some(crate::phases::HookError::FilterFailed { filter, .. }) => {
                        ErrorKind::FilterFailed {
                            filter: filter.clone(),
                        }
                    }
                    // Too large for a filter, or the upstream broke off.
                    _ => ErrorKind::UpstreamProtocol,
                };
                ProxyError::new(kind).with_cause(err).into_response()
            }
        }
    }

    /// Hand the response to the server; the exchange completes when its body does.
    pub(super) fn finish(self, response: Response<ProxyBody>) -> Response<ResponseBody> {
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let completion = Completion::new(
            self.hooks,
            self.ctx,
            self.request_bytes,
            status,
            self.upstream_cluster,
            !self.answered_by_upstream,
            self.in_flight,
        );
        Response::from_parts(parts, ResponseBody::new(body, completion))
    }
}

fn forward_of(route: &Route) -> Option<&Forward> {
    match &route.action {
        RouteAction::Forward(forward) => Some(forward),
        _ => None,
    }
}

/// The cluster `route` sends this request to, if it forwards.
fn cluster_of(route: &Route) -> Option<Arc<str>> {
    forward_of(route).and_then(Forward::pick_cluster).cloned()
}

fn direct_response(direct: &DirectResponse) -> Response<ProxyBody> {
    let mut response = Response::new(body::full(direct.body.clone()));
    *response.status_mut() = direct.status;
    *response.headers_mut() = direct.headers.clone();
    response
}

/// Send upstream, allowing `timeout` until the response head.
async fn send(
    upstreams: &Upstreams,
    cluster: &str,
    request: Request<ProxyBody>,
    timeout: Duration,
) -> Result<Response<UpstreamBody>, ProxyError> {
    match tokio::time::timeout(timeout, upstreams.send(cluster, request)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(err)) => Err(ProxyError::from(err)),
        Err(_) => Err(
            ProxyError::new(ErrorKind::UpstreamTimeout).with_cause(format!(
                "no response head from cluster {cluster:?} within {timeout:?}"
            )),
        ),
    }
}
