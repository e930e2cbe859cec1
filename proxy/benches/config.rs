//! Loading a large configuration (1,000 routes, 50 clusters) from text:
//!
//! - `parse_validate_yaml` / `parse_validate_json`: `config::parse_str`,
//!   i.e. deserialize, normalise, validate and resolve paths, as
//!   `weir run` and every hot reload do (the file read aside);
//! - `validate`: `config::validate` alone on the parsed configuration.
//!
//! `cargo bench -p weir-proxy --bench config`

mod support;

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use weir_proxy::config::{self, Format};

const ROUTES: usize = 1_000;
const CLUSTERS: usize = 50;

/// A route mix like a real gateway's: path prefixes, some exact paths with
/// methods, some header and query conditions.
fn route_match(i: usize) -> String {
    match i % 4 {
        0 => format!("{{ prefix: /svc-{i}/ }}"),
        1 => format!("{{ path: /svc-{i}/status, methods: [GET, HEAD] }}"),
        2 => format!("{{ prefix: /api/{i}/, headers: [{{ name: x-tenant, exact: t{i} }}] }}"),
        _ => format!("{{ regex: \"/items/{i}/[0-9]+\", query: [{{ name: v, present: true }}] }}"),
    }
}

fn config_load(c: &mut Criterion) {
    let yaml = support::config_yaml(CLUSTERS, ROUTES, route_match);
    let parsed = support::parse(&yaml);
    let json = parsed.to_json_pretty();
    let origin = Path::new("bench.json");
    assert_eq!(
        config::parse_str(&json, Format::Json, origin).as_ref().ok(),
        Some(&parsed),
        "the JSON form loads to the same configuration"
    );

    let mut group = c.benchmark_group(format!("config/{ROUTES}_routes_{CLUSTERS}_clusters"));
    group.bench_function("parse_validate_yaml", |b| {
        b.iter(|| support::parse(black_box(&yaml)))
    });
    group.bench_function("parse_validate_json", |b| {
        b.iter(|| config::parse_str(black_box(&json), Format::Json, origin).map(drop))
    });
    group.bench_function("validate", |b| {
        b.iter(|| config::validate(black_box(&parsed)))
    });
    group.finish();
}

criterion_group!(benches, config_load);
criterion_main!(benches);
