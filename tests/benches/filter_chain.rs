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

mod exchange;
mod support;

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use exchange::{exchange, request_head, response_head};

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
