//! Misbehaving filters never take the proxy down: traps, CPU and memory
//! exhaustion and stack overflow fail the one request (503 naming the
//! filter, or skipped with `fail_open`) and the proxy keeps serving. A
//! failure in a body phase fails the request the same way, except in a
//! streamed response body, whose head is already on its way: the response
//! is cut short.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use weir_proxy::body;
use weir_tests::artifacts::{DEEP_RECURSION, DELAY, INFINITE_LOOP, MEMORY_BOMB, TRAP};
use weir_tests::client::BodySender;
use weir_tests::one_filter::{self, assert_failed as assert_filter_failed, proxy as proxy_for};
use weir_tests::{client, proxy, server};

/// HTTP/1.1 and h2c: the proxy speaks the client's protocol upstream.
async fn upstream() -> server::Listening {
    server::auto()
        .fallback(|_req| async { server::text(200, "upstream") })
        .run()
        .await
}

/// The proxy still answers normally through the same filter.
async fn still_serves(proxy: &proxy::RunningProxy) {
    let response = one_filter::assert_still_serves(proxy).await;
    assert_eq!(response.text(), "upstream");
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

#[tokio::test]
async fn a_failure_in_a_buffered_response_body_gets_503_naming_the_filter() {
    let upstream = upstream().await;
    let proxy = proxy_for(
        &upstream,
        "trapper",
        TRAP,
        "    config: { response_buffer: 65536 }",
    )
    .await;

    for client in [client::http1(), client::http2()] {
        let response = client.get(&proxy.url("/trap/response-body-panic")).await;
        assert_filter_failed(&response, "trapper");
        assert_eq!(response.header("x-trap"), None, "the head was replaced");
    }
    // The upstream did answer: the failure is in the body on its way back.
    assert_eq!(upstream.requests(), 2, "upstream requests");
    // The same filter, buffering, still passes other responses whole.
    let passed = client::http1().get(&proxy.url("/fine")).await;
    assert_eq!(passed.header("x-trap"), Some("passed"));
    assert_eq!(passed.header("content-length"), Some("8"));
    still_serves(&proxy).await;
}

/// An upstream that answers `/trap/response-body-panic` with a streamed
/// body and hands the test the sending half of each one.
async fn streaming_upstream() -> (server::Listening, mpsc::UnboundedReceiver<BodySender>) {
    let (senders, received) = mpsc::unbounded_channel();
    let upstream = server::auto()
        .route("/trap/response-body-panic", move |_req| {
            let (sender, body) = client::body_channel();
            senders.send(sender).expect("the test is waiting");
            async move { http::Response::new(body) }
        })
        .fallback(|_req| async { server::text(200, "upstream") })
        .run()
        .await;
    (upstream, received)
}

/// Reads `body` to its end; `Err` if it broke off, with the data before.
async fn read_to_end(body: &mut hyper::body::Incoming) -> Result<Bytes, Bytes> {
    let mut data = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(chunk) = frame.into_data() {
                    data.extend_from_slice(&chunk);
                }
            }
            Err(_) => return Err(data.into()),
        }
    }
    Ok(data.into())
}

#[tokio::test]
async fn a_failure_in_a_streamed_response_body_cuts_the_response_short() {
    let (upstream, mut senders) = streaming_upstream().await;
    let proxy = proxy_for(&upstream, "trapper", TRAP, "").await;

    // HTTP/1.1 closes the connection, HTTP/2 resets the stream: either way
    // the client must not see a clean end of a complete body.
    for (protocol, client) in [("HTTP/1.1", client::http1()), ("HTTP/2", client::http2())] {
        let request = Request::get(proxy.url("/trap/response-body-panic"))
            .body(body::empty())
            .unwrap();
        let mut responding = tokio::spawn({
            let client = client.clone();
            async move { client.request(request).await }
        });
        let sender = tokio::select! {
            sender = senders.recv() => sender.expect("the upstream keeps its routes"),
            answered = &mut responding => panic!(
                "{protocol}: answered without reaching the upstream: {:?}",
                answered.unwrap().map(|response| response.status())
            ),
        };
        assert!(sender.data("first;").await);
        let response = responding.await.unwrap().expect("the head arrives");
        // The head went out before the body failed: the status is the upstream's.
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers().get("x-trap").unwrap(), "passed");
        let mut response_body = response.into_body();
        let first = response_body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from("first;"));

        // The filter fails at the end of the body.
        assert!(sender.data("last").await);
        drop(sender);
        match read_to_end(&mut response_body).await {
            Ok(rest) => {
                panic!("{protocol}: the body ended cleanly after the filter failed: {rest:?}")
            }
            Err(rest) => assert!(
                b"last".starts_with(&rest[..]),
                "{protocol}: only data the filter passed reaches the client: {rest:?}"
            ),
        }
    }
    still_serves(&proxy).await;
}

#[tokio::test]
async fn a_failure_in_a_request_body_gets_503_naming_the_filter() {
    // The upstream counts the request bodies it received whole: a filter
    // that fails on the body must keep it from the upstream.
    let whole_bodies = Arc::new(AtomicUsize::new(0));
    let counted = whole_bodies.clone();
    let upstream = server::auto()
        .route(
            "/trap/body-panic",
            move |request: Request<hyper::body::Incoming>| {
                let counted = counted.clone();
                async move {
                    match request.into_body().collect().await.map(|c| c.to_bytes()) {
                        Ok(whole) if whole == "payload" => {
                            counted.fetch_add(1, Ordering::SeqCst);
                            server::text(200, "got the body")
                        }
                        _ => server::text(400, "broken body"),
                    }
                }
            },
        )
        .fallback(|_req| async { server::text(200, "upstream") })
        .run()
        .await;

    for (mode, extra) in [
        ("streamed", ""),
        ("buffered", "    config: { request_buffer: 65536 }"),
    ] {
        let proxy = proxy_for(&upstream, "trapper", TRAP, extra).await;
        for (protocol, client) in [("HTTP/1.1", client::http1()), ("HTTP/2", client::http2())] {
            let request = Request::post(proxy.url("/trap/body-panic"))
                .body(body::full("payload"))
                .unwrap();
            let response = client.send(request).await;
            assert_eq!(
                response.status,
                503,
                "{mode}, {protocol}: {}",
                response.text()
            );
            assert!(
                response.text().contains("filter \"trapper\" failed"),
                "{mode}, {protocol}: {}",
                response.text()
            );
        }
        // A request body the filter passes still goes through it.
        let passed = client::http1()
            .send(
                Request::post(proxy.url("/fine"))
                    .body(body::full("payload"))
                    .unwrap(),
            )
            .await;
        assert_eq!(passed.status, 200, "{mode}");
        assert_eq!(passed.header("x-trap"), Some("passed"), "{mode}");
        still_serves(&proxy).await;
    }
    assert_eq!(whole_bodies.load(Ordering::SeqCst), 0);
}
