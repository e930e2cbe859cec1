//! One exchange through a Wasm filter chain, as the proxy drives it for a
//! request, through the real host (`FilterSet` as the pipeline's
//! `HooksFactory`): start the route's hooks, `request_headers`,
//! `response_headers`, `done`, and drop the hooks. Each `hello` filter sets
//! one request and one response header (two guest calls per exchange).
//!
//! Cases `filter_chain/<case>/<filters>`:
//! - `pooled` (the default): each phase call leases an idle, already
//!   configured instance from the filter's pool and gives it back;
//! - `per_request`: each exchange gets fresh instances (instantiate plus
//!   `configure`), dropped when the exchange ends;
//! - `inline`: pooled, with `execution: inline`: the guest runs on the
//!   worker's stack instead of a fiber of its own.
//!
//! The throughput line counts filters: per-filter time = time / filters.
//!
//! `cargo bench -p weir-tests --bench filter_chain`

mod support;

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{request, response};
use weir_proxy::phases::{ExchangeCtx, ExchangeSummary, Flow, HooksFactory};
use weir_proxy::routing::RouteId;
use weir_proxy::wasm::FilterSet;

/// A browser-like request head, as a client sends it.
fn request_head() -> request::Parts {
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
fn response_head() -> response::Parts {
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
async fn exchange(
    filters: &FilterSet,
    mut request: request::Parts,
    mut response: response::Parts,
) -> (request::Parts, response::Parts) {
    let peer = SocketAddr::from(([127, 0, 0, 1], 40_000));
    let mut hooks = filters.start(RouteId(0)).expect("route 0 has a chain");
    let mut ctx = ExchangeCtx::new("bench-0001".to_owned(), peer, "http");
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

fn filter_chain(c: &mut Criterion) {
    let tokio = support::tokio_runtime();
    let wasm = support::wasm_runtime(None);
    let mut group = c.benchmark_group("filter_chain");
    let cases = [
        ("pooled", "yielding", "pooled"),
        ("per_request", "yielding", "per_request"),
        ("pooled", "inline", "inline"),
    ];
    for (isolation, execution, case) in cases {
        for count in [1, 3] {
            let filters = tokio.block_on(support::load(
                &wasm,
                &support::hello_chain(count, isolation, execution),
            ));
            // Check once that every filter did its work both ways.
            let (request, response) =
                tokio.block_on(exchange(&filters, request_head(), response_head()));
            for i in 0..count {
                assert_eq!(request.headers[format!("x-bench-req-{i}")], "1");
                assert_eq!(response.headers[format!("x-bench-resp-{i}")], "1");
            }
            let filters = &filters;
            group.throughput(Throughput::Elements(count as u64));
            group.bench_function(BenchmarkId::new(case, count), |b| {
                b.to_async(&tokio).iter_batched(
                    || (request_head(), response_head()),
                    |(request, response)| async move {
                        let (request, response) = exchange(filters, request, response).await;
                        black_box(request.headers.len() + response.headers.len())
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, filter_chain);
criterion_main!(benches);
