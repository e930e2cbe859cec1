//! One exchange through a route's filter chain, as the proxy drives it, for
//! the filter benchmarks (`filter_chain`, `execution_ab`).

use std::net::SocketAddr;

use http::{request, response};
use weir_proxy::phases::{ExchangeCtx, ExchangeSummary, Flow, HooksFactory};
use weir_proxy::proxy::headers::RequestId;
use weir_proxy::routing::RouteId;
use weir_proxy::wasm::FilterSet;

/// A browser-like request head, as a client sends it.
pub fn request_head() -> request::Parts {
    http::Request::get("/api/items/42?expand=owner")
        .header("host", "shop.example.com")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
        .header("accept", "application/json")
        .header("accept-encoding", "gzip, br")
        .header("accept-language", "en-GB,en;q=0.8")
        .header("cookie", "session=4f1c2a9e7b; theme=dark")
        .header("x-request-id", "bench-0001")
        .body(())
        .expect("a valid request")
        .into_parts()
        .0
}

/// A typical upstream response head.
pub fn response_head() -> response::Parts {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("content-length", "512")
        .header("cache-control", "no-store")
        .header("date", "Tue, 25 Nov 2025 12:00:00 GMT")
        .body(())
        .expect("a valid response")
        .into_parts()
        .0
}

/// One exchange on route 0 of `filters`; returns the heads as the chain
/// left them.
pub async fn exchange(
    filters: &FilterSet,
    mut request: request::Parts,
    mut response: response::Parts,
) -> (request::Parts, response::Parts) {
    let peer = SocketAddr::from(([127, 0, 0, 1], 40_000));
    let mut hooks = filters.start(RouteId(0)).expect("route 0 has a chain");
    let request_id =
        RequestId::new(&http::HeaderValue::from_static("bench-0001")).expect("a valid request id");
    let mut ctx = ExchangeCtx::new(request_id, peer, "http");
    match hooks.request_headers(&mut request, &mut ctx).await {
        Ok(Flow::Continue) => {}
        other => panic!("request_headers: {other:?}"),
    }
    match hooks.response_headers(&mut response, &mut ctx).await {
        Ok(Flow::Continue) => {}
        other => panic!("response_headers: {other:?}"),
    }
    let summary = ExchangeSummary {
        status: response.status.as_u16(),
        duration_us: 0,
        request_bytes: 0,
        response_bytes: 512,
        upstream_cluster: ctx.cluster.clone(),
        local_response: false,
    };
    hooks.done(ctx, summary);
    (request, response)
}
