//! Misbehaving filters never take the proxy down: traps, CPU and memory
//! exhaustion and stack overflow fail the one request (503 naming the
//! filter, or skipped with `fail_open`) and the proxy keeps serving.

use weir_tests::artifacts::{DEEP_RECURSION, DELAY, INFINITE_LOOP, MEMORY_BOMB, TRAP};
use weir_tests::{client, proxy, server};

async fn upstream() -> server::Listening {
    server::http1()
        .fallback(|_req| async { server::text(200, "upstream") })
        .run()
        .await
}

fn config(name: &str, extra: &str) -> String {
    format!(
        r#"
clusters:
  - {{ name: app, endpoints: ["{{{{app}}}}"] }}
filters:
  - name: {name}
    module: "{{{{module}}}}"
{extra}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: app }}
"#
    )
}

async fn proxy_for(
    upstream: &server::Listening,
    name: &str,
    module: &str,
    extra: &str,
) -> proxy::RunningProxy {
    proxy::new()
        .config(config(name, extra))
        .upstream("app", upstream)
        .filter_module("module", module)
        .run()
        .await
}

/// The proxy still answers normally through the same filter.
async fn still_serves(proxy: &proxy::RunningProxy) {
    for _ in 0..3 {
        let response = client::http1().get(&proxy.url("/fine")).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "upstream");
    }
}

fn assert_filter_failed(response: &client::TestResponse, filter: &str) {
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response
            .text()
            .contains(&format!("filter \"{filter}\" failed")),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn a_trapping_filter_gets_503_naming_it_and_the_proxy_keeps_serving() {
    let upstream = upstream().await;
    let proxy = proxy_for(&upstream, "trapper", TRAP, "").await;
    let client = client::http1();

    for path in ["/trap/panic", "/trap/unreachable", "/trap/error"] {
        let response = client.get(&proxy.url(path)).await;
        assert_filter_failed(&response, "trapper");
    }
    let response_phase = client.get(&proxy.url("/trap/response-panic")).await;
    assert_filter_failed(&response_phase, "trapper");

    let passed = client.get(&proxy.url("/fine")).await;
    assert_eq!(passed.header("x-trap"), Some("passed"));
    still_serves(&proxy).await;
}

#[tokio::test]
async fn fail_open_skips_a_trapping_filter() {
    let upstream = upstream().await;
    let proxy = proxy_for(&upstream, "trapper", TRAP, "    failure_mode: fail_open").await;

    let response = client::http1().get(&proxy.url("/trap/panic")).await;

    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "upstream");
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test]
async fn an_endless_loop_is_stopped_while_other_requests_flow() {
    // One runtime thread, so a guest that held its thread for the whole CPU
    // deadline would stall every other request until it ended. The long
    // deadline keeps the looping request in flight while the others run.
    let upstream = upstream().await;
    let proxy = proxy_for(
        &upstream,
        "looper",
        INFINITE_LOOP,
        "    limits: { cpu_per_call: 5s }",
    )
    .await;

    let url = proxy.url("/loop");
    let looping = tokio::spawn(async move { client::http1().get(&url).await });
    // The loop is running once its request reached the filter; the other
    // requests go through the same filter.
    for _ in 0..10 {
        let response = client::http1().get(&proxy.url("/fine")).await;
        assert_eq!(response.status, 200);
    }
    assert!(
        !looping.is_finished(),
        "the other requests only completed after the loop ended"
    );
    let looped = looping.await.unwrap();
    assert_filter_failed(&looped, "looper");
    still_serves(&proxy).await;
}

#[tokio::test]
async fn an_endless_loop_ends_at_the_default_deadline() {
    let upstream = upstream().await;
    let proxy = proxy_for(&upstream, "looper", INFINITE_LOOP, "").await;

    let response = client::http1().get(&proxy.url("/loop")).await;

    assert_filter_failed(&response, "looper");
    assert_eq!(upstream.requests(), 0);
    still_serves(&proxy).await;
}

#[tokio::test]
async fn a_memory_bomb_gets_503_and_the_proxy_is_fine() {
    let upstream = upstream().await;
    let proxy = proxy_for(
        &upstream,
        "bomb",
        MEMORY_BOMB,
        "    limits: { memory_mib: 16, cpu_per_call: 2s }",
    )
    .await;

    for _ in 0..3 {
        let response = client::http1().get(&proxy.url("/bomb")).await;
        assert_filter_failed(&response, "bomb");
    }
    still_serves(&proxy).await;
}

#[tokio::test]
async fn deep_recursion_gets_503_and_the_proxy_is_fine() {
    let upstream = upstream().await;
    let proxy = proxy_for(&upstream, "deep", DEEP_RECURSION, "").await;

    let response = client::http1().get(&proxy.url("/recurse")).await;

    assert_filter_failed(&response, "deep");
    still_serves(&proxy).await;
}

#[tokio::test]
async fn delayed_requests_wait_without_blocking_each_other_or_others() {
    // One runtime thread: a delay that blocked it would serialise everything.
    let upstream = upstream().await;
    let proxy = proxy::new()
        .config(
            r#"
clusters:
  - { name: app, endpoints: ["{{app}}"] }
filters:
  - { name: slow, module: "{{delay}}", config: { ms: 300 }, limits: { cpu_per_call: 1s } }
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - match: { prefix: /slow }
        forward: { cluster: app }
      - match: { prefix: /fast }
        forward: { cluster: app }
        filters:
          - { name: slow, disabled: true }
"#,
        )
        .upstream("app", &upstream)
        .filter_module("delay", DELAY)
        .run()
        .await;

    let delayed: Vec<_> = (0..20)
        .map(|_| {
            let url = proxy.url("/slow");
            tokio::spawn(async move { client::http1().get(&url).await })
        })
        .collect();
    // Requests without the delay are not starved by the delayed ones.
    for _ in 0..5 {
        let fast = client::http1().get(&proxy.url("/fast")).await;
        assert_eq!(fast.status, 200);
    }
    assert!(
        delayed.iter().any(|task| !task.is_finished()),
        "the fast requests waited for the delayed ones"
    );
    for task in delayed {
        let response = task.await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("x-delay-ms"), Some("300"));
        let observed: u64 = response
            .header("x-delay-observed-ms")
            .unwrap()
            .parse()
            .unwrap();
        assert!(observed >= 300, "the delay was not honoured: {observed}ms");
    }
}
