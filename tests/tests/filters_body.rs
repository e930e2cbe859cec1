//! Body phases of Wasm filters end to end (`body-rewrite`): a buffered body
//! goes out with its final `content-length`, a streamed body stays streamed.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use weir_proxy::body::{self, ProxyBody};
use weir_tests::artifacts::BODY_REWRITE;
use weir_tests::{client, proxy, server};

fn config(filter_config: &str) -> String {
    format!(
        r#"
clusters:
  - {{ name: app, endpoints: ["{{{{app}}}}"] }}
filters:
  - name: rewrite
    module: "{{{{rewrite}}}}"
    config: {filter_config}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: app }}
"#
    )
}

async fn proxy_with(upstream: &server::Listening, filter_config: &str) -> proxy::RunningProxy {
    proxy::new()
        .config(config(filter_config))
        .upstream("app", upstream)
        .filter_module("rewrite", BODY_REWRITE)
        .run()
        .await
}

/// The upstream's answer: the body it got, and its framing headers.
async fn echo_body(request: Request<hyper::body::Incoming>) -> http::Response<ProxyBody> {
    let length = header(&request, "content-length");
    let chunked = header(&request, "transfer-encoding");
    let data = request.into_body().collect().await.unwrap().to_bytes();
    let mut response = server::bytes(data);
    response
        .headers_mut()
        .insert("x-got-content-length", length.parse().unwrap());
    response
        .headers_mut()
        .insert("x-got-transfer-encoding", chunked.parse().unwrap());
    response
}

fn header(request: &Request<hyper::body::Incoming>, name: &str) -> String {
    request
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_else(|| "-".into())
}

#[tokio::test]
async fn a_buffered_response_body_is_sent_with_its_new_content_length() {
    let upstream = server::http1()
        .route("/page", |_req| async {
            server::text(200, "hello from the upstream, upstream!")
        })
        .run()
        .await;
    let proxy = proxy_with(
        &upstream,
        r#"{ "find": "upstream", "replace": "proxy", "append": " -- rewritten", "response_buffer": 65536 }"#,
    )
    .await;

    let response = client::http1().get(&proxy.url("/page")).await;

    assert_eq!(response.status, 200);
    let expected = "hello from the proxy, proxy! -- rewritten";
    assert_eq!(response.text(), expected);
    assert_eq!(
        response.header("content-length"),
        Some(expected.len().to_string().as_str()),
        "headers: {:?}",
        response.headers
    );
    assert_eq!(response.header("transfer-encoding"), None);
}

#[tokio::test]
async fn a_buffered_request_body_goes_upstream_with_its_content_length() {
    let upstream = server::http1().route("/upload", echo_body).run().await;
    let proxy = proxy_with(
        &upstream,
        r#"{ "uppercase_request": true, "request_buffer": 65536, "response_buffer": null }"#,
    )
    .await;

    // Sent chunked: the length is only known once the filter buffered it.
    let (sender, request_body) = client::body_channel();
    let request = Request::post(proxy.url("/upload"))
        .body(request_body)
        .unwrap();
    let pending = tokio::spawn(async move { client::http1().send(request).await });
    assert!(sender.data("hello ").await);
    assert!(sender.data("world").await);
    drop(sender);
    let response = pending.await.unwrap();

    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "HELLO WORLD");
    assert_eq!(response.header("x-got-content-length"), Some("11"));
    assert_eq!(response.header("x-got-transfer-encoding"), Some("-"));
    assert_eq!(response.header("x-request-body-calls"), Some("1"));
}

#[tokio::test]
async fn a_streamed_request_body_reaches_the_upstream_before_it_ends() {
    // The upstream answers as soon as it has the first chunk; the client
    // sends the rest only after that answer arrived, so a proxy that held the
    // body back would never answer.
    let upstream = server::http1()
        .route(
            "/stream",
            |request: Request<hyper::body::Incoming>| async move {
                let mut incoming = request.into_body();
                let first = loop {
                    match incoming.frame().await {
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data()
                                && !data.is_empty()
                            {
                                break data;
                            }
                        }
                        _ => panic!("the body ended before its first chunk"),
                    }
                };
                let (sender, body) = client::body_channel();
                tokio::spawn(async move {
                    sender.data(first).await;
                    // Drain the rest, then end the response.
                    while let Some(Ok(_)) = incoming.frame().await {}
                });
                http::Response::new(body)
            },
        )
        .run()
        .await;
    let proxy = proxy_with(
        &upstream,
        r#"{ "uppercase_request": true, "response_buffer": null }"#,
    )
    .await;

    let (sender, request_body) = client::body_channel();
    let request = Request::post(proxy.url("/stream"))
        .body(request_body)
        .unwrap();
    assert!(sender.data("first chunk").await);
    let response = client::http1().request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut response_body = response.into_body();
    let echoed = response_body.frame().await.unwrap().unwrap();
    assert_eq!(echoed.into_data().unwrap(), Bytes::from("FIRST CHUNK"));
    assert!(sender.data("second").await);
    drop(sender);
    while let Some(frame) = response_body.frame().await {
        frame.unwrap();
    }
}

#[tokio::test]
async fn a_streamed_response_body_reaches_the_client_before_it_ends() {
    let held: Arc<Mutex<Option<ProxyBody>>> = Arc::new(Mutex::new(None));
    let (upstream_sender, upstream_body) = client::body_channel();
    *held.lock().unwrap() = Some(upstream_body);
    let upstream = server::http1()
        .route("/stream", move |_req| {
            let body = held.lock().unwrap().take().expect("one request");
            async move { http::Response::new(body) }
        })
        .run()
        .await;
    let proxy = proxy_with(
        &upstream,
        r#"{ "find": "upstream", "replace": "proxy", "response_buffer": null }"#,
    )
    .await;

    assert!(upstream_sender.data("upstream part 1;").await);
    let request = Request::get(proxy.url("/stream"))
        .body(body::empty())
        .unwrap();
    let response = client::http1().request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("content-length"), None);
    let mut response_body = response.into_body();
    let first = response_body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), Bytes::from("proxy part 1;"));
    assert!(upstream_sender.data("upstream part 2").await);
    drop(upstream_sender);
    let rest = response_body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, Bytes::from("proxy part 2"));
}

#[tokio::test]
async fn a_body_over_the_buffer_limit_is_refused_with_413() {
    let upstream = server::http1().route("/upload", echo_body).run().await;
    let proxy = proxy_with(
        &upstream,
        r#"{ "request_buffer": 8, "response_buffer": null }"#,
    )
    .await;

    let request = Request::post(proxy.url("/upload"))
        .body(body::full("more than eight bytes"))
        .unwrap();
    let response = client::http1().send(request).await;

    assert_eq!(response.status, 413);
    assert!(response.text().contains("rewrite"), "{}", response.text());
}
