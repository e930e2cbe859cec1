//! Bodies stream through the proxy (never buffered), and protocols that
//! depend on it work end to end: large uploads and downloads, trailers,
//! gRPC, WebSocket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use weir_proxy::body;
use weir_tests::client::{self, body_channel};
use weir_tests::grpc::{EchoClient, EchoRequest};
use weir_tests::{pattern, proxy, server, websocket};

const TOTAL: u64 = 100 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// Guards against hanging forever if the proxy buffered; not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(120);

fn forward_config(protocol: &str) -> String {
    format!(
        r#"
clusters:
  - name: app
    endpoints: ["{{{{app}}}}"]
    protocol: {protocol}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: app, timeout: 60s }}
"#
    )
}

/// A one-shot sender that a `Fn` handler can take and fire once.
type SharedSender = Arc<Mutex<Option<oneshot::Sender<()>>>>;

/// A one-shot signal that can be fired from inside a `Fn` handler.
fn signal() -> (SharedSender, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    (Arc::new(Mutex::new(Some(tx))), rx)
}

#[tokio::test]
async fn upload_100_mib_streams_before_the_client_finishes() {
    let (first_chunk_seen, upstream_saw_first) = signal();
    let upstream = server::http1()
        .route("/upload", move |req| {
            let first_chunk_seen = Arc::clone(&first_chunk_seen);
            async move {
                let mut body = req.into_body();
                let mut checker = pattern::Checker::new();
                while let Some(frame) = body.frame().await {
                    let frame = frame.expect("upload body");
                    if let Some(data) = frame.data_ref() {
                        checker.feed(data);
                        if let Some(tx) = first_chunk_seen.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                    }
                }
                server::text(200, &format!("{} {}", checker.len(), checker.intact()))
            }
        })
        .run()
        .await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(forward_config("http1"))
        .run()
        .await;

    let (sender, request_body) = body_channel();
    let request = Request::post(proxy.url("/upload"))
        .body(request_body)
        .unwrap();
    let response = tokio::spawn(async move { client::http1().send(request).await });

    assert!(sender.data(pattern::chunk(0, CHUNK)).await);
    // The upstream must see the first chunk while the client holds the rest back.
    tokio::time::timeout(PATIENCE, upstream_saw_first)
        .await
        .expect("the upstream never saw the first chunk: the proxy is buffering the upload")
        .expect("signal");
    let mut offset = CHUNK as u64;
    while offset < TOTAL {
        assert!(
            sender.data(pattern::chunk(offset, CHUNK)).await,
            "upload cut short"
        );
        offset += CHUNK as u64;
    }
    drop(sender);

    let response = tokio::time::timeout(PATIENCE, response)
        .await
        .expect("response")
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), format!("{TOTAL} true"));
}

#[tokio::test]
async fn download_100_mib_streams_before_the_upstream_finishes() {
    let (client_saw_first, client_got_first) = signal();
    let client_got_first = Arc::new(Mutex::new(Some(client_got_first)));
    let upstream = server::http2()
        .route("/download", move |_req| {
            let gate = client_got_first
                .lock()
                .unwrap()
                .take()
                .expect("one download");
            async move {
                let (sender, body) = body_channel();
                tokio::spawn(async move {
                    sender.data(pattern::chunk(0, CHUNK)).await;
                    // Hold the rest back until the client has the first bytes.
                    if gate.await.is_err() {
                        return;
                    }
                    let mut offset = CHUNK as u64;
                    while offset < TOTAL {
                        if !sender.data(pattern::chunk(offset, CHUNK)).await {
                            return;
                        }
                        offset += CHUNK as u64;
                    }
                });
                Response::new(body)
            }
        })
        .run()
        .await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(forward_config("http2"))
        .run()
        .await;

    let client = client::http2();
    let request = Request::get(proxy.url("/download"))
        .body(body::empty())
        .unwrap();
    let response = tokio::time::timeout(PATIENCE, client.request(request))
        .await
        .expect("the response head never arrived: the proxy is buffering the download")
        .expect("response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut checker = pattern::Checker::new();
    let mut signal = client_saw_first.lock().unwrap().take();
    loop {
        let frame = tokio::time::timeout(PATIENCE, body.frame())
            .await
            .expect("the download stalled: the proxy is buffering it");
        let Some(frame) = frame else { break };
        if let Some(data) = frame.expect("download body").data_ref() {
            checker.feed(data);
            if let Some(tx) = signal.take() {
                let _ = tx.send(());
            }
        }
    }
    assert_eq!(checker.len(), TOTAL);
    assert!(checker.intact(), "the download was corrupted");
}

#[tokio::test]
async fn http2_trailers_pass_through() {
    let upstream = server::http2()
        .route("/trailers", |_req| async {
            let (sender, body) = body_channel();
            tokio::spawn(async move {
                sender.data("payload").await;
                let mut trailers = HeaderMap::new();
                trailers.insert("x-checksum", "abc123".parse().unwrap());
                sender.trailers(trailers).await;
            });
            Response::new(body)
        })
        .run()
        .await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(forward_config("http2"))
        .run()
        .await;
    let response = client::http2().get(&proxy.url("/trailers")).await;
    assert_eq!(response.text(), "payload");
    let trailers = response.trailers.expect("trailers arrived");
    assert_eq!(trailers.get("x-checksum").unwrap(), "abc123");
}

async fn grpc_proxy() -> (server::Listening, proxy::RunningProxy) {
    let upstream = server::http2()
        .fallback(weir_tests::grpc::serve)
        .run()
        .await;
    // `auto`: gRPC arrives over HTTP/2, so it leaves over HTTP/2.
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(forward_config("auto"))
        .run()
        .await;
    (upstream, proxy)
}

#[tokio::test]
async fn grpc_unary_and_status_through_the_proxy() {
    let (upstream, proxy) = grpc_proxy().await;
    let mut client = EchoClient::connect(proxy.addr).await;

    let reply = client
        .unary(EchoRequest {
            message: "hello".into(),
            ..Default::default()
        })
        .await
        .expect("unary call");
    assert_eq!(reply.get_ref().message, "hello");
    assert_eq!(reply.metadata().get("x-echo-server").unwrap(), "weir-tests");

    let status = client
        .unary(EchoRequest {
            message: "nope".into(),
            fail_with: 5,
            ..Default::default()
        })
        .await
        .expect_err("the server fails the call");
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(status.message(), "failing as asked: nope");
    assert_eq!(upstream.requests(), 2);
}

#[tokio::test]
async fn grpc_server_streaming_through_the_proxy() {
    let (_upstream, proxy) = grpc_proxy().await;
    let mut client = EchoClient::connect(proxy.addr).await;
    let response = client
        .stream(EchoRequest {
            message: "tick".into(),
            count: 5,
            ..Default::default()
        })
        .await
        .expect("streaming call");
    let mut stream = response.into_inner();
    let mut messages = Vec::new();
    while let Some(reply) = stream.message().await.expect("stream message") {
        messages.push(reply.message);
    }
    assert_eq!(
        messages,
        (0..5).map(|i| format!("tick #{i}")).collect::<Vec<_>>()
    );
    // The end of the stream is the grpc-status trailer; tonic keeps the rest.
    let trailers = stream.trailers().await.expect("trailers");
    assert!(trailers.is_some(), "the grpc-status trailers arrived");
}

#[tokio::test]
async fn grpc_trailers_are_real_http2_trailers() {
    let (_upstream, proxy) = grpc_proxy().await;
    // A raw HTTP/2 view of a streaming call: grpc-status must come as trailers.
    let request = EchoRequest {
        message: "raw".into(),
        count: 2,
        ..Default::default()
    };
    let mut frame = vec![0u8];
    let encoded = prost::Message::encode_to_vec(&request);
    frame.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    frame.extend_from_slice(&encoded);
    let request = Request::post(proxy.url(weir_tests::grpc::STREAM))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body::full(frame))
        .unwrap();
    let response = client::http2().send(request).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/grpc"));
    let trailers = response.trailers.expect("trailers");
    assert_eq!(trailers.get("grpc-status").unwrap(), "0");
}

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
    let upstream = server::http1().route("/ws", websocket::echo).run().await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(forward_config("http1"))
        .run()
        .await;
    let mut socket = websocket::connect(proxy.addr, "/ws").await;
    for text in ["hello", "through", "weir"] {
        socket.send(Message::text(text)).await.unwrap();
        let echoed = socket.next().await.expect("an echo").unwrap();
        assert_eq!(echoed, Message::text(text));
    }
    let binary = vec![0u8, 1, 2, 255];
    socket.send(Message::binary(binary.clone())).await.unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::binary(binary)
    );
    socket.close(None).await.unwrap();
}
