//! The built-in `fault` filter in the running proxy, in front of a real upstream.

use http::Request;
use weir_proxy::body;
use weir_tests::builtin::{self, FilteredProxy};
use weir_tests::client;
use weir_tests::server::{self, Listening};

async fn upstream() -> Listening {
    server::http1()
        .named("app")
        .fallback(|_req| async { server::text(200, "from upstream") })
        .run()
        .await
}

/// An h2c upstream that would answer gRPC (never reached when aborted).
async fn grpc_upstream() -> Listening {
    server::http2()
        .fallback(|_req| async {
            let mut response = server::bytes("");
            response.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/grpc"),
            );
            response
                .headers_mut()
                .insert("grpc-status", http::HeaderValue::from_static("0"));
            response
        })
        .run()
        .await
}

async fn fault_proxy(app: &Listening, fault_config: &str) -> FilteredProxy {
    let yaml = format!(
        r#"
filters:
  - name: fault
    module: "{{{{fault_wasm}}}}"
    config: {fault_config}
clusters:
  - name: app
    endpoints: ["{{{{app}}}}"]
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: app }}
"#
    );
    builtin::start(weir_tests::proxy::new().upstream("app", app).config(yaml)).await
}

#[tokio::test]
async fn abort_at_100_percent_answers_the_status_without_the_upstream() {
    let app = upstream().await;
    let proxy = fault_proxy(&app, r#"{ abort: { percentage: 100, http_status: 503 } }"#).await;
    let http = client::http1();
    for _ in 0..3 {
        let response = http.get(&proxy.url("/any")).await;
        assert_eq!(response.status, 503);
        assert_eq!(response.text(), "fault filter abort");
    }
    assert_eq!(app.requests(), 0);
    assert_eq!(proxy.counter("fault_aborts_total"), 3);
}

#[tokio::test]
async fn grpc_request_gets_a_trailers_only_grpc_status() {
    let app = grpc_upstream().await;
    let proxy = fault_proxy(
        &app,
        r#"{ abort: { percentage: 100, http_status: 503, grpc_message: "chaos test" } }"#,
    )
    .await;
    let request = Request::post(proxy.url("/pkg.Service/Method"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body::full(&b"\0\0\0\0\0"[..]))
        .expect("request");
    let response = client::http2().send(request).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/grpc"));
    // 503 maps to UNAVAILABLE (14).
    assert_eq!(response.header("grpc-status"), Some("14"));
    // gRPC percent-encodes only bytes outside 0x20..=0x7E (and `%`): a space stays.
    assert_eq!(response.header("grpc-message"), Some("chaos test"));
    assert!(response.body.is_empty());
    assert_eq!(app.requests(), 0);
}

#[tokio::test]
async fn delay_at_100_percent_still_completes() {
    let app = upstream().await;
    let proxy = fault_proxy(&app, r#"{ delay: { percentage: 100, duration: 20ms } }"#).await;
    let http = client::http1();
    for _ in 0..3 {
        let response = http.get(&proxy.url("/slow")).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "from upstream");
    }
    assert_eq!(app.requests(), 3);
    assert_eq!(proxy.counter("fault_delays_total"), 3);
}

#[tokio::test]
async fn header_controlled_faults_are_ignored_when_disabled() {
    let app = upstream().await;
    // A do-nothing abort keeps the config valid; header control is off.
    let proxy = fault_proxy(&app, r#"{ abort: { percentage: 0, http_status: 503 } }"#).await;
    let response = client::http1()
        .get_with(
            &proxy.url("/x"),
            &[("x-weir-fault-abort", "418"), ("x-weir-fault-delay", "10")],
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(app.requests(), 1);
    assert_eq!(proxy.counter("fault_aborts_total"), 0);
    assert_eq!(proxy.counter("fault_delays_total"), 0);
}

#[tokio::test]
async fn header_controlled_faults_are_honoured_when_enabled() {
    let app = upstream().await;
    let proxy = fault_proxy(
        &app,
        r#"{ header_control: { enabled: true, max_delay: 1s } }"#,
    )
    .await;
    let http = client::http1();

    let response = http
        .get_with(&proxy.url("/x"), &[("x-weir-fault-abort", "418")])
        .await;
    assert_eq!(response.status, 418);
    assert_eq!(app.requests(), 0);

    let response = http
        .get_with(&proxy.url("/x"), &[("x-weir-fault-delay", "15")])
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(proxy.counter("fault_delays_total"), 1);

    // Garbage is ignored; no header, no fault.
    let response = http
        .get_with(&proxy.url("/x"), &[("x-weir-fault-abort", "teapot")])
        .await;
    assert_eq!(response.status, 200);
    let response = http.get(&proxy.url("/x")).await;
    assert_eq!(response.status, 200);
    assert_eq!(app.requests(), 3);
}

#[tokio::test]
async fn scoped_faults_only_hit_matching_requests() {
    let app = upstream().await;
    let proxy = fault_proxy(
        &app,
        r#"{ abort: { percentage: 100, http_status: 500 },
             match: { path_prefixes: [/api/], headers: [ { name: x-user, exact: chaos } ] } }"#,
    )
    .await;
    let http = client::http1();

    let hit = http
        .get_with(&proxy.url("/api/orders"), &[("x-user", "chaos")])
        .await;
    assert_eq!(hit.status, 500);

    for (path, user) in [
        ("/api/orders", Some("alice")),
        ("/api/orders", None),
        ("/web/index", Some("chaos")),
    ] {
        let headers: Vec<(&str, &str)> = user.map(|u| ("x-user", u)).into_iter().collect();
        let response = http.get_with(&proxy.url(path), &headers).await;
        assert_eq!(response.status, 200, "{path} {user:?}");
    }
    assert_eq!(app.requests(), 3);
}

#[tokio::test]
async fn abort_percentage_is_within_statistical_bounds() {
    const N: u64 = 400;
    const P: f64 = 0.25;
    let app = upstream().await;
    let proxy = fault_proxy(&app, r#"{ abort: { percentage: 25, http_status: 503 } }"#).await;
    let http = client::http1();
    let mut aborted = 0u64;
    for _ in 0..N {
        match http.get(&proxy.url("/x")).await.status.as_u16() {
            503 => aborted += 1,
            200 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    let mean = N as f64 * P;
    let sigma = (N as f64 * P * (1.0 - P)).sqrt();
    assert!(
        (aborted as f64 - mean).abs() <= 5.0 * sigma,
        "{aborted} of {N} aborted; expected {mean} ± {:.1}",
        5.0 * sigma
    );
    assert_eq!(app.requests() as u64, N - aborted);
}
