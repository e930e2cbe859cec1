//! The built-in `canary` filter in the running proxy, splitting traffic
//! between two real upstreams ("stable" and "canary").

use weir_tests::builtin::{self, FilteredProxy};
use weir_tests::client::{self, TestResponse};
use weir_tests::server::{self, Listening};

async fn named_upstream(name: &str, status: u16) -> Listening {
    server::http1()
        .named(name)
        .fallback(move |_req| async move { server::text(status, "answer") })
        .run()
        .await
}

struct Upstreams {
    stable: Listening,
    canary: Listening,
}

async fn upstreams(canary_status: u16) -> Upstreams {
    Upstreams {
        stable: named_upstream("stable", 200).await,
        canary: named_upstream("canary", canary_status).await,
    }
}

async fn canary_proxy(up: &Upstreams, canary_config: &str) -> FilteredProxy {
    let yaml = format!(
        r#"
filters:
  - name: canary
    module: "{{{{canary_wasm}}}}"
    config: {canary_config}
clusters:
  - name: v1
    endpoints: ["{{{{stable}}}}"]
  - name: v2
    endpoints: ["{{{{canary}}}}"]
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: v1 }}
"#
    );
    let builder = weir_tests::proxy::new()
        .upstream("stable", &up.stable)
        .upstream("canary", &up.canary)
        .config(yaml);
    builtin::start(builder).await
}

/// Which upstream answered; the variant header must agree with it.
fn served_by(response: &TestResponse) -> String {
    let upstream = response
        .header("x-upstream")
        .expect("x-upstream")
        .to_string();
    let variant = response
        .header("x-canary-variant")
        .expect("x-canary-variant");
    assert_eq!(
        variant, upstream,
        "variant header disagrees with the upstream"
    );
    upstream
}

fn assert_within_5_sigma(hits: u64, n: u64, p: f64, what: &str) {
    let mean = n as f64 * p;
    let sigma = (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (hits as f64 - mean).abs() <= 5.0 * sigma,
        "{what}: {hits} of {n}; expected {mean} ± {:.1}",
        5.0 * sigma
    );
}

#[tokio::test]
async fn random_split_follows_the_weight() {
    const N: u64 = 400;
    let up = upstreams(200).await;
    let proxy = canary_proxy(
        &up,
        "{ stable: { cluster: v1 }, canary: { cluster: v2, weight: 20 } }",
    )
    .await;
    let http = client::http1();
    let mut canary = 0;
    for _ in 0..N {
        if served_by(&http.get(&proxy.url("/")).await) == "canary" {
            canary += 1;
        }
    }
    assert_within_5_sigma(canary, N, 0.20, "canary share");
    assert_eq!(up.canary.requests() as u64, canary);
    assert_eq!(up.stable.requests() as u64, N - canary);
}

#[tokio::test]
async fn sticky_users_keep_their_variant_and_split_by_weight() {
    const USERS: u64 = 300;
    let up = upstreams(200).await;
    let proxy = canary_proxy(
        &up,
        "{ stable: { cluster: v1 }, canary: { cluster: v2, weight: 30 }, sticky: { header: x-user-id } }",
    )
    .await;
    let http = client::http1();
    let mut on_canary = 0;
    for user in 0..USERS {
        let id = format!("user-{user}");
        let first = served_by(&http.get_with(&proxy.url("/"), &[("x-user-id", &id)]).await);
        for _ in 0..3 {
            let again = served_by(&http.get_with(&proxy.url("/"), &[("x-user-id", &id)]).await);
            assert_eq!(again, first, "{id} changed variant");
        }
        if first == "canary" {
            on_canary += 1;
        }
    }
    assert_within_5_sigma(on_canary, USERS, 0.30, "users on the canary");
}

#[tokio::test]
async fn override_header_forces_either_variant() {
    let up = upstreams(200).await;
    let proxy = canary_proxy(
        &up,
        "{ stable: { cluster: v1 }, canary: { cluster: v2, weight: 50 }, override: {} }",
    )
    .await;
    let http = client::http1();
    for _ in 0..10 {
        let always = http
            .get_with(&proxy.url("/"), &[("x-canary", "always")])
            .await;
        assert_eq!(served_by(&always), "canary");
        let never = http
            .get_with(&proxy.url("/"), &[("x-canary", "never")])
            .await;
        assert_eq!(served_by(&never), "stable");
    }
    assert_eq!(up.canary.requests(), 10);
    assert_eq!(up.stable.requests(), 10);
}

#[tokio::test]
async fn pin_cookie_keeps_a_random_user_on_the_variant() {
    let up = upstreams(200).await;
    let proxy = canary_proxy(
        &up,
        "{ stable: { cluster: v1 }, canary: { cluster: v2, weight: 50 }, pin_cookie: { secure: false, max_age: 1h } }",
    )
    .await;
    let http = client::http1();
    let first = http.get(&proxy.url("/")).await;
    let variant = served_by(&first);
    let cookie = first.header("set-cookie").expect("set-cookie pin");
    assert!(
        cookie.starts_with(&format!("weir-canary={variant};")),
        "{cookie}"
    );
    assert!(cookie.contains("Max-Age=3600"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");

    let pin = format!("weir-canary={variant}");
    for _ in 0..20 {
        let response = http.get_with(&proxy.url("/"), &[("cookie", &pin)]).await;
        assert_eq!(served_by(&response), variant);
        assert_eq!(response.header("set-cookie"), None, "pinned: no new cookie");
    }
}

#[tokio::test]
async fn rollback_after_canary_errors_sends_everyone_to_stable() {
    const MIN_REQUESTS: usize = 5;
    let up = upstreams(500).await;
    let proxy = canary_proxy(
        &up,
        "{ experiment: rollback-test, stable: { cluster: v1 }, canary: { cluster: v2, weight: 100 },
           override: {}, rollback: { error_rate: 50, min_requests: 5, window: 10m } }",
    )
    .await;
    let http = client::http1();

    // All traffic goes to the failing canary until the done phase has counted
    // enough errors; then the filter rolls back. Bounded: the threshold is 5.
    let mut first_stable = None;
    for i in 0..50 {
        let response = http.get(&proxy.url("/")).await;
        match served_by(&response).as_str() {
            "canary" => assert_eq!(response.status, 500),
            _ => {
                first_stable = Some(i);
                break;
            }
        }
    }
    let first_stable = first_stable.expect("no rollback after 50 canary 5xx");
    assert!(
        first_stable >= MIN_REQUESTS,
        "rolled back after {first_stable} responses, before min_requests"
    );

    for _ in 0..20 {
        let response = http.get(&proxy.url("/")).await;
        assert_eq!(served_by(&response), "stable");
        assert_eq!(response.status, 200);
    }
    // Testers can still reach the rolled-back canary on purpose.
    let forced = http
        .get_with(&proxy.url("/"), &[("x-canary", "always")])
        .await;
    assert_eq!(served_by(&forced), "canary");
    assert_eq!(proxy.counter("canary_rollbacks_total"), 1);
    assert!(
        proxy
            .wasm
            .kv()
            .get("weir.canary.rollback-test.rollback")
            .is_some()
    );
}
