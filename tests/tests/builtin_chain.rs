//! The full chain authz → fault → chaos → canary → hello, from the quick
//! start's own config (`examples/quickstart.yaml`), with its fixed ports
//! swapped for ephemeral ones and its module paths for the built components.

use weir_tests::builtin::{self, FilteredProxy};
use weir_tests::client::{self, TestResponse};
use weir_tests::server::{self, Listening};

const QUICKSTART: &str = include_str!("../../examples/quickstart.yaml");
const API_KEY: &str = "weir-demo-key";
/// alice, roles [admin]: the ready-made token of the quick start.
const ALICE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ3ZWlyLXF1aWNrc3RhcnQiLCJhdWQiOiJ3ZWlyLWRlbW8iLCJzdWIiOiJhbGljZSIsInJvbGVzIjpbImFkbWluIl0sImV4cCI6NDEwMjQ0NDgwMH0.ah21Z1MfFFIXAJb4p53KgQEGT0RyvLl77kNWHDIZV7Q";

struct Quickstart {
    proxy: FilteredProxy,
    stable: Listening,
    canary: Listening,
}

impl Quickstart {
    fn upstream_requests(&self) -> usize {
        self.stable.requests() + self.canary.requests()
    }
}

async fn echo(name: &str) -> Listening {
    server::http1().named(name).echoing().run().await
}

async fn quickstart() -> Quickstart {
    let stable = echo("stable").await;
    let canary = echo("canary").await;
    let mut yaml = QUICKSTART.to_string();
    for (from, to) in [
        ("127.0.0.1:8080", "127.0.0.1:0"),
        ("127.0.0.1:9901", "127.0.0.1:0"),
        ("\"127.0.0.1:3001\"", "\"{{stable}}\""),
        ("\"127.0.0.1:3002\"", "\"{{canary}}\""),
        (
            "../target/wasm32-wasip2/filter/weir_filter_authz.wasm",
            "\"{{authz_wasm}}\"",
        ),
        (
            "../target/wasm32-wasip2/filter/weir_filter_fault.wasm",
            "\"{{fault_wasm}}\"",
        ),
        (
            "../target/wasm32-wasip2/filter/weir_filter_canary.wasm",
            "\"{{canary_wasm}}\"",
        ),
        (
            "../target/wasm32-wasip2/filter/hello_filter.wasm",
            "\"{{hello_wasm}}\"",
        ),
    ] {
        assert!(yaml.contains(from), "quickstart.yaml no longer has {from}");
        yaml = yaml.replace(from, to);
    }
    let builder = weir_tests::proxy::new()
        .upstream("stable", &stable)
        .upstream("canary", &canary)
        .config(yaml);
    Quickstart {
        proxy: builtin::start(builder).await,
        stable,
        canary,
    }
}

fn upstream_header(response: &TestResponse, name: &str) -> Option<String> {
    response.json()["headers"][name][0]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn unauthenticated_requests_never_reach_an_upstream() {
    let qs = quickstart().await;
    let http = client::http1();
    for path in ["/", "/echo", "/admin", "/api/orders?x=1"] {
        for headers in [
            vec![],
            vec![("x-canary", "always")],
            vec![("x-weir-fault-delay", "5")],
            vec![("x-api-key", "not-the-key")],
            vec![("authorization", "Bearer not.a.token")],
        ] {
            let response = http.get_with(&qs.proxy.url(path), &headers).await;
            assert_eq!(
                response.status,
                401,
                "{path} {headers:?}: {}",
                response.text()
            );
            assert!(response.header("www-authenticate").is_some());
        }
    }
    assert_eq!(qs.upstream_requests(), 0);
    assert_eq!(qs.proxy.counter("fault_delays_total"), 0);

    // The direct response and the open prefix still work without credentials.
    let hello = http.get(&qs.proxy.url("/hello")).await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.text(), "hello from weir\n");
    let public = http.get(&qs.proxy.url("/public/info")).await;
    assert_eq!(public.status, 200);
    assert_eq!(
        upstream_header(&public, "x-hello").as_deref(),
        Some("from-weir")
    );
    assert_eq!(qs.upstream_requests(), 1);
}

#[tokio::test]
async fn authenticated_requests_split_between_stable_and_canary_by_weight() {
    const N: u64 = 400;
    const P: f64 = 0.10;
    let qs = quickstart().await;
    let http = client::http1();
    let mut canary = 0u64;
    for _ in 0..N {
        let response = http
            .get_with(&qs.proxy.url("/echo"), &[("x-api-key", API_KEY)])
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
        let upstream = response.header("x-upstream").expect("x-upstream");
        assert_eq!(response.header("x-canary-variant"), Some(upstream));
        assert_eq!(response.header("x-served-by"), Some("weir"));
        assert_eq!(
            upstream_header(&response, "x-weir-principal").as_deref(),
            Some("demo-client")
        );
        if upstream == "canary" {
            canary += 1;
        }
    }
    let mean = N as f64 * P;
    let sigma = (N as f64 * P * (1.0 - P)).sqrt();
    assert!(
        (canary as f64 - mean).abs() <= 5.0 * sigma,
        "{canary} of {N} on the canary; expected {mean} ± {:.1}",
        5.0 * sigma
    );
    assert_eq!(qs.canary.requests() as u64, canary);
    assert_eq!(qs.stable.requests() as u64, N - canary);
}

#[tokio::test]
async fn each_filter_acts_in_the_chain() {
    let qs = quickstart().await;
    let http = client::http1();
    let url = qs.proxy.url("/echo");
    let key = ("x-api-key", API_KEY);
    let alice = format!("Bearer {ALICE}");

    // authz: RBAC on /admin.
    let response = http.get_with(&qs.proxy.url("/admin"), &[key]).await;
    assert_eq!(response.status, 403);
    let response = http
        .get_with(&qs.proxy.url("/admin"), &[("authorization", &alice)])
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        upstream_header(&response, "x-weir-principal").as_deref(),
        Some("alice")
    );
    let before = qs.upstream_requests();

    // fault: header-controlled abort and the scoped abort never reach an upstream.
    let response = http
        .get_with(&url, &[key, ("x-weir-fault-abort", "503")])
        .await;
    assert_eq!(response.status, 503);
    let response = http.get_with(&url, &[key, ("x-user", "chaos")]).await;
    assert_eq!(response.status, 503);
    assert_eq!(qs.upstream_requests(), before);
    let response = http
        .get_with(&url, &[key, ("x-weir-fault-delay", "10")])
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(qs.proxy.counter("fault_delays_total"), 1);

    // canary: override and stickiness.
    let response = http.get_with(&url, &[key, ("x-canary", "always")]).await;
    assert_eq!(response.header("x-upstream"), Some("canary"));
    let response = http.get_with(&url, &[key, ("x-canary", "never")]).await;
    assert_eq!(response.header("x-upstream"), Some("stable"));
    let first = http.get_with(&url, &[key, ("x-user-id", "user-7")]).await;
    let variant = first.header("x-upstream").expect("x-upstream").to_string();
    for _ in 0..10 {
        let again = http.get_with(&url, &[key, ("x-user-id", "user-7")]).await;
        assert_eq!(again.header("x-upstream"), Some(variant.as_str()));
    }
}
