//! Route matching and load balancing, seen from a client of the proxy.

use std::collections::HashMap;

use http::Request;
use weir_proxy::body;
use weir_tests::{client, proxy, server};

const ROUTE_TABLE: &str = r#"
virtual_hosts:
  - name: api
    domains: ["api.example.com"]
    routes:
      - match: { prefix: / }
        direct_response: { status: 200, body: api-vhost }
  - name: wildcard
    domains: ["*.example.com"]
    routes:
      - match: { prefix: / }
        direct_response: { status: 200, body: wildcard-vhost }
  - name: default
    domains: ["*"]
    routes:
      - match: { path: /exact }
        direct_response: { status: 200, body: exact }
      - match: { regex: "/users/[0-9]+" }
        direct_response: { status: 200, body: user-by-id }
      - match: { path: /submit, methods: [POST] }
        direct_response: { status: 200, body: post-submit }
      - match: { path: /submit }
        direct_response: { status: 200, body: any-submit }
      - match: { prefix: /feature, headers: [{ name: x-canary, exact: "1" }] }
        direct_response: { status: 200, body: canary }
      - match: { prefix: /feature }
        direct_response: { status: 200, body: stable }
      - match: { prefix: /search, query: [{ name: debug, present: true }] }
        direct_response: { status: 200, body: search-debug }
      - match: { prefix: /api/ }
        direct_response: { status: 200, body: api-prefix }
"#;

/// (method, path, Host, extra header, expected body or status)
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<(&'static str, &'static str)>,
    &'static str,
);

#[tokio::test]
async fn route_matching_table() {
    let proxy = proxy::new().config(ROUTE_TABLE).run().await;
    let client = client::http1();
    let table: &[Case] = &[
        ("GET", "/exact", None, None, "exact"),
        ("GET", "/exact/more", None, None, "404"),
        ("GET", "/users/42", None, None, "user-by-id"),
        ("GET", "/users/abc", None, None, "404"),
        ("GET", "/users/42/posts", None, None, "404"),
        ("POST", "/submit", None, None, "post-submit"),
        ("GET", "/submit", None, None, "any-submit"),
        ("GET", "/feature/x", None, Some(("x-canary", "1")), "canary"),
        ("GET", "/feature/x", None, Some(("x-canary", "0")), "stable"),
        ("GET", "/feature/x", None, None, "stable"),
        ("GET", "/search?debug", None, None, "search-debug"),
        ("GET", "/search?q=1&debug=yes", None, None, "search-debug"),
        ("GET", "/search?q=1", None, None, "404"),
        ("GET", "/api/v1", None, None, "api-prefix"),
        ("GET", "/api", None, None, "404"),
        (
            "GET",
            "/anything",
            Some("api.example.com"),
            None,
            "api-vhost",
        ),
        (
            "GET",
            "/anything",
            Some("API.Example.com:8080"),
            None,
            "api-vhost",
        ),
        (
            "GET",
            "/anything",
            Some("www.example.com"),
            None,
            "wildcard-vhost",
        ),
        ("GET", "/exact", Some("example.com"), None, "exact"),
    ];
    for (method, path, host, header, expected) in table {
        let mut builder = Request::builder().method(*method).uri(proxy.url(path));
        if let Some(host) = host {
            builder = builder.header("host", *host);
        }
        if let Some((name, value)) = header {
            builder = builder.header(*name, *value);
        }
        let response = client.send(builder.body(body::empty()).unwrap()).await;
        let got = if response.status == 200 {
            response.text()
        } else {
            response.status.as_str().to_string()
        };
        assert_eq!(
            got, *expected,
            "{method} {path} host={host:?} header={header:?}"
        );
    }
}

/// Count which named upstream answered each of `n` requests.
async fn tally(
    proxy: &proxy::RunningProxy,
    n: usize,
    headers: &[(&str, &str)],
) -> HashMap<String, usize> {
    let client = client::http1();
    let mut counts = HashMap::new();
    for _ in 0..n {
        let response = client.get_with(&proxy.url("/"), headers).await;
        assert_eq!(response.status, 200);
        let name = response
            .header("x-upstream")
            .expect("named upstream")
            .to_string();
        *counts.entry(name).or_default() += 1;
    }
    counts
}

async fn named(name: &str) -> server::Listening {
    server::http1()
        .named(name)
        .fallback(|_req| async { server::text(200, "ok") })
        .run()
        .await
}

#[tokio::test]
async fn weighted_split_stays_within_statistical_bounds() {
    let (a, b) = (named("a").await, named("b").await);
    let proxy = proxy::new()
        .upstream("a", &a)
        .upstream("b", &b)
        .config(
            r#"
clusters:
  - { name: a, endpoints: ["{{a}}"] }
  - { name: b, endpoints: ["{{b}}"] }
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward:
          weighted_clusters:
            - { cluster: a, weight: 80 }
            - { cluster: b, weight: 20 }
"#,
        )
        .run()
        .await;
    let counts = tally(&proxy, 1000, &[]).await;
    // Binomial(1000, 0.8): mean 800, sd 12.6; ±80 is over 6 sd.
    let a_count = counts.get("a").copied().unwrap_or(0);
    assert!((720..=880).contains(&a_count), "{counts:?}");
    assert_eq!(a_count + counts.get("b").copied().unwrap_or(0), 1000);
}

async fn three_endpoints(policy: &str) -> (Vec<server::Listening>, proxy::RunningProxy) {
    let hash_header = if policy == "ring_hash" {
        "\n    hash_header: x-user"
    } else {
        ""
    };
    let upstreams = vec![named("e0").await, named("e1").await, named("e2").await];
    let proxy = proxy::new()
        .upstream("e0", &upstreams[0])
        .upstream("e1", &upstreams[1])
        .upstream("e2", &upstreams[2])
        .config(format!(
            r#"
clusters:
  - name: pool
    endpoints: ["{{{{e0}}}}", "{{{{e1}}}}", "{{{{e2}}}}"]
    lb_policy: {policy}{hash_header}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: pool }}
"#
        ))
        .run()
        .await;
    (upstreams, proxy)
}

#[tokio::test]
async fn round_robin_is_fair() {
    let (_upstreams, proxy) = three_endpoints("round_robin").await;
    let counts = tally(&proxy, 300, &[]).await;
    for name in ["e0", "e1", "e2"] {
        let count = counts.get(name).copied().unwrap_or(0);
        assert!((90..=110).contains(&count), "{counts:?}");
    }
}

#[tokio::test]
async fn random_and_least_request_spread_the_load() {
    for policy in ["random", "least_request"] {
        let (_upstreams, proxy) = three_endpoints(policy).await;
        let counts = tally(&proxy, 300, &[]).await;
        // Binomial(300, 1/3): mean 100, sd 8.2; ±45 is over 5 sd.
        for name in ["e0", "e1", "e2"] {
            let count = counts.get(name).copied().unwrap_or(0);
            assert!((55..=145).contains(&count), "{policy}: {counts:?}");
        }
    }
}

#[tokio::test]
async fn ring_hash_keeps_a_key_on_one_endpoint() {
    let (_upstreams, proxy) = three_endpoints("ring_hash").await;
    for user in ["alice", "bob", "carol"] {
        let counts = tally(&proxy, 20, &[("x-user", user)]).await;
        assert_eq!(
            counts.len(),
            1,
            "{user} went to several endpoints: {counts:?}"
        );
    }
}
