//! Route matching with 1,000 routes: the first route, the last route, and
//! no route at all, for two route tables:
//!
//! - `prefix`: route `i` matches `prefix: /svc-<i>/`. The router indexes
//!   prefixes in a trie, so the cost should not depend on the position.
//! - `header`: every route has `prefix: /api/` and is told apart by an
//!   `x-tenant: t<i>` header condition: nothing narrows the candidates, so
//!   this is the worst case, a scan in config order.
//!
//! `cargo bench -p weir-proxy --bench routing`

mod support;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use weir_proxy::routing::{RouteId, Router};

const ROUTES: usize = 1_000;
const CLUSTERS: usize = 50;

fn router(route_match: impl Fn(usize) -> String) -> Router {
    let config = support::parse(&support::config_yaml(CLUSTERS, ROUTES, route_match));
    let router = Router::new(&config).expect("the generated routes compile");
    assert_eq!(router.route_count(), ROUTES);
    router
}

fn request(path: &str, tenant: Option<&str>) -> http::request::Parts {
    let mut builder = http::Request::get(path)
        .header("host", "bench.example.com")
        .header("user-agent", "criterion")
        .header("accept", "*/*");
    if let Some(tenant) = tenant {
        builder = builder.header("x-tenant", tenant);
    }
    builder.body(()).expect("a valid request").into_parts().0
}

/// Bench `router` on `(case, request, expected route)`, checking each
/// expectation once first so a bench can never measure the wrong outcome.
fn bench_table(
    c: &mut Criterion,
    table: &str,
    router: &Router,
    cases: [(&str, http::request::Parts, Option<u32>); 3],
) {
    let mut group = c.benchmark_group(format!("routing/{ROUTES}_{table}"));
    for (case, head, expected) in &cases {
        let found = router.route(head).map(|m| m.id);
        assert_eq!(found, expected.map(RouteId), "{table}/{case}");
        group.bench_function(*case, |b| {
            b.iter(|| router.route(black_box(head)).map(|m| m.id))
        });
    }
    group.finish();
}

fn routing(c: &mut Criterion) {
    let last = ROUTES - 1;
    let prefix = router(|i| format!("{{ prefix: /svc-{i}/ }}"));
    bench_table(
        c,
        "prefix",
        &prefix,
        [
            ("hit_first", request("/svc-0/items/42", None), Some(0)),
            (
                "hit_last",
                request(&format!("/svc-{last}/items/42"), None),
                Some(last as u32),
            ),
            ("miss", request("/nowhere/items/42", None), None),
        ],
    );

    let header =
        router(|i| format!("{{ prefix: /api/, headers: [{{ name: x-tenant, exact: t{i} }}] }}"));
    bench_table(
        c,
        "header",
        &header,
        [
            ("hit_first", request("/api/items/42", Some("t0")), Some(0)),
            (
                "hit_last",
                request("/api/items/42", Some(&format!("t{last}"))),
                Some(last as u32),
            ),
            ("miss", request("/api/items/42", Some("nobody")), None),
        ],
    );
}

criterion_group!(benches, routing);
criterion_main!(benches);
