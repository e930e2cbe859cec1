//! Large generated configurations shared by the proxy's micro-benchmarks.
//!
//! Nothing here opens a socket: listener, admin and endpoint addresses are
//! only parsed and validated, never bound or connected to.

use std::fmt::Write as _;
use std::path::Path;

use weir_proxy::config::{self, Config, Format};

/// The allocator the `weir` binary ships with (see `proxy/src/main.rs`), so
/// allocation costs in these figures are the binary's, not glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// YAML for one listener, `clusters` clusters (`c0`, `c1`, …, two endpoints
/// each) and one catch-all virtual host with `routes` routes. Route `i` is
/// named `r<i>`, matches with the YAML flow mapping `route_match(i)` and
/// forwards to cluster `c<i % clusters>`; every tenth route splits its
/// traffic over two clusters and every route sets one request header, so
/// validation has references and header names to check.
pub fn config_yaml(
    clusters: usize,
    routes: usize,
    route_match: impl Fn(usize) -> String,
) -> String {
    assert!(clusters >= 2, "weighted routes need two clusters");
    let mut yaml = String::from(
        "listeners:\n  - address: \"127.0.0.1:0\"\nadmin: { enabled: false }\nclusters:\n",
    );
    for c in 0..clusters {
        let port = 20_000 + c;
        writeln!(
            yaml,
            "  - name: c{c}\n    endpoints: [\"127.0.0.1:{port}\", \"localhost:{port}\"]\n    lb_policy: least_request"
        )
        .expect("writing to a String");
    }
    yaml.push_str("virtual_hosts:\n  - name: bench\n    domains: [\"*\"]\n    routes:\n");
    for r in 0..routes {
        let forward = if r % 10 == 9 {
            let (a, b) = (r % clusters, (r + 1) % clusters);
            format!(
                "{{ weighted_clusters: [{{ cluster: c{a}, weight: 90 }}, {{ cluster: c{b}, weight: 10 }}], timeout: 5s }}"
            )
        } else {
            format!("{{ cluster: c{} }}", r % clusters)
        };
        writeln!(
            yaml,
            "      - name: r{r}\n        match: {}\n        forward: {forward}\n        request_headers: {{ set: {{ x-route: r{r} }} }}",
            route_match(r)
        )
        .expect("writing to a String");
    }
    yaml
}

/// Parse and validate `yaml` as the proxy does for a file named `bench.yaml`.
pub fn parse(yaml: &str) -> Config {
    match config::parse_str(yaml, Format::Yaml, Path::new("bench.yaml")) {
        Ok(config) => config,
        Err(error) => panic!("the generated configuration does not load:\n{error}"),
    }
}
